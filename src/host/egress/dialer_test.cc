// SPDX-License-Identifier: Apache-2.0
#include "host/egress/dialer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "lib/egress/dial.h"
#include "lib/net/socket.h"
#include "lib/transport/transport.h"
#include "testing/temp_dir.h"

namespace enclavia::host {
namespace {

using egress::DialStatus;
using sys::UniqueFd;

// Send writes all of `data`, or fails, without SIGPIPE (the dialer may close first).
bool Send(int fd, ByteSpan data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t put = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (put < 0 && errno == EINTR) {
      continue;
    }
    if (put <= 0) {
      return false;
    }
    off += static_cast<size_t>(put);
  }
  return true;
}

// EchoServer is a real TCP server on an ephemeral loopback port: it echoes what it reads and,
// when its client half-closes, answers "<eof>" and closes (so a test can see the half-close
// cross the dialer while the other direction still works). It counts the connections it saw.
class EchoServer {
 public:
  explicit EchoServer(const std::string& host = "127.0.0.1") {
    net::Address address;
    address.family = net::Family::kTcp;
    address.host = host;
    auto fd = net::ListenOn(address);
    if (!fd) {
      error_ = fd.error().message();
      return;
    }
    listener_ = std::move(*fd);
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~EchoServer() {
    stop_ = true;
    ::shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
    std::lock_guard lock(mu_);
    for (std::thread& t : clients_) {
      t.join();
    }
  }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  // eofs counts clients whose half-close arrived.
  int eofs() const { return eofs_.load(); }

 private:
  void Run() {
    for (;;) {
      int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stop_) {
          return;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
          continue;
        }
        return;
      }
      accepted_.fetch_add(1);
      std::lock_guard lock(mu_);
      clients_.emplace_back([this, fd] { Echo(UniqueFd(fd)); });
    }
  }
  void Echo(UniqueFd fd) {
    char buf[16384];
    for (;;) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 200) == 0) {
        if (stop_) {
          return;
        }
        continue;
      }
      ssize_t got = ::recv(fd.get(), buf, sizeof(buf), 0);
      if (got == 0) {
        eofs_.fetch_add(1);
        (void)::send(fd.get(), "<eof>", 5, MSG_NOSIGNAL);
        return;
      }
      if (got < 0) {
        return;
      }
      if (!Send(fd.get(), ByteSpan(reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(got)))) {
        return;
      }
    }
  }

  UniqueFd listener_;
  uint16_t port_ = 0;
  std::string error_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> eofs_{0};
  std::mutex mu_;
  std::vector<std::thread> clients_;
};

egress::Endpoint Loopback(uint16_t port) { return {egress::V4(127, 0, 0, 1), port}; }

EgressDialerOptions LoopbackAllowed() {
  EgressDialerOptions options;
  options.deny.clear();
  return options;
}

// Fixture: a dialer on a Unix socket in a temp dir (as for a local enclave: its parent port).
class DialerTest : public ::testing::Test {
 protected:
  // The dialer stops before the log it writes to goes away.
  void TearDown() override {
    if (dialer_) {
      dialer_->Stop();
    }
  }

  void StartDialer(EgressDialerOptions options) {
    transport::Endpoint endpoint;
    endpoint.local_dir = dir_.path();
    auto dialer = EgressDialer::Start(
        transport::HostListenForEnclave(endpoint, transport::kEgressPort), std::move(options),
        [this](const EgressConnectionLog& entry) {
          std::lock_guard lock(log_mu_);
          logs_.push_back(entry);
        });
    ASSERT_TRUE(dialer) << dialer.error().message();
    dialer_ = std::move(*dialer);
  }

