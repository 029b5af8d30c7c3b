// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/keys.h"

#include <array>
#include <cstring>

#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "lib/crypto/internal/util.h"

namespace enclavia::crypto {
namespace {

using internal::FitsInt;
using internal::FitsLong;
using internal::NonNull;
using internal::BioText;
using internal::MemBio;
using internal::NoPassphrase;
using internal::OsslError;

// One message for every failed verification, whatever the cause: callers get no
// oracle.
constexpr const char* kVerifyFailedMessage = "signature verification failed";

// scrypt cost for encrypted PEM: the `openssl pkcs8 -scrypt` defaults (N=2^14,
// r=8, p=1).
constexpr uint64_t kScryptN = 16384;
constexpr uint64_t kScryptR = 8;
constexpr uint64_t kScryptP = 1;

size_t ScalarSize(SignatureAlgorithm alg) {
  return alg == SignatureAlgorithm::kEcdsaP384Sha384 ? 48 : 32;
}

// Md returns the digest that goes with `alg`; nullptr for Ed25519 (it hashes
// internally).
const EVP_MD* Md(SignatureAlgorithm alg) {
  switch (alg) {
    case SignatureAlgorithm::kEcdsaP256Sha256:
      return EVP_sha256();
    case SignatureAlgorithm::kEcdsaP384Sha384:
      return EVP_sha384();
    case SignatureAlgorithm::kEd25519:
      return nullptr;
  }
  return nullptr;
}

Result<SignatureAlgorithm> AlgorithmOf(const EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519") == 1) {
    return SignatureAlgorithm::kEd25519;
  }
  if (EVP_PKEY_is_a(key, "EC") == 1) {
    std::array<char, 64> name{};
    size_t name_len = 0;
    if (EVP_PKEY_get_group_name(key, name.data(), name.size(), &name_len) == 1) {
      const int nid = OBJ_sn2nid(name.data());
      if (nid == NID_X9_62_prime256v1) {
        return SignatureAlgorithm::kEcdsaP256Sha256;
      }
      if (nid == NID_secp384r1) {
        return SignatureAlgorithm::kEcdsaP384Sha384;
      }
    }
    return OsslError(Code::kUnsupported, "key: unsupported elliptic curve");
  }
  return OsslError(Code::kUnsupported, "key: unsupported key type");
}

// CopyPassphrase supplies the std::string_view that `u` points to.
int CopyPassphrase(char* buf, int size, int /*rwflag*/, void* u) {
  const auto* pass = static_cast<const std::string_view*>(u);
  if (pass == nullptr || size < 0 || pass->size() > static_cast<size_t>(size)) {
    return -1;
  }
  std::memcpy(buf, pass->data(), pass->size());
  return static_cast<int>(pass->size());
}

Result<void> DigestVerify(EVP_PKEY* key, const EVP_MD* md, ByteSpan message, ByteSpan signature) {
  ossl::Ptr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key) != 1 ||
      EVP_DigestVerify(ctx.get(), NonNull(signature), signature.size(), NonNull(message),
                       message.size()) != 1) {
    return OsslError(Code::kVerifyFailed, kVerifyFailedMessage);
  }
  return Ok();
}

Result<Bytes> DigestSign(EVP_PKEY* key, const EVP_MD* md, ByteSpan message) {
  ossl::Ptr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  const int max_size = EVP_PKEY_get_size(key);
  if (ctx == nullptr || max_size <= 0 ||
      EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key) != 1) {
    return OsslError(Code::kInternal, "sign: init failed");
  }
  Bytes out(static_cast<size_t>(max_size));
  size_t out_len = out.size();
  if (EVP_DigestSign(ctx.get(), out.data(), &out_len, NonNull(message), message.size()) != 1) {
    return OsslError(Code::kInternal, "sign: failed");
  }
  out.resize(out_len);
  return out;
}

Result<Bytes> I2dPubkey(EVP_PKEY* key) {
  const int len = i2d_PUBKEY(key, nullptr);
  if (len <= 0) {
    return OsslError(Code::kInternal, "key: i2d_PUBKEY failed");
  }
  Bytes out(static_cast<size_t>(len));
  unsigned char* p = out.data();
  if (i2d_PUBKEY(key, &p) != len) {
    return OsslError(Code::kInternal, "key: i2d_PUBKEY failed");
  }
  return out;
}

