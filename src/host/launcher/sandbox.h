// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_LAUNCHER_SANDBOX_H_
#define ENCLAVIA_HOST_LAUNCHER_SANDBOX_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// enclavia-sandbox is the local stand-in for the Nitro hypervisor of ONE enclave
// (docs/local-provider.md): it boots an EIF's ramdisks into a private tmpfs root as PID 1 of new
// mount, PID, network, IPC and UTS namespaces, holds it to its CPU and memory limits, serves its
// /dev/nsm from an NSM simulator outside the sandbox, and records everything in
// <enclave-dir>/state.json so that LocalProvider (in any process) can find, describe and stop it.
namespace enclavia::host {

// Files in an enclave directory.
inline constexpr std::string_view kStateFile = "state.json";
inline constexpr std::string_view kSandboxLog = "sandbox.log";
inline constexpr std::string_view kConsoleLog = "console.log";
inline constexpr std::string_view kNsmSocket = "nsm.sock";
inline constexpr std::string_view kVsockDir = "vsock";
inline constexpr std::string_view kRootDir = "root";

inline constexpr int kDefaultGraceMs = 5000;

// SandboxOptions are enclavia-sandbox's flags.
struct SandboxOptions {
  std::string dir;          // --dir: the enclave directory (exists; the sandbox fills it).
  std::string eif_path;     // --eif
  std::string name;         // --name
  std::string enclave_id;   // --enclave-id: "local-<name>-<hex>".
  std::string instance_id;  // --instance-id: the parent instance's id; PCR4 measures it.
  std::string ca_dir;       // --ca-dir: the simulator's CA (SimulatorCa::LoadOrCreate).
  // --kms-dir: the local KMS simulator's keys (docs/kms.md), served on the enclave's parent
  // port kKmsPort; its key named after the enclave releases data keys to this image's PCR0.
  // Empty: no KMS.
  std::string kms_dir;
  bool debug = false;       // --debug
  uint32_t cpus = 0;        // --cpus
  uint64_t memory_mib = 0;  // --memory-mib
  int ready_fd = -1;        // --ready-fd: gets "ready\n" or "error: <line>\n", then is closed.
};

// RunSandbox boots the enclave and supervises it until it ends (SIGTERM or SIGINT: a clean
// shutdown, SIGTERM to the enclave's init and SIGKILL after the grace, which a sigqueue()d SIGTERM
// carries in its value in milliseconds, else kDefaultGraceMs). Returns the process exit status:
// 0 once the enclave ran and ended (state.json says "stopped" with its exit status), 1 if it could
// not be started (the one-line reason on stderr and the ready fd; nothing left but the log).
// The calling process must be single-threaded when it calls this.
int RunSandbox(const SandboxOptions& options);

// CgroupMode says how an enclave's resources are limited.
enum class CgroupMode { kV2, kV1, kRlimit };
std::string_view CgroupModeName(CgroupMode mode);  // "v2", "v1", "rlimit"

// SandboxState is state.json.
struct SandboxState {
  std::string name;
  std::string id;
  std::string instance_id;
  int64_t supervisor_pid = 0;
  uint64_t supervisor_starttime = 0;  // /proc/PID/stat field 22, against pid reuse.
  int64_t init_pid = 0;               // In the host's PID namespace.
  uint64_t init_starttime = 0;
  bool debug = false;
  uint32_t cpus = 0;
  uint64_t memory_mib = 0;
  std::map<int, std::string> pcrs;  // Lowercase hex, as booted (not zeroed in debug mode).
  CgroupMode cgroup = CgroupMode::kRlimit;
  std::vector<std::string> cgroup_paths;  // Directories under /sys/fs/cgroup, if any.
  std::string state;                      // "running" or "stopped".
  int64_t started = 0;                    // Unix seconds.
  int exit_status = -1;  // When stopped: exit code, or 128 + signal; -1 unknown.
};

std::string EncodeSandboxState(const SandboxState& state);
// ParseSandboxState reads state.json's text; kMalformed naming the problem.
Result<SandboxState> ParseSandboxState(std::string_view json);
Result<SandboxState> ReadSandboxState(const std::string& enclave_dir);
// WriteSandboxState replaces state.json atomically.
Result<void> WriteSandboxState(const std::string& enclave_dir, const SandboxState& state);

// ProcessInfo is what /proc/PID/stat says about a process.
struct ProcessInfo {
  char state = '?';  // 'R', 'S', 'Z', …
  uint64_t starttime = 0;
};
// ReadProcessInfo returns it, or kNotFound if there is no such process.
Result<ProcessInfo> ReadProcessInfo(pid_t pid);
// IsAlive reports whether `pid` is a live (non-zombie) process started at `starttime`.
bool IsAlive(int64_t pid, uint64_t starttime);

// Cgroup names an enclave's control groups (empty paths in rlimit mode).
struct Cgroup {
  CgroupMode mode = CgroupMode::kRlimit;
  std::vector<std::string> paths;
};

// CreateCgroup makes the enclave's cgroup: v2 when /sys/fs/cgroup is a cgroup2 mount with the
// memory controller available (memory.max, memory.swap.max = 0, cpu.max), else v1 (memory and cpu
// hierarchies under /sys/fs/cgroup/{memory,cpu}: memory.limit_in_bytes, memory.memsw.limit_in_bytes
// where swap is accounted, cpu.cfs_quota_us / cfs_period_us), else rlimit mode (no cgroup; the
// sandbox sets RLIMIT_AS). Cgroups go below the caller's own cgroup when it can delegate (v1
// always; v2 when that cgroup can enable controllers), else below the root, in
// "enclavia/<leaf>". Never fails: failure to create one is the next mode.
Cgroup CreateCgroup(const std::string& leaf, uint32_t cpus, uint64_t memory_mib);
// JoinCgroup moves `pid` into every path of `cgroup`.
Result<void> JoinCgroup(const Cgroup& cgroup, pid_t pid);
// KillCgroup SIGKILLs every process in the cgroup (cgroup.kill on v2 where present).
void KillCgroup(const Cgroup& cgroup);
// RemoveCgroup kills what is left and removes the directories, retrying for up to `timeout_ms`
// while the kernel reaps the processes; kIo naming the directory that stayed.
Result<void> RemoveCgroup(const Cgroup& cgroup, int timeout_ms);

// RemoveCgroupsNamed kills and removes every enclave cgroup called `leaf` in the places
// CreateCgroup would have put it (for a sandbox that died before recording its cgroup).
void RemoveCgroupsNamed(const std::string& leaf);

// UnpackArchive unpacks the cpio "newc" archive (image::ListCpio's checks) into the directory
// `root_fd` as the kernel's initramfs unpacker would, with a stricter walk: entries are created
// with *at() calls relative to `root_fd` and a symlink is never followed (not even one the archive
// made: a path through it is an error); an existing entry of another type is replaced, an existing
// directory kept; hard links (nlink ≥ 2, same inode) are linked within this archive; device nodes
// are skipped (the sandbox provides /dev). Owners, modes and mtimes are the archive's.
// `index` numbers the archive in errors ("ramdisk 2: …"). kMalformed, kIo, kLimitExceeded (ENOSPC:
// the ramdisks do not fit in the enclave's memory).
Result<void> UnpackArchive(int root_fd, ByteSpan archive, int index);

// Pcr4ForInstance is PCR4 as the sandbox boots it: SHA-384(48 zero bytes || instance id bytes),
// one extend of the parent instance's id from zero.
Bytes Pcr4ForInstance(std::string_view instance_id);

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_LAUNCHER_SANDBOX_H_
