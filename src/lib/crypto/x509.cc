// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/x509.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>

#include <openssl/asn1.h>
#include <openssl/buffer.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "lib/crypto/internal/util.h"
#include "lib/crypto/random.h"

namespace enclavia::crypto {
namespace {

using internal::FitsInt;
using internal::FitsLong;
using internal::BioText;
using internal::MemBio;
using internal::NoPassphrase;
using internal::OsslError;

// Longest path VerifyPath accepts. Nitro chains have 5 certificates; this only
// bounds work.
constexpr size_t kMaxPathLength = 16;
// Longest subject name quoted in an error message; names come from untrusted
// certificates.
constexpr size_t kMaxNameInMessage = 128;
// RFC 5280 §4.1.2.2: serial numbers are at most 20 octets.
constexpr size_t kMaxSerialSize = 20;
constexpr size_t kRandomSerialSize = 16;

// OpensslFree releases buffers OpenSSL allocated for us (not objects, which
// ossl.h covers).
struct OpensslFree {
  void operator()(void* p) const noexcept { OPENSSL_free(p); }
};

std::string NameToString(const X509_NAME* name) {
  ossl::Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  ENCLAVIA_CHECK(bio != nullptr);
  // RFC 2253 order and escaping: most significant RDN last, non-ASCII and
  // controls escaped.
  if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return "<unprintable name>";
  }
  return std::string(BioText(bio.get()));
}

SystemTime AsnTimeToSystemTime(const ASN1_TIME* t) {
  std::tm tm{};
  // FromDer checked that both validity times parse, so this cannot fail for a
  // Certificate.
  ENCLAVIA_CHECK(ASN1_TIME_to_tm(t, &tm) == 1);
  return SystemTime(std::chrono::seconds(timegm(&tm)));
}

time_t FloorToTimeT(SystemTime t) {
  return static_cast<time_t>(
      std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count());
}

// CertName is how an error message names a certificate: its CN if it has one,
// else the whole subject, cut to a bounded length.
std::string CertName(const Certificate& cert) {
  const X509_NAME* name = X509_get_subject_name(cert.raw());
  std::string out;
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index >= 0) {
    const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
    ossl::Ptr<BIO> bio(BIO_new(BIO_s_mem()));
    ENCLAVIA_CHECK(bio != nullptr);
    if (ASN1_STRING_print_ex(bio.get(), value, ASN1_STRFLGS_RFC2253) >= 0) {
      out = "CN=" + std::string(BioText(bio.get()));
    }
  }
  if (out.empty()) {
    out = cert.subject();
  }
  if (out.size() > kMaxNameInMessage) {
    out.resize(kMaxNameInMessage);
    out += "...";
  }
  return out;
}

// PathError names the failing certificate by its 1-based position, root first.
Error PathError(Code code, std::span<const Certificate> path, size_t index,
                std::string_view reason) {
  ERR_clear_error();
  std::string message = "certificate " + std::to_string(index + 1) + " of " +
                        std::to_string(path.size()) + " (" + CertName(path[index]) +
                        "): " + std::string(reason);
  return {code, std::move(message)};
}

struct VerifyErrorInfo {
  Code code;
  const char* reason;
};

VerifyErrorInfo ClassifyVerifyError(int err) {
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return {Code::kExpired, "expired"};
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return {Code::kExpired, "not yet valid"};
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
      return {Code::kMalformed, "malformed validity time"};
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
      return {Code::kVerifyFailed, "signature does not verify"};
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
      return {Code::kVerifyFailed, "issuer public key unusable"};
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
      return {Code::kUntrusted, "does not chain to the trusted root"};
    case X509_V_ERR_INVALID_CA:
      return {Code::kPolicyViolation, "issuer is not a CA"};
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
      return {Code::kPolicyViolation, "path length constraint exceeded"};
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
      return {Code::kPolicyViolation, "issuer key usage lacks keyCertSign"};
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
      return {Code::kPolicyViolation, "unhandled critical extension"};
    case X509_V_ERR_INVALID_EXTENSION:
      return {Code::kMalformed, "invalid extension"};
    default:
      // Remaining codes are constraint checks (X509_STRICT, name constraints,
      // purposes).
      return {Code::kPolicyViolation, X509_verify_cert_error_string(err)};
  }
}

// VerifyState carries what the verify callback needs to know about the
// requested time.
struct VerifyState {
  bool at_whole_second = false;
};

