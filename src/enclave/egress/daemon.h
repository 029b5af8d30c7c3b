// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_EGRESS_DAEMON_H_
#define ENCLAVIA_ENCLAVE_EGRESS_DAEMON_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"
#include "lib/net/address.h"

// enclavia-egress, the enclave's egress daemon (docs/egress.md). enclavia-init starts it, as
// root and before the application, when the measured configuration says [egress] enabled = true:
//   1. builds the firewall from the policy and, unless dnssec = "off" (said loudly), the
//      validator from the trust anchor baked into the image;
//   2. creates tun0 as the default route (the emulated NIC) and runs lwIP on it: every new TCP
//      connection is decided by the firewall; allowed ones become dial streams to the host's
//      egress port (5004), denied ones get a reset at once; UDP is dropped;
//   3. serves DNS on 127.0.0.53 (UDP and TCP) and points /etc/resolv.conf at it: names the policy
//      does not allow are REFUSED locally; allowed ones are resolved and validated, and their
//      validated addresses open the firewall for their TTL;
//   4. reports "ready tun0 ..." on its ready descriptor (or "none" when egress is off, or
//      "error MESSAGE"), logs every decision on stderr (the console, in debug mode only);
//   5. on SIGTERM or SIGINT stops and exits 0.
namespace enclavia::enclave {

struct EgressFlags {
  std::string config_path = "/etc/enclavia/enclave.toml";
  int ready_fd = -1;
  std::optional<net::Address> dialer;  // default: the parent's vsock port 5004
  std::string resolv_conf = "/etc/resolv.conf";
  std::string trust_anchor;  // default: config::kTrustAnchorPath in the root
  bool help = false;
};

inline constexpr std::string_view kEgressUsage =
    "usage: enclavia-egress [--config PATH] [--ready-fd N] [--dialer ADDR]\n"
    "                       [--resolv-conf PATH] [--trust-anchor PATH]\n"
    "The enclave's egress daemon: emulated NIC, firewall and DNSSEC-validating resolver\n"
    "(started by enclavia-init for [egress] enabled = true).\n"
    "  --config PATH        enclave configuration (default /etc/enclavia/enclave.toml)\n"
    "  --ready-fd N         where to write \"ready ...\", \"none\" or \"error MESSAGE\"\n"
    "  --dialer ADDR        the host's egress dialer (default: the parent's vsock port 5004)\n"
    "  --resolv-conf PATH   written to name the internal resolver (default /etc/resolv.conf)\n"
    "  --trust-anchor PATH  DNSSEC trust anchor (default /etc/enclavia/egress/trust-anchor)\n";

Result<EgressFlags> ParseEgressFlags(const std::vector<std::string>& args);

// RunEgress is the daemon after flag parsing; returns the exit code.
int RunEgress(const EgressFlags& flags);

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_EGRESS_DAEMON_H_
