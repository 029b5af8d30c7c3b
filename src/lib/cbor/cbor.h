// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CBOR_CBOR_H_
#define ENCLAVIA_LIB_CBOR_CBOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// CBOR (RFC 8949) values, a strict bounded decoder of untrusted bytes, and a deterministic
// encoder. Decoding reads one item head at a time with our own bounds-checked head parser
// (internal/head.h), so that no declared length can make us allocate before the bytes are there.
// No libcbor: Debian 12 ships it without a static library, and the enclave runtime is static.
namespace enclavia::cbor {

enum class Type {
  kUnsigned,   // Major type 0.
  kNegative,   // Major type 1: the value is -1 - n.
  kBytes,      // Major type 2.
  kText,       // Major type 3 (valid UTF-8).
  kArray,      // Major type 4.
  kMap,        // Major type 5.
  kTag,        // Major type 6.
  kBool,       // Simple values 20, 21.
  kNull,       // Simple value 22.
  kUndefined,  // Simple value 23.
  kSimple,     // Other simple values (0..19, 32..255).
  kFloat,      // Half, single or double precision.
};

// Value is one CBOR data item. Copyable, immutable once built. Map entries keep the order in
// which they were decoded or given; Encode decides the order on the wire.
class Value {
 public:
  using Array = std::vector<Value>;
  using Map = std::vector<std::pair<Value, Value>>;

  Value();  // null

  static Value Uint(uint64_t v);
  // NegInt makes the value -1 - n (the full major type 1 range).
  static Value NegInt(uint64_t n);
  // Int makes an unsigned or negative integer from a signed one.
  static Value Int(int64_t v);
  static Value ByteString(ByteSpan b);
  static Value ByteString(Bytes&& b);
  static Value TextString(std::string_view s);
  static Value MakeArray(Array items);
  static Value MakeMap(Map entries);
  static Value Tagged(uint64_t tag, Value item);
  static Value Boolean(bool b);
  static Value Null();
  static Value Undefined();
  static Value Simple(uint8_t v);
  static Value Double(double d);

  Type type() const { return type_; }
  bool is_unsigned() const { return type_ == Type::kUnsigned; }
  bool is_integer() const { return type_ == Type::kUnsigned || type_ == Type::kNegative; }
  bool is_bytes() const { return type_ == Type::kBytes; }
  bool is_text() const { return type_ == Type::kText; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_map() const { return type_ == Type::kMap; }
  bool is_tag() const { return type_ == Type::kTag; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_null() const { return type_ == Type::kNull; }

  // Accessors abort (ENCLAVIA_CHECK) when the type does not match: check type() first.
  // as_uint returns the unsigned value, or n for a negative value -1 - n.
  uint64_t as_uint() const;
  const Bytes& as_bytes() const;
  const std::string& as_text() const;
  const Array& as_array() const;
  const Map& as_map() const;
  uint64_t tag() const;
  const Value& tagged() const;
  bool as_bool() const;
  uint8_t as_simple() const;
  double as_double() const;

  // AsInt64 returns an integer that fits int64_t; kMalformed for other types or out of range.
  Result<int64_t> AsInt64() const;

  // Find returns the value of the first entry whose key is the text `key` (or the integer `key`),
  // or nullptr when absent or when this is not a map.
  const Value* Find(std::string_view key) const;
  const Value* Find(int64_t key) const;

  // Structural equality: same type and contents, maps compared entry by entry in order,
  // floats by bit pattern.
  bool operator==(const Value& other) const;

 private:
  struct Tag;
  Type type_ = Type::kNull;
  uint64_t scalar_ = 0;  // Unsigned/negative argument, tag number, bool, simple, double bits.
  std::variant<std::monostate, Bytes, std::string, Array, Map, std::shared_ptr<const Value>>
      payload_;
};

// DecodeOptions bounds the work and memory that untrusted input may cause.
struct DecodeOptions {
  size_t max_input_size = 64 * 1024;  // Larger inputs are rejected before parsing.
  size_t max_depth = 16;              // Nesting of arrays, maps and tags.
  size_t max_items = 16384;           // Data items in total (every key and value counts).
  bool allow_indefinite = true;       // Indefinite-length strings, arrays and maps (RFC 8949 §3.2).
  bool allow_duplicate_keys = false;  // Maps with two equal keys are kMalformed unless set.
  bool allow_undefined = true;        // Simple value 23.
};

// Decode parses exactly one data item that spans all of `data`. Errors: kLimitExceeded for a cap,
// kMalformed for anything not well-formed or valid (truncation, reserved additional info, a
// break outside an indefinite item, indefinite string chunks of another type, invalid UTF-8,
// duplicate keys, trailing bytes). Never allocates more than a small multiple of data.size().
Result<Value> Decode(ByteSpan data, const DecodeOptions& options = {});

// DecodeDeterministicMap decodes a protocol message: one definite-length map, nothing
// indefinite or undefined, in the deterministic encoding (re-encoding gives the same bytes: one
// message, one byte form, no alternative encodings for a tamperer to play with). kMalformed "is
// not CBOR: …", "is not a map" or "is not in deterministic encoding" (callers prefix the
// message's name); kLimitExceeded for a cap of `limits`.
Result<Value> DecodeDeterministicMap(ByteSpan data, DecodeOptions limits);

// DecodePrefix parses one data item at the start of `data` and returns it with the number of
// bytes it used; the rest of `data` is not examined.
Result<std::pair<Value, size_t>> DecodePrefix(ByteSpan data, const DecodeOptions& options = {});

enum class MapOrder {
  kDeterministic,  // RFC 8949 §4.2.1: keys sorted by the bytewise order of their encodings.
  kAsGiven,        // Entries in the order the Value holds them (for formats that fix an order).
};

// Encode writes `value` with preferred serialization: shortest argument encodings, definite
// lengths, floats in the shortest of half/single/double that keeps the value (RFC 8949 §4.2.1;
// NaN as 0xf97e00). With MapOrder::kDeterministic the output is the core deterministic encoding.
Bytes Encode(const Value& value, MapOrder order = MapOrder::kDeterministic);

// Diagnostic renders diagnostic notation (RFC 8949 §8), e.g. {"a": h'01', 1: [2, -3]}, for logs
// and tests; byte strings longer than `max_bytes` are elided.
std::string Diagnostic(const Value& value, size_t max_bytes = 64);

}  // namespace enclavia::cbor

#endif  // ENCLAVIA_LIB_CBOR_CBOR_H_
