// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_NET_FRAMING_H_
#define ENCLAVIA_LIB_NET_FRAMING_H_

#include <cstddef>
#include <cstdint>

// The relay ↔ enclave stream (vsock, or a Unix socket locally) carries the client's WebSocket
// binary messages one for one, each as a record: length u16 BE, then that many bytes (Noise's
// own recommendation for stream transports, §13). The relay frames and unframes; it never looks
// inside a record. One transport connection = one client channel.
namespace enclavia::net {

inline constexpr size_t kRecordHeaderSize = 2;
inline constexpr size_t kMaxRecordSize = 65535;

}  // namespace enclavia::net

#endif  // ENCLAVIA_LIB_NET_FRAMING_H_
