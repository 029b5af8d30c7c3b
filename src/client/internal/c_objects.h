// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLIENT_INTERNAL_C_OBJECTS_H_
#define ENCLAVIA_CLIENT_INTERNAL_C_OBJECTS_H_

#include <cstdint>
#include <optional>

#include "enclavia/client.h"
#include "lib/attestation/verifier.h"
#include "lib/channel/trust.h"
#include "lib/upgrade/chain.h"

// The C ABI's value objects, defined once for core_api.cc and c_api.cc.

// enclavia_trust is a checked policy (channel::CheckPolicy passed).
struct enclavia_trust {
  enclavia::channel::TrustPolicy policy;
};

// enclavia_attestation is what an enclave proved: a verified document and, for an enclave that
// presented an upgrade chain, the verified chain.
struct enclavia_attestation {
  enclavia::attestation::VerifiedAttestation verified;
  std::optional<enclavia::upgrade::VerifiedChain> chain;
};

namespace enclavia::client::internal {

// CopyPcr copies PCR `index` (48 bytes) of `document` into out[0..47]; NOT_FOUND (and the last
// error) when the document has no such PCR.
enclavia_status CopyPcr(const attestation::AttestationDocument& document, uint8_t out[48],
                        uint32_t index);

}  // namespace enclavia::client::internal

#endif  // ENCLAVIA_CLIENT_INTERNAL_C_OBJECTS_H_
