// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_UPGRADE_WIRE_H_
#define ENCLAVIA_LIB_UPGRADE_WIRE_H_

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/net/address.h"

// The two upgrade services between an enclave and its host (docs/formats/upgrade-chain.md,
// "Wire"). Framing: u32 BE length (1..kMaxMessage) + bytes, each a deterministic CBOR map
// {"v": 1, "t": tstr, ...}. One request, one response per connection (the caller closes after).
// Fields: "chain"/"staged" (arrays of bstr, present only when non-empty), "pending" (bstr,
// present only when set); "request" (stage: the request entry; activate: its 32-byte hash),
// "receipt" (staged, activated), "revocation" (revoke); "code"/"message" (error). So the
// request {"t": "chain"} and an unchained enclave's answer have the same form.
//
//  1. The enclave's upgrade service, vsock port kEnclaveUpgradePort (host → enclave):
//       {"t": "chain"}                          → {"t": "chain", "chain": [bstr...],
//                                                   "staged": [bstr...]}  (requests, then
//                                                   their staging receipts)
//       {"t": "stage", "request": bstr}         → {"t": "staged", "receipt": bstr}
//       {"t": "revoke", "revocation": bstr}     → {"t": "revoked"}
//       {"t": "activate", "request": bstr(hash 32)} → {"t": "activated", "receipt": bstr}
//     or {"t": "error", "code": uint (lib/base Code), "message": tstr} for any of them.
//     "activate" makes the old enclave dial its successor through the host (port 2 below),
//     verify it over an attested channel, and hand over; afterwards the old enclave is
//     superseded: it refuses every further request and every new channel.
//
//  2. The host's upgrade service, parent port kParentUpgradePort (enclave → host):
//       {"t": "chain"}      → {"t": "chain", "chain": [bstr...], "staged": [bstr...],
//                              "pending": bstr?}
//         chain: the enclave's chain as the host stores it (empty: an unchained enclave);
//         staged: the request entries staged so far for the current head AND their staging
//         receipts, in any order (matched by request hash; a restarted enclave re-learns its
//         staged requests from them, each checked, never trusted; a successor finds its
//         pending request's receipt there);
//         pending: for a successor launched to be activated, the request entry it was staged by.
//       {"t": "successor"} → {"t": "ok"} then the connection becomes a byte pipe to the
//         successor enclave's ingress (channel port): the old enclave runs a channel handshake
//         over it as a client.
namespace enclavia::upgrade {

inline constexpr uint32_t kEnclaveUpgradePort = 5005;
inline constexpr uint32_t kParentUpgradePort = 5006;
inline constexpr size_t kMaxMessage = 2 * 1024 * 1024;

// The successor's ingress opens this mux stream port for the handover only; no application
// port may be 0 (enclave.toml), so it never collides.
inline constexpr uint16_t kHandoverStreamPort = 0;

// Messages (one struct per "t"; absent fields empty). Encode* write the canonical CBOR map;
// Decode* parse untrusted bytes strictly (canonical encoding, exact keys and types, sizes, at
// most kMaxChainLength chain entries and 16 staged entries, each at most kMaxEntrySize):
// kMalformed / kUnsupported, one line starting "upgrade wire: ".
enum class MessageType { kChain, kStage, kStaged, kRevoke, kRevoked, kActivate, kActivated,
                         kSuccessor, kOk, kError };

struct Message {
  MessageType type = MessageType::kError;
  std::vector<Bytes> chain;     // kChain response.
  std::vector<Bytes> staged;    // kChain response: staged request entries and their receipts.
  std::optional<Bytes> pending; // kChain response from the host: the request a successor awaits.
  Bytes entry;                  // kStage: request; kStaged/kActivated: receipt; kRevoke: revocation;
                                // kActivate: the 32-byte request hash.
  uint32_t code = 0;            // kError: a lib/base Code value.
  std::string message;          // kError: one line.
};

Bytes EncodeMessage(const Message& message);
Result<Message> DecodeMessage(ByteSpan bytes);

// Framed exchange on a connected stream socket: u32 BE length (1..kMaxMessage) + message.
Result<void> WriteMessage(int fd, const Message& message);
// ReadMessage waits at most `timeout` for one whole message.
Result<Message> ReadMessage(int fd, std::chrono::milliseconds timeout);

// Call connects to `address`, sends `request`, and returns the response (an kError response is
// returned as an Error with its code and "<address>: <message>").
Result<Message> Call(const net::Address& address, const Message& request,
                     std::chrono::milliseconds timeout);

// FetchChain asks the host's upgrade service (parent port kParentUpgradePort) for this enclave's
// chain. Untrusted: the caller verifies it (VerifyChain, and PCRs == its own).
struct HostChain {
  std::vector<Bytes> chain;
  std::vector<Bytes> staged;       // Staging receipts for the current head.
  std::optional<Bytes> pending;    // Set for a successor awaiting activation.
};
Result<HostChain> FetchChain(const net::Address& parent_upgrade_service,
                             std::chrono::milliseconds timeout);

}  // namespace enclavia::upgrade

#endif  // ENCLAVIA_LIB_UPGRADE_WIRE_H_
