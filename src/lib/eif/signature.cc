// SPDX-License-Identifier: Apache-2.0
#include "lib/eif/signature.h"

#include <algorithm>
#include <array>
#include <string_view>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "lib/cbor/cbor.h"
#include "lib/cose/sign1.h"
#include "lib/crypto/ossl.h"
#include "lib/crypto/x509.h"

namespace enclavia::eif {
namespace {

constexpr std::string_view kCertificateKey = "signing_certificate";
constexpr std::string_view kSignatureKey = "signature";
constexpr std::string_view kIndexKey = "register_index";
constexpr std::string_view kValueKey = "register_value";

Error Malformed(const std::string& what) { return {Code::kMalformed, "eif: signature: " + what}; }

// UintArray is how serde_cbor serializes a Vec<u8>: one unsigned integer per byte.
cbor::Value UintArray(ByteSpan bytes) {
  cbor::Value::Array items;
  items.reserve(bytes.size());
  for (uint8_t b : bytes) {
    items.push_back(cbor::Value::Uint(b));
  }
  return cbor::Value::MakeArray(std::move(items));
}

// ByteField accepts a Vec<u8> as serde_cbor writes it (an array of integers 0..255) or as a
// byte string.
Result<Bytes> ByteField(const cbor::Value& map, std::string_view key, const char* what) {
  const cbor::Value* v = map.Find(key);
  if (v == nullptr) {
    return Error(Code::kMalformed, std::string(what) + " is missing");
  }
  if (v->is_bytes()) {
    return v->as_bytes();
  }
  if (!v->is_array()) {
    return Error(Code::kMalformed, std::string(what) + " is not bytes");
  }
  Bytes out;
  out.reserve(v->as_array().size());
  for (const cbor::Value& item : v->as_array()) {
    if (!item.is_unsigned() || item.as_uint() > 0xff) {
      return Error(Code::kMalformed, std::string(what) + " holds a non-byte element");
    }
    out.push_back(static_cast<uint8_t>(item.as_uint()));
  }
  return out;
}

std::string ObjectLongName(const ASN1_OBJECT* obj) {
  // Rust openssl's Asn1Object Display: OBJ_obj2txt(no_name = 0) into an 80-byte buffer.
  std::array<char, 80> buf{};
  int len = OBJ_obj2txt(buf.data(), static_cast<int>(buf.size()), obj, 0);
  if (len < 0) {
    return "error";
  }
  return {buf.data(), std::min(static_cast<size_t>(len), buf.size() - 1)};
}

// RustDebugUnquoted renders `s` as Rust's `{:?}` for str does, then drops every '"', which is
// what describe-eif does to issuer values. Non-printable characters other than C0/C1 controls are
// left as they are (Rust would escape a few more, e.g. U+200B).
std::string RustDebugUnquoted(std::string_view s) {
  std::string out;
  static constexpr std::string_view kHex = "0123456789abcdef";
  auto unicode_escape = [&](uint32_t cp) {
    out += "\\u{";
    bool started = false;
    for (int shift = 20; shift >= 0; shift -= 4) {
      uint32_t nibble = (cp >> shift) & 0xf;
      if (nibble != 0 || started || shift == 0) {
        out += kHex[nibble];
        started = true;
      }
    }
    out += '}';
  };
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '\0':
        out += "\\0";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '"':
        out += '\\';  // The quote itself is removed by describe-eif; its escape stays.
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      unicode_escape(c);
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      unicode_escape(static_cast<unsigned char>(s[i + 1]));  // C1 control, U+0080..U+009F.
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::map<std::string, std::string> IssuerMap(X509* cert) {
  std::map<std::string, std::string> out;
  const X509_NAME* name = X509_get_issuer_name(cert);
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    std::string key = ObjectLongName(X509_NAME_ENTRY_get_object(entry));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    std::string value = "error";
    if (len >= 0) {
      value = RustDebugUnquoted(
          std::string_view(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len)));
      OPENSSL_free(utf8);
    }
    out[key] = value;  // A BTreeMap insert: a repeated attribute keeps its last value.
  }
  return out;
}

std::string TimeText(const ASN1_TIME* t) {
  ossl::Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  ENCLAVIA_CHECK(bio != nullptr);
  if (ASN1_TIME_print(bio.get(), t) != 1) {
    return "error";
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<size_t>(len)};
}

void DescribeCertificate(const crypto::Certificate& cert, SignatureInfo& info) {
  X509* x = cert.raw();
  info.issuer = IssuerMap(x);
  const ASN1_BIT_STRING* sig = nullptr;
  const X509_ALGOR* alg = nullptr;
  X509_get0_signature(&sig, &alg, x);
  const ASN1_OBJECT* alg_obj = nullptr;
  X509_ALGOR_get0(&alg_obj, nullptr, nullptr, alg);
  info.algorithm = ObjectLongName(alg_obj);
  info.not_before = TimeText(X509_get0_notBefore(x));
  info.not_after = TimeText(X509_get0_notAfter(x));
  static constexpr std::string_view kHex = "0123456789ABCDEF";
  const unsigned char* p = ASN1_STRING_get0_data(sig);
  for (int i = 0; i < ASN1_STRING_length(sig); ++i) {
    if (i > 0) {
      info.signature_hex += ':';
    }
    info.signature_hex += kHex[p[i] >> 4];
    info.signature_hex += kHex[p[i] & 0xf];
  }
}

// CheckPayload decodes the signed PcrInfo and records it; false if it does not decode.
bool CheckPayload(ByteSpan payload, ByteSpan pcr0, SignatureInfo& info) {
  cbor::DecodeOptions options;
  options.max_depth = 4;
  auto decoded = cbor::Decode(payload, options);
  if (!decoded || !decoded->is_map()) {
    return false;
  }
  const cbor::Value* index = decoded->Find(kIndexKey);
  if (index == nullptr || !index->is_integer()) {
    return false;
  }
  auto index_value = index->AsInt64();
  auto value = ByteField(*decoded, kValueKey, "register_value");
  if (!index_value || !value) {
    return false;
  }
  info.register_index = *index_value;
  info.register_value = std::move(value).value();
  return info.register_index == 0 && std::ranges::equal(info.register_value, pcr0);
}

}  // namespace

