// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/hash.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "lib/crypto/internal/util.h"
#include "lib/crypto/ossl.h"

namespace enclavia::crypto {
namespace {

using internal::NonNull;

const EVP_MD* Md(HashAlgorithm alg) {
  switch (alg) {
    case HashAlgorithm::kSha256:
      return EVP_sha256();
    case HashAlgorithm::kSha384:
      return EVP_sha384();
    case HashAlgorithm::kSha512:
      return EVP_sha512();
  }
  ENCLAVIA_CHECK(false);
  return nullptr;
}

const char* MdName(HashAlgorithm alg) {
  switch (alg) {
    case HashAlgorithm::kSha256:
      return "SHA256";
    case HashAlgorithm::kSha384:
      return "SHA384";
    case HashAlgorithm::kSha512:
      return "SHA512";
  }
  ENCLAVIA_CHECK(false);
  return nullptr;
}

template <size_t N>
std::array<uint8_t, N> OneShot(const EVP_MD* md, ByteSpan data) {
  std::array<uint8_t, N> out{};
  unsigned int out_len = 0;
  // EVP_Digest only fails on allocation failure, which aborts everywhere else
  // too.
  ENCLAVIA_CHECK(EVP_Digest(data.data(), data.size(), out.data(), &out_len, md, nullptr) == 1);
  ENCLAVIA_CHECK(out_len == N);
  return out;
}

}  // namespace

Sha256Digest Sha256(ByteSpan data) { return OneShot<32>(EVP_sha256(), data); }
Sha384Digest Sha384(ByteSpan data) { return OneShot<48>(EVP_sha384(), data); }
Sha512Digest Sha512(ByteSpan data) { return OneShot<64>(EVP_sha512(), data); }

size_t DigestSize(HashAlgorithm alg) {
  switch (alg) {
    case HashAlgorithm::kSha256:
      return 32;
    case HashAlgorithm::kSha384:
      return 48;
    case HashAlgorithm::kSha512:
      return 64;
  }
  ENCLAVIA_CHECK(false);
  return 0;
}

struct Hasher::State {
  ossl::Ptr<EVP_MD_CTX> ctx;
  size_t size = 0;
};

Hasher::Hasher(HashAlgorithm alg) : state_(std::make_unique<State>()) {
  state_->ctx.reset(EVP_MD_CTX_new());
  ENCLAVIA_CHECK(state_->ctx != nullptr);
  ENCLAVIA_CHECK(EVP_DigestInit_ex(state_->ctx.get(), Md(alg), nullptr) == 1);
  state_->size = DigestSize(alg);
}

Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;
Hasher::~Hasher() = default;

void Hasher::Update(ByteSpan data) {
  ENCLAVIA_CHECK(state_ != nullptr);
  ENCLAVIA_CHECK(EVP_DigestUpdate(state_->ctx.get(), data.data(), data.size()) == 1);
}

Bytes Hasher::Finish() {
  ENCLAVIA_CHECK(state_ != nullptr);
  Bytes out(state_->size);
  unsigned int out_len = 0;
  ENCLAVIA_CHECK(EVP_DigestFinal_ex(state_->ctx.get(), out.data(), &out_len) == 1);
  ENCLAVIA_CHECK(out_len == out.size());
  state_.reset();
  return out;
}

Result<Bytes> HashFile(HashAlgorithm alg, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error(Code::kIo, "cannot open " + path + ": " + std::strerror(errno));
  }
  Hasher hasher(alg);
  std::vector<uint8_t> buffer(size_t{1} << 20);
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Error(Code::kIo, "cannot read " + path + ": " + std::strerror(err));
    }
    if (n == 0) {
      break;
    }
    hasher.Update(ByteSpan(buffer.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return hasher.Finish();
}

Bytes Hmac(HashAlgorithm alg, ByteSpan key, ByteSpan data) {
  ossl::Ptr<EVP_MAC> mac(EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr));
  ENCLAVIA_CHECK(mac != nullptr);
  ossl::Ptr<EVP_MAC_CTX> ctx(EVP_MAC_CTX_new(mac.get()));
  ENCLAVIA_CHECK(ctx != nullptr);
  // The digest name is only read, despite the non-const parameter type.
  std::array<OSSL_PARAM, 2> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(MdName(alg)), 0),
      OSSL_PARAM_construct_end(),
  };
  // A null key would mean "reuse the previous key", so an empty key is passed
  // as a non-null pointer with length zero (RFC 2104 allows any key length).
  ENCLAVIA_CHECK(EVP_MAC_init(ctx.get(), NonNull(key), key.size(), params.data()) == 1);
  ENCLAVIA_CHECK(EVP_MAC_update(ctx.get(), data.data(), data.size()) == 1);
  Bytes out(DigestSize(alg));
  size_t out_len = 0;
  ENCLAVIA_CHECK(EVP_MAC_final(ctx.get(), out.data(), &out_len, out.size()) == 1);
  ENCLAVIA_CHECK(out_len == out.size());
  return out;
}

Result<SecretBytes> Hkdf(HashAlgorithm alg, ByteSpan ikm, ByteSpan salt, ByteSpan info,
                         size_t length) {
  // RFC 5869 §2.3: L <= 255 * HashLen.
  if (length > 255 * DigestSize(alg)) {
    return Error(Code::kInvalidArgument, "hkdf: output length exceeds 255 * hash length");
  }
  SecretBytes out(length);
  if (length == 0) {
    return out;
  }
  ossl::Ptr<EVP_KDF> kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr));
  if (kdf == nullptr) {
    return Error(Code::kInternal, "hkdf: EVP_KDF_fetch failed");
  }
  ossl::Ptr<EVP_KDF_CTX> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (ctx == nullptr) {
    return Error(Code::kInternal, "hkdf: EVP_KDF_CTX_new failed");
  }
  // OSSL_PARAM takes non-const pointers but only reads through them here.
  std::array<OSSL_PARAM, 5> params{};
  size_t n = 0;
  params[n++] =
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(MdName(alg)), 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<uint8_t*>(NonNull(ikm)), ikm.size());
  // An absent salt is HashLen zero bytes (RFC 5869 §2.2), which is what OpenSSL
  // does without one.
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    const_cast<uint8_t*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();
  if (EVP_KDF_derive(ctx.get(), out.MutableBytes().data(), length, params.data()) != 1) {
    return Error(Code::kInternal, "hkdf: derive failed");
  }
  return out;
}

}  // namespace enclavia::crypto
