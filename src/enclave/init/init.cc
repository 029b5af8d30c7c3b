// SPDX-License-Identifier: Apache-2.0
#include "enclave/init/init.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <utility>

#include "lib/attestation/nsm_socket.h"
#include "lib/base/file.h"
#include "lib/sys/fd.h"

namespace enclavia::init {
namespace {

constexpr size_t kMaxConfigSize = 1 << 20;

// ChildStage names the step at which the child failed; the child sends it and errno to the
// parent over a close-on-exec pipe, which closes without data when execve succeeds.
enum class ChildStage : int { kOutput, kChdir, kSetgroups, kSetgid, kSetuid, kCapabilities, kExec };

struct ChildFailure {
  ChildStage stage;
  int error;
};

// ForwardedSignals are the signals init passes on to the application.
constexpr int kForwardedSignals[] = {SIGTERM, SIGINT, SIGHUP};

// SignalBlock blocks the forwarded signals and SIGCHLD and makes SIGCHLD's disposition the
// default (an inherited SIG_IGN would make the kernel reap children behind our back), restoring
// both on destruction.
class SignalBlock {
 public:
  SignalBlock() {
    sigemptyset(&set_);
    for (int sig : kForwardedSignals) {
      sigaddset(&set_, sig);
    }
    sigaddset(&set_, SIGCHLD);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGCHLD, &dfl, &old_chld_);
    ::sigprocmask(SIG_BLOCK, &set_, &old_mask_);
  }
  SignalBlock(const SignalBlock&) = delete;
  SignalBlock& operator=(const SignalBlock&) = delete;
  SignalBlock(SignalBlock&&) = delete;
  SignalBlock& operator=(SignalBlock&&) = delete;
  ~SignalBlock() {
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    ::sigaction(SIGCHLD, &old_chld_, nullptr);
  }
  const sigset_t& set() const { return set_; }

 private:
  sigset_t set_{};
  sigset_t old_mask_{};
  struct sigaction old_chld_ {};
};

int ExitCodeOf(int status) {
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return WEXITSTATUS(status);
}

// ChildSetup is what a child becomes before execve; built before fork.
struct ChildSetup {
  const char* workdir = "/";
  bool change_ids = false;  // Become uid/gid (and drop supplementary groups when root).
  uid_t uid = 0;
  gid_t gid = 0;
  bool drop_privileges = false;  // Empty capability sets and no_new_privs (the application).
  int output_fd = -1;            // >= 0: stdin, stdout and stderr become this (/dev/null).
  int ready_fd = -1;             // >= 0: becomes descriptor 3 (the ingress's ready pipe).
  int control_fd = -1;           // >= 0: becomes descriptor 4 (the ingress's control socket).
};

// DropCapabilities empties the bounding, ambient and inheritable sets: after execve the process
// has no capability, whatever its uid (even 0), and can never regain one. Async-signal-safe.
bool DropCapabilities() {
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) {
        break;  // Past the kernel's last capability.
      }
      if (errno == EPERM && ::geteuid() != 0) {
        break;  // An unprivileged init (tests) has nothing to drop.
      }
      return false;
    }
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);  // EINVAL on old kernels: none.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) {
    return false;
  }
  for (auto& d : data) {
    d.inheritable = 0;
  }
  if (::syscall(SYS_capset, &header, data) != 0) {
    return false;
  }
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "enclavia-init: add this architecture's AUDIT_ARCH for the vsock seccomp filter"
#endif

// DenyVsock installs a seccomp filter: socket(AF_VSOCK, ...) fails with EACCES, and system calls
// of another ABI (x32, i386 compat, where socketcall would bypass the check) fail with ENOSYS.
// On Nitro any process may open AF_VSOCK to the parent; the application must not, or it could
// ask the host's egress dialer for connections the enclave's firewall never saw
// (docs/egress.md, "Threat model"). Needs no_new_privs (set by DropCapabilities).
// Async-signal-safe.
bool DenyVsock() {
  static sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
#if defined(__x86_64__)
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1),  // __X32_SYSCALL_BIT
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
#endif
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_VSOCK, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  static sock_fprog program = {static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])),
                               filter};
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) == 0;
}

// ExecChild runs in the forked child and never returns. Only async-signal-safe calls: the
// parent built every string and pointer array before fork.
[[noreturn]] void ExecChild(const ChildSetup& setup, char* const argv[], char* const envp[],
                            int report_fd) {
  auto fail = [report_fd](ChildStage stage) {
    ChildFailure failure{stage, errno};
    // Best effort: if the report cannot be written the parent still sees the exit status.
    ssize_t unused = ::write(report_fd, &failure, sizeof(failure));
    static_cast<void>(unused);
    ::_exit(kExitExecFailed);
  };
  // The child starts as if init were not there: default dispositions (an ignored signal
  // survives execve) and an empty mask.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      ::sigaction(sig, &dfl, nullptr);  // Fails harmlessly for the reserved real-time signals.
    }
  }
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);

  if (setup.output_fd >= 0) {
    for (int fd = 0; fd <= 2; ++fd) {
      if (::dup2(setup.output_fd, fd) < 0) {
        fail(ChildStage::kOutput);
      }
    }
  }
  if (setup.ready_fd >= 0 && setup.control_fd >= 0) {
    // Through copies above 10 first: either source may itself be descriptor 3 or 4.
    int ready = ::fcntl(setup.ready_fd, F_DUPFD_CLOEXEC, 10);
    int control = ::fcntl(setup.control_fd, F_DUPFD_CLOEXEC, 10);
    if (ready < 0 || control < 0 || ::dup2(ready, 3) < 0 || ::dup2(control, 4) < 0) {
      fail(ChildStage::kOutput);  // dup2 clears close-on-exec on 3 and 4.
    }
  }
  if (::chdir(setup.workdir) != 0) {
    fail(ChildStage::kChdir);
  }
  // Before changing ids: emptying the bounding set takes CAP_SETPCAP, which setuid drops. The
  // permitted set (CAP_SETUID, CAP_SETGID) is untouched until execve.
  if (setup.drop_privileges && (!DropCapabilities() || !DenyVsock())) {
    fail(ChildStage::kCapabilities);
  }
  if (setup.change_ids) {
    // Only root has supplementary groups the configuration did not ask for (and only root may
    // call setgroups).
    if (::geteuid() == 0 && ::setgroups(0, nullptr) != 0) {
      fail(ChildStage::kSetgroups);
    }
    if (::getegid() != setup.gid && ::setgid(setup.gid) != 0) {
      fail(ChildStage::kSetgid);
    }
    if (::geteuid() != setup.uid && ::setuid(setup.uid) != 0) {
      fail(ChildStage::kSetuid);
    }
  }
  ::execve(argv[0], argv, envp);
  fail(ChildStage::kExec);
  ::_exit(kExitExecFailed);  // Not reached: fail() exits.
}