Result<ossl::Ptr<EVP_PKEY>> D2iPubkey(ByteSpan der) {
  if (!FitsLong(der.size())) {
    return Error(Code::kMalformed, "key: SubjectPublicKeyInfo too large");
  }
  const unsigned char* p = der.data();
  ossl::Ptr<EVP_PKEY> key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (key == nullptr) {
    return OsslError(Code::kMalformed, "key: bad SubjectPublicKeyInfo");
  }
  if (p != der.data() + der.size()) {
    return Error(Code::kMalformed, "key: trailing bytes after SubjectPublicKeyInfo");
  }
  return key;
}

Result<ossl::Ptr<EVP_PKEY>> EcPublicFromPoint(const char* group, ByteSpan point) {
  // The parameters are only read; OSSL_PARAM takes non-const pointers.
  std::array<OSSL_PARAM, 3> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(point.data()),
                                        point.size()),
      OSSL_PARAM_construct_end(),
  };
  ossl::Ptr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return OsslError(Code::kInternal, "key: EVP_PKEY_fromdata_init failed");
  }
  EVP_PKEY* raw = nullptr;
  // Import decodes the point with EC_POINT_oct2point, which rejects points not
  // on the curve.
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.data()) != 1) {
    return OsslError(Code::kMalformed, "key: invalid EC point");
  }
  return ossl::Ptr<EVP_PKEY>(raw);
}

Result<Bytes> BnToPadded(const BIGNUM* bn, size_t size) {
  Bytes out(size);
  if (BN_is_negative(bn) != 0 || BN_bn2binpad(bn, out.data(), static_cast<int>(size)) < 0) {
    return Error(Code::kMalformed, "ecdsa: value out of range");
  }
  return out;
}

}  // namespace

size_t RawSignatureSize(SignatureAlgorithm alg) {
  return alg == SignatureAlgorithm::kEcdsaP384Sha384 ? 96 : 64;
}

// PublicKey.

Result<PublicKey> PublicKey::FromEvp(ossl::Ptr<EVP_PKEY> key) {
  ASSIGN_OR_RETURN(SignatureAlgorithm alg, AlgorithmOf(key.get()));
  return PublicKey(alg, std::move(key));
}

Result<PublicKey> PublicKey::FromSpki(ByteSpan der) {
  ASSIGN_OR_RETURN(ossl::Ptr<EVP_PKEY> key, D2iPubkey(der));
  return FromEvp(std::move(key));
}

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  ASSIGN_OR_RETURN(ossl::Ptr<BIO> bio, MemBio(pem));
  ossl::Ptr<EVP_PKEY> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return OsslError(Code::kMalformed, "key: no valid PUBLIC KEY PEM block");
  }
  return FromEvp(std::move(key));
}

Result<PublicKey> PublicKey::FromRaw(SignatureAlgorithm alg, ByteSpan raw) {
  switch (alg) {
    case SignatureAlgorithm::kEd25519: {
      if (raw.size() != 32) {
        return Error(Code::kMalformed, "key: Ed25519 public key must be 32 bytes");
      }
      ossl::Ptr<EVP_PKEY> key(
          EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()));
      if (key == nullptr) {
        return OsslError(Code::kMalformed, "key: invalid Ed25519 public key");
      }
      return PublicKey(alg, std::move(key));
    }
    case SignatureAlgorithm::kEcdsaP256Sha256:
    case SignatureAlgorithm::kEcdsaP384Sha384: {
      const size_t scalar = ScalarSize(alg);
      if (raw.size() != 1 + 2 * scalar || raw[0] != 0x04) {
        return Error(Code::kMalformed, "key: expected an uncompressed EC point");
      }
      const char* group = alg == SignatureAlgorithm::kEcdsaP256Sha256 ? "P-256" : "P-384";
      ASSIGN_OR_RETURN(ossl::Ptr<EVP_PKEY> key, EcPublicFromPoint(group, raw));
      return PublicKey(alg, std::move(key));
    }
  }
  return Error(Code::kUnsupported, "key: unknown algorithm");
}

PublicKey::PublicKey(const PublicKey& other) : alg_(other.alg_), key_(other.key_.get()) {
  if (key_ != nullptr) {
    ENCLAVIA_CHECK(EVP_PKEY_up_ref(key_.get()) == 1);
  }
}

