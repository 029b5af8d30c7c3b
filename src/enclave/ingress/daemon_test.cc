// SPDX-License-Identifier: Apache-2.0
// The ingress daemon in-process with the NSM simulator: a client reaches a TCP echo app through
// the channel listener, and the attestation service answers audits with verifiable documents.
#include "enclave/ingress/daemon.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <gtest/gtest.h>

#include "host/nsm/simulator.h"
#include "lib/attestation/verifier.h"
#include "lib/channel/audit.h"
#include "lib/channel/trust.h"
#include "lib/crypto/random.h"
#include "lib/tunnel/engine.h"
#include "lib/tunnel/handshake_io.h"

namespace enclavia::enclave {
namespace {

namespace asio = boost::asio;

Bytes Pcr(uint8_t fill) { return Bytes(48, fill); }

SystemTime Now() { return SystemTime(std::chrono::system_clock::now()); }

// EchoServer accepts TCP connections on 127.0.0.1 and echoes each until the peer half-closes.
class EchoServer {
 public:
  EchoServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ENCLAVIA_CHECK(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    ENCLAVIA_CHECK(::listen(fd_, 16) == 0);
    socklen_t len = sizeof(addr);
    ENCLAVIA_CHECK(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~EchoServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) {
        continue;
      }
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        continue;
      }
      char buf[4096];
      ssize_t n;
      while ((n = ::read(c, buf, sizeof(buf))) > 0) {
        ENCLAVIA_CHECK(::write(c, buf, static_cast<size_t>(n)) == n);
      }
      ::close(c);
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Collector is a client stream's sink: it gathers the echo until the enclave side finishes.
class Collector : public tunnel::StreamSink {
 public:
  void OnData(Bytes bytes) override {
    data_.insert(data_.end(), bytes.begin(), bytes.end());
    if (auto engine = engine_.lock()) {
      engine->Consumed(id_, bytes.size());
    }
  }
  void OnFin() override { Done("fin"); }
  void OnReset(mux::ResetCode, std::string_view reason) override {
    Done("reset: " + std::string(reason));
  }
  void OnWritable() override {}
  void OnClosed() override { Done("closed"); }

  std::weak_ptr<tunnel::Engine> engine_;
  mux::StreamId id_ = 0;
  std::promise<std::string> result;  // "fin", "closed" or "reset: …"
  Bytes data_;