std::string DescribeFailure(const std::string& program, const std::string& workdir, uint32_t uid,
                            uint32_t gid, const ChildFailure& failure) {
  std::string what;
  switch (failure.stage) {
    case ChildStage::kOutput:
      what = "redirect output";
      break;
    case ChildStage::kCapabilities:
      what = "drop capabilities";
      break;
    case ChildStage::kChdir:
      what = "chdir " + workdir;
      break;
    case ChildStage::kSetgroups:
      what = "setgroups";
      break;
    case ChildStage::kSetgid:
      what = "setgid " + std::to_string(gid);
      break;
    case ChildStage::kSetuid:
      what = "setuid " + std::to_string(uid);
      break;
    case ChildStage::kExec:
      what = "exec " + program;
      break;
  }
  return what + ": " + std::strerror(failure.error);
}

// WaitPid reaps `pid` (blocking), retrying on EINTR.
Result<int> WaitPid(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return sys::IoError("waitpid", errno);
    }
  }
  return status;
}

// ReadFailure reads the child's report from `fd`: nullopt when the pipe closed without data,
// which means execve succeeded.
Result<std::optional<ChildFailure>> ReadFailure(int fd) {
  ChildFailure failure{};
  auto* bytes = reinterpret_cast<uint8_t*>(&failure);
  size_t got = 0;
  while (got < sizeof(failure)) {
    ASSIGN_OR_RETURN(size_t n,
                     sys::ReadSome(fd, std::span<uint8_t>(bytes + got, sizeof(failure) - got)));
    if (n == 0) {
      break;
    }
    got += n;
  }
  if (got == 0) {
    return std::optional<ChildFailure>();
  }
  if (got != sizeof(failure)) {
    return Error(Code::kInternal, "short report from the application's child process");
  }
  return std::optional<ChildFailure>(failure);
}

// Spawned is the outcome of starting a child: its pid, or why it never ran.
struct Spawned {
  pid_t pid = -1;
  bool exec_failed = false;  // execve failed (failure says why); other stages: setup failed.
  std::string failure;       // Empty: running.
};

// Spawn forks and executes `args` with `env` as `setup` says, and waits only until execve
// succeeded or failed (the close-on-exec report pipe tells). The caller blocks signals first.
Result<Spawned> Spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
                      const std::string& workdir, const ChildSetup& setup) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& arg : args) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (const std::string& var : env) {
    envp.push_back(const_cast<char*>(var.c_str()));
  }
  envp.push_back(nullptr);
  ChildSetup child = setup;
  child.workdir = workdir.c_str();

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return sys::IoError("pipe", errno);
  }
  sys::UniqueFd report_read(pipe_fds[0]);
  sys::UniqueFd report_write(pipe_fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) {
    return sys::IoError("fork", errno);
  }
  if (pid == 0) {
    ExecChild(child, argv.data(), envp.data(), report_write.get());
  }
  report_write = sys::UniqueFd();
  ASSIGN_OR_RETURN(std::optional<ChildFailure> failure, ReadFailure(report_read.get()));
  Spawned spawned;
  spawned.pid = pid;
  if (failure.has_value()) {
    RETURN_IF_ERROR(WaitPid(pid));
    spawned.pid = -1;
    spawned.exec_failed = failure->stage == ChildStage::kExec;
    spawned.failure = DescribeFailure(args[0], workdir, setup.uid, setup.gid, *failure);
  }
  return spawned;
}

ChildSetup AppSetup(const config::AppConfig& app, int output_fd) {
  ChildSetup setup;
  setup.change_ids = true;
  setup.uid = app.uid;
  setup.gid = app.gid;
  setup.drop_privileges = true;
  setup.output_fd = output_fd;
  return setup;
}

Result<void> CheckApp(const config::AppConfig& app) {
  // The config parser checks these too; init checks again because it is the one executing.
  if (app.cmd.empty()) {
    return Error(Code::kInvalidArgument, "app.cmd is empty");
  }
  if (!app.cmd[0].starts_with('/')) {
    return Error(Code::kInvalidArgument,
                 "app.cmd[0] must be an absolute path, got '" + app.cmd[0] + "'");
  }
  return Ok();
}

}  // namespace

Result<Flags> ParseFlags(const std::vector<std::string>& args) {
  Flags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      flags.help = true;
      continue;
    }
    if (arg == "--no-ingress") {
      flags.ingress_path.clear();
      continue;
    }
    std::string name = arg;
    std::string value;
    size_t eq = arg.find('=');
    if (arg.starts_with("--") && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (arg == "--config" || arg == "--ingress" || arg == "--nsm" || arg == "--storage" ||
               arg == "--egress") {
      if (i + 1 == args.size()) {
        return Error(Code::kInvalidArgument, arg + " needs a PATH");
      }
      value = args[++i];
    }
    std::string* target = name == "--config"    ? &flags.config_path
                          : name == "--ingress" ? &flags.ingress_path
                          : name == "--nsm"     ? &flags.nsm_path
                          : name == "--storage" ? &flags.storage_path
                          : name == "--egress"  ? &flags.egress_path
                                                : nullptr;
    if (target == nullptr) {
      return Error(Code::kInvalidArgument, "unexpected argument '" + arg + "'");
    }
    if (value.empty()) {
      return Error(Code::kInvalidArgument, name + " needs a non-empty PATH");
    }
    *target = value;
  }
  return flags;
}