PublicKey& PublicKey::operator=(const PublicKey& other) {
  if (this != &other) {
    PublicKey copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Bytes PublicKey::ToSpki() const {
  Result<Bytes> der = I2dPubkey(key_.get());
  ENCLAVIA_CHECK(der.has_value());
  return std::move(der).value();
}

std::string PublicKey::ToPem() const {
  ossl::Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  ENCLAVIA_CHECK(bio != nullptr);
  ENCLAVIA_CHECK(PEM_write_bio_PUBKEY(bio.get(), key_.get()) == 1);
  Bytes pem = ToBytes(BioText(bio.get()));
  return std::string(AsString(pem));
}

Bytes PublicKey::ToRaw() const {
  if (alg_ == SignatureAlgorithm::kEd25519) {
    Bytes out(32);
    size_t len = out.size();
    ENCLAVIA_CHECK(EVP_PKEY_get_raw_public_key(key_.get(), out.data(), &len) == 1 && len == 32);
    return out;
  }
  // Built from the coordinates rather than the stored encoding, which keeps the
  // conversion form (possibly compressed) of whatever the key was parsed from.
  BIGNUM* x_raw = nullptr;
  BIGNUM* y_raw = nullptr;
  ENCLAVIA_CHECK(EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x_raw) == 1);
  ossl::Ptr<BIGNUM> x(x_raw);
  ENCLAVIA_CHECK(EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y_raw) == 1);
  ossl::Ptr<BIGNUM> y(y_raw);
  const size_t scalar = ScalarSize(alg_);
  Bytes out(1 + 2 * scalar);
  out[0] = 0x04;
  ENCLAVIA_CHECK(BN_bn2binpad(x.get(), out.data() + 1, static_cast<int>(scalar)) >= 0);
  ENCLAVIA_CHECK(BN_bn2binpad(y.get(), out.data() + 1 + scalar, static_cast<int>(scalar)) >= 0);
  return out;
}

Result<void> PublicKey::Verify(ByteSpan message, ByteSpan signature) const {
  if (signature.size() != RawSignatureSize(alg_)) {
    return Error(Code::kVerifyFailed, kVerifyFailedMessage);
  }
  if (alg_ == SignatureAlgorithm::kEd25519) {
    return DigestVerify(key_.get(), nullptr, message, signature);
  }
  Result<Bytes> der = EcdsaRawToDer(signature);
  if (!der.has_value()) {
    return Error(Code::kVerifyFailed, kVerifyFailedMessage);
  }
  return DigestVerify(key_.get(), Md(alg_), message, *der);
}

Result<void> PublicKey::VerifyDer(ByteSpan message, ByteSpan der_signature) const {
  if (alg_ == SignatureAlgorithm::kEd25519) {
    return Error(Code::kVerifyFailed, kVerifyFailedMessage);
  }
  // OpenSSL's ECDSA verify re-encodes the parsed signature and rejects any
  // difference, so non-canonical DER and trailing bytes fail here too.
  return DigestVerify(key_.get(), Md(alg_), message, der_signature);
}

// PrivateKey.

Result<PrivateKey> PrivateKey::FromEvp(ossl::Ptr<EVP_PKEY> key) {
  ASSIGN_OR_RETURN(SignatureAlgorithm alg, AlgorithmOf(key.get()));
  return PrivateKey(alg, std::move(key));
}