  // Ask sends a request and reads the whole response (byte by byte: nothing after it).
  struct Asked {
    UniqueFd fd;
    egress::DialResponse response;
    bool answered = false;
  };
  Asked Ask(ByteSpan request) {
    Asked out;
    auto fd = net::Connect(dialer_->address());
    EXPECT_TRUE(fd) << fd.error().message();
    if (!fd) {
      return out;
    }
    out.fd = std::move(*fd);
    // A refusal at once (the connection limit) may close before the request is all written.
    (void)Send(out.fd.get(), request);
    Bytes got;
    while (!out.answered) {
      if (!WaitReadable(out.fd.get())) {
        break;
      }
      uint8_t byte = 0;
      if (::recv(out.fd.get(), &byte, 1, 0) != 1) {
        break;
      }
      got.push_back(byte);
      auto decoded = egress::DecodeDialResponse(got);
      EXPECT_TRUE(decoded) << decoded.error().message();
      if (!decoded) {
        break;
      }
      if (*decoded) {
        out.response = (*decoded)->value;
        out.answered = true;
      }
    }
    return out;
  }
  Asked Ask(const egress::Endpoint& to) { return Ask(egress::EncodeDialRequest(to)); }

  static bool WaitReadable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 20000) == 1;  // Generous: only a hang fails.
  }
  // ReadToEof reads until EOF (or an error); false if nothing happens for 20 s.
  static std::string ReadToEof(int fd, bool* eof = nullptr) {
    std::string out;
    char buf[65536];
    for (;;) {
      if (!WaitReadable(fd)) {
        break;
      }
      ssize_t got = ::recv(fd, buf, sizeof(buf), 0);
      if (got <= 0) {
        if (eof != nullptr) {
          *eof = true;
        }
        break;
      }
      out.append(buf, static_cast<size_t>(got));
    }
    return out;
  }
  static std::string ReadExactly(int fd, size_t n) {
    std::string out;
    char buf[65536];
    while (out.size() < n && WaitReadable(fd)) {
      ssize_t got = ::recv(fd, buf, std::min(sizeof(buf), n - out.size()), 0);
      if (got <= 0) {
        break;
      }
      out.append(buf, static_cast<size_t>(got));
    }
    return out;
  }

  std::vector<EgressConnectionLog> Logs() {
    std::lock_guard lock(log_mu_);
    return logs_;
  }

  testing::TempDir dir_{"egress_dialer"};
  std::unique_ptr<EgressDialer> dialer_;
  std::mutex log_mu_;
  std::vector<EgressConnectionLog> logs_;
};

TEST(IpPrefixTest, ParsesAndMatches) {
  auto p = ParseIpPrefix("169.254.0.0/16");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_TRUE(p->Contains(egress::V4(169, 254, 169, 254)));
  EXPECT_FALSE(p->Contains(egress::V4(169, 255, 0, 1)));
  EXPECT_EQ(FormatIpPrefix(*p), "169.254.0.0/16");
  auto v6 = ParseIpPrefix("fe80::/10");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->Contains(*egress::ParseIp("febf::1")));
  EXPECT_FALSE(v6->Contains(*egress::ParseIp("fec0::1")));
  EXPECT_FALSE(v6->Contains(egress::V4(127, 0, 0, 1)));  // Families never mix.
  auto host = ParseIpPrefix("203.0.113.7");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->length, 32);
  auto zero = ParseIpPrefix("0.0.0.0/0");
  ASSERT_TRUE(zero);
  EXPECT_TRUE(zero->Contains(egress::V4(8, 8, 8, 8)));
}

TEST(IpPrefixTest, RejectsBadPrefixes) {
  for (const char* text : {"", "127.0.0.1/33", "::/129", "10.0.0.1/8", "10.0.0.0/", "10.0.0.0/x",
                           "example.com/8", "10.0.0.0/0008", "fe80::1/10"}) {
    auto p = ParseIpPrefix(text);
    EXPECT_FALSE(p) << text;
    if (!p) {
      EXPECT_EQ(p.error().code(), Code::kInvalidArgument);
    }
  }
}

