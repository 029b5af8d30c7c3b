// SPDX-License-Identifier: Apache-2.0
#include "lib/cbor/cbor.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>

#include "lib/base/encoding.h"
#include "lib/base/reader.h"
#include "lib/cbor/internal/keys.h"

namespace enclavia::cbor {
namespace {

// The one NaN we keep (RFC 8949 §4.2.2 suggests a single quiet NaN); it encodes as 0xf97e00.
constexpr uint64_t kCanonicalNanBits = 0x7ff8000000000000;

enum MajorType : uint8_t {
  kMajorUnsigned = 0,
  kMajorNegative = 1,
  kMajorBytes = 2,
  kMajorText = 3,
  kMajorArray = 4,
  kMajorMap = 5,
  kMajorTag = 6,
  kMajorSimple = 7,
};

// WriteHead writes the shortest head for `major` and `arg` (RFC 8949 §4.2.1).
void WriteHead(Writer& w, uint8_t major, uint64_t arg) {
  auto initial = [major](uint8_t info) { return static_cast<uint8_t>((major << 5) | info); };
  if (arg < 24) {
    w.WriteU8(initial(static_cast<uint8_t>(arg)));
  } else if (arg <= std::numeric_limits<uint8_t>::max()) {
    w.WriteU8(initial(24));
    w.WriteU8(static_cast<uint8_t>(arg));
  } else if (arg <= std::numeric_limits<uint16_t>::max()) {
    w.WriteU8(initial(25));
    w.WriteU16Be(static_cast<uint16_t>(arg));
  } else if (arg <= std::numeric_limits<uint32_t>::max()) {
    w.WriteU8(initial(26));
    w.WriteU32Be(static_cast<uint32_t>(arg));
  } else {
    w.WriteU8(initial(27));
    w.WriteU64Be(arg);
  }
}

// ToHalfExact returns the binary16 bits of `d` if binary16 holds exactly that value.
std::optional<uint16_t> ToHalfExact(double d) {
  const uint16_t sign = std::signbit(d) ? 0x8000 : 0;
  const double a = std::fabs(d);
  if (std::isinf(a)) {
    return static_cast<uint16_t>(sign | 0x7c00);
  }
  if (a == 0) {
    return sign;
  }
  // Subnormal halves are k * 2^-24 for k in 1..1023.
  const double scaled = std::ldexp(a, 24);
  if (scaled < 1024) {
    if (scaled != std::floor(scaled)) {
      return std::nullopt;
    }
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(scaled));
  }
  // Normal halves are (1 + m/1024) * 2^e for e in -14..15; frexp gives a = f * 2^exp, f in
  // [0.5, 1), so e = exp - 1 and m = f * 2^11 - 1024, all exact in double arithmetic.
  int exp = 0;
  const double f = std::frexp(a, &exp);
  const int e = exp - 1;
  if (e < -14 || e > 15) {
    return std::nullopt;
  }
  const double m = std::ldexp(f, 11) - 1024;
  if (m != std::floor(m)) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(sign | static_cast<uint16_t>((e + 15) << 10) |
                               static_cast<uint16_t>(m));
}

// WriteFloat writes the shortest of binary16/32/64 that keeps the exact value (RFC 8949 §4.2.1).
void WriteFloat(Writer& w, double d) {
  if (std::isnan(d)) {
    w.WriteU8(0xf9);
    w.WriteU16Be(0x7e00);
    return;
  }
  if (std::optional<uint16_t> half = ToHalfExact(d)) {
    w.WriteU8(0xf9);
    w.WriteU16Be(*half);
    return;
  }
  // Range check first: converting an out-of-range double to float is undefined behavior.
  if (std::fabs(d) <= std::numeric_limits<float>::max()) {
    const auto f = static_cast<float>(d);
    if (static_cast<double>(f) == d) {
      w.WriteU8(0xfa);
      w.WriteU32Be(std::bit_cast<uint32_t>(f));
      return;
    }
  }
  w.WriteU8(0xfb);
  w.WriteU64Be(std::bit_cast<uint64_t>(d));
}

// EncodeTo appends `v`. Recursion follows the Value's nesting, which decoding bounds by
// max_depth and which callers build themselves otherwise.
// NOLINTNEXTLINE(misc-no-recursion): bounded by the Value's nesting (max_depth when decoded).
void EncodeTo(Writer& w, const Value& v, MapOrder order) {
  switch (v.type()) {
    case Type::kUnsigned:
      WriteHead(w, kMajorUnsigned, v.as_uint());
      return;
    case Type::kNegative:
      WriteHead(w, kMajorNegative, v.as_uint());
      return;
    case Type::kBytes:
      WriteHead(w, kMajorBytes, v.as_bytes().size());
      w.WriteBytes(v.as_bytes());
      return;
    case Type::kText:
      WriteHead(w, kMajorText, v.as_text().size());
      w.WriteString(v.as_text());
      return;
    case Type::kArray:
      WriteHead(w, kMajorArray, v.as_array().size());
      for (const Value& item : v.as_array()) {
        EncodeTo(w, item, order);
      }
      return;
    case Type::kMap: {
      const Value::Map& entries = v.as_map();
      WriteHead(w, kMajorMap, entries.size());
      if (order == MapOrder::kAsGiven) {
        for (const auto& [key, value] : entries) {
          EncodeTo(w, key, order);
          EncodeTo(w, value, order);
        }
        return;
      }
      // RFC 8949 §4.2.1: sort by the bytewise lexicographic order of the encoded keys.
      std::vector<Bytes> keys;
      keys.reserve(entries.size());
      for (const auto& entry : entries) {
        keys.push_back(Encode(entry.first, order));
      }
      std::vector<size_t> index(entries.size());
      std::iota(index.begin(), index.end(), size_t{0});
      std::stable_sort(index.begin(), index.end(), [&keys](size_t a, size_t b) {
        return internal::BytewiseLess(keys[a], keys[b]);
      });
      for (size_t i : index) {
        w.WriteBytes(keys[i]);
        EncodeTo(w, entries[i].second, order);
      }
      return;
    }
    case Type::kTag:
      WriteHead(w, kMajorTag, v.tag());
      EncodeTo(w, v.tagged(), order);
      return;
    case Type::kBool:
      w.WriteU8(v.as_bool() ? 0xf5 : 0xf4);
      return;
    case Type::kNull:
      w.WriteU8(0xf6);
      return;
    case Type::kUndefined:
      w.WriteU8(0xf7);
      return;
    case Type::kSimple:
      WriteHead(w, kMajorSimple, v.as_simple());
      return;
    case Type::kFloat:
      WriteFloat(w, v.as_double());
      return;
  }
}

void AppendEscapedText(std::string& out, const std::string& s) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

void AppendDouble(std::string& out, double d) {
  if (std::isnan(d)) {
    out += "NaN";
    return;
  }
  if (std::isinf(d)) {
    out += d < 0 ? "-Infinity" : "Infinity";
    return;
  }
  // Shortest round-trip digits; positional for moderate exponents (100000.0, 0.00001), as
  // RFC 8949 Appendix A writes them, scientific otherwise (1.0e+300).
  std::array<char, 64> buf{};
  char* const begin = buf.data();
  char* const limit = buf.data() + buf.size();
  std::to_chars_result r = std::to_chars(begin, limit, d, std::chars_format::scientific);
  ENCLAVIA_CHECK(r.ec == std::errc());
  char* end = r.ptr;
  const char* e_pos = std::find(begin, end, 'e');
  int exponent = 0;
  ENCLAVIA_CHECK(e_pos != end);
  const char* exp_begin = e_pos + 1;
  if (exp_begin != end && *exp_begin == '+') {
    ++exp_begin;  // from_chars takes no '+'.
  }
  ENCLAVIA_CHECK(std::from_chars(exp_begin, end, exponent).ec == std::errc());
  if (exponent >= -5 && exponent < 17) {
    r = std::to_chars(begin, limit, d, std::chars_format::fixed);
    ENCLAVIA_CHECK(r.ec == std::errc());
    end = r.ptr;
  }
  std::string s(begin, end);
  // Diagnostic notation marks floats with a fraction or exponent: 1.0, 1.0e+300.
  if (s.find('.') == std::string::npos) {
    const size_t e = s.find('e');
    if (e == std::string::npos) {
      s += ".0";
    } else {
      s.insert(e, ".0");
    }
  }
  out += s;
}

// NOLINTNEXTLINE(misc-no-recursion): bounded by the Value's nesting (max_depth when decoded).
void AppendDiagnostic(std::string& out, const Value& v, size_t max_bytes) {
  switch (v.type()) {
    case Type::kUnsigned:
      out += std::to_string(v.as_uint());
      return;
    case Type::kNegative:
      // -1 - n, printed without overflow for n up to 2^64 - 1.
      if (v.as_uint() == std::numeric_limits<uint64_t>::max()) {
        out += "-18446744073709551616";
      } else {
        out += '-';
        out += std::to_string(v.as_uint() + 1);
      }
      return;
    case Type::kBytes: {
      const Bytes& b = v.as_bytes();
      out += "h'";
      out += HexEncode(ByteSpan(b).first(std::min(b.size(), max_bytes)));
      out += '\'';
      if (b.size() > max_bytes) {
        out += "...(" + std::to_string(b.size()) + " bytes)";
      }
      return;
    }
    case Type::kText:
      AppendEscapedText(out, v.as_text());
      return;
    case Type::kArray: {
      out += '[';
      bool first = true;
      for (const Value& item : v.as_array()) {
        if (!first) {
          out += ", ";
        }
        first = false;
        AppendDiagnostic(out, item, max_bytes);
      }
      out += ']';
      return;
    }
    case Type::kMap: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : v.as_map()) {
        if (!first) {
          out += ", ";
        }
        first = false;
        AppendDiagnostic(out, key, max_bytes);
        out += ": ";
        AppendDiagnostic(out, value, max_bytes);
      }
      out += '}';
      return;
    }
    case Type::kTag:
      out += std::to_string(v.tag());
      out += '(';
      AppendDiagnostic(out, v.tagged(), max_bytes);
      out += ')';
      return;
    case Type::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Type::kNull:
      out += "null";
      return;
    case Type::kUndefined:
      out += "undefined";
      return;
    case Type::kSimple:
      out += "simple(" + std::to_string(v.as_simple()) + ")";
      return;
    case Type::kFloat:
      AppendDouble(out, v.as_double());
      return;
  }
}

}  // namespace

