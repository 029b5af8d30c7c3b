// SPDX-License-Identifier: Apache-2.0
// enclavia-egress: the enclave's emulated NIC, firewall and resolver. Flags → run.
#include <cstdio>
#include <string>
#include <vector>

#include "enclave/egress/daemon.h"

int main(int argc, char** argv) {
  auto flags = enclavia::enclave::ParseEgressFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags) {
    std::fprintf(stderr, "enclavia-egress: %s\n", flags.error().message().c_str());
    return 2;
  }
  if (flags->help) {
    std::fwrite(enclavia::enclave::kEgressUsage.data(), 1, enclavia::enclave::kEgressUsage.size(),
                stdout);
    return 0;
  }
  return enclavia::enclave::RunEgress(*flags);
}
