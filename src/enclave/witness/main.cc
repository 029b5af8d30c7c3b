// SPDX-License-Identifier: Apache-2.0
// enclavia-witness: the anti-rollback witness (docs/witness.md). Flags → run.
#include <cstdio>
#include <string>
#include <vector>

#include <sys/prctl.h>

#include "enclave/witness/server.h"
#include "lib/crypto/random.h"

int main(int argc, char** argv) {
  ::prctl(PR_SET_DUMPABLE, 0);  // The witness key lives in this process's memory.
  auto flags =
      enclavia::enclave::ParseWitnessFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags) {
    std::fprintf(stderr, "enclavia-witness: %s\n", flags.error().message().c_str());
    return 2;
  }
  if (flags->help) {
    std::fwrite(enclavia::enclave::kWitnessUsage.data(), 1, enclavia::enclave::kWitnessUsage.size(),
                stdout);
    return 0;
  }
  if (auto init = enclavia::crypto::Init(); !init) {
    std::fprintf(stderr, "enclavia-witness: %s\n", init.error().message().c_str());
    return 1;
  }
  return enclavia::enclave::RunWitness(*flags);
}
