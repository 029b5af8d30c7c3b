// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_LAUNCHER_PROVIDER_H_
#define ENCLAVIA_HOST_LAUNCHER_PROVIDER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lib/base/result.h"
#include "lib/transport/transport.h"

// A Provider runs enclaves: real Nitro Enclaves through nitro-cli (NitroProvider), or the local
// sandbox that stands in for them (LocalProvider). The host agent sees only this interface.
// Providers run OUTSIDE the trust boundary: they see the image (public) and nothing else.
namespace enclavia::host {

// LaunchSpec is what to run. Zero cpus / memory_mib mean the EIF header's defaults (and, if the
// image has none, 2 CPUs and 512 MiB).
struct LaunchSpec {
  std::string name;      // [a-z0-9][a-z0-9-]{0,62}; unique among this provider's enclaves.
  std::string eif_path;  // Absolute path of the image.
  bool debug = false;    // Debug mode: console open, PCRs attested as zero (as on Nitro).
  uint32_t cpus = 0;
  uint64_t memory_mib = 0;
};

enum class EnclaveState {
  kRunning,  // Started and its supervisor is alive.
  kStopped,  // Ended (exited, terminated or its supervisor died); Terminate cleans it up.
};
std::string_view EnclaveStateName(EnclaveState state);  // "running", "stopped"

// EnclaveInfo describes one enclave as the provider knows it.
struct EnclaveInfo {
  std::string id;    // Provider-unique: Nitro's EnclaveID, or "local-<name>-<random hex>".
  std::string name;
  EnclaveState state = EnclaveState::kStopped;
  transport::Endpoint endpoint;   // How to reach its vsock ports.
  std::map<int, std::string> pcrs;  // Measured PCRs (0, 1, 2, 8 when signed), lowercase hex.
  bool debug = false;
  uint32_t cpus = 0;
  uint64_t memory_mib = 0;
  int64_t started_unix = 0;  // Seconds.
  int exit_status = -1;      // When stopped and known: the enclave init's exit status.
};

class Provider {
 public:
  virtual ~Provider() = default;

  // Launch checks the image (ReadEif: CRC, structure, limits; kernel and ramdisk present) before
  // anything is started, so a bad image is one error line and nothing runs; then starts the
  // enclave and returns once it runs (not once its app is ready). Errors: kInvalidArgument (spec,
  // image), kAlreadyExists (name), kLimitExceeded/kIo/kInternal (launch failed; nothing left
  // behind).
  virtual Result<EnclaveInfo> Launch(const LaunchSpec& spec) = 0;

  // List returns every enclave the provider knows of, including ones started before this process
  // (re-attachment after a host agent restart), sorted by name.
  virtual Result<std::vector<EnclaveInfo>> List() = 0;

  // Describe returns one enclave by name; kNotFound if unknown.
  virtual Result<EnclaveInfo> Describe(const std::string& name) = 0;

  // Terminate stops the enclave (a clean shutdown request, then a kill after `grace`) and removes
  // everything it left (processes, mounts, sockets, cgroups, files). kNotFound if unknown.
  virtual Result<void> Terminate(const std::string& name, int grace_ms = 5000) = 0;

  // Console returns console output from byte `offset` on (at most 1 MiB). Debug enclaves only:
  // kFailedPrecondition "enclave N is not in debug mode; its console is closed (as on Nitro)".
  virtual Result<std::string> Console(const std::string& name, uint64_t offset) = 0;
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_LAUNCHER_PROVIDER_H_
