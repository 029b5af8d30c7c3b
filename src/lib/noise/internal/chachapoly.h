// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_NOISE_INTERNAL_CHACHAPOLY_H_
#define ENCLAVIA_LIB_NOISE_INTERNAL_CHACHAPOLY_H_

#include <cstdint>
#include <span>

#include "lib/base/bytes.h"

// ChaCha20-Poly1305 (RFC 8439) for the Noise CipherState, through OpenSSL 3's EVP interface:
// its AVX2/AVX-512 code is 2.3× libsodium 1.0.18's on 64 KiB messages (bench/channel.sh), and
// the channel moves everything through here. One cipher context per thread, re-keyed per call.
namespace enclavia::noise::internal {

inline constexpr size_t kChaChaPolyKeySize = 32;
inline constexpr size_t kChaChaPolyNonceSize = 12;
inline constexpr size_t kChaChaPolyTagSize = 16;

// Seal writes ciphertext || tag into `out` (plaintext.size() + 16 bytes; may alias plaintext).
// Aborts only if OpenSSL itself fails, which no input can cause.
void ChaChaPolySeal(std::span<const uint8_t, kChaChaPolyKeySize> key,
                    std::span<const uint8_t, kChaChaPolyNonceSize> nonce, ByteSpan ad,
                    ByteSpan plaintext, std::span<uint8_t> out);

// Open checks the tag and writes the plaintext into `out` (ciphertext.size() − 16 bytes; may
// alias). Returns false on a bad tag, with `out` wiped.
bool ChaChaPolyOpen(std::span<const uint8_t, kChaChaPolyKeySize> key,
                    std::span<const uint8_t, kChaChaPolyNonceSize> nonce, ByteSpan ad,
                    ByteSpan ciphertext, std::span<uint8_t> out);

}  // namespace enclavia::noise::internal

#endif  // ENCLAVIA_LIB_NOISE_INTERNAL_CHACHAPOLY_H_
