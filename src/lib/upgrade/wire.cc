// SPDX-License-Identifier: Apache-2.0
#include "lib/upgrade/wire.h"

#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <initializer_list>
#include <string_view>
#include <thread>
#include <utility>

#include "lib/cbor/cbor.h"
#include "lib/net/socket.h"
#include "lib/sys/fd.h"
#include "lib/upgrade/chain.h"

namespace enclavia::upgrade {
namespace {

using cbor::Value;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kWireVersion = 1;
constexpr size_t kMaxStaged = 16;
constexpr size_t kMaxErrorMessage = 1024;
constexpr size_t kHashSize = 32;

Error Malformed(std::string_view what) {
  return Error(Code::kMalformed, "upgrade wire: " + std::string(what));
}

struct TypeName {
  MessageType type;
  std::string_view name;
};
constexpr std::array<TypeName, 10> kTypes = {{
    {MessageType::kChain, "chain"},
    {MessageType::kStage, "stage"},
    {MessageType::kStaged, "staged"},
    {MessageType::kRevoke, "revoke"},
    {MessageType::kRevoked, "revoked"},
    {MessageType::kActivate, "activate"},
    {MessageType::kActivated, "activated"},
    {MessageType::kSuccessor, "successor"},
    {MessageType::kOk, "ok"},
    {MessageType::kError, "error"},
}};

std::string_view NameOf(MessageType type) {
  for (const TypeName& t : kTypes) {
    if (t.type == type) {
      return t.name;
    }
  }
  return "error";
}

// EntryKey is the name of the one byte-string field a message type carries ("" for none).
std::string_view EntryKey(MessageType type) {
  switch (type) {
    case MessageType::kStage:
    case MessageType::kActivate:
      return "request";
    case MessageType::kStaged:
    case MessageType::kActivated:
      return "receipt";
    case MessageType::kRevoke:
      return "revocation";
    default:
      return "";
  }
}

Value List(const std::vector<Bytes>& items) {
  Value::Array array;
  array.reserve(items.size());
  for (const Bytes& item : items) {
    array.push_back(Value::ByteString(ByteSpan(item)));
  }
  return Value::MakeArray(std::move(array));
}

// Keys checks that `map` has exactly the text keys `required` plus any of `optional`.
Result<void> Keys(const Value& map, std::string_view what,
                  std::initializer_list<std::string_view> required,
                  std::initializer_list<std::string_view> optional = {}) {
  for (const auto& [key, value] : map.as_map()) {
    if (!key.is_text() ||
        (std::find(required.begin(), required.end(), std::string_view(key.as_text())) ==
             required.end() &&
         std::find(optional.begin(), optional.end(), std::string_view(key.as_text())) ==
             optional.end())) {
      return Malformed(std::string(what) + ": unknown field");
    }
  }
  for (std::string_view key : required) {
    if (map.Find(key) == nullptr) {
      return Malformed(std::string(what) + ": no " + std::string(key));
    }
  }
  return Ok();
}

Result<Bytes> EntryField(const Value& v, std::string_view what, size_t max) {
  if (!v.is_bytes() || v.as_bytes().empty() || v.as_bytes().size() > max) {
    return Malformed(std::string(what) + " must be a byte string of 1.." + std::to_string(max) +
                     " bytes");
  }
  return v.as_bytes();
}

// EntryList reads an array field that, being present, must be non-empty (empty lists are
// omitted: one message, one encoding).
Result<std::vector<Bytes>> EntryList(const Value* v, std::string_view what, size_t max_items) {
  std::vector<Bytes> out;
  if (v == nullptr) {
    return out;
  }
  if (!v->is_array() || v->as_array().empty()) {
    return Malformed(std::string(what) + " must be a non-empty array when present");
  }
  if (v->as_array().size() > max_items) {
    return Error(Code::kLimitExceeded, "upgrade wire: " + std::string(what) + " has over " +
                                           std::to_string(max_items) + " entries");
  }
  out.reserve(v->as_array().size());
  for (const Value& item : v->as_array()) {
    ASSIGN_OR_RETURN(Bytes entry, EntryField(item, std::string(what) + " entry", kMaxEntrySize));
    out.push_back(std::move(entry));
  }
  return out;
}

// OneLine makes a peer's error text printable for our own error messages.
std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), kMaxErrorMessage));
  for (char c : text.substr(0, kMaxErrorMessage)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  }
  return out;
}