Result<config::EnclaveConfig> LoadConfig(const std::string& path) {
  ASSIGN_OR_RETURN(Bytes text, ReadFile(path, kMaxConfigSize));
  return config::ParseEnclaveConfig(AsString(text));
}

std::vector<std::string> AppEnvironment(const config::AppConfig& app) {
  std::map<std::string, std::string> vars = app.env;  // Sorted by key.
  vars.try_emplace("PATH", kDefaultPath);             // Only if the configuration has none.
  std::vector<std::string> env;
  env.reserve(vars.size());
  for (const auto& [key, value] : vars) {
    env.push_back(key + "=" + value);
  }
  return env;
}

Result<AppExit> RunApp(const config::AppConfig& app, Reaping reaping) {
  RETURN_IF_ERROR(CheckApp(app));
  // Blocked before fork, so a signal sent the moment the child exists is not lost: it waits
  // in the pending set until the loop below forwards it.
  SignalBlock block;
  ASSIGN_OR_RETURN(Spawned spawned, Spawn(app.cmd, AppEnvironment(app), app.workdir,
                                          AppSetup(app, -1)));
  if (!spawned.failure.empty()) {
    if (spawned.exec_failed) {
      return AppExit{kExitExecFailed, std::move(spawned.failure)};
    }
    return Error(Code::kInvalidArgument, std::move(spawned.failure));
  }
  const pid_t pid = spawned.pid;

  // The application runs. Wait for signals: forward termination signals, reap on SIGCHLD.
  // Standard signals coalesce, so each SIGCHLD reaps until nothing is left.
  const pid_t wait_for = reaping == Reaping::kAllChildren ? -1 : pid;
  for (;;) {
    siginfo_t info{};
    int sig = ::sigwaitinfo(&block.set(), &info);
    if (sig < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sys::IoError("sigwaitinfo", errno);
    }
    if (sig != SIGCHLD) {
      // ESRCH (the application is exiting) is harmless: its SIGCHLD is on the way.
      ::kill(pid, sig);
      continue;
    }
    for (;;) {
      int status = 0;
      pid_t reaped = ::waitpid(wait_for, &status, WNOHANG);
      if (reaped < 0 && errno == EINTR) {
        continue;
      }
      if (reaped < 0 && errno != ECHILD) {
        return sys::IoError("waitpid", errno);
      }
      if (reaped <= 0) {
        break;
      }
      if (reaped == pid) {
        return AppExit{ExitCodeOf(status), ""};
      }
    }
  }
}

// ── System setup ──────────────────────────────────────────────────────────────────────────────

namespace {

// IsMountPoint: `path` is on another device than its parent (the root is always one).
bool IsMountPoint(const std::string& path) {
  struct stat self {};
  struct stat parent {};
  if (::stat(path.c_str(), &self) != 0 || ::stat((path + "/..").c_str(), &parent) != 0) {
    return false;
  }
  return self.st_dev != parent.st_dev || self.st_ino == parent.st_ino;
}

}  // namespace

Result<std::vector<std::string>> MountSystem() {
  struct Fs {
    const char* type;
    const char* path;
    unsigned long flags;
    const char* data;
  };
  static constexpr Fs kFileSystems[] = {
      {"proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr},
      {"sysfs", "/sys", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr},
      {"devtmpfs", "/dev", MS_NOSUID | MS_NOEXEC, "mode=0755"},
      {"tmpfs", "/tmp", MS_NOSUID | MS_NODEV, "mode=1777"},
      {"tmpfs", "/run", MS_NOSUID | MS_NODEV, "mode=0755"},
  };
  std::vector<std::string> mounted;
  for (const Fs& fs : kFileSystems) {
    if (::mkdir(fs.path, 0755) != 0 && errno != EEXIST) {
      return sys::IoError(std::string("mkdir ") + fs.path, errno);
    }
    if (IsMountPoint(fs.path)) {
      continue;
    }
    if (::mount(fs.type, fs.path, fs.type, fs.flags, fs.data) != 0) {
      return sys::IoError(std::string("mount ") + fs.type + " on " + fs.path, errno);
    }
    mounted.push_back(std::string(fs.type) + " " + fs.path);
  }
  return mounted;
}

Result<void> BringUpLoopback() {
  sys::UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    return sys::IoError("socket for lo", errno);
  }
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) {
    return sys::IoError("SIOCGIFFLAGS lo", errno);
  }
  req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &req) != 0) {
    return sys::IoError("SIOCSIFFLAGS lo", errno);
  }
  return Ok();
}

Result<void> DisableCoreDumps() {
  rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    return sys::IoError("setrlimit RLIMIT_CORE", errno);
  }
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return sys::IoError("prctl PR_SET_DUMPABLE", errno);
  }
  return Ok();
}

Result<void> SeedRandom(attestation::Nsm& nsm, const std::string& urandom_path) {
  constexpr size_t kSeedBytes = 256;
  Bytes seed;
  while (seed.size() < kSeedBytes) {
    auto random = nsm.GetRandom();
    if (!random) {
      ::explicit_bzero(seed.data(), seed.size());
      return std::move(random).error().WithContext("NSM GetRandom");
    }
    if (random->empty()) {
      ::explicit_bzero(seed.data(), seed.size());
      return Error(Code::kInternal, "NSM GetRandom returned no bytes");
    }
    seed.insert(seed.end(), random->begin(), random->end());
    ::explicit_bzero(random->data(), random->size());
  }
  // Writing to /dev/urandom mixes the bytes into the pool without crediting entropy.
  auto fd = sys::Open(urandom_path, O_WRONLY | O_CLOEXEC);
  Result<void> written = fd ? sys::WriteFull(fd->get(), seed) : Result<void>(fd.error());
  ::explicit_bzero(seed.data(), seed.size());
  return written;
}

