// SPDX-License-Identifier: Apache-2.0
#include "enclave/upgrade/handover.h"

#include <poll.h>
#include <string.h>

#include <array>
#include <cerrno>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio/post.hpp>

#include "lib/cbor/cbor.h"
#include "lib/channel/handshake.h"
#include "lib/net/framing.h"
#include "lib/sys/fd.h"
#include "lib/upgrade/wire.h"

namespace enclavia::enclave {
namespace {

using cbor::Value;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kHandoverVersion = 1;
constexpr size_t kMaxReason = 512;

Error Malformed(std::string_view what) {
  return Error(Code::kMalformed, "handover: " + std::string(what));
}

Bytes Frame32(ByteSpan body) {
  Bytes out;
  out.reserve(4 + body.size());
  auto size = static_cast<uint32_t>(body.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(size >> shift));
  }
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// FramedBody returns the body once `buffer` holds a whole u32-framed message, nullopt while
// more is needed, or an error for a frame over kMaxHandoverMessage.
Result<std::optional<ByteSpan>> FramedBody(const Bytes& buffer) {
  if (buffer.size() < 4) {
    return std::optional<ByteSpan>();
  }
  uint32_t size = 0;
  for (size_t i = 0; i < 4; ++i) {
    size = (size << 8) | buffer[i];
  }
  if (size == 0 || size > kMaxHandoverMessage) {
    return Malformed("message of " + std::to_string(size) + " bytes");
  }
  if (buffer.size() < 4 + size_t{size}) {
    return std::optional<ByteSpan>();
  }
  if (buffer.size() > 4 + size_t{size}) {
    return Malformed("trailing bytes after the message");
  }
  return std::optional<ByteSpan>(ByteSpan(buffer).subspan(4, size));
}

cbor::DecodeOptions Limits() {
  cbor::DecodeOptions options;
  options.max_input_size = kMaxHandoverMessage;
  options.max_depth = 2;
  options.max_items = 16;
  return options;
}

std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxReason)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  }
  return out;
}

// ── Blocking records over a descriptor (the old enclave's side) ──

Result<void> ReadExact(int fd, std::span<uint8_t> out, Clock::time_point deadline) {
  auto read = sys::ReadFullBy(fd, out, deadline);
  if (!read) {
    const std::string& why = read.error().message();
    return Error(read.error().code(),
                 why == "timed out"           ? "handover: the successor did not answer in time"
                 : why == "connection closed" ? "handover: the successor closed the connection"
                                              : "handover: " + why);
  }
  return Ok();
}

Result<Bytes> ReadRecord(int fd, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::array<uint8_t, net::kRecordHeaderSize> header{};
  RETURN_IF_ERROR(ReadExact(fd, header, deadline));
  size_t size = (size_t{header[0]} << 8) | header[1];
  Bytes body(size);
  RETURN_IF_ERROR(ReadExact(fd, body, deadline));
  return body;
}

Result<void> WriteRecord(int fd, ByteSpan body) {
  if (body.size() > net::kMaxRecordSize) {
    return Error(Code::kInternal, "handover: record too large");
  }
  Bytes record;
  record.reserve(2 + body.size());
  record.push_back(static_cast<uint8_t>(body.size() >> 8));
  record.push_back(static_cast<uint8_t>(body.size()));
  record.insert(record.end(), body.begin(), body.end());
  return sys::SendFull(fd, record);
}

Result<void> Flush(int fd, mux::Session& session, channel::SecureChannel& channel) {
  while (auto plaintext = session.PollOutgoing()) {
    ASSIGN_OR_RETURN(Bytes sealed, channel.Seal(*plaintext));
    RETURN_IF_ERROR(WriteRecord(fd, sealed));
  }
  return Ok();
}

// HandoverSink is the successor's end of the handover stream (on the engine's strand).
class HandoverSink : public tunnel::StreamSink, public std::enable_shared_from_this<HandoverSink> {
 public:
  HandoverSink(std::weak_ptr<tunnel::Engine> engine, mux::StreamId id,
               std::shared_ptr<HandoverServer> server)
      : engine_(std::move(engine)), id_(id), server_(std::move(server)) {}

