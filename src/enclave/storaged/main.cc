// SPDX-License-Identifier: Apache-2.0
// enclavia-storage: the enclave's volume daemon. Flags → run.
#include <sys/prctl.h>

#include <cstdio>
#include <string>
#include <vector>

#include "enclave/storaged/daemon.h"
#include "lib/crypto/random.h"

int main(int argc, char** argv) {
  ::prctl(PR_SET_DUMPABLE, 0);  // The volume key lives in this process's memory.
  auto flags = enclavia::enclave::ParseStorageFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags) {
    std::fprintf(stderr, "enclavia-storage: %s\n", flags.error().message().c_str());
    return 2;
  }
  if (flags->help) {
    std::fwrite(enclavia::enclave::kStorageUsage.data(), 1, enclavia::enclave::kStorageUsage.size(),
                stdout);
    return 0;
  }
  if (auto init = enclavia::crypto::Init(); !init) {
    std::fprintf(stderr, "enclavia-storage: %s\n", init.error().message().c_str());
    return 1;
  }
  return enclavia::enclave::RunStorage(*flags);
}
