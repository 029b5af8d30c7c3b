// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_ATTESTATION_NSM_SOCKET_H_
#define ENCLAVIA_LIB_ATTESTATION_NSM_SOCKET_H_

#include <memory>
#include <string>

#include "lib/attestation/nsm.h"
#include "lib/base/result.h"

// The local provider's /dev/nsm: a Unix stream socket, served by the NSM simulator outside the
// sandbox (as the hypervisor serves the real device). It carries exactly the bytes the real
// driver carries: one request = u32 big-endian length (≤ kNsmSocketMaxRequest) + the CBOR request
// (EncodeRequest); one response = u32 big-endian length (≤ kNsmSocketMaxResponse) + the CBOR
// response (EncodeResponse). Requests are answered in order, one at a time. docs/formats/nsm-socket.md.
namespace enclavia::attestation {

inline constexpr uint32_t kNsmSocketMaxRequest = 0x1000;    // The driver's request buffer.
inline constexpr uint32_t kNsmSocketMaxResponse = 0x3000;   // The driver's response buffer.
inline constexpr std::string_view kNsmDevicePath = "/dev/nsm";

// SocketNsm is the Nsm at the end of such a socket. Each call sends one request and reads one
// response (the module's Error variant becomes an error naming it, as DeviceNsm does). Not
// thread-safe; one caller at a time.
std::unique_ptr<Nsm> SocketNsmFromFd(int connected_fd);  // Takes ownership.
Result<std::unique_ptr<Nsm>> ConnectSocketNsm(const std::string& path);

// OpenNsm opens the NSM at `path`: a character device → DeviceNsm (the real driver's ioctl), a
// Unix socket → SocketNsm. Anything else: kFailedPrecondition naming the path.
Result<std::unique_ptr<Nsm>> OpenNsm(const std::string& path = std::string(kNsmDevicePath));

}  // namespace enclavia::attestation

#endif  // ENCLAVIA_LIB_ATTESTATION_NSM_SOCKET_H_
