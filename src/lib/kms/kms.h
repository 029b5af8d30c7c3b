// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_KMS_KMS_H_
#define ENCLAVIA_LIB_KMS_KMS_H_

#include <string>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/secret.h"

// The volume key survives restarts wrapped by a key management service that releases it only to
// an enclave whose attestation satisfies the key's policy (docs/storage.md, "The volume key").
// An implementation attests on every call: it asks the enclave's NSM for a document whose
// public_key is a fresh key pair made for that call, and the service encrypts the plaintext data
// key to that public key (AWS KMS's Recipient parameter), so the key never crosses the host in
// the clear. Implementations: LocalKmsClient (the local KMS simulator, src/host/kms) and
// AwsKmsClient (AWS KMS through the parent's proxy; unit-tested only).
namespace enclavia::kms {

inline constexpr size_t kDataKeySize = 32;
// kMaxPlaintextSize bounds what Encrypt wraps (AWS KMS's own limit): a key ring of 64 entries is
// 2581 bytes (key_ring.h).
inline constexpr size_t kMaxPlaintextSize = 4096;

struct DataKey {
  crypto::SecretBytes plaintext;  // kDataKeySize bytes; never leaves the enclave.
  Bytes ciphertext_blob;          // Opaque; the host stores it beside the volume.
};

class Kms {
 public:
  virtual ~Kms() = default;

  // GenerateDataKey returns a new 256-bit key under the service's key `key_id`.
  // kPolicyViolation when this enclave's attestation does not satisfy the key's policy.
  virtual Result<DataKey> GenerateDataKey(const std::string& key_id) = 0;
  // Decrypt returns the plaintext of a blob GenerateDataKey or Encrypt made. kPolicyViolation as
  // above; kVerifyFailed for a blob that was altered.
  virtual Result<crypto::SecretBytes> Decrypt(ByteSpan ciphertext_blob) = 0;
  // Encrypt wraps `plaintext` (1..kMaxPlaintextSize bytes, e.g. an encoded key ring) under the
  // service's key `key_id` and returns a blob Decrypt opens. The enclave attests as for the other
  // calls and the service checks the document satisfies the key's policy (kPolicyViolation), so
  // only an enclave that could later Decrypt under that key can make blobs for it.
  virtual Result<Bytes> Encrypt(const std::string& key_id, ByteSpan plaintext) = 0;
};

}  // namespace enclavia::kms

#endif  // ENCLAVIA_LIB_KMS_KMS_H_
