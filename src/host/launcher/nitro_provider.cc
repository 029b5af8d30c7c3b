// SPDX-License-Identifier: Apache-2.0
// NitroProvider: nitro-cli as a subprocess, its JSON parsed strictly. nlohmann's exceptions are
// caught in this file only.
#include "host/launcher/nitro_provider.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "lib/config/names.h"
#include "lib/base/encoding.h"
#include "lib/eif/reader.h"
#include "lib/sys/fd.h"

namespace enclavia::host {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint32_t kDefaultCpus = 2;
constexpr uint64_t kDefaultMemoryMib = 512;
constexpr uint32_t kMaxCpus = 1024;
constexpr uint64_t kMaxMemoryMib = uint64_t{1} << 30;  // 1 PiB: far above any instance.
constexpr size_t kMaxConsole = 1 << 20;                // Provider::Console's cap.
constexpr size_t kMaxConsoleOffset = size_t{64} << 20;  // Bytes of console we skip at most.
constexpr size_t kMaxErrorLine = 400;

Error Malformed(std::string_view what) {
  return {Code::kMalformed, "nitro-cli: " + std::string(what)};
}

// Bad is a kMalformed error without the prefix, for the JSON helpers: the public parsers add
// "nitro-cli: <command>: ".
Error Bad(std::string message) { return {Code::kMalformed, std::move(message)}; }

// ---------------------------------------------------------------------------------------------
// Running nitro-cli.

struct Output {
  int exit_status = -1;  // Exit code, or 128 + signal.
  bool timed_out = false;
  std::string out;
  std::string err;
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Append reads what is available on `fd` into `buf` (up to `cap` bytes kept, the rest dropped).
// Returns false at end of file or on an error.
bool Append(int fd, std::string& buf, size_t cap) {
  char chunk[16384];
  const ssize_t n = ::read(fd, chunk, sizeof chunk);
  if (n < 0) {
    return errno == EINTR || errno == EAGAIN;
  }
  if (n == 0) {
    return false;
  }
  const size_t keep = std::min(static_cast<size_t>(n), cap - std::min(cap, buf.size()));
  buf.append(chunk, keep);
  return true;
}

// Drain reads what is in the pipe `fd` now, without blocking (at most 16 MiB, so a writer that
// outlived the child cannot keep us here).
void Drain(int fd, std::string& buf, size_t cap) {
  if (::fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
    return;
  }
  for (int rounds = 0; rounds < 1024; ++rounds) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0 || !Append(fd, buf, cap)) {
      return;
    }
  }
}

