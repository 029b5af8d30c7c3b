// SPDX-License-Identifier: Apache-2.0
#include "host/launcher/local_provider.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "host/launcher/sandbox.h"
#include "host/nsm/simulator.h"
#include "lib/config/names.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/crypto/random.h"
#include "lib/eif/reader.h"
#include "lib/sys/fd.h"

namespace enclavia::host {
namespace {

namespace fs = std::filesystem;
using sys::UniqueFd;
using Clock = std::chrono::steady_clock;

constexpr auto kLaunchTimeout = std::chrono::seconds(10);
constexpr int kKillSlackMs = 2000;
constexpr uint64_t kMinMemoryMib = 64;
constexpr uint32_t kMaxCpus = 1024;
constexpr uint32_t kDefaultCpus = 2;
constexpr uint64_t kDefaultMemoryMib = 512;
constexpr uint64_t kMaxConsoleRead = uint64_t{1} << 20;

Error FsError(const std::string& what, const std::error_code& ec) {
  return Error(Code::kIo, what + ": " + ec.message());
}

// NameLock holds an exclusive flock on <state_dir>/locks/<name>.lock: one Launch or Terminate of
// a name at a time, in this process or another.
class NameLock {
 public:
  static Result<NameLock> Acquire(const std::string& state_dir, const std::string& name) {
    ASSIGN_OR_RETURN(UniqueFd fd,
                     sys::Open(state_dir + "/locks/" + name + ".lock", O_RDWR | O_CREAT, 0600));
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) {
        return sys::IoError("flock", errno);
      }
    }
    return NameLock(std::move(fd));
  }

 private:
  explicit NameLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // Closing it releases the lock.
};

std::string LastLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::string last;
  while (std::getline(in, line)) {
    if (!line.empty()) {
      last = line;
    }
  }
  return last;
}

EnclaveInfo InfoFrom(const SandboxState& s, const std::string& dir) {
  EnclaveInfo info;
  info.id = s.id;
  info.name = s.name;
  info.state = s.state == "running" && IsAlive(s.supervisor_pid, s.supervisor_starttime)
                   ? EnclaveState::kRunning
                   : EnclaveState::kStopped;
  info.endpoint.local_dir = dir + "/" + std::string(kVsockDir);
  info.pcrs = s.pcrs;
  info.debug = s.debug;
  info.cpus = s.cpus;
  info.memory_mib = s.memory_mib;
  info.started_unix = s.started;
  info.exit_status = s.state == "stopped" ? s.exit_status : -1;
  return info;
}

bool WaitGone(int64_t pid, uint64_t starttime, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (IsAlive(pid, starttime)) {
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// MountsUnder lists mount points at or below `dir` in this process's mount namespace, deepest
// first. There should be none: the enclave's mounts live in its own namespace.
std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> mounts;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point == dir || point.starts_with(dir + "/")) {
      mounts.push_back(point);
    }
  }
  std::sort(mounts.begin(), mounts.end(), std::greater<>());
  return mounts;
}

// Remove kills whatever is left of the enclave in `dir` and deletes it all.
Result<void> Remove(const std::string& dir, int grace_ms) {
  Result<SandboxState> state = ReadSandboxState(dir);
  if (state) {
    if (IsAlive(state->supervisor_pid, state->supervisor_starttime)) {
      // A clean shutdown first; the grace rides in the signal's value.
      sigval value{};
      value.sival_int = std::max(grace_ms, 0);
      ::sigqueue(static_cast<pid_t>(state->supervisor_pid), SIGTERM, value);
      if (!WaitGone(state->supervisor_pid, state->supervisor_starttime,
                    std::max(grace_ms, 0) + kKillSlackMs)) {
        ::kill(static_cast<pid_t>(state->supervisor_pid), SIGKILL);
        (void)WaitGone(state->supervisor_pid, state->supervisor_starttime, kKillSlackMs);
      }
    }
    // The enclave dies with its supervisor (PDEATHSIG); make sure of it.
    if (IsAlive(state->init_pid, state->init_starttime)) {
      ::kill(static_cast<pid_t>(state->init_pid), SIGKILL);
    }
    Cgroup cgroup{state->cgroup, state->cgroup_paths};
    KillCgroup(cgroup);
    RETURN_IF_ERROR(RemoveCgroup(cgroup, kKillSlackMs));
    RemoveCgroupsNamed(state->id);
  }
  for (const std::string& mount : MountsUnder(dir)) {
    ::umount2(mount.c_str(), MNT_DETACH);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) {
    return FsError("cannot remove " + dir, ec);
  }
  return Ok();
}

