// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_NOISE_INTERNAL_HASH_H_
#define ENCLAVIA_LIB_NOISE_INTERNAL_HASH_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "lib/base/bytes.h"
#include "lib/noise/noise.h"

// The Noise hash functions (§12.5–12.8) and the HMAC/HKDF built on them (§4.3). Everything works
// on caller-provided buffers: no heap allocation on the BLAKE2b, SHA256 and SHA512 paths (libsodium
// streaming states on the stack). BLAKE2s runs on OpenSSL's EVP, which allocates one context per
// hash. Intermediate key material is wiped before returning.
namespace enclavia::noise::internal {

// kMaxBlockSize is BLOCKLEN of BLAKE2b and SHA512.
inline constexpr size_t kMaxBlockSize = 128;

// HashLen is HASHLEN: 64 for BLAKE2b/SHA512, 32 for BLAKE2s/SHA256.
size_t HashLen(Hash hash);
// BlockLen is BLOCKLEN: 128 for BLAKE2b/SHA512, 64 for BLAKE2s/SHA256.
size_t BlockLen(Hash hash);

// HashParts writes HASH(parts[0] || parts[1] || ...) to out[0, HashLen). Every part is absorbed
// before `out` is written, so `out` may alias a part (MixHash hashes h into h).
void HashParts(Hash hash, std::initializer_list<ByteSpan> parts,
               std::span<uint8_t, kMaxHashSize> out);

// Hmac writes HMAC-HASH(key, data[0] || data[1] || data[2]) to out[0, HashLen) (RFC 2104 with
// the hash's BLOCKLEN, Noise §4.3). `key` is at most BLOCKLEN bytes (Noise keys are HASHLEN); at
// most three data parts. `out` may alias the inputs.
void Hmac(Hash hash, ByteSpan key, std::initializer_list<ByteSpan> data,
          std::span<uint8_t, kMaxHashSize> out);

// Hkdf is Noise §4.3 HKDF(chaining_key, input_key_material, 2): each output is HashLen bytes at
// the front of its buffer. `chaining_key` is at most BLOCKLEN bytes. The outputs may alias
// `chaining_key` or `ikm` (both are consumed before the first output is written) but not each
// other.
void Hkdf(Hash hash, ByteSpan chaining_key, ByteSpan ikm, std::span<uint8_t, kMaxHashSize> out1,
          std::span<uint8_t, kMaxHashSize> out2);
// Hkdf with three outputs is HKDF(chaining_key, input_key_material, 3), for the same rules.
void Hkdf(Hash hash, ByteSpan chaining_key, ByteSpan ikm, std::span<uint8_t, kMaxHashSize> out1,
          std::span<uint8_t, kMaxHashSize> out2, std::span<uint8_t, kMaxHashSize> out3);

}  // namespace enclavia::noise::internal

#endif  // ENCLAVIA_LIB_NOISE_INTERNAL_HASH_H_
