// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_INIT_INIT_H_
#define ENCLAVIA_ENCLAVE_INIT_INIT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/attestation/nsm.h"
#include "lib/base/result.h"
#include "lib/config/enclave_config.h"

// enclavia-init is /init of the runtime ramdisk: the enclave's PID 1 (docs/runtime.md). It mounts
// the kernel file systems, brings up lo, disables core dumps, seeds the RNG from the NSM, reads
// the measured enclave configuration, starts the ingress daemon and the application, reaps
// orphans, restarts the application per its policy (and the ingress always), and shuts the
// enclave down cleanly on SIGTERM or SIGINT. Single-threaded.
namespace enclavia::init {

inline constexpr std::string_view kDefaultConfigPath = "/etc/enclavia/enclave.toml";
inline constexpr std::string_view kDefaultIngressPath = "/usr/bin/enclavia-ingress";
inline constexpr std::string_view kDefaultNsmPath = "/dev/nsm";
inline constexpr std::string_view kDefaultStoragePath = "/usr/bin/enclavia-storage";
inline constexpr std::string_view kDefaultEgressPath = "/usr/bin/enclavia-egress";

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
  // ingress_path is the ingress daemon's executable; empty: start no ingress (--no-ingress).
  std::string ingress_path = std::string(kDefaultIngressPath);
  std::string nsm_path = std::string(kDefaultNsmPath);
  // storage_path is the storage daemon, started before the application when the configuration
  // has a [storage] section (it mounts a volume if the host attached one).
  std::string storage_path = std::string(kDefaultStoragePath);
  // egress_path is the egress daemon (emulated NIC, firewall, resolver), started before the
  // application when the configuration has [egress] enabled = true.
  std::string egress_path = std::string(kDefaultEgressPath);
  bool help = false;
};

// kUsage is the --help text.
inline constexpr std::string_view kUsage =
    "usage: enclavia-init [--config PATH] [--ingress PATH | --no-ingress] [--nsm PATH]\n"
    "                     [--storage PATH] [--egress PATH]\n"
    "The enclave's PID 1. Mounts /proc, /sys, /dev, /tmp and /run (those not mounted yet; only\n"
    "as PID 1), brings up lo, seeds the RNG from the NSM, then runs the ingress daemon and the\n"
    "application described by the enclave configuration, restarting them as it says. SIGTERM or\n"
    "SIGINT stops both (SIGKILL after 5 s) and exits 0. Output reaches the console only when the\n"
    "NSM reports a debug-mode enclave (PCR0 all zero).\n"
    "  --config PATH   enclave configuration (default /etc/enclavia/enclave.toml)\n"
    "  --ingress PATH  ingress daemon (default /usr/bin/enclavia-ingress); --no-ingress: none\n"
    "  --nsm PATH      the NSM device or socket (default /dev/nsm)\n"
    "  --storage PATH  storage daemon for [storage] (default /usr/bin/enclavia-storage)\n"
    "  --egress PATH   egress daemon for [egress] (default /usr/bin/enclavia-egress)\n";

// ParseFlags parses `args` (argv without argv[0]): `--config PATH`, `--ingress PATH`,
// `--no-ingress`, `--nsm PATH` (each also as `--flag=PATH`) and `--help`. Anything else is
// kInvalidArgument naming the argument.
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
// to app.workdir, becomes app.gid/app.uid (with no supplementary groups when init is root),
// empties its capability sets (bounding, inheritable, ambient) and sets no_new_privs, so that
// even an explicit uid 0 cannot mount or gain privileges, and executes app.cmd[0] (which must be
// absolute) with argv app.cmd. Meanwhile the caller forwards SIGTERM, SIGINT and SIGHUP to the
// application and reaps children as `reaping` says. (The supervisor below is what init runs;
// RunApp is the one-shot form.)
//
// The calling process must be single-threaded. For the duration of the call those signals and
// SIGCHLD are blocked, SIGCHLD's disposition is the default, and both are restored on return.
// Failures to set the child up (chdir, setgid, setuid) and system-call failures in the caller are
// errors (kInvalidArgument, kIo); a failed exec is an AppExit with exec_error set.
Result<AppExit> RunApp(const config::AppConfig& app, Reaping reaping);

// ── System setup (PID 1 only) ─────────────────────────────────────────────────────────────────

