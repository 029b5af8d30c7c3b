// SPDX-License-Identifier: Apache-2.0
#include "lib/noise/internal/symmetric_state.h"

#include <algorithm>

#include "lib/noise/internal/hash.h"

namespace enclavia::noise::internal {
namespace {

// TruncatedKey returns the first 32 bytes of a HASHLEN-byte HKDF output: §5.2 "If HASHLEN is 64,
// then truncates temp_k to 32 bytes".
crypto::Secret<kKeySize> TruncatedKey(const crypto::Secret<kMaxHashSize>& output) {
  crypto::Secret<kKeySize> key;
  std::copy_n(output.Expose().begin(), kKeySize, key.MutableBytes().begin());
  return key;
}

}  // namespace

SymmetricState::SymmetricState(Hash hash, std::string_view protocol_name)
    : hash_(hash), hash_len_(HashLen(hash)) {
  // §5.2 InitializeSymmetric: a name of at most HASHLEN bytes is zero-padded into h, a longer
  // one is hashed. ck = h.
  ByteSpan name = AsBytes(protocol_name);
  if (name.size() <= hash_len_) {
    std::copy(name.begin(), name.end(), h_.begin());
  } else {
    HashParts(hash_, {name}, h_);
  }
  std::copy_n(h_.begin(), hash_len_, ck_.MutableBytes().begin());
}

void SymmetricState::MixKey(ByteSpan input_key_material) {
  crypto::Secret<kMaxHashSize> ck;
  crypto::Secret<kMaxHashSize> temp_k;
  Hkdf(hash_, ck_.Expose().first(hash_len_), input_key_material, ck.MutableBytes(),
       temp_k.MutableBytes());
  ck_ = std::move(ck);
  // §5.2 InitializeKey also resets the nonce to zero.
  cipher_ = CipherState(TruncatedKey(temp_k));
}

void SymmetricState::MixHash(ByteSpan data) {
  // HashParts absorbs every part before writing its output, so h may be both input and output.
  HashParts(hash_, {h(), data}, h_);
}

Result<void> SymmetricState::EncryptAndHash(ByteSpan plaintext, std::span<uint8_t> out) {
  RETURN_IF_ERROR(cipher_.EncryptWithAdTo(h(), plaintext, out));
  MixHash(out);
  return Ok();
}

Result<void> SymmetricState::DecryptAndHash(ByteSpan ciphertext, std::span<uint8_t> out) {
  RETURN_IF_ERROR(cipher_.DecryptWithAdTo(h(), ciphertext, out));
  MixHash(ciphertext);
  return Ok();
}

std::pair<CipherState, CipherState> SymmetricState::Split() {
  // §5.2 Split: temp_k1, temp_k2 = HKDF(ck, zerolen, 2), each truncated to 32 bytes.
  crypto::Secret<kMaxHashSize> temp_k1;
  crypto::Secret<kMaxHashSize> temp_k2;
  Hkdf(hash_, ck_.Expose().first(hash_len_), {}, temp_k1.MutableBytes(), temp_k2.MutableBytes());
  ck_ = crypto::Secret<kMaxHashSize>();
  cipher_ = CipherState();
  return {CipherState(TruncatedKey(temp_k1)), CipherState(TruncatedKey(temp_k2))};
}

}  // namespace enclavia::noise::internal
