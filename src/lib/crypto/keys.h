// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CRYPTO_KEYS_H_
#define ENCLAVIA_LIB_CRYPTO_KEYS_H_

#include <optional>
#include <string>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/ossl.h"
#include "lib/crypto/secret.h"

namespace enclavia::crypto {

// SignatureAlgorithm names a key type together with how it signs: ECDSA hashes the message with
// the curve's matching SHA-2 (as COSE ES256/ES384 and X.509 ecdsa-with-SHA256/384 do); Ed25519
// signs the message itself (pure EdDSA, RFC 8032).
enum class SignatureAlgorithm { kEcdsaP256Sha256, kEcdsaP384Sha384, kEd25519 };

// RawSignatureSize is 64 (P-256, Ed25519) or 96 (P-384): the fixed-width r||s or EdDSA size.
size_t RawSignatureSize(SignatureAlgorithm alg);

// PublicKey is an ECDSA P-256/P-384 or Ed25519 public key (OpenSSL EVP_PKEY). Copyable (shares
// the immutable key by reference count). Thread-safe for concurrent Verify calls.
class PublicKey {
 public:
  // FromSpki parses a DER SubjectPublicKeyInfo; other key types or curves are kUnsupported,
  // trailing bytes and invalid points kMalformed.
  static Result<PublicKey> FromSpki(ByteSpan der);
  // FromPem parses a PEM "PUBLIC KEY" block.
  static Result<PublicKey> FromPem(std::string_view pem);
  // FromRaw parses an uncompressed EC point (0x04 || X || Y) or a 32-byte Ed25519 key.
  static Result<PublicKey> FromRaw(SignatureAlgorithm alg, ByteSpan raw);

  PublicKey(const PublicKey& other);
  PublicKey& operator=(const PublicKey& other);
  PublicKey(PublicKey&&) noexcept = default;
  PublicKey& operator=(PublicKey&&) noexcept = default;
  ~PublicKey() = default;

  SignatureAlgorithm algorithm() const { return alg_; }
  // ToSpki returns the DER SubjectPublicKeyInfo.
  Bytes ToSpki() const;
  std::string ToPem() const;
  // ToRaw returns the uncompressed point (65 or 97 bytes) or the 32-byte Ed25519 key.
  Bytes ToRaw() const;

  // Verify checks a raw signature (r||s of RawSignatureSize bytes for ECDSA, 64 bytes for
  // Ed25519) over `message`. Any failure, including a wrong size, is kVerifyFailed.
  Result<void> Verify(ByteSpan message, ByteSpan signature) const;
  // VerifyDer checks a DER-encoded ECDSA-Sig-Value. kVerifyFailed for Ed25519 keys.
  Result<void> VerifyDer(ByteSpan message, ByteSpan der_signature) const;

  EVP_PKEY* raw() const { return key_.get(); }

 private:
  PublicKey(SignatureAlgorithm alg, ossl::Ptr<EVP_PKEY> key) : alg_(alg), key_(std::move(key)) {}
  friend class PrivateKey;
  friend class Certificate;
  static Result<PublicKey> FromEvp(ossl::Ptr<EVP_PKEY> key);
  SignatureAlgorithm alg_;
  ossl::Ptr<EVP_PKEY> key_;
};

// PrivateKey is an ECDSA P-256/P-384 or Ed25519 private key. Move-only; OpenSSL keeps the key in
// memory it wipes on free. Thread-safe for concurrent Sign calls.
class PrivateKey {
 public:
  static PrivateKey Generate(SignatureAlgorithm alg);
  // FromPem parses a PKCS#8 "PRIVATE KEY" (or, with a passphrase, "ENCRYPTED PRIVATE KEY") PEM.
  // A wrong passphrase is kVerifyFailed.
  static Result<PrivateKey> FromPem(std::string_view pem,
                                    std::optional<std::string_view> passphrase = std::nullopt);
  // FromPkcs8Der parses an unencrypted DER PKCS#8 PrivateKeyInfo.
  static Result<PrivateKey> FromPkcs8Der(ByteSpan der);
  // FromEd25519Seed makes the Ed25519 key whose RFC 8032 secret is `seed32` (for keys derived
  // with HKDF); kInvalidArgument unless it is 32 bytes. `seed32` need not outlive the call.
  static Result<PrivateKey> FromEd25519Seed(ByteSpan seed32);

  PrivateKey(PrivateKey&&) noexcept = default;
  PrivateKey& operator=(PrivateKey&&) noexcept = default;
  ~PrivateKey() = default;

  SignatureAlgorithm algorithm() const { return alg_; }
  PublicKey public_key() const;

  // ToPem returns PKCS#8 PEM, encrypted with AES-256-CBC under scrypt when a passphrase is given.
  Result<SecretBytes> ToPem(std::optional<std::string_view> passphrase = std::nullopt) const;

  // Sign returns a raw signature (fixed-width r||s for ECDSA, 64 bytes for Ed25519).
  Result<Bytes> Sign(ByteSpan message) const;
  // SignDer returns a DER ECDSA-Sig-Value; kUnsupported for Ed25519.
  Result<Bytes> SignDer(ByteSpan message) const;

  EVP_PKEY* raw() const { return key_.get(); }

 private:
  PrivateKey(SignatureAlgorithm alg, ossl::Ptr<EVP_PKEY> key) : alg_(alg), key_(std::move(key)) {}
  static Result<PrivateKey> FromEvp(ossl::Ptr<EVP_PKEY> key);
  SignatureAlgorithm alg_;
  ossl::Ptr<EVP_PKEY> key_;
};

// EcdsaRawToDer converts fixed-width r||s (64 or 96 bytes) to a DER ECDSA-Sig-Value.
Result<Bytes> EcdsaRawToDer(ByteSpan raw);
// EcdsaDerToRaw converts a strict DER ECDSA-Sig-Value to r||s, each padded to `scalar_size`
// (32 or 48); kMalformed on bad DER, trailing bytes, or values that do not fit.
Result<Bytes> EcdsaDerToRaw(ByteSpan der, size_t scalar_size);

}  // namespace enclavia::crypto

#endif  // ENCLAVIA_LIB_CRYPTO_KEYS_H_