TEST(IpPrefixTest, DefaultDenyListCoversTheHostsOwnAddresses) {
  std::vector<IpPrefix> deny = DefaultDenyList();
  auto denied = [&](const egress::IpAddress& ip) {
    for (const IpPrefix& p : deny) {
      if (p.Contains(ip)) {
        return true;
      }
    }
    return false;
  };
  for (const char* text : {"127.0.0.1", "127.1.2.3", "0.0.0.0", "169.254.169.254", "224.0.0.251",
                           "239.255.255.250", "::1", "::", "fe80::1", "ff02::1",
                           "::ffff:127.0.0.1", "::ffff:10.0.0.1"}) {
    auto ip = egress::ParseIp(text);
    ASSERT_TRUE(ip) << text;
    EXPECT_TRUE(denied(*ip)) << text;
  }
  for (const char* text : {"203.0.113.7", "10.0.0.1", "2001:db8::1", "fd00::1"}) {
    EXPECT_FALSE(denied(*egress::ParseIp(text))) << text;
  }
}

TEST_F(DialerTest, RelaysToTheRequestedAddressBothWays) {
  EchoServer server;
  ASSERT_TRUE(server.ok()) << server.error();
  StartDialer(LoopbackAllowed());
  Asked asked = Ask(Loopback(server.port()));
  ASSERT_TRUE(asked.answered);
  EXPECT_EQ(asked.response.status, DialStatus::kConnected) << asked.response.message;
  ASSERT_TRUE(Send(asked.fd.get(), AsBytes("ping")));
  EXPECT_EQ(ReadExactly(asked.fd.get(), 4), "ping");
  EXPECT_EQ(server.accepted(), 1);
  asked.fd = UniqueFd();
  dialer_->Stop();
  EgressStats s = dialer_->stats();
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.by_status[0], 1u);
  EXPECT_EQ(s.bytes_up, 4u);
  EXPECT_GE(s.bytes_down, 4u);
  EXPECT_EQ(s.active, 0u);
  auto logs = Logs();
  ASSERT_EQ(logs.size(), 1u);
  ASSERT_TRUE(logs[0].destination.has_value());
  EXPECT_EQ(logs[0].destination->port, server.port());
  EXPECT_EQ(logs[0].status, DialStatus::kConnected);
}

TEST_F(DialerTest, PayloadSentWithTheRequestIsKept) {
  EchoServer server;
  ASSERT_TRUE(server.ok()) << server.error();
  StartDialer(LoopbackAllowed());
  Bytes request = egress::EncodeDialRequest(Loopback(server.port()));
  Bytes early = ToBytes("early bytes");
  request.insert(request.end(), early.begin(), early.end());
  Asked asked = Ask(request);
  ASSERT_TRUE(asked.answered);
  EXPECT_EQ(asked.response.status, DialStatus::kConnected);
  EXPECT_EQ(ReadExactly(asked.fd.get(), early.size()), "early bytes");
}

TEST_F(DialerTest, RelaysOverIpv6) {
  EchoServer server("::1");
  if (!server.ok()) {
    GTEST_SKIP() << "no IPv6 loopback here: " << server.error();
  }
  StartDialer(LoopbackAllowed());
  Asked asked = Ask(egress::Endpoint{*egress::ParseIp("::1"), server.port()});
  ASSERT_TRUE(asked.answered);
  EXPECT_EQ(asked.response.status, DialStatus::kConnected) << asked.response.message;
  ASSERT_TRUE(Send(asked.fd.get(), AsBytes("v6")));
  EXPECT_EQ(ReadExactly(asked.fd.get(), 2), "v6");
}

