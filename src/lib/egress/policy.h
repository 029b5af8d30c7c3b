// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EGRESS_POLICY_H_
#define ENCLAVIA_LIB_EGRESS_POLICY_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"
#include "lib/egress/ip.h"

// The egress policy: the owner's allow list from the measured [egress] section of enclave.toml
// (docs/egress.md), and the firewall that applies it to each new outbound TCP connection.
namespace enclavia::egress {

// PortRange is an inclusive range; an entry without a port allows 1..65535.
struct PortRange {
  uint16_t first = 1;
  uint16_t last = 65535;
  bool Contains(uint16_t port) const { return port >= first && port <= last; }
};

// Rule is one parsed allow-list entry.
//   "203.0.113.7"  "198.51.100.0/24:443"  "[2001:db8::1]:443"  "2001:db8::/32"
//   "api.example.com:443"  "*.example.org:443-444"
// A wildcard "*.example.org" matches names strictly below example.org (a.example.org,
// a.b.example.org), not example.org itself.
struct Rule {
  enum class Kind { kAddress, kName, kWildcard };
  std::string entry;      // the entry as written, for logs and errors
  Kind kind = Kind::kAddress;
  IpAddress prefix;       // kAddress: the network (host bits zero)
  uint8_t prefix_length = 0;  // kAddress: 0..32 or 0..128
  std::string name;       // kName: the name; kWildcard: the suffix ("example.org"). Lowercase,
                          // no trailing dot.
  PortRange ports;
};

// ParseRule parses one entry; kInvalidArgument naming the entry and what is wrong (bad IP, prefix
// over the family's length, host bits set, port 0 or > 65535, reversed range, bad name label,
// a wildcard not in front, an empty entry).
Result<Rule> ParseRule(std::string_view entry);

enum class DnssecMode { kRequire, kOff };

// Policy is the whole [egress] section, parsed.
struct Policy {
  bool enabled = false;
  std::vector<IpAddress> resolvers;   // reached over TCP port 53 through the egress path
  DnssecMode dnssec = DnssecMode::kRequire;
  std::vector<Rule> allow;
};

// Verdict is the firewall's decision for one connection.
struct Verdict {
  bool allowed = false;
  std::string rule;  // the entry that allowed it ("" when denied)
  std::string name;  // for a name rule: the validated name that returned this IP
  std::string reason;  // when denied: one line ("no rule matches 192.0.2.1:80")
};

// The firewall's learned name→IP table is bounded: at most kMaxLearned (ip, name) pairs (the
// constructor may choose fewer), and at most kMaxNamesPerIp names per IP; TTLs above
// kMaxLearnedTtl are cut to it.
inline constexpr size_t kMaxLearned = 65536;
inline constexpr size_t kMaxNamesPerIp = 64;
inline constexpr std::chrono::seconds kMaxLearnedTtl{86400};

// Firewall decides new TCP connections. Thread-safe: the resolver calls Learn while the network
// stack calls Decide (Decide takes a shared lock, Learn an exclusive one).
//
// When Learn finds the table full, expired pairs are dropped first; when it is full of live
// pairs, the pair closest to expiry is dropped (its name must be resolved again before a new
// connection to that IP is allowed). An IPv4-mapped IPv6 address (::ffff:a.b.c.d), in Decide,
// Learn or an address rule, is judged as the IPv4 address it reaches.
class Firewall {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Firewall(Policy policy, size_t max_learned = kMaxLearned);
  ~Firewall();
  Firewall(const Firewall&) = delete;
  Firewall& operator=(const Firewall&) = delete;

  const Policy& policy() const;

  // Decide allows (ip, port) if an address rule matches both, or a name rule's port matches and
  // a validated, unexpired answer for a name that rule allows returned `ip` (see Learn).
  Verdict Decide(const IpAddress& ip, uint16_t port, Clock::time_point now) const;

  // NameAllowed: whether some name or wildcard rule allows `name` (any port). The resolver
  // answers REFUSED for any other name. Case-insensitive; a trailing dot is ignored.
  bool NameAllowed(std::string_view name) const;

  // UpstreamNameAllowed: NameAllowed, or `name` is an ancestor of a rule's name (or of a
  // wildcard's suffix, or the suffix itself), including the root "". The validator fetches
  // DNSKEY and DS records there; nothing else may leave.
  bool UpstreamNameAllowed(std::string_view name) const;

  // Learn records a validated answer: `name` (allowed) has address `ip` until now + ttl. A
  // later answer for the same pair extends or shortens the expiry. Names not allowed are ignored.
  void Learn(std::string_view name, const IpAddress& ip, std::chrono::seconds ttl,
             Clock::time_point now);

  // learned_size is the number of (ip, name) pairs held, expired ones included until evicted.
  size_t learned_size() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace enclavia::egress

#endif  // ENCLAVIA_LIB_EGRESS_POLICY_H_
