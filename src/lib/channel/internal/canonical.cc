// SPDX-License-Identifier: Apache-2.0
#include "lib/channel/internal/canonical.h"

#include <string>

#include "lib/channel/protocol.h"

namespace enclavia::channel::internal {

Result<cbor::Value> DecodeCanonical(ByteSpan data, std::string_view prefix, std::string_view name,
                                    std::initializer_list<std::string_view> keys,
                                    cbor::DecodeOptions limits) {
  std::string what = std::string(prefix) + ": " + std::string(name);
  auto value = cbor::DecodeDeterministicMap(data, limits);
  if (!value) {
    return Error(value.error().code(), what + " " + value.error().message());
  }
  for (const auto& [k, v] : value->as_map()) {
    bool known = false;
    for (std::string_view key : keys) {
      known = known || (k.is_text() && k.as_text() == key);
    }
    if (!known) {
      return Error(Code::kMalformed, what + " has an unknown key");
    }
  }
  const cbor::Value* version = value->Find("v");
  if (version == nullptr || !version->is_unsigned()) {
    return Error(Code::kMalformed, what + " has no version");
  }
  auto v = version->AsInt64();
  if (!v || *v != static_cast<int64_t>(kProtocolVersion)) {
    return Error(Code::kUnsupported, what + " has protocol version " +
                                         (v ? std::to_string(*v) : std::string("?")) +
                                         ", expected 1");
  }
  return value;
}

}  // namespace enclavia::channel::internal