  void OnData(Bytes bytes) override {
    auto engine = engine_.lock();
    if (!engine || started_) {
      return;
    }
    engine->Consumed(id_, bytes.size());
    if (buffer_.size() + bytes.size() > kMaxHandoverMessage + 4) {
      engine->Reset(id_, mux::ResetCode::kProtocolError, "handover message too large");
      started_ = true;
      return;
    }
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    MaybeStart(*engine);
  }
  void OnFin() override {
    auto engine = engine_.lock();
    if (engine && !started_) {
      Reply(*engine, Malformed("the stream ended before a whole message"));
    }
  }
  void OnReset(mux::ResetCode, std::string_view) override { started_ = true; }
  void OnWritable() override {}
  void OnClosed() override {}

 private:
  void MaybeStart(tunnel::Engine& engine) {
    auto body = FramedBody(buffer_);
    if (!body) {
      Reply(engine, body.error());
      return;
    }
    if (!body->has_value()) {
      return;
    }
    auto message = DecodeHandover(**body);
    ::explicit_bzero(buffer_.data(), buffer_.size());
    buffer_.clear();
    if (!message) {
      Reply(engine, message.error());
      return;
    }
    started_ = true;
    auto self = shared_from_this();
    server_->Run(std::move(*message), [self](Result<void> outcome) {
      auto live = self->engine_.lock();
      if (!live) {
        return;
      }
      boost::asio::post(live->executor(), [self, live, outcome = std::move(outcome)] {
        self->Reply(*live, outcome);
      });
    });
  }

  void Reply(tunnel::Engine& engine, const Result<void>& outcome) {
    started_ = true;
    if (replied_) {
      return;
    }
    replied_ = true;
    Bytes reply = EncodeHandoverReply(outcome);
    // The reply is tiny and the stream's credit starts at a full window: it fits at once.
    engine.Write(id_, reply);
    engine.Fin(id_);
  }

  std::weak_ptr<tunnel::Engine> engine_;
  mux::StreamId id_;
  std::shared_ptr<HandoverServer> server_;
  Bytes buffer_;
  bool started_ = false;
  bool replied_ = false;
};

}  // namespace

crypto::SecretBytes EncodeHandover(const HandoverMessage& message) {
  Value::Map map = {{Value::TextString("v"), Value::Uint(kHandoverVersion)},
                    {Value::TextString("receipt"), Value::ByteString(ByteSpan(message.receipt))}};
  if (message.ring.has_value()) {
    map.emplace_back(Value::TextString("ring"), Value::ByteString(message.ring->Expose()));
  }
  Bytes body = cbor::Encode(Value::MakeMap(std::move(map)));
  Bytes framed = Frame32(body);
  crypto::SecretBytes out(framed);
  ::explicit_bzero(body.data(), body.size());
  ::explicit_bzero(framed.data(), framed.size());
  return out;
}

Result<HandoverMessage> DecodeHandover(ByteSpan body) {
  auto root = cbor::DecodeDeterministicMap(body, Limits());
  if (!root) {
    return Malformed("message " + root.error().message());
  }
  const Value* version = root->Find("v");
  if (version == nullptr || !version->is_unsigned()) {
    return Malformed("no version");
  }
  if (version->as_uint() != kHandoverVersion) {
    return Error(Code::kUnsupported, "handover: version " + std::to_string(version->as_uint()));
  }
  const Value* receipt = root->Find("receipt");
  const Value* ring = root->Find("ring");
  if (root->as_map().size() != 2 + (ring != nullptr ? 1 : 0) || receipt == nullptr) {
    return Malformed("fields must be v, receipt and ring (optional)");
  }
  if (!receipt->is_bytes() || receipt->as_bytes().empty() ||
      receipt->as_bytes().size() > upgrade::kMaxEntrySize) {
    return Malformed("receipt must be a non-empty byte string");
  }
  HandoverMessage message;
  message.receipt = receipt->as_bytes();
  if (ring != nullptr) {
    if (!ring->is_bytes() || ring->as_bytes().empty()) {
      return Malformed("ring must be a non-empty byte string");
    }
    message.ring = crypto::SecretBytes(ring->as_bytes());
  }
  return message;
}

Bytes EncodeHandoverReply(const Result<void>& outcome) {
  Value::Map map = {{Value::TextString("v"), Value::Uint(kHandoverVersion)},
                    {Value::TextString("ok"), Value::Boolean(outcome.has_value())}};
  if (!outcome) {
    map.emplace_back(Value::TextString("error"),
                     Value::TextString(Printable(outcome.error().message())));
  }
  return Frame32(cbor::Encode(Value::MakeMap(std::move(map))));
}

