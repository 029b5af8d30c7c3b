// SPDX-License-Identifier: Apache-2.0
// enclavia-init: the enclave's /init. Flags → RunInit.
#include <cstdio>
#include <string>
#include <vector>

#include <sys/prctl.h>

#include "enclave/init/init.h"

int main(int argc, char** argv) {
  using namespace enclavia::init;  // NOLINT(google-build-using-namespace): main only.
  ::prctl(PR_SET_DUMPABLE, 0);
  auto flags = ParseFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags) {
    std::fprintf(stderr, "enclavia-init: %s\n", flags.error().message().c_str());
    return kExitUsage;
  }
  if (flags->help) {
    std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
    return 0;
  }
  return RunInit(*flags);
}
