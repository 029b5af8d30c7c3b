// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_INGRESS_ATTESTATION_SERVICE_H_
#define ENCLAVIA_ENCLAVE_INGRESS_ATTESTATION_SERVICE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "lib/base/result.h"
#include "lib/channel/handshake.h"
#include "lib/net/address.h"

// The enclave's attestation service (transport::kAttestationPort, lib/channel/audit.h): one
// request record in, one response record out, then the connection closes. The document comes
// from the NSM with nonce = the request's nonce and public_key = the enclave's Noise static key
// (and user_data = the upgrade chain head); the response carries the chain (AttestationSource).
// Nothing the caller sends is trusted; a malformed request gets an error response.
namespace enclavia::enclave {

struct AttestationServiceOptions {
  net::Address listen;
  // More simultaneous connections than this are closed at once, unanswered.
  size_t max_connections = 64;
  // A connection that has not been answered within this time is closed.
  std::chrono::milliseconds timeout{5000};
  // log receives one line per answered, refused or failed request (no secrets).
  std::function<void(std::string_view)> log;
};

struct AttestationServiceStats {
  uint64_t served = 0;    // Documents sent.
  uint64_t errors = 0;    // Error responses sent (bad request, NSM failure).
  uint64_t refused = 0;   // Closed unanswered: over max_connections.
  uint64_t timed_out = 0;
};

class AttestationService {
 public:
  // Create binds `options.listen` (a stale Unix socket file is replaced) and starts accepting on
  // `io` (run by one or more threads). NSM requests run on a worker thread of this object, so a
  // slow NSM never stalls `io`. `source` must be shared with nothing that outlives its lock
  // discipline (AttestationSource is thread-safe).
  static Result<std::unique_ptr<AttestationService>> Create(
      boost::asio::io_context& io, AttestationServiceOptions options,
      std::shared_ptr<channel::AttestationSource> source);
  // The destructor stops the service and waits for an NSM request in progress.
  ~AttestationService();

  net::Address local_address() const;
  // Stop closes the listener and every open connection. Idempotent.
  void Stop();
  AttestationServiceStats stats() const;

  struct State;

 private:
  explicit AttestationService(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_INGRESS_ATTESTATION_SERVICE_H_
