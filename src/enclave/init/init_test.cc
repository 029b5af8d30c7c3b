// SPDX-License-Identifier: Apache-2.0
#include "enclave/init/init.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "host/nsm/nsm_server.h"
#include "host/nsm/simulator.h"

namespace enclavia::init {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// TempDir is a fresh directory under $TMPDIR, removed with its contents at the end of the test.
class TempDir {
 public:
  // `base`: where to create it (default $TMPDIR or /tmp).
  explicit TempDir(const char* base = std::getenv("TMPDIR")) {
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

// ShellApp runs `script` as the test's own uid/gid (the default, 65534, could not write the
// test's directories).
config::AppConfig ShellApp(const std::string& script) {
  config::AppConfig app;
  app.cmd = {"/bin/sh", "-c", script};
  app.uid = ::geteuid();
  app.gid = ::getegid();
  return app;
}

// SelfIds is the [app] lines that keep the test's uid/gid.
std::string SelfIds() {
  return "uid = " + std::to_string(::geteuid()) + "\ngid = " + std::to_string(::getegid()) + "\n";
}

// ConfigToml renders a minimal enclave.toml running `cmd` (TOML array syntax) with `app_extra`
// lines appended to [app].
std::string ConfigToml(const std::string& cmd, const std::string& app_extra = "") {
  return "version = 1\n[enclave]\nname = \"t\"\nversion = \"1\"\n[app]\ncmd = " + cmd + "\n" +
         SelfIds() + app_extra;
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

TEST(ParseFlagsTest, IngressAndNsm) {
  auto defaults = ParseFlags({});
  EXPECT_EQ(defaults->ingress_path, "/usr/bin/enclavia-ingress");
  EXPECT_EQ(defaults->nsm_path, "/dev/nsm");
  auto flags = ParseFlags({"--ingress", "/x/ingress", "--nsm=/run/nsm.sock"});
  ASSERT_TRUE(flags) << flags.error().message();
  EXPECT_EQ(flags->ingress_path, "/x/ingress");
  EXPECT_EQ(flags->nsm_path, "/run/nsm.sock");
  EXPECT_EQ(ParseFlags({"--no-ingress"})->ingress_path, "");
  EXPECT_FALSE(ParseFlags({"--nsm"}));
  EXPECT_FALSE(ParseFlags({"--ingress="}));
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
  app.gid = 0;
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

TEST(RunAppTest, DefaultsToNobodyWithoutCapabilities) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to change uid";
  }
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
  config::AppConfig app;
  app.cmd = {"/bin/sh", "-c",
             "echo $(id -u) $(id -g) > " + dir.path() + "/ids; "
             "grep -E '^(CapBnd|CapEff|CapInh|NoNewPrivs)' /proc/self/status >> " + dir.path() +
                 "/ids"};
  auto exit = RunApp(app, Reaping::kAppOnly);
  ASSERT_TRUE(exit) << exit.error().message();
  ASSERT_EQ(exit->exit_code, 0);
  EXPECT_EQ(ReadText(dir.path() + "/ids"),
            "65534 65534\nCapInh:\t0000000000000000\nCapEff:\t0000000000000000\n"
            "CapBnd:\t0000000000000000\nNoNewPrivs:\t1\n");
}

TEST(RunAppTest, ExplicitRootKeepsNoCapability) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root";
  }
  TempDir dir;
  config::AppConfig app = ShellApp("id -u > " + dir.path() + "/out; grep -E '^Cap(Eff|Bnd)' "
                                   "/proc/self/status >> " + dir.path() + "/out");
  app.uid = 0;
  app.gid = 0;
  auto exit = RunApp(app, Reaping::kAppOnly);
  ASSERT_TRUE(exit) << exit.error().message();
  ASSERT_EQ(exit->exit_code, 0);
  EXPECT_EQ(ReadText(dir.path() + "/out"),
            "0\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n");
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

using std::chrono::milliseconds;
using config::RestartPolicy;

TEST(RestartTrackerTest, NeverStopsAtOnce) {
  RestartTracker tracker(RestartPolicy::kNever, 5);
  EXPECT_FALSE(tracker.OnExit(1, milliseconds(10)).restart);
  RestartTracker clean(RestartPolicy::kNever, 5);
  EXPECT_FALSE(clean.OnExit(0, milliseconds(60000)).restart);
}

TEST(RestartTrackerTest, OnFailureRestartsFailuresButNotCleanExits) {
  RestartTracker tracker(RestartPolicy::kOnFailure, 5);
  auto failed = tracker.OnExit(3, milliseconds(20000));
  EXPECT_TRUE(failed.restart);
  EXPECT_EQ(failed.delay, milliseconds(500));
  auto killed = tracker.OnExit(128 + SIGSEGV, milliseconds(20000));
  EXPECT_TRUE(killed.restart);
  EXPECT_THAT(killed.reason, HasSubstr("killed by signal 11"));
  auto clean = tracker.OnExit(0, milliseconds(1));
  EXPECT_FALSE(clean.restart);
  EXPECT_THAT(clean.reason, HasSubstr("on-failure"));
}

TEST(RestartTrackerTest, AlwaysRestartsCleanExitsButCountsQuickOnes) {
  RestartTracker tracker(RestartPolicy::kAlways, 3);
  EXPECT_TRUE(tracker.OnExit(0, milliseconds(20000)).restart);
  EXPECT_EQ(tracker.quick_failures(), 0U);
  EXPECT_TRUE(tracker.OnExit(0, milliseconds(5)).restart);
  EXPECT_TRUE(tracker.OnExit(0, milliseconds(5)).restart);
  EXPECT_FALSE(tracker.OnExit(0, milliseconds(5)).restart);  // Third quick exit: the limit.
}

TEST(RestartTrackerTest, BackoffDoublesToTheCapAndGivesUpAtTheLimit) {
  RestartTracker tracker(RestartPolicy::kOnFailure, 7);
  std::vector<int64_t> delays;
  for (int i = 0; i < 6; ++i) {
    auto d = tracker.OnExit(1, milliseconds(100));
    ASSERT_TRUE(d.restart) << i;
    delays.push_back(d.delay.count());
  }
  EXPECT_THAT(delays, ElementsAre(500, 1000, 2000, 4000, 8000, 8000));
  auto last = tracker.OnExit(1, milliseconds(100));
  EXPECT_FALSE(last.restart);
  EXPECT_THAT(last.reason, HasSubstr("7 times in a row (restart_limit): giving up"));
}

TEST(RestartTrackerTest, ALongRunResetsTheCount) {
  RestartTracker tracker(RestartPolicy::kOnFailure, 2);
  EXPECT_TRUE(tracker.OnExit(1, milliseconds(100)).restart);  // 1 quick failure.
  auto slow = tracker.OnExit(1, milliseconds(10000));          // Ran 10 s: not quick.
  EXPECT_TRUE(slow.restart);
  EXPECT_EQ(slow.delay, milliseconds(500));
  EXPECT_EQ(tracker.quick_failures(), 0U);
  EXPECT_TRUE(tracker.OnExit(1, milliseconds(100)).restart);
  EXPECT_FALSE(tracker.OnExit(1, milliseconds(100)).restart);
}

TEST(RestartTrackerTest, LimitOneNeverRestartsAQuickFailure) {
  RestartTracker tracker(RestartPolicy::kOnFailure, 1);
  EXPECT_FALSE(tracker.OnExit(1, milliseconds(100)).restart);
}

// Supervise runs in this (non-PID-1) process with short delays.
SupervisorOptions FastOptions(config::AppConfig app) {
  SupervisorOptions options;
  options.app = std::move(app);
  options.output = Output::kConsole;
  options.timing.first_backoff = milliseconds(10);
  options.timing.max_backoff = milliseconds(40);
  options.timing.ingress_backoff = milliseconds(20);
  return options;
}

TEST(SuperviseTest, RestartsUntilTheLimitAndReturnsTheLastStatus) {
  TempDir dir;
  config::AppConfig app = ShellApp("echo run >> " + dir.path() + "/runs; exit 6");
  app.restart = RestartPolicy::kAlways;
  app.restart_limit = 4;
  std::vector<std::string> log;
  SupervisorOptions options = FastOptions(app);
  options.log = [&](std::string_view line) { log.emplace_back(line); };
  auto code = Supervise(options);
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, 6);
  EXPECT_EQ(Split(ReadText(dir.path() + "/runs"), '\n').size(), 4U);
  ASSERT_FALSE(log.empty());
  EXPECT_THAT(log.back(), HasSubstr("giving up"));
}

TEST(SuperviseTest, RestartsAnIngressThatDiesAndStopsItWithTheApp) {
  TempDir dir;
  // The app lives long enough for the ingress (which dies at once) to start several times.
  config::AppConfig app = ShellApp("sleep 0.3; exit 0");
  SupervisorOptions options = FastOptions(app);
  options.ingress_argv = {"/bin/sh", "-c",
                          "echo 'ready test' >&3; echo start >> " + dir.path() + "/ingress; exit 2"};
  auto code = Supervise(options);
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, 0);
  EXPECT_GE(Split(ReadText(dir.path() + "/ingress"), '\n').size(), 3U);
}

