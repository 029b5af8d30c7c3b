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
#include "lib/upgrade/chain.h"

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
  // accept lists the PCR sets any one of which must match (or, for an enclave that presents an
  // upgrade chain, any one of which the chain passes through). Empty only when chain_trust names
  // a genesis: a client always names what it trusts.
  std::vector<PcrSet> accept;
  // chain_trust: genesis hashes (docs/formats/upgrade-chain.md) whose descendants are trusted,
  // and further PCR sets (as `accept`) a chain may pass through.
  upgrade::ChainTrust chain_trust;
  Freshness freshness = Freshness::kCached;
  std::chrono::milliseconds max_age{std::chrono::hours(1)};
  bool allow_debug = false;
  // clock defaults to the system clock.
  std::function<SystemTime()> clock;
};

// CheckPolicy returns kInvalidArgument when `policy` could not protect anyone (no verifier, no
// accept set and no trusted genesis, an empty set, a PCR value that is not 48 bytes).
Result<void> CheckPolicy(const TrustPolicy& policy);

// DocumentChecks are the handshake-bound checks of VerifyDocument; nullopt: not checked.
struct DocumentChecks {
  std::optional<Bytes> public_key;  // The document's public_key must equal this.
  std::optional<Bytes> nonce;       // The document's nonce must equal this.
};

// VerifyDocument is VerifyEnclave with the key checks stated by the caller: the same checks in
// the same order with the same errors, for a document that did not come from a handshake
// (audits, the C ABI's enclavia_verify_attestation, conformance vectors). A policy with
// kFresh and no `checks.nonce` is kInvalidArgument.
Result<attestation::VerifiedAttestation> VerifyDocument(
    const TrustPolicy& policy, ByteSpan document, const std::vector<Bytes>& chain,
    const DocumentChecks& checks, std::optional<upgrade::VerifiedChain>* verified_chain = nullptr);

// VerifyEnclave checks a handshake's attestation document: chain to a trusted root, signature,
// age, debug mode, public_key == the enclave's Noise static key, nonce == our ephemeral key when
// fresh was asked. Then, with an empty upgrade `chain` (an unchained enclave), one accept set
// must match the document's PCRs. With a chain: upgrade::VerifyChain (the policy's verifier and
// allow_debug), AcceptChain (trusted = chain_trust.genesis, accept + chain_trust.pcrs), and
// CheckPresented (the document's PCRs are the chain's last and its user_data the head). Errors
// keep the code of what failed (kVerifyFailed, kUntrusted, kExpired, kPolicyViolation,
// kMalformed) and say what in one line. `verified_chain`, when given, receives the verified
// chain (nullopt for an unchained enclave).
Result<attestation::VerifiedAttestation> VerifyEnclave(
    const TrustPolicy& policy, ByteSpan document, const std::vector<Bytes>& chain,
    const crypto::X25519PublicKey& enclave_static, const crypto::X25519PublicKey& client_ephemeral,
    std::optional<upgrade::VerifiedChain>* verified_chain = nullptr);

}  // namespace enclavia::channel

#endif  // ENCLAVIA_LIB_CHANNEL_TRUST_H_
