// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/x25519.h"

#include <sodium.h>

#include <algorithm>

#include "lib/crypto/random.h"

namespace enclavia::crypto {

static_assert(crypto_scalarmult_BYTES == kX25519KeySize);
static_assert(crypto_scalarmult_SCALARBYTES == kX25519KeySize);

X25519Keypair X25519Keypair::Generate() {
  X25519Keypair pair;
  RandomFill(pair.private_key.MutableBytes());
  // crypto_scalarmult_base only fails for an all-zero result, impossible for
  // the base point.
  ENCLAVIA_CHECK(crypto_scalarmult_base(pair.public_key.data(), pair.private_key.Expose().data()) ==
                 0);
  return pair;
}

X25519Keypair X25519Keypair::FromPrivate(std::span<const uint8_t, kX25519KeySize> private_key) {
  X25519Keypair pair;
  std::copy(private_key.begin(), private_key.end(), pair.private_key.MutableBytes().begin());
  ENCLAVIA_CHECK(crypto_scalarmult_base(pair.public_key.data(), pair.private_key.Expose().data()) ==
                 0);
  return pair;
}

Result<Secret<kX25519KeySize>> X25519(const Secret<kX25519KeySize>& private_key,
                                      ByteSpan peer_public_key) {
  constexpr const char* kFailed = "x25519: invalid peer public key";
  if (peer_public_key.size() != kX25519KeySize) {
    return Error(Code::kVerifyFailed, kFailed);
  }
  Secret<kX25519KeySize> shared;
  // libsodium returns -1 when the result is all zeros, i.e. the peer sent a
  // low-order point (RFC 7748 §6.1 "check whether the result is the all-zero
  // value").
  if (crypto_scalarmult(shared.MutableBytes().data(), private_key.Expose().data(),
                        peer_public_key.data()) != 0 ||
      sodium_is_zero(shared.Expose().data(), kX25519KeySize) == 1) {
    return Error(Code::kVerifyFailed, kFailed);
  }
  return shared;
}

}  // namespace enclavia::crypto
