// SPDX-License-Identifier: Apache-2.0
#include "lib/attestation/nsm_codec.h"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lib/cbor/cbor.h"

namespace enclavia::attestation {
namespace {

using cbor::Value;

// Variant names, as the Rust enums spell them (src/api/mod.rs in aws-nitro-enclaves-nsm-api).
constexpr std::string_view kAttestation = "Attestation";
constexpr std::string_view kDescribePcr = "DescribePCR";
constexpr std::string_view kExtendPcr = "ExtendPCR";
constexpr std::string_view kLockPcr = "LockPCR";
constexpr std::string_view kLockPcrs = "LockPCRs";
constexpr std::string_view kDescribeNsm = "DescribeNSM";
constexpr std::string_view kGetRandom = "GetRandom";
constexpr std::string_view kError = "Error";

// ErrorCode in declaration order; NsmErrorCode has the same order.
constexpr std::array<std::string_view, 9> kErrorCodeNames = {
    "Success",          "InvalidArgument", "InvalidIndex",  "InvalidResponse", "ReadOnlyIndex",
    "InvalidOperation", "BufferTooSmall",  "InputTooLarge", "InternalError",
};

constexpr uint64_t kU16Max = 0xffff;

// The Digest enum's variants; DescribeNSM carries one as a bare text string.
constexpr std::array<std::string_view, 3> kDigestNames = {"SHA256", "SHA384", "SHA512"};

Error Malformed(std::string_view message) {
  return {Code::kMalformed, "nsm: " + std::string(message)};
}

Error FieldError(std::string_view variant, std::string_view key, std::string_view what) {
  return Malformed(std::string(variant) + "." + std::string(key) + ": " + std::string(what));
}

cbor::DecodeOptions DecodeLimits(size_t max_size) {
  cbor::DecodeOptions options;
  options.max_input_size = max_size;
  // {"Variant": {"field": [u16, ...]}} nests three deep; nothing legitimate goes further.
  options.max_depth = 4;
  options.max_items = max_size;  // Every item takes at least one byte.
  // serde_cbor writes definite lengths only; the rest of CBOR's latitude has no use here.
  options.allow_indefinite = false;
  options.allow_duplicate_keys = false;
  options.allow_undefined = false;
  return options;
}

// Variant is an externally tagged enum value: a bare name (unit variant, body == nullptr) or a
// one-entry map from the name to the body. It points into the decoded Value.
struct Variant {
  std::string_view name;
  const Value* body = nullptr;
};

Result<Variant> SplitVariant(const Value& value, std::string_view what) {
  if (value.is_text()) {
    return Variant{value.as_text(), nullptr};
  }
  if (value.is_map() && value.as_map().size() == 1 && value.as_map()[0].first.is_text()) {
    const auto& [key, body] = value.as_map()[0];
    return Variant{key.as_text(), &body};
  }
  return Malformed(std::string(what) + " is neither a variant name nor a one-entry map");
}

Result<void> ExpectUnit(const Variant& variant) {
  if (variant.body != nullptr) {
    return Malformed(std::string(variant.name) + " takes no fields");
  }
  return Ok();
}

// ExpectFields checks that a struct variant has a map body whose keys are all text and in
// `known`. The decoder has already refused duplicate keys.
Result<const Value*> ExpectFields(const Variant& variant,
                                  std::initializer_list<std::string_view> known) {
  if (variant.body == nullptr) {
    return Malformed(std::string(variant.name) + ": missing fields");
  }
  if (!variant.body->is_map()) {
    return Malformed(std::string(variant.name) + ": fields are not a map");
  }
  for (const auto& entry : variant.body->as_map()) {
    const Value& key = entry.first;
    if (!key.is_text() || std::find(known.begin(), known.end(), key.as_text()) == known.end()) {
      return Malformed(std::string(variant.name) + ": unknown field");
    }
  }
  return variant.body;
}

Result<const Value*> Required(const Value& fields, std::string_view variant, std::string_view key) {
  const Value* value = fields.Find(key);
  if (value == nullptr) {
    return FieldError(variant, key, "missing");
  }
  return value;
}

Result<uint16_t> ReadU16(const Value& fields, std::string_view variant, std::string_view key) {
  ASSIGN_OR_RETURN(const Value* value, Required(fields, variant, key));
  if (!value->is_unsigned() || value->as_uint() > kU16Max) {
    return FieldError(variant, key, "not a u16");
  }
  return static_cast<uint16_t>(value->as_uint());
}

Result<bool> ReadBool(const Value& fields, std::string_view variant, std::string_view key) {
  ASSIGN_OR_RETURN(const Value* value, Required(fields, variant, key));
  if (!value->is_bool()) {
    return FieldError(variant, key, "not a bool");
  }
  return value->as_bool();
}

Result<std::string> ReadText(const Value& fields, std::string_view variant, std::string_view key) {
  ASSIGN_OR_RETURN(const Value* value, Required(fields, variant, key));
  if (!value->is_text()) {
    return FieldError(variant, key, "not a text string");
  }
  return value->as_text();
}

// ReadBytes reads a serde_bytes field: a CBOR byte string, never an array of integers.
Result<Bytes> ReadBytes(const Value& fields, std::string_view variant, std::string_view key) {
  ASSIGN_OR_RETURN(const Value* value, Required(fields, variant, key));
  if (!value->is_bytes()) {
    return FieldError(variant, key, "not a byte string");
  }
  return value->as_bytes();
}

// ReadOptionalBytes reads an Option<ByteBuf>: null or a byte string. serde's derive reads an
// absent Option field as None, and so do we, so that the simulator accepts what the module does.
Result<std::optional<Bytes>> ReadOptionalBytes(const Value& fields, std::string_view variant,
                                               std::string_view key) {
  const Value* value = fields.Find(key);
  if (value == nullptr || value->is_null()) {
    return std::optional<Bytes>();
  }
  if (!value->is_bytes()) {
    return FieldError(variant, key, "neither null nor a byte string");
  }
  return std::optional<Bytes>(value->as_bytes());
}

// ReadU16Set reads a BTreeSet<u16>: an array, which serde writes in ascending order.
Result<std::vector<uint16_t>> ReadU16Set(const Value& fields, std::string_view variant,
                                         std::string_view key) {
  ASSIGN_OR_RETURN(const Value* value, Required(fields, variant, key));
  if (!value->is_array()) {
    return FieldError(variant, key, "not an array");
  }
  std::vector<uint16_t> out;
  out.reserve(value->as_array().size());
  for (const Value& item : value->as_array()) {
    if (!item.is_unsigned() || item.as_uint() > kU16Max) {
      return FieldError(variant, key, "item not a u16");
    }
    auto index = static_cast<uint16_t>(item.as_uint());
    if (!out.empty() && index <= out.back()) {
      return FieldError(variant, key, "not strictly increasing");
    }
    out.push_back(index);
  }
  return out;
}

Value Text(std::string_view s) { return Value::TextString(s); }

Value StructVariant(std::string_view name, Value::Map fields) {
  Value::Map outer;
  outer.emplace_back(Text(name), Value::MakeMap(std::move(fields)));
  return Value::MakeMap(std::move(outer));
}

Value OptionalBytes(const std::optional<Bytes>& b) {
  return b.has_value() ? Value::ByteString(ByteSpan(*b)) : Value::Null();
}

Value U16(uint16_t v) { return Value::Uint(v); }

struct RequestToValue {
  Value operator()(const AttestationRequest& r) const {
    Value::Map fields;
    fields.emplace_back(Text("user_data"), OptionalBytes(r.user_data));
    fields.emplace_back(Text("nonce"), OptionalBytes(r.nonce));
    fields.emplace_back(Text("public_key"), OptionalBytes(r.public_key));
    return StructVariant(kAttestation, std::move(fields));
  }
  Value operator()(const DescribePcrRequest& r) const {
    Value::Map fields;
    fields.emplace_back(Text("index"), U16(r.index));
    return StructVariant(kDescribePcr, std::move(fields));
  }
  Value operator()(const ExtendPcrRequest& r) const {
    Value::Map fields;
    fields.emplace_back(Text("index"), U16(r.index));
    fields.emplace_back(Text("data"), Value::ByteString(ByteSpan(r.data)));
    return StructVariant(kExtendPcr, std::move(fields));
  }
  Value operator()(const LockPcrRequest& r) const {
    Value::Map fields;
    fields.emplace_back(Text("index"), U16(r.index));
    return StructVariant(kLockPcr, std::move(fields));
  }
  Value operator()(const LockPcrsRequest& r) const {
    Value::Map fields;
    fields.emplace_back(Text("range"), U16(r.range));
    return StructVariant(kLockPcrs, std::move(fields));
  }
  Value operator()(const DescribeNsmRequest& /*unused*/) const { return Text(kDescribeNsm); }
  Value operator()(const GetRandomRequest& /*unused*/) const { return Text(kGetRandom); }
};

struct ResponseToValue {
  Value operator()(const AttestationResponse& r) const {
    Value::Map fields;
    fields.emplace_back(Text("document"), Value::ByteString(ByteSpan(r.document)));
    return StructVariant(kAttestation, std::move(fields));
  }
  Value operator()(const PcrDescription& r) const {
    Value::Map fields;
    fields.emplace_back(Text("lock"), Value::Boolean(r.locked));
    fields.emplace_back(Text("data"), Value::ByteString(ByteSpan(r.value)));
    return StructVariant(kDescribePcr, std::move(fields));
  }
  Value operator()(const ExtendPcrResponse& r) const {
    Value::Map fields;
    fields.emplace_back(Text("data"), Value::ByteString(ByteSpan(r.data)));
    return StructVariant(kExtendPcr, std::move(fields));
  }
  Value operator()(const LockPcrResponse& /*unused*/) const { return Text(kLockPcr); }
  Value operator()(const LockPcrsResponse& /*unused*/) const { return Text(kLockPcrs); }
  Value operator()(const NsmDescription& r) const {
    std::vector<uint16_t> locked = r.locked_pcrs;
    std::sort(locked.begin(), locked.end());
    locked.erase(std::unique(locked.begin(), locked.end()), locked.end());
    Value::Array locked_values;
    locked_values.reserve(locked.size());
    for (uint16_t index : locked) {
      locked_values.push_back(U16(index));
    }
    Value::Map fields;
    fields.emplace_back(Text("version_major"), U16(r.version_major));
    fields.emplace_back(Text("version_minor"), U16(r.version_minor));
    fields.emplace_back(Text("version_patch"), U16(r.version_patch));
    fields.emplace_back(Text("module_id"), Text(r.module_id));
    fields.emplace_back(Text("max_pcrs"), U16(r.max_pcrs));
    fields.emplace_back(Text("locked_pcrs"), Value::MakeArray(std::move(locked_values)));
    fields.emplace_back(Text("digest"), Text(r.digest));
    return StructVariant(kDescribeNsm, std::move(fields));
  }
  Value operator()(const GetRandomResponse& r) const {
    Value::Map fields;
    fields.emplace_back(Text("random"), Value::ByteString(ByteSpan(r.random)));
    return StructVariant(kGetRandom, std::move(fields));
  }
  Value operator()(const ErrorResponse& r) const {
    Value::Map outer;
    outer.emplace_back(Text(kError), Text(NsmErrorCodeName(r.code)));
    return Value::MakeMap(std::move(outer));
  }
};

struct RequestNameOf {
  std::string_view operator()(const AttestationRequest& /*unused*/) const { return kAttestation; }
  std::string_view operator()(const DescribePcrRequest& /*unused*/) const { return kDescribePcr; }
  std::string_view operator()(const ExtendPcrRequest& /*unused*/) const { return kExtendPcr; }
  std::string_view operator()(const LockPcrRequest& /*unused*/) const { return kLockPcr; }
  std::string_view operator()(const LockPcrsRequest& /*unused*/) const { return kLockPcrs; }
  std::string_view operator()(const DescribeNsmRequest& /*unused*/) const { return kDescribeNsm; }
  std::string_view operator()(const GetRandomRequest& /*unused*/) const { return kGetRandom; }
};

struct ResponseNameOf {
  std::string_view operator()(const AttestationResponse& /*unused*/) const { return kAttestation; }
  std::string_view operator()(const PcrDescription& /*unused*/) const { return kDescribePcr; }
  std::string_view operator()(const ExtendPcrResponse& /*unused*/) const { return kExtendPcr; }
  std::string_view operator()(const LockPcrResponse& /*unused*/) const { return kLockPcr; }
  std::string_view operator()(const LockPcrsResponse& /*unused*/) const { return kLockPcrs; }
  std::string_view operator()(const NsmDescription& /*unused*/) const { return kDescribeNsm; }
  std::string_view operator()(const GetRandomResponse& /*unused*/) const { return kGetRandom; }
  std::string_view operator()(const ErrorResponse& /*unused*/) const { return kError; }
};

Result<Value> DecodeValue(ByteSpan data, size_t max_size) {
  Result<Value> value = cbor::Decode(data, DecodeLimits(max_size));
  if (!value.has_value()) {
    return std::move(value).error().WithContext("nsm");
  }
  return value;
}

Result<NsmRequest> RequestFromVariant(const Variant& v) {
  if (v.name == kDescribeNsm) {
    RETURN_IF_ERROR(ExpectUnit(v));
    return NsmRequest(DescribeNsmRequest{});
  }
  if (v.name == kGetRandom) {
    RETURN_IF_ERROR(ExpectUnit(v));
    return NsmRequest(GetRandomRequest{});
  }
  if (v.name == kAttestation) {
    ASSIGN_OR_RETURN(const Value* f, ExpectFields(v, {"user_data", "nonce", "public_key"}));
    AttestationRequest r;
    ASSIGN_OR_RETURN(r.user_data, ReadOptionalBytes(*f, v.name, "user_data"));
    ASSIGN_OR_RETURN(r.nonce, ReadOptionalBytes(*f, v.name, "nonce"));
    ASSIGN_OR_RETURN(r.public_key, ReadOptionalBytes(*f, v.name, "public_key"));
    return NsmRequest(std::move(r));
  }
  if (v.name == kDescribePcr) {
    ASSIGN_OR_RETURN(const Value* f, ExpectFields(v, {"index"}));
    DescribePcrRequest r;
    ASSIGN_OR_RETURN(r.index, ReadU16(*f, v.name, "index"));
    return NsmRequest(r);
  }
  if (v.name == kExtendPcr) {
    ASSIGN_OR_RETURN(const Value* f, ExpectFields(v, {"index", "data"}));
    ExtendPcrRequest r;
    ASSIGN_OR_RETURN(r.index, ReadU16(*f, v.name, "index"));
    ASSIGN_OR_RETURN(r.data, ReadBytes(*f, v.name, "data"));
    return NsmRequest(std::move(r));
  }
  if (v.name == kLockPcr) {
    ASSIGN_OR_RETURN(const Value* f, ExpectFields(v, {"index"}));
    LockPcrRequest r;
    ASSIGN_OR_RETURN(r.index, ReadU16(*f, v.name, "index"));
    return NsmRequest(r);
  }
  if (v.name == kLockPcrs) {
    ASSIGN_OR_RETURN(const Value* f, ExpectFields(v, {"range"}));
    LockPcrsRequest r;
    ASSIGN_OR_RETURN(r.range, ReadU16(*f, v.name, "range"));
    return NsmRequest(r);
  }
  // The name is attacker-controlled: not echoed.
  return Malformed("unknown request variant");
}

Result<NsmResponse> ResponseFromVariant(const Variant& v) {
  if (v.name == kLockPcr) {
    RETURN_IF_ERROR(ExpectUnit(v));
    return NsmResponse(LockPcrResponse{});
  }
  if (v.name == kLockPcrs) {
    RETURN_IF_ERROR(ExpectUnit(v));
    return NsmResponse(LockPcrsResponse{});
  }
  if (v.name == kError) {
    // A newtype variant: the body is the ErrorCode, itself a unit variant name.
    if (v.body == nullptr || !v.body->is_text()) {
      return Malformed("Error: code is not a text string");
    }
    for (size_t i = 0; i < kErrorCodeNames.size(); ++i) {
      if (v.body->as_text() == kErrorCodeNames[i]) {
        return NsmResponse(ErrorResponse{static_cast<NsmErrorCode>(i)});
      }
    }
    return Malformed("Error: unknown error code");
  }
  if (v.name == kAttestation) {
    ASSIGN_OR_RETURN(const Value* f, ExpectFields(v, {"document"}));
    AttestationResponse r;
    ASSIGN_OR_RETURN(r.document, ReadBytes(*f, v.name, "document"));
    return NsmResponse(std::move(r));
  }
  if (v.name == kDescribePcr) {
    ASSIGN_OR_RETURN(const Value* f, ExpectFields(v, {"lock", "data"}));
    PcrDescription r;
    ASSIGN_OR_RETURN(r.locked, ReadBool(*f, v.name, "lock"));
    ASSIGN_OR_RETURN(r.value, ReadBytes(*f, v.name, "data"));
    return NsmResponse(std::move(r));
  }
  if (v.name == kExtendPcr) {
    ASSIGN_OR_RETURN(const Value* f, ExpectFields(v, {"data"}));
    ExtendPcrResponse r;
    ASSIGN_OR_RETURN(r.data, ReadBytes(*f, v.name, "data"));
    return NsmResponse(std::move(r));
  }
  if (v.name == kDescribeNsm) {
    ASSIGN_OR_RETURN(const Value* f,
                     ExpectFields(v, {"version_major", "version_minor", "version_patch",
                                      "module_id", "max_pcrs", "locked_pcrs", "digest"}));
    NsmDescription r;
    ASSIGN_OR_RETURN(r.version_major, ReadU16(*f, v.name, "version_major"));
    ASSIGN_OR_RETURN(r.version_minor, ReadU16(*f, v.name, "version_minor"));
    ASSIGN_OR_RETURN(r.version_patch, ReadU16(*f, v.name, "version_patch"));
    ASSIGN_OR_RETURN(r.module_id, ReadText(*f, v.name, "module_id"));
    ASSIGN_OR_RETURN(r.max_pcrs, ReadU16(*f, v.name, "max_pcrs"));
    ASSIGN_OR_RETURN(r.locked_pcrs, ReadU16Set(*f, v.name, "locked_pcrs"));
    ASSIGN_OR_RETURN(r.digest, ReadText(*f, v.name, "digest"));
    if (std::find(kDigestNames.begin(), kDigestNames.end(), r.digest) == kDigestNames.end()) {
      return FieldError(v.name, "digest", "unknown digest");
    }
    return NsmResponse(std::move(r));
  }
  if (v.name == kGetRandom) {
    ASSIGN_OR_RETURN(const Value* f, ExpectFields(v, {"random"}));
    GetRandomResponse r;
    ASSIGN_OR_RETURN(r.random, ReadBytes(*f, v.name, "random"));
    return NsmResponse(std::move(r));
  }
  return Malformed("unknown response variant");
}

}  // namespace

std::string_view NsmErrorCodeName(NsmErrorCode code) {
  auto i = static_cast<size_t>(code);
  return i < kErrorCodeNames.size() ? kErrorCodeNames[i] : std::string_view("Unknown");
}

bool operator==(const AttestationRequest& a, const AttestationRequest& b) {
  return a.user_data == b.user_data && a.nonce == b.nonce && a.public_key == b.public_key;
}

bool operator==(const PcrDescription& a, const PcrDescription& b) {
  return a.locked == b.locked && a.value == b.value;
}

bool operator==(const NsmDescription& a, const NsmDescription& b) {
  return a.version_major == b.version_major && a.version_minor == b.version_minor &&
         a.version_patch == b.version_patch && a.module_id == b.module_id &&
         a.max_pcrs == b.max_pcrs && a.locked_pcrs == b.locked_pcrs && a.digest == b.digest;
}

std::string_view RequestName(const NsmRequest& request) {
  return std::visit(RequestNameOf{}, request);
}

std::string_view ResponseName(const NsmResponse& response) {
  return std::visit(ResponseNameOf{}, response);
}

// serde_cbor writes struct fields in declaration order, so the maps keep the order we build.
Bytes EncodeRequest(const NsmRequest& request) {
  return cbor::Encode(std::visit(RequestToValue{}, request), cbor::MapOrder::kAsGiven);
}

Bytes EncodeResponse(const NsmResponse& response) {
  return cbor::Encode(std::visit(ResponseToValue{}, response), cbor::MapOrder::kAsGiven);
}

Result<NsmRequest> DecodeRequest(ByteSpan data) {
  ASSIGN_OR_RETURN(Value value, DecodeValue(data, kNsmRequestMaxSize));
  ASSIGN_OR_RETURN(Variant variant, SplitVariant(value, "request"));
  return RequestFromVariant(variant);
}

Result<NsmResponse> DecodeResponse(ByteSpan data) {
  ASSIGN_OR_RETURN(Value value, DecodeValue(data, kNsmResponseMaxSize));
  ASSIGN_OR_RETURN(Variant variant, SplitVariant(value, "response"));
  return ResponseFromVariant(variant);
}

}  // namespace enclavia::attestation