// MountSystem mounts /proc (proc), /sys (sysfs, read-only), /dev (devtmpfs), /tmp (tmpfs, 1777)
// and /run (tmpfs), each only when it is not a mount point already (the local sandbox mounts /dev
// and /run itself), creating missing directories. It returns what it mounted ("proc /proc").
Result<std::vector<std::string>> MountSystem();

// BringUpLoopback sets IFF_UP on `lo` (ioctl SIOCSIFFLAGS on an AF_INET socket).
Result<void> BringUpLoopback();

// DisableCoreDumps sets RLIMIT_CORE to 0 (inherited by every child) and PR_SET_DUMPABLE to 0.
Result<void> DisableCoreDumps();

// SeedRandom mixes 256 bytes from the NSM's GetRandom into the kernel pool through /dev/urandom
// (`urandom_path`, no entropy credit) and wipes its copy.
Result<void> SeedRandom(attestation::Nsm& nsm, const std::string& urandom_path = "/dev/urandom");

// IsDebugEnclave says whether the NSM reports PCR0 all zero: how Nitro marks a debug-mode
// enclave (the local simulator does the same).
Result<bool> IsDebugEnclave(attestation::Nsm& nsm);

// ── Supervision ───────────────────────────────────────────────────────────────────────────────

// SupervisorTiming holds the supervisor's delays (tests shorten them).
struct SupervisorTiming {
  std::chrono::milliseconds quick_exit{10000};      // An exit sooner than this is "quick".
  std::chrono::milliseconds first_backoff{500};     // Doubling per quick failure in a row...
  std::chrono::milliseconds max_backoff{8000};      // ...up to this.
  std::chrono::milliseconds ingress_backoff{1000};  // Before restarting a dead ingress.
  std::chrono::milliseconds stop_grace{5000};       // SIGTERM → SIGKILL (also on quiesce).
  // ingress_ready bounds the wait for the first ingress's ready line. A successor enclave's
  // ingress reports ready only after its handover, which the host starts when it is ready.
  std::chrono::milliseconds ingress_ready{std::chrono::hours(1)};
};

// RestartDecision is what happens after an application exit.
struct RestartDecision {
  bool restart = false;
  std::chrono::milliseconds delay{0};  // Before the restart.
  std::string reason;                  // One line for the log.
};

// RestartTracker applies an app's restart policy, exit by exit. Pure logic; no clock of its own.
//  - never: stop. on-failure: stop after exit 0, else restart. always: restart.
//  - A restarted exit sooner than timing.quick_exit counts as a quick failure (under "always" a
//    quick exit 0 counts too: it is a crash loop all the same); a later exit resets the count.
//  - When the quick failures in a row reach restart_limit, stop (give up).
//  - Delay: first_backoff * 2^(quick failures in a row - 1), capped at max_backoff; first_backoff
//    after an exit that was not quick.
class RestartTracker {
 public:
  RestartTracker(config::RestartPolicy policy, uint32_t restart_limit, SupervisorTiming timing = {})
      : policy_(policy), limit_(restart_limit), timing_(timing) {}

  // OnExit records an exit with init's exit code for it (`exit_code`: status, or 128+signal)
  // after the app ran for `ran`.
  RestartDecision OnExit(int exit_code, std::chrono::milliseconds ran);
  uint32_t quick_failures() const { return quick_failures_; }

 private:
  config::RestartPolicy policy_;
  uint32_t limit_;
  SupervisorTiming timing_;
  uint32_t quick_failures_ = 0;
};

// Output says where the application's and the ingress's stdout and stderr go.
enum class Output {
  kConsole,  // Inherited: init's console (debug-mode enclaves only).
  kDiscard,  // /dev/null: the host sees nothing.
};

struct SupervisorOptions {
  config::AppConfig app;
  // ingress_argv starts the ingress daemon (as root, environment PATH only, workdir /);
  // empty: no ingress. The supervisor appends "--ready-fd 3 --control-fd 4": descriptor 3 is a
  // fresh ready pipe and 4 a fresh control socket (docs/runtime.md, "Ingress protocol").
  std::vector<std::string> ingress_argv;
  Output output = Output::kDiscard;
  Reaping reaping = Reaping::kAppOnly;
  SupervisorTiming timing;
  // log receives init's own lifecycle lines (starts, exits, restarts); never app output.
  std::function<void(std::string_view)> log;
  // start_services runs once the first ingress has reported ready (at once without an
  // ingress), before the application first starts: RunInit starts storage and egress there.
  // An error stops the enclave with kExitError, its message on stderr.
  std::function<Result<void>()> start_services;
  // stop_storage runs on "quiesce" once the application has exited (the volume is flushed and
  // unmounted: one writer); start_storage on "resume", before the application starts again (an
  // error stops the enclave). Egress keeps running across both.
  std::function<void()> stop_storage;
  std::function<Result<void>()> start_storage;
};

