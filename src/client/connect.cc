// SPDX-License-Identifier: Apache-2.0
#include "client/connect.h"

#include <utility>

#include "lib/base/encoding.h"
#include "lib/channel/handshake.h"
#include "lib/tunnel/handshake_io.h"

namespace enclavia::client {

void AsyncConnect(boost::asio::any_io_executor strand, const std::string& url,
                  std::shared_ptr<const channel::TrustPolicy> policy,
                  const ConnectOptions& options, std::function<void(const Error&)> on_closed,
                  ConnectDone done) {
  auto parsed = ParseUrl(url);
  if (!parsed) {
    done(parsed.error());
    return;
  }
  auto handshake = channel::ClientHandshake::Create(std::move(policy));
  if (!handshake) {
    done(handshake.error());
    return;
  }
  auto shared_handshake =
      std::make_shared<std::optional<channel::ClientHandshake>>(std::move(*handshake));
  AsyncDial(strand, *parsed, options.dial,
            [strand, options, shared_handshake, on_closed = std::move(on_closed),
             done = std::move(done)](Result<std::unique_ptr<tunnel::MessageStream>> stream) mutable {
              if (!stream) {
                done(stream.error());
                return;
              }
              tunnel::AsyncClientHandshake(
                  strand, std::move(*stream), std::move(**shared_handshake),
                  options.handshake_timeout,
                  [strand, options, on_closed = std::move(on_closed),
                   done = std::move(done)](Result<tunnel::ClientReady> ready) mutable {
                    if (!ready) {
                      done(ready.error());
                      return;
                    }
                    tunnel::Engine::Callbacks callbacks;
                    callbacks.on_closed = std::move(on_closed);
                    auto engine = tunnel::Engine::Create(
                        strand, std::move(ready->stream),
                        std::move(ready->established.channel), mux::Side::kClient, options.mux,
                        std::move(callbacks));
                    engine->Start();
                    done(Connected{engine, std::move(ready->established.attestation),
                                   std::move(ready->established.chain)});
                  });
            });
}

std::string DescribeAttestation(const attestation::VerifiedAttestation& verified) {
  const auto& doc = verified.document();
  std::string out;
  for (uint32_t index : {0u, 1u, 2u, 8u}) {
    auto it = doc.pcrs.find(index);
    if (it != doc.pcrs.end()) {
      out += "PCR" + std::to_string(index) + "=" + HexEncode(it->second) + " ";
    }
  }
  out += "module=" + doc.module_id;
  if (verified.debug()) {
    out += " (debug mode)";
  }
  return out;
}

}  // namespace enclavia::client
