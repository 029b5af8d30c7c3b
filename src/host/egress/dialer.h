// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_EGRESS_DIALER_H_
#define ENCLAVIA_HOST_EGRESS_DIALER_H_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "lib/base/result.h"
#include "lib/egress/dial.h"
#include "lib/egress/ip.h"
#include "lib/net/address.h"
#include "lib/sys/fd.h"

// EgressDialer is the host's side of the egress dial protocol (lib/egress/dial.h,
// docs/formats/egress-dial.md) for one enclave: it listens on the enclave's parent port
// transport::kEgressPort and, for each connection, reads one dial request, checks the host's own
// deny list and connection limit, connects to exactly the requested IP:port (no names, no
// redirection) and then copies bytes both ways until both sides have closed. The enclave decides
// what it may reach (its measured firewall); the host only protects itself (its loopback, its
// instance metadata) and its resources. The dialer sees destinations, byte counts and timing,
// never the payload's meaning: it logs no payload bytes.
namespace enclavia::host {

// IpPrefix is a CIDR block: `network` with its host bits zero and `length` 0..32 or 0..128.
struct IpPrefix {
  egress::IpAddress network;
  uint8_t length = 0;

  // Contains: whether `ip` (of the same family) falls in the block.
  bool Contains(const egress::IpAddress& ip) const;
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

// ParseIpPrefix reads "127.0.0.0/8", "fe80::/10" or a bare address (a /32 or /128).
// kInvalidArgument naming the text for a bad address, a length over the family's, or host bits
// that are set.
Result<IpPrefix> ParseIpPrefix(std::string_view text);

// FormatIpPrefix gives "127.0.0.0/8".
std::string FormatIpPrefix(const IpPrefix& prefix);

// DefaultDenyList is what a host keeps enclaves away from unless its operator says otherwise:
// its own and special addresses — 127.0.0.0/8, 0.0.0.0/8, 169.254.0.0/16 (instance metadata),
// 224.0.0.0/4, ::1/128, ::/128, fe80::/10, ff00::/8 and ::ffff:0:0/96 (IPv4-mapped addresses,
// which would otherwise reach the IPv4 ones above).
std::vector<IpPrefix> DefaultDenyList();

struct EgressDialerOptions {
  // max_connections bounds the connections served at once (from accept to close, dialing
  // included); over it a connection is answered kRefusedByHost "connection limit" and closed.
  size_t max_connections = 64;
  // request_timeout: the enclave must send its whole request within this time after connecting.
  std::chrono::milliseconds request_timeout{5000};
  // connect_timeout: the destination must accept within this time (else kTimedOut).
  std::chrono::milliseconds connect_timeout{10000};
  // idle_timeout: a connection that moves no byte either way for this long is closed (0: never).
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  // deny: destinations refused (kRefusedByHost) without any connect. Clear it to reach loopback
  // (tests, single-machine demos).
  std::vector<IpPrefix> deny = DefaultDenyList();
};

// EgressConnectionLog is what the dialer reports for each connection once it is closed: one
// log line's worth, never payload bytes.
struct EgressConnectionLog {
  std::optional<egress::Endpoint> destination;  // nullopt when no valid request arrived
  egress::DialStatus status = egress::DialStatus::kFailed;
  std::string message;  // the response's message ("" for kConnected)
  std::string ended;    // "closed", "idle", "stopped", "error", or "" when never connected
  uint64_t bytes_up = 0;    // enclave → destination
  uint64_t bytes_down = 0;  // destination → enclave
  std::chrono::milliseconds duration{0};
};

// EgressStats are counters since Start (monotonic except `active`).
struct EgressStats {
  uint64_t connections = 0;  // accepted from the enclave
  uint64_t active = 0;       // being served now
  uint64_t refused = 0;      // answered kRefusedByHost (deny list, limit)
  uint64_t failed = 0;       // any other answer but kConnected (incl. malformed requests)
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
  // by_status counts answers by DialStatus (index = the status's value); connections closed
  // before any answer (EOF or timeout while reading the request, Stop) are not in it.
  std::array<uint64_t, 7> by_status{};
};

class EgressDialer {
 public:
  using LogSink = std::function<void(const EgressConnectionLog&)>;

  // Start listens on `listen` (for an enclave: transport::HostListenForEnclave(endpoint,
  // transport::kEgressPort); a stale Unix socket there is replaced) and serves in background
  // threads, one per connection. `log`, if set, is called once per connection from that
  // connection's thread; it must be thread-safe and must not call back into the dialer.
  // kInvalidArgument for bad options, kIo on a listen failure.
  static Result<std::unique_ptr<EgressDialer>> Start(const net::Address& listen,
                                                     EgressDialerOptions options,
                                                     LogSink log = nullptr);
  // The destructor calls Stop().
  ~EgressDialer();
  EgressDialer(const EgressDialer&) = delete;
  EgressDialer& operator=(const EgressDialer&) = delete;

  // Stop closes the listener (removing its Unix socket file) and every connection, both sides,
  // and waits for their threads. Idempotent; blocks briefly.
  void Stop();

  const net::Address& address() const { return address_; }
  // stats returns the counters. Thread-safe.
  EgressStats stats() const;

 private:
  EgressDialer(net::Address address, EgressDialerOptions options, LogSink log);
  void AcceptLoop();
  void RefuseAtOnce(sys::UniqueFd conn);
  void Serve(sys::UniqueFd conn);
  void Count(egress::DialStatus status);

  net::Address address_;
  EgressDialerOptions options_;
  LogSink log_;
  sys::UniqueFd listener_;
  sys::UniqueFd wake_;  // An eventfd: once written, every poll() of every thread returns.
  std::thread acceptor_;

  std::mutex mu_;
  std::condition_variable idle_;
  bool stopping_ = false;  // Guarded by mu_.
  size_t running_ = 0;     // Connection threads alive; guarded by mu_.

  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> active_{0};
  std::atomic<uint64_t> bytes_up_{0};
  std::atomic<uint64_t> bytes_down_{0};
  std::array<std::atomic<uint64_t>, 7> by_status_{};
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_EGRESS_DIALER_H_
