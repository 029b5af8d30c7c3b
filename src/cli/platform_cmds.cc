// SPDX-License-Identifier: Apache-2.0
#include "cli/platform_cmds.h"
#include "cli/upgrade_cmds.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/blockstore/format.h"
#include "lib/builder/witness.h"
#include "lib/crypto/keys.h"
#include "lib/config/names.h"
#include "lib/transport/transport.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/crypto/hash.h"
#include "lib/http/http.h"
#include "lib/http/token.h"
#include "lib/net/address.h"

namespace enclavia::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr auto kStartTimeout = std::chrono::seconds(20);
constexpr auto kStopTimeout = std::chrono::seconds(15);

std::string DataDir(const std::string& flag) { return flag.empty() ? DefaultDataDir() : flag; }

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

// ReadSmall reads a small text file (an address, a token, a pid), trimmed; "" if absent.
std::string ReadSmall(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    return "";
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return Trim(ss.str());
}

// Api is one of the local JSON APIs (the control plane or the host agent).
struct Api {
  std::string what;  // "the control plane", for messages
  net::Address address;
  std::string token;
};

Result<Api> FindApi(const std::string& data_dir, const std::string& sub, const std::string& what) {
  fs::path dir = fs::path(data_dir) / sub;
  std::string address_text = ReadSmall(dir / "address");
  if (address_text.empty()) {
    return Error(Code::kUnavailable, what + " is not running (no " + (dir / "address").string() +
                                         "): run `enclavia up -d" +
                                         (data_dir == DefaultDataDir() ? "" : " --data-dir " + data_dir) +
                                         "`");
  }
  auto address = net::ParseAddress(address_text);
  if (!address) {
    return Error(Code::kMalformed, (dir / "address").string() + ": " + address.error().message());
  }
  std::string token = ReadSmall(dir / "token");
  if (token.empty()) {
    return Error(Code::kFailedPrecondition,
                 "cannot read " + (dir / "token").string() + ": run enclavia as the user that ran `enclavia up`");
  }
  return Api{what, *address, token};
}

Result<Api> FindControl(const std::string& data_dir) {
  return FindApi(data_dir, "control", "the control plane");
}

// Send sends one request; a 4xx/5xx becomes an error carrying the server's one-line message.
Result<http::Response> Send(const Api& api, const http::Request& request,
                            std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  http::ClientOptions options;
  options.bearer_token = api.token;
  options.timeout = timeout;
  auto response = http::Fetch(api.address, request, options);
  if (!response) {
    if (response.error().code() == Code::kUnavailable) {
      return Error(Code::kUnavailable, "cannot reach " + api.what + " at " +
                                           api.address.ToString() +
                                           ": run `enclavia up -d` (or check its log)");
    }
    return response.error();
  }
  if (response->status >= 400) {
    std::string message = response->body;
    try {
      auto j = json::parse(response->body);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) {
        message = j["error"].get<std::string>();
      }
    } catch (const json::exception&) {
    }
    Code code = response->status == 404 ? Code::kNotFound
                : response->status == 409 ? Code::kFailedPrecondition
                : response->status == 400 ? Code::kInvalidArgument
                                          : Code::kUnavailable;
    return Error(code, Trim(message));
  }
  return response;
}

Result<http::Response> Call(const Api& api, const std::string& method, const std::string& target,
                            std::string body = "") {
  http::Request request;
  request.method = method;
  request.target = target;
  request.body = std::move(body);
  if (!request.body.empty()) {
    request.headers["content-type"] = "application/json";
  }
  return Send(api, request);
}

Result<json> CallJson(const Api& api, const std::string& method, const std::string& target,
                      std::string body = "") {
  ASSIGN_OR_RETURN(http::Response response, Call(api, method, target, std::move(body)));
  if (response.status == 204 || response.body.empty()) {
    return json();
  }
  try {
    return json::parse(response.body);
  } catch (const json::exception&) {
    return Error(Code::kMalformed, api.what + " sent a reply that is not JSON");
  }
}

int Fail(std::ostream& err, std::string_view command, const Error& error) {
  err << "enclavia " << command << ": " << error.message() << "\n";
  return 1;
}