// ReadExact reads `out` by `deadline` (sys::ReadFullBy), naming the wire in its errors.
Result<void> ReadExact(int fd, std::span<uint8_t> out, Clock::time_point deadline) {
  auto read = sys::ReadFullBy(fd, out, deadline);
  if (!read) {
    std::string what = read.error().message() == "timed out" ? "timed out waiting for a message"
                                                             : read.error().message();
    return Error(read.error().code(), "upgrade wire: " + what);
  }
  return Ok();
}

Error ErrorFrom(const Message& response, std::string_view where) {
  return Error(static_cast<Code>(response.code),
               std::string(where).append(": ").append(OneLine(response.message)));
}

}  // namespace

Bytes EncodeMessage(const Message& message) {
  Value::Map map = {{Value::TextString("v"), Value::Uint(kWireVersion)},
                    {Value::TextString("t"), Value::TextString(NameOf(message.type))}};
  switch (message.type) {
    case MessageType::kChain:
      if (!message.chain.empty()) {
        map.emplace_back(Value::TextString("chain"), List(message.chain));
      }
      if (!message.staged.empty()) {
        map.emplace_back(Value::TextString("staged"), List(message.staged));
      }
      if (message.pending.has_value()) {
        map.emplace_back(Value::TextString("pending"), Value::ByteString(ByteSpan(*message.pending)));
      }
      break;
    case MessageType::kStage:
    case MessageType::kStaged:
    case MessageType::kRevoke:
    case MessageType::kActivate:
    case MessageType::kActivated:
      map.emplace_back(Value::TextString(EntryKey(message.type)),
                       Value::ByteString(ByteSpan(message.entry)));
      break;
    case MessageType::kError:
      map.emplace_back(Value::TextString("code"), Value::Uint(message.code));
      map.emplace_back(Value::TextString("message"),
                       Value::TextString(message.message.size() > kMaxErrorMessage
                                             ? std::string_view(message.message).substr(0, kMaxErrorMessage)
                                             : std::string_view(message.message)));
      break;
    case MessageType::kRevoked:
    case MessageType::kSuccessor:
    case MessageType::kOk:
      break;
  }
  return cbor::Encode(Value::MakeMap(std::move(map)));
}

Result<Message> DecodeMessage(ByteSpan bytes) {
  if (bytes.size() > kMaxMessage) {
    return Error(Code::kLimitExceeded, "upgrade wire: message over 2 MiB");
  }
  cbor::DecodeOptions options;
  options.max_input_size = kMaxMessage;
  options.max_depth = 3;
  options.max_items = 2 * (kMaxChainLength + kMaxStaged) + 32;
  auto root = cbor::DecodeDeterministicMap(bytes, options);
  if (!root) {
    return Error(root.error().code() == Code::kLimitExceeded ? Code::kLimitExceeded
                                                             : Code::kMalformed,
                 "upgrade wire: message " + root.error().message());
  }
  const Value* version = root->Find("v");
  if (version == nullptr || !version->is_unsigned()) {
    return Malformed("no version");
  }
  if (version->as_uint() != kWireVersion) {
    return Error(Code::kUnsupported, "upgrade wire: version " + std::to_string(version->as_uint()));
  }
  const Value* type_value = root->Find("t");
  if (type_value == nullptr || !type_value->is_text()) {
    return Malformed("no message type");
  }
  const std::string& name = type_value->as_text();
  auto known = std::find_if(kTypes.begin(), kTypes.end(),
                            [&](const TypeName& t) { return t.name == name; });
  if (known == kTypes.end()) {
    return Malformed("unknown message type");
  }
  Message m;
  m.type = known->type;
  const std::string what(known->name);
  switch (m.type) {
    case MessageType::kChain: {
      RETURN_IF_ERROR(Keys(*root, what, {"v", "t"}, {"chain", "staged", "pending"}));
      ASSIGN_OR_RETURN(m.chain, EntryList(root->Find("chain"), "chain", kMaxChainLength));
      ASSIGN_OR_RETURN(m.staged, EntryList(root->Find("staged"), "staged", kMaxStaged));
      if (const Value* pending = root->Find("pending"); pending != nullptr) {
        ASSIGN_OR_RETURN(Bytes entry, EntryField(*pending, "pending", kMaxEntrySize));
        m.pending = std::move(entry);
      }
      break;
    }
    case MessageType::kStage:
    case MessageType::kStaged:
    case MessageType::kRevoke:
    case MessageType::kActivate:
    case MessageType::kActivated: {
      std::string_view key = EntryKey(m.type);
      RETURN_IF_ERROR(Keys(*root, what, {"v", "t", key}));
      ASSIGN_OR_RETURN(m.entry, EntryField(*root->Find(key), what + " " + std::string(key),
                                      kMaxEntrySize));
      if (m.type == MessageType::kActivate && m.entry.size() != kHashSize) {
        return Malformed("activate: request must be a 32-byte request hash");
      }
      break;
    }
    case MessageType::kError: {
      RETURN_IF_ERROR(Keys(*root, what, {"v", "t", "code", "message"}));
      const Value* code = root->Find("code");
      const Value* text = root->Find("message");
      if (!code->is_unsigned() || code->as_uint() == 0 ||
          code->as_uint() > static_cast<uint64_t>(Code::kUnavailable)) {
        return Malformed("error: code must be a known error code");
      }
      if (!text->is_text() || text->as_text().size() > kMaxErrorMessage) {
        return Malformed("error: message must be text of at most 1024 bytes");
      }
      m.code = static_cast<uint32_t>(code->as_uint());
      m.message = text->as_text();
      break;
    }
    case MessageType::kRevoked:
    case MessageType::kSuccessor:
    case MessageType::kOk:
      RETURN_IF_ERROR(Keys(*root, what, {"v", "t"}));
      break;
  }
  return m;
}