TEST(SuperviseTest, SetupFailureStopsWith127) {
  config::AppConfig app = ShellApp("exit 0");
  app.workdir = "/nonexistent/dir";
  auto code = Supervise(FastOptions(app));
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, 127);
}

// CountLinesIn counts the lines of a file (0 when it does not exist).
size_t CountLinesIn(const std::string& path) { return Split(ReadText(path), '\n').size(); }

TEST(SuperviseTest, StartsServicesAndTheAppOnlyOnceTheIngressIsReady) {
  TempDir dir;
  const std::string d = dir.path();
  // The ingress takes a while, leaves a file, then reports ready; the services and the app
  // must both see that file.
  SupervisorOptions options = FastOptions(ShellApp(
      "cat " + d + "/ingress-file " + d + "/services > " + d + "/app-saw; exit 0"));
  options.app.restart = RestartPolicy::kNever;
  options.ingress_argv = {"/bin/sh", "-c",
                          "sleep 0.2; echo before-ready > " + d +
                              "/ingress-file; echo 'ready plain' >&3; exec sleep 30"};
  std::vector<std::string> calls;
  options.start_services = [&]() -> Result<void> {
    calls.push_back("services saw " + ReadText(d + "/ingress-file"));
    std::ofstream(d + "/services") << "services\n";
    return Ok();
  };
  auto code = Supervise(options);
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, 0);
  EXPECT_THAT(calls, ElementsAre("services saw before-ready\n"));
  EXPECT_EQ(ReadText(d + "/app-saw"), "before-ready\nservices\n");
}

