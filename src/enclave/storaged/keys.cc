// SPDX-License-Identifier: Apache-2.0
#include "enclave/storaged/keys.h"

#include <algorithm>
#include <utility>

#include "lib/kms/envelope.h"

namespace enclavia::enclave {
namespace {

Error ChainError(Code code, const std::string& what) {
  return Error(code, "upgrade chain: " + what);
}

}  // namespace

Result<kms::KeyRing> LoadKeyRing(storage::ObjectStore& store, kms::Kms& kms,
                                 const std::string& key_id) {
  auto blob = store.Get(std::string(kDataKeyObject));
  if (blob) {
    return kms::OpenKeyRing(kms, *blob);
  }
  if (blob.error().code() != Code::kNotFound) {
    return std::move(blob).error();
  }
  // First boot: a one-entry ring whose wrapped form is the bare data key, exactly what volumes
  // made before key rings store (so nothing needs re-wrapping until an upgrade).
  ASSIGN_OR_RETURN(kms::DataKey key, kms.GenerateDataKey(key_id));
  RETURN_IF_ERROR(store.Put(std::string(kDataKeyObject), key.ciphertext_blob));
  return kms::DecodeKeyRing(key.plaintext.Expose());
}

Result<void> StoreKeyRing(storage::ObjectStore& store, kms::Kms& kms, const std::string& key_id,
                          const kms::KeyRing& ring) {
  ASSIGN_OR_RETURN(Bytes blob, kms::SealKeyRing(kms, key_id, ring));
  return store.Put(std::string(kDataKeyObject), blob);
}

Result<std::optional<OwnChain>> CheckOwnChain(
    const upgrade::HostChain& host, attestation::Nsm& nsm,
    std::shared_ptr<const attestation::Verifier> verifier) {
  if (host.chain.empty()) {
    if (host.pending.has_value()) {
      return ChainError(Code::kMalformed, "the host names a pending request but no chain");
    }
    return std::optional<OwnChain>();
  }
  if (host.pending.has_value()) {
    return ChainError(Code::kUnavailable, "the host has not recorded this enclave's activation");
  }
  auto own = nsm.Attestation({});
  if (!own) {
    return std::move(own).error().WithContext("upgrade chain: own attestation");
  }
  ASSIGN_OR_RETURN(attestation::ParsedDocument parsed, attestation::ParseUnverified(*own));
  const bool debug = attestation::IsDebugMode(parsed.document);
  upgrade::ChainOptions options;
  options.verifier = std::move(verifier);
  options.allow_debug = debug;
  auto verified = upgrade::VerifyChain(host.chain, options);
  if (!verified) {
    return std::move(verified).error().WithContext("upgrade chain");
  }
  if (!debug) {
    const auto& have = parsed.document.pcrs;
    bool match = std::all_of(verified->head_pcrs.begin(), verified->head_pcrs.end(),
                             [&](const auto& entry) {
                               auto it = have.find(entry.first);
                               return it != have.end() && it->second == entry.second;
                             });
    if (!match) {
      return ChainError(Code::kPolicyViolation,
                        "the chain's head PCRs are not this enclave's PCRs (superseded or "
                        "not yet activated)");
    }
  }
  return std::optional<OwnChain>(OwnChain{host.chain, verified->head});
}

std::optional<std::string> SupersededLine(std::string_view message) {
  size_t at = message.find("superseded: ");
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  return std::string(message.substr(at));
}

}  // namespace enclavia::enclave
