// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_EGRESS_NIC_H_
#define ENCLAVIA_ENCLAVE_EGRESS_NIC_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/egress/ip.h"
#include "lib/egress/policy.h"
#include "lib/net/address.h"

// The enclave's emulated NIC (docs/egress.md, "The emulated NIC"): a TUN device is the default
// route of the enclave's network namespace (tun.h), and lwIP, a user-space TCP/IP stack,
// terminates every TCP connection the app opens through it. The first SYN of each connection
// goes to `decide`; a denied destination gets a reset at once; an allowed one becomes a dial
// stream to the host (lib/egress/dial.h), and only when the host has connected does lwIP answer
// the SYN, so a destination that refuses gives the app a reset too. Then the NIC splices bytes
// between the lwIP connection and the dial stream, with backpressure and half-close both ways.
// UDP and every other protocol through the device are dropped (counted, logged at most once a
// second); ICMP echo is not answered (no "reachable" signal for destinations nobody checked).
namespace enclavia::enclave {

struct NicOptions {
  std::string interface = "tun0";
  // decide runs on the NIC's thread for every new TCP connection (the first SYN).
  std::function<egress::Verdict(const egress::Endpoint& destination)> decide;
  net::Address dialer;  // the host's egress port (parent vsock port 5004)
  size_t max_connections = 1024;
  // The device's MTU (tun.h kTunMtu: 65535). 1280..65535; 1500 gives a fraction of the
  // throughput (docs/egress.md).
  uint32_t mtu = 65535;
  // How long the host may take to answer a dial request before the app gets a reset.
  uint32_t dial_timeout_ms = 30000;
  std::function<void(std::string_view line)> log;
};

// NicStats counts since Start. Packet counts are IP packets through the TUN device.
struct NicStats {
  uint64_t connections_allowed = 0;   // decide said yes
  uint64_t connections_denied = 0;    // decide said no: reset at once
  uint64_t connections_failed = 0;    // allowed, but the host did not connect (or timed out)
  uint64_t connections_over_limit = 0;  // reset because max_connections were open
  uint64_t connections_open = 0;      // flows now open or dialing
  uint64_t udp_dropped = 0;           // UDP packets dropped
  uint64_t other_dropped = 0;         // non-TCP, non-UDP or malformed packets dropped
  uint64_t packets_in = 0;            // read from the device
  uint64_t packets_out = 0;           // written to the device
};

// Nic runs the NIC on its own thread. lwIP keeps global state, so at most one Nic runs in a
// process at a time. Stats are thread-safe; Stop is not (call it from one thread).
class Nic {
 public:
  // Start creates and configures the TUN device `options.interface` in the calling thread's
  // network namespace (tun.h: addresses, MTU, default routes) and starts the NIC's thread. kIo
  // naming the step when the device cannot be set up; kFailedPrecondition when another Nic runs
  // in this process; kInvalidArgument without a decide callback.
  static Result<std::unique_ptr<Nic>> Start(NicOptions options);

  ~Nic();
  Nic(const Nic&) = delete;
  Nic& operator=(const Nic&) = delete;

  // Stop resets every open connection, closes every dial stream, removes the device and joins
  // the thread. Idempotent; the destructor calls it.
  void Stop();

  NicStats stats() const;

  class Impl;

 private:
  explicit Nic(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// PacketKind classifies one IP packet read from the device.
enum class PacketKind { kTcp, kUdp, kOther };

// ParsedPacket is what the NIC reads of a packet before lwIP sees it.
struct ParsedPacket {
  PacketKind kind = PacketKind::kOther;
  egress::Endpoint source;       // ports are 0 unless TCP or UDP
  egress::Endpoint destination;
  uint8_t tcp_flags = 0;         // TCP only: kTcpSyn, kTcpAck, ...
  uint32_t tcp_seq = 0;          // TCP only
};

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;

// ParsePacket reads the IPv4 or IPv6 header (IPv6 extension headers are followed, at most 8)
// and, for TCP and UDP, the ports (and TCP's flags and sequence number). Bounded: never reads
// past `packet`. kMalformed for a packet that is not a well-formed IP packet (bad version,
// lengths beyond the buffer, a truncated TCP or UDP header). IPv4 fragments and IPv6 fragment
// headers give kOther: the NIC does not reassemble. Trailing bytes past the IP length are ignored.
Result<ParsedPacket> ParsePacket(ByteSpan packet);

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_EGRESS_NIC_H_
