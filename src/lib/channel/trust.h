// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CHANNEL_TRUST_H_
#define ENCLAVIA_LIB_CHANNEL_TRUST_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/encoding.h"
#include "lib/base/result.h"
#include "lib/crypto/x25519.h"

// What a client requires of the enclave at the other end of a channel before it sends a byte.
namespace enclavia::channel {

enum class Freshness {
  kCached,  // Accept the enclave's cached document (bound to its static key), up to max_age old.
  kFresh,   // Demand a document made for this handshake: nonce = our ephemeral key.
};

// PcrSet is one accepted measurement: every listed PCR must match exactly.
using PcrSet = std::map<uint32_t, Bytes>;

struct TrustPolicy {
  // verifier holds the trusted roots (AWS Nitro, and/or a local simulator root).
  std::shared_ptr<const attestation::Verifier> verifier;
  // accept lists the PCR sets any one of which must match. Never empty: a client always names
  // what it trusts.
  std::vector<PcrSet> accept;
  Freshness freshness = Freshness::kCached;
  std::chrono::milliseconds max_age{std::chrono::hours(1)};
  bool allow_debug = false;
  // clock defaults to the system clock.
  std::function<SystemTime()> clock;
};

// CheckPolicy returns kInvalidArgument when `policy` could not protect anyone (no verifier, no
// accept set, an empty set, a PCR value that is not 48 bytes).
Result<void> CheckPolicy(const TrustPolicy& policy);

// VerifyEnclave checks a handshake's attestation document: chain to a trusted root, signature,
// age, debug mode, public_key == the enclave's Noise static key, nonce == our ephemeral key when
// fresh was asked, and one accept set matching. Errors keep the verifier's code
// (kVerifyFailed, kUntrusted, kExpired, kPolicyViolation) and say what failed in one line.
Result<attestation::VerifiedAttestation> VerifyEnclave(
    const TrustPolicy& policy, ByteSpan document, const crypto::X25519PublicKey& enclave_static,
    const crypto::X25519PublicKey& client_ephemeral);

}  // namespace enclavia::channel

#endif  // ENCLAVIA_LIB_CHANNEL_TRUST_H_