namespace internal {

bool BytewiseLess(const Bytes& a, const Bytes& b) {
  // A plain loop: GCC 12 -O3 misreads the bounds of std::vector's operator< (stringop-overread).
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) {
      return a[i] < b[i];
    }
  }
  return a.size() < b.size();
}

bool HasDuplicateKeys(const Value::Map& entries) {
  if (entries.size() < 2) {
    return false;
  }
  std::vector<Bytes> keys;
  keys.reserve(entries.size());
  for (const auto& entry : entries) {
    keys.push_back(Encode(entry.first, MapOrder::kDeterministic));
  }
  std::sort(keys.begin(), keys.end(), BytewiseLess);
  for (size_t i = 1; i < keys.size(); ++i) {
    if (!BytewiseLess(keys[i - 1], keys[i])) {
      return true;
    }
  }
  return false;
}

}  // namespace internal

Value::Value() = default;

Value Value::Uint(uint64_t v) {
  Value out;
  out.type_ = Type::kUnsigned;
  out.scalar_ = v;
  return out;
}

Value Value::NegInt(uint64_t n) {
  Value out;
  out.type_ = Type::kNegative;
  out.scalar_ = n;
  return out;
}

Value Value::Int(int64_t v) {
  if (v >= 0) {
    return Uint(static_cast<uint64_t>(v));
  }
  // -1 - v is in [0, INT64_MAX] for every negative v, so it cannot overflow.
  return NegInt(static_cast<uint64_t>(-1 - v));
}

