// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BASE_BYTES_H_
#define ENCLAVIA_LIB_BASE_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace enclavia {

// Bytes owns a byte string; ByteSpan views one. Functions take ByteSpan and return Bytes.
using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

// AsBytes views the characters of `s` as bytes (no copy; `s` must outlive the span).
inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// ToBytes copies the characters of `s`.
inline Bytes ToBytes(std::string_view s) {
  ByteSpan b = AsBytes(s);
  return {b.begin(), b.end()};
}

// ToBytes copies a span.
inline Bytes ToBytes(ByteSpan s) { return {s.begin(), s.end()}; }

// AsString views bytes as characters (no copy).
inline std::string_view AsString(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Concat returns the concatenation of `parts`.
Bytes Concat(std::initializer_list<ByteSpan> parts);

// CheckedAdd returns a + b, or nullopt on overflow. Length arithmetic on untrusted sizes uses it.
template <typename T>
std::optional<T> CheckedAdd(T a, T b) {
  T out;
  if (__builtin_add_overflow(a, b, &out)) {
    return std::nullopt;
  }
  return out;
}

// CheckedMul returns a * b, or nullopt on overflow.
template <typename T>
std::optional<T> CheckedMul(T a, T b) {
  T out;
  if (__builtin_mul_overflow(a, b, &out)) {
    return std::nullopt;
  }
  return out;
}

}  // namespace enclavia

#endif  // ENCLAVIA_LIB_BASE_BYTES_H_
