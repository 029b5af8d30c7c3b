// SPDX-License-Identifier: Apache-2.0
#include "lib/cose/sign1.h"

#include <string>

namespace enclavia::cose {
namespace {

constexpr int64_t kHeaderAlg = 1;   // RFC 9052 §3.1.
constexpr int64_t kHeaderCrit = 2;

Result<Algorithm> AlgorithmFromId(int64_t id) {
  switch (id) {
    case static_cast<int64_t>(Algorithm::kEs256):
      return Algorithm::kEs256;
    case static_cast<int64_t>(Algorithm::kEs384):
      return Algorithm::kEs384;
    case static_cast<int64_t>(Algorithm::kEdDsa):
      return Algorithm::kEdDsa;
    default:
      return Error(Code::kUnsupported, "cose: unsupported algorithm " + std::to_string(id));
  }
}

Error Malformed(const std::string& what) { return Error(Code::kMalformed, "cose: " + what); }

}  // namespace

const char* AlgorithmName(Algorithm alg) {
  switch (alg) {
    case Algorithm::kEs256:
      return "ES256";
    case Algorithm::kEs384:
      return "ES384";
    case Algorithm::kEdDsa:
      return "EdDSA";
  }
  return "unknown";
}

Algorithm AlgorithmForKey(crypto::SignatureAlgorithm key_alg) {
  switch (key_alg) {
    case crypto::SignatureAlgorithm::kEcdsaP256Sha256:
      return Algorithm::kEs256;
    case crypto::SignatureAlgorithm::kEcdsaP384Sha384:
      return Algorithm::kEs384;
    case crypto::SignatureAlgorithm::kEd25519:
      return Algorithm::kEdDsa;
  }
  return Algorithm::kEs384;
}

Result<Sign1> ParseSign1(ByteSpan data, const cbor::DecodeOptions& options) {
  auto decoded = cbor::Decode(data, options);
  if (!decoded) {
    return std::move(decoded).error().WithContext("cose");
  }
  const cbor::Value* msg = &*decoded;
  Sign1 out;
  if (msg->is_tag()) {
    if (msg->tag() != kSign1Tag) {
      return Malformed("unexpected tag " + std::to_string(msg->tag()) + " (want 18, COSE_Sign1)");
    }
    out.tagged = true;
    msg = &msg->tagged();
  }
  if (!msg->is_array() || msg->as_array().size() != 4) {
    return Malformed("COSE_Sign1 is not an array of 4 elements");
  }
  const cbor::Value::Array& parts = msg->as_array();
  if (!parts[0].is_bytes()) {
    return Malformed("protected header is not a byte string");
  }
  if (!parts[1].is_map()) {
    return Malformed("unprotected header is not a map");
  }
  if (!parts[2].is_bytes()) {
    return Malformed(parts[2].is_null() ? "detached payload not supported"
                                        : "payload is not a byte string");
  }
  if (!parts[3].is_bytes()) {
    return Malformed("signature is not a byte string");
  }
  out.protected_header = parts[0].as_bytes();
  out.unprotected = parts[1];
  out.payload = parts[2].as_bytes();
  out.signature = parts[3].as_bytes();

  // RFC 9052 §3: an empty protected header is the zero-length string, but we require `alg`.
  auto header = cbor::Decode(out.protected_header, options);
  if (!header) {
    return std::move(header).error().WithContext("cose: protected header");
  }
  if (!header->is_map()) {
    return Malformed("protected header is not a map");
  }
  if (header->Find(kHeaderCrit) != nullptr) {
    return Error(Code::kUnsupported, "cose: critical header parameters not supported");
  }
  const cbor::Value* alg = header->Find(kHeaderAlg);
  if (alg == nullptr) {
    return Malformed("protected header has no algorithm");
  }
  if (!alg->is_integer()) {
    return Malformed("algorithm is not an integer");
  }
  ASSIGN_OR_RETURN(int64_t alg_id, alg->AsInt64());
  ASSIGN_OR_RETURN(out.algorithm, AlgorithmFromId(alg_id));
  if (out.unprotected.Find(kHeaderAlg) != nullptr) {
    return Malformed("algorithm in the unprotected header");
  }
  return out;
}

Bytes SigStructure(ByteSpan protected_header, ByteSpan external_aad, ByteSpan payload) {
  cbor::Value::Array items;
  items.push_back(cbor::Value::TextString("Signature1"));
  items.push_back(cbor::Value::ByteString(protected_header));
  items.push_back(cbor::Value::ByteString(external_aad));
  items.push_back(cbor::Value::ByteString(payload));
  return cbor::Encode(cbor::Value::MakeArray(std::move(items)));
}

Result<void> VerifySign1(const Sign1& msg, const crypto::PublicKey& key, ByteSpan external_aad) {
  if (AlgorithmForKey(key.algorithm()) != msg.algorithm) {
    return Error(Code::kVerifyFailed,
                 std::string("cose: key does not match algorithm ") + AlgorithmName(msg.algorithm));
  }
  Bytes to_verify = SigStructure(msg.protected_header, external_aad, msg.payload);
  if (!key.Verify(to_verify, msg.signature)) {
    return Error(Code::kVerifyFailed, "cose: signature does not verify");
  }
  return Ok();
}

Result<Bytes> CreateSign1(ByteSpan payload, const crypto::Signer& signer, Tagging tagging,
                          const cbor::Value& unprotected, ByteSpan external_aad) {
  if (!unprotected.is_map()) {
    return Error(Code::kInvalidArgument, "cose: unprotected header must be a map");
  }
  Algorithm alg = AlgorithmForKey(signer.algorithm());
  cbor::Value::Map header;
  header.emplace_back(cbor::Value::Int(kHeaderAlg), cbor::Value::Int(static_cast<int64_t>(alg)));
  Bytes protected_header = cbor::Encode(cbor::Value::MakeMap(std::move(header)));
  ASSIGN_OR_RETURN(Bytes signature,
                   signer.Sign(SigStructure(protected_header, external_aad, payload)));
  if (signature.size() != crypto::RawSignatureSize(signer.algorithm())) {
    return Error(Code::kInternal, "cose: " + signer.Describe() + " returned a signature of " +
                                      std::to_string(signature.size()) + " bytes");
  }
  cbor::Value::Array parts;
  parts.push_back(cbor::Value::ByteString(std::move(protected_header)));
  parts.push_back(unprotected);
  parts.push_back(cbor::Value::ByteString(payload));
  parts.push_back(cbor::Value::ByteString(std::move(signature)));
  cbor::Value msg = cbor::Value::MakeArray(std::move(parts));
  if (tagging == Tagging::kTagged) {
    msg = cbor::Value::Tagged(kSign1Tag, std::move(msg));
  }
  return cbor::Encode(msg);
}

namespace {

// BorrowedKey signs with a PrivateKey the caller keeps.
class BorrowedKey final : public crypto::Signer {
 public:
  explicit BorrowedKey(const crypto::PrivateKey& key) : key_(key), public_key_(key.public_key()) {}
  crypto::SignatureAlgorithm algorithm() const override { return key_.algorithm(); }
  const crypto::PublicKey& public_key() const override { return public_key_; }
  Result<Bytes> Sign(ByteSpan message) const override { return key_.Sign(message); }
  std::string Describe() const override { return "private key"; }

 private:
  const crypto::PrivateKey& key_;
  crypto::PublicKey public_key_;
};

}  // namespace

Result<Bytes> CreateSign1(ByteSpan payload, const crypto::PrivateKey& key, Tagging tagging,
                          const cbor::Value& unprotected, ByteSpan external_aad) {
  return CreateSign1(payload, BorrowedKey(key), tagging, unprotected, external_aad);
}

}  // namespace enclavia::cose
