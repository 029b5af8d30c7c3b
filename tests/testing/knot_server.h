// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_TESTS_TESTING_KNOT_SERVER_H_
#define ENCLAVIA_TESTS_TESTING_KNOT_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "lib/base/result.h"

// A real authoritative DNS server for tests: Knot DNS (knotd) with its own configuration, key
// database and run directory in a caller-owned directory, on 127.0.0.1:<free port> (UDP and TCP).
namespace enclavia::testing {

// KnotZone is one zone: its name ("enclavia.test") and the records of its zone file after the
// SOA and NS knot needs (one per line, names relative to the zone, e.g. "www 30 A 192.0.2.10").
// With `sign`, knot signs it (automatic DNSSEC, ECDSA P-256, one KSK and one ZSK).
struct KnotZone {
  std::string name;
  std::string records;
  bool sign = false;
};

class KnotServer {
 public:
  // Available is whether knotd, keymgr and kdig are installed (tests skip otherwise).
  static bool Available();

  // Start writes the configuration and zones under `dir` (which must exist and outlive the
  // server), starts knotd and waits (up to 10 s) until every zone answers, signed ones with
  // their DNSKEY. kUnavailable with knotd's log tail if it does not come up.
  static Result<std::unique_ptr<KnotServer>> Start(const std::string& dir,
                                                   std::vector<KnotZone> zones);

  // The destructor stops knotd (SIGTERM, then SIGKILL) and reaps it.
  ~KnotServer();
  KnotServer(const KnotServer&) = delete;
  KnotServer& operator=(const KnotServer&) = delete;

  uint16_t port() const { return port_; }

  // TrustAnchor returns the DS record (SHA-256 digest) of signed zone `zone`'s KSK as zone-file
  // text ("enclavia.test. DS 44151 13 2 dca5..."), from keymgr.
  Result<std::string> TrustAnchor(std::string_view zone) const;

  // Log returns knotd's log so far.
  std::string Log() const;

 private:
  KnotServer(std::string dir, uint16_t port, pid_t pid)
      : dir_(std::move(dir)), port_(port), pid_(pid) {}
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace enclavia::testing

#endif  // ENCLAVIA_TESTS_TESTING_KNOT_SERVER_H_