Value Value::ByteString(ByteSpan b) { return ByteString(ToBytes(b)); }

Value Value::ByteString(Bytes&& b) {
  Value out;
  out.type_ = Type::kBytes;
  out.payload_ = std::move(b);
  return out;
}

Value Value::TextString(std::string_view s) {
  Value out;
  out.type_ = Type::kText;
  out.payload_ = std::string(s);
  return out;
}

Value Value::MakeArray(Array items) {
  Value out;
  out.type_ = Type::kArray;
  out.payload_ = std::move(items);
  return out;
}

Value Value::MakeMap(Map entries) {
  Value out;
  out.type_ = Type::kMap;
  out.payload_ = std::move(entries);
  return out;
}

Value Value::Tagged(uint64_t tag, Value item) {
  Value out;
  out.type_ = Type::kTag;
  out.scalar_ = tag;
  out.payload_ = std::make_shared<const Value>(std::move(item));
  return out;
}

Value Value::Boolean(bool b) {
  Value out;
  out.type_ = Type::kBool;
  out.scalar_ = b ? 1 : 0;
  return out;
}

Value Value::Null() { return {}; }

Value Value::Undefined() {
  Value out;
  out.type_ = Type::kUndefined;
  return out;
}

Value Value::Simple(uint8_t v) {
  // 20..23 have their own types; 24..31 are not valid simple values (RFC 8949 §3.3).
  switch (v) {
    case 20:
      return Boolean(false);
    case 21:
      return Boolean(true);
    case 22:
      return Null();
    case 23:
      return Undefined();
    default:
      break;
  }
  ENCLAVIA_CHECK(v < 24 || v > 31);
  Value out;
  out.type_ = Type::kSimple;
  out.scalar_ = v;
  return out;
}

