// SPDX-License-Identifier: Apache-2.0
#include "lib/channel/audit.h"

#include <string>
#include <utility>

#include "lib/cbor/cbor.h"
#include "lib/channel/internal/canonical.h"
#include "lib/channel/protocol.h"

namespace enclavia::channel {
namespace {

using cbor::Value;

constexpr size_t kMaxAuditError = 1024;

Error Malformed(std::string_view what) {
  return Error(Code::kMalformed, "audit: " + std::string(what));
}

Result<Value> DecodeCanonical(ByteSpan data, std::string_view name,
                              std::initializer_list<std::string_view> keys) {
  cbor::DecodeOptions limits;
  limits.max_depth = 4;
  limits.max_items = 2 * kMaxChainEntries + 16;
  return internal::DecodeCanonical(data, "audit", name, keys, limits);
}

}  // namespace

Bytes EncodeAuditRequest(const AuditRequest& request) {
  return cbor::Encode(Value::MakeMap({{Value::TextString("v"), Value::Uint(kProtocolVersion)},
                                      {Value::TextString("nonce"), Value::ByteString(request.nonce)}}));
}

Result<AuditRequest> DecodeAuditRequest(ByteSpan data) {
  ASSIGN_OR_RETURN(Value value, DecodeCanonical(data, "request", {"v", "nonce"}));
  const Value* nonce = value.Find("nonce");
  if (nonce == nullptr || !nonce->is_bytes()) {
    return Malformed("request: \"nonce\" must be a byte string");
  }
  if (nonce->as_bytes().empty() || nonce->as_bytes().size() > kMaxAuditNonce) {
    return Error(Code::kInvalidArgument, "audit: request: the nonce must be 1 to 64 bytes");
  }
  return AuditRequest{.nonce = nonce->as_bytes()};
}

Bytes EncodeAuditResponse(const AuditResponse& response) {
  if (!response.error.empty()) {
    return cbor::Encode(Value::MakeMap({{Value::TextString("v"), Value::Uint(kProtocolVersion)},
                                        {Value::TextString("error"),
                                         Value::TextString(response.error)}}));
  }
  Value::Array chain;
  for (const Bytes& entry : response.chain) {
    chain.push_back(Value::ByteString(entry));
  }
  return cbor::Encode(
      Value::MakeMap({{Value::TextString("v"), Value::Uint(kProtocolVersion)},
                      {Value::TextString("attestation"), Value::ByteString(response.attestation)},
                      {Value::TextString("chain"), Value::MakeArray(std::move(chain))}}));
}

Result<AuditResponse> DecodeAuditResponse(ByteSpan data) {
  ASSIGN_OR_RETURN(Value value,
                   DecodeCanonical(data, "response", {"v", "attestation", "chain", "error"}));
  AuditResponse response;
  if (const Value* error = value.Find("error"); error != nullptr) {
    if (value.as_map().size() != 2) {
      return Malformed("response: \"error\" comes alone");
    }
    if (!error->is_text() || error->as_text().empty() || error->as_text().size() > kMaxAuditError) {
      return Malformed("response: \"error\" must be a short non-empty text string");
    }
    response.error = error->as_text();
    return response;
  }
  const Value* doc = value.Find("attestation");
  if (doc == nullptr || !doc->is_bytes() || doc->as_bytes().empty()) {
    return Malformed("response: \"attestation\" must be a non-empty byte string");
  }
  if (doc->as_bytes().size() > kMaxAttestationSize) {
    return Error(Code::kLimitExceeded, "audit: response: attestation document too large");
  }
  const Value* chain = value.Find("chain");
  if (chain == nullptr || !chain->is_array()) {
    return Malformed("response: \"chain\" must be an array");
  }
  if (chain->as_array().size() > kMaxChainEntries) {
    return Error(Code::kLimitExceeded, "audit: response: upgrade chain too long");
  }
  response.attestation = doc->as_bytes();
  for (const Value& entry : chain->as_array()) {
    if (!entry.is_bytes() || entry.as_bytes().size() > kMaxAttestationSize) {
      return Malformed("response: upgrade chain entries must be byte strings of at most 16 KiB");
    }
    response.chain.push_back(entry.as_bytes());
  }
  return response;
}

}  // namespace enclavia::channel