// VerifyCallback makes notAfter inclusive, as RFC 5280 §4.1.2.5 says ("from
// notBefore through notAfter, inclusive"); OpenSSL treats a certificate as
// expired at its notAfter second. OpenSSL checks times at whole seconds (the
// floor of `at`), so only a time exactly on the second can equal notAfter; a
// later fraction of that second is past notAfter and stays expired.
int VerifyCallback(int ok, X509_STORE_CTX* ctx) {
  if (ok == 1 || X509_STORE_CTX_get_error(ctx) != X509_V_ERR_CERT_HAS_EXPIRED) {
    return ok;
  }
  const auto* state = static_cast<const VerifyState*>(X509_STORE_CTX_get_app_data(ctx));
  X509* cert = X509_STORE_CTX_get_current_cert(ctx);
  const time_t at = X509_VERIFY_PARAM_get_time(X509_STORE_CTX_get0_param(ctx));
  if (state != nullptr && state->at_whole_second && cert != nullptr &&
      ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert), at) == 0) {
    X509_STORE_CTX_set_error(ctx, X509_V_OK);
    return 1;
  }
  return ok;
}

// PositionOf finds the certificate OpenSSL complains about in the caller's
// path.
size_t PositionOf(std::span<const Certificate> path, const X509* cert, int depth) {
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i].raw() == cert) {
      return i;
    }
  }
  // Depth counts from the target (depth 0 = last certificate of the path).
  if (depth >= 0 && static_cast<size_t>(depth) < path.size()) {
    return path.size() - 1 - static_cast<size_t>(depth);
  }
  return path.size() - 1;
}

Result<void> AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ossl::Ptr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (ext == nullptr) {
    return OsslError(Code::kInvalidArgument,
                     std::string("x509: cannot build extension ") + OBJ_nid2sn(nid));
  }
  if (X509_add_ext(cert, ext.get(), -1) != 1) {
    return OsslError(Code::kInternal, "x509: X509_add_ext failed");
  }
  return Ok();
}

const EVP_MD* SigningDigest(SignatureAlgorithm alg) {
  switch (alg) {
    case SignatureAlgorithm::kEcdsaP256Sha256:
      return EVP_sha256();
    case SignatureAlgorithm::kEcdsaP384Sha384:
      return EVP_sha384();
    case SignatureAlgorithm::kEd25519:
      return nullptr;  // Pure EdDSA takes no separate digest.
  }
  return nullptr;
}

}  // namespace

// Certificate.

Result<Certificate> Certificate::FromDer(ByteSpan der) {
  if (!FitsLong(der.size())) {
    return Error(Code::kMalformed, "x509: certificate too large");
  }
  const unsigned char* p = der.data();
  ossl::Ptr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (cert == nullptr) {
    return OsslError(Code::kMalformed, "x509: bad certificate DER");
  }
  if (p != der.data() + der.size()) {
    return Error(Code::kMalformed, "x509: trailing bytes after certificate");
  }
  // Check the validity times parse here, so the accessors never meet a bad one.
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notBefore(cert.get()), &tm) != 1 ||
      ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) {
    return OsslError(Code::kMalformed, "x509: bad validity time");
  }
  return Certificate(ToBytes(der), std::move(cert));
}

Result<Certificate> Certificate::FromPem(std::string_view pem) {
  ASSIGN_OR_RETURN(ossl::Ptr<BIO> bio, MemBio(pem));
  unsigned char* data = nullptr;
  long len = 0;
  // PEM_bytes_read_bio skips blocks of other types and returns the exact DER of
  // the first CERTIFICATE block, which FromDer then parses (so the kept bytes
  // are the PEM's bytes).
  if (PEM_bytes_read_bio(&data, &len, nullptr, PEM_STRING_X509, bio.get(), NoPassphrase, nullptr) !=
      1) {
    return OsslError(Code::kMalformed, "x509: no CERTIFICATE PEM block");
  }
  std::unique_ptr<unsigned char, OpensslFree> owned(data);
  return FromDer(ByteSpan(data, static_cast<size_t>(len)));
}

