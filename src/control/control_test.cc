// SPDX-License-Identifier: Apache-2.0
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/agent_client.h"
#include "control/control.h"
#include "control/store.h"
#include "lib/base/encoding.h"
#include "lib/config/trust_file.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"
#include "lib/eif/test_util.h"
#include "lib/eif/writer.h"
#include "lib/http/http.h"

namespace enclavia::control {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using json = nlohmann::json;
using eif::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kRootPem[] =
    "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Store.

TEST(StoreTest, MigrationsRunOnceAndDataSurvivesReopening) {
  TempDir dir;
  std::string path = dir.File("control.db");
  {
    auto store = Store::Open(path);
    ASSERT_TRUE(store) << store.error().message();
    EXPECT_EQ(*(*store)->SchemaVersion(), Store::LatestVersion());
    EXPECT_GE(Store::LatestVersion(), 1);
    ImageRow image{"ab", "hello", 10, "{}", "p0", "p1", "p2", "", 0};
    ASSERT_TRUE((*store)->PutImage(image));
    EnclaveRow enclave;
    enclave.name = "web";
    enclave.image = "ab";
    enclave.state = "running";
    ASSERT_TRUE((*store)->PutEnclave(enclave));
    EXPECT_EQ(*(*store)->AddEvent("web", "deploy", "x"), 1);
  }
  auto again = Store::Open(path);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*(*again)->SchemaVersion(), Store::LatestVersion());
  auto image = (*again)->GetImage("ab");
  ASSERT_TRUE(image && *image);
  EXPECT_EQ((*image)->name, "hello");
  EXPECT_GT((*image)->created, 0);
  auto enclaves = (*again)->ListEnclaves();
  ASSERT_TRUE(enclaves);
  ASSERT_EQ(enclaves->size(), 1u);
  EXPECT_EQ((*enclaves)[0].state, "running");
  EXPECT_EQ((*again)->Events(0, 10)->size(), 1u);
  EXPECT_EQ(*(*again)->DeleteEnclave("web"), true);
  EXPECT_EQ(*(*again)->DeleteEnclave("web"), false);
  // An enclave must name a known image.
  EnclaveRow orphan;
  orphan.name = "x";
  orphan.image = "unknown";
  EXPECT_FALSE((*again)->PutEnclave(orphan));
}

TEST(StoreTest, RefusesASchemaNewerThanItKnows) {
  TempDir dir;
  std::string path = dir.File("control.db");
  ASSERT_TRUE(Store::Open(path));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string sql =
      "UPDATE schema_version SET version = " + std::to_string(Store::LatestVersion() + 1);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = Store::Open(path);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), Code::kFailedPrecondition);
  EXPECT_THAT(store.error().message(), HasSubstr("newer"));
  EXPECT_EQ(store.error().message().find('\n'), std::string::npos);
}

// FakeAgent serves the host agent API with canned behaviour (the real agent is enclavia-host).
class FakeAgent {
 public:
  explicit FakeAgent(const std::string& host_dir) : work_(asio::make_work_guard(io_)) {
    fs::create_directories(host_dir);
    WriteText(host_dir + "/token", token_ + "\n");
    http::ServerOptions options;
    options.listen = *net::ParseAddress("tcp:127.0.0.1:0");
    options.bearer_token = token_;
    options.public_paths = {"/healthz"};
    options.handler = [this](http::Request request, http::Reply reply) {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request.method + " " + request.target);
      reply(Handle(request));
    };
    server_ = std::move(*http::Server::Create(io_, std::move(options)));
    WriteText(host_dir + "/address", server_->local_address().ToString() + "\n");
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeAgent() { Stop(); }

