// SPDX-License-Identifier: Apache-2.0
#include "lib/noise/internal/hash.h"

#include <sodium.h>

#include <algorithm>
#include <array>

#include <openssl/evp.h>

#include "lib/crypto/ossl.h"
#include "lib/crypto/secret.h"

namespace enclavia::noise::internal {
namespace {

static_assert(crypto_generichash_blake2b_BYTES_MAX == kMaxHashSize);
static_assert(crypto_hash_sha512_BYTES == kMaxHashSize);
static_assert(crypto_hash_sha256_BYTES == 32);

// Blake2s256 returns OpenSSL's BLAKE2s-256, fetched once: a fetch per hash would look the
// algorithm up in the provider store every time. The pointer is never freed (like a static
// EVP_MD from EVP_blake2s256()).
const EVP_MD* Blake2s256() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "BLAKE2S-256", nullptr);
  ENCLAVIA_CHECK(md != nullptr);
  return md;
}

void Blake2b(std::initializer_list<ByteSpan> parts, uint8_t* out) {
  crypto_generichash_blake2b_state state;
  // Noise §12.8: BLAKE2b with a 64-byte digest, unkeyed.
  ENCLAVIA_CHECK(crypto_generichash_blake2b_init(&state, nullptr, 0, kMaxHashSize) == 0);
  for (ByteSpan part : parts) {
    if (!part.empty()) {
      crypto_generichash_blake2b_update(&state, part.data(), part.size());
    }
  }
  crypto_generichash_blake2b_final(&state, out, kMaxHashSize);
  // The state has absorbed HMAC pads built from keys.
  sodium_memzero(&state, sizeof(state));
}

void Sha256(std::initializer_list<ByteSpan> parts, uint8_t* out) {
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  for (ByteSpan part : parts) {
    if (!part.empty()) {
      crypto_hash_sha256_update(&state, part.data(), part.size());
    }
  }
  crypto_hash_sha256_final(&state, out);
  sodium_memzero(&state, sizeof(state));
}

void Sha512(std::initializer_list<ByteSpan> parts, uint8_t* out) {
  crypto_hash_sha512_state state;
  crypto_hash_sha512_init(&state);
  for (ByteSpan part : parts) {
    if (!part.empty()) {
      crypto_hash_sha512_update(&state, part.data(), part.size());
    }
  }
  crypto_hash_sha512_final(&state, out);
  sodium_memzero(&state, sizeof(state));
}

void Blake2s(std::initializer_list<ByteSpan> parts, uint8_t* out) {
  ossl::Ptr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  // These calls fail only on allocation failure, which aborts everywhere else too.
  ENCLAVIA_CHECK(ctx != nullptr);
  ENCLAVIA_CHECK(EVP_DigestInit_ex(ctx.get(), Blake2s256(), nullptr) == 1);
  for (ByteSpan part : parts) {
    if (!part.empty()) {
      ENCLAVIA_CHECK(EVP_DigestUpdate(ctx.get(), part.data(), part.size()) == 1);
    }
  }
  unsigned int len = 0;
  ENCLAVIA_CHECK(EVP_DigestFinal_ex(ctx.get(), out, &len) == 1);
  ENCLAVIA_CHECK(len == 32);
  // EVP_MD_CTX_free cleanses the digest state.
}

}  // namespace

size_t HashLen(Hash hash) {
  switch (hash) {
    case Hash::kBlake2b:
    case Hash::kSha512:
      return 64;
    case Hash::kBlake2s:
    case Hash::kSha256:
      return 32;
  }
  ENCLAVIA_CHECK(false);
  return 0;
}

size_t BlockLen(Hash hash) {
  switch (hash) {
    case Hash::kBlake2b:
    case Hash::kSha512:
      return 128;
    case Hash::kBlake2s:
    case Hash::kSha256:
      return 64;
  }
  ENCLAVIA_CHECK(false);
  return 0;
}

