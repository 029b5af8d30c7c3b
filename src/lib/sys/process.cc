// SPDX-License-Identifier: Apache-2.0
#include "lib/sys/process.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "lib/sys/fd.h"

namespace enclavia::sys {
namespace {

// ChildExec runs in the forked child: only async-signal-safe calls until execvp.
// `args` is built before fork: a forked child of a threaded process must not allocate.
[[noreturn]] void ChildExec(char* const* args, int out_fd, bool die_with_parent = false,
                            pid_t parent = 0) {
  if (die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);  // The parent is already gone.
    }
  }
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) {
    ::_exit(127);
  }
  ::dup2(null_fd, 0);
  int target = out_fd >= 0 ? out_fd : null_fd;
  ::dup2(target, 1);
  ::dup2(target, 2);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execvp(args[0], args);
  ::_exit(127);
}

std::vector<char*> Args(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  return args;
}

int StatusCode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

Result<int> RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                       std::string* output) {
  if (argv.empty()) {
    return Error(Code::kInvalidArgument, "RunCommand: empty argv");
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return IoError("pipe", errno);
  }
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  std::vector<char*> args = Args(argv);
  pid_t pid = ::fork();
  if (pid < 0) {
    return IoError("fork " + argv[0], errno);
  }
  if (pid == 0) {
    ChildExec(args.data(), write_end.get());
  }
  write_end = UniqueFd();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string captured;
  bool killed = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd pfd{.fd = read_end.get(), .events = POLLIN, .revents = 0};
    int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      continue;
    }
    char buf[4096];
    ssize_t got = ::read(read_end.get(), buf, sizeof(buf));
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      break;  // EOF: the child (and anything it started holding the pipe) closed it.
    }
    if (captured.size() < (64u << 10)) {
      captured.append(buf, static_cast<size_t>(got));
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (output != nullptr) {
    *output = std::move(captured);
  }
  if (killed) {
    return Error(Code::kUnavailable, argv[0] + " did not finish in " +
                                         std::to_string(timeout.count()) + " ms");
  }
  return StatusCode(status);
}

Result<pid_t> Spawn(const std::vector<std::string>& argv, int log_fd, bool die_with_parent) {
  if (argv.empty()) {
    return Error(Code::kInvalidArgument, "Spawn: empty argv");
  }
  std::vector<char*> args = Args(argv);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    return IoError("fork " + argv[0], errno);
  }
  if (pid == 0) {
    ChildExec(args.data(), log_fd, die_with_parent, parent);
  }
  return pid;
}

void TuneAllocatorForStreaming() {
  // Fixed values also turn off glibc's dynamic mmap threshold, which would otherwise raise the
  // trim threshold only after the first large free.
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  mallopt(M_TOP_PAD, 1 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
}

}  // namespace enclavia::sys
