// SPDX-License-Identifier: Apache-2.0
// The agent in-process over real sockets. FakeProvider "launches" an enclave stand-in in this
// process: the real enclave daemon (ingress on <vsock-dir>/5000.sock, attestation service on
// 5001.sock, src/enclave/ingress) over an NSM simulator, and a TCP echo app. A unit test may
// wire both sides of the trust boundary together (tests/integration/layering_test.sh).
#include "host/agent/agent.h"

#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "client/channel.h"
#include "enclave/ingress/daemon.h"
#include "host/nsm/simulator.h"
#include "lib/attestation/verifier.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/crypto/random.h"
#include "lib/http/http.h"
#include "lib/egress/dial.h"
#include "lib/net/socket.h"
#include "lib/transport/transport.h"

namespace enclavia::host {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using json = nlohmann::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

Bytes Pcr(uint8_t fill) { return Bytes(48, fill); }

// EchoApp is the enclave's application: a TCP echo server on 127.0.0.1.
class EchoApp {
 public:
  explicit EchoApp(asio::io_context& io)
      : acceptor_(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    Accept();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void Stop() {
    asio::post(acceptor_.get_executor(), [this] {
      error_code ignored;
      acceptor_.close(ignored);
    });
  }

 private:
  struct Conn : std::enable_shared_from_this<Conn> {
    explicit Conn(tcp::socket s) : socket(std::move(s)) {}
    void Read() {
      socket.async_read_some(asio::buffer(buffer),
                             [self = shared_from_this()](error_code ec, size_t n) {
                               if (ec) {
                                 return;
                               }
                               asio::async_write(self->socket, asio::buffer(self->buffer.data(), n),
                                                 [self](error_code write_ec, size_t) {
                                                   if (!write_ec) {
                                                     self->Read();
                                                   }
                                                 });
                             });
    }
    tcp::socket socket;
    std::array<uint8_t, 4096> buffer{};
  };
  void Accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec) {
        return;
      }
      std::make_shared<Conn>(std::move(socket))->Read();
      Accept();
    });
  }
  tcp::acceptor acceptor_;
};

