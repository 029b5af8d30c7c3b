// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CRYPTO_HASH_H_
#define ENCLAVIA_LIB_CRYPTO_HASH_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/secret.h"

namespace enclavia::crypto {

using Sha256Digest = std::array<uint8_t, 32>;
using Sha384Digest = std::array<uint8_t, 48>;
using Sha512Digest = std::array<uint8_t, 64>;

Sha256Digest Sha256(ByteSpan data);
Sha384Digest Sha384(ByteSpan data);
Sha512Digest Sha512(ByteSpan data);

enum class HashAlgorithm { kSha256, kSha384, kSha512 };

// DigestSize returns 32, 48 or 64.
size_t DigestSize(HashAlgorithm alg);

// Hasher hashes data incrementally (for inputs too large to hold at once, e.g. EIF sections).
// Move-only; not thread-safe.
class Hasher {
 public:
  explicit Hasher(HashAlgorithm alg);
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  ~Hasher();

  void Update(ByteSpan data);
  // Finish returns the digest (DigestSize(alg) bytes); the Hasher must not be used afterwards.
  Bytes Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Hmac returns HMAC(key, data) with the given hash.
Bytes Hmac(HashAlgorithm alg, ByteSpan key, ByteSpan data);

// HashFile is the digest of the file at `path`, read in 1 MiB pieces (kIo naming the path).
Result<Bytes> HashFile(HashAlgorithm alg, const std::string& path);

// Hkdf derives `length` bytes with HKDF (RFC 5869) over the given hash. Fails with
// kInvalidArgument if `length` exceeds 255 * DigestSize(alg).
Result<SecretBytes> Hkdf(HashAlgorithm alg, ByteSpan ikm, ByteSpan salt, ByteSpan info,
                         size_t length);

}  // namespace enclavia::crypto

#endif  // ENCLAVIA_LIB_CRYPTO_HASH_H_
