// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BASE_ENCODING_H_
#define ENCLAVIA_LIB_BASE_ENCODING_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

namespace enclavia {

// HexEncode renders lowercase hex.
// HexDigitValue is the value of one hex digit (either case), or -1.
int HexDigitValue(char c);

std::string HexEncode(ByteSpan data);
// HexDecode accepts upper- or lowercase hex of even length; anything else is kMalformed.
Result<Bytes> HexDecode(std::string_view hex);

// Base64Encode renders standard base64 (RFC 4648 §4) with padding.
std::string Base64Encode(ByteSpan data);
// Base64Decode accepts standard or URL-safe base64, with or without padding, ignoring ASCII
// whitespace (line breaks in files). Non-canonical trailing bits and bad padding are kMalformed.
Result<Bytes> Base64Decode(std::string_view text);

using SystemTime = std::chrono::system_clock::time_point;

// ParseRfc3339 parses "2022-10-13T08:58:02Z" or with fractional seconds and/or a numeric offset
// ("…+02:00"). Returns kInvalidArgument on anything else.
Result<SystemTime> ParseRfc3339(std::string_view text);
// FormatRfc3339 renders UTC with millisecond precision: "2022-10-13T08:58:02.136Z".
std::string FormatRfc3339(SystemTime t);
// FromUnixMillis converts milliseconds since the epoch to a time point.
inline SystemTime FromUnixMillis(uint64_t ms) {
  return SystemTime(std::chrono::milliseconds(static_cast<int64_t>(ms)));
}
inline int64_t ToUnixMillis(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace enclavia

#endif  // ENCLAVIA_LIB_BASE_ENCODING_H_
