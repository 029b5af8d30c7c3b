// SPDX-License-Identifier: Apache-2.0
#include "lib/noise/internal/chachapoly.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>

#include "lib/base/result.h"
#include "lib/crypto/ossl.h"

namespace enclavia::noise::internal {
namespace {

// Context returns this thread's cipher context, created on first use.
EVP_CIPHER_CTX* Context() {
  thread_local ossl::Ptr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  ENCLAVIA_CHECK(ctx != nullptr);
  return ctx.get();
}

int Len(size_t n) {
  ENCLAVIA_CHECK(n <= INT_MAX);  // Noise messages are at most 65535 bytes.
  return static_cast<int>(n);
}

}  // namespace

void ChaChaPolySeal(std::span<const uint8_t, kChaChaPolyKeySize> key,
                    std::span<const uint8_t, kChaChaPolyNonceSize> nonce, ByteSpan ad,
                    ByteSpan plaintext, std::span<uint8_t> out) {
  ENCLAVIA_CHECK(out.size() == plaintext.size() + kChaChaPolyTagSize);
  EVP_CIPHER_CTX* ctx = Context();
  int len = 0;
  ENCLAVIA_CHECK(EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key.data(),
                                    nonce.data()) == 1);
  if (!ad.empty()) {
    ENCLAVIA_CHECK(EVP_EncryptUpdate(ctx, nullptr, &len, ad.data(), Len(ad.size())) == 1);
  }
  int written = 0;
  if (!plaintext.empty()) {
    ENCLAVIA_CHECK(EVP_EncryptUpdate(ctx, out.data(), &written, plaintext.data(),
                                     Len(plaintext.size())) == 1);
  }
  ENCLAVIA_CHECK(EVP_EncryptFinal_ex(ctx, out.data() + written, &len) == 1);
  ENCLAVIA_CHECK(static_cast<size_t>(written + len) == plaintext.size());
  ENCLAVIA_CHECK(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kChaChaPolyTagSize,
                                     out.data() + plaintext.size()) == 1);
}

bool ChaChaPolyOpen(std::span<const uint8_t, kChaChaPolyKeySize> key,
                    std::span<const uint8_t, kChaChaPolyNonceSize> nonce, ByteSpan ad,
                    ByteSpan ciphertext, std::span<uint8_t> out) {
  ENCLAVIA_CHECK(ciphertext.size() >= kChaChaPolyTagSize &&
                 out.size() == ciphertext.size() - kChaChaPolyTagSize);
  EVP_CIPHER_CTX* ctx = Context();
  size_t body = ciphertext.size() - kChaChaPolyTagSize;
  // The tag is copied out first: `out` may alias `ciphertext`, and decrypting overwrites it.
  uint8_t tag[kChaChaPolyTagSize];
  std::copy_n(ciphertext.data() + body, kChaChaPolyTagSize, tag);
  int len = 0;
  ENCLAVIA_CHECK(EVP_DecryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key.data(),
                                    nonce.data()) == 1);
  ENCLAVIA_CHECK(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kChaChaPolyTagSize, tag) == 1);
  if (!ad.empty()) {
    ENCLAVIA_CHECK(EVP_DecryptUpdate(ctx, nullptr, &len, ad.data(), Len(ad.size())) == 1);
  }
  int written = 0;
  if (body > 0) {
    ENCLAVIA_CHECK(EVP_DecryptUpdate(ctx, out.data(), &written, ciphertext.data(), Len(body)) ==
                   1);
  }
  // Final compares the tag in constant time (CRYPTO_memcmp inside the provider).
  bool ok = EVP_DecryptFinal_ex(ctx, out.data() + written, &len) == 1;
  if (!ok && !out.empty()) {
    OPENSSL_cleanse(out.data(), out.size());  // No unauthenticated plaintext leaves.
  }
  return ok;
}

}  // namespace enclavia::noise::internal