// LaunchPipe reads what the intermediate child ("pid N") and the sandbox ("ready" or
// "error: …") write to the ready pipe.
struct LaunchReport {
  pid_t pid = -1;
  bool ready = false;
  std::string error;
  bool timed_out = false;
};

LaunchReport ReadReport(int fd) {
  LaunchReport report;
  std::string text;
  auto deadline = Clock::now() + kLaunchTimeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      report.timed_out = true;
      break;
    }
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    if (rc == 0) {
      report.timed_out = true;
      break;
    }
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;  // Every writer is gone.
    }
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > 64 * 1024) {
      break;
    }
  }
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.starts_with("pid ")) {
      report.pid = static_cast<pid_t>(std::strtol(line.c_str() + 4, nullptr, 10));
    } else if (line == "ready") {
      report.ready = true;
    } else if (line.starts_with("error: ")) {
      report.error = line.substr(7);
    }
  }
  return report;
}

// WriteDecimal formats `v` without allocating (for use between fork and exec).
size_t WriteDecimal(char* out, long v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && n < sizeof(tmp));
  for (size_t i = 0; i < n; ++i) {
    out[i] = tmp[n - 1 - i];
  }
  return n;
}

// Spawn starts the sandbox detached: a child that starts a new session, forks the sandbox and
// exits, so the sandbox is nobody's child here (no zombie, survives us) and reports its pid on
// the ready pipe. Only async-signal-safe calls after fork: the host agent is multithreaded.
Result<void> Spawn(const std::vector<std::string>& args, const std::string& log_path,
                   int ready_write) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!log.valid() || !null.valid()) {
    return sys::IoError("open " + log_path, errno);
  }
  pid_t child = ::fork();
  if (child < 0) {
    return sys::IoError("fork", errno);
  }
  if (child == 0) {
    ::setsid();
    pid_t sandbox = ::fork();
    if (sandbox != 0) {
      char line[32] = "pid ";
      size_t n = 4 + WriteDecimal(line + 4, sandbox);
      line[n++] = '\n';
      (void)!::write(ready_write, line, n);
      ::_exit(sandbox > 0 ? 0 : 1);
    }
    // fds 0-2: /dev/null and the log; 3: the ready pipe; nothing else crosses exec.
    if (::dup2(null.get(), 0) < 0 || ::dup2(log.get(), 1) < 0 || ::dup2(log.get(), 2) < 0 ||
        ::dup2(ready_write, 3) < 0 || ::fcntl(3, F_SETFD, 0) != 0 || ::chdir("/") != 0) {
      ::_exit(127);
    }
    ::syscall(SYS_close_range, 4U, ~0U, CLOSE_RANGE_CLOEXEC);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    static constexpr char kExecFailed[] = "error: cannot execute enclavia-sandbox\n";
    (void)!::write(3, kExecFailed, sizeof(kExecFailed) - 1);
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return Ok();
}

}  // namespace