Result<std::vector<Certificate>> Certificate::AllFromPem(std::string_view pem) {
  ASSIGN_OR_RETURN(ossl::Ptr<BIO> bio, MemBio(pem));
  std::vector<Certificate> out;
  for (;;) {
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_bytes_read_bio(&data, &len, nullptr, PEM_STRING_X509, bio.get(), NoPassphrase,
                           nullptr) != 1) {
      const unsigned long err = ERR_peek_last_error();
      ERR_clear_error();
      // Running out of blocks is the normal end; anything else is a damaged
      // block.
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE &&
          !out.empty()) {
        break;
      }
      return Error(Code::kMalformed, out.empty() ? "x509: no CERTIFICATE PEM block"
                                                 : "x509: bad CERTIFICATE PEM block");
    }
    std::unique_ptr<unsigned char, OpensslFree> owned(data);
    ASSIGN_OR_RETURN(Certificate cert, FromDer(ByteSpan(data, static_cast<size_t>(len))));
    out.push_back(std::move(cert));
  }
  return out;
}

Certificate::Certificate(const Certificate& other) : der_(other.der_), cert_(other.cert_.get()) {
  if (cert_ != nullptr) {
    ENCLAVIA_CHECK(X509_up_ref(cert_.get()) == 1);
  }
}

Certificate& Certificate::operator=(const Certificate& other) {
  if (this != &other) {
    Certificate copy(other);
    *this = std::move(copy);
  }
  return *this;
}

std::string Certificate::ToPem() const {
  ossl::Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  ENCLAVIA_CHECK(bio != nullptr);
  // Written from der_ rather than re-encoded, so the PEM holds exactly the
  // parsed bytes.
  ENCLAVIA_CHECK(PEM_write_bio(bio.get(), PEM_STRING_X509, "", der_.data(),
                               static_cast<long>(der_.size())) > 0);
  return std::string(BioText(bio.get()));
}

Result<PublicKey> Certificate::public_key() const {
  EVP_PKEY* key = X509_get0_pubkey(cert_.get());
  if (key == nullptr) {
    return OsslError(Code::kUnsupported, "x509: unreadable subject public key");
  }
  ENCLAVIA_CHECK(EVP_PKEY_up_ref(key) == 1);
  return PublicKey::FromEvp(ossl::Ptr<EVP_PKEY>(key));
}

std::string Certificate::subject() const {
  return NameToString(X509_get_subject_name(cert_.get()));
}
std::string Certificate::issuer() const { return NameToString(X509_get_issuer_name(cert_.get())); }

SystemTime Certificate::not_before() const {
  return AsnTimeToSystemTime(X509_get0_notBefore(cert_.get()));
}
SystemTime Certificate::not_after() const {
  return AsnTimeToSystemTime(X509_get0_notAfter(cert_.get()));
}

Sha256Digest Certificate::fingerprint_sha256() const { return Sha256(der_); }

// VerifyPath.