PrivateKey PrivateKey::Generate(SignatureAlgorithm alg) {
  EVP_PKEY* raw = nullptr;
  switch (alg) {
    case SignatureAlgorithm::kEcdsaP256Sha256:
      raw = EVP_EC_gen("P-256");
      break;
    case SignatureAlgorithm::kEcdsaP384Sha384:
      raw = EVP_EC_gen("P-384");
      break;
    case SignatureAlgorithm::kEd25519:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  ENCLAVIA_CHECK(raw != nullptr);
  return {alg, ossl::Ptr<EVP_PKEY>(raw)};
}

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem,
                                       std::optional<std::string_view> passphrase) {
  ASSIGN_OR_RETURN(ossl::Ptr<BIO> bio, MemBio(pem));
  // PKCS#8 "ENCRYPTED PRIVATE KEY", or a legacy PEM with an RFC 1421 encryption header.
  const bool encrypted =
      pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos ||
      pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos;
  if (encrypted && !passphrase.has_value()) {
    return Error(Code::kInvalidArgument, "key: encrypted private key needs a passphrase");
  }
  std::string_view pass = passphrase.value_or(std::string_view());
  ossl::Ptr<EVP_PKEY> key(passphrase.has_value()
                              ? PEM_read_bio_PrivateKey(bio.get(), nullptr, CopyPassphrase, &pass)
                              : PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    // A bad passphrase and a damaged ciphertext look the same (CBC padding or
    // the decoded structure fails); both are reported as a failed decryption.
    if (encrypted) {
      return OsslError(Code::kVerifyFailed, "key: wrong passphrase or corrupt encrypted key");
    }
    return OsslError(Code::kMalformed, "key: no valid PRIVATE KEY PEM block");
  }
  return FromEvp(std::move(key));
}

Result<PrivateKey> PrivateKey::FromPkcs8Der(ByteSpan der) {
  if (!FitsLong(der.size())) {
    return Error(Code::kMalformed, "key: PKCS#8 too large");
  }
  const unsigned char* p = der.data();
  ossl::Ptr<PKCS8_PRIV_KEY_INFO> p8(
      d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size())));
  if (p8 == nullptr) {
    return OsslError(Code::kMalformed, "key: bad PKCS#8 PrivateKeyInfo");
  }
  if (p != der.data() + der.size()) {
    return Error(Code::kMalformed, "key: trailing bytes after PKCS#8 PrivateKeyInfo");
  }
  ossl::Ptr<EVP_PKEY> key(EVP_PKCS82PKEY(p8.get()));
  if (key == nullptr) {
    return OsslError(Code::kMalformed, "key: unreadable PKCS#8 private key");
  }
  return FromEvp(std::move(key));
}

Result<PrivateKey> PrivateKey::FromEd25519Seed(ByteSpan seed32) {
  if (seed32.size() != 32) {
    return Error(Code::kInvalidArgument, "key: an Ed25519 seed is 32 bytes");
  }
  ossl::Ptr<EVP_PKEY> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed32.data(), seed32.size()));
  if (key == nullptr) {
    return OsslError(Code::kInternal, "key: cannot make an Ed25519 key from a seed");
  }
  return PrivateKey(SignatureAlgorithm::kEd25519, std::move(key));
}

PublicKey PrivateKey::public_key() const {
  // Round-trip through SubjectPublicKeyInfo so the PublicKey holds no private
  // material.
  Result<Bytes> spki = I2dPubkey(key_.get());
  ENCLAVIA_CHECK(spki.has_value());
  Result<ossl::Ptr<EVP_PKEY>> key = D2iPubkey(*spki);
  ENCLAVIA_CHECK(key.has_value());
  return {alg_, std::move(key).value()};
}

Result<SecretBytes> PrivateKey::ToPem(std::optional<std::string_view> passphrase) const {
  // A secure-memory BIO wipes its buffer when it grows and when it is freed.
  ossl::Ptr<BIO> bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr) {
    return OsslError(Code::kInternal, "key: BIO_new failed");
  }
  if (passphrase.has_value()) {
    if (!FitsInt(passphrase->size())) {
      return Error(Code::kInvalidArgument, "key: passphrase too long");
    }
    ossl::Ptr<PKCS8_PRIV_KEY_INFO> p8(EVP_PKEY2PKCS8(key_.get()));
    ossl::Ptr<X509_ALGOR> pbe(PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), nullptr, 0, nullptr,
                                                    kScryptN, kScryptR, kScryptP));
    if (p8 == nullptr || pbe == nullptr) {
      return OsslError(Code::kInternal, "key: PKCS#8 encoding failed");
    }
    // On success PKCS8_set0_pbe takes ownership of `pbe`.
    ossl::Ptr<X509_SIG> encrypted(PKCS8_set0_pbe(
        passphrase->data(), static_cast<int>(passphrase->size()), p8.get(), pbe.get()));
    if (encrypted == nullptr) {
      return OsslError(Code::kInternal, "key: PKCS#8 encryption failed");
    }
    static_cast<void>(pbe.release());
    if (PEM_write_bio_PKCS8(bio.get(), encrypted.get()) != 1) {
      return OsslError(Code::kInternal, "key: PEM encoding failed");
    }
  } else if (PEM_write_bio_PKCS8PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr,
                                           nullptr) != 1) {
    return OsslError(Code::kInternal, "key: PEM encoding failed");
  }
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio.get(), &mem);
  if (mem == nullptr) {
    return OsslError(Code::kInternal, "key: PEM encoding failed");
  }
  return SecretBytes(ByteSpan(reinterpret_cast<const uint8_t*>(mem->data), mem->length));
}

