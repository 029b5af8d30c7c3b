// SPDX-License-Identifier: Apache-2.0
#include "host/agent/egress.h"

#include "lib/builder/image_config.h"

namespace enclavia::host {

Result<bool> ImageEgressEnabled(const std::string& eif_path) {
  auto config = builder::ReadImageConfig(eif_path);
  if (!config) {
    if (config.error().code() == Code::kNotFound) {
      return false;  // No enclave.toml: no [egress] section.
    }
    return std::move(config).error();
  }
  return config->egress.enabled;
}

}  // namespace enclavia::host
