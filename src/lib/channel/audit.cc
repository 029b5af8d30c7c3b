// SPDX-License-Identifier: Apache-2.0
#include "lib/channel/audit.h"

#include <string>
#include <utility>

#include "lib/cbor/cbor.h"
#include "lib/channel/protocol.h"

namespace enclavia::channel {
namespace {

using cbor::Value;

constexpr size_t kMaxAuditError = 1024;

Error Malformed(std::string_view what) {
  return Error(Code::kMalformed, "audit: " + std::string(what));
}

// DecodeCanonical decodes `data` as a definite-length map whose keys are all in `keys` and
// whose encoding is the deterministic one (one message, one byte form), with "v" = 1.
Result<Value> DecodeCanonical(ByteSpan data, std::string_view name,
                              std::initializer_list<std::string_view> keys) {
  cbor::DecodeOptions options;
  options.allow_indefinite = false;
  options.allow_undefined = false;
  options.max_depth = 4;
  options.max_items = 2 * kMaxChainEntries + 16;
  auto value = cbor::Decode(data, options);
  if (!value) {
    return Malformed(std::string(name) + " is not CBOR: " + value.error().message());
  }
  if (!value->is_map()) {
    return Malformed(std::string(name) + " is not a map");
  }
  if (cbor::Encode(*value) != Bytes(data.begin(), data.end())) {
    return Malformed(std::string(name) + " is not in deterministic encoding");
  }
  for (const auto& [k, v] : value->as_map()) {
    bool known = false;
    for (std::string_view key : keys) {
      known = known || (k.is_text() && k.as_text() == key);
    }
    if (!known) {
      return Malformed(std::string(name) + " has an unknown key");
    }
  }
  const Value* version = value->Find("v");
  if (version == nullptr || !version->is_unsigned()) {
    return Malformed(std::string(name) + " has no version");
  }
  if (version->as_uint() != kProtocolVersion) {
    return Error(Code::kUnsupported, "audit: " + std::string(name) + " has version " +
                                         std::to_string(version->as_uint()) + ", expected 1");
  }
  return value;
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