TEST(SuperviseTest, AnIngressThatDiesBeforeReadyStopsTheEnclave) {
  TempDir dir;
  SupervisorOptions options = FastOptions(ShellApp("echo ran > " + dir.path() + "/ran"));
  options.ingress_argv = {"/bin/sh", "-c", "exit 3"};
  bool services = false;
  options.start_services = [&]() -> Result<void> {
    services = true;
    return Ok();
  };
  auto code = Supervise(options);
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, kExitError);
  EXPECT_FALSE(services);
  EXPECT_EQ(ReadText(dir.path() + "/ran"), "");  // The app never started.
}

TEST(SuperviseTest, ASilentIngressTimesOutAndOtherLinesAreRefused) {
  TempDir dir;
  SupervisorOptions options = FastOptions(ShellApp("echo ran > " + dir.path() + "/ran"));
  options.timing.ingress_ready = milliseconds(300);
  options.timing.stop_grace = milliseconds(500);
  options.ingress_argv = {"/bin/sh", "-c", "exec sleep 30"};
  auto code = Supervise(options);
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, kExitError);

  options.ingress_argv = {"/bin/sh", "-c", "echo 'error the chain is refused' >&3; exec sleep 30"};
  options.timing.ingress_ready = std::chrono::hours(1);
  code = Supervise(options);
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, kExitError);
  EXPECT_EQ(ReadText(dir.path() + "/ran"), "");
}

TEST(SuperviseTest, QuiesceStopsAppAndStorageResumeRestartsThemSupersededExits) {
  TempDir dir;
  const std::string d = dir.path();
  // The app counts its starts and records its SIGTERM; restart = never, so only "resume" can
  // start it again.
  SupervisorOptions options = FastOptions(ShellApp(
      "echo run >> " + d + "/app-runs; trap 'echo term >> " + d +
      "/app-term; exit 0' TERM; while :; do sleep 0.02; done"));
  options.app.restart = RestartPolicy::kNever;
  // The fake ingress drives the control socket (fd 4) as enclavia-ingress does.
  options.ingress_argv = {
      "/bin/sh", "-c",
      "echo 'ready plain' >&3; "
      "while [ ! -s " + d + "/app-runs ]; do sleep 0.02; done; "
      "echo quiesce >&4; read answer <&4; echo \"$answer\" > " + d + "/answer; "
      "echo resume >&4; "
      "while [ $(wc -l < " + d + "/app-runs) -lt 2 ]; do sleep 0.02; done; "
      "echo superseded >&4; exec sleep 30"};
  std::vector<std::string> calls;
  options.start_services = [&]() -> Result<void> {
    calls.push_back("start services");
    return Ok();
  };
  options.stop_storage = [&] {
    // Only once the application has gone: the volume has one writer.
    calls.push_back("stop storage after app " + ReadText(d + "/app-term"));
  };
  options.start_storage = [&]() -> Result<void> {
    calls.push_back("start storage");
    return Ok();
  };
  auto code = Supervise(options);
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, 0);  // Superseded.
  EXPECT_EQ(ReadText(d + "/answer"), "quiesced\n");
  EXPECT_THAT(calls, ElementsAre("start services", "stop storage after app term\n",
                                 "start storage"));
  EXPECT_EQ(CountLinesIn(d + "/app-runs"), 2U);
  EXPECT_EQ(CountLinesIn(d + "/app-term"), 2U);  // Quiesced once, then stopped when superseded.
}

