// SPDX-License-Identifier: Apache-2.0
#include "enclave/init/init.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

namespace enclavia::init {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// TempDir is a fresh directory under $TMPDIR, removed with its contents at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base != nullptr ? base : "/tmp") + "/enclavia-init-XXXXXX";
    ENCLAVIA_CHECK(::mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& text) const {
    std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    return file;
  }

 private:
  std::string path_;
};

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Lines splits `text` at `sep`, dropping a trailing empty piece.
std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string piece;
  std::istringstream in(text);
  while (std::getline(in, piece, sep)) {
    out.push_back(piece);
  }
  return out;
}

config::AppConfig ShellApp(const std::string& script) {
  config::AppConfig app;
  app.cmd = {"/bin/sh", "-c", script};
  return app;
}

// ConfigToml renders a minimal enclave.toml running `cmd` (TOML array syntax) with `app_extra`
// lines appended to [app].
std::string ConfigToml(const std::string& cmd, const std::string& app_extra = "") {
  return "version = 1\n[enclave]\nname = \"t\"\nversion = \"1\"\n[app]\ncmd = " + cmd + "\n" +
         app_extra;
}

TEST(ParseFlagsTest, DefaultsToTheMeasuredConfigPath) {
  auto flags = ParseFlags({});
  ASSERT_TRUE(flags) << flags.error().message();
  EXPECT_EQ(flags->config_path, "/etc/enclavia/enclave.toml");
  EXPECT_FALSE(flags->help);
}

TEST(ParseFlagsTest, AcceptsConfigInBothForms) {
  EXPECT_EQ(ParseFlags({"--config", "/a.toml"})->config_path, "/a.toml");
  EXPECT_EQ(ParseFlags({"--config=/b.toml"})->config_path, "/b.toml");
  EXPECT_TRUE(ParseFlags({"--help"})->help);
}

TEST(ParseFlagsTest, RejectsUnknownAndIncompleteFlags) {
  auto unknown = ParseFlags({"--verbose"});
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message(), HasSubstr("'--verbose'"));
  EXPECT_FALSE(ParseFlags({"--config"}));
  EXPECT_FALSE(ParseFlags({"--config="}));
}

TEST(AppEnvironmentTest, IsExactlyTheConfiguredEnvironmentPlusDefaultPath) {
  config::AppConfig app;
  app.env = {{"GREETING", "hi"}, {"A", "1"}, {"Z", "x=y"}};
  EXPECT_THAT(
      AppEnvironment(app),
      ElementsAre("A=1", "GREETING=hi",
                  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "Z=x=y"));
}

TEST(AppEnvironmentTest, KeepsAConfiguredPath) {
  config::AppConfig app;
  app.env = {{"PATH", "/opt/bin"}};
  EXPECT_THAT(AppEnvironment(app), ElementsAre("PATH=/opt/bin"));
}

TEST(LoadConfigTest, ReadsAndParsesTheFile) {
  TempDir dir;
  auto config = LoadConfig(
      dir.Write("enclave.toml", ConfigToml(R"(["/bin/app", "-v"])", "workdir = \"/srv\"\n")));
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_THAT(config->app.cmd, ElementsAre("/bin/app", "-v"));
  EXPECT_EQ(config->app.workdir, "/srv");
}

TEST(LoadConfigTest, BadConfigNamesTheKey) {
  TempDir dir;
  auto config = LoadConfig(dir.Write("enclave.toml", ConfigToml(R"(["/bin/app"])", "bogus = 1\n")));
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message(), HasSubstr("app.bogus"));
}

TEST(LoadConfigTest, MissingFileNamesThePath) {
  auto config = LoadConfig("/nonexistent/enclave.toml");
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message(), HasSubstr("/nonexistent/enclave.toml"));
}

TEST(RunAppTest, PropagatesTheExitStatus) {
  auto exit = RunApp(ShellApp("exit 42"), Reaping::kAppOnly);
  ASSERT_TRUE(exit) << exit.error().message();
  EXPECT_EQ(exit->exit_code, 42);
  EXPECT_EQ(exit->exec_error, "");
}

