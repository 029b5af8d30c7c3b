// SPDX-License-Identifier: Apache-2.0
// enclavia-ingress: the enclave's channel terminator and attestation service. Flags → run.
#include <cstdio>
#include <string>
#include <vector>

#include <sys/prctl.h>

#include "enclave/ingress/daemon.h"
#include "lib/crypto/random.h"
#include "lib/sys/process.h"

int main(int argc, char** argv) {
  ::prctl(PR_SET_DUMPABLE, 0);  // The static key lives in this process's memory.
  enclavia::sys::TuneAllocatorForStreaming();
  auto flags = enclavia::enclave::ParseDaemonFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags) {
    std::fprintf(stderr, "enclavia-ingress: %s\n", flags.error().message().c_str());
    return 2;
  }
  if (flags->help) {
    std::fwrite(enclavia::enclave::kDaemonUsage.data(), 1, enclavia::enclave::kDaemonUsage.size(),
                stdout);
    return 0;
  }
  if (auto init = enclavia::crypto::Init(); !init) {
    std::fprintf(stderr, "enclavia-ingress: %s\n", init.error().message().c_str());
    return 1;
  }
  return enclavia::enclave::RunDaemon(*flags);
}