Result<bool> IsDebugEnclave(attestation::Nsm& nsm) {
  ASSIGN_OR_RETURN(attestation::PcrDescription pcr0, nsm.DescribePcr(0));
  if (pcr0.value.empty()) {
    return Error(Code::kMalformed, "NSM: PCR0 is empty");
  }
  return std::all_of(pcr0.value.begin(), pcr0.value.end(), [](uint8_t b) { return b == 0; });
}

// ── Supervision ───────────────────────────────────────────────────────────────────────────────

RestartDecision RestartTracker::OnExit(int exit_code, std::chrono::milliseconds ran) {
  using config::RestartPolicy;
  std::string how = exit_code == 0 ? "exited 0"
                    : exit_code > 128 && exit_code < 128 + NSIG
                        ? "was killed by signal " + std::to_string(exit_code - 128)
                        : "exited " + std::to_string(exit_code);
  if (policy_ == RestartPolicy::kNever) {
    return {false, {}, "app " + how + "; restart = \"never\": stopping"};
  }
  if (policy_ == RestartPolicy::kOnFailure && exit_code == 0) {
    return {false, {}, "app " + how + "; restart = \"on-failure\": stopping"};
  }
  if (ran >= timing_.quick_exit) {
    quick_failures_ = 0;
    return {true, timing_.first_backoff, "app " + how + "; restarting"};
  }
  ++quick_failures_;
  if (quick_failures_ >= limit_) {
    return {false, {},
            "app " + how + " within " + std::to_string(timing_.quick_exit.count() / 1000) +
                " s of starting " + std::to_string(quick_failures_) +
                " times in a row (restart_limit): giving up"};
  }
  auto delay = timing_.first_backoff;
  for (uint32_t i = 1; i < quick_failures_ && delay < timing_.max_backoff; ++i) {
    delay *= 2;
  }
  delay = std::min(delay, timing_.max_backoff);
  return {true, delay,
          "app " + how + " (" + std::to_string(quick_failures_) + " quick failure" +
              (quick_failures_ == 1 ? "" : "s") + " in a row); restarting in " +
              std::to_string(delay.count()) + " ms"};
}

namespace {

using Clock = std::chrono::steady_clock;

// Child is one supervised process: the application or the ingress.
struct Child {
  pid_t pid = -1;
  Clock::time_point started{};
  std::optional<Clock::time_point> restart_at;  // Scheduled (re)start.
};

// Lines is a bounded line splitter for the ingress's ready pipe and control socket.
class Lines {
 public:
  // Append adds `data`; false when a line grows past kMaxLine (the peer is then dropped).
  bool Append(std::string_view data) {
    buffer_.append(data);
    return buffer_.find('\n') != std::string::npos || buffer_.size() <= kMaxLine;
  }
  // Next pops the next complete line (without '\n').
  std::optional<std::string> Next() {
    size_t nl = buffer_.find('\n');
    if (nl == std::string::npos) {
      return std::nullopt;
    }
    std::string line = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 1);
    return line;
  }
  void Clear() { buffer_.clear(); }

 private:
  static constexpr size_t kMaxLine = 256;
  std::string buffer_;
};

class Supervisor {
 public:
  explicit Supervisor(const SupervisorOptions& options) : options_(options) {}

  Result<int> Run() {
    RETURN_IF_ERROR(CheckApp(options_.app));
    if (options_.output == Output::kDiscard) {
      auto null_fd = sys::Open("/dev/null", O_RDWR | O_CLOEXEC);
      if (!null_fd) {
        // Without /dev/null the application's output would reach the host: refuse to run.
        return std::move(null_fd).error().WithContext("cannot discard output");
      }
      null_fd_ = std::move(*null_fd);
    }
    SignalBlock block;
    // The blocked signals arrive on a descriptor, so one poll waits for them, the ingress's
    // ready pipe and its control socket.
    signal_fd_ = sys::UniqueFd(::signalfd(-1, &block.set(), SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signal_fd_.valid()) {
      return sys::IoError("signalfd", errno);
    }
    app_env_ = AppEnvironment(options_.app);
    ingress_env_ = {"PATH=" + std::string(kDefaultPath)};
    ingress_argv_ = options_.ingress_argv;
    if (!ingress_argv_.empty()) {
      ingress_argv_.insert(ingress_argv_.end(), {"--ready-fd", "3", "--control-fd", "4"});
      ingress_.restart_at = Clock::now();
      awaiting_ready_ = true;
      ready_deadline_ = Clock::now() + options_.timing.ingress_ready;
    } else {
      StartServicesThenApp();
    }
    for (;;) {
      RETURN_IF_ERROR(StartDue());
      if (done_ && app_.pid < 0 && ingress_.pid < 0) {
        return exit_code_;
      }
      CheckDeadlines();
      pollfd fds[3] = {
          {signal_fd_.get(), POLLIN, 0},
          {ready_fd_.valid() ? ready_fd_.get() : -1, POLLIN, 0},
          {control_fd_.valid() ? control_fd_.get() : -1, POLLIN, 0},
      };
      int n = ::poll(fds, 3, TimeoutMs());
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return sys::IoError("poll", errno);
      }
      if (fds[0].revents != 0) {
        RETURN_IF_ERROR(ReadSignals());
      }
      if (fds[1].revents != 0 && ready_fd_.valid()) {
        ReadReady();
      }
      if (fds[2].revents != 0 && control_fd_.valid()) {
        ReadControl();
      }
    }
  }

 private:
  // Hold says whether the application is held stopped for an upgrade's handover.
  enum class Hold {
    kNone,
    kQuiescing,  // "quiesce" received: waiting for the application to exit.
    kQuiesced,   // The application and the storage daemon are stopped; "quiesced" was sent.
  };

  void Log(const std::string& line) const {
    if (options_.log) {
      options_.log(line);
    }
  }

