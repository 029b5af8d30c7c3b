// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLIENT_WEBSOCKET_H_
#define ENCLAVIA_CLIENT_WEBSOCKET_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "lib/base/result.h"
#include "lib/net/address.h"
#include "lib/tunnel/message_stream.h"

// The client's transport: a WebSocket (ws:// or wss://) to the host's relay, one binary message
// per Noise message. TLS here only gets through https-only networks and browsers' mixed-content
// rules; the channel's security does not depend on it.
namespace enclavia::client {

struct Url {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string target = "/";
};

// ParseUrl accepts ws://HOST[:PORT][/PATH] and wss://…; kInvalidArgument otherwise.
Result<Url> ParseUrl(std::string_view url);

struct DialOptions {
  std::chrono::milliseconds timeout{10000};
  // ca_file: PEM bundle for wss:// certificate checks; empty means the system's roots.
  std::string ca_file;
  // insecure_tls skips the wss certificate check (the Noise channel is verified regardless).
  bool insecure_tls = false;
  // via, if set, is the stream address (unix:, tcp: or vsock:; lib/net/address.h) the WebSocket
  // runs over instead of a connection to the URL's host, which is then not resolved; the URL
  // still gives the Host header, the path and (wss) the TLS server name. E.g. an enclave reaching
  // another enclave's relay through a port its parent forwards:
  // unix:/run/enclavia/vsock/parent-5100.sock.
  std::optional<net::Address> via;
};

using DialDone = std::function<void(Result<std::unique_ptr<tunnel::MessageStream>>)>;

// AsyncDial resolves, connects (to options.via when set) and completes the WebSocket upgrade.
// `done` runs on `executor`.
void AsyncDial(boost::asio::any_io_executor executor, const Url& url, const DialOptions& options,
               DialDone done);

}  // namespace enclavia::client

#endif  // ENCLAVIA_CLIENT_WEBSOCKET_H_
