// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_NET_ADDRESS_H_
#define ENCLAVIA_LIB_NET_ADDRESS_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/result.h"

// Addresses of stream transports, one syntax for all three kinds the platform uses:
//   unix:/path/to/socket     local provider (vsock port P of an enclave = <dir>/vsock/P.sock)
//   tcp:HOST:PORT            HOST is an IPv4 literal, [IPv6] literal or "localhost"
//   vsock:CID:PORT           AF_VSOCK (production Nitro); CID 3 = parent, 16+ = enclaves
// Each resolves to a sockaddr, so one Asio generic stream socket type serves them all.
namespace enclavia::net {

enum class Family { kUnix, kTcp, kVsock };

struct Address {
  Family family = Family::kTcp;
  std::string host;  // tcp: the literal; unix: the path.
  uint32_t cid = 0;  // vsock only.
  uint32_t port = 0; // tcp (≤ 65535) and vsock.

  // ToString gives back the canonical text form.
  std::string ToString() const;
};

// ParseAddress parses the forms above; kInvalidArgument with a one-line reason otherwise.
// A bare "HOST:PORT" is taken as tcp.
Result<Address> ParseAddress(std::string_view text);

// SocketAddress is a resolved address ready for socket()/bind()/connect().
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t size = 0;
  int family() const { return storage.ss_family; }
};

// Resolve converts an Address (no DNS: literals and "localhost" only). kInvalidArgument for a
// path longer than sun_path.
Result<SocketAddress> Resolve(const Address& address);

}  // namespace enclavia::net

#endif  // ENCLAVIA_LIB_NET_ADDRESS_H_
