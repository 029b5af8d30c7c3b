// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CRYPTO_AEAD_H_
#define ENCLAVIA_LIB_CRYPTO_AEAD_H_

#include <cstddef>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/secret.h"

namespace enclavia::crypto {

// Authenticated encryption with a 32-byte key, a 12-byte nonce and a 16-byte tag appended to the
// ciphertext. AES-256-GCM runs on OpenSSL, ChaCha20-Poly1305 (IETF, RFC 8439) on libsodium.
enum class AeadAlgorithm { kAes256Gcm, kChaCha20Poly1305 };

inline constexpr size_t kAeadKeySize = 32;
inline constexpr size_t kAeadNonceSize = 12;
inline constexpr size_t kAeadTagSize = 16;

// AeadKey is a 32-byte secret key for one algorithm.
class AeadKey {
 public:
  // Create copies `key`; kInvalidArgument unless it is 32 bytes.
  static Result<AeadKey> Create(AeadAlgorithm alg, ByteSpan key);
  // Generate returns a fresh random key.
  static AeadKey Generate(AeadAlgorithm alg);

  AeadAlgorithm algorithm() const { return alg_; }

  // Seal encrypts `plaintext` and returns ciphertext || tag. kInvalidArgument for a nonce that is
  // not 12 bytes. The caller guarantees a nonce is never reused under one key.
  Result<Bytes> Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext) const;
  // Open authenticates and decrypts ciphertext || tag. Any tampering gives kVerifyFailed with a
  // fixed message; no partial plaintext is returned.
  Result<SecretBytes> Open(ByteSpan nonce, ByteSpan aad, ByteSpan sealed) const;

 private:
  AeadKey(AeadAlgorithm alg, ByteSpan key);
  AeadAlgorithm alg_;
  Secret<kAeadKeySize> key_;
};

}  // namespace enclavia::crypto

#endif  // ENCLAVIA_LIB_CRYPTO_AEAD_H_