// Supervise runs the enclave until it ends and returns init's exit code:
//  - the application stopped per its policy (or init gave up): the ingress is stopped, then the
//    application's exit code (128+N for signal N);
//  - SIGTERM or SIGINT: both get SIGTERM, then SIGKILL after timing.stop_grace; 0;
//  - the application could not be set up or executed: kExitExecFailed (logged);
//  - the first ingress exited, could not be executed, wrote anything but "ready ..." or stayed
//    silent for timing.ingress_ready before reporting ready, or start_services/start_storage
//    failed: kExitError (one line on stderr);
//  - the ingress said "superseded" on its control socket: both get SIGTERM; 0;
//  - SIGHUP is forwarded to the application.
// Order: the ingress first; once it writes "ready ..." on its ready pipe, start_services, then
// the application. A dead ingress is restarted timing.ingress_backoff later with a new pipe and
// socket and is not waited for (the application keeps running; its later lines are only
// logged). Control socket requests, one line each: "quiesce" (SIGTERM to the application,
// SIGKILL after timing.stop_grace, no restart, then stop_storage; answers "quiesced"),
// "resume" (start_storage, then the application again; the restart policy is not consulted),
// "superseded". A quiesced enclave stays quiesced until "resume", even across an ingress
// restart: two writers on one volume are worse than a stopped app (the host stops the enclave).
// Same process contract as RunApp (single-threaded; signals blocked for the duration). Errors
// only for failing system calls.
Result<int> Supervise(const SupervisorOptions& options);

// ReadyDaemon is a runtime daemon that reports on a ready pipe (pid -1: none running).
struct ReadyDaemon {
  pid_t pid = -1;
  std::string detail;  // What followed "ready " on its line.
};

// StartReadyDaemon starts `argv` with its ready pipe as fd 3 and waits for its line: "ready
// DETAIL" (it keeps running), "none" (nothing to do; it has exited) or "error MESSAGE"
// (kFailedPrecondition "NAME: MESSAGE"). Silence for `timeout`, or an exit without a line, is an
// error naming `name`. `output_fd` receives its stdout/stderr.
Result<ReadyDaemon> StartReadyDaemon(std::string_view name, const std::vector<std::string>& argv,
                                     int output_fd, std::chrono::milliseconds timeout);
// StopReadyDaemon sends SIGTERM and waits up to `grace`, then SIGKILL.
void StopReadyDaemon(ReadyDaemon& daemon, std::chrono::milliseconds grace);

// StorageDaemon is the running storage daemon (pid -1: none).
struct StorageDaemon {
  pid_t pid = -1;
  std::string mounted;  // The mount point, when a volume is mounted.
};

// StartStorage starts `argv` (the storage daemon) with its ready pipe as fd 3 and waits for its
// line: "ready PATH" (a volume is mounted at PATH; the daemon keeps serving it), "none" (no
// volume attached; the daemon has exited) or "error MESSAGE" (kFailedPrecondition with MESSAGE:
// the application must not start without its data). `output_fd` receives its stdout/stderr.
Result<StorageDaemon> StartStorage(const std::vector<std::string>& argv, int output_fd,
                                   std::chrono::milliseconds timeout);
// StopStorage sends SIGTERM (the daemon unmounts and commits) and waits up to `grace`, then
// SIGKILL.
void StopStorage(StorageDaemon& daemon, std::chrono::milliseconds grace);

// RunInit is enclavia-init after flag parsing: system setup (when PID 1), configuration, NSM,
// then Supervise, whose start_services starts the storage daemon ([storage]) and egress
// ([egress]) once the ingress is ready, and whose quiesce/resume stop and start the storage
// daemon. Returns the process exit code; logs errors to stderr.
int RunInit(const Flags& flags);

}  // namespace enclavia::init

#endif  // ENCLAVIA_ENCLAVE_INIT_INIT_H_