Value Value::Double(double d) {
  Value out;
  out.type_ = Type::kFloat;
  out.scalar_ = std::isnan(d) ? kCanonicalNanBits : std::bit_cast<uint64_t>(d);
  return out;
}

uint64_t Value::as_uint() const {
  ENCLAVIA_CHECK(is_integer());
  return scalar_;
}

const Bytes& Value::as_bytes() const {
  ENCLAVIA_CHECK(type_ == Type::kBytes);
  return std::get<Bytes>(payload_);
}

const std::string& Value::as_text() const {
  ENCLAVIA_CHECK(type_ == Type::kText);
  return std::get<std::string>(payload_);
}

const Value::Array& Value::as_array() const {
  ENCLAVIA_CHECK(type_ == Type::kArray);
  return std::get<Array>(payload_);
}

const Value::Map& Value::as_map() const {
  ENCLAVIA_CHECK(type_ == Type::kMap);
  return std::get<Map>(payload_);
}

uint64_t Value::tag() const {
  ENCLAVIA_CHECK(type_ == Type::kTag);
  return scalar_;
}

const Value& Value::tagged() const {
  ENCLAVIA_CHECK(type_ == Type::kTag);
  return *std::get<std::shared_ptr<const Value>>(payload_);
}

bool Value::as_bool() const {
  ENCLAVIA_CHECK(type_ == Type::kBool);
  return scalar_ != 0;
}

uint8_t Value::as_simple() const {
  ENCLAVIA_CHECK(type_ == Type::kSimple);
  return static_cast<uint8_t>(scalar_);
}

double Value::as_double() const {
  ENCLAVIA_CHECK(type_ == Type::kFloat);
  return std::bit_cast<double>(scalar_);
}

Result<int64_t> Value::AsInt64() const {
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (type_ == Type::kUnsigned) {
    if (scalar_ > kMax) {
      return Error{Code::kMalformed, "cbor: integer out of int64 range"};
    }
    return static_cast<int64_t>(scalar_);
  }
  if (type_ == Type::kNegative) {
    if (scalar_ > kMax) {
      return Error{Code::kMalformed, "cbor: integer out of int64 range"};
    }
    return -1 - static_cast<int64_t>(scalar_);
  }
  return Error{Code::kMalformed, "cbor: not an integer"};
}

const Value* Value::Find(std::string_view key) const {
  if (type_ != Type::kMap) {
    return nullptr;
  }
  for (const auto& [k, v] : std::get<Map>(payload_)) {
    if (k.is_text() && k.as_text() == key) {
      return &v;
    }
  }
  return nullptr;
}

const Value* Value::Find(int64_t key) const {
  if (type_ != Type::kMap) {
    return nullptr;
  }
  const Value want = Int(key);
  for (const auto& [k, v] : std::get<Map>(payload_)) {
    if (k.type_ == want.type_ && k.scalar_ == want.scalar_) {
      return &v;
    }
  }
  return nullptr;
}

// NOLINTNEXTLINE(misc-no-recursion): bounded by the Value's nesting (max_depth when decoded).
bool Value::operator==(const Value& other) const {
  if (type_ != other.type_ || scalar_ != other.scalar_) {
    return false;
  }
  switch (type_) {
    case Type::kBytes:
      return as_bytes() == other.as_bytes();
    case Type::kText:
      return as_text() == other.as_text();
    case Type::kArray: {
      const Array& a = as_array();
      const Array& b = other.as_array();
      if (a.size() != b.size()) {
        return false;
      }
      for (size_t i = 0; i < a.size(); ++i) {
        if (!(a[i] == b[i])) {
          return false;
        }
      }
      return true;
    }
    case Type::kMap: {
      const Map& a = as_map();
      const Map& b = other.as_map();
      if (a.size() != b.size()) {
        return false;
      }
      for (size_t i = 0; i < a.size(); ++i) {
        if (!(a[i].first == b[i].first) || !(a[i].second == b[i].second)) {
          return false;
        }
      }
      return true;
    }
    case Type::kTag:
      return tagged() == other.tagged();
    default:
      // Every other type lives entirely in type_ and scalar_ (floats by bit pattern).
      return true;
  }
}

// NOLINTNEXTLINE(misc-no-recursion): bounded by the Value's nesting (max_depth when decoded).
Bytes Encode(const Value& value, MapOrder order) {
  Writer w;
  EncodeTo(w, value, order);
  return w.Finish();
}

std::string Diagnostic(const Value& value, size_t max_bytes) {
  std::string out;
  AppendDiagnostic(out, value, max_bytes);
  return out;
}

}  // namespace enclavia::cbor