TEST_F(DialerTest, ClosedPortIsConnectionRefused) {
  // A bound socket that does not listen holds the port: connecting to it is refused.
  UniqueFd holder(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  socklen_t len = sizeof(sin);
  ASSERT_EQ(::getsockname(holder.get(), reinterpret_cast<sockaddr*>(&sin), &len), 0);
  StartDialer(LoopbackAllowed());
  Asked asked = Ask(Loopback(ntohs(sin.sin_port)));
  ASSERT_TRUE(asked.answered);
  EXPECT_EQ(asked.response.status, DialStatus::kConnectionRefused) << asked.response.message;
  bool eof = false;
  EXPECT_EQ(ReadToEof(asked.fd.get(), &eof), "");
  EXPECT_TRUE(eof);
  EXPECT_EQ(dialer_->stats().failed, 1u);
}

TEST_F(DialerTest, DeniedPrefixIsRefusedWithoutAnyConnect) {
  EchoServer server;
  ASSERT_TRUE(server.ok()) << server.error();
  StartDialer(EgressDialerOptions{});  // The default deny list: loopback is the host's own.
  for (const egress::Endpoint& to :
       {Loopback(server.port()), egress::Endpoint{egress::V4(127, 9, 9, 9), server.port()},
        egress::Endpoint{*egress::ParseIp("::ffff:127.0.0.1"), server.port()},
        egress::Endpoint{egress::V4(169, 254, 169, 254), 80}}) {
    Asked asked = Ask(to);
    ASSERT_TRUE(asked.answered);
    EXPECT_EQ(asked.response.status, DialStatus::kRefusedByHost) << FormatEndpoint(to);
    EXPECT_NE(asked.response.message.find("denies"), std::string::npos);
  }
  dialer_->Stop();
  // A connection would be in the server's queue by now; give its accept loop a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(server.accepted(), 0);  // The server saw nothing.
  EXPECT_EQ(dialer_->stats().refused, 4u);
}

TEST_F(DialerTest, OperatorPrefixesAreDenied) {
  EchoServer server;
  ASSERT_TRUE(server.ok()) << server.error();
  EgressDialerOptions options = LoopbackAllowed();
  options.deny.push_back(*ParseIpPrefix("127.0.0.0/30"));
  StartDialer(options);
  Asked asked = Ask(Loopback(server.port()));
  ASSERT_TRUE(asked.answered);
  EXPECT_EQ(asked.response.status, DialStatus::kRefusedByHost);
  EXPECT_EQ(asked.response.message, "the host denies 127.0.0.0/30");
  EXPECT_EQ(server.accepted(), 0);
}

TEST_F(DialerTest, MalformedRequestIsAnsweredAndClosed) {
  EchoServer server;
  ASSERT_TRUE(server.ok()) << server.error();
  StartDialer(LoopbackAllowed());
  const std::vector<Bytes> bad = {
      {9, 4, 127, 0, 0, 1, 0, 80},   // Version.
      {1, 5, 127, 0, 0, 1, 0, 80},   // Family.
      {1, 4, 127, 0, 0, 1, 0, 0},    // Port 0.
  };
  for (const Bytes& request : bad) {
    Asked asked = Ask(request);
    ASSERT_TRUE(asked.answered);
    EXPECT_EQ(asked.response.status, DialStatus::kMalformedRequest);
    bool eof = false;
    EXPECT_EQ(ReadToEof(asked.fd.get(), &eof), "");
    EXPECT_TRUE(eof);
  }
  EXPECT_EQ(server.accepted(), 0);
  EXPECT_EQ(dialer_->stats().by_status[static_cast<size_t>(DialStatus::kMalformedRequest)], 3u);
}

TEST_F(DialerTest, IncompleteRequestTimesOut) {
  EgressDialerOptions options = LoopbackAllowed();
  options.request_timeout = std::chrono::milliseconds(100);
  StartDialer(options);
  Asked asked = Ask(Bytes{1, 4, 127});
  ASSERT_TRUE(asked.answered);
  EXPECT_EQ(asked.response.status, DialStatus::kMalformedRequest);
  bool eof = false;
  ReadToEof(asked.fd.get(), &eof);
  EXPECT_TRUE(eof);
}

TEST_F(DialerTest, HalfCloseCrossesAndTheOtherDirectionGoesOn) {
  EchoServer server;
  ASSERT_TRUE(server.ok()) << server.error();
  StartDialer(LoopbackAllowed());
  Asked asked = Ask(Loopback(server.port()));
  ASSERT_EQ(asked.response.status, DialStatus::kConnected);
  ASSERT_TRUE(Send(asked.fd.get(), AsBytes("last words")));
  ASSERT_EQ(::shutdown(asked.fd.get(), SHUT_WR), 0);
  bool eof = false;
  // The server answers only after it saw EOF: so EOF crossed while this side still reads.
  EXPECT_EQ(ReadToEof(asked.fd.get(), &eof), "last words<eof>");
  EXPECT_TRUE(eof);
  EXPECT_EQ(server.eofs(), 1);
  asked.fd = UniqueFd();
  dialer_->Stop();
  auto logs = Logs();
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].ended, "closed");
  EXPECT_EQ(logs[0].bytes_up, 10u);
  EXPECT_EQ(logs[0].bytes_down, 15u);
}

