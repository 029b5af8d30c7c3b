// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_INGRESS_INGRESS_H_
#define ENCLAVIA_ENCLAVE_INGRESS_INGRESS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <functional>
#include <set>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "lib/base/result.h"
#include "lib/channel/handshake.h"
#include "lib/crypto/x25519.h"
#include "lib/mux/mux.h"
#include "lib/tunnel/engine.h"
#include "lib/net/address.h"

// The enclave end of every client channel. It accepts relay connections on a transport (vsock in
// production, a Unix socket or TCP locally), runs the attested Noise handshake, and joins each
// mux stream to 127.0.0.1:<port> for the ports its configuration opens. Nothing the host sends
// is trusted: a connection that fails the handshake or authentication is dropped, and no byte
// reaches an application port before the client's handshake message 3 authenticated.
namespace enclavia::enclave {

struct IngressOptions {
  net::Address listen;
  // Application ports a stream may open; an Open to any other port is reset with kRefused.
  std::set<uint16_t> allowed_ports;
  size_t max_channels = 4096;
  std::chrono::milliseconds handshake_timeout{10000};
  mux::Options mux;
  // log receives one line per failed handshake or dropped channel (never key material or
  // plaintext; the reason strings come from our own code).
  std::function<void(std::string_view)> log;
  // Upgrades (src/enclave/upgrade). admit, when set, is asked for each new connection: false
  // closes it unanswered (a superseded enclave). app_streams, when set and false, refuses streams
  // to application ports (a successor awaiting its handover). handover, when set, gives the sink
  // for a stream to port kHandoverPort (0, never an application port), or null to refuse it.
  std::function<bool()> admit;
  std::function<bool()> app_streams;
  std::function<std::shared_ptr<tunnel::StreamSink>(const std::shared_ptr<tunnel::Engine>&,
                                                    mux::StreamId)>
      handover;
};

// kHandoverPort is upgrade::kHandoverStreamPort (lib/upgrade/wire.h).
inline constexpr uint16_t kHandoverPort = 0;

struct IngressStats {
  uint64_t channels_accepted = 0;
  uint64_t channels_active = 0;
  uint64_t channels_refused = 0;  // Over max_channels.
  uint64_t handshakes_failed = 0;
  uint64_t channels_dropped = 0;  // Ended by an authentication or protocol failure.
  uint64_t streams_opened = 0;
  uint64_t streams_refused = 0;
};

class Ingress {
 public:
  // Create binds `options.listen` (a stale Unix socket file is replaced) and starts accepting on
  // `io`, which may be run by several threads (each channel lives on its own strand).
  // `static_key` is the enclave's Noise static key; `source` attests to its public half.
  static Result<std::unique_ptr<Ingress>> Create(boost::asio::io_context& io,
                                                 IngressOptions options,
                                                 crypto::X25519Keypair static_key,
                                                 std::shared_ptr<channel::AttestationSource> source);
  ~Ingress();

  // local_address is the bound address (with the real port when 0 was asked).
  net::Address local_address() const;
  // Stop closes the listener and every channel.
  void Stop();
  IngressStats stats() const;

  struct State;

 private:
  explicit Ingress(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_INGRESS_INGRESS_H_
