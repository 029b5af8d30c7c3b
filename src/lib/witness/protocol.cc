// SPDX-License-Identifier: Apache-2.0
#include "lib/witness/protocol.h"

#include <algorithm>
#include <initializer_list>
#include <string_view>
#include <type_traits>
#include <utility>

#include "lib/cbor/cbor.h"
#include "lib/crypto/keys.h"

namespace enclavia::witness {
namespace {

using cbor::Value;

constexpr std::string_view kAckLabel = "enclavia/witness-ack/v1";

Error Malformed(std::string_view what) {
  return Error(Code::kMalformed, "witness: " + std::string(what));
}

template <size_t N>
Value Fixed(const std::array<uint8_t, N>& bytes) {
  return Value::ByteString(ByteSpan(bytes));
}

Value EncodeRecord(const storage::CommitRecord& r) {
  return Value::MakeMap({
      {Value::TextString("volume"), Fixed(r.volume_id)},
      {Value::TextString("epoch"), Value::Uint(r.epoch)},
      {Value::TextString("version"), Value::Uint(r.version)},
      {Value::TextString("hash"), Fixed(r.superblock_hash)},
      {Value::TextString("key"), Fixed(r.volume_public_key)},
      {Value::TextString("sig"), Fixed(r.signature)},
  });
}

// Fields reads the entries of a map whose keys must be exactly `keys` (text), any order.
class Fields {
 public:
  static Result<Fields> Of(const Value& map, std::string_view what,
                           std::initializer_list<std::string_view> keys) {
    if (!map.is_map()) {
      return Malformed(std::string(what) + ": not a map");
    }
    if (map.as_map().size() != keys.size()) {
      return Malformed(std::string(what) + ": wrong number of fields");
    }
    for (const auto& [key, value] : map.as_map()) {
      if (!key.is_text() ||
          std::find(keys.begin(), keys.end(), std::string_view(key.as_text())) == keys.end()) {
        return Malformed(std::string(what) + ": unknown field");
      }
    }
    // The decoder refuses duplicate keys, so with the count right every key is present.
    return Fields(map, what);
  }

  template <size_t N>
  Result<std::array<uint8_t, N>> Fixed(std::string_view key) const {
    const Value* v = map_->Find(key);
    if (v == nullptr || !v->is_bytes() || v->as_bytes().size() != N) {
      return Malformed(what_ + ": " + std::string(key) + " must be " + std::to_string(N) +
                       " bytes");
    }
    std::array<uint8_t, N> out{};
    std::copy(v->as_bytes().begin(), v->as_bytes().end(), out.begin());
    return out;
  }
  Result<uint64_t> Uint(std::string_view key) const {
    const Value* v = map_->Find(key);
    if (v == nullptr || !v->is_unsigned()) {
      return Malformed(what_ + ": " + std::string(key) + " must be an unsigned integer");
    }
    return v->as_uint();
  }
  Result<const Value*> Get(std::string_view key) const {
    const Value* v = map_->Find(key);
    if (v == nullptr) {
      return Malformed(what_ + ": no " + std::string(key));
    }
    return v;
  }