Result<Bytes> SigningCertificateDer(const SigningKey& signer) {
  crypto::SignatureAlgorithm alg = signer.key.algorithm();
  if (alg != crypto::SignatureAlgorithm::kEcdsaP256Sha256 &&
      alg != crypto::SignatureAlgorithm::kEcdsaP384Sha384) {
    return Error(Code::kUnsupported,
                 "eif: signing key must be ECDSA P-256 or P-384 (nitro-cli verifies only those)");
  }
  auto cert = crypto::Certificate::FromPem(signer.certificate_pem);
  if (!cert) {
    return Error(Code::kInvalidArgument, "eif: signing certificate: " + cert.error().message());
  }
  auto cert_key = cert->public_key();
  if (!cert_key || cert_key->ToSpki() != signer.key.public_key().ToSpki()) {
    return Error(Code::kInvalidArgument, "eif: the signing certificate is not for the signing key");
  }
  return cert->der();
}

Bytes EncodePcrInfo(int32_t register_index, ByteSpan register_value) {
  cbor::Value::Map map;
  map.emplace_back(cbor::Value::TextString(kIndexKey), cbor::Value::Int(register_index));
  map.emplace_back(cbor::Value::TextString(kValueKey), UintArray(register_value));
  // serde serializes struct fields in declaration order, not sorted.
  return cbor::Encode(cbor::Value::MakeMap(std::move(map)), cbor::MapOrder::kAsGiven);
}

Result<Bytes> EncodeSignatureSection(const SigningKey& signer, ByteSpan pcr0) {
  RETURN_IF_ERROR(SigningCertificateDer(signer));
  // aws-nitro-enclaves-cose CoseSign1::new: protected {1: alg}, unprotected {}, raw r||s
  // signature over the RFC 9052 Sig_structure; nitro-cli serializes it untagged.
  ASSIGN_OR_RETURN(Bytes cose,
                   cose::CreateSign1(EncodePcrInfo(0, pcr0), signer.key, cose::Tagging::kUntagged));
  cbor::Value::Map entry;
  entry.emplace_back(cbor::Value::TextString(kCertificateKey),
                     UintArray(AsBytes(signer.certificate_pem)));
  entry.emplace_back(cbor::Value::TextString(kSignatureKey), UintArray(cose));
  cbor::Value::Array signatures;
  signatures.push_back(cbor::Value::MakeMap(std::move(entry)));
  return cbor::Encode(cbor::Value::MakeArray(std::move(signatures)), cbor::MapOrder::kAsGiven);
}

Result<SignatureInfo> DecodeSignatureSection(ByteSpan section, ByteSpan pcr0) {
  cbor::DecodeOptions options;
  options.max_input_size = section.size();
  options.max_depth = 4;
  // Every byte of the certificate and the COSE message is one item.
  options.max_items = section.size() + 16;
  auto decoded = cbor::Decode(section, options);
  if (!decoded) {
    return Malformed(decoded.error().message());
  }
  if (!decoded->is_array()) {
    return Malformed("not an array of PCR signatures");
  }
  if (decoded->as_array().empty()) {
    return Malformed("no PCR signature");
  }
  // nitro-cli reads the first entry only (it signs PCR0 alone).
  const cbor::Value& first = decoded->as_array()[0];
  if (!first.is_map()) {
    return Malformed("PCR signature is not a map");
  }
  auto pem = ByteField(first, kCertificateKey, "signing_certificate");
  if (!pem) {
    return Malformed(pem.error().message());
  }
  auto cose_bytes = ByteField(first, kSignatureKey, "signature");
  if (!cose_bytes) {
    return Malformed(cose_bytes.error().message());
  }
  SignatureInfo info;
  info.certificate_pem = std::string(AsString(*pem));
  info.cose_sign1 = std::move(cose_bytes).value();
  auto cert = crypto::Certificate::FromPem(info.certificate_pem);
  if (!cert) {
    return Malformed("signing certificate: " + cert.error().message());
  }
  info.certificate_der = cert->der();
  DescribeCertificate(*cert, info);

  auto msg = cose::ParseSign1(info.cose_sign1);
  if (!msg) {
    if (msg.error().code() == Code::kUnsupported) {
      return info;  // e.g. ES512: well-formed, but we cannot check it. valid stays false.
    }
    return Malformed(msg.error().message());
  }
  bool payload_ok = CheckPayload(msg->payload, pcr0, info);
  auto key = cert->public_key();
  info.valid = payload_ok && key.has_value() && cose::VerifySign1(*msg, *key).has_value();
  return info;
}

}  // namespace enclavia::eif
