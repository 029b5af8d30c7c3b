// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CRYPTO_X25519_H_
#define ENCLAVIA_LIB_CRYPTO_X25519_H_

#include <array>
#include <cstdint>
#include <span>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/secret.h"

namespace enclavia::crypto {

inline constexpr size_t kX25519KeySize = 32;
using X25519PublicKey = std::array<uint8_t, kX25519KeySize>;

// X25519Keypair is a Curve25519 Diffie-Hellman key pair (libsodium). Move-only.
struct X25519Keypair {
  Secret<kX25519KeySize> private_key;
  X25519PublicKey public_key{};

  static X25519Keypair Generate();
  // FromPrivate derives the public key from a 32-byte private key.
  static X25519Keypair FromPrivate(std::span<const uint8_t, kX25519KeySize> private_key);
};

// X25519 computes the shared secret. A peer key that is not 32 bytes or that yields the all-zero
// output (a low-order point) is kVerifyFailed.
Result<Secret<kX25519KeySize>> X25519(const Secret<kX25519KeySize>& private_key,
                                      ByteSpan peer_public_key);

}  // namespace enclavia::crypto

#endif  // ENCLAVIA_LIB_CRYPTO_X25519_H_