// World is what survives an agent: the running enclave stand-ins, shared by FakeProviders.
class World {
 public:
  World(std::string dir, std::shared_ptr<const SimulatorCa> ca)
      : dir_(std::move(dir)), ca_(std::move(ca)), app_(io_) {
    for (int i = 0; i < 2; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
  }
  ~World() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [name, enclave] : enclaves_) {
        if (enclave.daemon) {
          enclave.daemon->Stop();
        }
      }
    }
    app_.Stop();
    guard_.reset();
    io_.stop();
    for (auto& t : threads_) {
      t.join();
    }
  }

  uint16_t app_port() const { return app_.port(); }

  Result<EnclaveInfo> Launch(const LaunchSpec& spec) {
    if (spec.eif_path.find("bad") != std::string::npos) {
      return Error(Code::kInvalidArgument, "bad image: CRC mismatch");
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (enclaves_.count(spec.name) != 0) {
      return Error(Code::kAlreadyExists, "enclave " + spec.name + " exists");
    }
    Enclave enclave;
    std::string vsock = dir_ + "/enclaves/" + spec.name + "/vsock";
    std::filesystem::create_directories(vsock);
    SimulatorOptions sim;
    sim.boot_pcrs = {{0, Pcr(0xa0)}, {1, Pcr(0xa1)}, {2, Pcr(0xa2)}};
    sim.debug = spec.debug;
    ASSIGN_OR_RETURN(auto nsm, NsmSimulator::Create(ca_, sim));
    enclave::DaemonOptions options;
    options.ingress_listen = *net::ParseAddress("unix:" + vsock + "/5000.sock");
    options.attestation_listen = *net::ParseAddress("unix:" + vsock + "/5001.sock");
    options.allowed_ports = {app_port()};
    ASSIGN_OR_RETURN(
        enclave.daemon,
        enclave::Daemon::Create(io_, std::shared_ptr<attestation::Nsm>(std::move(nsm)), options));
    enclave.info.id = "fake-" + spec.name + "-" + std::to_string(++launches_);
    enclave.info.name = spec.name;
    enclave.info.state = EnclaveState::kRunning;
    enclave.info.endpoint.local_dir = vsock;
    enclave.info.pcrs = {
        {0, HexEncode(Pcr(0xa0))}, {1, HexEncode(Pcr(0xa1))}, {2, HexEncode(Pcr(0xa2))}};
    enclave.info.debug = spec.debug;
    enclave.info.cpus = spec.cpus != 0 ? spec.cpus : 2;
    enclave.info.memory_mib = spec.memory_mib != 0 ? spec.memory_mib : 512;
    enclave.info.started_unix = std::time(nullptr);
    EnclaveInfo info = enclave.info;
    enclaves_.emplace(spec.name, std::move(enclave));
    return info;
  }

  Result<std::vector<EnclaveInfo>> List() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<EnclaveInfo> out;
    for (const auto& [name, enclave] : enclaves_) {
      out.push_back(enclave.info);
    }
    return out;
  }

  Result<EnclaveInfo> Describe(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = enclaves_.find(name);
    if (it == enclaves_.end()) {
      return Error(Code::kNotFound, "no enclave " + name);
    }
    return it->second.info;
  }

  Result<void> Terminate(const std::string& name) {
    std::unique_ptr<enclave::Daemon> daemon;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = enclaves_.find(name);
      if (it == enclaves_.end()) {
        return Error(Code::kNotFound, "no enclave " + name);
      }
      daemon = std::move(it->second.daemon);
      enclaves_.erase(it);
      ++terminations_;
    }
    if (daemon) {
      daemon->Stop();
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_ + "/enclaves/" + name, ignored);
    return Ok();
  }

  Result<std::string> Console(const std::string& name, uint64_t offset) {
    ASSIGN_OR_RETURN(EnclaveInfo info, Describe(name));
    if (!info.debug) {
      return Error(Code::kFailedPrecondition, "enclave " + name + " is not in debug mode");
    }
    std::string text = "booted " + name + "\n";
    return offset >= text.size() ? std::string() : text.substr(offset);
  }

  // Crash stops an enclave's daemon; the provider still lists it, as stopped. Daemon::Stop closes
  // the listeners on their executors, so Crash returns only once both sockets refuse connections.
  void Crash(const std::string& name) {
    std::string vsock;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& enclave = enclaves_.at(name);
      enclave.daemon->Stop();
      enclave.info.state = EnclaveState::kStopped;
      enclave.info.exit_status = 1;
      vsock = enclave.info.endpoint.local_dir;
    }
    for (const char* port : {"/5000.sock", "/5001.sock"}) {
      auto deadline = std::chrono::steady_clock::now() + 10s;
      while (Accepts(vsock + port) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
      }
      ASSERT_FALSE(Accepts(vsock + port)) << vsock << port << " still accepts after Stop";
    }
  }

  static bool Accepts(const std::string& path) {
    asio::io_context io;
    asio::local::stream_protocol::socket socket(io);
    error_code ec;
    socket.connect(asio::local::stream_protocol::endpoint(path), ec);
    return !ec;
  }

  // StaticKey is the running enclave's Noise public key (what its documents must carry).
  Bytes StaticKey(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto& key = enclaves_.at(name).daemon->static_public_key();
    return Bytes(key.begin(), key.end());
  }

  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return enclaves_.size();
  }
  int terminations() {
    std::lock_guard<std::mutex> lock(mu_);
    return terminations_;
  }

 private:
  struct Enclave {
    EnclaveInfo info;
    std::unique_ptr<enclave::Daemon> daemon;
  };
  std::string dir_;
  std::shared_ptr<const SimulatorCa> ca_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{
      io_.get_executor()};
  std::vector<std::thread> threads_;
  EchoApp app_;
  std::mutex mu_;
  std::map<std::string, Enclave> enclaves_;
  int launches_ = 0;
  int terminations_ = 0;
};

class FakeProvider : public Provider {
 public:
  explicit FakeProvider(std::shared_ptr<World> world) : world_(std::move(world)) {}
  Result<EnclaveInfo> Launch(const LaunchSpec& spec) override { return world_->Launch(spec); }
  Result<std::vector<EnclaveInfo>> List() override { return world_->List(); }
  Result<EnclaveInfo> Describe(const std::string& name) override { return world_->Describe(name); }
  Result<void> Terminate(const std::string& name, int) override { return world_->Terminate(name); }
  Result<std::string> Console(const std::string& name, uint64_t offset) override {
    return world_->Console(name, offset);
  }