TEST(RunAppTest, KilledAppGives128PlusSignal) {
  auto exit = RunApp(ShellApp("kill -KILL $$"), Reaping::kAppOnly);
  ASSERT_TRUE(exit) << exit.error().message();
  EXPECT_EQ(exit->exit_code, 128 + SIGKILL);
}

TEST(RunAppTest, EnvironmentIsExactlyAsConfigured) {
  TempDir dir;
  // /proc/$$/environ is what execve gave the shell, before the shell adds anything.
  config::AppConfig app = ShellApp("cat /proc/$$/environ > " + dir.path() + "/env");
  app.env = {{"GREETING", "hi there"}, {"EMPTY", ""}};
  ::setenv("ENCLAVIA_INIT_TEST_LEAK", "1", 1);  // init's own environment must not leak.
  auto exit = RunApp(app, Reaping::kAppOnly);
  ::unsetenv("ENCLAVIA_INIT_TEST_LEAK");
  ASSERT_TRUE(exit) << exit.error().message();
  ASSERT_EQ(exit->exit_code, 0);
  EXPECT_THAT(Split(ReadText(dir.path() + "/env"), '\0'),
              ElementsAre("EMPTY=", "GREETING=hi there",
                          "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
}

TEST(RunAppTest, AppliesTheWorkdir) {
  TempDir dir;
  config::AppConfig app = ShellApp("pwd -P > cwd");
  app.workdir = dir.path();
  auto exit = RunApp(app, Reaping::kAppOnly);
  ASSERT_TRUE(exit) << exit.error().message();
  ASSERT_EQ(exit->exit_code, 0);
  char real[PATH_MAX];
  ASSERT_NE(::realpath(dir.path().c_str(), real), nullptr);
  EXPECT_EQ(ReadText(dir.path() + "/cwd"), std::string(real) + "\n");
}

TEST(RunAppTest, DropsToTheConfiguredUidAndGid) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to change uid";
  }
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
  config::AppConfig app = ShellApp("echo $(id -u) $(id -g) $(id -G) > " + dir.path() + "/ids");
  app.uid = 65534;
  app.gid = 65533;
  auto exit = RunApp(app, Reaping::kAppOnly);
  ASSERT_TRUE(exit) << exit.error().message();
  ASSERT_EQ(exit->exit_code, 0);
  EXPECT_EQ(ReadText(dir.path() + "/ids"), "65534 65533 65533\n");
}

TEST(RunAppTest, DroppingOnlyTheUidAlsoDropsSupplementaryGroups) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to change uid";
  }
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
  config::AppConfig app = ShellApp("echo $(id -u) $(id -G) > " + dir.path() + "/ids");
  app.uid = 65534;
  // Give this (root) process an extra group the application must not inherit.
  std::vector<gid_t> old_groups(static_cast<size_t>(::getgroups(0, nullptr)));
  ASSERT_GE(::getgroups(static_cast<int>(old_groups.size()), old_groups.data()), 0);
  const gid_t extra[] = {4242};
  ASSERT_EQ(::setgroups(1, extra), 0);
  auto exit = RunApp(app, Reaping::kAppOnly);
  ASSERT_EQ(::setgroups(old_groups.size(), old_groups.data()), 0);
  ASSERT_TRUE(exit) << exit.error().message();
  ASSERT_EQ(exit->exit_code, 0);
  EXPECT_EQ(ReadText(dir.path() + "/ids"), "65534 0\n");
}

TEST(RunAppTest, MissingBinaryIsAnExecFailure) {
  config::AppConfig app;
  app.cmd = {"/nonexistent/app"};
  auto exit = RunApp(app, Reaping::kAppOnly);
  ASSERT_TRUE(exit) << exit.error().message();
  EXPECT_EQ(exit->exit_code, 127);
  EXPECT_EQ(exit->exec_error, "exec /nonexistent/app: No such file or directory");
}