 private:
  void Done(const std::string& how) {
    if (!done_) {
      done_ = true;
      result.set_value(how);
    }
  }
  bool done_ = false;
};

int ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ENCLAVIA_CHECK(path.size() < sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.data(), path.size());
  ENCLAVIA_CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

// ReadRecord reads one u16-framed record within `timeout_ms`; nullopt on EOF or timeout.
std::optional<Bytes> ReadRecord(int fd, int timeout_ms = 5000) {
  Bytes buf;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto need = [&](size_t n) {
    while (buf.size() < n) {
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      pollfd p{fd, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, left) <= 0) {
        return false;
      }
      uint8_t chunk[4096];
      ssize_t got = ::read(fd, chunk, std::min(sizeof(chunk), n - buf.size()));
      if (got <= 0) {
        return false;
      }
      buf.insert(buf.end(), chunk, chunk + got);
    }
    return true;
  };
  if (!need(2)) {
    return std::nullopt;
  }
  size_t len = (size_t{buf[0]} << 8) | buf[1];
  if (!need(2 + len)) {
    return std::nullopt;
  }
  return Bytes(buf.begin() + 2, buf.end());
}

void WriteRecord(int fd, ByteSpan body) {
  Bytes record{static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size())};
  record.insert(record.end(), body.begin(), body.end());
  ENCLAVIA_CHECK(::write(fd, record.data(), record.size()) == static_cast<ssize_t>(record.size()));
}

// IsClosed says whether the peer closed `fd` (EOF) within `timeout_ms`.
bool IsClosed(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) {
    return false;
  }
  char c;
  return ::read(fd, &c, 1) <= 0;
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    char tmpl[] = "/tmp/enclavia-ingressd-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto ca = host::SimulatorCa::LoadOrCreate(dir_ + "/ca", [] { return Now(); });
    ASSERT_TRUE(ca) << ca.error().message();
    ca_ = std::make_shared<const host::SimulatorCa>(std::move(ca).value());
  }
  void TearDown() override {
    if (daemon_ != nullptr) {
      daemon_->Stop();
    }
    io_.stop();
    if (io_thread_.joinable()) {
      io_thread_.join();
    }
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Start(DaemonOptions options = {}) {
    host::SimulatorOptions sim;
    sim.boot_pcrs = {{0, Pcr(0xa0)}, {2, Pcr(0xa2)}};
    auto nsm = host::NsmSimulator::Create(ca_, std::move(sim));
    ASSERT_TRUE(nsm) << nsm.error().message();
    options.ingress_listen = *net::ParseAddress("unix:" + dir_ + "/5000.sock");
    options.attestation_listen = *net::ParseAddress("unix:" + dir_ + "/5001.sock");
    options.allowed_ports = {echo_.port()};
    options.log = [this](std::string_view line) {
      std::lock_guard lock(log_mu_);
      log_ += std::string(line) + "\n";
    };
    auto daemon = Daemon::Create(io_, std::shared_ptr<attestation::Nsm>(std::move(*nsm)),
                                 std::move(options));
    ASSERT_TRUE(daemon) << daemon.error().message();
    daemon_ = std::move(*daemon);
    io_thread_ = std::thread([this] { io_.run(); });
  }

  std::shared_ptr<const attestation::Verifier> Verifier() const {
    return std::make_shared<const attestation::Verifier>(
        attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {ca_->root()}).value());
  }

  std::string Log() {
    std::lock_guard lock(log_mu_);
    return log_;
  }

  // Audit sends `request` to the attestation service and returns the decoded response.
  Result<channel::AuditResponse> Audit(ByteSpan request) {
    int fd = ConnectUnix(dir_ + "/5001.sock");
    WriteRecord(fd, request);
    auto record = ReadRecord(fd);
    bool closed = IsClosed(fd, 2000);
    ::close(fd);
    if (!record) {
      return Error(Code::kUnavailable, "no response");
    }
    if (!closed) {
      return Error(Code::kInternal, "the service did not close after answering");
    }
    return channel::DecodeAuditResponse(*record);
  }

  std::string dir_;
  std::shared_ptr<const host::SimulatorCa> ca_;
  EchoServer echo_;
  asio::io_context io_;
  std::thread io_thread_;
  std::unique_ptr<Daemon> daemon_;
  std::mutex log_mu_;
  std::string log_;
};

