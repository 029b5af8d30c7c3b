// SPDX-License-Identifier: Apache-2.0
#include "enclave/egress/nic.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "enclave/egress/tun.h"
#include "lib/egress/dial.h"
#include "lib/net/socket.h"
#include "testing/temp_dir.h"

namespace enclavia::enclave {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// --- ParsePacket (no privileges needed) -------------------------------------------------------

Bytes V4Tcp(uint8_t flags) {
  Bytes p = {0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 2, 15, 203, 0, 113, 7,
             0x9c, 0x40, 0, 80, 0, 0, 0, 42, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0};
  return p;
}

TEST(ParsePacketTest, ReadsAnIpv4Syn) {
  Result<ParsedPacket> parsed = ParsePacket(V4Tcp(kTcpSyn));
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->kind, PacketKind::kTcp);
  EXPECT_EQ(egress::FormatEndpoint(parsed->source), "10.0.2.15:40000");
  EXPECT_EQ(egress::FormatEndpoint(parsed->destination), "203.0.113.7:80");
  EXPECT_EQ(parsed->tcp_flags, kTcpSyn);
  EXPECT_EQ(parsed->tcp_seq, 42u);
}

TEST(ParsePacketTest, FollowsIpv6ExtensionHeadersToUdp) {
  Bytes p = {0x60, 0, 0, 0, 0, 16, 0 /* hop-by-hop */, 64};
  Bytes src(16, 0);
  src[0] = 0xfd;
  src[15] = 0x15;
  Bytes dst(16, 0);
  dst[0] = 0x20;
  dst[1] = 0x01;
  dst[15] = 1;
  p.insert(p.end(), src.begin(), src.end());
  p.insert(p.end(), dst.begin(), dst.end());
  Bytes hop = {17, 0, 0, 0, 0, 0, 0, 0};  // next header UDP, 8 bytes
  Bytes udp = {0x30, 0x39, 0, 53, 0, 8, 0, 0};
  p.insert(p.end(), hop.begin(), hop.end());
  p.insert(p.end(), udp.begin(), udp.end());
  Result<ParsedPacket> parsed = ParsePacket(p);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->kind, PacketKind::kUdp);
  EXPECT_EQ(egress::FormatEndpoint(parsed->destination), "[2001::1]:53");
}

TEST(ParsePacketTest, RejectsTruncatedAndBogusPackets) {
  Bytes syn = V4Tcp(kTcpSyn);
  for (size_t size = 0; size < syn.size(); ++size) {
    EXPECT_FALSE(ParsePacket(ByteSpan(syn.data(), size))) << size;
  }
  Bytes bad_offset = syn;
  bad_offset[32] = 0xf0;  // 60-byte TCP header in a 20-byte segment
  EXPECT_FALSE(ParsePacket(bad_offset));
  Bytes bad_version = syn;
  bad_version[0] = 0x55;
  EXPECT_FALSE(ParsePacket(bad_version));
  Bytes fragment = syn;
  fragment[6] = 0x20;  // more fragments
  Result<ParsedPacket> parsed = ParsePacket(fragment);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->kind, PacketKind::kOther);
}

// --- the NIC in a network namespace ----------------------------------------------------------

bool CanRunNic() { return ::geteuid() == 0 && ::access("/dev/net/tun", R_OK | W_OK) == 0; }

#define SKIP_UNLESS_NIC_CAN_RUN()                                                   \
  if (!CanRunNic()) {                                                                \
    GTEST_SKIP() << "needs root and /dev/net/tun (a TUN device in a network namespace)"; \
  }

// RunIsolated runs `body` in a forked child inside a fresh network namespace (only `lo`, up).
// The child's gtest failures are printed by the child and turn into its exit status.
void RunIsolated(const std::function<void()>& body) {
  std::cout.flush();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", std::strerror(errno));
      ::_exit(3);
    }
    if (Result<void> lo = BringLoopbackUp(); !lo) {
      std::fprintf(stderr, "%s\n", lo.error().message().c_str());
      ::_exit(4);
    }
    body();
    std::cout.flush();
    ::_exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  // A guard against a hung child, not a timing assertion.
  Clock::time_point give_up = Clock::now() + std::chrono::seconds(120);
  int status = 0;
  while (true) {
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      break;
    }
    if (Clock::now() > give_up) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << "the isolated test body hung";
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "isolated test body failed (status " << status << ")";
}