TEST(RunAppTest, MissingWorkdirIsAnError) {
  config::AppConfig app = ShellApp("exit 0");
  app.workdir = "/nonexistent/dir";
  auto exit = RunApp(app, Reaping::kAppOnly);
  ASSERT_FALSE(exit);
  EXPECT_EQ(exit.error().message(), "chdir /nonexistent/dir: No such file or directory");
}

TEST(RunAppTest, RelativeCommandIsRejected) {
  config::AppConfig app;
  app.cmd = {"sh", "-c", "exit 0"};
  auto exit = RunApp(app, Reaping::kAppOnly);
  ASSERT_FALSE(exit);
  EXPECT_THAT(exit.error().message(), HasSubstr("absolute"));
}

// Init runs the built enclavia-init binary with `args`, its stdout and stderr on pipes.
class Init {
 public:
  explicit Init(std::vector<std::string> args, bool new_pid_namespace = false) {
    if (new_pid_namespace) {
      args.insert(args.begin(),
                  {"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", ENCLAVIA_INIT_BINARY});
    } else {
      args.insert(args.begin(), ENCLAVIA_INIT_BINARY);
    }
    int out[2];
    int err[2];
    ENCLAVIA_CHECK(::pipe2(out, O_CLOEXEC) == 0 && ::pipe2(err, O_CLOEXEC) == 0);
    std::vector<char*> argv;
    for (std::string& arg : args) {
      argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    pid_ = ::fork();
    ENCLAVIA_CHECK(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::execv(argv[0], argv.data());
      ::_exit(126);
    }
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  Init(const Init&) = delete;
  Init& operator=(const Init&) = delete;
  ~Init() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }

  pid_t pid() const { return pid_; }

  // ReadStdoutUntil reads stdout until it contains `text` or 10 s pass; returns whether it did.
  bool ReadStdoutUntil(const std::string& text) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (stdout_.find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline || Read(out_, stdout_, 100) == kEof) {
        return false;
      }
    }
    return true;
  }

  // Wait collects the rest of the output and returns the exit code (128+N if killed by N).
  int Wait() {
    for (int* fd : {&out_, &err_}) {
      std::string& into = fd == &out_ ? stdout_ : stderr_;
      while (*fd >= 0 && Read(*fd, into, -1) != kEof) {
      }
      if (*fd >= 0) {
        ::close(*fd);
        *fd = -1;
      }
    }
    int status = 0;
    ENCLAVIA_CHECK(::waitpid(pid_, &status, 0) == pid_);
    pid_ = -1;
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  }

  const std::string& stdout_text() const { return stdout_; }
  const std::string& stderr_text() const { return stderr_; }

 private:
  enum ReadResult { kData, kTimeout, kEof };

  // Read appends what `fd` has within `timeout_ms` (-1: no limit) to `into`.
  static ReadResult Read(int fd, std::string& into, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) == 0) {
      return kTimeout;
    }
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) {
      return kEof;
    }
    into.append(buf, static_cast<size_t>(n));
    return kData;
  }

  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  std::string stdout_;
  std::string stderr_;
};

