// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_LAUNCHER_LOCAL_PROVIDER_H_
#define ENCLAVIA_HOST_LAUNCHER_LOCAL_PROVIDER_H_

#include <memory>
#include <string>
#include <vector>

#include "host/launcher/provider.h"
#include "lib/base/result.h"

// LocalProvider runs enclaves on this Linux machine, each under its own enclavia-sandbox process
// (docs/local-provider.md). Everything it knows is on disk, in
//   <state_dir>/instance-id             this "parent instance"'s id (PCR4), made once
//   <state_dir>/enclaves/<name>/        one enclave: state.json, sandbox.log, console.log (debug),
//                                       nsm.sock, vsock/<port>.sock, root/ (an empty mount point)
//   <state_dir>/locks/<name>.lock       serialises Launch/Terminate of one name across processes
// so a new LocalProvider on the same state_dir (a restarted host agent) finds the enclaves the
// previous one started: sandboxes run detached (their own session) and outlive their launcher.
// Needs root (namespaces, mounts, cgroups). Thread-safe.
namespace enclavia::host {

struct LocalProviderOptions {
  std::string state_dir;       // e.g. DIR/host; created (0700) if missing.
  std::string ca_dir;          // The NSM simulator's CA, e.g. DIR/nsm; created on first use.
  std::string sandbox_binary;  // Path of enclavia-sandbox.
};

class LocalProvider final : public Provider {
 public:
  // Create makes the directories, the instance id and the simulator CA (so that concurrent
  // launches never race to create it). kInvalidArgument if sandbox_binary is not executable;
  // kIo for the file system.
  static Result<std::unique_ptr<LocalProvider>> Create(LocalProviderOptions options);

  // Launch: Provider::Launch. The image is checked with eif::ReadEif first (a bad one is
  // kInvalidArgument and creates nothing); then enclavia-sandbox is started detached and Launch
  // waits (at most 10 s) for it to report the enclave running. A failed start leaves nothing
  // behind and returns the sandbox's one-line reason. cpus/memory_mib 0 take the EIF header's
  // defaults; memory_mib must be at least 64 (as on Nitro).
  Result<EnclaveInfo> Launch(const LaunchSpec& spec) override;
  // List reads every enclave's state.json; an enclave is kRunning while its supervisor lives.
  Result<std::vector<EnclaveInfo>> List() override;
  Result<EnclaveInfo> Describe(const std::string& name) override;
  // Terminate asks the sandbox to stop (SIGTERM carrying `grace_ms`), waits grace + 2 s, then
  // kills the supervisor and everything in the enclave's cgroup, and removes the enclave's
  // directory, cgroups and sockets. Also cleans up after a stopped enclave.
  Result<void> Terminate(const std::string& name, int grace_ms = 5000) override;
  Result<std::string> Console(const std::string& name, uint64_t offset) override;

  const LocalProviderOptions& options() const { return options_; }
  // EnclaveDir is <state_dir>/enclaves/<name>.
  std::string EnclaveDir(const std::string& name) const;

 private:
  LocalProvider(LocalProviderOptions options, std::string instance_id)
      : options_(std::move(options)), instance_id_(std::move(instance_id)) {}

  LocalProviderOptions options_;
  std::string instance_id_;
};


}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_LAUNCHER_LOCAL_PROVIDER_H_