Result<void> DecodeHandoverReply(ByteSpan body) {
  auto root = cbor::DecodeDeterministicMap(body, Limits());
  if (!root) {
    return Malformed("reply " + root.error().message());
  }
  const Value* version = root->Find("v");
  const Value* ok = root->Find("ok");
  const Value* error = root->Find("error");
  if (version == nullptr || !version->is_unsigned() || version->as_uint() != kHandoverVersion ||
      ok == nullptr || !ok->is_bool()) {
    return Malformed("reply must have v = 1 and ok");
  }
  if (ok->as_bool()) {
    if (root->as_map().size() != 2) {
      return Malformed("reply: unexpected fields");
    }
    return Ok();
  }
  if (root->as_map().size() != 3 || error == nullptr || !error->is_text()) {
    return Malformed("a refusal must carry an error text");
  }
  return Error(Code::kFailedPrecondition,
               "the successor refused the handover: " + Printable(error->as_text()));
}

Result<void> RunHandoverClient(int fd, std::shared_ptr<const channel::TrustPolicy> policy,
                               const HandoverPayload& payload, std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(channel::ClientHandshake handshake, channel::ClientHandshake::Create(policy));
  ASSIGN_OR_RETURN(Bytes message1, handshake.Start());
  RETURN_IF_ERROR(WriteRecord(fd, message1));
  ASSIGN_OR_RETURN(Bytes message2, ReadRecord(fd, timeout));
  auto message3 = handshake.ReadServerHello(message2);
  if (!message3) {
    return std::move(message3).error().WithContext("the successor's attestation");
  }
  RETURN_IF_ERROR(WriteRecord(fd, *message3));
  ASSIGN_OR_RETURN(channel::ClientHandshake::Established established,
                   std::move(handshake).Finish());

  ASSIGN_OR_RETURN(HandoverMessage message, payload(established.attestation));
  crypto::SecretBytes framed = EncodeHandover(message);

  mux::Session session(mux::Side::kClient);
  ASSIGN_OR_RETURN(mux::StreamId id, session.Open(upgrade::kHandoverStreamPort));
  ASSIGN_OR_RETURN(size_t taken, session.Write(id, framed.Expose()));
  if (taken != framed.size()) {
    return Error(Code::kInternal, "handover: the message does not fit the stream window");
  }
  RETURN_IF_ERROR(session.Fin(id));
  RETURN_IF_ERROR(Flush(fd, session, established.channel));

  Bytes reply;
  for (;;) {
    ASSIGN_OR_RETURN(Bytes record, ReadRecord(fd, timeout));
    ASSIGN_OR_RETURN(Bytes plaintext, established.channel.Open(record));
    RETURN_IF_ERROR(session.Receive(plaintext));
    bool finished = false;
    while (auto event = session.PollEvent()) {
      if (auto* data = std::get_if<mux::event::Data>(&*event); data != nullptr && data->id == id) {
        if (reply.size() + data->bytes.size() > kMaxHandoverMessage) {
          return Malformed("reply too large");
        }
        reply.insert(reply.end(), data->bytes.begin(), data->bytes.end());
        session.Consumed(id, data->bytes.size());
      } else if (auto* reset = std::get_if<mux::event::Reset>(&*event);
                 reset != nullptr && reset->id == id) {
        return Error(Code::kFailedPrecondition,
                     "the successor reset the handover stream: " + Printable(reset->reason));
      } else if (std::holds_alternative<mux::event::Fin>(*event) ||
                 std::holds_alternative<mux::event::Closed>(*event)) {
        finished = true;
      } else if (std::holds_alternative<mux::event::GoAway>(*event)) {
        return Error(Code::kUnavailable, "the successor is going away");
      }
    }
    RETURN_IF_ERROR(Flush(fd, session, established.channel));
    ASSIGN_OR_RETURN(std::optional<ByteSpan> body, FramedBody(reply));
    if (body.has_value()) {
      return DecodeHandoverReply(*body);
    }
    if (finished) {
      return Malformed("the successor ended the stream without a reply");
    }
  }
}

std::shared_ptr<tunnel::StreamSink> HandoverServer::Sink(
    const std::shared_ptr<tunnel::Engine>& engine, mux::StreamId id) {
  return std::make_shared<HandoverSink>(engine, id, shared_from_this());
}

void HandoverServer::Run(HandoverMessage message, std::function<void(Result<void>)> done) {
  std::thread([handler = handler_, message = std::move(message), done = std::move(done)]() mutable {
    done(handler(std::move(message)));
  }).detach();
}

}  // namespace enclavia::enclave
