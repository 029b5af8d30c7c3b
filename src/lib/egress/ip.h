// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EGRESS_IP_H_
#define ENCLAVIA_LIB_EGRESS_IP_H_

#include <array>
#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "lib/base/result.h"

// IP addresses and endpoints as egress sees them: values, comparable, no sockets inside.
namespace enclavia::egress {

enum class IpFamily : uint8_t { kV4 = 4, kV6 = 6 };

// IpAddress is an IPv4 or IPv6 address in network byte order. An IPv4 address uses the first 4
// bytes; the other 12 are zero, so equal addresses compare equal.
struct IpAddress {
  IpFamily family = IpFamily::kV4;
  std::array<uint8_t, 16> bytes{};

  // size is 4 or 16; view is the address's bytes.
  size_t size() const { return family == IpFamily::kV4 ? 4 : 16; }
  std::span<const uint8_t> view() const { return {bytes.data(), size()}; }

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

// V4 builds an IPv4 address from its four octets.
IpAddress V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);

// FromBytes builds an address from 4 or 16 network-order bytes; kMalformed for other sizes.
Result<IpAddress> FromBytes(std::span<const uint8_t> bytes);

// ParseIp reads "203.0.113.7" or "2001:db8::1" (no brackets, no zone, no port). An IPv4-mapped
// IPv6 address stays IPv6. kInvalidArgument naming the text otherwise.
Result<IpAddress> ParseIp(std::string_view text);

// FormatIp gives the canonical text (inet_ntop's).
std::string FormatIp(const IpAddress& ip);

// Endpoint is an address and a TCP or UDP port.
struct Endpoint {
  IpAddress ip;
  uint16_t port = 0;

  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
};

// FormatEndpoint gives "203.0.113.7:443" or "[2001:db8::1]:443".
std::string FormatEndpoint(const Endpoint& endpoint);

}  // namespace enclavia::egress

#endif  // ENCLAVIA_LIB_EGRESS_IP_H_