  // Fatal stops the enclave with kExitError and one line on stderr (in production too: the
  // host sees why its enclave stopped).
  void Fatal(const std::string& line) {
    std::fprintf(stderr, "enclavia-init: %s\n", line.c_str());
    Stop(kExitError);
  }

  // Stop begins the shutdown: no more restarts, SIGTERM now, SIGKILL after the grace period.
  void Stop(int exit_code) {
    if (stopping_) {
      return;
    }
    stopping_ = true;
    done_ = true;
    exit_code_ = exit_code;
    app_.restart_at.reset();
    ingress_.restart_at.reset();
    kill_at_ = Clock::now() + options_.timing.stop_grace;
    KillAll(SIGTERM);
  }

  void KillAll(int sig) {
    for (const Child* child : {&app_, &ingress_}) {
      if (child->pid > 0) {
        ::kill(child->pid, sig);
      }
    }
    if (sig == SIGKILL && options_.reaping == Reaping::kAllChildren) {
      ::kill(-1, SIGKILL);  // PID 1: every other process in the enclave.
    }
  }

  // StartServicesThenApp runs once the first ingress is ready (at once without one): storage
  // and egress (options_.start_services), then the application.
  void StartServicesThenApp() {
    if (hold_ != Hold::kNone || stopping_) {
      return;  // Quiesced before the application ever ran: "resume" starts it.
    }
    if (options_.start_services) {
      if (auto started = options_.start_services(); !started) {
        Fatal(started.error().message());
        return;
      }
    }
    services_started_ = true;
    app_.restart_at = Clock::now();
  }

