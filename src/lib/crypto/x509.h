// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CRYPTO_X509_H_
#define ENCLAVIA_LIB_CRYPTO_X509_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/encoding.h"
#include "lib/base/result.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/ossl.h"

namespace enclavia::crypto {

// Certificate is a parsed X.509 certificate that keeps its exact DER. Copyable (reference
// counted); immutable; thread-safe.
class Certificate {
 public:
  // FromDer parses one DER certificate; trailing bytes are kMalformed.
  static Result<Certificate> FromDer(ByteSpan der);
  // FromPem parses the first CERTIFICATE block of `pem`.
  static Result<Certificate> FromPem(std::string_view pem);
  // AllFromPem parses every CERTIFICATE block; none at all is kMalformed.
  static Result<std::vector<Certificate>> AllFromPem(std::string_view pem);

  Certificate(const Certificate& other);
  Certificate& operator=(const Certificate& other);
  Certificate(Certificate&&) noexcept = default;
  Certificate& operator=(Certificate&&) noexcept = default;
  ~Certificate() = default;

  const Bytes& der() const { return der_; }
  std::string ToPem() const;
  // public_key returns the subject key; kUnsupported for types other than P-256/P-384/Ed25519.
  Result<PublicKey> public_key() const;
  // subject and issuer render the name on one line, RFC 2253 style ("CN=…,OU=…,O=…,C=…").
  std::string subject() const;
  std::string issuer() const;
  SystemTime not_before() const;
  SystemTime not_after() const;
  Sha256Digest fingerprint_sha256() const;

  X509* raw() const { return cert_.get(); }

 private:
  Certificate(Bytes der, ossl::Ptr<X509> cert) : der_(std::move(der)), cert_(std::move(cert)) {}
  Bytes der_;
  ossl::Ptr<X509> cert_;
};

// VerifyPath checks a certification path given root first: path[0] must be byte-identical to
// one of `trusted_roots`, each path[i] (i >= 1) must be issued and signed by path[i-1], and the
// last element is the end-entity certificate. Every certificate must be valid at `at` (inclusive
// bounds); every issuing certificate must be a CA (basic constraints) with keyCertSign when it
// carries key usage, and path length constraints hold; unknown critical extensions fail. The
// end-entity certificate may not be a CA. The first failure is returned, naming the certificate
// by its position ("certificate 2 of 5 (CN=…)"): kUntrusted (root not trusted), kExpired (outside
// validity), kVerifyFailed (a signature), kPolicyViolation (constraints), kMalformed.
// Thread-safe.
Result<void> VerifyPath(std::span<const Certificate> path_root_first,
                        std::span<const Certificate> trusted_roots, SystemTime at);

// CertificateSpec describes a certificate to issue.
struct CertificateSpec {
  // Subject attributes in order, e.g. {{"C","US"},{"O","Enclavia"},{"CN","local root"}}.
  std::vector<std::pair<std::string, std::string>> subject;
  Bytes serial;  // Positive big-endian serial; empty means 16 random bytes.
  SystemTime not_before;
  SystemTime not_after;
  bool is_ca = false;
  std::optional<int> path_length;  // Only for CAs.
};

// IssueCertificate creates a certificate for `subject_key` signed by `issuer_key`. `issuer` is
// the issuer's certificate, or nullptr for a self-signed certificate (then `issuer_key` must match
// `subject_key`). CAs get basicConstraints critical CA:TRUE and keyUsage keyCertSign|cRLSign;
// end entities get keyUsage digitalSignature. Both get subject and authority key identifiers.
// ECDSA issuers sign with SHA-384 for P-384 and SHA-256 for P-256.
Result<Certificate> IssueCertificate(const CertificateSpec& spec, const PublicKey& subject_key,
                                     const PrivateKey& issuer_key, const Certificate* issuer);

}  // namespace enclavia::crypto

#endif  // ENCLAVIA_LIB_CRYPTO_X509_H_
