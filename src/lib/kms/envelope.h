// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_KMS_ENVELOPE_H_
#define ENCLAVIA_LIB_KMS_ENVELOPE_H_

#include <string>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/kms/key_ring.h"
#include "lib/kms/kms.h"

// The stored form of a volume's key ring (docs/kms.md, "The key ring's envelope"): the KMS makes a
// fresh data key for this enclave (GenerateDataKey, attested), and the ring is sealed under it
// with AES-256-GCM. Only attested calls are needed, so on AWS the key policy can deny kms:Encrypt
// to everyone: a host that could call Encrypt could otherwise wrap a ring of its own choosing,
// which Decrypt would release to the enclave as if it were the volume's.
//
//   envelope = "enclavia/key-ring-envelope/v1" || u32 BE len || kms blob || nonce (12) || sealed
//   sealed   = AES-256-GCM(data key, nonce, aad = the bytes before the nonce, EncodeKeyRing(ring))
namespace enclavia::kms {

// SealKeyRing makes the envelope of `ring` under the KMS key `key_id`.
Result<Bytes> SealKeyRing(Kms& kms, const std::string& key_id, const KeyRing& ring);

// OpenKeyRing opens an envelope (KMS Decrypt of its blob, then the AEAD), or a bare KMS blob from
// before upgrades whose plaintext is a 32-byte data key (a one-entry ring). kMalformed for bytes
// that are neither; kVerifyFailed for a sealed ring that does not open; the KMS's errors
// (kPolicyViolation for another image) as they are.
Result<KeyRing> OpenKeyRing(Kms& kms, ByteSpan stored);

}  // namespace enclavia::kms

#endif  // ENCLAVIA_LIB_KMS_ENVELOPE_H_
