// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/aead.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <climits>

#include <openssl/evp.h>

#include "lib/crypto/internal/util.h"
#include "lib/crypto/ossl.h"
#include "lib/crypto/random.h"

namespace enclavia::crypto {
namespace {

// One message for every failed Open, whatever the cause: callers get no oracle.
constexpr const char* kOpenFailed = "aead: authentication failed";

static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == kAeadKeySize);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == kAeadNonceSize);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == kAeadTagSize);

using internal::FitsInt;

Result<Bytes> GcmSeal(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan plaintext) {
  if (!FitsInt(aad.size()) || plaintext.size() > static_cast<size_t>(INT_MAX) - kAeadTagSize) {
    return Error(Code::kLimitExceeded, "aead: input too large");
  }
  ossl::Ptr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kAeadNonceSize),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce.data()) != 1) {
    return Error(Code::kInternal, "aead: AES-GCM init failed");
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return Error(Code::kInternal, "aead: AES-GCM aad failed");
  }
  Bytes out(plaintext.size() + kAeadTagSize);
  size_t written = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), out.data(), &len, plaintext.data(),
                          static_cast<int>(plaintext.size())) != 1) {
      return Error(Code::kInternal, "aead: AES-GCM encrypt failed");
    }
    written = static_cast<size_t>(len);
  }
  if (EVP_EncryptFinal_ex(ctx.get(), out.data() + written, &len) != 1) {
    return Error(Code::kInternal, "aead: AES-GCM final failed");
  }
  written += static_cast<size_t>(len);
  ENCLAVIA_CHECK(written == plaintext.size());
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAeadTagSize),
                          out.data() + written) != 1) {
    return Error(Code::kInternal, "aead: AES-GCM tag failed");
  }
  return out;
}

Result<SecretBytes> GcmOpen(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan sealed) {
  if (!FitsInt(aad.size()) || !FitsInt(sealed.size())) {
    return Error(Code::kLimitExceeded, "aead: input too large");
  }
  const size_t ct_size = sealed.size() - kAeadTagSize;
  ossl::Ptr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kAeadNonceSize),
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce.data()) != 1) {
    return Error(Code::kInternal, "aead: AES-GCM init failed");
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return Error(Code::kVerifyFailed, kOpenFailed);
  }
  // Decrypt into wiped memory: if the tag turns out bad, the plaintext is
  // discarded unseen.
  SecretBytes out(ct_size);
  size_t written = 0;
  if (ct_size != 0) {
    if (EVP_DecryptUpdate(ctx.get(), out.MutableBytes().data(), &len, sealed.data(),
                          static_cast<int>(ct_size)) != 1) {
      return Error(Code::kVerifyFailed, kOpenFailed);
    }
    written = static_cast<size_t>(len);
  }
  // The tag buffer is only read; EVP_CIPHER_CTX_ctrl takes void*.
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAeadTagSize),
                          const_cast<uint8_t*>(sealed.data() + ct_size)) != 1) {
    return Error(Code::kVerifyFailed, kOpenFailed);
  }
  std::array<uint8_t, 16> final_block{};
  if (EVP_DecryptFinal_ex(ctx.get(), final_block.data(), &len) != 1) {
    return Error(Code::kVerifyFailed, kOpenFailed);
  }
  ENCLAVIA_CHECK(len == 0 && written == ct_size);
  return out;
}

Result<Bytes> ChaChaSeal(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan plaintext) {
  if (plaintext.size() > crypto_aead_chacha20poly1305_ietf_messagebytes_max()) {
    return Error(Code::kLimitExceeded, "aead: input too large");
  }
  Bytes out(plaintext.size() + kAeadTagSize);
  unsigned long long out_len = 0;  // NOLINT(google-runtime-int): libsodium's type.
  if (crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &out_len, plaintext.data(),
                                                plaintext.size(), aad.data(), aad.size(), nullptr,
                                                nonce.data(), key.data()) != 0) {
    return Error(Code::kInternal, "aead: ChaCha20-Poly1305 encrypt failed");
  }
  ENCLAVIA_CHECK(out_len == out.size());
  return out;
}

Result<SecretBytes> ChaChaOpen(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan sealed) {
  SecretBytes out(sealed.size() - kAeadTagSize);
  unsigned long long out_len = 0;  // NOLINT(google-runtime-int): libsodium's type.
  // libsodium checks the tag before decrypting anything.
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out.MutableBytes().data(), &out_len, nullptr,
                                                sealed.data(), sealed.size(), aad.data(),
                                                aad.size(), nonce.data(), key.data()) != 0) {
    return Error(Code::kVerifyFailed, kOpenFailed);
  }
  ENCLAVIA_CHECK(out_len == out.size());
  return out;
}

}  // namespace

AeadKey::AeadKey(AeadAlgorithm alg, ByteSpan key) : alg_(alg) {
  ENCLAVIA_CHECK(key.size() == kAeadKeySize);
  std::copy(key.begin(), key.end(), key_.MutableBytes().begin());
}

Result<AeadKey> AeadKey::Create(AeadAlgorithm alg, ByteSpan key) {
  if (key.size() != kAeadKeySize) {
    return Error(Code::kInvalidArgument, "aead: key must be 32 bytes");
  }
  return AeadKey(alg, key);
}

AeadKey AeadKey::Generate(AeadAlgorithm alg) {
  Secret<kAeadKeySize> fresh;
  RandomFill(fresh.MutableBytes());
  return {alg, fresh.Expose()};
}

Result<Bytes> AeadKey::Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext) const {
  if (nonce.size() != kAeadNonceSize) {
    return Error(Code::kInvalidArgument, "aead: nonce must be 12 bytes");
  }
  switch (alg_) {
    case AeadAlgorithm::kAes256Gcm:
      return GcmSeal(key_.Expose(), nonce, aad, plaintext);
    case AeadAlgorithm::kChaCha20Poly1305:
      return ChaChaSeal(key_.Expose(), nonce, aad, plaintext);
  }
  return Error(Code::kInvalidArgument, "aead: unknown algorithm");
}

Result<SecretBytes> AeadKey::Open(ByteSpan nonce, ByteSpan aad, ByteSpan sealed) const {
  if (nonce.size() != kAeadNonceSize) {
    return Error(Code::kInvalidArgument, "aead: nonce must be 12 bytes");
  }
  if (sealed.size() < kAeadTagSize) {
    return Error(Code::kVerifyFailed, kOpenFailed);
  }
  switch (alg_) {
    case AeadAlgorithm::kAes256Gcm:
      return GcmOpen(key_.Expose(), nonce, aad, sealed);
    case AeadAlgorithm::kChaCha20Poly1305:
      return ChaChaOpen(key_.Expose(), nonce, aad, sealed);
  }
  return Error(Code::kInvalidArgument, "aead: unknown algorithm");
}

}  // namespace enclavia::crypto