TEST(SuperviseTest, QuiesceSigkillsAnAppThatIgnoresSigterm) {
  TempDir dir;
  const std::string d = dir.path();
  SupervisorOptions options = FastOptions(
      ShellApp("echo run >> " + d + "/app-runs; trap '' TERM; while :; do sleep 0.02; done"));
  options.timing.stop_grace = milliseconds(200);
  options.ingress_argv = {
      "/bin/sh", "-c",
      "echo 'ready plain' >&3; "
      "while [ ! -s " + d + "/app-runs ]; do sleep 0.02; done; "
      "echo quiesce >&4; read answer <&4; echo \"$answer\" > " + d + "/answer; "
      "echo superseded >&4; exec sleep 30"};
  std::vector<std::string> log;
  options.log = [&](std::string_view line) { log.emplace_back(line); };
  auto code = Supervise(options);
  ASSERT_TRUE(code) << code.error().message();
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(ReadText(d + "/answer"), "quiesced\n");
  EXPECT_THAT(log, ::testing::Contains(HasSubstr("SIGKILL")));
  EXPECT_THAT(log, ::testing::Contains("app exited 137 (quiesced)"));
  EXPECT_EQ(CountLinesIn(d + "/app-runs"), 1U);  // Not restarted while quiesced.
}

// Init runs the built enclavia-init binary with `args`, its stdout and stderr on pipes.
class Init {
 public:
  explicit Init(std::vector<std::string> args, bool new_pid_namespace = false) {
    if (new_pid_namespace) {
      args.insert(args.begin(), {"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--net",
                                 "--uts", "--ipc", ENCLAVIA_INIT_BINARY});
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

// FakeNsm is the NSM simulator served on a Unix socket, as the local sandbox's /dev/nsm.
// `debug` zeroes PCR0, marking a debug-mode enclave.
class FakeNsm {
 public:
  explicit FakeNsm(bool debug) {
    host::Clock clock = [] { return SystemTime(std::chrono::system_clock::now()); };
    auto ca = host::SimulatorCa::LoadOrCreate(dir_.path() + "/ca", clock);
    ENCLAVIA_CHECK(ca.has_value());
    host::SimulatorOptions options;
    options.boot_pcrs = {{0, Bytes(48, 0xa0)}};
    options.debug = debug;
    auto sim = host::NsmSimulator::Create(
        std::make_shared<const host::SimulatorCa>(std::move(ca).value()), std::move(options));
    ENCLAVIA_CHECK(sim.has_value());
    sim_ = std::move(*sim);
    auto server = host::NsmServer::Listen(path(), *sim_);
    ENCLAVIA_CHECK(server.has_value());
    server_.emplace(std::move(*server));
    thread_ = std::thread([this] {
      while (!stop_) {
        static_cast<void>(server_->Poll({}, 50));
      }
    });
  }
  FakeNsm(const FakeNsm&) = delete;
  FakeNsm& operator=(const FakeNsm&) = delete;
  ~FakeNsm() {
    stop_ = true;
    thread_.join();
  }
  std::string path() const { return dir_.path() + "/nsm.sock"; }

 private:
  TempDir dir_{"/var/tmp"};  // Not under /tmp: init as PID 1 mounts a tmpfs there.
  std::unique_ptr<host::NsmSimulator> sim_;
  std::optional<host::NsmServer> server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Args is init's command line: `config`, no ingress unless `ingress` is set, and the NSM.
std::vector<std::string> Args(const std::string& config, const FakeNsm& nsm,
                              const std::string& ingress = "") {
  std::vector<std::string> args = {"--config", config, "--nsm", nsm.path()};
  if (ingress.empty()) {
    args.push_back("--no-ingress");
  } else {
    args.insert(args.end(), {"--ingress", ingress});
  }
  return args;
}

// CountLines counts the lines of a file (0 when it does not exist).
size_t CountLines(const std::string& path) { return Split(ReadText(path), '\n').size(); }

// WriteScript writes an executable shell script.
std::string WriteScript(const TempDir& dir, const std::string& name, const std::string& body) {
  std::string path = dir.Write(name, "#!/bin/sh\n" + body + "\n");
  ENCLAVIA_CHECK(::chmod(path.c_str(), 0755) == 0);
  return path;
}

TEST(InitBinaryTest, RunsTheAppWithExactlyTheConfiguredEnvironment) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/true);
  std::string config = dir.Write(
      "enclave.toml", ConfigToml(R"(["/usr/bin/env"])", "[app.env]\nGREETING = \"hi\"\n"));
  Init init(Args(config, nsm));
  EXPECT_EQ(init.Wait(), 0) << init.stderr_text();
  EXPECT_EQ(init.stdout_text(),
            "GREETING=hi\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
  EXPECT_THAT(init.stderr_text(), HasSubstr("debug-mode enclave"));
}

TEST(InitBinaryTest, AppliesTheWorkdirAndPropagatesTheExitStatus) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/true);
  std::string config = dir.Write("enclave.toml", ConfigToml(R"(["/bin/sh", "-c", "pwd; exit 3"])",
                                                            "workdir = \"" + dir.path() +
                                                                "\"\nrestart = \"never\"\n"));
  Init init(Args(config, nsm));
  EXPECT_EQ(init.Wait(), 3) << init.stderr_text();
  EXPECT_EQ(init.stdout_text(), dir.path() + "\n");
}

TEST(InitBinaryTest, AppOutputIsDiscardedUnlessDebugMode) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/false);
  std::string ingress = WriteScript(dir, "ingress", "echo ingress-secret; echo ingress-err >&2; "
                                                    "echo 'ready plain' >&3; exec sleep 30");
  std::string config = dir.Write(
      "enclave.toml",
      ConfigToml(R"(["/bin/sh", "-c", "echo app-secret; echo app-err >&2; echo ran > )" +
                 dir.path() + R"(/ran; sleep 0.3"])"));
  Init init(Args(config, nsm, ingress));
  EXPECT_EQ(init.Wait(), 0) << init.stderr_text();
  EXPECT_EQ(ReadText(dir.path() + "/ran"), "ran\n");  // The app did run...
  EXPECT_EQ(init.stdout_text(), "");                   // ...and the host saw nothing.
  EXPECT_EQ(init.stderr_text(), "");
}