// Run runs argv[0] (PATH lookup, no shell) with stdin from /dev/null, in its own process group,
// collecting stdout and stderr (each capped at `cap` bytes; more is read and dropped). After
// `timeout_ms` the group is killed and timed_out set. Once the child has exited, what is already
// in the pipes is read and the rest ignored, so a daemon that kept them open cannot hold us.
Result<Output> Run(const std::vector<std::string>& args, int timeout_ms, size_t cap) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);

  int out_pipe[2];
  int err_pipe[2];
  int exec_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    return sys::IoError("nitro-cli: pipe", errno);
  }
  sys::UniqueFd out_r(out_pipe[0]);
  sys::UniqueFd out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    return sys::IoError("nitro-cli: pipe", errno);
  }
  sys::UniqueFd err_r(err_pipe[0]);
  sys::UniqueFd err_w(err_pipe[1]);
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    return sys::IoError("nitro-cli: pipe", errno);
  }
  sys::UniqueFd exec_r(exec_pipe[0]);
  sys::UniqueFd exec_w(exec_pipe[1]);
  ASSIGN_OR_RETURN(sys::UniqueFd null_fd, sys::Open("/dev/null", O_RDONLY));

  const pid_t pid = ::fork();
  if (pid < 0) {
    return sys::IoError("nitro-cli: fork", errno);
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    ::setpgid(0, 0);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (::dup2(null_fd.get(), 0) < 0 || ::dup2(out_w.get(), 1) < 0 || ::dup2(err_w.get(), 2) < 0) {
      ::_exit(127);
    }
    ::execvp(argv[0], argv.data());
    const int e = errno;
    [[maybe_unused]] const ssize_t w = ::write(exec_w.get(), &e, sizeof e);
    ::_exit(127);
  }
  out_w = sys::UniqueFd();
  err_w = sys::UniqueFd();
  exec_w = sys::UniqueFd();

  int exec_errno = 0;
  ssize_t n = 0;
  do {
    n = ::read(exec_r.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return Error(Code::kFailedPrecondition,
                 "cannot run " + args[0] + ": " + std::strerror(exec_errno));
  }

  Output result;
  const int64_t deadline = NowMs() + timeout_ms;
  bool out_open = true;
  bool err_open = true;
  bool exited = false;
  int status = 0;
  while (!exited) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      exited = true;
      break;
    }
    const int64_t left = deadline - NowMs();
    if (left <= 0) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      result.timed_out = true;
      break;
    }
    pollfd fds[2];
    nfds_t nfds = 0;
    if (out_open) {
      fds[nfds++] = {out_r.get(), POLLIN, 0};
    }
    if (err_open) {
      fds[nfds++] = {err_r.get(), POLLIN, 0};
    }
    // Poll in short slices: once both pipes are closed only waitpid tells us the child exited.
    const int slice = static_cast<int>(std::min<int64_t>(left, 20));
    const int ready = ::poll(fds, nfds, slice);
    if (ready < 0 && errno != EINTR) {
      return sys::IoError("nitro-cli: poll", errno);
    }
    for (nfds_t i = 0; ready > 0 && i < nfds; ++i) {
      if (fds[i].revents == 0) {
        continue;
      }
      const bool is_out = fds[i].fd == out_r.get();
      if (!Append(fds[i].fd, is_out ? result.out : result.err, cap)) {
        (is_out ? out_open : err_open) = false;
      }
    }
  }
  // Read what the child wrote before it exited, without waiting for anyone else.
  if (out_open) {
    Drain(out_r.get(), result.out, cap);
  }
  if (err_open) {
    Drain(err_r.get(), result.err, cap);
  }
  if (WIFEXITED(status)) {
    result.exit_status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_status = 128 + WTERMSIG(status);
  }
  return result;
}

// OneLine squeezes `s` into one printable line of at most kMaxErrorLine bytes.
std::string OneLine(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= kMaxErrorLine) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u == '\n' || u == '\r' || u == '\t') {
      if (!out.empty() && out.back() != ' ') {
        out += ' ';
      }
    } else if (u < 0x20 || u == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') {
    out.pop_back();
  }
  return out;
}

// ErrorLine picks nitro-cli's own message: the "[ Exx ] ..." line if there is one, else the
// last non-empty line of stderr (or stdout).
std::string ErrorLine(const Output& o) {
  for (const std::string* text : {&o.err, &o.out}) {
    std::string_view rest = *text;
    std::string_view last;
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (line.starts_with("[ E")) {
        return OneLine(line);
      }
      if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
        last = line;
      }
    }
    if (!last.empty()) {
      return OneLine(last);
    }
  }
  return "no error message";
}

// CodeFor maps nitro-cli's documented error codes (src/common/document_errors.rs) to ours.
Code CodeFor(std::string_view line) {
  if (line.starts_with("[ E21 ]") || line.starts_with("[ E22 ]") || line.starts_with("[ E27 ]")) {
    return Code::kLimitExceeded;  // CPUs or memory not available in the pool.
  }
  if (line.starts_with("[ E26 ]") || line.starts_with("[ E35 ]")) {
    return Code::kInvalidArgument;  // Too little memory for the image; image not parseable.
  }
  if (line.starts_with("[ E58 ]")) {
    return Code::kAlreadyExists;  // Enclave name taken.
  }
  return Code::kInternal;
}

// ---------------------------------------------------------------------------------------------
// JSON: every field checked. The helpers throw nothing; nlohmann's own exceptions are caught
// around each parser.

Result<json> ParseJson(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Bad("output is not JSON");
  }
  return j;
}