TEST(InitBinaryTest, RunsTheAppWithExactlyTheConfiguredEnvironment) {
  TempDir dir;
  std::string config = dir.Write(
      "enclave.toml", ConfigToml(R"(["/usr/bin/env"])", "[app.env]\nGREETING = \"hi\"\n"));
  Init init({"--config", config});
  EXPECT_EQ(init.Wait(), 0) << init.stderr_text();
  EXPECT_EQ(init.stdout_text(),
            "GREETING=hi\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
  EXPECT_EQ(init.stderr_text(), "");
}

TEST(InitBinaryTest, AppliesTheWorkdirAndPropagatesTheExitStatus) {
  TempDir dir;
  std::string config = dir.Write("enclave.toml", ConfigToml(R"(["/bin/sh", "-c", "pwd; exit 3"])",
                                                            "workdir = \"" + dir.path() + "\"\n"));
  Init init({"--config=" + config});
  EXPECT_EQ(init.Wait(), 3) << init.stderr_text();
  EXPECT_EQ(init.stdout_text(), dir.path() + "\n");
}

TEST(InitBinaryTest, ForwardsSigtermToTheApp) {
  TempDir dir;
  std::string config = dir.Write(
      "enclave.toml",
      ConfigToml(
          R"(["/bin/sh", "-c", "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done"])"));
  Init init({"--config", config});
  ASSERT_TRUE(init.ReadStdoutUntil("ready\n")) << init.stderr_text();
  ASSERT_EQ(::kill(init.pid(), SIGTERM), 0);
  EXPECT_EQ(init.Wait(), 7) << init.stderr_text();
}

TEST(InitBinaryTest, ReportsAppKilledBySignalAs128PlusSignal) {
  TempDir dir;
  std::string config =
      dir.Write("enclave.toml", ConfigToml(R"(["/bin/sh", "-c", "echo ready; exec sleep 30"])"));
  Init init({"--config", config});
  ASSERT_TRUE(init.ReadStdoutUntil("ready\n")) << init.stderr_text();
  ASSERT_EQ(::kill(init.pid(), SIGINT), 0);  // Forwarded; sleep has no handler, so it dies.
  EXPECT_EQ(init.Wait(), 128 + SIGINT) << init.stderr_text();
}

TEST(InitBinaryTest, MissingBinaryExits127WithOneLine) {
  TempDir dir;
  std::string config = dir.Write("enclave.toml", ConfigToml(R"(["/bin/x-not-there"])"));
  Init init({"--config", config});
  EXPECT_EQ(init.Wait(), 127);
  EXPECT_EQ(init.stderr_text(),
            "enclavia-init: exec /bin/x-not-there: No such file or directory\n");
}

TEST(InitBinaryTest, BadConfigExits1NamingTheKey) {
  TempDir dir;
  std::string config =
      dir.Write("enclave.toml", ConfigToml(R"(["/bin/true"])", "comand = [\"/bin/true\"]\n"));
  Init init({"--config", config});
  EXPECT_EQ(init.Wait(), 1);
  EXPECT_THAT(init.stderr_text(), StartsWith("enclavia-init: "));
  EXPECT_THAT(init.stderr_text(), HasSubstr("app.comand"));
  EXPECT_EQ(Split(init.stderr_text(), '\n').size(), 1U);
}

TEST(InitBinaryTest, MissingConfigExits1NamingThePath) {
  Init init({"--config", "/nonexistent/enclave.toml"});
  EXPECT_EQ(init.Wait(), 1);
  EXPECT_THAT(init.stderr_text(), StartsWith("enclavia-init: "));
  EXPECT_THAT(init.stderr_text(), HasSubstr("/nonexistent/enclave.toml"));
}

TEST(InitBinaryTest, UnknownFlagIsAUsageError) {
  Init init({"--bogus"});
  EXPECT_EQ(init.Wait(), 2);
  EXPECT_EQ(init.stderr_text(), "enclavia-init: unexpected argument '--bogus'\n");
}

TEST(InitBinaryTest, AsPid1ReapsOrphansAndExitsWithTheAppStatus) {
  if (::geteuid() != 0 || ::access("/usr/bin/unshare", X_OK) != 0) {
    GTEST_SKIP() << "needs root and unshare(1) for a PID namespace";
  }
  TempDir dir;
  // The inner shell leaves an orphan that exits after 0.1 s; init, as PID 1, must reap it. Then
  // the app looks for zombies in the namespace's /proc.
  std::string config = dir.Write(
      "enclave.toml",
      ConfigToml(R"(["/bin/sh", "-c", "echo pid1=$PPID; sh -c 'sleep 0.1 &'; sleep 0.6; )"
                 R"(if grep -l '^State:.*zombie' /proc/[0-9]*/status; then exit 9; fi; exit 5"])"));
  Init init({"--config", config}, /*new_pid_namespace=*/true);
  EXPECT_EQ(init.Wait(), 5) << init.stdout_text() << init.stderr_text();
  EXPECT_THAT(init.stdout_text(), StartsWith("pid1=1\n"));
}

}  // namespace
}  // namespace enclavia::init
