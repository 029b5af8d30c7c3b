// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CHANNEL_PROTOCOL_H_
#define ENCLAVIA_LIB_CHANNEL_PROTOCOL_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// The handshake payloads of Enclavia channel protocol version 1 (docs/protocol.md). Each is a
// deterministic CBOR map (RFC 8949 §4.2.1) with text keys; decoders accept only the canonical
// encoding, so a payload has exactly one byte form.
namespace enclavia::channel {

// kPrologue is mixed into the Noise handshake hash: a peer speaking another version fails the
// handshake at its first encrypted message instead of misreading a payload.
inline constexpr std::string_view kPrologue = "enclavia/1";
inline constexpr uint64_t kProtocolVersion = 1;

// The most an attestation document, and an upgrade chain entry, may be in a handshake payload.
inline constexpr size_t kMaxAttestationSize = 16 * 1024;
inline constexpr size_t kMaxChainEntries = 64;

// ClientHello is message 1's payload (sent in clear: the channel has no key yet).
// {"v": 1, "fresh": bool}
struct ClientHello {
  bool fresh = false;  // Ask for a document whose nonce is the client's ephemeral key.
};

// ServerHello is message 2's payload (encrypted to the client's ephemeral key).
// {"v": 1, "attestation": bstr, "chain": [bstr, ...]}
struct ServerHello {
  Bytes attestation;          // COSE_Sign1 NSM attestation document.
  std::vector<Bytes> chain;   // Upgrade chain from genesis; empty in this version.
};

// ClientFinish is message 3's payload. {"v": 1}
struct ClientFinish {};

Bytes EncodeClientHello(const ClientHello& hello);
Bytes EncodeServerHello(const ServerHello& hello);
Bytes EncodeClientFinish();

// Decoders fail with kMalformed ("channel: ...") on anything but the canonical encoding of the
// map above, and kUnsupported for another version.
Result<ClientHello> DecodeClientHello(ByteSpan payload);
Result<ServerHello> DecodeServerHello(ByteSpan payload);
Result<void> DecodeClientFinish(ByteSpan payload);

}  // namespace enclavia::channel

#endif  // ENCLAVIA_LIB_CHANNEL_PROTOCOL_H_