const json* Field(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

Result<uint64_t> UintField(const json& obj, const char* key, uint64_t min, uint64_t max) {
  const json* v = Field(obj, key);
  if (v == nullptr) {
    return Bad(std::string("missing ") + key);
  }
  if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<int64_t>() >= 0)) {
    return Bad(std::string(key) + " is not an unsigned integer");
  }
  const auto n = v->get<uint64_t>();
  if (n < min || n > max) {
    return Bad(std::string(key) + " " + std::to_string(n) + " is out of range");
  }
  return n;
}

// StringField returns a string of 1..max_len bytes whose every byte passes `ok`.
template <typename Pred>
Result<std::string> StringField(const json& obj, const char* key, size_t max_len, Pred ok) {
  const json* v = Field(obj, key);
  if (v == nullptr) {
    return Bad(std::string("missing ") + key);
  }
  if (!v->is_string()) {
    return Bad(std::string(key) + " is not a string");
  }
  const auto& s = v->get_ref<const std::string&>();
  if (s.empty() || s.size() > max_len || !std::all_of(s.begin(), s.end(), ok)) {
    return Bad(std::string("bad ") + key);
  }
  return s;
}

bool IdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}
bool Printable(char c) {
  return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
}

// CommonFields reads what run-enclave and describe-enclaves both print.
Result<EnclaveInfo> CommonFields(const json& obj) {
  if (!obj.is_object()) {
    return Bad("enclave entry is not an object");
  }
  EnclaveInfo info;
  ASSIGN_OR_RETURN(info.id, StringField(obj, "EnclaveID", 128, IdChar));
  if (Field(obj, "EnclaveName") != nullptr) {
    ASSIGN_OR_RETURN(info.name, StringField(obj, "EnclaveName", 256, Printable));
  } else {
    info.name = info.id;  // nitro-cli before names.
  }
  if (Field(obj, "ProcessID") != nullptr) {
    RETURN_IF_ERROR(UintField(obj, "ProcessID", 1, std::numeric_limits<int32_t>::max()));
  }
  // CIDs 0..3 are the hypervisor, local, host and parent; 2^32-1 is VMADDR_CID_ANY.
  ASSIGN_OR_RETURN(uint64_t cid, UintField(obj, "EnclaveCID", 4, 0xfffffffe));
  info.endpoint.cid = static_cast<uint32_t>(cid);
  ASSIGN_OR_RETURN(uint64_t cpus, UintField(obj, "NumberOfCPUs", 1, kMaxCpus));
  info.cpus = static_cast<uint32_t>(cpus);
  if (const json* ids = Field(obj, "CPUIDs"); ids != nullptr) {
    if (!ids->is_array() || ids->size() != cpus) {
      return Bad("CPUIDs does not list NumberOfCPUs CPUs");
    }
    for (const json& id : *ids) {
      if (!id.is_number_unsigned() || id.get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
        return Bad("bad CPU id in CPUIDs");
      }
    }
  }
  ASSIGN_OR_RETURN(info.memory_mib, UintField(obj, "MemoryMiB", 1, kMaxMemoryMib));
  return info;
}

