// SPDX-License-Identifier: Apache-2.0
#include "lib/cbor/internal/head.h"

#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>

#include "lib/base/encoding.h"

namespace enclavia::cbor::internal {
namespace {

constexpr uint8_t kMajorUnsigned = 0;
constexpr uint8_t kMajorNegative = 1;
constexpr uint8_t kMajorBytes = 2;
constexpr uint8_t kMajorText = 3;
constexpr uint8_t kMajorArray = 4;
constexpr uint8_t kMajorMap = 5;
constexpr uint8_t kMajorTag = 6;
constexpr uint8_t kInfoIndefinite = 31;

Error Malformed(std::string_view message) {
  return {Code::kMalformed, "cbor: " + std::string(message)};
}

std::string HexByte(uint8_t b) { return "0x" + HexEncode(ByteSpan(&b, 1)); }

// HalfToDouble widens an IEEE 754 binary16 exactly: every half is a double.
double HalfToDouble(uint16_t half) {
  const int exponent = (half >> 10) & 0x1f;
  const int mantissa = half & 0x3ff;
  double magnitude = 0;
  if (exponent == 0) {
    magnitude = std::ldexp(mantissa, -24);  // Zero or subnormal.
  } else if (exponent != 31) {
    magnitude = std::ldexp(mantissa + 1024, exponent - 25);
  } else if (mantissa == 0) {
    magnitude = std::numeric_limits<double>::infinity();
  } else {
    // NaN: keep the payload in the top mantissa bits, as a hardware widening would.
    magnitude = std::bit_cast<double>(0x7ff0000000000000ULL | (uint64_t{static_cast<uint16_t>(mantissa)} << 42));
  }
  return (half & 0x8000) != 0 ? -magnitude : magnitude;
}

}  // namespace

bool Head::IsShortest() const {
  if (major() == 7) {
    return true;  // Float widths are not argument lengths; 0xf8 below 32 is refused anyway.
  }
  switch (arg_bytes) {
    case 0:
      return true;
    case 1:
      return arg >= 24;
    case 2:
      return arg > 0xff;
    case 4:
      return arg > 0xffff;
    default:
      return arg > 0xffffffff;
  }
}

Result<Head> ReadHead(ByteSpan data) {
  if (data.empty()) {
    return Malformed("truncated");
  }
  Head h;
  h.initial = data[0];
  const uint8_t major = h.major();
  const uint8_t info = h.info();
  // RFC 8949 §3: additional information 28..30 is reserved in every major type.
  if (info >= 28 && info <= 30) {
    return Malformed("reserved additional information in " + HexByte(h.initial));
  }
  if (info == kInfoIndefinite) {
    h.size = 1;
    switch (major) {
      case kMajorBytes:
        h.kind = Head::Kind::kBytesStart;
        return h;
      case kMajorText:
        h.kind = Head::Kind::kTextStart;
        return h;
      case kMajorArray:
        h.kind = Head::Kind::kIndefiniteArray;
        return h;
      case kMajorMap:
        h.kind = Head::Kind::kIndefiniteMap;
        return h;
      case 7:
        h.kind = Head::Kind::kBreak;
        return h;
      default:
        return Malformed("indefinite length not allowed in " + HexByte(h.initial));
    }
  }
  // The argument: the additional information itself, or the next 1, 2, 4 or 8 bytes.
  if (info >= 24) {
    h.arg_bytes = static_cast<uint8_t>(1U << (info - 24));
    if (data.size() - 1 < h.arg_bytes) {
      return Malformed("truncated");
    }
    for (size_t i = 1; i <= h.arg_bytes; ++i) {
      h.arg = (h.arg << 8) | data[i];
    }
  } else {
    h.arg = info;
  }
  h.size = 1 + size_t{h.arg_bytes};

  switch (major) {
    case kMajorUnsigned:
      h.kind = Head::Kind::kUnsigned;
      return h;
    case kMajorNegative:
      h.kind = Head::Kind::kNegative;
      return h;
    case kMajorBytes:
    case kMajorText: {
      // Compare without adding: the declared length may be near 2^64.
      if (h.arg > data.size() - h.size) {
        return Malformed("truncated");
      }
      const auto length = static_cast<size_t>(h.arg);
      h.kind = major == kMajorBytes ? Head::Kind::kBytes : Head::Kind::kText;
      h.data = data.subspan(h.size, length);
      h.size += length;
      return h;
    }
    case kMajorArray:
      h.kind = Head::Kind::kArray;
      return h;
    case kMajorMap:
      h.kind = Head::Kind::kMap;
      return h;
    case kMajorTag:
      h.kind = Head::Kind::kTag;
      return h;
    default:
      break;
  }

  // Major type 7: simple values and floats.
  switch (info) {
    case 20:
    case 21:
      h.kind = Head::Kind::kBool;
      h.arg = info - 20U;
      return h;
    case 22:
      h.kind = Head::Kind::kNull;
      return h;
    case 23:
      h.kind = Head::Kind::kUndefined;
      return h;
    case 24:
      // RFC 8949 §3.3: simple values below 32 must use the one-byte form.
      if (h.arg < 32) {
        return Malformed("two-byte simple value " + std::to_string(h.arg) + " below 32");
      }
      h.kind = Head::Kind::kSimple;
      return h;
    case 25:
      h.kind = Head::Kind::kFloat;
      h.number = HalfToDouble(static_cast<uint16_t>(h.arg));
      return h;
    case 26:
      h.kind = Head::Kind::kFloat;
      h.number = static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(h.arg)));
      return h;
    case 27:
      h.kind = Head::Kind::kFloat;
      h.number = std::bit_cast<double>(h.arg);
      return h;
    default:
      h.kind = Head::Kind::kSimple;  // 0..19.
      return h;
  }
}

}  // namespace enclavia::cbor::internal