Result<void> WriteMessage(int fd, const Message& message) {
  Bytes body = EncodeMessage(message);
  if (body.size() > kMaxMessage) {
    return Error(Code::kLimitExceeded, "upgrade wire: message over 2 MiB");
  }
  Bytes frame;
  frame.reserve(4 + body.size());
  auto size = static_cast<uint32_t>(body.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    frame.push_back(static_cast<uint8_t>(size >> shift));
  }
  frame.insert(frame.end(), body.begin(), body.end());
  if (auto sent = sys::SendFull(fd, frame); !sent) {
    return Error(Code::kUnavailable, "upgrade wire: " + sent.error().message());
  }
  return Ok();
}

Result<Message> ReadMessage(int fd, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::array<uint8_t, 4> header{};
  RETURN_IF_ERROR(ReadExact(fd, header, deadline));
  uint32_t size = 0;
  for (uint8_t b : header) {
    size = (size << 8) | b;
  }
  if (size == 0) {
    return Malformed("empty frame");
  }
  if (size > kMaxMessage) {
    return Error(Code::kLimitExceeded,
                 "upgrade wire: frame of " + std::to_string(size) + " bytes (limit 2 MiB)");
  }
  Bytes body(size);
  RETURN_IF_ERROR(ReadExact(fd, body, deadline));
  return DecodeMessage(body);
}

Result<Message> Call(const net::Address& address, const Message& request,
                     std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(sys::UniqueFd fd, net::Connect(address));
  RETURN_IF_ERROR(WriteMessage(fd.get(), request));
  auto response = ReadMessage(fd.get(), timeout);
  if (!response) {
    return std::move(response).error().WithContext(address.ToString());
  }
  if (response->type == MessageType::kError) {
    return ErrorFrom(*response, address.ToString());
  }
  return response;
}

Result<HostChain> FetchChain(const net::Address& parent_upgrade_service,
                             std::chrono::milliseconds timeout) {
  // The host may bring its service up just after the enclave: a refused connection is retried
  // until `timeout`.
  auto deadline = Clock::now() + timeout;
  Message request;
  request.type = MessageType::kChain;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto response = Call(parent_upgrade_service, request,
                         std::max(left, std::chrono::milliseconds(1)));
    if (!response) {
      if (response.error().code() == Code::kUnavailable && Clock::now() + std::chrono::milliseconds(50) < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      return std::move(response).error();
    }
    if (response->type != MessageType::kChain) {
      return Malformed("the host answered \"" + std::string(NameOf(response->type)) +
                       "\" to \"chain\"");
    }
    return HostChain{std::move(response->chain), std::move(response->staged),
                     std::move(response->pending)};
  }
}

}  // namespace enclavia::upgrade