Result<void> VerifyPath(std::span<const Certificate> path_root_first,
                        std::span<const Certificate> trusted_roots, SystemTime at) {
  const std::span<const Certificate> path = path_root_first;
  const size_t n = path.size();
  if (n == 0) {
    return Error(Code::kInvalidArgument, "x509: empty certification path");
  }
  if (n > kMaxPathLength) {
    return Error(Code::kLimitExceeded, "x509: certification path too long");
  }

  // The anchor must be one of the caller's roots byte for byte (certificates
  // are public, so a plain comparison is fine).
  const bool anchored =
      std::any_of(trusted_roots.begin(), trusted_roots.end(),
                  [&](const Certificate& root) { return root.der() == path[0].der(); });
  if (!anchored) {
    return PathError(Code::kUntrusted, path, 0, "not a trusted root");
  }

  // Profile checks we do ourselves instead of X509_V_FLAG_X509_STRICT. STRICT cannot be used:
  // real AWS Nitro chains fail it, because the last intermediate (zonal -> instance) has neither
  // subject nor authority key identifier and the leaf has no authority key identifier ("Missing
  // Authority Key Identifier"; see NitroChainTest). OpenSSL without STRICT still requires
  // CA:TRUE on intermediates and keyCertSign in any key usage, rejects unknown critical
  // extensions and enforces pathLenConstraint; here we add what STRICT would have added that AWS
  // satisfies, and the end-entity rules OpenSSL applies only with a purpose. These read flags
  // OpenSSL caches once per certificate, so they cost no parsing; they run before any signature.
  for (size_t i = 0; i < n; ++i) {
    // OpenSSL marks a certificate whose extensions do not decode; report that as such rather
    // than as whichever constraint the missing extension would have failed.
    if ((X509_get_extension_flags(path[i].raw()) & EXFLAG_INVALID) != 0) {
      return PathError(Code::kMalformed, path, i, "invalid extension");
    }
  }
  for (size_t i = 0; i + 1 < n; ++i) {
    X509* ca = path[i].raw();
    const uint32_t flags = X509_get_extension_flags(ca);
    // RFC 5280 §4.2.1.9: a CA certificate carries basicConstraints, marked critical, CA:TRUE.
    if ((flags & EXFLAG_BCONS) == 0 || (flags & EXFLAG_CA) == 0) {
      return PathError(Code::kPolicyViolation, path, i, "issuer is not a CA");
    }
    if ((flags & EXFLAG_BCONS_CRITICAL) == 0) {
      return PathError(Code::kPolicyViolation, path, i, "basicConstraints not critical");
    }
    if ((flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(ca) & KU_KEY_CERT_SIGN) == 0) {
      return PathError(Code::kPolicyViolation, path, i, "issuer key usage lacks keyCertSign");
    }
  }
  X509* leaf = path[n - 1].raw();
  if (X509_check_ca(leaf) != 0) {
    return PathError(Code::kPolicyViolation, path, n - 1, "end-entity certificate is a CA");
  }
  if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) != 0 &&
      (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0) {
    return PathError(Code::kPolicyViolation, path, n - 1,
                     "end-entity key usage lacks digitalSignature");
  }

  // The store holds only path[0], which equals a trusted root. Adding the other
  // roots could only let OpenSSL build a different chain, which the comparison
  // below would reject anyway.
  ossl::Ptr<X509_STORE> store(X509_STORE_new());
  if (store == nullptr || X509_STORE_add_cert(store.get(), path[0].raw()) != 1) {
    return OsslError(Code::kInternal, "x509: cannot build trust store");
  }
  ossl::Ptr<STACK_OF(X509)> untrusted(sk_X509_new_null());
  if (untrusted == nullptr) {
    return OsslError(Code::kInternal, "x509: cannot build certificate stack");
  }
  for (size_t i = 1; i + 1 < n; ++i) {
    if (sk_X509_push(untrusted.get(), path[i].raw()) <= 0) {
      return OsslError(Code::kInternal, "x509: cannot build certificate stack");
    }
  }
  ossl::Ptr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (ctx == nullptr || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1) {
    return OsslError(Code::kInternal, "x509: X509_STORE_CTX_init failed");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  const time_t at_seconds = FloorToTimeT(at);
  VerifyState state;
  state.at_whole_second =
      std::chrono::floor<std::chrono::seconds>(at.time_since_epoch()) == at.time_since_epoch();
  X509_VERIFY_PARAM_set_time(param, at_seconds);
  // No X509_V_FLAG_X509_STRICT: see the profile checks above for why and what replaces it.
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_USE_CHECK_TIME);
  X509_STORE_CTX_set_app_data(ctx.get(), &state);
  X509_STORE_CTX_set_verify_cb(ctx.get(), VerifyCallback);

  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    const size_t index = PositionOf(path, X509_STORE_CTX_get_current_cert(ctx.get()),
                                    X509_STORE_CTX_get_error_depth(ctx.get()));
    const VerifyErrorInfo info = ClassifyVerifyError(err);
    return PathError(info.code, path, index, info.reason != nullptr ? info.reason : "invalid");
  }

  // OpenSSL treats the untrusted certificates as a pool. Require that the chain
  // it built is the caller's path exactly, so a reordered, padded or duplicated
  // path fails.
  const STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
  const int built = chain == nullptr ? 0 : sk_X509_num(chain);
  for (size_t i = 0; i < n; ++i) {
    const int chain_index = built - 1 - static_cast<int>(i);
    const X509* got = chain_index >= 0 ? sk_X509_value(chain, chain_index) : nullptr;
    if (got == nullptr || (got != path[i].raw() && X509_cmp(got, path[i].raw()) != 0)) {
      return PathError(
          Code::kPolicyViolation, path, i,
          i == 0 ? "not the chain's anchor" : "not issued by the previous certificate");
    }
  }
  if (static_cast<size_t>(built) != n) {
    return PathError(Code::kPolicyViolation, path, n - 1, "path does not match the built chain");
  }
  return Ok();
}

// IssueCertificate.

