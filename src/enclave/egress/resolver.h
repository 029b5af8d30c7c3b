// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_EGRESS_RESOLVER_H_
#define ENCLAVIA_ENCLAVE_EGRESS_RESOLVER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "lib/base/result.h"
#include "lib/egress/ip.h"
#include "lib/egress/policy.h"
#include "lib/sys/fd.h"

// The enclave's DNS resolver (docs/egress.md, "The resolver"). It serves the app on UDP and TCP
// (127.0.0.53:53), answers REFUSED at once for names the firewall's NameAllowed rejects, and
// resolves the others with libunbound, validating DNSSEC against the image's trust anchor when
// the policy says dnssec = require. libunbound's only upstream is a forwarder inside the resolver
// (127.0.0.1:<ephemeral>, TCP): it refuses every query whose name UpstreamNameAllowed rejects and
// relays the others over `dial`ed streams to the policy's resolvers, port 53. The A and AAAA
// records of accepted answers go to Firewall::Learn under the name the app asked.
namespace enclavia::enclave {

struct ResolverOptions {
  // firewall holds the policy (resolvers, dnssec mode) and learns validated answers. Required.
  std::shared_ptr<egress::Firewall> firewall;
  // trust_anchor is zone-file text, one DS or DNSKEY record per line (';' comments and blank
  // lines ignored). Must be non-empty iff policy().dnssec == kRequire.
  std::string trust_anchor;
  // dial opens a TCP stream to a resolver (policy().resolvers, port 53) through egress; in the
  // daemon egress::Dial to the parent's port 5004, in tests a direct connect. Called from the
  // forwarder's threads, several at once; it should give up within a few seconds.
  std::function<Result<sys::UniqueFd>(const egress::Endpoint&)> dial;
  // listen_ip/listen_port: where the app's queries arrive, UDP and TCP. Port 0 picks a free port
  // (the same for both; see Resolver::port()).
  std::string listen_ip = "127.0.0.53";
  uint16_t listen_port = 53;
  // upstream_timeout bounds one relayed query (write and answer) on one resolver.
  std::chrono::milliseconds upstream_timeout{3000};
  // log receives one line per decision (refused, answered, bogus, upstream refused...). Called
  // from the resolver's threads, possibly at once; may be empty. Names in lines are escaped.
  std::function<void(std::string_view line)> log;
};

// ResolverStats counts decisions since Start.
struct ResolverStats {
  uint64_t queries = 0;           // messages from the app with at least a header
  uint64_t refused = 0;           // REFUSED: the name is not allowed (never left)
  uint64_t upstream_refused = 0;  // libunbound asked the forwarder for a name it may not send
  uint64_t bogus = 0;             // DNSSEC validation failed → SERVFAIL
  uint64_t insecure_refused = 0;  // not secure with dnssec = require → SERVFAIL
  uint64_t answered = 0;          // the app got libunbound's answer
  uint64_t failed = 0;            // any other SERVFAIL (upstream unreachable, overload)
  uint64_t malformed = 0;         // FORMERR, NOTIMP, or dropped
};

// Resolver runs the app-facing server and the forwarder on their own threads (see resolver.cc
// for why). Start returns once both listen; Stop (or the destructor) ends every thread, closes
// every socket and drops unanswered queries. stats() and port() are thread-safe.
class Resolver {
 public:
  // Start validates the options (kInvalidArgument: no firewall or dial, trust anchor present
  // iff dnssec = require, unparsable anchor or listen address), binds the sockets (kIo) and
  // starts serving.
  static Result<std::unique_ptr<Resolver>> Start(ResolverOptions options);

  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  void Stop();
  ResolverStats stats() const;
  // port is the UDP and TCP port the app's queries go to.
  uint16_t port() const;

  struct State;

 private:
  explicit Resolver(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_EGRESS_RESOLVER_H_
