// SPDX-License-Identifier: Apache-2.0
#include "lib/egress/ip.h"

#include <arpa/inet.h>

#include <algorithm>

namespace enclavia::egress {

IpAddress V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddress ip;
  ip.family = IpFamily::kV4;
  ip.bytes[0] = a;
  ip.bytes[1] = b;
  ip.bytes[2] = c;
  ip.bytes[3] = d;
  return ip;
}

Result<IpAddress> FromBytes(std::span<const uint8_t> bytes) {
  IpAddress ip;
  if (bytes.size() == 4) {
    ip.family = IpFamily::kV4;
  } else if (bytes.size() == 16) {
    ip.family = IpFamily::kV6;
  } else {
    return Error(Code::kMalformed, "an IP address has 4 or 16 bytes, not " +
                                       std::to_string(bytes.size()));
  }
  std::copy(bytes.begin(), bytes.end(), ip.bytes.begin());
  return ip;
}

Result<IpAddress> ParseIp(std::string_view text) {
  // inet_pton wants a NUL-terminated string; addresses are short.
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) {
    return Error(Code::kInvalidArgument, std::string("not an IP address: \"") + std::string(text) + "\"");
  }
  std::string copy(text);
  IpAddress ip;
  if (inet_pton(AF_INET, copy.c_str(), ip.bytes.data()) == 1) {
    ip.family = IpFamily::kV4;
    return ip;
  }
  if (inet_pton(AF_INET6, copy.c_str(), ip.bytes.data()) == 1) {
    ip.family = IpFamily::kV6;
    return ip;
  }
  return Error(Code::kInvalidArgument, std::string("not an IP address: \"") + copy + "\"");
}

std::string FormatIp(const IpAddress& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(ip.family == IpFamily::kV4 ? AF_INET : AF_INET6, ip.bytes.data(), buf, sizeof(buf));
  return std::string(buf);
}

std::string FormatEndpoint(const Endpoint& endpoint) {
  std::string out;
  if (endpoint.ip.family == IpFamily::kV6) {
    out.append("[").append(FormatIp(endpoint.ip)).append("]");
  } else {
    out.append(FormatIp(endpoint.ip));
  }
  out.append(":").append(std::to_string(endpoint.port));
  return out;
}

}  // namespace enclavia::egress
