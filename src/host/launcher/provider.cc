// SPDX-License-Identifier: Apache-2.0
#include "host/launcher/provider.h"

namespace enclavia::host {

std::string_view EnclaveStateName(EnclaveState state) {
  return state == EnclaveState::kRunning ? "running" : "stopped";
}

}  // namespace enclavia::host
