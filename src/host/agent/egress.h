// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_AGENT_EGRESS_H_
#define ENCLAVIA_HOST_AGENT_EGRESS_H_

#include <string>

#include "lib/base/result.h"

// The agent's side of an enclave's egress (docs/egress.md): whether the image asks for it. The
// agent runs a host::EgressDialer on the enclave's parent port transport::kEgressPort for each
// enclave whose measured configuration has `[egress] enabled = true`, and none otherwise.
namespace enclavia::host {

// ImageEgressEnabled reads the image's measured enclave.toml (builder::ReadImageConfig: the
// image is checked as the providers check it, and the last ramdisk holding the file wins) and
// returns its egress.enabled. An image without enclave.toml has no egress (false). Errors:
// ReadImageConfig's (the image's, the archive's, the TOML's), each naming the image. The image
// is public: nothing here is secret, but all of it is untrusted input.
Result<bool> ImageEgressEnabled(const std::string& eif_path);

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_AGENT_EGRESS_H_