Result<Certificate> IssueCertificate(const CertificateSpec& spec, const PublicKey& subject_key,
                                     const PrivateKey& issuer_key, const Certificate* issuer) {
  if (spec.subject.empty()) {
    return Error(Code::kInvalidArgument, "x509: empty subject");
  }
  if (spec.not_after < spec.not_before) {
    return Error(Code::kInvalidArgument, "x509: not_after precedes not_before");
  }
  if (spec.path_length.has_value() && (!spec.is_ca || *spec.path_length < 0)) {
    return Error(Code::kInvalidArgument, "x509: path_length needs a CA and a value >= 0");
  }
  if (issuer == nullptr && EVP_PKEY_eq(subject_key.raw(), issuer_key.raw()) != 1) {
    return OsslError(Code::kInvalidArgument,
                     "x509: a self-signed certificate must be signed by the subject's key");
  }

  ossl::Ptr<X509> cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return OsslError(Code::kInternal, "x509: X509_new failed");
  }

  Bytes serial = spec.serial;
  if (serial.empty()) {
    serial = RandomBytes(kRandomSerialSize);
    serial[0] &= 0x7f;  // DER INTEGER: keep it positive without a leading zero octet.
  }
  if (serial.size() > kMaxSerialSize) {
    return Error(Code::kInvalidArgument, "x509: serial longer than 20 octets");
  }
  ossl::Ptr<BIGNUM> serial_bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  if (serial_bn == nullptr) {
    return OsslError(Code::kInternal, "x509: BN_bin2bn failed");
  }
  if (BN_is_zero(serial_bn.get()) != 0) {
    return Error(Code::kInvalidArgument, "x509: serial must be positive");
  }
  ossl::Ptr<ASN1_INTEGER> serial_asn1(BN_to_ASN1_INTEGER(serial_bn.get(), nullptr));
  if (serial_asn1 == nullptr || X509_set_serialNumber(cert.get(), serial_asn1.get()) != 1) {
    return OsslError(Code::kInternal, "x509: cannot set serial");
  }

  ossl::Ptr<X509_NAME> subject(X509_NAME_new());
  if (subject == nullptr) {
    return OsslError(Code::kInternal, "x509: X509_NAME_new failed");
  }
  for (const auto& [attribute, value] : spec.subject) {
    if (!FitsInt(value.size()) ||
        X509_NAME_add_entry_by_txt(subject.get(), attribute.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      return OsslError(Code::kInvalidArgument, "x509: bad subject attribute " + attribute);
    }
  }
  const X509_NAME* issuer_name =
      issuer != nullptr ? X509_get_subject_name(issuer->raw()) : subject.get();
  if (X509_set_subject_name(cert.get(), subject.get()) != 1 ||
      X509_set_issuer_name(cert.get(), issuer_name) != 1) {
    return OsslError(Code::kInternal, "x509: cannot set names");
  }

  // ASN1_TIME_set picks UTCTime before 2050 and GeneralizedTime after (RFC 5280
  // §4.1.2.5).
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), FloorToTimeT(spec.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), FloorToTimeT(spec.not_after)) == nullptr) {
    return OsslError(Code::kInvalidArgument, "x509: validity time out of range");
  }
  if (X509_set_pubkey(cert.get(), subject_key.raw()) != 1) {
    return OsslError(Code::kInternal, "x509: cannot set public key");
  }

  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer != nullptr ? issuer->raw() : cert.get(), cert.get(), nullptr, nullptr,
                 0);
  std::string basic_constraints = spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE";
  if (spec.path_length.has_value()) {
    basic_constraints += ",pathlen:" + std::to_string(*spec.path_length);
  }
  RETURN_IF_ERROR(AddExtension(cert.get(), &v3, NID_basic_constraints, basic_constraints.c_str()));
  RETURN_IF_ERROR(
      AddExtension(cert.get(), &v3, NID_key_usage,
                   spec.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature"));
  // SKI first: for a self-signed certificate the AKI below copies it (RFC 5280
  // §4.2.1.1/2).
  RETURN_IF_ERROR(AddExtension(cert.get(), &v3, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &v3, NID_authority_key_identifier, "keyid:always"));

  if (X509_sign(cert.get(), issuer_key.raw(), SigningDigest(issuer_key.algorithm())) <= 0) {
    return OsslError(Code::kInternal, "x509: signing failed");
  }
  const int len = i2d_X509(cert.get(), nullptr);
  if (len <= 0) {
    return OsslError(Code::kInternal, "x509: i2d_X509 failed");
  }
  Bytes der(static_cast<size_t>(len));
  unsigned char* p = der.data();
  if (i2d_X509(cert.get(), &p) != len) {
    return OsslError(Code::kInternal, "x509: i2d_X509 failed");
  }
  return Certificate::FromDer(der);
}

}  // namespace enclavia::crypto