  void CheckDeadlines() {
    auto now = Clock::now();
    if (stopping_ && !killed_ && now >= kill_at_) {
      KillAll(SIGKILL);
      killed_ = true;
    }
    if (app_kill_at_.has_value() && now >= *app_kill_at_) {
      app_kill_at_.reset();
      if (app_.pid > 0) {
        Log("app did not stop in " + std::to_string(options_.timing.stop_grace.count()) +
            " ms: SIGKILL");
        ::kill(app_.pid, SIGKILL);
      }
    }
    if (awaiting_ready_ && !stopping_ && now >= ready_deadline_) {
      awaiting_ready_ = false;
      Fatal("the ingress did not report ready in " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                               options_.timing.ingress_ready)
                               .count()) +
            " s");
    }
  }

  Result<void> ReadSignals() {
    for (;;) {
      signalfd_siginfo info{};
      ssize_t got = ::read(signal_fd_.get(), &info, sizeof(info));
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0 && errno == EAGAIN) {
        return Ok();
      }
      if (got != static_cast<ssize_t>(sizeof(info))) {
        return sys::IoError("read signalfd", got < 0 ? errno : EIO);
      }
      const int sig = static_cast<int>(info.ssi_signo);
      if (sig == SIGCHLD) {
        RETURN_IF_ERROR(Reap());
      } else if (sig == SIGHUP) {
        if (app_.pid > 0) {
          ::kill(app_.pid, SIGHUP);
        }
      } else {
        Log("signal " + std::to_string(sig) + ": shutting down");
        Stop(0);
      }
    }
  }

  // ── The ingress's ready pipe (its fd 3) ──

  // ReadReady reads what the ingress wrote on its ready pipe. The first ingress's "ready ..."
  // line lets storage, egress and the application start; later lines are only logged.
  void ReadReady() {
    char buf[256];
    ssize_t got = ::read(ready_fd_.get(), buf, sizeof(buf));
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
      return;
    }
    if (got <= 0) {
      ready_fd_ = sys::UniqueFd();  // EOF: the ingress closed it (or died).
      ready_lines_.Clear();
      return;
    }
    if (!ready_lines_.Append(std::string_view(buf, static_cast<size_t>(got)))) {
      ready_fd_ = sys::UniqueFd();
      ready_lines_.Clear();
      if (awaiting_ready_) {
        awaiting_ready_ = false;
        Fatal("the ingress wrote an overlong line on its ready pipe");
      }
      return;
    }
    while (auto line = ready_lines_.Next()) {
      OnReadyLine(*line);
    }
  }

  void OnReadyLine(const std::string& line) {
    if (!awaiting_ready_) {
      Log("ingress: " + line);
      return;
    }
    awaiting_ready_ = false;
    if (!line.starts_with("ready")) {
      Fatal("the ingress reported \"" + line + "\" instead of ready");
      return;
    }
    Log("ingress " + line);
    StartServicesThenApp();
  }

  // DrainReady reads the ready pipe of an ingress that has exited to its end, so a line
  // written just before exiting is not mistaken for silence.
  void DrainReady() {
    while (ready_fd_.valid()) {
      pollfd pfd{ready_fd_.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 0) <= 0) {
        return;  // The ingress is gone but a child of it may hold the pipe: stop here.
      }
      ReadReady();
    }
  }

  // ── The control socket (the ingress's fd 4) ──

  void ReadControl() {
    char buf[256];
    ssize_t got = ::recv(control_fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
      return;
    }
    if (got <= 0 || !control_lines_.Append(std::string_view(buf, static_cast<size_t>(got)))) {
      control_fd_ = sys::UniqueFd();  // The ingress is gone (or misbehaves): its restart
      control_lines_.Clear();         // gets a new socket.
      return;
    }
    while (control_fd_.valid()) {
      auto line = control_lines_.Next();
      if (!line.has_value()) {
        break;
      }
      OnControlLine(*line);
    }
  }

  void Answer(std::string_view line) {
    if (!control_fd_.valid()) {
      return;
    }
    std::string text = std::string(line).append("\n");
    if (auto sent = sys::SendFull(control_fd_.get(), AsBytes(text)); !sent) {
      Log("control socket: " + sent.error().message());
      control_fd_ = sys::UniqueFd();
    }
  }

  void OnControlLine(const std::string& line) {
    if (stopping_) {
      return;
    }
    if (line == "quiesce") {
      OnQuiesce();
    } else if (line == "resume") {
      OnResume();
    } else if (line == "superseded") {
      Log("superseded by an upgrade: stopping");
      Stop(0);
    } else {
      Log("control socket: unknown request \"" + line.substr(0, 64) + "\"");
    }
  }

  // OnQuiesce stops the application (SIGTERM, SIGKILL after stop_grace) and then the storage
  // daemon, and answers "quiesced".
  void OnQuiesce() {
    if (hold_ == Hold::kQuiesced) {
      Answer("quiesced");
      return;
    }
    if (hold_ == Hold::kQuiescing) {
      return;  // The answer comes when the application has exited.
    }
    Log("quiesce: stopping the app and storage for a handover");
    hold_ = Hold::kQuiescing;
    app_.restart_at.reset();
    if (app_.pid > 0) {
      ::kill(app_.pid, SIGTERM);
      app_kill_at_ = Clock::now() + options_.timing.stop_grace;
      return;
    }
    FinishQuiesce();
  }

  void FinishQuiesce() {
    app_kill_at_.reset();
    if (services_started_ && options_.stop_storage) {
      options_.stop_storage();
    }
    hold_ = Hold::kQuiesced;
    Log("quiesced");
    Answer("quiesced");
  }

  // OnResume undoes a quiesce (the handover failed): storage again, then the application.
  void OnResume() {
    if (hold_ != Hold::kQuiesced) {
      Log("resume without a quiesce: ignored");
      return;
    }
    hold_ = Hold::kNone;
    Log("resume: starting storage and the app again");
    if (!services_started_) {
      if (!awaiting_ready_) {
        StartServicesThenApp();
      }
      return;
    }
    if (options_.start_storage) {
      if (auto started = options_.start_storage(); !started) {
        Fatal(started.error().message());
        return;
      }
    }
    app_.restart_at = Clock::now();
  }

  // ── Children ──

  Result<void> StartDue() {
    auto now = Clock::now();
    if (ingress_.restart_at.has_value() && now >= *ingress_.restart_at) {
      ingress_.restart_at.reset();
      RETURN_IF_ERROR(StartIngress(now));
    }
    if (app_.restart_at.has_value() && now >= *app_.restart_at) {
      app_.restart_at.reset();
      ASSIGN_OR_RETURN(Spawned spawned,
                       Spawn(options_.app.cmd, app_env_, options_.app.workdir,
                             AppSetup(options_.app, null_fd_.valid() ? null_fd_.get() : -1)));
      if (!spawned.failure.empty()) {
        // The rootfs is immutable: a failure to set up or execute will not fix itself.
        std::fprintf(stderr, "enclavia-init: %s\n", spawned.failure.c_str());
        Stop(kExitExecFailed);
      } else {
        app_.pid = spawned.pid;
        app_.started = now;
        Log("app started (pid " + std::to_string(spawned.pid) + ")");
      }
    }
    return Ok();
  }

  // StartIngress starts the ingress with a fresh ready pipe on its fd 3 and a fresh control
  // socket on its fd 4 (a restarted ingress gets new ones).
  Result<void> StartIngress(Clock::time_point now) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return sys::IoError("pipe", errno);
    }
    sys::UniqueFd ready_read(pipe_fds[0]);
    sys::UniqueFd ready_write(pipe_fds[1]);
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      return sys::IoError("socketpair", errno);
    }
    sys::UniqueFd control_ours(pair[0]);
    sys::UniqueFd control_theirs(pair[1]);
    ChildSetup setup;
    setup.output_fd = null_fd_.valid() ? null_fd_.get() : -1;
    setup.ready_fd = ready_write.get();
    setup.control_fd = control_theirs.get();
    ASSIGN_OR_RETURN(Spawned spawned, Spawn(ingress_argv_, ingress_env_, "/", setup));
    if (!spawned.failure.empty()) {
      if (awaiting_ready_) {
        awaiting_ready_ = false;
        Fatal("ingress: " + spawned.failure);
        return Ok();
      }
      Log("ingress: " + spawned.failure + "; retrying in " +
          std::to_string(options_.timing.ingress_backoff.count()) + " ms");
      ingress_.restart_at = now + options_.timing.ingress_backoff;
      return Ok();
    }
    ingress_.pid = spawned.pid;
    ingress_.started = now;
    ready_fd_ = std::move(ready_read);
    control_fd_ = std::move(control_ours);
    ready_lines_.Clear();
    control_lines_.Clear();
    Log("ingress started (pid " + std::to_string(spawned.pid) + ")");
    return Ok();
  }

  Result<void> Reap() {
    for (;;) {
      int status = 0;
      pid_t reaped;
      if (options_.reaping == Reaping::kAllChildren) {
        reaped = ::waitpid(-1, &status, WNOHANG);
      } else {
        // Only our own two children: orphans are not ours to reap when init is not PID 1.
        reaped = -1;
        errno = ECHILD;
        for (pid_t pid : {app_.pid, ingress_.pid}) {
          if (pid > 0) {
            pid_t r = ::waitpid(pid, &status, WNOHANG);
            if (r != 0) {
              reaped = r;
              break;
            }
            reaped = 0;
          }
        }
      }
      if (reaped < 0 && errno == EINTR) {
        continue;
      }
      if (reaped < 0 && errno != ECHILD) {
        return sys::IoError("waitpid", errno);
      }
      if (reaped <= 0) {
        return Ok();
      }
      auto now = Clock::now();
      if (reaped == app_.pid) {
        app_.pid = -1;
        OnAppExit(ExitCodeOf(status), now - app_.started);
      } else if (reaped == ingress_.pid) {
        ingress_.pid = -1;
        OnIngressExit(ExitCodeOf(status), now);
      }
    }
  }

  void OnIngressExit(int exit_code, Clock::time_point now) {
    DrainReady();
    ready_fd_ = sys::UniqueFd();
    ready_lines_.Clear();
    if (stopping_) {
      return;
    }
    if (awaiting_ready_) {
      // The first ingress never reported: its chain was refused, or it cannot listen or
      // attest. Without it the enclave cannot serve.
      awaiting_ready_ = false;
      Fatal("the ingress exited " + std::to_string(exit_code) + " before reporting ready");
      return;
    }
    Log("ingress exited " + std::to_string(exit_code) + "; restarting in " +
        std::to_string(options_.timing.ingress_backoff.count()) + " ms");
    ingress_.restart_at = now + options_.timing.ingress_backoff;
  }

  void OnAppExit(int exit_code, Clock::duration ran) {
    if (stopping_) {
      return;
    }
    if (hold_ != Hold::kNone) {
      Log("app exited " + std::to_string(exit_code) + " (quiesced)");
      if (hold_ == Hold::kQuiescing) {
        FinishQuiesce();
      }
      return;
    }
    RestartDecision decision =
        tracker_.OnExit(exit_code, std::chrono::duration_cast<std::chrono::milliseconds>(ran));
    Log(decision.reason);
    if (decision.restart) {
      app_.restart_at = Clock::now() + decision.delay;
      return;
    }
    Stop(exit_code);
  }

  // TimeoutMs is how long to wait: until the next scheduled start or deadline (rounded up).
  int TimeoutMs() const {
    auto now = Clock::now();
    auto next = now + std::chrono::hours(1);
    for (const Child* child : {&app_, &ingress_}) {
      if (child->restart_at.has_value()) {
        next = std::min(next, *child->restart_at);
      }
    }
    if (stopping_ && !killed_) {
      next = std::min(next, kill_at_);
    }
    if (app_kill_at_.has_value()) {
      next = std::min(next, *app_kill_at_);
    }
    if (awaiting_ready_) {
      next = std::min(next, ready_deadline_);
    }
    auto wait = std::max(next - now, Clock::duration::zero());
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait);
    return static_cast<int>(ms.count());
  }

  const SupervisorOptions& options_;
  RestartTracker tracker_{options_.app.restart, options_.app.restart_limit, options_.timing};
  sys::UniqueFd null_fd_;
  sys::UniqueFd signal_fd_;
  std::vector<std::string> app_env_;
  std::vector<std::string> ingress_env_;
  std::vector<std::string> ingress_argv_;
  Child app_;
  Child ingress_;
  // The running ingress's ready pipe (read end) and control socket (our end).
  sys::UniqueFd ready_fd_;
  sys::UniqueFd control_fd_;
  Lines ready_lines_;
  Lines control_lines_;
  bool awaiting_ready_ = false;  // The first ingress has not reported ready yet.
  Clock::time_point ready_deadline_{};
  bool services_started_ = false;
  Hold hold_ = Hold::kNone;
  std::optional<Clock::time_point> app_kill_at_;  // Quiescing: SIGKILL the app then.
  bool stopping_ = false;
  bool done_ = false;
  bool killed_ = false;
  Clock::time_point kill_at_{};
  int exit_code_ = 0;
};

}  // namespace

