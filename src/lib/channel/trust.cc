// SPDX-License-Identifier: Apache-2.0
#include "lib/channel/trust.h"

#include <string>

#include "lib/base/encoding.h"

namespace enclavia::channel {

Result<void> CheckPolicy(const TrustPolicy& policy) {
  if (policy.verifier == nullptr) {
    return Error(Code::kInvalidArgument, "trust policy: no trusted roots");
  }
  if (policy.accept.empty() && policy.chain_trust.genesis.empty()) {
    return Error(Code::kInvalidArgument,
                 "trust policy: no accepted PCR set or genesis; a client must name what it trusts");
  }
  std::vector<PcrSet> sets = policy.accept;
  sets.insert(sets.end(), policy.chain_trust.pcrs.begin(), policy.chain_trust.pcrs.end());
  for (const PcrSet& set : sets) {
    if (set.empty()) {
      return Error(Code::kInvalidArgument, "trust policy: an accepted PCR set lists no PCR");
    }
    for (const auto& [index, value] : set) {
      if (index >= 32 || value.size() != 48) {
        return Error(Code::kInvalidArgument, "trust policy: PCR" + std::to_string(index) +
                                                 " must be 48 bytes (96 hex digits), index < 32");
      }
    }
  }
  if (policy.max_age.count() <= 0) {
    return Error(Code::kInvalidArgument, "trust policy: max_age must be positive");
  }
  return Ok();
}

namespace {

// VerifyUpgradeChain follows the enclave's chain from what the policy trusts to the document.
Result<upgrade::VerifiedChain> VerifyUpgradeChain(const TrustPolicy& policy,
                                                  const std::vector<Bytes>& chain,
                                                  const attestation::AttestationDocument& doc) {
  upgrade::ChainOptions options{policy.verifier, policy.allow_debug};
  ASSIGN_OR_RETURN(upgrade::VerifiedChain verified, upgrade::VerifyChain(chain, options));
  upgrade::ChainTrust trust = policy.chain_trust;
  trust.pcrs.insert(trust.pcrs.end(), policy.accept.begin(), policy.accept.end());
  RETURN_IF_ERROR(upgrade::AcceptChain(verified, trust));
  RETURN_IF_ERROR(upgrade::CheckPresented(verified, doc));
  return verified;
}

}  // namespace

Result<attestation::VerifiedAttestation> VerifyEnclave(
    const TrustPolicy& policy, ByteSpan document, const std::vector<Bytes>& chain,
    const crypto::X25519PublicKey& enclave_static, const crypto::X25519PublicKey& client_ephemeral,
    std::optional<upgrade::VerifiedChain>* verified_chain) {
  DocumentChecks checks;
  checks.public_key = Bytes(enclave_static.begin(), enclave_static.end());
  if (policy.freshness == Freshness::kFresh) {
    checks.nonce = Bytes(client_ephemeral.begin(), client_ephemeral.end());
  }
  return VerifyDocument(policy, document, chain, checks, verified_chain);
}

Result<attestation::VerifiedAttestation> VerifyDocument(
    const TrustPolicy& policy, ByteSpan document, const std::vector<Bytes>& chain,
    const DocumentChecks& document_checks,
    std::optional<upgrade::VerifiedChain>* verified_chain) {
  RETURN_IF_ERROR(CheckPolicy(policy));
  if (verified_chain != nullptr) {
    verified_chain->reset();
  }
  attestation::TrustPolicy checks;
  checks.allow_debug = policy.allow_debug;
  if (policy.freshness == Freshness::kFresh && !document_checks.nonce) {
    return Error(Code::kInvalidArgument,
                 "enclave attestation: the policy demands a fresh document, and no nonce was given");
  }
  if (document_checks.public_key) {
    checks.expected_public_key = *document_checks.public_key;
  }
  if (document_checks.nonce) {
    checks.expected_nonce = *document_checks.nonce;
  }
  checks.max_age = policy.max_age;
  SystemTime now =
      policy.clock ? policy.clock() : SystemTime(std::chrono::system_clock::now());
  auto verified = policy.verifier->Verify(document, now, checks);
  if (!verified) {
    return verified.error().WithContext("enclave attestation");
  }
  if (!chain.empty()) {
    auto followed = VerifyUpgradeChain(policy, chain, verified->document());
    if (!followed) {
      return followed.error().WithContext("enclave upgrade chain");
    }
    if (verified_chain != nullptr) {
      *verified_chain = std::move(followed).value();
    }
    return verified;
  }
  if (policy.accept.empty()) {
    return Error(Code::kPolicyViolation,
                 "enclave attestation: the enclave presents no upgrade chain, and the policy "
                 "trusts only genesis hashes");
  }
  const auto& pcrs = verified->document().pcrs;
  for (const PcrSet& set : policy.accept) {
    bool all = true;
    for (const auto& [index, value] : set) {
      auto it = pcrs.find(index);
      all = all && it != pcrs.end() && it->second == value;
    }
    if (all) {
      return verified;
    }
  }
  std::string seen;
  for (uint32_t index : {0u, 1u, 2u}) {
    auto it = pcrs.find(index);
    if (it != pcrs.end()) {
      seen += " PCR" + std::to_string(index) + "=" + HexEncode(it->second).substr(0, 16) + "…";
    }
  }
  return Error(Code::kPolicyViolation,
               "enclave attestation: PCRs match no accepted set (" + seen.substr(1) + ")");
}

}  // namespace enclavia::channel