TEST(InitBinaryTest, RestartsOnFailureThenGivesUpAfterTheLimit) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/true);
  std::string config = dir.Write(
      "enclave.toml", ConfigToml(R"(["/bin/sh", "-c", "echo run >> )" + dir.path() +
                                     R"(/runs; exit 3"])",
                                 "restart_limit = 3\n"));
  auto started = std::chrono::steady_clock::now();
  Init init(Args(config, nsm));
  EXPECT_EQ(init.Wait(), 3) << init.stderr_text();
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(CountLines(dir.path() + "/runs"), 3U);
  // Backoff 0.5 s then 1 s between the three runs.
  EXPECT_GE(took, std::chrono::milliseconds(1400));
  EXPECT_THAT(init.stderr_text(), HasSubstr("3 times in a row (restart_limit): giving up"));
}

TEST(InitBinaryTest, OnFailureStopsAfterACleanExit) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/true);
  std::string config = dir.Write(
      "enclave.toml",
      ConfigToml(R"(["/bin/sh", "-c", "echo run >> )" + dir.path() + R"(/runs; exit 0"])"));
  Init init(Args(config, nsm));
  EXPECT_EQ(init.Wait(), 0) << init.stderr_text();
  EXPECT_EQ(CountLines(dir.path() + "/runs"), 1U);
}

TEST(InitBinaryTest, NeverRestartsWithPolicyNever) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/true);
  std::string config = dir.Write(
      "enclave.toml", ConfigToml(R"(["/bin/sh", "-c", "echo run >> )" + dir.path() +
                                     R"(/runs; kill -KILL $$"])",
                                 "restart = \"never\"\n"));
  Init init(Args(config, nsm));
  EXPECT_EQ(init.Wait(), 128 + SIGKILL) << init.stderr_text();
  EXPECT_EQ(CountLines(dir.path() + "/runs"), 1U);
  EXPECT_THAT(init.stderr_text(), HasSubstr("restart = \"never\": stopping"));
}

TEST(InitBinaryTest, SigtermShutsDownAppAndIngressCleanly) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/true);
  std::string ingress = WriteScript(
      dir, "ingress",
      "trap 'echo term > " + dir.path() + "/ingress-term; exit 0' TERM; echo \"$@\" > " +
          dir.path() + "/ingress-args; echo 'ready plain' >&3; while :; do sleep 0.05; done");
  std::string config = dir.Write(
      "enclave.toml",
      ConfigToml(R"(["/bin/sh", "-c", "trap 'echo term > )" + dir.path() +
                 R"(/app-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done"])"));
  Init init(Args(config, nsm, ingress));
  ASSERT_TRUE(init.ReadStdoutUntil("ready\n")) << init.stderr_text();
  // The fake ingress writes its arguments once its TERM trap is set: wait for that too.
  for (int i = 0; i < 500 && ReadText(dir.path() + "/ingress-args").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(::kill(init.pid(), SIGTERM), 0);
  EXPECT_EQ(init.Wait(), 0) << init.stderr_text();
  EXPECT_EQ(ReadText(dir.path() + "/app-term"), "term\n");
  EXPECT_EQ(ReadText(dir.path() + "/ingress-term"), "term\n");
  EXPECT_EQ(ReadText(dir.path() + "/ingress-args"),
            "--config " + config + " --nsm " + nsm.path() + " --ready-fd 3 --control-fd 4\n");
}

TEST(InitBinaryTest, SigkillsAnAppThatIgnoresSigterm) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/true);
  std::string config = dir.Write(
      "enclave.toml",
      ConfigToml(R"(["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"])"));
  Init init(Args(config, nsm));
  ASSERT_TRUE(init.ReadStdoutUntil("ready\n")) << init.stderr_text();
  auto sent = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(init.pid(), SIGINT), 0);
  EXPECT_EQ(init.Wait(), 0) << init.stderr_text();
  auto took = std::chrono::steady_clock::now() - sent;
  EXPECT_GE(took, std::chrono::milliseconds(4900));
  EXPECT_LT(took, std::chrono::seconds(9));
}