Result<int> Supervise(const SupervisorOptions& options) {
  Supervisor supervisor(options);
  return supervisor.Run();
}

// ── The program ───────────────────────────────────────────────────────────────────────────────

namespace {

void Complain(const std::string& message) {
  std::fprintf(stderr, "enclavia-init: %s\n", message.c_str());
}

}  // namespace

Result<ReadyDaemon> StartReadyDaemon(std::string_view name, const std::vector<std::string>& argv,
                                     int output_fd, std::chrono::milliseconds timeout) {
  if (argv.empty()) {
    return Error(Code::kInvalidArgument, "no " + std::string(name) + " daemon");
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return sys::IoError("pipe", errno);
  }
  sys::UniqueFd read_end(fds[0]);
  sys::UniqueFd write_end(fds[1]);
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {env_path, nullptr};
  pid_t pid = ::fork();
  if (pid < 0) {
    return sys::IoError("fork", errno);
  }
  if (pid == 0) {
    // Output first: `output_fd` may itself be descriptor 3, which the ready pipe then replaces.
    if (output_fd >= 0) {
      ::dup2(output_fd, 1);
      ::dup2(output_fd, 2);
    }
    if (write_end.get() == 3) {
      ::fcntl(3, F_SETFD, 0);  // dup2 onto itself would leave close-on-exec set.
    } else {
      ::dup2(write_end.get(), 3);  // dup2 clears close-on-exec on the copy.
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(args[0], args.data(), envp);
    ::_exit(kExitExecFailed);
  }
  write_end = sys::UniqueFd();
  ReadyDaemon daemon;
  daemon.pid = pid;
  std::string line;
  auto deadline = Clock::now() + timeout;
  while (line.find('\n') == std::string::npos && line.size() < 4096) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{.fd = read_end.get(), .events = POLLIN, .revents = 0};
    int n = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count())) : 0;
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      StopReadyDaemon(daemon, std::chrono::milliseconds(0));
      return Error(Code::kUnavailable, "the " + std::string(name) + " daemon did not report in " +
                                           std::to_string(timeout.count() / 1000) + " s");
    }
    char buf[256];
    ssize_t got = ::read(read_end.get(), buf, sizeof(buf));
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      break;
    }
    line.append(buf, static_cast<size_t>(got));
  }
  line = line.substr(0, line.find('\n'));
  if (line.starts_with("ready ")) {
    daemon.detail = line.substr(6);
    return daemon;
  }
  if (line == "none") {
    int status = 0;
    ::waitpid(pid, &status, 0);
    daemon.pid = -1;
    return daemon;
  }
  StopReadyDaemon(daemon, std::chrono::milliseconds(2000));
  if (line.starts_with("error ")) {
    return Error(Code::kFailedPrecondition, std::string(name) + ": " + line.substr(6));
  }
  return Error(Code::kFailedPrecondition,
               std::string(name) + ": the daemon ended without a report");
}