void SetTimeouts(int fd) {
  timeval tv{};
  tv.tv_sec = 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

bool WriteAll(int fd, const uint8_t* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// ReadAll reads until EOF (or an error) and returns the bytes.
Bytes ReadAll(int fd, bool* eof = nullptr) {
  Bytes out;
  std::vector<uint8_t> buffer(256 * 1024);
  while (true) {
    ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      if (eof != nullptr) {
        *eof = n == 0;
      }
      return out;
    }
    out.insert(out.end(), buffer.begin(), buffer.begin() + n);
  }
}

// Server is a TCP server on 127.0.0.1 that runs `handle` on a thread per connection.
class Server {
 public:
  explicit Server(std::function<void(int fd)> handle) : handle_(std::move(handle)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ENCLAVIA_CHECK(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    ENCLAVIA_CHECK(::listen(fd_, 64) == 0);
    socklen_t size = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
    std::thread([this] {
      while (true) {
        int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) {
          return;
        }
        SetTimeouts(client);
        std::thread([this, client] {
          handle_(client);
          ::close(client);
        }).detach();
      }
    }).detach();
  }
  uint16_t port() const { return port_; }

 private:
  std::function<void(int)> handle_;
  int fd_ = -1;
  uint16_t port_ = 0;
};

void Echo(int fd) {
  std::vector<uint8_t> buffer(256 * 1024);
  while (true) {
    ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n <= 0 || !WriteAll(fd, buffer.data(), static_cast<size_t>(n))) {
      break;
    }
  }
  ::shutdown(fd, SHUT_WR);
}

// Drain reads until EOF and returns the byte count (keeps nothing).
size_t Drain(int fd) {
  std::vector<uint8_t> buffer(256 * 1024);
  size_t total = 0;
  while (true) {
    ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return total;
    }
    total += static_cast<size_t>(n);
  }
}

void Sink(int fd) { Drain(fd); }

// TestDialer plays the host's egress dialer on a Unix socket: each request names a destination,
// which `routes` maps to a status and, when connected, a port on 127.0.0.1.
struct Route {
  egress::DialStatus status = egress::DialStatus::kConnected;
  uint16_t port = 0;
};

void Splice(int from, int to) {
  std::vector<uint8_t> buffer(256 * 1024);
  while (true) {
    ssize_t n = ::recv(from, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0 || !WriteAll(to, buffer.data(), static_cast<size_t>(n))) {
      break;
    }
  }
  ::shutdown(to, SHUT_WR);
}

class TestDialer {
 public:
  TestDialer(const std::string& path, std::map<egress::Endpoint, Route> routes)
      : routes_(std::move(routes)) {
    address_ = *net::ParseAddress("unix:" + path);
    Result<sys::UniqueFd> listener = net::ListenOn(address_, 64);
    ENCLAVIA_CHECK(listener.has_value());
    fd_ = std::move(*listener).Release();
    std::thread([this] {
      while (true) {
        int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) {
          return;
        }
        std::thread([this, client] { Serve(client); }).detach();
      }
    }).detach();
  }
  const net::Address& address() const { return address_; }
  int requests() const { return requests_; }

 private:
  void Serve(int client) {
    SetTimeouts(client);
    Bytes received;
    std::optional<egress::Endpoint> to;
    while (!to) {
      uint8_t byte = 0;
      if (::recv(client, &byte, 1, 0) != 1) {
        ::close(client);
        return;
      }
      received.push_back(byte);
      Result<std::optional<egress::Decoded<egress::Endpoint>>> decoded =
          egress::DecodeDialRequest(received);
      if (!decoded) {
        ::close(client);
        return;
      }
      if (decoded->has_value()) {
        to = (*decoded)->value;
      }
    }
    ++requests_;
    Route route{egress::DialStatus::kUnreachable, 0};
    if (auto it = routes_.find(*to); it != routes_.end()) {
      route = it->second;
    }
    int upstream = -1;
    if (route.status == egress::DialStatus::kConnected) {
      upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      address.sin_port = htons(route.port);
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
        route.status = egress::DialStatus::kConnectionRefused;
        ::close(upstream);
        upstream = -1;
      }
    }
    egress::DialResponse response;
    response.status = route.status;
    response.message = route.status == egress::DialStatus::kConnected ? "" : "test dialer says no";
    Bytes encoded = egress::EncodeDialResponse(response);
    WriteAll(client, encoded.data(), encoded.size());
    if (upstream < 0) {
      ::close(client);
      return;
    }
    std::thread up([client, upstream] { Splice(client, upstream); });
    Splice(upstream, client);
    up.join();
    ::close(upstream);
    ::close(client);
  }

  std::map<egress::Endpoint, Route> routes_;
  net::Address address_;
  int fd_ = -1;
  std::atomic<int> requests_{0};
};