  void Stop() {
    if (server_) {
      server_->Stop();  // Closes the acceptor on io_; run() returns once nothing is left.
      work_.reset();
      thread_.join();
      server_.reset();
    }
  }

  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  void SetState(const std::string& name, const std::string& state) {
    std::lock_guard<std::mutex> lock(mu_);
    enclaves_[name]["state"] = state;
  }
  json last_launch() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_launch_;
  }

 private:
  static http::Response Json(int status, const json& j) {
    http::Response r;
    r.status = status;
    r.body = j.dump();
    return r;
  }

  http::Response Handle(const http::Request& request) {
    std::string path(request.path());
    if (path == "/healthz") {
      return Json(200, {{"ok", true}, {"enclaves", enclaves_.size()}});
    }
    if (path == "/v1/roots") {
      return Json(200, {{"roots", {kRootPem}}});
    }
    if (path == "/v1/enclaves" && request.method == "POST") {
      json body = json::parse(request.body);
      last_launch_ = body;
      std::string name = body["name"];
      if (enclaves_.contains(name)) {
        return http::JsonError(409, "exists");
      }
      if (!fs::exists(body["eif"].get<std::string>())) {
        return http::JsonError(400, "no eif");
      }
      bool debug = body["debug"];
      std::string pcr(96, debug ? '0' : 'a');
      uint32_t port = next_port_++;
      enclaves_[name] = {{"name", name},
                         {"id", "i-" + name},
                         {"state", "running"},
                         {"url", "ws://127.0.0.1:" + std::to_string(port) + "/"},
                         {"port", port},
                         {"pcrs", {{"0", pcr}, {"1", std::string(96, 'B')}, {"2", std::string(96, 'c')}}},
                         {"debug", debug},
                         {"cpus", 2},
                         {"memory_mib", 256},
                         {"started", 1700000000},
                         {"restarts", 0}};
      return Json(201, enclaves_[name]);
    }
    if (path == "/v1/enclaves" && request.method == "GET") {
      json list = json::array();
      for (auto& [name, e] : enclaves_) {
        list.push_back(e);
      }
      return Json(200, list);
    }
    const std::string prefix = "/v1/enclaves/";
    if (path.rfind(prefix, 0) == 0) {
      std::string rest = path.substr(prefix.size());
      std::string name = rest.substr(0, rest.find('/'));
      std::string action = rest.find('/') == std::string::npos ? "" : rest.substr(rest.find('/') + 1);
      auto it = enclaves_.find(name);
      if (it == enclaves_.end()) {
        return http::JsonError(404, "no enclave " + name);
      }
      if (action.empty() && request.method == "GET") {
        return Json(200, it->second);
      }
      if (action.empty() && request.method == "DELETE") {
        enclaves_.erase(it);
        http::Response r;
        r.status = 204;
        return r;
      }
      if (action == "restart") {
        it->second["restarts"] = it->second["restarts"].get<int>() + 1;
        it->second["state"] = "running";
        return Json(200, it->second);
      }
      if (action == "console") {
        if (!it->second["debug"].get<bool>()) {
          return http::JsonError(409, "not debug");
        }
        http::Response r;
        r.content_type = "text/plain";
        r.body = std::string("hello from the app\n").substr(std::stoul(*request.Query("offset")));
        return r;
      }
    }
    return http::JsonError(404, "no route");
  }

  std::string token_ = "agent-token-0123456789";
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
  std::map<std::string, json> enclaves_;
  json last_launch_;
  uint32_t next_port_ = 40001;
};

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    agent_ = std::make_unique<FakeAgent>(dir_.path() + "/host");
    ControlOptions options;
    options.data_dir = dir_.path();
    auto control = Control::Create(options);
    ASSERT_TRUE(control) << control.error().message();
    control_ = std::move(*control);
  }

  http::Response Call(const std::string& method, const std::string& target,
                      const std::string& body = "", bool auth = true) {
    http::Request request;
    request.method = method;
    request.target = target;
    request.body = body;
    http::ClientOptions options;
    if (auth) {
      options.bearer_token = control_->token();
    }
    auto address = net::ParseAddress(ReadText(dir_.path() + "/control/address").substr(
        0, ReadText(dir_.path() + "/control/address").find('\n')));
    EXPECT_TRUE(address);
    auto response = http::Fetch(*address, request, options);
    EXPECT_TRUE(response) << response.error().message();
    return response ? *response : http::Response{};
  }

  // UploadImage writes a small EIF (optionally with one byte changed after the CRC) and posts it.
  http::Response UploadImage(uint64_t seed, bool corrupt = false) {
    eif::testing::TestImage image;
    image.kernel = eif::testing::Random(3000, seed);
    image.cmdline = "console=ttyS0";
    image.ramdisks.push_back(eif::testing::Random(2000, seed + 1));
    std::string path = dir_.File("image-" + std::to_string(seed) + ".eif");
    auto measured = eif::WriteEif(image.Spec(), path);
    EXPECT_TRUE(measured) << measured.error().message();
    Bytes bytes = eif::testing::ReadAll(path);
    if (corrupt) {
      bytes[bytes.size() - 10] ^= 0x01;
    }
    return Call("POST", "/v1/images?name=hello%20world",
                std::string(bytes.begin(), bytes.end()));
  }

  std::string Deploy(const std::string& name, bool debug = false) {
    auto uploaded = UploadImage(7);
    EXPECT_EQ(uploaded.status, 201) << uploaded.body;
    std::string id = json::parse(uploaded.body)["id"];
    auto deployed = Call("POST", "/v1/enclaves",
                         json{{"name", name}, {"image", id}, {"debug", debug}, {"cpus", 2},
                              {"memory_mib", 256}}
                             .dump());
    EXPECT_EQ(deployed.status, 201) << deployed.body;
    return id;
  }

  std::vector<json> Events() {
    auto r = Call("GET", "/v1/events?after=0");
    std::vector<json> out;
    for (auto& e : json::parse(r.body)) {
      out.push_back(e);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<FakeAgent> agent_;
  std::unique_ptr<Control> control_;
};

TEST_F(ControlTest, CreatesItsFilesAndRequiresTheToken) {
  std::string token_file = dir_.path() + "/control/token";
  struct stat st {};
  ASSERT_EQ(::stat(token_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(control_->token().size(), 64u);
  EXPECT_TRUE(HexDecode(control_->token()));
  EXPECT_EQ(ReadText(token_file), control_->token() + "\n");
  EXPECT_THAT(ReadText(dir_.path() + "/control/address"), HasSubstr("tcp:127.0.0.1:"));
  EXPECT_TRUE(fs::exists(dir_.path() + "/control/control.db"));

  EXPECT_EQ(Call("GET", "/v1/enclaves", "", /*auth=*/false).status, 401);
  EXPECT_EQ(Call("GET", "/v1/images", "", /*auth=*/false).status, 401);
  auto health = Call("GET", "/healthz", "", /*auth=*/false);
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(json::parse(health.body)["hosts"], 1);
  EXPECT_EQ(Call("GET", "/v1/nothing").status, 404);
  EXPECT_EQ(Call("PUT", "/v1/enclaves").status, 405);

  // The token is created once: a second control plane on the same directory reuses it.
  std::string token = control_->token();
  control_.reset();
  EXPECT_FALSE(fs::exists(dir_.path() + "/control/address"));
  ControlOptions options;
  options.data_dir = dir_.path();
  auto again = Control::Create(options);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ((*again)->token(), token);
}

TEST_F(ControlTest, StoresAGoodImageAndRefusesABadOne) {
  auto good = UploadImage(1);
  ASSERT_EQ(good.status, 201) << good.body;
  json image = json::parse(good.body);
  std::string id = image["id"];
  EXPECT_EQ(id.size(), 64u);
  EXPECT_EQ(image["name"], "hello world");
  EXPECT_GT(image["size"].get<uint64_t>(), 5000u);
  EXPECT_EQ(image["describe"]["Measurements"]["PCR0"].get<std::string>().size(), 96u);
  std::string stored = dir_.path() + "/control/images/" + id + ".eif";
  struct stat st {};
  ASSERT_EQ(::stat(stored.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), image["size"].get<uint64_t>());
  // The id is the file's SHA-256.
  Bytes bytes = eif::testing::ReadAll(stored);
  EXPECT_EQ(id, HexEncode(crypto::Sha256(bytes)));

  // The same image again: the same id, still one file.
  auto same = UploadImage(1);
  EXPECT_EQ(same.status, 201);
  EXPECT_EQ(json::parse(same.body)["id"], id);

  auto bad = UploadImage(2, /*corrupt=*/true);
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(json::parse(bad.body)["error"].get<std::string>(), HasSubstr("eif: CRC mismatch"));
  auto garbage = Call("POST", "/v1/images?name=x", "not an eif at all");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_THAT(json::parse(garbage.body)["error"].get<std::string>(), HasSubstr("eif: "));

  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir_.path() + "/control/images")) {
    files.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(files, ::testing::ElementsAre(id + ".eif"));  // No temporary file left.

  auto list = Call("GET", "/v1/images");
  ASSERT_EQ(list.status, 200);
  json images = json::parse(list.body);
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0]["id"], id);
}