TEST(InitBinaryTest, RestartsTheIngressWhenItDies) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/true);
  std::string ingress = WriteScript(
      dir, "ingress", "echo 'ready plain' >&3; echo start >> " + dir.path() + "/starts; exit 1");
  std::string config = dir.Write(
      "enclave.toml", ConfigToml(R"(["/bin/sh", "-c", "echo ready; exec sleep 30"])"));
  Init init(Args(config, nsm, ingress));
  ASSERT_TRUE(init.ReadStdoutUntil("ready\n")) << init.stderr_text();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // 1 s backoff per restart.
  ASSERT_EQ(::kill(init.pid(), SIGTERM), 0);
  EXPECT_EQ(init.Wait(), 0) << init.stderr_text();
  size_t starts = CountLines(dir.path() + "/starts");
  EXPECT_GE(starts, 2U);
  EXPECT_LE(starts, 4U);
  EXPECT_THAT(init.stderr_text(), HasSubstr("ingress exited 1; restarting in 1000 ms"));
}

TEST(InitBinaryTest, StartsTheAppOnlyAfterTheIngressIsReady) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/false);
  const std::string d = dir.path();
  std::string ingress = WriteScript(
      dir, "ingress",
      "sleep 0.3; echo before-ready > " + d + "/ingress-file; echo 'ready plain' >&3; "
      "exec sleep 30");
  std::string config = dir.Write(
      "enclave.toml", ConfigToml("[\"/bin/sh\", \"-c\", \"cat " + d + "/ingress-file > " + d +
                                     "/app-saw\"]",
                                 "restart = \"never\"\n"));
  Init init(Args(config, nsm, ingress));
  EXPECT_EQ(init.Wait(), 0) << init.stderr_text();
  EXPECT_EQ(ReadText(d + "/app-saw"), "before-ready\n");
}

TEST(InitBinaryTest, TheRealIngressReportsReadyAndTheAppStarts) {
#ifndef ENCLAVIA_INGRESS_BINARY
  GTEST_SKIP() << "enclavia-ingress is not built in this configuration";
#else
  TempDir dir;
  FakeNsm nsm(/*debug=*/true);
  const std::string d = dir.path();
  // The wrapper gives the ingress Unix listeners in the test's directory and a host upgrade
  // service that does not exist (so it boots unchained) and passes init's flags on.
  std::string ingress = WriteScript(
      dir, "ingress",
      std::string("exec ") + ENCLAVIA_INGRESS_BINARY + " --listen unix:" + d +
          "/5000.sock --attestation-listen unix:" + d + "/5001.sock --upgrade-listen unix:" + d +
          "/5005.sock --parent-upgrade unix:" + d + "/no-host.sock \"$@\"");
  std::string config = dir.Write(
      "enclave.toml", ConfigToml("[\"/bin/sh\", \"-c\", \"test -S " + d +
                                     "/5000.sock && echo listening > " + d + "/app-saw\"]",
                                 "restart = \"never\"\nport = 8080\n"));
  Init init(Args(config, nsm, ingress));
  EXPECT_EQ(init.Wait(), 0) << init.stderr_text();
  EXPECT_EQ(ReadText(d + "/app-saw"), "listening\n") << init.stderr_text();
  EXPECT_THAT(init.stderr_text(), HasSubstr("ingress ready upgrade"));
#endif
}

TEST(InitBinaryTest, AnIngressThatDiesBeforeReadyStopsInitWithOneLine) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/false);  // The line reaches the host even in production.
  std::string ingress = WriteScript(dir, "ingress", "exit 1");
  std::string config = dir.Write(
      "enclave.toml", ConfigToml("[\"/bin/sh\", \"-c\", \"echo ran > " + dir.path() + "/ran\"]"));
  Init init(Args(config, nsm, ingress));
  EXPECT_EQ(init.Wait(), 1);
  EXPECT_EQ(init.stderr_text(), "enclavia-init: the ingress exited 1 before reporting ready\n");
  EXPECT_EQ(ReadText(dir.path() + "/ran"), "");
}

