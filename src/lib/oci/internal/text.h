// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_OCI_INTERNAL_TEXT_H_
#define ENCLAVIA_LIB_OCI_INTERNAL_TEXT_H_

#include <string>
#include <string_view>

namespace enclavia::oci::internal {

// Quote renders an untrusted name for an error message: in double quotes, bytes outside
// printable ASCII (and '"', '\\') as \xNN, truncated to 256 input bytes with "...".
inline std::string Quote(std::string_view name) {
  constexpr size_t kMax = 256;
  std::string out = "\"";
  for (size_t i = 0; i < name.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      constexpr std::string_view kHex = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (name.size() > kMax) {
    out += "...";
  }
  out.push_back('"');
  return out;
}

}  // namespace enclavia::oci::internal

#endif  // ENCLAVIA_LIB_OCI_INTERNAL_TEXT_H_