TEST_F(ControlTest, DeploysListsRestartsAndRemovesThroughTheAgent) {
  std::string id = Deploy("web");
  json launch = agent_->last_launch();
  EXPECT_EQ(launch["name"], "web");
  EXPECT_EQ(launch["eif"], dir_.path() + "/control/images/" + id + ".eif");
  EXPECT_TRUE(fs::path(launch["eif"].get<std::string>()).is_absolute());
  EXPECT_EQ(launch["cpus"], 2);
  EXPECT_EQ(launch["memory_mib"], 256);
  EXPECT_EQ(launch["port"], 0);

  // A second deploy under the same name is refused; an unknown image is 404; a bad name 400.
  auto twice = Call("POST", "/v1/enclaves", json{{"name", "web"}, {"image", id}}.dump());
  EXPECT_EQ(twice.status, 409);
  auto unknown = Call("POST", "/v1/enclaves",
                      json{{"name", "other"}, {"image", std::string(64, 'f')}}.dump());
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(Call("POST", "/v1/enclaves", json{{"name", "Bad_Name"}, {"image", id}}.dump()).status,
            400);
  EXPECT_EQ(Call("POST", "/v1/enclaves", "{").status, 400);

  auto list = Call("GET", "/v1/enclaves");
  ASSERT_EQ(list.status, 200);
  json enclaves = json::parse(list.body);
  ASSERT_EQ(enclaves.size(), 1u);
  EXPECT_EQ(enclaves[0]["name"], "web");
  EXPECT_EQ(enclaves[0]["image"], id);
  EXPECT_EQ(enclaves[0]["state"], "running");
  EXPECT_EQ(enclaves[0]["url"], "ws://127.0.0.1:40001/");
  EXPECT_EQ(enclaves[0]["pcrs"]["0"], std::string(96, 'a'));
  EXPECT_FALSE(enclaves[0].contains("error"));

  // A state change seen on refresh is recorded.
  agent_->SetState("web", "stopped");
  auto one = Call("GET", "/v1/enclaves/web");
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(json::parse(one.body)["state"], "stopped");
  EXPECT_EQ(Call("GET", "/v1/enclaves/nope").status, 404);

  auto restarted = Call("POST", "/v1/enclaves/web/restart");
  ASSERT_EQ(restarted.status, 200) << restarted.body;
  EXPECT_EQ(json::parse(restarted.body)["restarts"], 1);
  EXPECT_EQ(json::parse(restarted.body)["state"], "running");

  // Logs are for debug enclaves only.
  EXPECT_EQ(Call("GET", "/v1/enclaves/web/logs").status, 409);

  auto removed = Call("DELETE", "/v1/enclaves/web");
  EXPECT_EQ(removed.status, 204);
  EXPECT_EQ(Call("DELETE", "/v1/enclaves/web").status, 404);
  EXPECT_EQ(json::parse(Call("GET", "/v1/enclaves").body).size(), 0u);

  std::vector<std::string> kinds;
  for (const auto& e : Events()) {
    if (e["enclave"] == "web") {
      kinds.push_back(e["kind"]);
    }
  }
  EXPECT_THAT(kinds, ::testing::ElementsAre("deploy", "state", "restart", "state", "remove"));
  auto later = Call("GET", "/v1/events?after=" + std::to_string(Events()[1]["id"].get<int64_t>()));
  EXPECT_EQ(json::parse(later.body).size(), Events().size() - 2);
  EXPECT_EQ(Call("GET", "/v1/events?after=x").status, 400);
}

