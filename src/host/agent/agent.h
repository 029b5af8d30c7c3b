// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_AGENT_AGENT_H_
#define ENCLAVIA_HOST_AGENT_AGENT_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "host/egress/dialer.h"
#include "host/launcher/provider.h"
#include "host/relay/relay.h"
#include "lib/base/result.h"
#include "lib/net/address.h"

// The host agent (`enclavia-host`, docs/host-agent.md): launches enclaves through a Provider,
// runs one blind relay per enclave on its public port (which also serves the well-known
// attestation path and /healthz), and serves the authenticated local API of docs/platform-api.md.
// It runs OUTSIDE the trust boundary: it sees images, names, states, counters and the public
// attestation documents it passes on, never keys or plaintext.
namespace enclavia::host {

struct AgentOptions {
  // data_dir is DIR/host: token, address, agent-state.json. Created (0700) if missing.
  std::string data_dir;
  std::unique_ptr<Provider> provider;
  net::Address listen;  // The API; default tcp:127.0.0.1:0. Written to data_dir/address.
  // public_host is where the enclaves' relays listen and what their URLs name.
  std::string public_host = "127.0.0.1";
  // relay holds the relays' limits and TLS files; listen, enclave and http_handler are set per
  // enclave.
  RelayOptions relay;
  // roots are the provider's attestation roots (PEM) for GET /v1/roots.
  std::vector<std::string> roots_pem;
  // terminate_on_exit: Stop() terminates every enclave (tests, demos). Otherwise enclaves outlive
  // the agent, as on Nitro, and the next agent on this data_dir re-attaches to them.
  bool terminate_on_exit = false;
  std::chrono::milliseconds attestation_timeout{5000};
  size_t max_attestation_requests = 16;  // In flight per enclave; beyond: 503.
  unsigned io_threads = 2;
  // log receives one JSON object per line (no newline); default: stderr. Never secrets.
  std::function<void(std::string_view)> log;
  // egress holds the limits and the host's deny list of the egress dialer the agent runs for
  // each enclave whose image enables [egress] (docs/egress.md).
  EgressDialerOptions egress;
  // image_egress says whether the image at a path enables [egress]; default ImageEgressEnabled
  // (host/agent/egress.h). Tests stand in for it.
  std::function<Result<bool>(const std::string& eif_path)> image_egress;
};

class Agent {
 public:
  // Create loads or creates the API token (data_dir/token, 0600), loads agent-state.json,
  // re-attaches to the enclaves the provider still lists (relays back on their remembered ports;
  // remembered enclaves it no longer runs are kept and reported "stopped"), starts the API and
  // writes data_dir/address. Errors: kInvalidArgument (options), kIo (files, ports).
  static Result<std::unique_ptr<Agent>> Create(AgentOptions options);

  // The destructor calls Stop().
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  net::Address api_address() const;
  // token is the API bearer token (also in data_dir/token).
  const std::string& token() const;

  // Stop stops the API and every relay (open WebSockets get 1001) and waits briefly for them to
  // close; enclaves keep running unless terminate_on_exit. Idempotent; blocks.
  void Stop();

  struct Impl;

 private:
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_AGENT_AGENT_H_