TEST_F(DialerTest, IdleConnectionIsClosed) {
  EchoServer server;
  ASSERT_TRUE(server.ok()) << server.error();
  EgressDialerOptions options = LoopbackAllowed();
  options.idle_timeout = std::chrono::milliseconds(100);
  StartDialer(options);
  Asked asked = Ask(Loopback(server.port()));
  ASSERT_EQ(asked.response.status, DialStatus::kConnected);
  bool eof = false;
  EXPECT_EQ(ReadToEof(asked.fd.get(), &eof), "");
  EXPECT_TRUE(eof);
  asked.fd = UniqueFd();
  dialer_->Stop();
  auto logs = Logs();
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].ended, "idle");
}

TEST_F(DialerTest, ConnectionsOverTheLimitAreRefused) {
  EchoServer server;
  ASSERT_TRUE(server.ok()) << server.error();
  EgressDialerOptions options = LoopbackAllowed();
  options.max_connections = 1;
  StartDialer(options);
  Asked first = Ask(Loopback(server.port()));
  ASSERT_EQ(first.response.status, DialStatus::kConnected);
  Asked second = Ask(Loopback(server.port()));
  ASSERT_TRUE(second.answered);
  EXPECT_EQ(second.response.status, DialStatus::kRefusedByHost);
  EXPECT_EQ(second.response.message, "connection limit");
  // The first one still works (so the server has accepted it), and it is the only one the
  // server saw; once it is gone there is room again.
  ASSERT_TRUE(Send(first.fd.get(), AsBytes("ok")));
  EXPECT_EQ(ReadExactly(first.fd.get(), 2), "ok");
  EXPECT_EQ(server.accepted(), 1);
  ::shutdown(first.fd.get(), SHUT_WR);
  ReadToEof(first.fd.get());
  first.fd = UniqueFd();
  Asked third;
  for (int i = 0; i < 200; ++i) {  // Until the first connection's thread has ended.
    third = Ask(Loopback(server.port()));
    if (third.response.status == DialStatus::kConnected) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(third.response.status, DialStatus::kConnected);
}

TEST_F(DialerTest, StopClosesEveryConnection) {
  EchoServer server;
  ASSERT_TRUE(server.ok()) << server.error();
  StartDialer(LoopbackAllowed());
  Asked a = Ask(Loopback(server.port()));
  Asked b = Ask(Loopback(server.port()));
  ASSERT_EQ(a.response.status, DialStatus::kConnected);
  ASSERT_EQ(b.response.status, DialStatus::kConnected);
  // One more that never sends its request.
  auto idle = net::Connect(dialer_->address());
  ASSERT_TRUE(idle);
  dialer_->Stop();
  for (int fd : {a.fd.get(), b.fd.get(), idle->get()}) {
    bool eof = false;
    ReadToEof(fd, &eof);
    EXPECT_TRUE(eof);
  }
  EXPECT_EQ(dialer_->stats().active, 0u);
  EXPECT_FALSE(net::Connect(dialer_->address()));  // The socket file is gone.
  int stopped = 0;
  for (const EgressConnectionLog& entry : Logs()) {
    stopped += entry.ended == "stopped" ? 1 : 0;
  }
  EXPECT_EQ(stopped, 2);
}

TEST_F(DialerTest, OneMebibyteEachWay) {
  EchoServer server;
  ASSERT_TRUE(server.ok()) << server.error();
  StartDialer(LoopbackAllowed());
  Asked asked = Ask(Loopback(server.port()));
  ASSERT_EQ(asked.response.status, DialStatus::kConnected);
  constexpr size_t kSize = 1 << 20;
  std::string data(kSize, '\0');
  for (size_t i = 0; i < kSize; ++i) {
    data[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
  }
  auto started = std::chrono::steady_clock::now();
  std::thread writer([&] {
    EXPECT_TRUE(Send(asked.fd.get(), AsBytes(data)));
    ::shutdown(asked.fd.get(), SHUT_WR);
  });
  bool eof = false;
  std::string back = ReadToEof(asked.fd.get(), &eof);
  writer.join();
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(eof);
  ASSERT_EQ(back.size(), kSize + 5);
  EXPECT_TRUE(back.compare(0, kSize, data) == 0);
  EXPECT_EQ(back.substr(kSize), "<eof>");
  asked.fd = UniqueFd();
  dialer_->Stop();
  EgressStats s = dialer_->stats();
  EXPECT_EQ(s.bytes_up, kSize);
  EXPECT_EQ(s.bytes_down, kSize + 5);
  std::printf("1 MiB each way through the dialer: %.1f ms\n",
              std::chrono::duration<double, std::milli>(elapsed).count());
}

TEST_F(DialerTest, UnansweredConnectTimesOut) {
  // A listener whose accept queue is full drops further SYNs: the connect hangs until our timeout.
  UniqueFd full(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(full.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  ASSERT_EQ(::listen(full.get(), 0), 0);
  socklen_t len = sizeof(sin);
  ASSERT_EQ(::getsockname(full.get(), reinterpret_cast<sockaddr*>(&sin), &len), 0);
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 2; ++i) {
    fillers.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    (void)::connect(fillers.back().get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // Let the handshakes settle.
  EgressDialerOptions options = LoopbackAllowed();
  options.connect_timeout = std::chrono::milliseconds(300);
  StartDialer(options);
  Asked asked = Ask(Loopback(ntohs(sin.sin_port)));
  ASSERT_TRUE(asked.answered);
  EXPECT_EQ(asked.response.status, DialStatus::kTimedOut) << asked.response.message;
}

TEST_F(DialerTest, LibraryDialWorksAgainstTheDialer) {
  EchoServer server;
  ASSERT_TRUE(server.ok()) << server.error();
  StartDialer(EgressDialerOptions{});
  // Refused by the host (loopback is denied by default): kUnavailable naming the reason.
  auto refused = egress::Dial(dialer_->address(), Loopback(server.port()), std::chrono::seconds(20));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kUnavailable);
  EXPECT_NE(refused.error().message().find("127.0.0.0/8"), std::string::npos)
      << refused.error().message();
  dialer_->Stop();
  EXPECT_EQ(server.accepted(), 0);

  StartDialer(LoopbackAllowed());
  auto fd = egress::Dial(dialer_->address(), Loopback(server.port()), std::chrono::seconds(20));
  ASSERT_TRUE(fd) << fd.error().message();
  ASSERT_TRUE(Send(fd->get(), AsBytes("through")));
  EXPECT_EQ(ReadExactly(fd->get(), 7), "through");
}

TEST(EgressDialerStartTest, RejectsBadOptionsAndAddresses) {
  EgressDialerOptions options;
  options.max_connections = 0;
  net::Address address;
  address.family = net::Family::kUnix;
  address.host = "/nonexistent-dir/egress.sock";
  auto bad = EgressDialer::Start(address, options);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::kInvalidArgument);
  auto unbindable = EgressDialer::Start(address, EgressDialerOptions{});
  ASSERT_FALSE(unbindable);
  EXPECT_EQ(unbindable.error().code(), Code::kIo);
}

}  // namespace
}  // namespace enclavia::host