void StopReadyDaemon(ReadyDaemon& daemon, std::chrono::milliseconds grace) {
  if (daemon.pid <= 0) {
    return;
  }
  ::kill(daemon.pid, SIGTERM);
  auto deadline = Clock::now() + grace;
  int status = 0;
  for (;;) {
    pid_t done = ::waitpid(daemon.pid, &status, WNOHANG);
    if (done == daemon.pid || (done < 0 && errno == ECHILD)) {
      break;  // ECHILD: it ended earlier and the supervisor reaped it.
    }
    if (Clock::now() >= deadline) {
      ::kill(daemon.pid, SIGKILL);
      ::waitpid(daemon.pid, &status, 0);
      break;
    }
    ::usleep(10000);
  }
  daemon.pid = -1;
}

Result<StorageDaemon> StartStorage(const std::vector<std::string>& argv, int output_fd,
                                   std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(ReadyDaemon ready, StartReadyDaemon("storage", argv, output_fd, timeout));
  StorageDaemon daemon;
  daemon.pid = ready.pid;
  if (ready.pid > 0 && !ready.detail.starts_with("/")) {
    StopReadyDaemon(ready, std::chrono::milliseconds(2000));
    return Error(Code::kFailedPrecondition, "storage: the daemon ended without a report");
  }
  daemon.mounted = ready.detail;
  return daemon;
}

void StopStorage(StorageDaemon& daemon, std::chrono::milliseconds grace) {
  ReadyDaemon ready{daemon.pid, daemon.mounted};
  StopReadyDaemon(ready, grace);
  daemon.pid = -1;
}

int RunInit(const Flags& flags) {
  const bool pid1 = ::getpid() == 1;
  if (auto dumps = DisableCoreDumps(); !dumps) {
    Complain(dumps.error().message());
    return kExitError;
  }
  std::vector<std::string> mounted;
  if (pid1) {
    auto system = MountSystem();
    if (!system) {
      Complain(system.error().message());
      return kExitError;
    }
    mounted = std::move(*system);
    if (auto lo = BringUpLoopback(); !lo) {
      Complain(lo.error().message());
      return kExitError;
    }
  }
  auto config = LoadConfig(flags.config_path);
  if (!config) {
    Complain(config.error().message());
    return kExitError;
  }
  // Without an NSM the enclave can neither seed its RNG nor attest: nothing to run.
  auto nsm = attestation::OpenNsm(flags.nsm_path);
  if (!nsm) {
    Complain(nsm.error().message());
    return kExitError;
  }
  if (auto seeded = SeedRandom(**nsm); !seeded) {
    Complain(seeded.error().message());
    return kExitError;
  }
  auto debug = IsDebugEnclave(**nsm);
  if (!debug) {
    Complain(debug.error().message());
    return kExitError;
  }
  nsm->reset();  // The ingress opens its own connection.

  // The volume, when the image can have one: mounted before the application starts, and the
  // application never starts without the data it expects (a refused mount stops the enclave).
  // Started once the ingress is ready (a successor's ingress is ready only after its handover
  // re-wrapped the volume key), and stopped and started again around an upgrade's quiesce.
  StorageDaemon storage;
  ReadyDaemon egress;
  const bool debug_mode = *debug;
  auto daemon_output = [debug_mode] {
    return debug_mode ? sys::UniqueFd() : sys::UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  };
  auto start_storage = [&]() -> Result<void> {
    if (!config->storage.enabled) {
      return Ok();
    }
    sys::UniqueFd output = daemon_output();
    ASSIGN_OR_RETURN(storage, StartStorage({flags.storage_path, "--config", flags.config_path,
                                            "--nsm", flags.nsm_path, "--ready-fd", "3"},
                                           output.valid() ? output.get() : -1,
                                           std::chrono::minutes(5)));
    if (debug_mode) {
      Complain(storage.mounted.empty() ? std::string("storage: no volume attached")
                                       : "storage: volume mounted at " + storage.mounted);
    }
    return Ok();
  };
  auto stop_storage = [&] {
    if (storage.pid > 0) {
      StopStorage(storage, std::chrono::seconds(20));
      if (debug_mode) {
        Complain("storage: stopped");
      }
    }
  };
  // Egress, when the image enables it: the emulated NIC, firewall and resolver are up before the
  // application starts, and an enclave whose policy cannot be enforced does not run at all.
  auto start_services = [&]() -> Result<void> {
    RETURN_IF_ERROR(start_storage());
    if (!config->egress.enabled) {
      return Ok();
    }
    sys::UniqueFd output = daemon_output();
    auto started = StartReadyDaemon(
        "egress", {flags.egress_path, "--config", flags.config_path, "--ready-fd", "3"},
        output.valid() ? output.get() : -1, std::chrono::seconds(30));
    if (!started) {
      stop_storage();
      return std::move(started).error();
    }
    egress = std::move(*started);
    if (debug_mode) {
      Complain("egress: " + egress.detail);
    }
    return Ok();
  };

  SupervisorOptions options;
  options.app = config->app;
  if (!flags.ingress_path.empty()) {
    options.ingress_argv = {flags.ingress_path, "--config", flags.config_path, "--nsm",
                            flags.nsm_path};
  }
  options.start_services = start_services;
  options.stop_storage = stop_storage;
  options.start_storage = start_storage;
  options.output = *debug ? Output::kConsole : Output::kDiscard;
  options.reaping = pid1 ? Reaping::kAllChildren : Reaping::kAppOnly;
  // Lifecycle lines reach the console in debug mode only: a production enclave shows the host
  // nothing but why it stopped.
  if (*debug) {
    options.log = [](std::string_view line) { Complain(std::string(line)); };
    for (const std::string& m : mounted) {
      Complain("mounted " + m);
    }
    Complain("debug-mode enclave: application output goes to the console");
  }
  auto code = Supervise(options);
  // The application is gone: the storage daemon unmounts and commits the volume.
  StopReadyDaemon(egress, std::chrono::seconds(2));
  StopStorage(storage, std::chrono::seconds(20));
  if (!code) {
    Complain(code.error().message());
    return kExitError;
  }
  return *code;
}

}  // namespace enclavia::init
