// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_NOISE_INTERNAL_SYMMETRIC_STATE_H_
#define ENCLAVIA_LIB_NOISE_INTERNAL_SYMMETRIC_STATE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/secret.h"
#include "lib/noise/noise.h"

namespace enclavia::noise::internal {

// SymmetricState is Noise §5.2: the chaining key ck, the handshake hash h and a CipherState.
// Move-only; ck and the cipher key are wiped on destruction. Not thread-safe.
class SymmetricState {
 public:
  // SymmetricState is InitializeSymmetric(protocol_name) for `hash`.
  SymmetricState(Hash hash, std::string_view protocol_name);

  Hash hash() const { return hash_; }
  size_t hash_len() const { return hash_len_; }
  bool has_key() const { return cipher_.has_key(); }
  // h is the current handshake hash (hash_len bytes); valid until the next mutating call.
  ByteSpan h() const { return ByteSpan(h_.data(), hash_len_); }

  // MixKey is §5.2: ck, temp_k = HKDF(ck, ikm, 2); InitializeKey(temp_k[0, 32)).
  void MixKey(ByteSpan input_key_material);
  // MixHash is §5.2: h = HASH(h || data).
  void MixHash(ByteSpan data);
  // EncryptAndHash is §5.2: out = EncryptWithAd(h, plaintext); MixHash(out). `out` is
  // plaintext.size() (+ kTagSize with a key) bytes; it may be `plaintext` itself.
  Result<void> EncryptAndHash(ByteSpan plaintext, std::span<uint8_t> out);
  // DecryptAndHash is §5.2: out = DecryptWithAd(h, ciphertext); MixHash(ciphertext). `out` is
  // ciphertext.size() (- kTagSize with a key) bytes and must not overlap `ciphertext`.
  // kVerifyFailed (h unchanged) when authentication fails.
  Result<void> DecryptAndHash(ByteSpan ciphertext, std::span<uint8_t> out);
  // Split is §5.2: the initiator-to-responder and responder-to-initiator CipherStates. ck is
  // wiped; the object must not be used for anything but h() afterwards.
  std::pair<CipherState, CipherState> Split();

 private:
  Hash hash_;
  size_t hash_len_;
  crypto::Secret<kMaxHashSize> ck_;
  std::array<uint8_t, kMaxHashSize> h_{};
  CipherState cipher_;
};

}  // namespace enclavia::noise::internal

#endif  // ENCLAVIA_LIB_NOISE_INTERNAL_SYMMETRIC_STATE_H_
