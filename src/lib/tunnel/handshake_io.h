// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_TUNNEL_HANDSHAKE_IO_H_
#define ENCLAVIA_LIB_TUNNEL_HANDSHAKE_IO_H_

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include "lib/base/result.h"
#include "lib/channel/handshake.h"
#include "lib/tunnel/message_stream.h"

// The three handshake messages over a MessageStream, with a deadline for the whole exchange.
// The stream comes back with the result so the caller can run an Engine on it.
namespace enclavia::tunnel {

struct ServerReady {
  std::unique_ptr<MessageStream> stream;
  channel::SecureChannel channel;
};
using ServerDone = std::function<void(Result<ServerReady>)>;

// AsyncServerHandshake reads message 1, answers with message 2, reads message 3. `done` runs
// once, on `executor`.
void AsyncServerHandshake(boost::asio::any_io_executor executor,
                          std::unique_ptr<MessageStream> stream, channel::ServerHandshake handshake,
                          std::chrono::milliseconds timeout, ServerDone done);

struct ClientReady {
  std::unique_ptr<MessageStream> stream;
  channel::ClientHandshake::Established established;
};
using ClientDone = std::function<void(Result<ClientReady>)>;

// AsyncClientHandshake sends message 1, verifies message 2's attestation (no byte of message 3
// leaves before it passed), sends message 3.
void AsyncClientHandshake(boost::asio::any_io_executor executor,
                          std::unique_ptr<MessageStream> stream, channel::ClientHandshake handshake,
                          std::chrono::milliseconds timeout, ClientDone done);

}  // namespace enclavia::tunnel

#endif  // ENCLAVIA_LIB_TUNNEL_HANDSHAKE_IO_H_