 private:
  Fields(const Value& map, std::string_view what) : map_(&map), what_(what) {}
  const Value* map_;
  std::string what_;
};

Result<storage::CommitRecord> DecodeRecord(const Value& value) {
  ASSIGN_OR_RETURN(
      Fields f, Fields::Of(value, "record", {"volume", "epoch", "version", "hash", "key", "sig"}));
  storage::CommitRecord r;
  ASSIGN_OR_RETURN(r.volume_id, f.Fixed<storage::kVolumeIdSize>("volume"));
  ASSIGN_OR_RETURN(r.epoch, f.Uint("epoch"));
  ASSIGN_OR_RETURN(r.version, f.Uint("version"));
  ASSIGN_OR_RETURN(r.superblock_hash, f.Fixed<32>("hash"));
  ASSIGN_OR_RETURN(r.volume_public_key, f.Fixed<32>("key"));
  ASSIGN_OR_RETURN(r.signature, f.Fixed<kSignatureSize>("sig"));
  return r;
}

// CutReason keeps at most kMaxReasonSize bytes without splitting a UTF-8 sequence.
std::string CutReason(std::string_view reason) {
  if (reason.size() <= kMaxReasonSize) {
    return std::string(reason);
  }
  size_t end = kMaxReasonSize;
  while (end > 0 && (static_cast<uint8_t>(reason[end]) & 0xC0) == 0x80) {
    --end;
  }
  return std::string(reason.substr(0, end));
}

Value::Map Header(std::string_view type) {
  return {{Value::TextString("v"), Value::Uint(kProtocolVersion)},
          {Value::TextString("t"), Value::TextString(type)}};
}

struct Encoder {
  Value::Map operator()(const Challenge& m) const {
    auto map = Header("challenge");
    map.emplace_back(Value::TextString("nonce"), Fixed(m.nonce));
    map.emplace_back(Value::TextString("key"), Fixed(m.witness_key));
    return map;
  }
  Value::Map operator()(const Hello& m) const {
    auto map = Header("hello");
    map.emplace_back(Value::TextString("doc"), Value::ByteString(ByteSpan(m.attestation)));
    if (!m.chain.empty()) {
      Value::Array chain;
      for (const Bytes& entry : m.chain) {
        chain.push_back(Value::ByteString(ByteSpan(entry)));
      }
      map.emplace_back(Value::TextString("chain"), Value::MakeArray(std::move(chain)));
    }
    return map;
  }
  Value::Map operator()(const Ready&) const { return Header("ready"); }
  Value::Map operator()(const Query& m) const {
    auto map = Header("query");
    map.emplace_back(Value::TextString("volume"), Fixed(m.volume_id));
    return map;
  }
  Value::Map operator()(const Commit& m) const {
    auto map = Header("commit");
    map.emplace_back(Value::TextString("record"), EncodeRecord(m.record));
    return map;
  }
  Value::Map operator()(const Known& m) const {
    auto map = Header("known");
    map.emplace_back(Value::TextString("record"), EncodeRecord(m.record));
    return map;
  }
  Value::Map operator()(const Unknown&) const { return Header("unknown"); }
  Value::Map operator()(const Ack& m) const {
    auto map = Header("ack");
    map.emplace_back(Value::TextString("sig"), Fixed(m.signature));
    return map;
  }
  Value::Map operator()(const Refused& m) const {
    auto map = Header("refused");
    map.emplace_back(Value::TextString("reason"), Value::TextString(CutReason(m.reason)));
    return map;
  }
};

Result<Message> DecodeBody(const Value& root, std::string_view type) {
  if (type == "challenge") {
    ASSIGN_OR_RETURN(Fields f, Fields::Of(root, "challenge", {"v", "t", "nonce", "key"}));
    Challenge m;
    ASSIGN_OR_RETURN(m.nonce, f.Fixed<kNonceSize>("nonce"));
    ASSIGN_OR_RETURN(m.witness_key, f.Fixed<kWitnessKeySize>("key"));
    return Message(m);
  }
  if (type == "hello") {
    const bool chained = root.Find("chain") != nullptr;
    ASSIGN_OR_RETURN(Fields f, chained ? Fields::Of(root, "hello", {"v", "t", "doc", "chain"})
                                       : Fields::Of(root, "hello", {"v", "t", "doc"}));
    ASSIGN_OR_RETURN(const Value* doc, f.Get("doc"));
    if (!doc->is_bytes() || doc->as_bytes().empty()) {
      return Malformed("hello: doc must be a non-empty byte string");
    }
    Hello hello{doc->as_bytes(), {}};
    if (chained) {
      ASSIGN_OR_RETURN(const Value* chain, f.Get("chain"));
      // An empty array has another encoding than an absent one: refused, so there is one form.
      if (!chain->is_array() || chain->as_array().empty() ||
          chain->as_array().size() > kMaxHelloChain) {
        return Malformed("hello: chain must be an array of 1..64 entries");
      }
      for (const Value& entry : chain->as_array()) {
        if (!entry.is_bytes() || entry.as_bytes().empty() ||
            entry.as_bytes().size() > kMaxChainEntrySize) {
          return Malformed("hello: a chain entry must be a byte string of 1..24576 bytes");
        }
        hello.chain.push_back(entry.as_bytes());
      }
    }
    return Message(std::move(hello));
  }
  if (type == "ready") {
    RETURN_IF_ERROR(Fields::Of(root, "ready", {"v", "t"}));
    return Message(Ready{});
  }
  if (type == "query") {
    ASSIGN_OR_RETURN(Fields f, Fields::Of(root, "query", {"v", "t", "volume"}));
    Query m;
    ASSIGN_OR_RETURN(m.volume_id, f.Fixed<storage::kVolumeIdSize>("volume"));
    return Message(m);
  }
  if (type == "commit" || type == "known") {
    ASSIGN_OR_RETURN(Fields f, Fields::Of(root, type, {"v", "t", "record"}));
    ASSIGN_OR_RETURN(const Value* record_value, f.Get("record"));
    ASSIGN_OR_RETURN(storage::CommitRecord record, DecodeRecord(*record_value));
    if (type == "commit") {
      return Message(Commit{record});
    }
    return Message(Known{record});
  }
  if (type == "unknown") {
    RETURN_IF_ERROR(Fields::Of(root, "unknown", {"v", "t"}));
    return Message(Unknown{});
  }
  if (type == "ack") {
    ASSIGN_OR_RETURN(Fields f, Fields::Of(root, "ack", {"v", "t", "sig"}));
    Ack m;
    ASSIGN_OR_RETURN(m.signature, f.Fixed<kSignatureSize>("sig"));
    return Message(m);
  }
  if (type == "refused") {
    ASSIGN_OR_RETURN(Fields f, Fields::Of(root, "refused", {"v", "t", "reason"}));
    ASSIGN_OR_RETURN(const Value* reason, f.Get("reason"));
    if (!reason->is_text() || reason->as_text().size() > kMaxReasonSize) {
      return Malformed("refused: reason must be text of at most 256 bytes");
    }
    return Message(Refused{reason->as_text()});
  }
  return Malformed("unknown message type");
}

}  // namespace

bool Commit::operator==(const Commit& other) const { return RecordsEqual(record, other.record); }
bool Known::operator==(const Known& other) const { return RecordsEqual(record, other.record); }

bool RecordsEqual(const storage::CommitRecord& a, const storage::CommitRecord& b) {
  return a.volume_id == b.volume_id && a.epoch == b.epoch && a.version == b.version &&
         a.superblock_hash == b.superblock_hash && a.volume_public_key == b.volume_public_key &&
         a.signature == b.signature;
}

Bytes EncodeMessage(const Message& message) {
  return cbor::Encode(Value::MakeMap(std::visit(Encoder{}, message)));
}

Bytes EncodeMessage(const Request& request) {
  return std::visit([](const auto& m) { return EncodeMessage(Message(m)); }, request);
}

Bytes EncodeMessage(const Response& response) {
  return std::visit([](const auto& m) { return EncodeMessage(Message(m)); }, response);
}

Result<Message> DecodeMessage(ByteSpan data) {
  if (data.size() > kMaxFrameSize) {
    return Error(Code::kLimitExceeded, "witness: message over 2 MiB");
  }
  cbor::DecodeOptions options;
  options.max_input_size = kMaxFrameSize;
  options.max_depth = 4;
  options.max_items = 64 + kMaxHelloChain;
  // One message, one byte form: no alternative encodings for a tamperer to play with.
  auto root = cbor::DecodeDeterministicMap(data, options);
  if (!root) {
    return Malformed("message " + root.error().message());
  }
  const Value* version = root->Find("v");
  if (version == nullptr || !version->is_unsigned()) {
    return Malformed("no protocol version");
  }
  if (version->as_uint() != kProtocolVersion) {
    return Error(Code::kUnsupported,
                 "witness: protocol version " + std::to_string(version->as_uint()));
  }
  const Value* type = root->Find("t");
  if (type == nullptr || !type->is_text()) {
    return Malformed("no message type");
  }
  return DecodeBody(*root, type->as_text());
}

Result<Request> DecodeRequest(ByteSpan data) {
  ASSIGN_OR_RETURN(Message m, DecodeMessage(data));
  if (auto* q = std::get_if<Query>(&m)) {
    return Request(*q);
  }
  if (auto* c = std::get_if<Commit>(&m)) {
    return Request(*c);
  }
  return Malformed("unexpected " + MessageName(m));
}

Result<Response> DecodeResponse(ByteSpan data) {
  ASSIGN_OR_RETURN(Message m, DecodeMessage(data));
  return std::visit(
      [&](auto& v) -> Result<Response> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Known> || std::is_same_v<T, Unknown> ||
                      std::is_same_v<T, Ack> || std::is_same_v<T, Refused>) {
          return Response(std::move(v));
        } else {
          return Malformed("unexpected " + MessageName(m));
        }
      },
      m);
}

