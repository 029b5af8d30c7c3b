// SPDX-License-Identifier: Apache-2.0
#include "lib/channel/protocol.h"

#include <string>
#include <utility>

#include "lib/cbor/cbor.h"
#include "lib/channel/internal/canonical.h"

namespace enclavia::channel {
namespace {

using cbor::Value;

Error Malformed(std::string_view what) {
  return Error(Code::kMalformed, "channel: " + std::string(what));
}

Result<Value> DecodeCanonical(ByteSpan payload, std::string_view name,
                              std::initializer_list<std::string_view> keys) {
  return internal::DecodeCanonical(payload, "channel", name, keys);
}

}  // namespace

Bytes EncodeClientHello(const ClientHello& hello) {
  return cbor::Encode(Value::MakeMap({{Value::TextString("v"), Value::Uint(kProtocolVersion)},
                                      {Value::TextString("fresh"), Value::Boolean(hello.fresh)}}));
}

Bytes EncodeServerHello(const ServerHello& hello) {
  Value::Array chain;
  for (const Bytes& entry : hello.chain) {
    chain.push_back(Value::ByteString(entry));
  }
  return cbor::Encode(
      Value::MakeMap({{Value::TextString("v"), Value::Uint(kProtocolVersion)},
                      {Value::TextString("attestation"), Value::ByteString(hello.attestation)},
                      {Value::TextString("chain"), Value::MakeArray(std::move(chain))}}));
}

Bytes EncodeClientFinish() {
  return cbor::Encode(Value::MakeMap({{Value::TextString("v"), Value::Uint(kProtocolVersion)}}));
}

Result<ClientHello> DecodeClientHello(ByteSpan payload) {
  ASSIGN_OR_RETURN(Value value, DecodeCanonical(payload, "client hello", {"v", "fresh"}));
  const Value* fresh = value.Find("fresh");
  if (fresh == nullptr || !fresh->is_bool()) {
    return Malformed("client hello: \"fresh\" must be a boolean");
  }
  return ClientHello{.fresh = fresh->as_bool()};
}

Result<ServerHello> DecodeServerHello(ByteSpan payload) {
  ASSIGN_OR_RETURN(Value value,
                   DecodeCanonical(payload, "server hello", {"v", "attestation", "chain"}));
  const Value* doc = value.Find("attestation");
  if (doc == nullptr || !doc->is_bytes() || doc->as_bytes().empty()) {
    return Malformed("server hello: \"attestation\" must be a non-empty byte string");
  }
  if (doc->as_bytes().size() > kMaxAttestationSize) {
    return Error(Code::kLimitExceeded, "channel: server hello: attestation document too large");
  }
  const Value* chain = value.Find("chain");
  if (chain == nullptr || !chain->is_array()) {
    return Malformed("server hello: \"chain\" must be an array");
  }
  if (chain->as_array().size() > kMaxChainEntries) {
    return Error(Code::kLimitExceeded, "channel: server hello: upgrade chain too long");
  }
  ServerHello hello;
  hello.attestation = doc->as_bytes();
  for (const Value& entry : chain->as_array()) {
    if (!entry.is_bytes()) {
      return Malformed("server hello: upgrade chain entries must be byte strings");
    }
    hello.chain.push_back(entry.as_bytes());
  }
  return hello;
}

Result<void> DecodeClientFinish(ByteSpan payload) {
  ASSIGN_OR_RETURN(Value value, DecodeCanonical(payload, "client finish", {"v"}));
  (void)value;
  return Ok();
}

}  // namespace enclavia::channel
