// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_WITNESS_LINK_H_
#define ENCLAVIA_ENCLAVE_WITNESS_LINK_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "client/connect.h"
#include "lib/attestation/nsm.h"
#include "lib/channel/trust.h"
#include "lib/net/address.h"
#include "lib/witness/link.h"

// The storage enclave's link to one witness enclave: an attested channel (client::Channel) to the
// witness's ingress, a stream to the witness app's port, then the witness protocol.
namespace enclavia::enclave {

inline constexpr uint16_t kDefaultWitnessPort = 7000;

struct ChannelWitnessLinkOptions {
  // url names the witness's relay (ws:// or wss://): its Host header and path.
  std::string url;
  // via, if set, is where the WebSocket is dialled instead of the URL's host, e.g. the parent's
  // vsock port that forwards to the witness host: unix:/run/enclavia/vsock/parent-5100.sock.
  std::optional<net::Address> via;
  // policy names the witness image's PCRs (and the roots): checked before any byte is sent.
  channel::TrustPolicy policy;
  uint16_t port = kDefaultWitnessPort;
  client::ConnectOptions connect;  // dial.via is replaced by `via`.
};

// ChannelWitnessLink is a witness::StreamWitnessLink whose dialer opens the attested channel.
// Each connection attests this enclave afresh with `nsm` (nonce = the witness's challenge);
// share one NSM between links through witness::SerializedNsm. An enclave with an upgrade chain
// passes it in `hello` (with user_data = its head).
class ChannelWitnessLink : public witness::StreamWitnessLink {
 public:
  ChannelWitnessLink(std::string name, ChannelWitnessLinkOptions options,
                     std::shared_ptr<attestation::Nsm> nsm, witness::HelloOptions hello = {});
};

// DialWitness opens the channel and the stream to the witness port (ChannelWitnessLink's dialer).
Result<std::unique_ptr<witness::ByteStream>> DialWitness(const ChannelWitnessLinkOptions& options);

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_WITNESS_LINK_H_