 private:
  std::shared_ptr<World> world_;
};

struct Reply {
  int status = 0;
  std::string body;
  std::string content_type;
  json Json() const { return json::parse(body, nullptr, false); }
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    std::string templ = (std::filesystem::temp_directory_path() / "enclavia-agent-XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    auto ca = SimulatorCa::LoadOrCreate(
        dir_ + "/nsm", [] { return SystemTime(std::chrono::system_clock::now()); });
    ASSERT_TRUE(ca) << ca.error().message();
    root_.emplace(ca->root());
    world_ = std::make_shared<World>(dir_, std::make_shared<const SimulatorCa>(std::move(*ca)));
  }

  void TearDown() override {
    agent_.reset();
    world_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::unique_ptr<Agent> MakeAgent(bool terminate_on_exit = false) {
    AgentOptions options;
    options.data_dir = dir_ + "/host";
    options.provider = std::make_unique<FakeProvider>(world_);
    options.listen = *net::ParseAddress("tcp:127.0.0.1:0");
    options.roots_pem = {"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"};
    options.terminate_on_exit = terminate_on_exit;
    options.attestation_timeout = 2s;
    // Images named *egress* enable [egress] (a stand-in for reading enclave.toml from the EIF);
    // the tests' destinations are on loopback.
    options.image_egress = [](const std::string& eif) -> Result<bool> {
      return eif.find("egress") != std::string::npos;
    };
    options.egress.deny.clear();
    options.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.emplace_back(line);
    };
    auto agent = Agent::Create(std::move(options));
    EXPECT_TRUE(agent) << agent.error().message();
    return agent ? std::move(*agent) : nullptr;
  }

  void StartAgent() {
    agent_ = MakeAgent();
    ASSERT_NE(agent_, nullptr);
  }

  Reply Call(const std::string& method, const std::string& target, const std::string& body = "",
             std::optional<std::string> token = std::nullopt) {
    http::Request request;
    request.method = method;
    request.target = target;
    request.body = body;
    if (!body.empty()) {
      request.headers["content-type"] = "application/json";
    }
    http::ClientOptions options;
    options.bearer_token = token ? *token : agent_->token();
    auto response = http::Fetch(agent_->api_address(), request, options);
    EXPECT_TRUE(response) << response.error().message();
    if (!response) {
      return {};
    }
    return Reply{response->status, response->body, response->content_type};
  }

  // Public sends a plain GET to an enclave's public port.
  Reply Public(uint16_t port, const std::string& target) {
    http::Request request;
    request.method = "GET";
    request.target = target;
    auto response =
        http::Fetch(*net::ParseAddress("tcp:127.0.0.1:" + std::to_string(port)), request);
    EXPECT_TRUE(response) << response.error().message();
    if (!response) {
      return {};
    }
    return Reply{response->status, response->body, response->content_type};
  }

  json Launch(const std::string& name, bool debug = false, uint16_t port = 0) {
    json body = {{"name", name},      {"eif", "/images/" + name + ".eif"},
                 {"debug", debug},    {"cpus", 2},
                 {"memory_mib", 256}, {"port", port}};
    Reply reply = Call("POST", "/v1/enclaves", body.dump());
    EXPECT_EQ(reply.status, 201) << reply.body;
    return reply.Json();
  }

  channel::TrustPolicy Policy() {
    auto verifier = attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {*root_});
    EXPECT_TRUE(verifier);
    channel::TrustPolicy policy;
    policy.verifier = std::make_shared<const attestation::Verifier>(std::move(*verifier));
    policy.accept = {{{0, Pcr(0xa0)}, {1, Pcr(0xa1)}, {2, Pcr(0xa2)}}};
    return policy;
  }

  // ExpectChannelWorks connects a real client through the relay on `port`, verifies the enclave
  // and echoes a message through a stream to the app.
  void ExpectChannelWorks(uint16_t port) {
    auto channel =
        client::Channel::Connect("ws://127.0.0.1:" + std::to_string(port) + "/", Policy());
    ASSERT_TRUE(channel) << channel.error().message();
    auto stream = (*channel)->OpenStream(world_->app_port());
    ASSERT_TRUE(stream) << stream.error().message();
    std::string text = "hello through the relay";
    ASSERT_TRUE(
        (*stream)->Write(ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
    std::string got;
    std::array<uint8_t, 256> buffer{};
    while (got.size() < text.size()) {
      auto n = (*stream)->Read(buffer);
      ASSERT_TRUE(n) << n.error().message();
      ASSERT_GT(*n, 0u);
      got.append(reinterpret_cast<const char*>(buffer.data()), *n);
    }
    EXPECT_EQ(got, text);
    (*stream)->Close();
    (*channel)->Close();
  }

  // MetricValue finds `series` (name and labels exactly) in a Prometheus text body.
  static std::optional<uint64_t> MetricValue(const std::string& body, const std::string& series) {
    size_t at = body.find("\n" + series + " ");
    if (at == std::string::npos) {
      return std::nullopt;
    }
    return std::stoull(body.substr(at + series.size() + 2));
  }

  std::vector<std::string> Logs() {
    std::lock_guard<std::mutex> lock(log_mu_);
    return log_;
  }

  std::string dir_;
  std::optional<crypto::Certificate> root_;
  std::shared_ptr<World> world_;
  std::unique_ptr<Agent> agent_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(AgentTest, ApiNeedsTheTokenExceptHealthAndMetrics) {
  StartAgent();
  std::string token_path = dir_ + "/host/token";
  auto token = ReadFile(token_path, 1024);
  ASSERT_TRUE(token);
  EXPECT_EQ(std::string(token->begin(), token->end()), agent_->token() + "\n");
  EXPECT_EQ(agent_->token().size(), 64u);
  EXPECT_TRUE(HexDecode(agent_->token()));
  struct stat st {};
  ASSERT_EQ(stat(token_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto address = ReadFile(dir_ + "/host/address", 1024);
  ASSERT_TRUE(address);
  EXPECT_EQ(std::string(address->begin(), address->end()), agent_->api_address().ToString());

  EXPECT_EQ(Call("GET", "/v1/enclaves", "", "").status, 401);
  EXPECT_EQ(Call("GET", "/v1/enclaves", "", std::string(64, '0')).status, 401);
  EXPECT_EQ(Call("POST", "/v1/enclaves", R"({"name":"x","eif":"/x.eif"})", "").status, 401);
  EXPECT_EQ(world_->size(), 0u);
  Reply list = Call("GET", "/v1/enclaves");
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.Json(), json::array());
  Reply health = Call("GET", "/healthz", "", "");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.Json(), json({{"ok", true}, {"enclaves", 0}}));
  EXPECT_EQ(Call("GET", "/metrics", "", "").status, 200);
  Reply roots = Call("GET", "/v1/roots");
  EXPECT_EQ(roots.Json()["roots"].size(), 1u);

  // The token survives a restart of the agent.
  std::string first = agent_->token();
  agent_.reset();
  StartAgent();
  EXPECT_EQ(agent_->token(), first);
}

TEST_F(AgentTest, LaunchedEnclaveIsReachableAndAuditable) {
  StartAgent();
  json enclave = Launch("hello");
  ASSERT_TRUE(enclave.is_object());
  EXPECT_EQ(enclave["name"], "hello");
  EXPECT_EQ(enclave["state"], "running");
  EXPECT_EQ(enclave["restarts"], 0);
  EXPECT_EQ(enclave["memory_mib"], 256);
  EXPECT_EQ(enclave["pcrs"]["0"], HexEncode(Pcr(0xa0)));
  uint16_t port = enclave["port"].get<uint16_t>();
  ASSERT_NE(port, 0);
  EXPECT_EQ(enclave["url"], "ws://127.0.0.1:" + std::to_string(port) + "/");

  ExpectChannelWorks(port);

  // The well-known path: a fresh document with our nonce and the enclave's static key, which
  // verifies against the simulator root.
  Bytes nonce = crypto::RandomBytes(32);
  Reply audit = Public(port, "/.well-known/enclavia/attestation?nonce=" + HexEncode(nonce));
  ASSERT_EQ(audit.status, 200) << audit.body;
  json body = audit.Json();
  ASSERT_TRUE(body["document"].is_string());
  EXPECT_EQ(body["chain"], json::array());
  auto document = Base64Decode(body["document"].get<std::string>());
  ASSERT_TRUE(document);
  auto verifier = attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {*root_});
  ASSERT_TRUE(verifier);
  attestation::TrustPolicy policy;
  policy.expected_nonce = nonce;
  policy.expected_public_key = world_->StaticKey("hello");
  policy.expected_pcrs = {{0, Pcr(0xa0)}};
  auto verified = verifier->Verify(*document, std::chrono::system_clock::now(), policy);
  EXPECT_TRUE(verified) << verified.error().message();
  // Another nonce is not this document's.
  policy.expected_nonce = Bytes(32, 0);
  EXPECT_FALSE(verifier->Verify(*document, std::chrono::system_clock::now(), policy));

  for (const std::string& bad : std::vector<std::string>{"", "?nonce=", "?nonce=zz", "?nonce=abc",
                                                         "?nonce=" + std::string(130, 'a')}) {
    Reply refused = Public(port, "/.well-known/enclavia/attestation" + bad);
    EXPECT_EQ(refused.status, 400) << bad;
    EXPECT_TRUE(refused.Json().contains("error")) << bad;
  }
  EXPECT_EQ(Public(port, "/.well-known/enclavia/attestation?nonce=" + std::string(128, 'b')).status,
            200);
  Reply health = Public(port, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.Json(), json({{"ok", true}}));
  EXPECT_EQ(Public(port, "/other").status, 404);

  Reply metrics = Call("GET", "/metrics", "", "");
  ASSERT_EQ(metrics.status, 200);
  const std::string& text = metrics.body;
  EXPECT_NE(metrics.content_type.find("text/plain"), std::string::npos);
  EXPECT_EQ(MetricValue(text, R"(enclavia_enclaves{state="running"})"), 1u);
  EXPECT_EQ(MetricValue(text, R"(enclavia_enclaves{state="stopped"})"), 0u);
  EXPECT_EQ(MetricValue(text, R"(enclavia_relay_connections_total{enclave="hello"})"), 1u);
  EXPECT_EQ(MetricValue(text, R"(enclavia_relay_handshakes_total{enclave="hello"})"), 1u);
  EXPECT_EQ(MetricValue(text, R"(enclavia_attestation_requests_total{enclave="hello"})"), 2u);
  EXPECT_EQ(MetricValue(text, R"(enclavia_relay_refused_total{enclave="hello"})"), 0u);
  auto up = MetricValue(text, R"(enclavia_relay_bytes_total{enclave="hello",direction="up"})");
  auto down = MetricValue(text, R"(enclavia_relay_bytes_total{enclave="hello",direction="down"})");
  ASSERT_TRUE(up && down);
  EXPECT_GT(*up, 0u);
  EXPECT_GT(*down, 0u);
  EXPECT_TRUE(MetricValue(text, R"(enclavia_relay_connections_active{enclave="hello"})"));
  // Counters move with traffic.
  ExpectChannelWorks(port);
  std::string after = Call("GET", "/metrics", "", "").body;
  EXPECT_EQ(MetricValue(after, R"(enclavia_relay_connections_total{enclave="hello"})"), 2u);
  EXPECT_GT(*MetricValue(after, R"(enclavia_relay_bytes_total{enclave="hello",direction="up"})"),
            *up);
  // The log is JSON lines naming the event and the enclave, never the token.
  bool launched = false;
  for (const std::string& line : Logs()) {
    json entry = json::parse(line, nullptr, false);
    ASSERT_TRUE(entry.is_object()) << line;
    EXPECT_TRUE(entry.contains("time") && entry.contains("level") && entry.contains("event"));
    EXPECT_EQ(line.find(agent_->token()), std::string::npos);
    launched |= entry["event"] == "enclave_launched" && entry["enclave"] == "hello";
  }
  EXPECT_TRUE(launched);
}

TEST_F(AgentTest, AttestationFailsWith502WhenTheEnclaveCannotAnswer) {
  StartAgent();
  uint16_t port = Launch("gone")["port"].get<uint16_t>();
  world_->Crash("gone");
  Reply audit = Public(port, "/.well-known/enclavia/attestation?nonce=0011");
  EXPECT_EQ(audit.status, 502) << audit.body;
  EXPECT_TRUE(audit.Json().contains("error"));
  EXPECT_EQ(Public(port, "/healthz").status, 503);
  Reply info = Call("GET", "/v1/enclaves/gone");
  EXPECT_EQ(info.Json()["state"], "stopped");
  std::string metrics = Call("GET", "/metrics").body;
  EXPECT_EQ(MetricValue(metrics, R"(enclavia_enclaves{state="stopped"})"), 1u);
}

TEST_F(AgentTest, RejectsBadRequestsAndLaunchesNothing) {
  StartAgent();
  EXPECT_EQ(Call("POST", "/v1/enclaves", "not json").status, 400);
  EXPECT_EQ(Call("POST", "/v1/enclaves", R"({"name":"Bad_Name","eif":"/a.eif"})").status, 400);
  EXPECT_EQ(Call("POST", "/v1/enclaves", R"({"name":"a","eif":"relative.eif"})").status, 400);
  EXPECT_EQ(Call("POST", "/v1/enclaves", R"({"name":"a","eif":"/a.eif","cpus":"2"})").status, 400);
  EXPECT_EQ(Call("POST", "/v1/enclaves", R"({"name":"a","eif":"/a.eif","extra":1})").status, 400);
  Reply bad_image = Call("POST", "/v1/enclaves", R"({"name":"a","eif":"/bad.eif"})");
  EXPECT_EQ(bad_image.status, 400);
  EXPECT_EQ(bad_image.Json()["error"], "bad image: CRC mismatch");
  EXPECT_EQ(world_->size(), 0u);
  Launch("a");
  EXPECT_EQ(Call("POST", "/v1/enclaves", R"({"name":"a","eif":"/a.eif"})").status, 409);
  EXPECT_EQ(Call("GET", "/v1/enclaves/nope").status, 404);
  EXPECT_EQ(Call("DELETE", "/v1/enclaves/nope").status, 404);
  EXPECT_EQ(Call("PUT", "/v1/enclaves/a").status, 405);
  EXPECT_EQ(Call("GET", "/v1/elsewhere").status, 404);
  // The console is for debug enclaves only.
  EXPECT_EQ(Call("GET", "/v1/enclaves/a/console").status, 409);
  Launch("dbg", /*debug=*/true);
  Reply console = Call("GET", "/v1/enclaves/dbg/console?offset=7");
  EXPECT_EQ(console.status, 200);
  EXPECT_EQ(console.body, "dbg\n");
  EXPECT_EQ(Call("GET", "/v1/enclaves/dbg/console?offset=x").status, 400);
  EXPECT_EQ(world_->size(), 2u);
}

TEST_F(AgentTest, AChosenPortIsUsedAndATakenOneRefused) {
  StartAgent();
  uint16_t port = 0;
  {
    asio::io_context io;
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    port = probe.local_endpoint().port();
  }
  json enclave = Launch("fixed", false, port);
  EXPECT_EQ(enclave["port"], port);
  ExpectChannelWorks(port);
  Reply taken = Call("POST", "/v1/enclaves",
                     json({{"name", "other"}, {"eif", "/o.eif"}, {"port", port}}).dump());
  EXPECT_EQ(taken.status, 409);
  EXPECT_EQ(world_->size(), 1u);
}

TEST_F(AgentTest, RestartKeepsThePortAndDeleteForgets) {
  StartAgent();
  json first = Launch("app");
  uint16_t port = first["port"].get<uint16_t>();
  ExpectChannelWorks(port);
  Reply restarted = Call("POST", "/v1/enclaves/app/restart");
  ASSERT_EQ(restarted.status, 200) << restarted.body;
  json second = restarted.Json();
  EXPECT_EQ(second["port"], port);
  EXPECT_EQ(second["restarts"], 1);
  EXPECT_EQ(second["state"], "running");
  EXPECT_NE(second["id"], first["id"]);
  EXPECT_EQ(world_->terminations(), 1);
  ExpectChannelWorks(port);
  // Counters carry over the restart.
  std::string metrics = Call("GET", "/metrics").body;
  EXPECT_EQ(MetricValue(metrics, R"(enclavia_relay_connections_total{enclave="app"})"), 2u);

  Reply deleted = Call("DELETE", "/v1/enclaves/app");
  EXPECT_EQ(deleted.status, 204);
  EXPECT_EQ(world_->size(), 0u);
  EXPECT_EQ(Call("GET", "/v1/enclaves/app").status, 404);
  EXPECT_EQ(Call("GET", "/v1/enclaves").Json(), json::array());
  auto state = ReadFile(dir_ + "/host/agent-state.json", 1 << 20);
  ASSERT_TRUE(state);
  EXPECT_EQ(json::parse(state->begin(), state->end())["enclaves"], json::array());
  // Nothing listens on the port any more.
  http::Request request;
  request.method = "GET";
  request.target = "/healthz";
  http::ClientOptions quick;
  quick.timeout = 2s;
  auto gone =
      http::Fetch(*net::ParseAddress("tcp:127.0.0.1:" + std::to_string(port)), request, quick);
  EXPECT_FALSE(gone);
}

TEST_F(AgentTest, ANewAgentReattachesToEnclavesThatKeptRunning) {
  StartAgent();
  uint16_t alive_port = Launch("alive")["port"].get<uint16_t>();
  uint16_t dead_port = Launch("dead")["port"].get<uint16_t>();
  ExpectChannelWorks(alive_port);
  std::string token = agent_->token();
  agent_.reset();  // As after kill -9: the enclaves keep running.
  EXPECT_EQ(world_->size(), 2u);
  world_->Crash("dead");  // Meanwhile one of them stops.

  StartAgent();
  EXPECT_EQ(agent_->token(), token);
  Reply list = Call("GET", "/v1/enclaves");
  ASSERT_EQ(list.status, 200);
  json enclaves = list.Json();
  ASSERT_EQ(enclaves.size(), 2u);
  EXPECT_EQ(enclaves[0]["name"], "alive");
  EXPECT_EQ(enclaves[0]["state"], "running");
  EXPECT_EQ(enclaves[0]["port"], alive_port);
  EXPECT_EQ(enclaves[1]["name"], "dead");
  EXPECT_EQ(enclaves[1]["state"], "stopped");
  EXPECT_EQ(enclaves[1]["port"], dead_port);
  ExpectChannelWorks(alive_port);
  Bytes nonce(8, 7);
  EXPECT_EQ(
      Public(alive_port, "/.well-known/enclavia/attestation?nonce=" + HexEncode(nonce)).status,
      200);
  // The stopped one comes back on its port with a restart.
  Reply restarted = Call("POST", "/v1/enclaves/dead/restart");
  ASSERT_EQ(restarted.status, 200) << restarted.body;
  EXPECT_EQ(restarted.Json()["port"], dead_port);
  ExpectChannelWorks(dead_port);
  bool reattached = false;
  for (const std::string& line : Logs()) {
    reattached |= line.find("\"enclave_reattached\"") != std::string::npos;
  }
  EXPECT_TRUE(reattached);
}

TEST_F(AgentTest, CorruptStateFileStopsTheAgentWithAClearError) {
  std::filesystem::create_directories(dir_ + "/host");
  std::string junk = "{not json";
  ASSERT_TRUE(
      WriteFileAtomic(dir_ + "/host/agent-state.json",
                      ByteSpan(reinterpret_cast<const uint8_t*>(junk.data()), junk.size())));
  AgentOptions options;
  options.data_dir = dir_ + "/host";
  options.provider = std::make_unique<FakeProvider>(world_);
  options.log = [](std::string_view) {};
  auto agent = Agent::Create(std::move(options));
  ASSERT_FALSE(agent);
  EXPECT_NE(agent.error().message().find("agent-state.json is corrupt"), std::string::npos);
}

TEST_F(AgentTest, TerminateOnExitTerminatesEveryEnclave) {
  agent_ = MakeAgent(/*terminate_on_exit=*/true);
  ASSERT_NE(agent_, nullptr);
  Launch("one");
  Launch("two");
  EXPECT_EQ(world_->size(), 2u);
  agent_->Stop();
  EXPECT_EQ(world_->size(), 0u);
  EXPECT_EQ(world_->terminations(), 2);
}

// EgressPort is where the agent serves enclave NAME's egress dialer (the fake provider's vsock
// directory, as for the local provider).
net::Address EgressPort(const std::string& dir, const std::string& name) {
  transport::Endpoint endpoint;
  endpoint.local_dir = dir + "/enclaves/" + name + "/vsock";
  return transport::HostListenForEnclave(endpoint, transport::kEgressPort);
}

// EchoOnce dials `to` through the dialer at `dialer` and echoes a word; the error otherwise.
Result<std::string> EchoOnce(const net::Address& dialer, const egress::Endpoint& to) {
  ASSIGN_OR_RETURN(sys::UniqueFd fd, egress::Dial(dialer, to, 10s));
  RETURN_IF_ERROR(sys::WriteFull(fd.get(), ToBytes(std::string_view("out"))));
  std::array<uint8_t, 3> back{};
  RETURN_IF_ERROR(sys::ReadFull(fd.get(), back));
  return std::string(back.begin(), back.end());
}

TEST_F(AgentTest, EgressDialerServesEnclavesWhoseImageEnablesIt) {
  // A real TCP echo server on loopback: the destination.
  auto listener = net::ListenOn(*net::ParseAddress("tcp:127.0.0.1:0"));
  ASSERT_TRUE(listener) << listener.error().message();
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  ASSERT_EQ(::getsockname(listener->get(), reinterpret_cast<sockaddr*>(&bound), &len), 0);
  egress::Endpoint to{egress::V4(127, 0, 0, 1), ntohs(bound.sin_port)};
  std::atomic<bool> done{false};
  std::thread server([&] {
    while (!done) {
      sys::UniqueFd conn(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn.valid()) {
        return;
      }
      std::array<uint8_t, 3> word{};
      if (sys::ReadFull(conn.get(), word)) {
        (void)sys::WriteFull(conn.get(), word);
      }
    }
  });

  StartAgent();
  Launch("egress-app");
  Launch("plain");
  auto echoed = EchoOnce(EgressPort(dir_, "egress-app"), to);
  ASSERT_TRUE(echoed) << echoed.error().message();
  EXPECT_EQ(*echoed, "out");
  EXPECT_FALSE(EchoOnce(EgressPort(dir_, "plain"), to));  // No [egress]: no dialer at all.

  Reply inspect = Call("GET", "/v1/enclaves/egress-app");
  ASSERT_EQ(inspect.status, 200);
  EXPECT_EQ(inspect.Json()["egress"]["connections"], 1);
  EXPECT_TRUE(Call("GET", "/v1/enclaves/plain").Json()["egress"].is_null());
  std::string metrics = Call("GET", "/metrics").body;
  EXPECT_EQ(MetricValue(metrics, R"(enclavia_egress_connections_total{enclave="egress-app",status="connected"})"),
            1u);
  EXPECT_EQ(MetricValue(metrics, R"(enclavia_egress_bytes_total{enclave="egress-app",direction="up"})"),
            3u);
  EXPECT_FALSE(MetricValue(metrics, R"(enclavia_egress_active{enclave="plain"})").has_value());
  // The dialer logs a connection once both of its sides have closed, which may be a moment after
  // the echo returned: wait for the line rather than race it.
  bool logged = false;
  std::vector<std::string> lines = Logs();
  for (auto deadline = std::chrono::steady_clock::now() + 10s;
       std::chrono::steady_clock::now() < deadline; lines = Logs()) {
    if (std::any_of(lines.begin(), lines.end(), [](const std::string& line) {
          return line.find("\"egress_connection\"") != std::string::npos;
        })) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  for (const std::string& line : lines) {
    json entry = json::parse(line, nullptr, false);
    if (entry.is_object() && entry.value("event", "") == "egress_connection") {
      logged = true;
      EXPECT_EQ(entry["enclave"], "egress-app");
      EXPECT_EQ(entry["fields"]["destination"], egress::FormatEndpoint(to));
      EXPECT_EQ(entry["fields"]["status"], "connected");
    }
  }
  EXPECT_TRUE(logged);

  // A new agent re-attaches to the running enclave and serves its egress port again.
  agent_.reset();
  EXPECT_FALSE(EchoOnce(EgressPort(dir_, "egress-app"), to));
  StartAgent();
  echoed = EchoOnce(EgressPort(dir_, "egress-app"), to);
  ASSERT_TRUE(echoed) << echoed.error().message();

  // Deleting the enclave stops its dialer.
  EXPECT_EQ(Call("DELETE", "/v1/enclaves/egress-app").status, 204);
  EXPECT_FALSE(EchoOnce(EgressPort(dir_, "egress-app"), to));

  done = true;
  ::shutdown(listener->get(), SHUT_RDWR);
  server.join();
}

}  // namespace
}  // namespace enclavia::host
