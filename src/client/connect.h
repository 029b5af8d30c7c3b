// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLIENT_CONNECT_H_
#define ENCLAVIA_CLIENT_CONNECT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "client/websocket.h"
#include "lib/attestation/verifier.h"
#include "lib/channel/trust.h"
#include "lib/mux/mux.h"
#include "lib/tunnel/engine.h"

// Connecting a channel, asynchronously: dial the relay, run the attested handshake, start the
// engine. Used by the blocking Channel API and by `enclavia proxy`.
namespace enclavia::client {

struct ConnectOptions {
  DialOptions dial;
  std::chrono::milliseconds handshake_timeout{10000};
  mux::Options mux;
};

struct Connected {
  std::shared_ptr<tunnel::Engine> engine;
  attestation::VerifiedAttestation attestation;
  // chain is the enclave's verified upgrade chain; nullopt for an unchained enclave.
  std::optional<upgrade::VerifiedChain> chain;
};

using ConnectDone = std::function<void(Result<Connected>)>;

// AsyncConnect runs on `strand` (every later engine callback does too). `on_closed` runs when the
// established channel ends. No application byte can be sent before `done` reports success,
// which needs the enclave's attestation to have passed `policy`.
void AsyncConnect(boost::asio::any_io_executor strand, const std::string& url,
                  std::shared_ptr<const channel::TrustPolicy> policy,
                  const ConnectOptions& options, std::function<void(const Error&)> on_closed,
                  ConnectDone done);

// DescribeAttestation renders "PCR0=… PCR1=… PCR2=… module=… age=…s" for logs.
std::string DescribeAttestation(const attestation::VerifiedAttestation& verified);

}  // namespace enclavia::client

#endif  // ENCLAVIA_CLIENT_CONNECT_H_