Result<void> ReadMeasurements(const json& obj, EnclaveInfo& info) {
  const json* m = Field(obj, "Measurements");
  if (m == nullptr) {
    return Ok();  // Older nitro-cli.
  }
  if (!m->is_object()) {
    return Bad("Measurements is not an object");
  }
  if (Field(*m, "HashAlgorithm") != nullptr) {
    RETURN_IF_ERROR(StringField(*m, "HashAlgorithm", 64, Printable));
  }
  for (int pcr : {0, 1, 2, 8}) {
    const std::string key = "PCR" + std::to_string(pcr);
    if (pcr == 8 && Field(*m, key.c_str()) == nullptr) {
      continue;
    }
    ASSIGN_OR_RETURN(std::string hex, StringField(*m, key.c_str(), 96, [](char c) {
                       return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                              (c >= 'A' && c <= 'F');
                     }));
    if (hex.size() != 96) {
      return Bad(key + " is not a SHA-384 digest");
    }
    std::transform(hex.begin(), hex.end(), hex.begin(), [](char c) {
      return (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    });
    info.pcrs[pcr] = std::move(hex);
  }
  return Ok();
}

Result<EnclaveInfo> DescribeEntry(const json& obj) {
  ASSIGN_OR_RETURN(EnclaveInfo info, CommonFields(obj));
  ASSIGN_OR_RETURN(std::string state, StringField(obj, "State", 32, Printable));
  if (state == "RUNNING") {
    info.state = EnclaveState::kRunning;
  } else if (state == "TERMINATING" || state == "EMPTY") {
    info.state = EnclaveState::kStopped;
  } else {
    return Bad("unknown State \"" + OneLine(state) + "\"");
  }
  ASSIGN_OR_RETURN(std::string flags, StringField(obj, "Flags", 32, Printable));
  if (flags == "DEBUG_MODE") {
    info.debug = true;
  } else if (flags != "NONE") {
    return Bad("unknown Flags \"" + OneLine(flags) + "\"");
  }
  RETURN_IF_ERROR(ReadMeasurements(obj, info));
  return info;
}

// Guarded runs a parser, prefixes its errors with "nitro-cli: <what>: " and turns any exception
// nlohmann throws into kMalformed (std::bad_alloc still aborts the process).
template <typename F>
auto Guarded(std::string_view what, F f) -> decltype(f()) {
  const std::string context = "nitro-cli: " + std::string(what);
  try {
    auto result = f();
    if (!result) {
      return std::move(result).error().WithContext(context);
    }
    return result;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    return Error(Code::kMalformed, context + ": " + OneLine(e.what()));
  }
}

// ---------------------------------------------------------------------------------------------

std::string PcrHex(const Bytes& b) { return HexEncode(b); }

}  // namespace

Result<EnclaveInfo> ParseRunEnclave(std::string_view text) {
  return Guarded("run-enclave", [&]() -> Result<EnclaveInfo> {
    ASSIGN_OR_RETURN(json j, ParseJson(text));
    ASSIGN_OR_RETURN(EnclaveInfo info, CommonFields(j));
    info.state = EnclaveState::kRunning;
    return info;
  });
}

Result<std::vector<EnclaveInfo>> ParseDescribeEnclaves(std::string_view text) {
  return Guarded("describe-enclaves", [&]() -> Result<std::vector<EnclaveInfo>> {
    ASSIGN_OR_RETURN(json j, ParseJson(text));
    if (!j.is_array()) {
      return Bad("output is not a JSON array");
    }
    std::vector<EnclaveInfo> out;
    for (const json& entry : j) {
      ASSIGN_OR_RETURN(EnclaveInfo info, DescribeEntry(entry));
      out.push_back(std::move(info));
    }
    std::sort(out.begin(), out.end(),
              [](const EnclaveInfo& a, const EnclaveInfo& b) { return a.name < b.name; });
    for (size_t i = 1; i < out.size(); ++i) {
      if (out[i].name == out[i - 1].name) {
        return Bad("two enclaves named " + OneLine(out[i].name));
      }
    }
    return out;
  });
}

Result<void> ParseTerminateEnclave(std::string_view text, std::string_view enclave_id) {
  return Guarded("terminate-enclave", [&]() -> Result<void> {
    ASSIGN_OR_RETURN(json j, ParseJson(text));
    if (!j.is_object()) {
      return Bad("output is not a JSON object");
    }
    ASSIGN_OR_RETURN(std::string id, StringField(j, "EnclaveID", 128, IdChar));
    if (id != enclave_id) {
      return Bad("reported enclave " + id + ", not " + std::string(enclave_id));
    }
    const json* done = Field(j, "Terminated");
    if (done == nullptr || !done->is_boolean()) {
      return Bad("Terminated is not a boolean");
    }
    if (!done->get<bool>()) {
      return Error(Code::kInternal, "enclave " + id + " was not terminated");
    }
    return Ok();
  });
}

NitroProvider::NitroProvider(NitroOptions options) : options_(std::move(options)) {}

