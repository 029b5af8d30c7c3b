// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EGRESS_DIAL_H_
#define ENCLAVIA_LIB_EGRESS_DIAL_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/egress/ip.h"
#include "lib/net/address.h"
#include "lib/sys/fd.h"

// The egress dial protocol (docs/formats/egress-dial.md): the enclave opens one stream to the
// parent's port transport::kEgressPort per outbound TCP connection, sends one request naming the
// destination, reads one response, and from then on the stream carries the connection's bytes
// both ways. The host learns the destination and nothing else the enclave decided.
//
//   request:  u8 version (1) | u8 family (4 or 6) | 4 or 16 bytes address | u16 port (big endian)
//   response: u8 version (1) | u8 status | u8 length | length bytes of UTF-8 message (no NUL)
namespace enclavia::egress {

inline constexpr uint8_t kDialVersion = 1;

enum class DialStatus : uint8_t {
  kConnected = 0,
  kRefusedByHost = 1,   // the host's own policy (a deny list, a limit)
  kConnectionRefused = 2,
  kUnreachable = 3,
  kTimedOut = 4,
  kMalformedRequest = 5,
  kFailed = 6,          // anything else; the message says what
};

std::string_view DialStatusName(DialStatus status);

struct DialResponse {
  DialStatus status = DialStatus::kFailed;
  std::string message;
};

Bytes EncodeDialRequest(const Endpoint& to);
Bytes EncodeDialResponse(const DialResponse& response);

// Decode*: incremental. Given the bytes received so far, returns nullopt when more are needed,
// the value and the number of bytes it used when complete, kMalformed when they cannot become a
// valid message (bad version, family, port 0, unknown status, non-UTF-8 message).
template <typename T>
struct Decoded {
  T value;
  size_t used = 0;
};
Result<std::optional<Decoded<Endpoint>>> DecodeDialRequest(ByteSpan bytes);
Result<std::optional<Decoded<DialResponse>>> DecodeDialResponse(ByteSpan bytes);

// Dial connects to `dialer` (the parent's egress port), asks for `to`, and waits up to `timeout`
// for the answer. Blocking; for the resolver's upstream connections. The returned descriptor is
// a connected stream to `to`. A refusal is kUnavailable with the host's status and message.
Result<sys::UniqueFd> Dial(const net::Address& dialer, const Endpoint& to,
                           std::chrono::milliseconds timeout);

}  // namespace enclavia::egress

#endif  // ENCLAVIA_LIB_EGRESS_DIAL_H_