Result<Bytes> PrivateKey::Sign(ByteSpan message) const {
  if (alg_ == SignatureAlgorithm::kEd25519) {
    return DigestSign(key_.get(), nullptr, message);
  }
  ASSIGN_OR_RETURN(Bytes der, DigestSign(key_.get(), Md(alg_), message));
  return EcdsaDerToRaw(der, ScalarSize(alg_));
}

Result<Bytes> PrivateKey::SignDer(ByteSpan message) const {
  if (alg_ == SignatureAlgorithm::kEd25519) {
    return Error(Code::kUnsupported, "sign: DER signatures are ECDSA only");
  }
  return DigestSign(key_.get(), Md(alg_), message);
}

// ECDSA signature encodings (SEC 1 §C.5: ECDSA-Sig-Value ::= SEQUENCE { r
// INTEGER, s INTEGER }).

Result<Bytes> EcdsaRawToDer(ByteSpan raw) {
  if (raw.size() != 64 && raw.size() != 96) {
    return Error(Code::kInvalidArgument, "ecdsa: raw signature must be 64 or 96 bytes");
  }
  const int half = static_cast<int>(raw.size() / 2);
  ossl::Ptr<BIGNUM> r(BN_bin2bn(raw.data(), half, nullptr));
  ossl::Ptr<BIGNUM> s(BN_bin2bn(raw.data() + half, half, nullptr));
  ossl::Ptr<ECDSA_SIG> sig(ECDSA_SIG_new());
  if (r == nullptr || s == nullptr || sig == nullptr ||
      ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return OsslError(Code::kInternal, "ecdsa: ECDSA_SIG_set0 failed");
  }
  // ECDSA_SIG_set0 took ownership of both values.
  static_cast<void>(r.release());
  static_cast<void>(s.release());
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) {
    return OsslError(Code::kInternal, "ecdsa: i2d_ECDSA_SIG failed");
  }
  Bytes out(static_cast<size_t>(len));
  unsigned char* p = out.data();
  if (i2d_ECDSA_SIG(sig.get(), &p) != len) {
    return OsslError(Code::kInternal, "ecdsa: i2d_ECDSA_SIG failed");
  }
  return out;
}

Result<Bytes> EcdsaDerToRaw(ByteSpan der, size_t scalar_size) {
  if (scalar_size != 32 && scalar_size != 48) {
    return Error(Code::kInvalidArgument, "ecdsa: scalar size must be 32 or 48");
  }
  if (!FitsLong(der.size())) {
    return Error(Code::kMalformed, "ecdsa: signature too large");
  }
  const unsigned char* p = der.data();
  ossl::Ptr<ECDSA_SIG> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (sig == nullptr) {
    return OsslError(Code::kMalformed, "ecdsa: bad DER signature");
  }
  if (p != der.data() + der.size()) {
    return Error(Code::kMalformed, "ecdsa: trailing bytes after DER signature");
  }
  // Strict DER: the parser tolerates some BER forms, so the canonical
  // re-encoding must match.
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0 || static_cast<size_t>(len) != der.size()) {
    return OsslError(Code::kMalformed, "ecdsa: signature is not canonical DER");
  }
  Bytes canonical(der.size());
  unsigned char* q = canonical.data();
  if (i2d_ECDSA_SIG(sig.get(), &q) != len ||
      !std::equal(canonical.begin(), canonical.end(), der.begin())) {
    return OsslError(Code::kMalformed, "ecdsa: signature is not canonical DER");
  }
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  ASSIGN_OR_RETURN(Bytes r_bytes, BnToPadded(r, scalar_size));
  ASSIGN_OR_RETURN(Bytes s_bytes, BnToPadded(s, scalar_size));
  return Concat({r_bytes, s_bytes});
}

}  // namespace enclavia::crypto