Result<std::unique_ptr<LocalProvider>> LocalProvider::Create(LocalProviderOptions options) {
  if (options.state_dir.empty() || options.ca_dir.empty()) {
    return Error(Code::kInvalidArgument, "local provider: state_dir and ca_dir are required");
  }
  if (::access(options.sandbox_binary.c_str(), X_OK) != 0) {
    return Error(Code::kInvalidArgument,
                 "local provider: cannot execute " + options.sandbox_binary +
                     " (build the enclavia-sandbox target)");
  }
  std::error_code ec;
  fs::create_directories(options.state_dir + "/enclaves", ec);
  fs::create_directories(options.state_dir + "/locks", ec);
  if (ec) {
    return FsError("cannot create " + options.state_dir, ec);
  }
  ::chmod(options.state_dir.c_str(), 0700);
  RETURN_IF_ERROR(crypto::Init());
  RETURN_IF_ERROR(
      SimulatorCa::LoadOrCreate(options.ca_dir, [] { return std::chrono::system_clock::now(); }));
  // This machine is the "parent instance": its id (measured into PCR4) stays the same across
  // restarts, like an EC2 instance id. Shaped like one: "i-" and 17 hex digits.
  const std::string id_path = options.state_dir + "/instance-id";
  std::string instance_id;
  if (auto text = ReadFile(id_path, 256)) {
    instance_id.assign(text->begin(), text->end());
    while (!instance_id.empty() && instance_id.back() == '\n') {
      instance_id.pop_back();
    }
  } else {
    instance_id = "i-" + HexEncode(crypto::RandomBytes(9)).substr(0, 17);
    std::string line = instance_id + "\n";
    RETURN_IF_ERROR(WriteFileAtomic(
        id_path, ByteSpan(reinterpret_cast<const uint8_t*>(line.data()), line.size()), 0600));
  }
  return std::unique_ptr<LocalProvider>(new LocalProvider(std::move(options), instance_id));
}

std::string LocalProvider::EnclaveDir(const std::string& name) const {
  return options_.state_dir + "/enclaves/" + name;
}

Result<EnclaveInfo> LocalProvider::Launch(const LaunchSpec& spec) {
  if (!config::ValidEnclaveName(spec.name)) {
    return Error(Code::kInvalidArgument,
                 "invalid enclave name \"" + spec.name + "\": use [a-z0-9][a-z0-9-]{0,62}");
  }
  if (spec.eif_path.empty() || spec.eif_path[0] != '/') {
    return Error(Code::kInvalidArgument, "image path must be absolute: " + spec.eif_path);
  }
  // The image is checked before anything is created or started.
  Result<eif::EifInfo> image = eif::ReadEif(spec.eif_path);
  if (!image) {
    return Error(Code::kInvalidArgument,
                 "refusing image " + spec.eif_path + ": " + image.error().message());
  }
  uint32_t cpus = spec.cpus;
  if (cpus == 0) {
    cpus = image->default_cpus > 0 && image->default_cpus <= kMaxCpus
               ? static_cast<uint32_t>(image->default_cpus)
               : kDefaultCpus;
  }
  uint64_t memory_mib = spec.memory_mib;
  if (memory_mib == 0) {
    memory_mib = image->default_mem >= (kMinMemoryMib << 20) ? image->default_mem >> 20
                                                             : kDefaultMemoryMib;
  }
  if (cpus > kMaxCpus) {
    return Error(Code::kInvalidArgument, "cpus must be at most " + std::to_string(kMaxCpus));
  }
  if (memory_mib < kMinMemoryMib || memory_mib > (uint64_t{1} << 24)) {
    return Error(Code::kInvalidArgument,
                 "memory must be between 64 MiB and 16 TiB, not " + std::to_string(memory_mib));
  }

  ASSIGN_OR_RETURN(NameLock lock, NameLock::Acquire(options_.state_dir, spec.name));
  const std::string dir = EnclaveDir(spec.name);
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    Result<SandboxState> old = ReadSandboxState(dir);
    if (old && InfoFrom(*old, dir).state == EnclaveState::kRunning) {
      return Error(Code::kAlreadyExists,
                   "enclave " + spec.name + " already exists and is running; remove it first");
    }
    RETURN_IF_ERROR(Remove(dir, 0));  // A stopped leftover.
  }
  if (!fs::create_directory(dir, ec) || ec) {
    return FsError("cannot create " + dir, ec);
  }
  ::chmod(dir.c_str(), 0700);

  const std::string id = "local-" + spec.name + "-" + HexEncode(crypto::RandomBytes(8));
  std::vector<std::string> args = {options_.sandbox_binary,
                                   "--dir", dir,
                                   "--eif", spec.eif_path,
                                   "--name", spec.name,
                                   "--enclave-id", id,
                                   "--instance-id", instance_id_,
                                   "--ca-dir", options_.ca_dir,
                                   "--kms-dir", options_.ca_dir + "/kms",
                                   "--cpus", std::to_string(cpus),
                                   "--memory-mib", std::to_string(memory_mib),
                                   "--ready-fd", "3"};
  if (spec.debug) {
    args.emplace_back("--debug");
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    int err = errno;
    (void)Remove(dir, 0);
    return sys::IoError("pipe", err);
  }
  UniqueFd ready_read(pipe_fds[0]);
  UniqueFd ready_write(pipe_fds[1]);
  const std::string log = dir + "/" + std::string(kSandboxLog);
  Result<void> spawned = Spawn(args, log, ready_write.get());
  ready_write = UniqueFd();
  if (!spawned) {
    (void)Remove(dir, 0);
    return spawned.error();
  }
  LaunchReport report = ReadReport(ready_read.get());
  if (report.ready) {
    Result<SandboxState> state = ReadSandboxState(dir);
    if (state) {
      return InfoFrom(*state, dir);
    }
    report.error = state.error().message();
  }
  // It did not start: say why, and leave nothing behind.
  std::string reason = report.error;
  if (reason.empty()) {
    reason = report.timed_out ? "the sandbox did not start within 10 s" : LastLine(log);
  }
  if (reason.empty()) {
    reason = "the sandbox exited without a reason (see " + log + ")";
  }
  if (report.pid > 0) {
    if (auto proc = ReadProcessInfo(report.pid)) {
      ::kill(report.pid, SIGKILL);
      (void)WaitGone(report.pid, proc->starttime, kKillSlackMs);
    }
  }
  RemoveCgroupsNamed(id);
  (void)Remove(dir, 0);
  const bool limit = reason.find("do not fit") != std::string::npos;
  return Error(limit ? Code::kLimitExceeded : Code::kInvalidArgument,
               "cannot launch " + spec.name + ": " + reason);
}