egress::Endpoint Ep(std::string_view ip, uint16_t port) {
  return egress::Endpoint{*egress::ParseIp(ip), port};
}

// Connect opens a blocking TCP connection from the app's side; returns the fd or -errno.
int Connect(const egress::Endpoint& to) {
  sockaddr_storage storage{};
  socklen_t size = 0;
  if (to.ip.family == egress::IpFamily::kV4) {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(to.port);
    std::memcpy(&a->sin_addr, to.ip.bytes.data(), 4);
    size = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(to.port);
    std::memcpy(&a->sin6_addr, to.ip.bytes.data(), 16);
    size = sizeof(*a);
  }
  int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  SetTimeouts(fd);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&storage), size) != 0) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  return fd;
}

// Harness: servers, a test dialer and a running NIC, inside the isolated namespace.
class Harness {
 public:
  explicit Harness(const std::string& dir, std::map<egress::Endpoint, Route> routes,
                   std::function<egress::Verdict(const egress::Endpoint&)> decide = nullptr,
                   size_t max_connections = 1024, uint32_t mtu = kTunMtu)
      : dialer_(dir + "/dialer.sock", std::move(routes)) {
    NicOptions options;
    options.decide = decide ? std::move(decide) : [](const egress::Endpoint&) {
      egress::Verdict v;
      v.allowed = true;
      v.rule = "test";
      return v;
    };
    options.dialer = dialer_.address();
    options.max_connections = max_connections;
    options.mtu = mtu;
    options.log = [this](std::string_view line) {
      std::lock_guard lock(mutex_);
      log_.append(line).append("\n");
    };
    Result<std::unique_ptr<Nic>> nic = Nic::Start(std::move(options));
    EXPECT_TRUE(nic) << nic.error().message();
    if (nic) {
      nic_ = std::move(*nic);
    }
  }
  ~Harness() {
    if (nic_) {
      nic_->Stop();
    }
  }
  Nic& nic() { return *nic_; }
  bool ok() const { return nic_ != nullptr; }
  TestDialer& dialer() { return dialer_; }
  std::string log() {
    std::lock_guard lock(mutex_);
    return log_;
  }
  // WaitFor polls `done` until true (or gives up after 20 s, returning false).
  static bool WaitFor(const std::function<bool()>& done) {
    Clock::time_point give_up = Clock::now() + std::chrono::seconds(20);
    while (!done()) {
      if (Clock::now() > give_up) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

 private:
  TestDialer dialer_;
  std::unique_ptr<Nic> nic_;
  std::mutex mutex_;
  std::string log_;
};

Bytes Pattern(size_t size, uint8_t seed) {
  Bytes out(size);
  for (size_t i = 0; i < size; ++i) {
    out[i] = static_cast<uint8_t>((i * 131 + seed) ^ (i >> 9));
  }
  return out;
}

class NicTest : public ::testing::Test {
 protected:
  testing::TempDir dir_{"nic"};
};

TEST_F(NicTest, EchoesBothFamiliesOverSeveralConnectionsAtOnce) {
  SKIP_UNLESS_NIC_CAN_RUN();
  RunIsolated([&] {
    Server echo(Echo);
    Harness h(dir_.path(), {{Ep("203.0.113.7", 80), {egress::DialStatus::kConnected, echo.port()}},
                            {Ep("2001:db8::1", 443), {egress::DialStatus::kConnected, echo.port()}}});
    ASSERT_TRUE(h.ok());
    constexpr size_t kSize = 1 << 20;
    std::vector<egress::Endpoint> targets = {Ep("203.0.113.7", 80), Ep("2001:db8::1", 443),
                                             Ep("203.0.113.7", 80), Ep("2001:db8::1", 443)};
    std::vector<std::thread> threads;
    std::vector<int> results(targets.size(), -1);
    for (size_t i = 0; i < targets.size(); ++i) {
      threads.emplace_back([&, i] {
        int fd = Connect(targets[i]);
        if (fd < 0) {
          results[i] = -fd;
          return;
        }
        Bytes sent = Pattern(kSize, static_cast<uint8_t>(i));
        std::thread writer([&] {
          WriteAll(fd, sent.data(), sent.size());
          ::shutdown(fd, SHUT_WR);
        });
        bool eof = false;
        Bytes back = ReadAll(fd, &eof);
        writer.join();
        ::close(fd);
        results[i] = (eof && back == sent) ? 0 : 1000;
      });
    }
    for (std::thread& t : threads) {
      t.join();
    }
    for (size_t i = 0; i < targets.size(); ++i) {
      EXPECT_EQ(results[i], 0) << egress::FormatEndpoint(targets[i]) << " (errno or 1000 = data)";
    }
    EXPECT_EQ(h.dialer().requests(), 4);
    EXPECT_THAT(h.log(), HasSubstr("allow [2001:db8::1]:443 (rule test)"));
    EXPECT_TRUE(Harness::WaitFor([&] { return h.nic().stats().connections_open == 0; }))
        << "flows left open: " << h.nic().stats().connections_open;
    EXPECT_EQ(h.nic().stats().connections_allowed, 4u);
  });
}

TEST_F(NicTest, DeniedDestinationIsRefusedAtOnceAndNeverDialed) {
  SKIP_UNLESS_NIC_CAN_RUN();
  RunIsolated([&] {
    Harness h(dir_.path(), {}, [](const egress::Endpoint& to) {
      egress::Verdict v;
      v.reason = "no rule matches " + egress::FormatEndpoint(to);
      return v;
    });
    ASSERT_TRUE(h.ok());
    for (const egress::Endpoint& to : {Ep("192.0.2.1", 80), Ep("2001:db8::99", 443)}) {
      Clock::time_point start = Clock::now();
      int fd = Connect(to);
      auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
      EXPECT_EQ(fd, -ECONNREFUSED) << egress::FormatEndpoint(to);
      std::cout << "[ figures  ] denied connect to " << egress::FormatEndpoint(to) << " refused in "
                << elapsed.count() << " us\n";
    }
    EXPECT_THAT(h.log(), HasSubstr("deny 192.0.2.1:80 (no rule matches 192.0.2.1:80)"));
    EXPECT_THAT(h.log(), HasSubstr("deny [2001:db8::99]:443 (no rule matches"));
    EXPECT_EQ(h.dialer().requests(), 0);
    EXPECT_EQ(h.nic().stats().connections_denied, 2u);
  });
}

TEST_F(NicTest, HostRefusalBecomesConnectionRefused) {
  SKIP_UNLESS_NIC_CAN_RUN();
  RunIsolated([&] {
    Harness h(dir_.path(),
              {{Ep("203.0.113.9", 80), {egress::DialStatus::kConnectionRefused, 0}},
               {Ep("2001:db8::9", 80), {egress::DialStatus::kTimedOut, 0}}});
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(Connect(Ep("203.0.113.9", 80)), -ECONNREFUSED);
    EXPECT_EQ(Connect(Ep("2001:db8::9", 80)), -ECONNREFUSED);
    EXPECT_EQ(h.dialer().requests(), 2);
    EXPECT_THAT(h.log(), HasSubstr("dial 203.0.113.9:80 failed (host: connection refused: "
                                   "test dialer says no)"));
    EXPECT_THAT(h.log(), HasSubstr("dial [2001:db8::9]:80 failed (host: timed out"));
    EXPECT_EQ(h.nic().stats().connections_failed, 2u);
  });
}

TEST_F(NicTest, HalfCloseReachesTheServerAndTheReplyStillArrives) {
  SKIP_UNLESS_NIC_CAN_RUN();
  RunIsolated([&] {
    // The server reads to EOF, then answers with the byte count and closes.
    Server counter([](int fd) {
      Bytes all = ReadAll(fd);
      std::string reply = "got " + std::to_string(all.size());
      WriteAll(fd, reinterpret_cast<const uint8_t*>(reply.data()), reply.size());
    });
    Harness h(dir_.path(), {{Ep("203.0.113.7", 25), {egress::DialStatus::kConnected, counter.port()}},
                            {Ep("2001:db8::1", 25), {egress::DialStatus::kConnected, counter.port()}}});
    ASSERT_TRUE(h.ok());
    for (const egress::Endpoint& to : {Ep("203.0.113.7", 25), Ep("2001:db8::1", 25)}) {
      int fd = Connect(to);
      ASSERT_GE(fd, 0) << std::strerror(-fd);
      Bytes data = Pattern(300000, 7);
      ASSERT_TRUE(WriteAll(fd, data.data(), data.size()));
      ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
      bool eof = false;
      Bytes reply = ReadAll(fd, &eof);
      EXPECT_TRUE(eof);
      EXPECT_EQ(AsString(reply), "got 300000");
      ::close(fd);
    }
  });
}

TEST_F(NicTest, ServerCloseGivesTheAppEndOfFile) {
  SKIP_UNLESS_NIC_CAN_RUN();
  RunIsolated([&] {
    Server hello([](int fd) {
      WriteAll(fd, reinterpret_cast<const uint8_t*>("hello\n"), 6);
    });
    Harness h(dir_.path(), {{Ep("203.0.113.7", 80), {egress::DialStatus::kConnected, hello.port()}}});
    ASSERT_TRUE(h.ok());
    int fd = Connect(Ep("203.0.113.7", 80));
    ASSERT_GE(fd, 0) << std::strerror(-fd);
    bool eof = false;
    Bytes got = ReadAll(fd, &eof);
    EXPECT_TRUE(eof);
    EXPECT_EQ(AsString(got), "hello\n");
    ::close(fd);
    EXPECT_TRUE(Harness::WaitFor([&] { return h.nic().stats().connections_open == 0; }));
  });
}

TEST_F(NicTest, UdpIsDroppedAndCounted) {
  SKIP_UNLESS_NIC_CAN_RUN();
  RunIsolated([&] {
    Harness h(dir_.path(), {});
    ASSERT_TRUE(h.ok());
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(53);
    ::inet_pton(AF_INET, "198.51.100.1", &to.sin_addr);
    const char query[] = "not really a DNS query";
    ASSERT_EQ(::sendto(fd, query, sizeof(query), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              static_cast<ssize_t>(sizeof(query)));
    ::close(fd);
    EXPECT_TRUE(Harness::WaitFor([&] { return h.nic().stats().udp_dropped >= 1; }));
    EXPECT_EQ(h.dialer().requests(), 0);
    EXPECT_EQ(h.nic().stats().connections_allowed, 0u);
    // Drops are logged at most once a second, so the line may come a second later.
    EXPECT_TRUE(Harness::WaitFor(
        [&] { return h.log().find("UDP to 198.51.100.1:53") != std::string::npos; }))
        << h.log();
  });
}

TEST_F(NicTest, MaxConnectionsIsEnforced) {
  SKIP_UNLESS_NIC_CAN_RUN();
  RunIsolated([&] {
    Server echo(Echo);
    Harness h(dir_.path(), {{Ep("203.0.113.7", 80), {egress::DialStatus::kConnected, echo.port()}}},
              nullptr, /*max_connections=*/2);
    ASSERT_TRUE(h.ok());
    int a = Connect(Ep("203.0.113.7", 80));
    int b = Connect(Ep("203.0.113.7", 80));
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    EXPECT_EQ(Connect(Ep("203.0.113.7", 80)), -ECONNREFUSED);
    EXPECT_EQ(h.nic().stats().connections_over_limit, 1u);
    EXPECT_THAT(h.log(), HasSubstr("connections open: the limit"));
    // Closing one frees a slot.
    ::close(a);
    ASSERT_TRUE(Harness::WaitFor([&] { return h.nic().stats().connections_open == 1; }));
    int c = Connect(Ep("203.0.113.7", 80));
    EXPECT_GE(c, 0);
    const uint8_t ping[] = {'p', 'i', 'n', 'g'};
    ASSERT_TRUE(WriteAll(c, ping, sizeof(ping)));
    uint8_t pong[4] = {};
    EXPECT_EQ(::recv(c, pong, sizeof(pong), MSG_WAITALL), 4);
    ::close(b);
    ::close(c);
  });
}

// Throughput through the NIC vs a direct loopback connection (reported, not asserted; the
// issue's goal is >= 0.5x direct).
double MegabytesPerSecond(size_t bytes, Clock::duration elapsed) {
  return static_cast<double>(bytes) / 1e6 /
         std::chrono::duration<double>(elapsed).count();
}

double Upload(const egress::Endpoint& to, size_t total) {
  int fd = Connect(to);
  if (fd < 0) {
    return 0;
  }
  Bytes chunk = Pattern(256 * 1024, 1);
  Clock::time_point start = Clock::now();
  for (size_t sent = 0; sent < total; sent += chunk.size()) {
    if (!WriteAll(fd, chunk.data(), chunk.size())) {
      ::close(fd);
      return 0;
    }
  }
  ::shutdown(fd, SHUT_WR);
  char byte;
  ::recv(fd, &byte, 1, 0);  // the sink closes after reading everything
  Clock::duration elapsed = Clock::now() - start;
  ::close(fd);
  return MegabytesPerSecond(total, elapsed);
}

double Download(const egress::Endpoint& to, size_t total) {
  int fd = Connect(to);
  if (fd < 0) {
    return 0;
  }
  Clock::time_point start = Clock::now();
  size_t got = Drain(fd);
  Clock::duration elapsed = Clock::now() - start;
  ::close(fd);
  return got == total ? MegabytesPerSecond(total, elapsed) : 0;
}

TEST_F(NicTest, ReportsThroughputAgainstDirectLoopback) {
  SKIP_UNLESS_NIC_CAN_RUN();
  RunIsolated([&] {
    // 32 MiB each way in `make test`, enough to fill every window many times over; `make bench`
    // runs this test with ENCLAVIA_NIC_THROUGHPUT_MIB=256 for the figures of docs/egress.md.
    size_t mib = 32;
    if (const char* env = std::getenv("ENCLAVIA_NIC_THROUGHPUT_MIB"); env != nullptr) {
      mib = std::strtoul(env, nullptr, 10);
    }
    ASSERT_GT(mib, 0u) << "ENCLAVIA_NIC_THROUGHPUT_MIB must be a number of MiB";
    const size_t total = mib << 20;
    Server sink(Sink);
    Server source([total](int fd) {
      Bytes chunk = Pattern(256 * 1024, 2);
      for (size_t sent = 0; sent < total; sent += chunk.size()) {
        if (!WriteAll(fd, chunk.data(), chunk.size())) {
          return;
        }
      }
    });
    double direct_up = Upload(Ep("127.0.0.1", sink.port()), total);
    double direct_down = Download(Ep("127.0.0.1", source.port()), total);
    std::cout << "[ figures  ] direct loopback: upload " << direct_up << " MB/s, download "
              << direct_down << " MB/s\n";
    // A second NIC after the first stopped also shows that Stop leaves lwIP reusable.
    for (uint32_t mtu : {kTunMtu, 1500u}) {
      testing::TempDir dir("nic");
      Harness h(dir.path(),
                {{Ep("203.0.113.7", 9), {egress::DialStatus::kConnected, sink.port()}},
                 {Ep("203.0.113.7", 19), {egress::DialStatus::kConnected, source.port()}},
                 {Ep("2001:db8::1", 9), {egress::DialStatus::kConnected, sink.port()}}},
                nullptr, 1024, mtu);
      ASSERT_TRUE(h.ok());
      double nic_up = Upload(Ep("203.0.113.7", 9), total);
      double nic_up6 = Upload(Ep("2001:db8::1", 9), total);
      double nic_down = Download(Ep("203.0.113.7", 19), total);
      EXPECT_GT(nic_up, 0);
      EXPECT_GT(nic_up6, 0);
      EXPECT_GT(nic_down, 0);
      // The NIC path also crosses the test dialer's Unix-socket splice, as the host's would.
      std::cout << "[ figures  ] through the NIC, MTU " << mtu << ": upload " << nic_up
                << " MB/s (IPv6 " << nic_up6 << "), download " << nic_down
                << " MB/s; ratio to direct: upload " << (direct_up > 0 ? nic_up / direct_up : 0)
                << ", download " << (direct_down > 0 ? nic_down / direct_down : 0) << "\n";
    }
  });
}

}  // namespace
}  // namespace enclavia::enclave
