// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_RELAY_RELAY_H_
#define ENCLAVIA_HOST_RELAY_RELAY_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "lib/base/result.h"
#include "lib/http/http.h"
#include "lib/net/address.h"

// The blind relay: the untrusted host's WebSocket front door to an enclave (docs/relay.md).
//
// Each accepted WebSocket connection gets its own new stream connection to the enclave's ingress
// address (unix:, tcp: or vsock:). Every binary WebSocket message from the client becomes one
// record (u16 BE length, then the bytes; lib/net/framing.h) on that connection, and every record
// from the enclave becomes one binary WebSocket message. The relay never looks inside the bytes:
// they are Noise messages, end to end between the client and the enclave.
//
// Backpressure: per connection and direction, at most one message is read and not yet written,
// so a slow peer stalls only its own connection, and a connection holds at most about
// max_message_size + 64 KiB of buffers.
namespace enclavia::host {

// TlsFiles names a PEM certificate chain and its PEM private key.
struct TlsFiles {
  std::string cert_pem_path;
  std::string key_pem_path;
};

struct RelayOptions {
  net::Address listen;              // tcp:HOST:PORT; port 0 picks an ephemeral port.
  net::Address enclave;             // Where the enclave's ingress listens.
  std::string path = "/";           // The accepted WebSocket target (query ignored); else 404.
  size_t max_connections = 1024;    // Open WebSocket connections; beyond: HTTP 503.
  size_t max_message_size = 65535;  // 1..65535. A bigger client message: close code 1009.
  std::chrono::milliseconds idle_timeout{120000};      // No message either way: close. 0 = never.
  std::chrono::milliseconds handshake_timeout{10000};  // TCP accept → upgraded and enclave dialled.
  std::optional<TlsFiles> tls;                         // Set: wss:// (TLS 1.2+), else ws://.
  // http_handler, if set, answers every plain HTTP request (one that is not a WebSocket upgrade)
  // on any path, e.g. the host agent's /.well-known/enclavia/attestation and /healthz, so one
  // public port serves both. Requests carry no body (one with a body is dropped); the reply may
  // come later from any thread, within handshake_timeout (else the connection is cut); one
  // request per connection ("Connection: close"). Unset: such requests get 426 on `path` and 404
  // elsewhere, as before. A WebSocket upgrade on another path is always 404.
  http::Handler http_handler;
};

// RelayStats are monotonic counters, except `active`.
struct RelayStats {
  uint64_t accepted = 0;         // WebSocket upgrades accepted.
  uint64_t active = 0;           // Connections holding a slot now (counted against the limit).
  uint64_t refused = 0;          // HTTP refusals (404, 426, 503) and connections over the
                                 // pending-handshake cap, closed at once.
  uint64_t closed_oversize = 0;  // Closed with 1009: a client message over max_message_size.
  uint64_t closed_idle = 0;      // Closed by the idle timeout.
  uint64_t bytes_up = 0;         // Message bytes written to the enclave (framing excluded).
  uint64_t bytes_down = 0;       // Message bytes written to clients (framing excluded).
  uint64_t answered = 0;         // Connections on which the enclave sent at least one record
                                 // (it answered the client's first message; the relay sees no
                                 // more of the handshake than that).
  uint64_t http_requests = 0;    // Plain HTTP requests handed to http_handler.
};

// Relay accepts WebSocket clients and pipes each to its own enclave connection.
//
// Close codes sent to clients: 1000 "enclave closed" when the enclave closed its side (after
// every earlier record was delivered) and 1000 "idle timeout", 1001 on Stop(), 1003 for a text
// message, 1009 for a message over max_message_size, 1011 "enclave unavailable" when the enclave
// cannot be dialled and 1011 "enclave connection lost" when it breaks the framing or fails.
// When the client closes, the enclave connection is closed too. Subprotocol: "enclavia.v1" is
// echoed if the client offers it; other offers are ignored (no Sec-WebSocket-Protocol in the
// response). max_message_size is enforced by the relay while reading, not by Beast's
// read_message_max (see relay.cc: Boost 1.74 resets the connection after its own 1009).
//
// Every failure caused by a client or the enclave ends only that connection.
//
// Thread-safety: all methods may be called from any thread; `io` may be run by any number of
// threads (each connection runs on its own strand). The Relay may be destroyed while `io` still
// runs: destruction calls Stop(), and connections then finish on their own. `io` must outlive
// every handler the relay queued on it (i.e. until io.run() returns or `io` is destroyed).
class Relay {
 public:
  // Create validates `options`, loads the TLS files if any and binds the listening socket; it
  // starts accepting once `io` runs. kInvalidArgument for bad options or unreadable TLS files,
  // kIo if the address cannot be bound.
  static Result<std::unique_ptr<Relay>> Create(boost::asio::io_context& io, RelayOptions options);

  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // local_address is the bound address, with the real port when port 0 was asked.
  net::Address local_address() const;

  // Stop stops accepting and closes every connection: open WebSockets get close code 1001 (and are
  // cut if the close handshake has not finished within a few seconds), enclave sockets are closed.
  // Idempotent. Returns at once; the work runs on `io`.
  void Stop();

  // stats is a snapshot of the counters.
  RelayStats stats() const;

  struct State;  // Shared with the connections; defined in relay.cc.

 private:
  explicit Relay(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_RELAY_RELAY_H_