namespace {

// Call runs `nitro-cli <args...>` and returns its stdout; a failure is one line with nitro-cli's
// own message.
Result<std::string> Call(const NitroOptions& options, std::vector<std::string> args) {
  const std::string command = args.front();
  args.insert(args.begin(), options.nitro_cli);
  auto out = Run(args, options.command_timeout_ms, options.max_output);
  if (!out) {
    return Error(out.error().code(), "nitro-cli " + command + ": " + out.error().message());
  }
  if (out->timed_out) {
    return Error(Code::kUnavailable, "nitro-cli " + command + ": no answer within " +
                                         std::to_string(options.command_timeout_ms) + " ms");
  }
  if (out->exit_status != 0) {
    const std::string line = ErrorLine(*out);
    return Error(CodeFor(line), "nitro-cli " + command + " failed (exit " +
                                    std::to_string(out->exit_status) + "): " + line);
  }
  if (out->out.size() >= options.max_output) {
    return Malformed(command + ": output longer than " + std::to_string(options.max_output) +
                     " bytes");
  }
  return std::move(out->out);
}

}  // namespace

void NitroProvider::Complete(EnclaveInfo& info) {
  std::lock_guard lock(mu_);
  const auto it = launched_.find(info.id);
  if (it == launched_.end()) {
    return;
  }
  info.started_unix = it->second.started_unix;
  for (const auto& [pcr, hex] : it->second.pcrs) {
    info.pcrs.try_emplace(pcr, hex);  // describe-enclaves' own values win.
  }
}

Result<std::vector<EnclaveInfo>> NitroProvider::List() {
  ASSIGN_OR_RETURN(std::string out, Call(options_, {"describe-enclaves"}));
  ASSIGN_OR_RETURN(std::vector<EnclaveInfo> list, ParseDescribeEnclaves(out));
  for (EnclaveInfo& info : list) {
    Complete(info);
  }
  return list;
}

Result<EnclaveInfo> NitroProvider::Describe(const std::string& name) {
  ASSIGN_OR_RETURN(std::vector<EnclaveInfo> list, List());
  for (EnclaveInfo& info : list) {
    if (info.name == name) {
      return std::move(info);
    }
  }
  return Error(Code::kNotFound, "no enclave named " + OneLine(name));
}

