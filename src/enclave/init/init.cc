// SPDX-License-Identifier: Apache-2.0
#include "enclave/init/init.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <utility>

#include <sys/types.h>
#include <sys/wait.h>

#include "lib/base/file.h"
#include "lib/sys/fd.h"

namespace enclavia::init {
namespace {

constexpr size_t kMaxConfigSize = 1 << 20;

// ChildStage names the step at which the child failed; the child sends it and errno to the
// parent over a close-on-exec pipe, which closes without data when execve succeeds.
enum class ChildStage : int { kChdir, kSetgroups, kSetgid, kSetuid, kExec };

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

// ExecChild runs in the forked child and never returns. Only async-signal-safe calls: the
// parent built every string and pointer array before fork.
[[noreturn]] void ExecChild(const config::AppConfig& app, char* const argv[], char* const envp[],
                            int report_fd) {
  auto fail = [report_fd](ChildStage stage) {
    ChildFailure failure{stage, errno};
    // Best effort: if the report cannot be written the parent still sees the exit status.
    ssize_t unused = ::write(report_fd, &failure, sizeof(failure));
    static_cast<void>(unused);
    ::_exit(kExitExecFailed);
  };
  // The application starts as if init were not there: default dispositions (an ignored signal
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

  if (::chdir(app.workdir.c_str()) != 0) {
    fail(ChildStage::kChdir);
  }
  // Dropping to another user also drops root's supplementary groups (only root has any to drop
  // that the configuration did not ask for, and only root may call setgroups).
  if ((app.uid != 0 || app.gid != 0) && ::geteuid() == 0 && ::setgroups(0, nullptr) != 0) {
    fail(ChildStage::kSetgroups);
  }
  if (app.gid != 0 && ::setgid(app.gid) != 0) {
    fail(ChildStage::kSetgid);
  }
  if (app.uid != 0 && ::setuid(app.uid) != 0) {
    fail(ChildStage::kSetuid);
  }
  ::execve(argv[0], argv, envp);
  fail(ChildStage::kExec);
  ::_exit(kExitExecFailed);  // Not reached: fail() exits.
}

std::string DescribeFailure(const config::AppConfig& app, const ChildFailure& failure) {
  std::string what;
  switch (failure.stage) {
    case ChildStage::kChdir:
      what = "chdir " + app.workdir;
      break;
    case ChildStage::kSetgroups:
      what = "setgroups";
      break;
    case ChildStage::kSetgid:
      what = "setgid " + std::to_string(app.gid);
      break;
    case ChildStage::kSetuid:
      what = "setuid " + std::to_string(app.uid);
      break;
    case ChildStage::kExec:
      what = "exec " + app.cmd[0];
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

}  // namespace

Result<Flags> ParseFlags(const std::vector<std::string>& args) {
  Flags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      flags.help = true;
    } else if (arg == "--config") {
      if (i + 1 == args.size()) {
        return Error(Code::kInvalidArgument, "--config needs a PATH");
      }
      flags.config_path = args[++i];
    } else if (arg.starts_with("--config=")) {
      flags.config_path = arg.substr(std::string_view("--config=").size());
    } else {
      return Error(Code::kInvalidArgument, "unexpected argument '" + arg + "'");
    }
    if (flags.config_path.empty()) {
      return Error(Code::kInvalidArgument, "--config needs a non-empty PATH");
    }
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
  // The config parser checks these too; init checks again because it is the one executing.
  if (app.cmd.empty()) {
    return Error(Code::kInvalidArgument, "app.cmd is empty");
  }
  if (!app.cmd[0].starts_with('/')) {
    return Error(Code::kInvalidArgument,
                 "app.cmd[0] must be an absolute path, got '" + app.cmd[0] + "'");
  }

  // Everything the child touches is built before fork.
  std::vector<std::string> env = AppEnvironment(app);
  std::vector<char*> argv;
  argv.reserve(app.cmd.size() + 1);
  for (const std::string& arg : app.cmd) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (const std::string& var : env) {
    envp.push_back(const_cast<char*>(var.c_str()));
  }
  envp.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return sys::IoError("pipe", errno);
  }
  sys::UniqueFd report_read(pipe_fds[0]);
  sys::UniqueFd report_write(pipe_fds[1]);

  // Blocked before fork, so a signal sent the moment the child exists is not lost: it waits
  // in the pending set until the loop below forwards it.
  SignalBlock block;
  pid_t pid = ::fork();
  if (pid < 0) {
    return sys::IoError("fork", errno);
  }
  if (pid == 0) {
    ExecChild(app, argv.data(), envp.data(), report_write.get());
  }
  report_write = sys::UniqueFd();

  ASSIGN_OR_RETURN(std::optional<ChildFailure> failure, ReadFailure(report_read.get()));
  if (failure.has_value()) {
    RETURN_IF_ERROR(WaitPid(pid));
    std::string message = DescribeFailure(app, *failure);
    if (failure->stage == ChildStage::kExec) {
      return AppExit{kExitExecFailed, std::move(message)};
    }
    return Error(Code::kInvalidArgument, std::move(message));
  }

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

}  // namespace enclavia::init