TEST_F(DaemonTest, AClientReachesTheAppThroughTheIngress) {
  Start();
  auto policy = std::make_shared<channel::TrustPolicy>();
  policy->verifier = Verifier();
  policy->accept = {{{0, Pcr(0xa0)}, {2, Pcr(0xa2)}}};
  policy->freshness = channel::Freshness::kFresh;

  asio::io_context client_io;
  auto strand = asio::make_strand(client_io);
  auto address = net::Resolve(*net::ParseAddress("unix:" + dir_ + "/5000.sock"));
  ASSERT_TRUE(address);
  auto socket = tunnel::OpenSocket(strand, *address);
  ASSERT_TRUE(socket);
  boost::system::error_code ec;
  socket->connect(tunnel::ToEndpoint(*address), ec);
  ASSERT_FALSE(ec) << ec.message();
  auto handshake = channel::ClientHandshake::Create(policy);
  ASSERT_TRUE(handshake);

  auto refused = std::make_shared<Collector>();
  auto echoed = std::make_shared<Collector>();
  std::promise<std::string> established;
  std::shared_ptr<tunnel::Engine> engine;
  tunnel::AsyncClientHandshake(
      strand, std::make_unique<tunnel::RecordStream>(std::move(*socket)), std::move(*handshake),
      std::chrono::seconds(10), [&](Result<tunnel::ClientReady> ready) {
        if (!ready) {
          established.set_value(ready.error().message());
          return;
        }
        // The enclave proved the static key the daemon holds.
        const auto& doc = ready->established.attestation.document();
        EXPECT_EQ(doc.public_key, Bytes(daemon_->static_public_key().begin(),
                                        daemon_->static_public_key().end()));
        engine = tunnel::Engine::Create(strand, std::move(ready->stream),
                                        std::move(ready->established.channel), mux::Side::kClient,
                                        mux::Options{}, {});
        engine->Start();
        auto id = engine->Open(echo_.port(), echoed);
        ASSERT_TRUE(id);
        echoed->engine_ = engine;
        echoed->id_ = *id;
        std::string hello = "hello through the enclave";
        EXPECT_EQ(engine->Write(*id, ToBytes(hello)), hello.size());
        engine->Fin(*id);
        auto other = engine->Open(static_cast<uint16_t>(echo_.port() + 1), refused);
        ASSERT_TRUE(other);
        established.set_value("ok");
      });
  std::thread client_thread([&] { client_io.run(); });
  auto ok = established.get_future();
  ASSERT_EQ(ok.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(ok.get(), "ok");
  auto echo_done = echoed->result.get_future();
  auto refused_done = refused->result.get_future();
  ASSERT_EQ(echo_done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ASSERT_EQ(refused_done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::string how = echo_done.get();
  EXPECT_TRUE(how == "fin" || how == "closed") << how;
  std::string refusal = refused_done.get();
  EXPECT_NE(refusal.find("is not open in this enclave"), std::string::npos) << refusal;
  asio::post(strand, [&] {
    engine->Shutdown("done");
  });
  client_thread.join();
  EXPECT_EQ(AsString(echoed->data_), "hello through the enclave");
  EXPECT_EQ(daemon_->ingress_stats().streams_opened, 1u);
  EXPECT_EQ(daemon_->ingress_stats().streams_refused, 1u);
}

TEST_F(DaemonTest, AttestationServiceReturnsAVerifiableDocumentForTheNonce) {
  Start();
  Bytes nonce(32);
  for (size_t i = 0; i < nonce.size(); ++i) {
    nonce[i] = static_cast<uint8_t>(i * 7 + 1);
  }
  auto response = Audit(channel::EncodeAuditRequest({.nonce = nonce}));
  ASSERT_TRUE(response) << response.error().message();
  ASSERT_EQ(response->error, "");
  EXPECT_TRUE(response->chain.empty());

  Bytes key(daemon_->static_public_key().begin(), daemon_->static_public_key().end());
  attestation::TrustPolicy policy;
  policy.expected_pcrs = {{0, Pcr(0xa0)}, {2, Pcr(0xa2)}};
  policy.expected_nonce = nonce;
  policy.expected_public_key = key;
  auto verified = Verifier()->Verify(response->attestation, Now(), policy);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(verified->document().nonce, nonce);
  EXPECT_EQ(verified->document().public_key, key);

  // Another nonce gives another document; the first one does not pass for it.
  Bytes other = nonce;
  other[0] ^= 1;
  auto second = Audit(channel::EncodeAuditRequest({.nonce = other}));
  ASSERT_TRUE(second) << second.error().message();
  policy.expected_nonce = other;
  EXPECT_TRUE(Verifier()->Verify(second->attestation, Now(), policy));
  EXPECT_FALSE(Verifier()->Verify(response->attestation, Now(), policy));
  EXPECT_EQ(daemon_->attestation_stats().served, 2u);
  EXPECT_NE(Log().find("attestation: served a document"), std::string::npos) << Log();
}

TEST_F(DaemonTest, ABadRequestGetsAnErrorResponse) {
  Start();
  auto garbage = Audit(ToBytes("not cbor at all"));
  ASSERT_TRUE(garbage) << garbage.error().message();
  EXPECT_NE(garbage->error.find("bad request"), std::string::npos) << garbage->error;
  EXPECT_TRUE(garbage->attestation.empty());

  auto long_nonce = Audit(channel::EncodeAuditRequest({.nonce = Bytes(65, 1)}));
  ASSERT_TRUE(long_nonce) << long_nonce.error().message();
  EXPECT_NE(long_nonce->error.find("1 to 64 bytes"), std::string::npos) << long_nonce->error;
  EXPECT_EQ(daemon_->attestation_stats().errors, 2u);
  EXPECT_EQ(daemon_->attestation_stats().served, 0u);
}

TEST_F(DaemonTest, SilentCallersAreTimedOutAndConnectionsAreCapped) {
  DaemonOptions options;
  options.audit_timeout = std::chrono::milliseconds(1500);
  options.max_audit_connections = 2;
  Start(std::move(options));
  int a = ConnectUnix(dir_ + "/5001.sock");
  int b = ConnectUnix(dir_ + "/5001.sock");
  // Both idle connections are accepted before the third (the acceptor takes them in order).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int c = ConnectUnix(dir_ + "/5001.sock");
  EXPECT_TRUE(IsClosed(c, 1000)) << "a third connection over the cap stays open";
  EXPECT_FALSE(IsClosed(a, 100)) << "an idle connection was closed before its timeout";
  EXPECT_TRUE(IsClosed(a, 3000)) << "an idle connection outlived its timeout";
  EXPECT_TRUE(IsClosed(b, 3000));
  ::close(a);
  ::close(b);
  ::close(c);
  EXPECT_EQ(daemon_->attestation_stats().refused, 1u);
  EXPECT_EQ(daemon_->attestation_stats().timed_out, 2u);
  // Once they are gone, the service answers again.
  auto response = Audit(channel::EncodeAuditRequest({.nonce = Bytes(8, 3)}));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->error, "");
}

TEST(DaemonFlagsTest, ParsesAndRejects) {
  auto flags = ParseDaemonFlags({"--config", "/c.toml", "--nsm=/run/nsm", "--listen",
                                 "unix:/x/5000.sock", "--attestation-listen=tcp:127.0.0.1:9"});
  ASSERT_TRUE(flags) << flags.error().message();
  EXPECT_EQ(flags->config_path, "/c.toml");
  EXPECT_EQ(flags->nsm_path, "/run/nsm");
  EXPECT_EQ(flags->ingress_listen->ToString(), "unix:/x/5000.sock");
  EXPECT_EQ(flags->attestation_listen->port, 9u);
  EXPECT_EQ(ParseDaemonFlags({})->nsm_path, "/dev/nsm");
  EXPECT_FALSE(ParseDaemonFlags({"--bogus", "1"}));
  EXPECT_FALSE(ParseDaemonFlags({"--config"}));
  EXPECT_FALSE(ParseDaemonFlags({"--listen=nowhere"}));
}

TEST(DaemonFlagsTest, OptionsFollowTheConfiguration) {
  config::EnclaveConfig config;
  config.app.port = 8080;
  DaemonFlags flags;
  flags.ingress_listen = *net::ParseAddress("unix:/a");
  flags.attestation_listen = *net::ParseAddress("unix:/b");
  auto options = DaemonOptionsFor(config, flags);
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_EQ(options->allowed_ports, std::set<uint16_t>{8080});
  EXPECT_EQ(options->ingress_listen.host, "/a");
  config.app.port = 0;
  EXPECT_TRUE(DaemonOptionsFor(config, flags)->allowed_ports.empty());
}

TEST(DaemonFlagsTest, PinnedControlKeysComeFromTheMeasuredConfiguration) {
  config::EnclaveConfig config;
  config.upgrade.control_keys = {Bytes{0x30, 0x2a}, Bytes{0x30, 0x59}};
  DaemonFlags flags;
  flags.ingress_listen = *net::ParseAddress("unix:/a");
  flags.attestation_listen = *net::ParseAddress("unix:/b");
  flags.upgrade_listen = *net::ParseAddress("unix:/c");
  flags.parent_upgrade = *net::ParseAddress("unix:/d");
  auto options = DaemonOptionsFor(config, flags);
  ASSERT_TRUE(options) << options.error().message();
  ASSERT_TRUE(options->upgrade.has_value());
  EXPECT_EQ(options->upgrade->pinned_control_keys, config.upgrade.control_keys);
  flags.upgrade = false;  // --no-upgrade: no chain, nothing pinned to check.
  EXPECT_FALSE(DaemonOptionsFor(config, flags)->upgrade.has_value());
}

}  // namespace
}  // namespace enclavia::enclave
