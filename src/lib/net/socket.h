// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_NET_SOCKET_H_
#define ENCLAVIA_LIB_NET_SOCKET_H_

#include <sys/types.h>

#include "lib/base/result.h"
#include "lib/net/address.h"
#include "lib/sys/fd.h"

// Blocking stream sockets for the small thread-per-connection services (the storage, KMS and
// block-attach ports, witness links). The Asio daemons use net::Listen (listen.h) instead.
namespace enclavia::net {

// Connect opens a stream socket to `address` (unix, tcp or vsock), retrying EINTR.
// kUnavailable (naming the address) when nobody listens there.
Result<sys::UniqueFd> Connect(const Address& address);

// ListenOn binds and listens on `address`. A unix path is replaced if a stale socket is there,
// and gets `unix_mode` (e.g. 0600) before listen(), so no other user can ever connect.
Result<sys::UniqueFd> ListenOn(const Address& address, int backlog = 16, mode_t unix_mode = 0600);

}  // namespace enclavia::net

#endif  // ENCLAVIA_LIB_NET_SOCKET_H_
