// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_WITNESS_PROTOCOL_H_
#define ENCLAVIA_LIB_WITNESS_PROTOCOL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/storage/freshness.h"

// The anti-rollback witness protocol (docs/witness.md), sans I/O: the messages, their canonical
// CBOR encoding and the stream framing. The witness speaks first (Challenge); the client answers
// Hello with an attestation document whose nonce is the challenge; the witness answers Ready (or
// Refused, then closes); then the client sends requests (Query, Commit) and gets one response
// (Known, Unknown, Ack, Refused) for each, in order.
namespace enclavia::witness {

inline constexpr uint64_t kProtocolVersion = 1;
// kMaxFrameSize bounds one message on the stream: a Hello with an attestation document (under
// 16 KiB) and an upgrade chain of at most kMaxHelloChain entries of at most
// kMaxChainEntrySize bytes (lib/upgrade/chain.h's limits) fits.
inline constexpr size_t kMaxFrameSize = 2 * 1024 * 1024;
inline constexpr size_t kMaxHelloChain = 64;
inline constexpr size_t kMaxChainEntrySize = 24 * 1024;
inline constexpr size_t kFrameHeaderSize = 4;
inline constexpr size_t kNonceSize = 32;
inline constexpr size_t kWitnessKeySize = 32;  // Ed25519 public key.
inline constexpr size_t kSignatureSize = 64;   // Ed25519 signature.
inline constexpr size_t kMaxReasonSize = 256;  // Refused.reason, bytes of UTF-8.

using VolumeId = std::array<uint8_t, storage::kVolumeIdSize>;
using WitnessKey = std::array<uint8_t, kWitnessKeySize>;
using Nonce = std::array<uint8_t, kNonceSize>;

// Witness → client, first message: a fresh nonce and the Ed25519 key the witness made at boot
// (it signs every Ack; a restarted witness has a new key and no state).
struct Challenge {
  Nonce nonce{};
  WitnessKey witness_key{};
  bool operator==(const Challenge&) const = default;
};
// Client → witness: a COSE_Sign1 NSM attestation document whose nonce is Challenge.nonce, and
// the client's upgrade chain (lib/upgrade/chain.h entries; empty for an enclave without one).
// With a chain, the document's user_data must be the chain head. An empty chain is not encoded,
// so a Hello without one is byte-for-byte the Hello of before upgrades.
struct Hello {
  Bytes attestation;
  std::vector<Bytes> chain;
  bool operator==(const Hello&) const = default;
};
// Witness → client: the Hello was accepted; requests may follow.
struct Ready {
  bool operator==(const Ready&) const = default;
};
struct Query {
  VolumeId volume_id{};
  bool operator==(const Query&) const = default;
};
struct Commit {
  storage::CommitRecord record;
  bool operator==(const Commit& other) const;
};
struct Known {
  storage::CommitRecord record;
  bool operator==(const Known& other) const;
};
struct Unknown {
  bool operator==(const Unknown&) const = default;
};
// Ack.signature is the witness key's Ed25519 signature over AckStatement(record).
struct Ack {
  std::array<uint8_t, kSignatureSize> signature{};
  bool operator==(const Ack&) const = default;
};
// Refused answers a Hello or a request the witness will not accept; `reason` is one line for
// humans (untrusted on the client side: escape before showing).
struct Refused {
  std::string reason;
  bool operator==(const Refused&) const = default;
};

using Message = std::variant<Challenge, Hello, Ready, Query, Commit, Known, Unknown, Ack, Refused>;
using Request = std::variant<Query, Commit>;
using Response = std::variant<Known, Unknown, Ack, Refused>;

// EncodeMessage writes `message` as a deterministic CBOR map (RFC 8949 §4.2.1) with "v" = 1 and
// "t" naming the type. A Refused reason over kMaxReasonSize is cut to fit.
Bytes EncodeMessage(const Message& message);
Bytes EncodeMessage(const Request& request);
Bytes EncodeMessage(const Response& response);

// DecodeMessage parses untrusted bytes: exactly one definite-length map in its deterministic
// encoding (so re-encoding gives the same bytes), "v" = 1, a known "t", exactly the fields of that
// type with their exact types and sizes. kMalformed (kUnsupported for another version), one line
// starting "witness: ".
Result<Message> DecodeMessage(ByteSpan data);
// DecodeRequest and DecodeResponse also require the message to be of that kind (kMalformed
// "witness: unexpected <type>" otherwise).
Result<Request> DecodeRequest(ByteSpan data);
Result<Response> DecodeResponse(ByteSpan data);

// MessageName returns "challenge", "hello", … (the wire "t").
std::string MessageName(const Message& message);

// Frame returns the stream form of one encoded message: u32 BE length, then the bytes.
// ENCLAVIA_CHECKs that the message is at most kMaxFrameSize bytes (our encoder cannot exceed it).
Bytes Frame(ByteSpan message);
// ParseFrameHeader returns the body length a 4-byte header announces: kLimitExceeded above
// kMaxFrameSize, kMalformed for 0.
Result<size_t> ParseFrameHeader(std::span<const uint8_t, kFrameHeaderSize> header);

// AckStatement is what an Ack signs: "enclavia/witness-ack/v1" || CommitStatement(record).
Bytes AckStatement(const storage::CommitRecord& record);
// VerifyAck checks an Ack's signature with the witness key from that witness's Challenge;
// kVerifyFailed otherwise.
Result<void> VerifyAck(const WitnessKey& witness_key, const storage::CommitRecord& record,
                       ByteSpan signature);

// RecordsEqual compares every field of two commit records.
bool RecordsEqual(const storage::CommitRecord& a, const storage::CommitRecord& b);

}  // namespace enclavia::witness

#endif  // ENCLAVIA_LIB_WITNESS_PROTOCOL_H_
