// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_INIT_INIT_H_
#define ENCLAVIA_ENCLAVE_INIT_INIT_H_

#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"
#include "lib/config/enclave_config.h"

// enclavia-init is /init of the runtime ramdisk: the enclave's PID 1. It reads the measured
// enclave configuration, starts the application as it says, reaps orphans, forwards termination
// signals to the application and exits with the application's status. Later issues add mounts,
// ingress and storage before the application starts.
namespace enclavia::init {

inline constexpr std::string_view kDefaultConfigPath = "/etc/enclavia/enclave.toml";

// kDefaultPath is the PATH the application gets when its configuration does not set one.
inline constexpr std::string_view kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// kExitUsage, kExitError and kExitExecFailed are init's own exit codes; any other code is the
// application's.
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitExecFailed = 127;

struct Flags {
  std::string config_path = std::string(kDefaultConfigPath);
  bool help = false;
};

// kUsage is the --help text.
inline constexpr std::string_view kUsage =
    "usage: enclavia-init [--config PATH]\n"
    "Starts the application described by the enclave configuration (default\n"
    "/etc/enclavia/enclave.toml), forwards SIGTERM, SIGINT and SIGHUP to it, reaps orphans\n"
    "when PID 1, and exits with the application's exit status.\n";

// ParseFlags parses `args` (argv without argv[0]): `--config PATH` (or `--config=PATH`) and
// `--help`. Anything else is kInvalidArgument naming the argument.
Result<Flags> ParseFlags(const std::vector<std::string>& args);

// LoadConfig reads the enclave configuration at `path` (at most 1 MiB) and parses it. Errors
// name the path (read errors) or the offending key (parse errors).
Result<config::EnclaveConfig> LoadConfig(const std::string& path);

// AppEnvironment returns the application's environment as "KEY=value" strings sorted by key:
// exactly `app.env`, plus PATH=kDefaultPath when `app.env` has no PATH.
std::vector<std::string> AppEnvironment(const config::AppConfig& app);

// Reaping says which children the supervisor waits for.
enum class Reaping {
  kAppOnly,      // Only the application (init is not PID 1: orphans go elsewhere).
  kAllChildren,  // Every child, including re-parented orphans (init is PID 1).
};

// AppExit is how the application ended.
struct AppExit {
  // exit_code is what init exits with: the application's exit status, 128+N if signal N killed
  // it, or kExitExecFailed if it could not be executed.
  int exit_code = 0;
  // exec_error is set when the application never started: "exec /bin/x: No such file or
  // directory". exit_code is then kExitExecFailed.
  std::string exec_error;
};

// RunApp starts the application `app` describes and waits until it ends: it forks; the child
// gets exactly AppEnvironment(app), an empty signal mask and default signal dispositions, changes
// to app.workdir, drops to app.gid/app.uid when they are non-zero (and then has no supplementary
// groups), and executes app.cmd[0] (which must be absolute) with argv app.cmd. Meanwhile the caller
// forwards SIGTERM, SIGINT and SIGHUP to the application and reaps children as `reaping` says.
//
// The calling process must be single-threaded. For the duration of the call those signals and
// SIGCHLD are blocked, SIGCHLD's disposition is the default, and both are restored on return.
// Failures to set the child up (chdir, setgid, setuid) and system-call failures in the caller are
// errors (kInvalidArgument, kIo); a failed exec is an AppExit with exec_error set.
Result<AppExit> RunApp(const config::AppConfig& app, Reaping reaping);

}  // namespace enclavia::init

#endif  // ENCLAVIA_ENCLAVE_INIT_INIT_H_
