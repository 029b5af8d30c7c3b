// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_EGRESS_TUN_H_
#define ENCLAVIA_ENCLAVE_EGRESS_TUN_H_

#include <cstdint>
#include <string>

#include "lib/base/result.h"
#include "lib/sys/fd.h"

// The enclave's TUN device: created and configured in the calling thread's network namespace,
// without the `ip` binary (ioctls for the link, rtnetlink for addresses and routes).
//
//   app side (the kernel's tun0)   10.0.2.15/24       fd00:e9c1::15/64 (no DAD)
//   NIC side (lwIP's gateway)      10.0.2.2           fd00:e9c1::2
//   routes                          0.0.0.0/0 dev tun0  ::/0 dev tun0
namespace enclavia::enclave {

// kTunMtu is the MTU of the TUN device: the largest IP packet, so the kernel hands lwIP ~64 KiB
// TCP segments (one read, one lwIP input per 64 KiB; docs/egress.md has the measurements).
inline constexpr uint32_t kTunMtu = 65535;

struct TunOptions {
  std::string name = "tun0";
  uint32_t mtu = kTunMtu;
};

// OpenTun creates the TUN device `options.name` (IFF_TUN | IFF_NO_PI: each read or write is one
// IPv4 or IPv6 packet) and returns its descriptor, nonblocking and close-on-exec. The device
// lives as long as the descriptor. kIo naming the step on failure (no CAP_NET_ADMIN, no
// /dev/net/tun, the name taken).
Result<sys::UniqueFd> OpenTun(const TunOptions& options);

// ConfigureTun sets the device's MTU, brings it up, assigns the app-side addresses above (the
// IPv6 one with IFA_F_NODAD, usable at once) and installs both default routes through it.
// kIo naming the step on failure. Not idempotent: addresses and routes that exist fail.
Result<void> ConfigureTun(const TunOptions& options);

// BringLoopbackUp sets `lo` up in the current network namespace (a fresh namespace has it down).
Result<void> BringLoopbackUp();

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_EGRESS_TUN_H_