TEST_F(ControlTest, DebugEnclaveLogsComeFromTheAgentConsole) {
  Deploy("dbg", /*debug=*/true);
  auto logs = Call("GET", "/v1/enclaves/dbg/logs?offset=6");
  ASSERT_EQ(logs.status, 200) << logs.body;
  EXPECT_EQ(logs.body, "from the app\n");
  EXPECT_THAT(logs.content_type, HasSubstr("text/plain"));
}

TEST_F(ControlTest, AnUnreachableAgentGivesStoredRowsAsUnknown) {
  Deploy("web");
  agent_->Stop();
  auto list = Call("GET", "/v1/enclaves");
  ASSERT_EQ(list.status, 200);
  json enclaves = json::parse(list.body);
  ASSERT_EQ(enclaves.size(), 1u);
  EXPECT_EQ(enclaves[0]["name"], "web");
  EXPECT_EQ(enclaves[0]["state"], "unknown");
  EXPECT_EQ(enclaves[0]["url"], "ws://127.0.0.1:40001/");
  EXPECT_THAT(enclaves[0]["error"].get<std::string>(), HasSubstr("cannot reach the host agent"));
  auto one = Call("GET", "/v1/enclaves/web");
  EXPECT_EQ(json::parse(one.body)["state"], "unknown");
  EXPECT_EQ(json::parse(Call("GET", "/healthz").body)["hosts"], 0);
  // Removing needs the agent: the row stays.
  EXPECT_EQ(Call("DELETE", "/v1/enclaves/web").status, 503);
  EXPECT_EQ(json::parse(Call("GET", "/v1/enclaves").body).size(), 1u);
}

