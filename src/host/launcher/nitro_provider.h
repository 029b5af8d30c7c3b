// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_LAUNCHER_NITRO_PROVIDER_H_
#define ENCLAVIA_HOST_LAUNCHER_NITRO_PROVIDER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "host/launcher/provider.h"
#include "lib/base/result.h"

// NitroProvider runs real Nitro Enclaves by driving the `nitro-cli` tool of
// aws/aws-nitro-enclaves-cli: run-enclave, describe-enclaves, terminate-enclave and console.
// nitro-cli is run with fork/execvp (no shell), its output bounded and timed out, and its JSON
// treated as untrusted: every field is checked before use. Tested against a fake nitro-cli only
// (tests/tools/fake-nitro-cli); see docs/hardware.md.
namespace enclavia::host {

struct NitroOptions {
  std::string nitro_cli = "nitro-cli";  // Looked up in PATH unless it contains a '/'.
  int command_timeout_ms = 120000;      // Per call; run-enclave allocates the enclave's memory.
  // Console runs `console --disconnect-timeout S` (S = console_seconds) and stops it if it has
  // not exited by itself console_grace_ms after that.
  int console_seconds = 1;
  int console_grace_ms = 5000;
  size_t max_output = 4 << 20;  // Bytes kept of each of stdout and stderr (JSON calls).
};

class NitroProvider : public Provider {
 public:
  explicit NitroProvider(NitroOptions options = {});

  // Launch: the spec and the image (eif::ReadEif) are checked first, so nothing runs for a bad
  // one (kInvalidArgument); a name describe-enclaves already lists is kAlreadyExists. Then
  // `run-enclave --eif-path P --cpu-count N --memory M [--debug-mode] --enclave-name NAME`.
  // The PCRs reported are the image's (0, 1, 2 and 8 when signed), as measured by ReadEif.
  Result<EnclaveInfo> Launch(const LaunchSpec& spec) override;
  // List runs describe-enclaves. PCRs come from its Measurements (newer nitro-cli), completed by
  // what Launch measured for enclaves this provider started. started_unix is known only for those.
  Result<std::vector<EnclaveInfo>> List() override;
  Result<EnclaveInfo> Describe(const std::string& name) override;
  // Terminate runs terminate-enclave --enclave-id ID; nitro-cli stops the enclave at once, so
  // `grace_ms` is not used.
  Result<void> Terminate(const std::string& name, int grace_ms = 5000) override;
  // Console attaches `console` for a few seconds and returns what it printed from `offset` on
  // (nitro-cli's own two connection lines removed). The Nitro console keeps no history: offsets
  // count bytes of this one capture.
  Result<std::string> Console(const std::string& name, uint64_t offset) override;

 private:
  struct Launched {
    std::map<int, std::string> pcrs;
    int64_t started_unix = 0;
  };
  void Complete(EnclaveInfo& info);

  NitroOptions options_;
  std::mutex launch_mu_;  // Serializes Launch: the name check and run-enclave.
  std::mutex mu_;         // Guards launched_.
  std::map<std::string, Launched> launched_;  // By EnclaveID.
};

// The JSON parsers NitroProvider uses, exposed for tests. Each checks every field it reads and
// fails with one kMalformed line starting "nitro-cli: ".

// ParseRunEnclave parses run-enclave's object (EnclaveName, EnclaveID, ProcessID, EnclaveCID,
// NumberOfCPUs, CPUIDs, MemoryMiB). State is kRunning; debug and PCRs are left to the caller.
Result<EnclaveInfo> ParseRunEnclave(std::string_view json);

// ParseDescribeEnclaves parses describe-enclaves' array (the fields above plus State "RUNNING",
// "TERMINATING" or "EMPTY", Flags "NONE" or "DEBUG_MODE" and, when present, Measurements
// {HashAlgorithm, PCR0, PCR1, PCR2}). An entry without EnclaveName (old nitro-cli) is named by
// its EnclaveID. Sorted by name.
Result<std::vector<EnclaveInfo>> ParseDescribeEnclaves(std::string_view json);

// ParseTerminateEnclave parses terminate-enclave's object ({EnclaveName, EnclaveID, Terminated})
// and checks it names `enclave_id` and says Terminated: true.
Result<void> ParseTerminateEnclave(std::string_view json, std::string_view enclave_id);

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_LAUNCHER_NITRO_PROVIDER_H_