void HashParts(Hash hash, std::initializer_list<ByteSpan> parts,
               std::span<uint8_t, kMaxHashSize> out) {
  switch (hash) {
    case Hash::kBlake2b:
      return Blake2b(parts, out.data());
    case Hash::kBlake2s:
      return Blake2s(parts, out.data());
    case Hash::kSha256:
      return Sha256(parts, out.data());
    case Hash::kSha512:
      return Sha512(parts, out.data());
  }
  ENCLAVIA_CHECK(false);
}

void Hmac(Hash hash, ByteSpan key, std::initializer_list<ByteSpan> data,
          std::span<uint8_t, kMaxHashSize> out) {
  // RFC 2104 with B = BLOCKLEN (Noise §4.3). Noise only ever keys HMAC with HASHLEN bytes, so the
  // "hash a long key first" branch of RFC 2104 is never needed.
  const size_t block = BlockLen(hash);
  const size_t hash_len = HashLen(hash);
  ENCLAVIA_CHECK(key.size() <= block);
  crypto::Secret<kMaxBlockSize> pad;
  std::span<uint8_t, kMaxBlockSize> p = pad.MutableBytes();
  std::copy(key.begin(), key.end(), p.begin());
  for (size_t i = 0; i < block; ++i) {
    p[i] ^= 0x36;
  }
  ByteSpan ipad(p.data(), block);
  crypto::Secret<kMaxHashSize> inner;
  // At most three data parts: HKDF's T(i-1) || i, or a caller's pieces.
  ENCLAVIA_CHECK(data.size() <= 3);
  std::array<ByteSpan, 3> d{};
  std::copy(data.begin(), data.end(), d.begin());
  HashParts(hash, {ipad, d[0], d[1], d[2]}, inner.MutableBytes());
  for (size_t i = 0; i < block; ++i) {
    p[i] ^= 0x36 ^ 0x5c;
  }
  HashParts(hash, {ByteSpan(p.data(), block), inner.Expose().first(hash_len)}, out);
}

namespace {

// HkdfOutputs is Noise §4.3 HKDF: temp_key = HMAC(ck, ikm); output1 = HMAC(temp_key, 0x01);
// output2 = HMAC(temp_key, output1 || 0x02); output3 = HMAC(temp_key, output2 || 0x03) when
// `out3` is not null.
void HkdfOutputs(Hash hash, ByteSpan chaining_key, ByteSpan ikm,
                 std::span<uint8_t, kMaxHashSize> out1, std::span<uint8_t, kMaxHashSize> out2,
                 std::span<uint8_t, kMaxHashSize>* out3) {
  static constexpr std::array<uint8_t, 3> kCounters = {0x01, 0x02, 0x03};
  const size_t hash_len = HashLen(hash);
  crypto::Secret<kMaxHashSize> temp_key;
  Hmac(hash, chaining_key, {ikm}, temp_key.MutableBytes());
  ByteSpan tk = temp_key.Expose().first(hash_len);
  Hmac(hash, tk, {ByteSpan(kCounters).subspan(0, 1)}, out1);
  Hmac(hash, tk, {ByteSpan(out1.data(), hash_len), ByteSpan(kCounters).subspan(1, 1)}, out2);
  if (out3 != nullptr) {
    Hmac(hash, tk, {ByteSpan(out2.data(), hash_len), ByteSpan(kCounters).subspan(2, 1)}, *out3);
  }
}

}  // namespace

void Hkdf(Hash hash, ByteSpan chaining_key, ByteSpan ikm, std::span<uint8_t, kMaxHashSize> out1,
          std::span<uint8_t, kMaxHashSize> out2) {
  HkdfOutputs(hash, chaining_key, ikm, out1, out2, nullptr);
}

void Hkdf(Hash hash, ByteSpan chaining_key, ByteSpan ikm, std::span<uint8_t, kMaxHashSize> out1,
          std::span<uint8_t, kMaxHashSize> out2, std::span<uint8_t, kMaxHashSize> out3) {
  HkdfOutputs(hash, chaining_key, ikm, out1, out2, &out3);
}

}  // namespace enclavia::noise::internal
