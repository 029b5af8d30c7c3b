// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_KMS_KEY_RING_H_
#define ENCLAVIA_LIB_KMS_KEY_RING_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/secret.h"

// The volume's key ring (docs/upgrade.md, "Re-keying"): what the KMS wraps and what an old
// enclave hands to its successor. Each entry is a 32-byte root secret and the first block-store
// epoch it keys; epochs before an entry's first_epoch use the entry before it. An upgrade appends
// a fresh secret with first_epoch = kUnassigned; the storage daemon assigns it the next epoch at
// its first mount, so new writes are sealed under a key the old image never held.
namespace enclavia::kms {

inline constexpr uint64_t kUnassigned = std::numeric_limits<uint64_t>::max();
inline constexpr size_t kMaxRingEntries = 64;

struct KeyRingEntry {
  uint64_t first_epoch = 0;
  crypto::SecretBytes secret;  // kDataKeySize bytes.
};

struct KeyRing {
  std::vector<KeyRingEntry> entries;  // first_epoch strictly ascending; at most one kUnassigned, last.
};

// EncodeKeyRing: "enclavia/key-ring/v1" || u8 count || (u64 BE first_epoch || 32 bytes)*,
// built in cleansed memory. The ring must be well-formed (entries of kDataKeySize bytes: checked).
crypto::SecretBytes EncodeKeyRing(const KeyRing& ring);
// DecodeKeyRing also accepts a bare 32-byte data key (volumes made before upgrades existed) as
// one entry at epoch 0. kMalformed for anything else (never echoes the bytes): a count of 0 or
// above kMaxRingEntries, a length that does not match the count, first epochs that do not
// ascend, kUnassigned anywhere but last, or as the only entry (the first secret keys the
// volume's signing key, so it always has an epoch).
Result<KeyRing> DecodeKeyRing(ByteSpan plaintext);
// AppendFresh adds a random secret with first_epoch = kUnassigned (kFailedPrecondition when one
// is already unassigned, kLimitExceeded at kMaxRingEntries, kInvalidArgument for an empty ring).
Result<void> AppendFresh(KeyRing& ring);

}  // namespace enclavia::kms

#endif  // ENCLAVIA_LIB_KMS_KEY_RING_H_