TEST_F(ControlTest, TrustFileNamesTheRootAndTheEnclavePcrs) {
  // The simulator's root as `enclavia up` lays it out: the trust file names that path.
  fs::create_directories(dir_.path() + "/nsm");
  WriteText(dir_.path() + "/nsm/root.pem", kRootPem);
  Deploy("web");
  auto trust = Call("GET", "/v1/enclaves/web/trust");
  ASSERT_EQ(trust.status, 200) << trust.body;
  auto parsed = config::ParseTrustFile(trust.body);
  ASSERT_TRUE(parsed) << parsed.error().message() << "\n" << trust.body;
  EXPECT_THAT(parsed->roots, ::testing::ElementsAre(dir_.path() + "/nsm/root.pem"));
  EXPECT_FALSE(parsed->fresh);
  EXPECT_FALSE(parsed->allow_debug);
  EXPECT_EQ(parsed->max_age, std::chrono::hours(1));
  ASSERT_EQ(parsed->accept.size(), 1u);
  const auto& set = parsed->accept[0];
  ASSERT_EQ(set.size(), 3u);
  EXPECT_EQ(HexEncode(set.at(0)), std::string(96, 'a'));
  EXPECT_EQ(HexEncode(set.at(1)), std::string(96, 'b'));  // Lowercased.
  EXPECT_EQ(HexEncode(set.at(2)), std::string(96, 'c'));

  // Without the simulator's file, the root is written under control/roots.
  fs::remove(dir_.path() + "/nsm/root.pem");
  Deploy("dbg", /*debug=*/true);
  auto debug_trust = Call("GET", "/v1/enclaves/dbg/trust");
  ASSERT_EQ(debug_trust.status, 200) << debug_trust.body;
  auto debug_parsed = config::ParseTrustFile(debug_trust.body);
  ASSERT_TRUE(debug_parsed) << debug_parsed.error().message();
  EXPECT_TRUE(debug_parsed->allow_debug);
  ASSERT_EQ(debug_parsed->roots.size(), 1u);
  EXPECT_THAT(debug_parsed->roots[0], HasSubstr(dir_.path() + "/control/roots/"));
  EXPECT_EQ(ReadText(debug_parsed->roots[0]), kRootPem);
  EXPECT_EQ(HexEncode(debug_parsed->accept[0].at(0)), std::string(96, '0'));
  EXPECT_EQ(Call("GET", "/v1/enclaves/none/trust").status, 404);
}

TEST(AgentClientTest, NamesWhatIsMissing) {
  TempDir dir;
  AgentClient client(AgentLocation{dir.File("address"), dir.File("token")});
  auto r = client.List();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_THAT(r.error().message(), HasSubstr(dir.File("address")));
}

}  // namespace
}  // namespace enclavia::control