std::string MessageName(const Message& message) {
  static constexpr std::array<std::string_view, 9> kNames = {
      "challenge", "hello", "ready", "query", "commit", "known", "unknown", "ack", "refused"};
  static_assert(kNames.size() == std::variant_size_v<Message>);
  return std::string(kNames[message.index()]);
}

Bytes Frame(ByteSpan message) {
  ENCLAVIA_CHECK(message.size() <= kMaxFrameSize);
  Bytes out;
  out.reserve(kFrameHeaderSize + message.size());
  auto size = static_cast<uint32_t>(message.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(size >> shift));
  }
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

Result<size_t> ParseFrameHeader(std::span<const uint8_t, kFrameHeaderSize> header) {
  uint32_t size = 0;
  for (uint8_t b : header) {
    size = (size << 8) | b;
  }
  if (size == 0) {
    return Malformed("empty frame");
  }
  if (size > kMaxFrameSize) {
    return Error(Code::kLimitExceeded,
                 "witness: frame of " + std::to_string(size) + " bytes (limit 2097152)");
  }
  return size_t{size};
}

Bytes AckStatement(const storage::CommitRecord& record) {
  Bytes out(kAckLabel.begin(), kAckLabel.end());
  Bytes statement = storage::CommitStatement(record);
  out.insert(out.end(), statement.begin(), statement.end());
  return out;
}

Result<void> VerifyAck(const WitnessKey& witness_key, const storage::CommitRecord& record,
                       ByteSpan signature) {
  auto key = crypto::PublicKey::FromRaw(crypto::SignatureAlgorithm::kEd25519, witness_key);
  if (!key) {
    return Error(Code::kVerifyFailed, "witness ack: bad witness key");
  }
  if (!key->Verify(AckStatement(record), signature)) {
    return Error(Code::kVerifyFailed, "witness ack: bad signature");
  }
  return Ok();
}

}  // namespace enclavia::witness
