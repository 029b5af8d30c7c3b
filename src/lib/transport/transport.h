// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_TRANSPORT_TRANSPORT_H_
#define ENCLAVIA_LIB_TRANSPORT_TRANSPORT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/result.h"
#include "lib/net/address.h"

// Where an enclave's vsock ports are. On Nitro, port P of the enclave with context id CID is
// AF_VSOCK (CID, P). The local provider has no vsock: port P of an enclave is the Unix socket
// <vsock-dir>/<P>.sock (the mapping Firecracker uses), where <vsock-dir> is
// <enclave-dir>/vsock on the host and kLocalVsockDir inside the sandbox (a bind mount of it).
// Ports the enclave connects to on the parent (CID 3) are <vsock-dir>/parent-<P>.sock.
// Everything above this header sees only net::Address values.
namespace enclavia::transport {

// The enclave's well-known ports.
inline constexpr uint32_t kIngressPort = 5000;      // Noise channels (src/enclave/ingress).
inline constexpr uint32_t kAttestationPort = 5001;  // Public documents for any nonce.

// The parent's ports the enclave dials (docs/storage.md).
inline constexpr uint32_t kStoragePort = 5002;  // The host's storage service (volume objects).
inline constexpr uint32_t kKmsPort = 5003;      // KMS (locally: the sandbox's KMS simulator).
inline constexpr uint32_t kEgressPort = 5004;   // The host's egress dialer (docs/egress.md).
// Witness i (0-based) of a volume is reached through the parent's port kWitnessPortBase + i; the
// host pipes it to that witness enclave's public WebSocket port.
inline constexpr uint32_t kWitnessPortBase = 5100;
inline constexpr uint32_t kMaxWitnesses = 7;

inline constexpr uint32_t kParentCid = 3;
inline constexpr uint32_t kAnyCid = 0xFFFFFFFF;  // VMADDR_CID_ANY.

// kLocalVsockDir is where a local sandbox sees its vsock directory.
inline constexpr std::string_view kLocalVsockDir = "/run/enclavia/vsock";
// kLocalBlockDir is where a local sandbox sees <enclave-dir>/blk: the enclave's NBD server listens
// on nbd.sock there, and control.sock asks the sandbox (playing the enclave kernel's NBD client)
// to attach it as /dev/nbd0 (docs/storage.md, "The block device").
inline constexpr std::string_view kLocalBlockDir = "/run/enclavia/blk";

// Endpoint names one enclave's vsock ports from the host's side: its CID (Nitro) or its vsock
// directory (local provider). Exactly one of the two is set.
struct Endpoint {
  uint32_t cid = 0;
  std::string local_dir;
};

// Inside the enclave: how ports are reached.
enum class Mode {
  kVsock,  // AF_VSOCK (a Nitro enclave).
  kLocal,  // The local provider's Unix-socket mapping under kLocalVsockDir.
};

// DetectMode decides inside an enclave: kLocal when kLocalVsockDir is a directory, else kVsock
// when /dev/vsock exists, else kFailedPrecondition naming both.
Result<Mode> DetectMode();

// EnclaveListen is the address the enclave listens on for its port `port`.
net::Address EnclaveListen(Mode mode, uint32_t port);

// EnclaveToParent is the address the enclave dials for the parent's port `port`.
net::Address EnclaveToParent(Mode mode, uint32_t port);

// HostToEnclave is the address the host dials for the enclave's port `port`.
net::Address HostToEnclave(const Endpoint& endpoint, uint32_t port);

// HostListenForEnclave is the address the host listens on for connections the enclave makes to
// the parent's port `port` (vsock:ANY:port on Nitro; the parent-<P>.sock file locally).
net::Address HostListenForEnclave(const Endpoint& endpoint, uint32_t port);

}  // namespace enclavia::transport

#endif  // ENCLAVIA_LIB_TRANSPORT_TRANSPORT_H_