std::string BinDir() {
  if (const char* env = std::getenv("ENCLAVIA_BIN_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

// Alive says whether `pid` runs a program whose name starts with "enclavia".
bool Alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) {
    return false;
  }
  // /proc/PID/stat: "PID (comm) STATE …"; a zombie (Z) or dead (X) process has stopped, even
  // if nobody reaped it yet (daemons are re-parented to PID 1, which may not reap).
  std::string stat = ReadSmall("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] == 'Z' ||
      stat[paren + 2] == 'X') {
    return false;
  }
  std::string comm = ReadSmall("/proc/" + std::to_string(pid) + "/comm");
  return comm.rfind("enclavia", 0) == 0;
}

pid_t ReadPid(const fs::path& file) {
  std::string text = ReadSmall(file);
  return text.empty() ? 0 : static_cast<pid_t>(std::strtol(text.c_str(), nullptr, 10));
}

// Spawn starts `argv` detached (own session), stdin from /dev/null, output appended to `log`.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const fs::path& log) {
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    return Error(Code::kIo, "cannot open " + log.string() + ": " + std::strerror(errno));
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return Error(Code::kIo, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "enclavia up: exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(log_fd);
  return pid;
}

// LastLine is the last non-empty line of a log file, for error messages.
std::string LastLine(const fs::path& log) {
  std::ifstream in(log);
  std::string line;
  std::string last;
  while (std::getline(in, line)) {
    if (!Trim(line).empty()) {
      last = Trim(line);
    }
  }
  return last;
}

// WaitHealthy waits until `sub`/address exists and GET /healthz answers 200, or the process ends.
Result<Api> WaitHealthy(const std::string& data_dir, const std::string& sub,
                        const std::string& what, pid_t pid, const fs::path& log) {
  auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      std::string last = LastLine(log);
      return Error(Code::kUnavailable, what + " exited at start" +
                                           (last.empty() ? "" : ": " + last) + " (log: " +
                                           log.string() + ")");
    }
    auto api = FindApi(data_dir, sub, what);
    if (api) {
      http::Request request;
      request.method = "GET";
      request.target = "/healthz";
      http::ClientOptions options;
      options.timeout = std::chrono::seconds(2);
      auto response = http::Fetch(api->address, request, options);
      if (response && response->status == 200) {
        return api;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Error(Code::kUnavailable,
               what + " did not become healthy within 20 s (log: " + log.string() + ")");
}

// Stop sends SIGTERM to the daemon in `pid_file`, waits, then SIGKILL; removes its files.
void StopDaemon(const fs::path& dir, std::ostream& err) {
  pid_t pid = ReadPid(dir / "pid");
  if (Alive(pid)) {
    ::kill(pid, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
    while (Alive(pid) && std::chrono::steady_clock::now() < deadline) {
      ::waitpid(pid, nullptr, WNOHANG);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (Alive(pid)) {
      err << "enclavia down: " << dir.filename().string() << " (pid " << pid
          << ") did not stop within 15 s; killed\n";
      ::kill(pid, SIGKILL);
    }
  }
  std::error_code ec;
  fs::remove(dir / "pid", ec);
  fs::remove(dir / "address", ec);
}

std::string Short(const std::string& hex) { return hex.size() > 16 ? hex.substr(0, 16) + "…" : hex; }

std::string PcrText(const json& enclave, const std::string& index) {
  if (enclave.contains("pcrs") && enclave["pcrs"].is_object() && enclave["pcrs"].contains(index) &&
      enclave["pcrs"][index].is_string()) {
    return enclave["pcrs"][index].get<std::string>();
  }
  return "";
}

std::string Str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

void PrintEnclave(const json& enclave, std::ostream& out) {
  out << "name:   " << Str(enclave, "name") << "\n";
  out << "state:  " << Str(enclave, "state") << "\n";
  out << "url:    " << Str(enclave, "url") << "\n";
  if (enclave.value("debug", false)) {
    out << "debug:  yes (PCRs attest as zero; the console is open)\n";
  }
  for (const char* index : {"0", "1", "2", "8"}) {
    std::string value = PcrText(enclave, index);
    if (!value.empty()) {
      out << "PCR" << index << ":   " << value << "\n";
    }
  }
}

// WaitReachable polls the enclave's relay /healthz until its ingress answers.
// WaitReachable polls the relay's /healthz for up to 30 s; `stopped` (checked twice a second)
// ends the wait early when the enclave is known to have stopped.
bool WaitReachable(const std::string& url, const std::function<bool()>& stopped = nullptr) {
  // ws://HOST:PORT/ → tcp:HOST:PORT
  std::string rest = url.substr(url.find("//") + 2);
  std::string hostport = rest.substr(0, rest.find('/'));
  auto address = net::ParseAddress("tcp:" + hostport);
  if (!address) {
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto next_check = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (std::chrono::steady_clock::now() < deadline) {
    if (stopped && std::chrono::steady_clock::now() >= next_check) {
      if (stopped()) {
        return false;
      }
      next_check = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    }
    http::Request request;
    request.method = "GET";
    request.target = "/healthz";
    http::ClientOptions options;
    options.timeout = std::chrono::seconds(2);
    auto response = http::Fetch(*address, request, options);
    if (response && response->status == 200) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// WaitServing waits until enclave NAME answers at `url`. When it stops instead (a volume it
// refuses to mount, an app that exits), the error says why, from the volume's report or the
// exit status.
Result<void> WaitServing(const Api& control, const std::string& name, const std::string& url) {
  json last;
  bool reachable = WaitReachable(url, [&] {
    auto view = CallJson(control, "GET", "/v1/enclaves/" + name);
    if (!view) {
      return false;
    }
    last = std::move(*view);
    return Str(last, "state") == "stopped";
  });
  if (reachable) {
    return Ok();
  }
  if (Str(last, "state") == "stopped") {
    const json* storage = last.contains("storage") && last["storage"].is_object()
                              ? &last["storage"]
                              : nullptr;
    if (storage != nullptr && storage->contains("status") && (*storage)["status"].is_object() &&
        (*storage)["status"].contains("error")) {
      return Error(Code::kFailedPrecondition,
                   name + " stopped: " + (*storage)["status"]["error"].get<std::string>());
    }
    return Error(Code::kFailedPrecondition, name + " stopped (see `enclavia inspect " + name + "`)");
  }
  return Error(Code::kUnavailable, name + " did not answer within 30 s; see `enclavia inspect " +
                                       name + "`");
}

}  // namespace

std::string DefaultDataDir() { return http::DefaultDataDir(); }

int RunUp(const UpFlags& flags, std::ostream& out, std::ostream& err) {
  std::string data_dir = DataDir(flags.data_dir);
  std::error_code ec;
  for (const char* sub : {"", "control", "host", "nsm"}) {
    fs::create_directories(fs::path(data_dir) / sub, ec);
    if (ec) {
      err << "enclavia up: cannot create " << (fs::path(data_dir) / sub).string() << ": "
          << ec.message() << "\n";
      return 1;
    }
  }
  fs::permissions(data_dir, fs::perms::owner_all, ec);
  fs::path control_dir = fs::path(data_dir) / "control";
  fs::path host_dir = fs::path(data_dir) / "host";
  if (Alive(ReadPid(control_dir / "pid")) && Alive(ReadPid(host_dir / "pid"))) {
    out << "enclavia up: already running (data in " << data_dir << ")\n";
    return 0;
  }
  // Leftovers of a crashed run: stop whatever half is still alive first.
  StopDaemon(control_dir, err);
  StopDaemon(host_dir, err);

  std::string bin = BinDir();
  fs::path host_log = host_dir / "host.log";
  auto host_pid = Spawn({bin + "/enclavia-host", "--data-dir", data_dir, "--provider",
                         flags.provider, "--public-host", flags.public_host},
                        host_log);
  if (!host_pid) {
    return Fail(err, "up", host_pid.error());
  }
  std::ofstream(host_dir / "pid") << *host_pid << "\n";
  auto host = WaitHealthy(data_dir, "host", "the host agent", *host_pid, host_log);
  if (!host) {
    StopDaemon(host_dir, err);
    return Fail(err, "up", host.error());
  }
  fs::path control_log = control_dir / "control.log";
  auto control_pid = Spawn({bin + "/enclavia-control", "--data-dir", data_dir}, control_log);
  if (!control_pid) {
    StopDaemon(host_dir, err);
    return Fail(err, "up", control_pid.error());
  }
  std::ofstream(control_dir / "pid") << *control_pid << "\n";
  auto control = WaitHealthy(data_dir, "control", "the control plane", *control_pid, control_log);
  if (!control) {
    StopDaemon(control_dir, err);
    StopDaemon(host_dir, err);
    return Fail(err, "up", control.error());
  }
  out << "enclavia up: control plane on " << control->address.ToString() << ", host agent on "
      << host->address.ToString() << "\n"
      << "enclavia up: data in " << data_dir << "; the local attestation root is " << data_dir
      << "/nsm/root.pem\n";
  if (flags.detach) {
    return 0;
  }
  out << "enclavia up: running; Ctrl-C stops everything" << std::endl;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  int signal = 0;
  ::sigwait(&set, &signal);
  return RunDown(DownFlags{.data_dir = data_dir}, out, err);
}

int RunDown(const DownFlags& flags, std::ostream& out, std::ostream& err) {
  std::string data_dir = DataDir(flags.data_dir);
  fs::path control_dir = fs::path(data_dir) / "control";
  fs::path host_dir = fs::path(data_dir) / "host";
  int removed = 0;
  int failures = 0;
  // Remove enclaves through the control plane (so it records events), else through the agent.
  for (const auto& [sub, what] : {std::pair{"control", "the control plane"},
                                  std::pair{"host", "the host agent"}}) {
    auto api = FindApi(data_dir, sub, what);
    if (!api) {
      continue;
    }
    auto list = CallJson(*api, "GET", "/v1/enclaves");
    if (!list || !list->is_array()) {
      continue;
    }
    for (const auto& enclave : *list) {
      std::string name = Str(enclave, "name");
      auto gone = Call(*api, "DELETE", "/v1/enclaves/" + name);
      if (gone) {
        ++removed;
      } else if (gone.error().code() != Code::kNotFound) {
        err << "enclavia down: removing " << name << ": " << gone.error().message() << "\n";
        ++failures;
      }
    }
    break;
  }
  StopDaemon(control_dir, err);
  StopDaemon(host_dir, err);
  out << "enclavia down: " << removed << " enclave" << (removed == 1 ? "" : "s")
      << " removed; control plane and host agent stopped\n";
  return failures == 0 ? 0 : 1;
}

namespace {

// UploadImage sends an EIF to the control plane unless it holds it already (images are
// content-addressed) and returns its id.
Result<std::string> UploadImage(const Api& control, const std::string& file,
                                const std::string& name) {
  ASSIGN_OR_RETURN(auto digest, crypto::HashFile(crypto::HashAlgorithm::kSha256, file));
  std::string image_id = HexEncode(digest);
  if (!Call(control, "GET", "/v1/images/" + image_id)) {
    // Streamed from the file; the control plane spools it to disk and checks it.
    http::Request upload;
    upload.method = "POST";
    upload.target = "/v1/images?name=" + name;
    upload.body_file = file;
    upload.headers["content-type"] = "application/octet-stream";
    RETURN_IF_ERROR(Send(control, upload, std::chrono::minutes(10)));
  }
  return image_id;
}

// EnsureWitnesses makes sure enclaves witness-1..count run the built-in witness image (built
// here, reproducibly, into DATA/witness.eif) and returns their names.
Result<json> EnsureWitnesses(const Api& control, const std::string& data_dir, uint32_t count,
                             std::ostream& err) {
  json names = json::array();
  std::string image_id;
  for (uint32_t i = 1; i <= count; ++i) {
    std::string name = "witness-" + std::to_string(i);
    names.push_back(name);
    auto existing = CallJson(control, "GET", "/v1/enclaves/" + name);
    if (existing) {
      if (Str(*existing, "state") != "running") {
        RETURN_IF_ERROR(Call(control, "POST", "/v1/enclaves/" + name + "/restart"));
      }
      continue;
    }
    if (existing.error().code() != Code::kNotFound) {
      return std::move(existing).error();
    }
    if (image_id.empty()) {
      ASSIGN_OR_RETURN(builder::Environment env, builder::DefaultEnvironment());
      std::string eif = data_dir + "/witness.eif";
      ASSIGN_OR_RETURN(builder::BuildResult built, builder::BuildWitnessImage(env, eif));
      err << "enclavia deploy: built the witness image (PCR0 "
          << Short(HexEncode(built.measurements.pcr0)) << ")\n";
      ASSIGN_OR_RETURN(image_id, UploadImage(control, eif, "enclavia-witness"));
    }
    json request = {{"name", name}, {"image", image_id}};
    ASSIGN_OR_RETURN(json started, CallJson(control, "POST", "/v1/enclaves", request.dump()));
    std::string url = Str(started, "url");
    if (!url.empty() && !WaitReachable(url)) {
      return Error(Code::kUnavailable, name + " did not answer within 30 s");
    }
    err << "enclavia deploy: started " << name << " (anti-rollback witness)\n";
  }
  return names;
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  if (text.empty()) {
    return Error(Code::kInvalidArgument, "empty size");
  }
  uint64_t unit = 1;
  char last = text.back();
  if (last == 'K' || last == 'M' || last == 'G' || last == 'T' || last == 'k' || last == 'm' ||
      last == 'g' || last == 't') {
    int shift = (last == 'K' || last == 'k')   ? 10
                : (last == 'M' || last == 'm') ? 20
                : (last == 'G' || last == 'g') ? 30
                                               : 40;
    unit = uint64_t{1} << shift;
    text.remove_suffix(1);
  }
  if (text.empty() || text.size() > 15) {
    return Error(Code::kInvalidArgument, "bad size");
  }
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return Error(Code::kInvalidArgument, "bad size: use a number with K, M, G or T");
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > UINT64_MAX / unit) {
    return Error(Code::kInvalidArgument, "size too large");
  }
  return value * unit;
}

int RunDeploy(const DeployFlags& flags, std::ostream& out, std::ostream& err) {
  if (!config::ValidEnclaveName(flags.name)) {
    err << "enclavia deploy: --name must be 1-63 of a-z, 0-9 and '-' (not first)\n";
    return 2;
  }
  json storage = json::object();
  if (!flags.storage.empty()) {
    auto size = ParseSize(flags.storage);
    if (!size || *size == 0 || *size % 4096 != 0) {
      err << "enclavia deploy: --storage must be a size such as 1G or 512M (a multiple of 4 KiB)\n";
      return 2;
    }
    if (flags.witnesses > transport::kMaxWitnesses) {
      err << "enclavia deploy: --witnesses must be 0.." << transport::kMaxWitnesses << "\n";
      return 2;
    }
    storage["size_bytes"] = *size;
    storage["backend"] = flags.backend.empty() ? std::string("dir") : flags.backend;
    storage["witnesses"] = json::array();
  } else if (!flags.backend.empty()) {
    err << "enclavia deploy: --backend needs --storage SIZE\n";
    return 2;
  }
  if (int(!flags.control_key.empty()) + int(flags.managed_key) + int(flags.immutable) > 1) {
    err << "enclavia deploy: use one of --control-key, --managed-key and --immutable\n";
    return 2;
  }
  auto control = FindControl(DataDir(flags.data_dir));
  if (!control) {
    return Fail(err, "deploy", control.error());
  }
  auto image = UploadImage(*control, flags.file, flags.name);
  if (!image) {
    return Fail(err, "deploy", image.error());
  }
  const std::string& image_id = *image;
  if (!storage.empty() && flags.witnesses > 0) {
    // The anti-rollback witnesses are enclaves too: started once per machine and shared.
    auto witnesses = EnsureWitnesses(*control, DataDir(flags.data_dir), flags.witnesses, err);
    if (!witnesses) {
      return Fail(err, "deploy", witnesses.error());
    }
    storage["witnesses"] = *witnesses;
  }
  json request = {{"name", flags.name},   {"image", image_id},       {"debug", flags.debug},
                  {"cpus", flags.cpus},   {"memory_mib", flags.memory_mib}};
  if (!flags.control_key.empty() || flags.immutable) {
    auto genesis = DeployGenesis(flags);
    if (!genesis) {
      return Fail(err, "deploy", genesis.error());
    }
    request["genesis"] = *genesis;
  } else if (flags.managed_key) {
    auto window = ParseDuration(flags.staging_window);
    if (!window) {
      return Fail(err, "deploy", window.error());
    }
    request["managed_key"] = true;
    request["staging_window_s"] = *window;
  }
  if (!storage.empty()) {
    request["storage"] = storage;
  }
  auto enclave = CallJson(*control, "POST", "/v1/enclaves", request.dump());
  if (!enclave) {
    return Fail(err, "deploy", enclave.error());
  }
  std::string url = Str(*enclave, "url");
  if (flags.wait && !url.empty()) {
    if (auto serving = WaitServing(*control, flags.name, url); !serving) {
      err << "enclavia deploy: " << serving.error().message()
          << (flags.debug ? " (and `enclavia logs " + flags.name + "`)" : "") << "\n";
      return 1;
    }
  }
  if (flags.json) {
    out << enclave->dump(2) << "\n";
  } else {
    PrintEnclave(*enclave, out);
    out << "next:   enclavia trust " << flags.name << " -o " << flags.name
        << ".trust.toml && enclavia proxy --listen tcp:127.0.0.1:8080 --enclave " << url
        << " --trust " << flags.name << ".trust.toml --port <app port>\n";
  }
  return 0;
}

int RunList(const EnclaveFlags& flags, std::ostream& out, std::ostream& err) {
  auto control = FindControl(DataDir(flags.data_dir));
  if (!control) {
    return Fail(err, "ls", control.error());
  }
  auto list = CallJson(*control, "GET", "/v1/enclaves");
  if (!list) {
    return Fail(err, "ls", list.error());
  }
  if (flags.json) {
    out << list->dump(2) << "\n";
    return 0;
  }
  out << std::left << std::setw(20) << "NAME" << std::setw(10) << "STATE" << std::setw(28)
      << "URL" << std::setw(6) << "DEBUG" << "PCR0\n";
  for (const auto& e : *list) {
    out << std::left << std::setw(20) << Str(e, "name") << std::setw(10) << Str(e, "state")
        << std::setw(28) << Str(e, "url") << std::setw(6) << (e.value("debug", false) ? "yes" : "no")
        << Short(PcrText(e, "0")) << "\n";
  }
  return 0;
}

int RunInspect(const EnclaveFlags& flags, std::ostream& out, std::ostream& err) {
  auto control = FindControl(DataDir(flags.data_dir));
  if (!control) {
    return Fail(err, "inspect", control.error());
  }
  auto enclave = CallJson(*control, "GET", "/v1/enclaves/" + flags.name);
  if (!enclave) {
    return Fail(err, "inspect", enclave.error());
  }
  out << enclave->dump(2) << "\n";
  return 0;
}

int RunLogs(const EnclaveFlags& flags, std::ostream& out, std::ostream& err) {
  auto control = FindControl(DataDir(flags.data_dir));
  if (!control) {
    return Fail(err, "logs", control.error());
  }
  uint64_t offset = 0;
  for (;;) {
    auto response = Call(*control, "GET",
                         "/v1/enclaves/" + flags.name + "/logs?offset=" + std::to_string(offset));
    if (!response) {
      return Fail(err, "logs", response.error());
    }
    out << response->body << std::flush;
    offset += response->body.size();
    if (!flags.follow) {
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int RunRestart(const EnclaveFlags& flags, std::ostream& out, std::ostream& err) {
  auto control = FindControl(DataDir(flags.data_dir));
  if (!control) {
    return Fail(err, "restart", control.error());
  }
  auto enclave = CallJson(*control, "POST", "/v1/enclaves/" + flags.name + "/restart");
  if (!enclave) {
    return Fail(err, "restart", enclave.error());
  }
  std::string url = Str(*enclave, "url");
  if (!url.empty()) {
    if (auto serving = WaitServing(*control, flags.name, url); !serving) {
      return Fail(err, "restart", serving.error());
    }
  }
  out << "enclavia restart: " << flags.name << " is " << Str(*enclave, "state") << " at " << url
      << "\n";
  return 0;
}

int RunRemove(const EnclaveFlags& flags, std::ostream& out, std::ostream& err) {
  auto control = FindControl(DataDir(flags.data_dir));
  if (!control) {
    return Fail(err, "rm", control.error());
  }
  auto gone = Call(*control, "DELETE", "/v1/enclaves/" + flags.name);
  if (!gone) {
    return Fail(err, "rm", gone.error());
  }
  out << "enclavia rm: " << flags.name << " removed\n";
  return 0;
}

int RunTrust(const EnclaveFlags& flags, std::ostream& out, std::ostream& err) {
  auto control = FindControl(DataDir(flags.data_dir));
  if (!control) {
    return Fail(err, "trust", control.error());
  }
  auto trust = Call(*control, "GET", "/v1/enclaves/" + flags.name + "/trust");
  if (!trust) {
    return Fail(err, "trust", trust.error());
  }
  if (flags.output.empty() || flags.output == "-") {
    out << trust->body;
    return 0;
  }
  auto written = WriteFileAtomic(flags.output, AsBytes(trust->body));
  if (!written) {
    return Fail(err, "trust", written.error());
  }
  out << "enclavia trust: wrote " << flags.output << " (" << flags.name
      << "'s PCRs and the host's attestation root)\n";
  return 0;
}

namespace {

Result<Api> FindHost(const std::string& data_dir) {
  return FindApi(data_dir, "host", "the host agent");
}

std::string Bytes2(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream o;
  o << std::fixed << std::setprecision(u == 0 ? 0 : 1) << v << " " << units[u];
  return o.str();
}

}  // namespace

int RunStorageList(const StorageFlags& flags, std::ostream& out, std::ostream& err) {
  auto host = FindHost(DataDir(flags.data_dir));
  if (!host) {
    return Fail(err, "storage ls", host.error());
  }
  auto list = CallJson(*host, "GET", "/v1/volumes");
  if (!list || !list->is_array()) {
    return Fail(err, "storage ls", list ? Error(Code::kMalformed, "not a list") : list.error());
  }
  if (flags.json) {
    out << list->dump(2) << "\n";
    return 0;
  }
  out << std::left << std::setw(20) << "NAME" << std::setw(10) << "SIZE" << std::setw(22)
      << "BACKEND" << std::setw(10) << "VERSION" << "STATE\n";
  for (const json& v : *list) {
    const json& status = v.contains("status") && v["status"].is_object() ? v["status"] : json();
    std::string state = status.is_object() && status.contains("state")
                            ? status["state"].get<std::string>()
                            : "unknown";
    if (state == "error" && status.contains("error")) {
      state += ": " + status["error"].get<std::string>();
    } else if (status.is_object() && status.contains("protection")) {
      state += ", " + status["protection"].get<std::string>();
    }
    out << std::left << std::setw(20) << Str(v, "name") << std::setw(10)
        << Bytes2(v.value("size_bytes", uint64_t{0})) << std::setw(22) << Str(v, "backend")
        << std::setw(10)
        << (status.is_object() && status.contains("version")
                ? std::to_string(status["version"].get<uint64_t>())
                : std::string("-"))
        << state << "\n";
  }
  return 0;
}

int RunStorageInspect(const StorageFlags& flags, std::ostream& out, std::ostream& err) {
  auto host = FindHost(DataDir(flags.data_dir));
  if (!host) {
    return Fail(err, "storage inspect", host.error());
  }
  auto volume = CallJson(*host, "GET", "/v1/volumes/" + flags.name);
  if (!volume) {
    return Fail(err, "storage inspect", volume.error());
  }
  out << volume->dump(2) << "\n";
  return 0;
}

int RunStorageSnapshot(const StorageFlags& flags, std::ostream& out, std::ostream& err) {
  auto host = FindHost(DataDir(flags.data_dir));
  if (!host) {
    return Fail(err, "storage snapshot", host.error());
  }
  json body = {{"tag", flags.tag}};
  auto done = CallJson(*host, "POST", "/v1/volumes/" + flags.name + "/snapshot", body.dump());
  if (!done) {
    return Fail(err, "storage snapshot", done.error());
  }
  out << "snapshot " << flags.tag << " of " << flags.name << ": " << done->value("objects", 0)
      << " objects in " << Str(*done, "to") << "\n";
  return 0;
}

int RunStorageBackup(const StorageFlags& flags, std::ostream& out, std::ostream& err) {
  auto host = FindHost(DataDir(flags.data_dir));
  if (!host) {
    return Fail(err, "storage backup", host.error());
  }
  json body = {{"to", flags.to}};
  auto done = CallJson(*host, "POST", "/v1/volumes/" + flags.name + "/backup", body.dump());
  if (!done) {
    return Fail(err, "storage backup", done.error());
  }
  out << "backup of " << flags.name << ": " << done->value("objects", 0) << " objects to "
      << Str(*done, "to") << " (ciphertext; restoring it is a rollback the witnesses refuse "
      << "without `enclavia storage recover`)\n";
  return 0;
}

int RunStorageRecover(const StorageFlags& flags, std::ostream& out, std::ostream& err) {
  auto pem = ReadFile(flags.key, 64 * 1024);
  if (!pem) {
    return Fail(err, "storage recover", pem.error());
  }
  auto owner = crypto::PrivateKey::FromPem(AsString(*pem));
  if (!owner || owner->algorithm() != crypto::SignatureAlgorithm::kEd25519) {
    err << "enclavia storage recover: " << flags.key << " is not an Ed25519 private key (PEM)\n";
    return 1;
  }
  auto host = FindHost(DataDir(flags.data_dir));
  if (!host) {
    return Fail(err, "storage recover", host.error());
  }
  std::string target = "/v1/volumes/" + flags.name + "/recovery";
  if (flags.version != 0) {
    target += "?version=" + std::to_string(flags.version);
  }
  auto info = CallJson(*host, "GET", target);
  if (!info) {
    return Fail(err, "storage recover", info.error());
  }
  blockstore::RecoveryStatement statement;
  auto id = HexDecode(Str(*info, "volume_id"));
  auto hash = HexDecode(Str(*info, "superblock_hash"));
  if (!id || id->size() != statement.volume_id.size() || !hash ||
      hash->size() != statement.superblock_hash.size()) {
    return Fail(err, "storage recover", Error(Code::kMalformed, "the host's answer is malformed"));
  }
  std::copy(id->begin(), id->end(), statement.volume_id.begin());
  std::copy(hash->begin(), hash->end(), statement.superblock_hash.begin());
  statement.version = info->value("version", uint64_t{0});
  auto signed_statement = blockstore::MakeRecoveryStatement(*owner, statement);
  if (!signed_statement) {
    return Fail(err, "storage recover", signed_statement.error());
  }
  json body = {{"statement", HexEncode(*signed_statement)}};
  auto set = CallJson(*host, "POST", "/v1/volumes/" + flags.name + "/recover", body.dump());
  if (!set) {
    return Fail(err, "storage recover", set.error());
  }
  out << "signed the recovery of volume " << flags.name << " at version " << statement.version
      << " (superblock " << Short(Str(*info, "superblock_hash")) << ")\n";
  if (flags.restart) {
    auto control = FindControl(DataDir(flags.data_dir));
    if (!control) {
      return Fail(err, "storage recover", control.error());
    }
    auto restarted = Call(*control, "POST", "/v1/enclaves/" + flags.name + "/restart");
    if (!restarted) {
      return Fail(err, "storage recover", restarted.error());
    }
    out << "restarted " << flags.name << ": it mounts version " << statement.version
        << " under a new epoch and re-registers it with its witnesses\n";
  }
  return 0;
}

int RunStorageKeygen(const StorageFlags& flags, std::ostream& out, std::ostream& err) {
  if (flags.key.empty()) {
    err << "enclavia storage keygen: -o FILE is required\n";
    return 2;
  }
  auto key = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519);
  auto pem = key.ToPem();
  if (!pem) {
    return Fail(err, "storage keygen", pem.error());
  }
  auto written = WriteFileAtomic(flags.key, pem->Expose(), 0600);
  if (!written) {
    return Fail(err, "storage keygen", written.error());
  }
  out << "owner key written to " << flags.key << "; put this in the Enclaviafile:\n"
      << "[storage]\nrecovery_key = \"" << HexEncode(key.public_key().ToRaw()) << "\"\n";
  return 0;
}

Result<json> ControlJson(const std::string& data_dir, const std::string& method,
                         const std::string& target, const std::string& body) {
  ASSIGN_OR_RETURN(Api control, FindControl(DataDir(data_dir)));
  return CallJson(control, method, target, body);
}

Result<std::string> ControlUploadImage(const std::string& data_dir, const std::string& file,
                                       const std::string& name) {
  ASSIGN_OR_RETURN(Api control, FindControl(DataDir(data_dir)));
  return UploadImage(control, file, name);
}

Result<void> ControlWaitServing(const std::string& data_dir, const std::string& name,
                                const std::string& url) {
  ASSIGN_OR_RETURN(Api control, FindControl(DataDir(data_dir)));
  return WaitServing(control, name, url);
}

}  // namespace enclavia::cli