TEST(InitBinaryTest, QuiesceStopsAppAndStorageResumeRestartsThemSupersededExits0) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/true);
  const std::string d = dir.path();
  // The storage daemon stands in for enclavia-storage: it logs starts and stops (flush).
  std::string storage = WriteScript(
      dir, "storage",
      "trap 'echo stop >> " + d + "/storage-log; exit 0' TERM; echo start >> " + d +
          "/storage-log; echo 'ready /data' >&3; while :; do sleep 0.02; done");
  std::string ingress = WriteScript(
      dir, "ingress",
      "echo 'ready plain' >&3\n"
      "while [ ! -s " + d + "/app-runs ]; do sleep 0.02; done\n"
      "echo quiesce >&4; read answer <&4; echo \"$answer\" > " + d + "/answer\n"
      "cp " + d + "/storage-log " + d + "/storage-at-quiesced\n"
      "echo resume >&4\n"
      "while [ $(wc -l < " + d + "/app-runs) -lt 2 ]; do sleep 0.02; done\n"
      "echo superseded >&4; exec sleep 30");
  std::string config = dir.Write(
      "enclave.toml",
      ConfigToml("[\"/bin/sh\", \"-c\", \"echo run >> " + d +
                     "/app-runs; trap 'exit 0' TERM; while :; do sleep 0.02; done\"]",
                 "restart = \"never\"\n[storage]\npath = \"/data\"\n"));
  std::vector<std::string> args = Args(config, nsm, ingress);
  args.insert(args.end(), {"--storage", storage});
  Init init(args);
  EXPECT_EQ(init.Wait(), 0) << init.stderr_text();
  EXPECT_EQ(ReadText(d + "/answer"), "quiesced\n");
  EXPECT_EQ(ReadText(d + "/storage-at-quiesced"), "start\nstop\n");  // Flushed before answering.
  EXPECT_EQ(ReadText(d + "/storage-log"), "start\nstop\nstart\nstop\n");
  EXPECT_EQ(CountLines(d + "/app-runs"), 2U);
  EXPECT_THAT(init.stderr_text(), HasSubstr("superseded by an upgrade: stopping"));
}

TEST(InitBinaryTest, MissingBinaryExits127WithOneLine) {
  TempDir dir;
  FakeNsm nsm(/*debug=*/false);
  std::string config = dir.Write("enclave.toml", ConfigToml(R"(["/bin/x-not-there"])"));
  Init init(Args(config, nsm));
  EXPECT_EQ(init.Wait(), 127);
  EXPECT_EQ(init.stderr_text(),
            "enclavia-init: exec /bin/x-not-there: No such file or directory\n");
}

TEST(InitBinaryTest, NoNsmIsFatal) {
  TempDir dir;
  std::string config = dir.Write("enclave.toml", ConfigToml(R"(["/bin/true"])"));
  Init init({"--config", config, "--no-ingress", "--nsm", dir.path() + "/no-nsm"});
  EXPECT_EQ(init.Wait(), 1);
  EXPECT_THAT(init.stderr_text(), StartsWith("enclavia-init: "));
  EXPECT_THAT(init.stderr_text(), HasSubstr(dir.path() + "/no-nsm"));
}

TEST(InitBinaryTest, BadConfigExits1NamingTheKey) {
  TempDir dir;
  std::string config =
      dir.Write("enclave.toml", ConfigToml(R"(["/bin/true"])", "comand = [\"/bin/true\"]\n"));
  Init init({"--config", config, "--no-ingress"});
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
  TempDir dir("/var/tmp");  // Init mounts a tmpfs on /tmp.
  FakeNsm nsm(/*debug=*/true);
  // The inner shell leaves an orphan that exits after 0.1 s; init, as PID 1, must reap it. Then
  // the app looks for zombies in the namespace's /proc.
  std::string config = dir.Write(
      "enclave.toml",
      ConfigToml(R"(["/bin/sh", "-c", "echo pid1=$PPID; sh -c 'sleep 0.1 &'; sleep 0.6; )"
                 R"(if grep -l '^State:.*zombie' /proc/[0-9]*/status; then exit 9; fi; exit 5"])",
                 "restart = \"never\"\n"));
  Init init(Args(config, nsm), /*new_pid_namespace=*/true);
  EXPECT_EQ(init.Wait(), 5) << init.stdout_text() << init.stderr_text();
  EXPECT_THAT(init.stdout_text(), StartsWith("pid1=1\n"));
}

TEST(InitBinaryTest, AsPid1SetsUpTheSystemAndKeepsRootPowerless) {
  if (::geteuid() != 0 || ::access("/usr/bin/unshare", X_OK) != 0 ||
      ::access("/bin/bash", X_OK) != 0) {
    GTEST_SKIP() << "needs root, unshare(1) and bash";
  }
  TempDir dir("/var/tmp");
  ::mkdir((dir.path() + "/m").c_str(), 0755);
  FakeNsm nsm(/*debug=*/true);
  // Runs as uid 0 (SelfIds) in fresh PID, mount and network namespaces.
  std::string script =
      "stat -f -c 'tmp=%T' /tmp; stat -c 'tmpmode=%a' /tmp; "
      "grep '^Max core file size' /proc/self/limits | tr -s ' '; "
      "(exec 3<>/dev/tcp/127.0.0.1/1) 2>&1 | grep -o 'Connection refused' | head -1; "
      "if mount -t tmpfs none " + dir.path() + "/m 2>/dev/null; then echo mounted; "
      "else echo mount-refused; fi";
  std::string config = dir.Write(
      "enclave.toml", ConfigToml("[\"/bin/bash\", \"-c\", \"" + script + "\"]", "restart = \"never\"\n"));
  Init init(Args(config, nsm), /*new_pid_namespace=*/true);
  EXPECT_EQ(init.Wait(), 0) << init.stdout_text() << init.stderr_text();
  EXPECT_EQ(init.stdout_text(),
            "tmp=tmpfs\ntmpmode=1777\nMax core file size 0 0 bytes \n"
            "Connection refused\nmount-refused\n")
      << init.stderr_text();
  EXPECT_THAT(init.stderr_text(), HasSubstr("mounted tmpfs /tmp"));
}

}  // namespace
}  // namespace enclavia::init

