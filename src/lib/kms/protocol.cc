// SPDX-License-Identifier: Apache-2.0
#include "lib/kms/protocol.h"

#include <errno.h>
#include <sodium.h>

#include <algorithm>
#include <initializer_list>
#include <utility>

#include <sys/socket.h>

#include "lib/cbor/cbor.h"
#include "lib/kms/kms.h"
#include "lib/net/socket.h"

namespace enclavia::kms {
namespace {

using cbor::Value;

constexpr size_t kMaxErrorMessage = 256;

Error Malformed(std::string_view what) {
  return Error(Code::kMalformed, "kms: " + std::string(what));
}

// DecodeMap decodes one message: a definite map in deterministic encoding with exactly the keys
// of one of the alternatives.
Result<Value> DecodeMap(ByteSpan data, std::initializer_list<std::string_view> keys_a,
                        std::initializer_list<std::string_view> keys_b = {},
                        std::initializer_list<std::string_view> keys_c = {}) {
  if (data.size() > kMaxMessageSize) {
    return Error(Code::kLimitExceeded, "kms: message over 64 KiB");
  }
  cbor::DecodeOptions options;
  options.max_input_size = kMaxMessageSize;
  options.max_depth = 2;
  options.max_items = 32;
  auto root = cbor::DecodeDeterministicMap(data, options);
  if (!root) {
    return Malformed("message " + root.error().message());
  }
  const Value* version = root->Find("v");
  if (version == nullptr || !version->is_unsigned() || version->as_uint() != kKmsProtocolVersion) {
    return Malformed("protocol version is not 1");
  }
  auto matches = [&](std::initializer_list<std::string_view> keys) {
    if (keys.size() == 0 || root->as_map().size() != keys.size()) {
      return false;
    }
    return std::all_of(root->as_map().begin(), root->as_map().end(), [&](const auto& entry) {
      return entry.first.is_text() &&
             std::find(keys.begin(), keys.end(), std::string_view(entry.first.as_text())) !=
                 keys.end();
    });
  };
  if (!matches(keys_a) && !matches(keys_b) && !matches(keys_c)) {
    return Malformed("unexpected fields");
  }
  return std::move(*root);
}

Result<Bytes> GetBytes(const Value& map, std::string_view key, size_t max, bool allow_empty) {
  const Value* v = map.Find(key);
  if (v == nullptr || !v->is_bytes() || v->as_bytes().size() > max ||
      (!allow_empty && v->as_bytes().empty())) {
    return Malformed(std::string(key) + " must be a byte string of at most " + std::to_string(max) +
                     " bytes");
  }
  return v->as_bytes();
}

Value::Map Versioned() { return {{Value::TextString("v"), Value::Uint(kKmsProtocolVersion)}}; }

}  // namespace

bool ValidKeyId(std::string_view key_id) {
  if (key_id.empty() || key_id.size() > kMaxKeyIdSize || key_id[0] == '.') {
    return false;
  }
  return std::all_of(key_id.begin(), key_id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

Bytes EncodeRequest(const KmsRequest& request) {
  Value::Map map = Versioned();
  map.emplace_back(Value::TextString("doc"), Value::ByteString(ByteSpan(request.attestation)));
  if (request.op == Operation::kGenerateDataKey) {
    map.emplace_back(Value::TextString("op"), Value::TextString("generate"));
    map.emplace_back(Value::TextString("key_id"), Value::TextString(request.key_id));
  } else if (request.op == Operation::kEncrypt) {
    map.emplace_back(Value::TextString("op"), Value::TextString("encrypt"));
    map.emplace_back(Value::TextString("key_id"), Value::TextString(request.key_id));
    map.emplace_back(Value::TextString("plaintext"),
                     Value::ByteString(ByteSpan(request.plaintext)));
  } else {
    map.emplace_back(Value::TextString("op"), Value::TextString("decrypt"));
    map.emplace_back(Value::TextString("blob"), Value::ByteString(ByteSpan(request.blob)));
  }
  return cbor::Encode(Value::MakeMap(std::move(map)));
}

Bytes EncodeResponse(const KmsResponse& response) {
  Value::Map map = Versioned();
  map.emplace_back(Value::TextString("key"), Value::ByteString(ByteSpan(response.sealed_key)));
  map.emplace_back(Value::TextString("blob"), Value::ByteString(ByteSpan(response.blob)));
  return cbor::Encode(Value::MakeMap(std::move(map)));
}

Bytes EncodeError(const Error& error) {
  std::string message = error.message().substr(0, kMaxErrorMessage);
  // Never split a UTF-8 sequence (the decoder requires valid text).
  while (!message.empty() && (static_cast<uint8_t>(message.back()) & 0x80) != 0) {
    message.pop_back();
  }
  Value::Map map = Versioned();
  map.emplace_back(Value::TextString("code"), Value::Uint(static_cast<uint64_t>(error.code())));
  map.emplace_back(Value::TextString("error"), Value::TextString(message));
  return cbor::Encode(Value::MakeMap(std::move(map)));
}

Result<KmsRequest> DecodeRequest(ByteSpan data) {
  ASSIGN_OR_RETURN(Value root, DecodeMap(data, {"v", "op", "key_id", "doc"},
                                         {"v", "op", "blob", "doc"},
                                         {"v", "op", "key_id", "plaintext", "doc"}));
  const Value* op = root.Find("op");
  if (op == nullptr || !op->is_text()) {
    return Malformed("no op");
  }
  KmsRequest request;
  ASSIGN_OR_RETURN(request.attestation, GetBytes(root, "doc", kMaxMessageSize, false));
  if (op->as_text() == "generate" && root.Find("plaintext") == nullptr) {
    const Value* key_id = root.Find("key_id");
    if (key_id == nullptr || !key_id->is_text() || !ValidKeyId(key_id->as_text())) {
      return Malformed("generate needs a valid key_id");
    }
    request.op = Operation::kGenerateDataKey;
    request.key_id = key_id->as_text();
    return request;
  }
  if (op->as_text() == "encrypt") {
    const Value* key_id = root.Find("key_id");
    if (key_id == nullptr || !key_id->is_text() || !ValidKeyId(key_id->as_text()) ||
        root.Find("plaintext") == nullptr) {
      return Malformed("encrypt needs a valid key_id and a plaintext");
    }
    request.op = Operation::kEncrypt;
    request.key_id = key_id->as_text();
    ASSIGN_OR_RETURN(request.plaintext, GetBytes(root, "plaintext", kMaxPlaintextSize, false));
    return request;
  }
  if (op->as_text() == "decrypt") {
    if (root.Find("blob") == nullptr) {
      return Malformed("decrypt needs a blob");
    }
    request.op = Operation::kDecrypt;
    ASSIGN_OR_RETURN(request.blob, GetBytes(root, "blob", kMaxBlobSize, false));
    return request;
  }
  return Malformed("unknown op");
}

Result<KmsResponse> DecodeResponse(ByteSpan data) {
  ASSIGN_OR_RETURN(Value root, DecodeMap(data, {"v", "key", "blob"}, {"v", "code", "error"}));
  if (const Value* code = root.Find("code")) {
    const Value* message = root.Find("error");
    if (!code->is_unsigned() || message == nullptr || !message->is_text() ||
        message->as_text().size() > kMaxErrorMessage) {
      return Malformed("bad error response");
    }
    uint64_t value = code->as_uint();
    if (value == 0 || value > static_cast<uint64_t>(Code::kUnavailable)) {
      return Malformed("error response with unknown code " + std::to_string(value));
    }
    return Error(static_cast<Code>(value), "kms: " + message->as_text());
  }
  KmsResponse response;
  ASSIGN_OR_RETURN(response.sealed_key, GetBytes(root, "key", kMaxBlobSize, true));
  ASSIGN_OR_RETURN(response.blob, GetBytes(root, "blob", kMaxBlobSize, true));
  return response;
}

Result<Bytes> SealToRecipient(ByteSpan plaintext, ByteSpan recipient_public_key) {
  if (recipient_public_key.size() != crypto_box_PUBLICKEYBYTES) {
    return Error(Code::kInvalidArgument, "kms: recipient key must be 32 bytes");
  }
  Bytes sealed(plaintext.size() + crypto_box_SEALBYTES);
  if (crypto_box_seal(sealed.data(), plaintext.data(), plaintext.size(),
                      recipient_public_key.data()) != 0) {
    return Error(Code::kInternal, "kms: crypto_box_seal failed");
  }
  return sealed;
}

Result<crypto::SecretBytes> OpenSealed(ByteSpan sealed, const crypto::X25519Keypair& recipient) {
  if (sealed.size() < crypto_box_SEALBYTES) {
    return Error(Code::kVerifyFailed, "kms: sealed key does not open");
  }
  crypto::SecretBytes plaintext(sealed.size() - crypto_box_SEALBYTES);
  if (crypto_box_seal_open(plaintext.MutableBytes().data(), sealed.data(), sealed.size(),
                           recipient.public_key.data(),
                           recipient.private_key.Expose().data()) != 0) {
    return Error(Code::kVerifyFailed, "kms: sealed key does not open");
  }
  return plaintext;
}

Result<sys::UniqueFd> ConnectTo(const net::Address& address) {
  auto fd = net::Connect(address);
  if (!fd) {
    return std::move(fd).error().WithContext("kms");
  }
  return fd;
}

Result<void> WriteMessage(int fd, ByteSpan message) {
  if (message.size() > kMaxMessageSize) {
    return Error(Code::kLimitExceeded, "kms: message over 64 KiB");
  }
  Bytes frame;
  frame.reserve(4 + message.size());
  auto size = static_cast<uint32_t>(message.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    frame.push_back(static_cast<uint8_t>(size >> shift));
  }
  frame.insert(frame.end(), message.begin(), message.end());
  auto sent = sys::SendFull(fd, frame);
  crypto::Cleanse(frame.data(), frame.size());  // It may carry a key ring (Encrypt).
  if (!sent) {
    return Error(Code::kUnavailable, "kms: " + sent.error().message());
  }
  return Ok();
}

namespace {

Result<void> RecvExact(int fd, std::span<uint8_t> out) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::recv(fd, out.data() + got, out.size() - got, 0);
    if (n == 0) {
      return Error(Code::kUnavailable, "kms: connection closed");
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Error(Code::kUnavailable, sys::IoError("kms: read", errno).message());
    }
    got += static_cast<size_t>(n);
  }
  return Ok();
}

}  // namespace

Result<Bytes> ReadMessage(int fd) {
  std::array<uint8_t, 4> header{};
  RETURN_IF_ERROR(RecvExact(fd, header));
  uint32_t size = 0;
  for (uint8_t b : header) {
    size = (size << 8) | b;
  }
  if (size == 0) {
    return Malformed("empty frame");
  }
  if (size > kMaxMessageSize) {
    return Error(Code::kLimitExceeded, "kms: frame of " + std::to_string(size) + " bytes");
  }
  Bytes body(size);
  RETURN_IF_ERROR(RecvExact(fd, body));
  return body;
}

}  // namespace enclavia::kms
