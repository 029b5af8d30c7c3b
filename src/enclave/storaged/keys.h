// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_STORAGED_KEYS_H_
#define ENCLAVIA_ENCLAVE_STORAGED_KEYS_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/attestation/nsm.h"
#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/kms/key_ring.h"
#include "lib/kms/kms.h"
#include "lib/storage/object_store.h"
#include "lib/upgrade/chain.h"
#include "lib/upgrade/wire.h"

// What the storage daemon needs to know before it mounts (docs/storage.md, "The volume key" and
// "Upgrades"): the volume's key ring, and this enclave's upgrade chain.
namespace enclavia::enclave {

// kDataKeyObject is the object holding the key ring wrapped by the KMS (opaque to the host).
inline constexpr std::string_view kDataKeyObject = "kms/data-key";

// LoadKeyRing returns the volume's key ring: the KMS unwraps the stored blob (a bare 32-byte data
// key from before upgrades is a one-entry ring), or, on the first boot, makes a data key under
// `key_id` and stores its blob. Errors: the store's, the KMS's (kPolicyViolation for another
// image), kMalformed for a blob that opens to something that is no ring.
Result<kms::KeyRing> LoadKeyRing(storage::ObjectStore& store, kms::Kms& kms,
                                 const std::string& key_id);

// StoreKeyRing seals `ring` in an envelope under the KMS key `key_id` (kms::SealKeyRing: only
// attested KMS calls) and stores it as
// kDataKeyObject, replacing the one before (what Volume's store_key_ring calls after it gave an
// upgrade's fresh secret its epoch).
Result<void> StoreKeyRing(storage::ObjectStore& store, kms::Kms& kms, const std::string& key_id,
                          const kms::KeyRing& ring);

// OwnChain is this enclave's verified upgrade chain as the storage daemon presents it to
// witnesses (witness::HelloOptions: the chain, and user_data = head in its documents).
struct OwnChain {
  std::vector<Bytes> chain;
  upgrade::Digest head{};
};

// CheckOwnChain verifies the host's (untrusted) answer the way the ingress does: an empty chain
// is an unchained enclave (nullopt); otherwise upgrade::VerifyChain with `verifier` (receipts in
// debug mode only when this enclave runs in debug mode) and the head's PCRs equal this enclave's
// own, from a document `nsm` makes now (not compared in debug mode: they read all zero). A chain
// that still names a pending request (a successor whose handover the host has not recorded yet)
// is kUnavailable: ask again. Errors are one line starting "upgrade chain: ".
Result<std::optional<OwnChain>> CheckOwnChain(const upgrade::HostChain& host, attestation::Nsm& nsm,
                                              std::shared_ptr<const attestation::Verifier> verifier);

// SupersededLine returns the "superseded: …" part of an error message (a witness saw a longer
// chain of this enclave's genesis), or nullopt.
std::optional<std::string> SupersededLine(std::string_view message);

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_STORAGED_KEYS_H_