namespace enclavia::init {
namespace {

// The storage daemon's ready protocol, with shell scripts standing in for it.
class StartStorageTest : public ::testing::Test {
 protected:
  std::string Script(const std::string& body) {
    std::string path = dir_.Write("storage.sh", "#!/bin/sh\n" + body + "\n");
    ::chmod(path.c_str(), 0755);
    return path;
  }
  TempDir dir_;
};

TEST_F(StartStorageTest, ReadyKeepsTheDaemonUntilStopStorage) {
  std::string marker = dir_.path() + "/stopped";
  auto daemon = StartStorage({Script("trap 'echo bye > " + marker +
                                     "; exit 0' TERM\necho 'ready /data' >&3\n"
                                     "while :; do sleep 0.05; done")},
                             -1, std::chrono::seconds(10));
  ASSERT_TRUE(daemon) << daemon.error().message();
  EXPECT_EQ(daemon->mounted, "/data");
  ASSERT_GT(daemon->pid, 0);
  EXPECT_EQ(::kill(daemon->pid, 0), 0);
  StopStorage(*daemon, std::chrono::seconds(5));
  EXPECT_EQ(daemon->pid, -1);
  EXPECT_EQ(ReadText(marker), "bye\n");
}

TEST_F(StartStorageTest, NoneMeansNoVolumeAndNoDaemon) {
  auto daemon = StartStorage({Script("echo none >&3")}, -1, std::chrono::seconds(10));
  ASSERT_TRUE(daemon) << daemon.error().message();
  EXPECT_EQ(daemon->pid, -1);
  EXPECT_TRUE(daemon->mounted.empty());
}

TEST_F(StartStorageTest, AnErrorStopsTheEnclaveWithItsMessage) {
  auto daemon = StartStorage(
      {Script("echo 'error rollback: the host serves version 3 of volume a but witnesses "
              "acknowledged version 5' >&3\nexit 1")},
      -1, std::chrono::seconds(10));
  ASSERT_FALSE(daemon);
  EXPECT_EQ(daemon.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(daemon.error().message(),
            "storage: rollback: the host serves version 3 of volume a but witnesses acknowledged "
            "version 5");
}

TEST_F(StartStorageTest, SilenceOrACrashIsAnError) {
  auto crashed = StartStorage({Script("exit 3")}, -1, std::chrono::seconds(10));
  ASSERT_FALSE(crashed);
  EXPECT_NE(crashed.error().message().find("without a report"), std::string::npos);
  auto silent = StartStorage({Script("exec sleep 30")}, -1, std::chrono::milliseconds(300));
  ASSERT_FALSE(silent);
  EXPECT_NE(silent.error().message().find("did not report"), std::string::npos);
}

// A production enclave sends daemon output to /dev/null, opened just before the ready pipe: it can
// be descriptor 3, the very number the pipe is handed over as. Output must not land in the pipe.
TEST_F(StartStorageTest, OutputOnDescriptorThreeStaysOutOfTheReadyPipe) {
  // Whatever holds descriptor 3 here (ctest may pass one down) is set aside and put back.
  int saved_flags = ::fcntl(3, F_GETFD);
  int saved = saved_flags == -1 ? -1 : ::fcntl(3, F_DUPFD_CLOEXEC, 10);
  std::string log = dir_.path() + "/output";
  int file = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(file, 0);
  if (file != 3) {
    ASSERT_EQ(::dup3(file, 3, O_CLOEXEC), 3);
    ::close(file);
  }
  auto daemon = StartReadyDaemon(
      "egress", {Script("echo 'a log line first'\necho 'ready tun0' >&3\nexec sleep 30")}, 3,
      std::chrono::seconds(10));
  ::close(3);
  if (saved >= 0) {
    ::dup2(saved, 3);
    ::fcntl(3, F_SETFD, saved_flags);
    ::close(saved);
  }
  ASSERT_TRUE(daemon) << daemon.error().message();
  EXPECT_EQ(daemon->detail, "tun0");
  StopReadyDaemon(*daemon, std::chrono::seconds(5));
  EXPECT_EQ(ReadText(log), "a log line first\n");
}

TEST_F(StartStorageTest, ReadyDaemonErrorsNameTheDaemon) {
  auto daemon = StartReadyDaemon("egress", {Script("echo 'error no /dev/net/tun' >&3")}, -1,
                                 std::chrono::seconds(10));
  ASSERT_FALSE(daemon);
  EXPECT_EQ(daemon.error().message(), "egress: no /dev/net/tun");
}

}  // namespace
}  // namespace enclavia::init
