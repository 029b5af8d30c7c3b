// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CONFIG_NAMES_H_
#define ENCLAVIA_LIB_CONFIG_NAMES_H_

#include <string_view>

namespace enclavia::config {

// ValidEnclaveName is the one rule for enclave names, which the CLI, the control plane, the host
// agent and the providers all check: [a-z0-9][a-z0-9-]{0,62} (a DNS label's shape, so a name can
// become part of a host name, a directory and a nitro-cli --enclave-name alike).
bool ValidEnclaveName(std::string_view name);

}  // namespace enclavia::config

#endif  // ENCLAVIA_LIB_CONFIG_NAMES_H_