Result<std::vector<EnclaveInfo>> LocalProvider::List() {
  std::vector<EnclaveInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.state_dir + "/enclaves", ec)) {
    std::string dir = entry.path().string();
    Result<SandboxState> state = ReadSandboxState(dir);
    if (!state) {
      continue;  // Being launched, or a launch's leftover (Launch or Terminate cleans it).
    }
    out.push_back(InfoFrom(*state, dir));
  }
  if (ec) {
    return FsError("cannot list " + options_.state_dir + "/enclaves", ec);
  }
  std::sort(out.begin(), out.end(),
            [](const EnclaveInfo& a, const EnclaveInfo& b) { return a.name < b.name; });
  return out;
}

Result<EnclaveInfo> LocalProvider::Describe(const std::string& name) {
  if (!config::ValidEnclaveName(name)) {
    return Error(Code::kNotFound, "no enclave named \"" + name + "\"");
  }
  const std::string dir = EnclaveDir(name);
  Result<SandboxState> state = ReadSandboxState(dir);
  if (!state) {
    return Error(Code::kNotFound, "no enclave named " + name);
  }
  return InfoFrom(*state, dir);
}

Result<void> LocalProvider::Terminate(const std::string& name, int grace_ms) {
  if (!config::ValidEnclaveName(name)) {
    return Error(Code::kNotFound, "no enclave named \"" + name + "\"");
  }
  ASSIGN_OR_RETURN(NameLock lock, NameLock::Acquire(options_.state_dir, name));
  const std::string dir = EnclaveDir(name);
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    return Error(Code::kNotFound, "no enclave named " + name);
  }
  return Remove(dir, grace_ms);
}

Result<std::string> LocalProvider::Console(const std::string& name, uint64_t offset) {
  ASSIGN_OR_RETURN(EnclaveInfo info, Describe(name));
  if (!info.debug) {
    return Error(Code::kFailedPrecondition,
                 "enclave " + name + " is not in debug mode; its console is closed (as on Nitro)");
  }
  auto fd = sys::Open(EnclaveDir(name) + "/" + std::string(kConsoleLog), O_RDONLY);
  if (!fd) {
    return std::string();  // Nothing written yet.
  }
  ASSIGN_OR_RETURN(uint64_t size, sys::FileSize(fd->get()));
  if (offset >= size) {
    return std::string();
  }
  std::string out(std::min(size - offset, kMaxConsoleRead), '\0');
  RETURN_IF_ERROR(sys::PreadFull(
      fd->get(), std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()), offset));
  return out;
}

}  // namespace enclavia::host