Result<EnclaveInfo> NitroProvider::Launch(const LaunchSpec& spec) {
  if (!config::ValidEnclaveName(spec.name)) {
    return Error(Code::kInvalidArgument,
                 "bad enclave name \"" + OneLine(spec.name) + "\": use [a-z0-9][a-z0-9-]{0,62}");
  }
  if (spec.eif_path.empty() || spec.eif_path[0] != '/') {
    return Error(Code::kInvalidArgument, "image path must be absolute: " + OneLine(spec.eif_path));
  }
  if (spec.cpus > kMaxCpus || spec.memory_mib > kMaxMemoryMib) {
    return Error(Code::kInvalidArgument, "cpus or memory_mib out of range");
  }
  auto eif = eif::ReadEif(spec.eif_path);
  if (!eif) {
    return Error(Code::kInvalidArgument, "image " + spec.eif_path + " refused: " +
                                             eif.error().message());
  }
  uint32_t cpus = spec.cpus;
  if (cpus == 0) {
    cpus = eif->default_cpus > 0 && eif->default_cpus <= kMaxCpus
               ? static_cast<uint32_t>(eif->default_cpus)
               : kDefaultCpus;
  }
  uint64_t memory_mib = spec.memory_mib;
  if (memory_mib == 0) {
    const uint64_t from_header = eif->default_mem / kMiB + (eif->default_mem % kMiB != 0 ? 1 : 0);
    memory_mib = from_header > 0 && from_header <= kMaxMemoryMib ? from_header : kDefaultMemoryMib;
  }
  std::map<int, std::string> pcrs = {{0, PcrHex(eif->measurements.pcr0)},
                                     {1, PcrHex(eif->measurements.pcr1)},
                                     {2, PcrHex(eif->measurements.pcr2)}};
  if (eif->measurements.pcr8) {
    pcrs[8] = PcrHex(*eif->measurements.pcr8);
  }

  std::lock_guard launch_lock(launch_mu_);
  ASSIGN_OR_RETURN(std::vector<EnclaveInfo> existing, List());
  for (const EnclaveInfo& e : existing) {
    if (e.name == spec.name) {
      return Error(Code::kAlreadyExists, "an enclave named " + spec.name + " already exists (" +
                                             e.id + ")");
    }
  }
  std::vector<std::string> args = {"run-enclave",  "--eif-path", spec.eif_path,
                                   "--cpu-count",  std::to_string(cpus),
                                   "--memory",     std::to_string(memory_mib)};
  if (spec.debug) {
    args.emplace_back("--debug-mode");
  }
  args.insert(args.end(), {"--enclave-name", spec.name});
  ASSIGN_OR_RETURN(std::string out, Call(options_, args));
  auto info = ParseRunEnclave(out);
  if (info && info->name != spec.name) {
    info = Malformed("run-enclave: started enclave is named " + info->name + ", not " + spec.name);
  }
  if (!info) {
    // It may be running all the same: stop whatever now carries the name (best effort).
    if (auto list = List(); list) {
      for (const EnclaveInfo& e : *list) {
        if (e.name == spec.name) {
          (void)Call(options_, {"terminate-enclave", "--enclave-id", e.id});
        }
      }
    }
    return info.error();
  }
  info->debug = spec.debug;
  info->pcrs = pcrs;
  info->started_unix = static_cast<int64_t>(std::time(nullptr));
  {
    std::lock_guard lock(mu_);
    launched_[info->id] = Launched{pcrs, info->started_unix};
  }
  return info;
}

Result<void> NitroProvider::Terminate(const std::string& name, int /*grace_ms*/) {
  ASSIGN_OR_RETURN(EnclaveInfo info, Describe(name));
  ASSIGN_OR_RETURN(std::string out, Call(options_, {"terminate-enclave", "--enclave-id", info.id}));
  RETURN_IF_ERROR(ParseTerminateEnclave(out, info.id));
  std::lock_guard lock(mu_);
  launched_.erase(info.id);
  return Ok();
}

Result<std::string> NitroProvider::Console(const std::string& name, uint64_t offset) {
  ASSIGN_OR_RETURN(EnclaveInfo info, Describe(name));
  if (!info.debug) {
    return Error(Code::kFailedPrecondition,
                 "enclave " + name + " is not in debug mode; its console is closed (as on Nitro)");
  }
  const size_t skip = static_cast<size_t>(std::min<uint64_t>(offset, kMaxConsoleOffset));
  // Two lines of nitro-cli's own come first ("Connecting to the console for enclave N...",
  // "Successfully connected to the console."); room for them too.
  const size_t cap = skip + kMaxConsole + 512;
  const std::vector<std::string> args = {options_.nitro_cli, "console",
                                         "--enclave-id",     info.id,
                                         "--disconnect-timeout",
                                         std::to_string(options_.console_seconds)};
  auto out = Run(args, options_.console_seconds * 1000 + options_.console_grace_ms, cap);
  if (!out) {
    return Error(out.error().code(), "nitro-cli console: " + out.error().message());
  }
  // A timeout is not an error: the console streams until it is stopped.
  if (!out->timed_out && out->exit_status != 0) {
    const std::string line = ErrorLine(*out);
    return Error(CodeFor(line), "nitro-cli console failed (exit " +
                                    std::to_string(out->exit_status) + "): " + line);
  }
  std::string_view text = out->out;
  for (std::string_view prefix : {"Connecting to the console for enclave ",
                                  "Successfully connected to the console."}) {
    if (text.starts_with(prefix)) {
      const size_t nl = text.find('\n');
      text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    }
  }
  if (offset >= text.size()) {
    return std::string();
  }
  text = text.substr(static_cast<size_t>(offset));
  return std::string(text.substr(0, kMaxConsole));
}

}  // namespace enclavia::host
