// SPDX-License-Identifier: Apache-2.0
#include "lib/mux/mux.h"

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lib/base/reader.h"

// Wire format and rules: docs/formats/mux.md.
namespace enclavia::mux {
namespace {

constexpr uint8_t kMaxResetCode = static_cast<uint8_t>(ResetCode::kInternal);
constexpr uint64_t kMaxStreamId = std::numeric_limits<StreamId>::max();
// A DATA frame that would not hold all of a stream's queued bytes is not started in the last
// few bytes of a message: a fresh message carries it whole, instead of a sliver and a remainder.
constexpr size_t kMinDataSplit = 512;
// Small writes are appended to the stream's last queued buffer up to this size, so a writer of
// many tiny pieces costs one allocation per kCoalesceSize instead of one per piece.
constexpr size_t kCoalesceSize = size_t{16} * 1024;

Error Fail(Code code, const std::string& message) { return {code, "mux: " + message}; }

std::string Num(uint64_t v) { return std::to_string(v); }

std::string_view TypeName(FrameType type) {
  switch (type) {
    case FrameType::kOpen:
      return "OPEN";
    case FrameType::kData:
      return "DATA";
    case FrameType::kWindow:
      return "WINDOW";
    case FrameType::kFin:
      return "FIN";
    case FrameType::kReset:
      return "RESET";
    case FrameType::kPing:
      return "PING";
    case FrameType::kPong:
      return "PONG";
    case FrameType::kGoAway:
      return "GOAWAY";
  }
  return "?";
}

Error BadBodySize(FrameType type, StreamId id, size_t size) {
  return Fail(Code::kMalformed, std::string(TypeName(type)) + " frame on stream " + Num(id) +
                                    " has a body of " + Num(size) + " bytes");
}

void PutU16(Bytes& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void PutU32(Bytes& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void PutU64(Bytes& out, uint64_t v) {
  PutU32(out, static_cast<uint32_t>(v >> 32));
  PutU32(out, static_cast<uint32_t>(v));
}

uint32_t GetU32(ByteSpan b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

uint64_t GetU64(ByteSpan b) { return (uint64_t{GetU32(b)} << 32) | GetU32(b.subspan(4)); }

// PutHeader appends a frame header; `body_size` must fit the u16 length.
void PutHeader(Bytes& out, FrameType type, StreamId id, size_t body_size) {
  out.push_back(static_cast<uint8_t>(type));
  PutU32(out, id);
  PutU16(out, static_cast<uint16_t>(body_size));
}

// BoundReason cuts an application-supplied reason to kMaxReasonSize bytes, backing off to a
// UTF-8 character boundary so valid text stays valid.
std::string_view BoundReason(std::string_view reason) {
  if (reason.size() <= kMaxReasonSize) {
    return reason;
  }
  size_t n = kMaxReasonSize;
  while (n > 0 && (static_cast<uint8_t>(reason[n]) & 0xC0) == 0x80) {
    --n;
  }
  return reason.substr(0, n);
}

struct Stream {
  uint64_t send_credit = 0;    // Bytes Write may still take (the peer's window minus queued/sent).
  uint64_t recv_credit = 0;    // Bytes the peer may still send before it needs a WINDOW.
  uint64_t unconsumed = 0;     // Delivered in event::Data, not yet returned by Consumed.
  uint64_t pending_grant = 0;  // Consumed, not yet granted back in a WINDOW.
  std::deque<Bytes> queue;     // Written, not yet sent; front() is sent from front_offset on.
  size_t front_offset = 0;
  size_t queued = 0;
  bool in_ready = false;        // Listed in State::ready.
  bool blocked = false;         // A Write took less than offered; a WINDOW brings event::Writable.
  bool fin_queued = false;      // Fin was called: no more Write.
  bool fin_after_data = false;  // The FIN goes out once the queue drains.
  bool fin_sent = false;        // Our FIN left through PollOutgoing.
  bool fin_received = false;
};

// Control is one encoded control frame waiting for PollOutgoing. `fin_of` names the stream
// whose FIN this is (0 otherwise): emitting it may close that stream.
struct Control {
  Bytes frame;
  StreamId fin_of = 0;
};

}  // namespace

// State is Session's private representation; Session's methods use its members directly.
// NOLINTBEGIN(misc-non-private-member-variables-in-classes)
struct Session::State {
  State(Side s, Options o) : side(s), options(o) {}

  Side side;
  Options options;
  std::unordered_map<StreamId, Stream> streams;
  std::deque<Control> control;
  size_t control_bytes = 0;
  // Streams with queued data, in round-robin order. Entries of streams that were reset since
  // stay until they reach the front (ids are never reused, so they cannot be confused).
  std::deque<StreamId> ready;
  size_t queued_bytes = 0;
  std::deque<Event> events;
  uint64_t next_id = 1;              // Client: the next stream id to open.
  StreamId highest_peer_id = 0;      // Server: the highest id the peer opened (even if refused).
  StreamId highest_accepted_id = 0;  // Server: the highest id we accepted (GOAWAY's last id).
  bool go_away_sent = false;
  bool go_away_received = false;
  bool failed = false;
  // NOLINTEND(misc-non-private-member-variables-in-classes)

  // HighestOpenedId is the highest stream id that exists or existed in this session.
  StreamId HighestOpenedId() const {
    if (side == Side::kServer) {
      return highest_peer_id;
    }
    return next_id == 1 ? 0 : static_cast<StreamId>(next_id - 2);
  }

  void QueueControl(Bytes frame, StreamId fin_of = 0) {
    control_bytes += frame.size();
    control.push_back(Control{std::move(frame), fin_of});
  }

  void QueueFrame(FrameType type, StreamId id, ByteSpan body) {
    Bytes frame;
    frame.reserve(kFrameHeaderSize + body.size());
    PutHeader(frame, type, id, body.size());
    frame.insert(frame.end(), body.begin(), body.end());
    QueueControl(std::move(frame));
  }

  void QueueReset(StreamId id, ResetCode code, std::string_view reason) {
    reason = BoundReason(reason);
    Bytes body;
    body.reserve(1 + reason.size());
    body.push_back(static_cast<uint8_t>(code));
    ByteSpan text = AsBytes(reason);
    body.insert(body.end(), text.begin(), text.end());
    QueueFrame(FrameType::kReset, id, body);
  }

  void QueueWindow(StreamId id, uint32_t increment) {
    Bytes body;
    PutU32(body, increment);
    QueueFrame(FrameType::kWindow, id, body);
  }

  // Erase forgets a stream and its queued data; the id is never used again.
  void Erase(std::unordered_map<StreamId, Stream>::iterator it) {
    queued_bytes -= it->second.queued;
    streams.erase(it);
  }

  // ResetStream ends a stream we decided to end: RESET to the peer, and event::Reset when the
  // decision was the Session's, not the application's.
  void ResetStream(std::unordered_map<StreamId, Stream>::iterator it, ResetCode code,
                   std::string_view reason, bool notify) {
    StreamId id = it->first;
    Erase(it);
    QueueReset(id, code, reason);
    if (notify) {
      events.emplace_back(event::Reset{id, code, std::string(BoundReason(reason))});
    }
  }

  // FinSent records that our FIN for `id` left; with the peer's FIN in, the stream is closed.
  void FinSent(StreamId id) {
    auto it = streams.find(id);
    if (it == streams.end()) {
      return;
    }
    it->second.fin_sent = true;
    if (it->second.fin_received) {
      Erase(it);
      events.emplace_back(event::Closed{id});
    }
  }

  // TakeData copies `n` queued bytes of `st` to the end of `out`.
  void TakeData(Stream& st, size_t n, Bytes& out) {
    st.queued -= n;
    queued_bytes -= n;
    while (n > 0) {
      const Bytes& front = st.queue.front();
      size_t take = std::min(front.size() - st.front_offset, n);
      const uint8_t* p = front.data() + st.front_offset;
      out.insert(out.end(), p, p + take);
      st.front_offset += take;
      n -= take;
      if (st.front_offset == front.size()) {
        st.queue.pop_front();
        st.front_offset = 0;
      }
    }
  }

  Result<void> ReceiveMessage(ByteSpan message);
  Result<void> OnOpen(StreamId id, ByteSpan body);
  Result<void> OnData(StreamId id, ByteSpan body);
  Result<void> OnWindow(StreamId id, ByteSpan body);
  Result<void> OnFin(StreamId id, ByteSpan body);
  Result<void> OnReset(StreamId id, ByteSpan body);
  Result<void> OnPing(FrameType type, StreamId id, ByteSpan body);
  Result<void> OnGoAway(StreamId id, ByteSpan body);
};

namespace {

// CheckStreamFrameId rejects stream frames on stream 0 or on an even id: every stream is
// opened by the client, with an odd id.
Result<void> CheckStreamFrameId(FrameType type, StreamId id) {
  if (id == 0 || id % 2 == 0) {
    return Fail(Code::kMalformed,
                std::string(TypeName(type)) + " frame on invalid stream id " + Num(id));
  }
  return Ok();
}

Result<void> CheckSessionFrameId(FrameType type, StreamId id) {
  if (id != 0) {
    return Fail(Code::kMalformed,
                std::string(TypeName(type)) + " frame on stream " + Num(id) + ", not 0");
  }
  return Ok();
}

Result<ResetCode> ParseResetCode(FrameType type, uint8_t code) {
  if (code > kMaxResetCode) {
    return Fail(Code::kMalformed,
                std::string(TypeName(type)) + " frame with unknown code " + Num(code));
  }
  return static_cast<ResetCode>(code);
}

}  // namespace

Result<void> Session::State::ReceiveMessage(ByteSpan message) {
  if (message.empty()) {
    return Fail(Code::kMalformed, "empty message");
  }
  Reader r(message);
  while (!r.empty()) {
    auto type = r.ReadU8();
    auto id = r.ReadU32Be();
    auto body = r.ReadPrefixed16();
    if (!type || !id || !body) {
      return Fail(Code::kMalformed, "truncated frame");
    }
    auto frame_type = static_cast<FrameType>(*type);
    switch (frame_type) {
      case FrameType::kOpen:
        RETURN_IF_ERROR(OnOpen(*id, *body));
        break;
      case FrameType::kData:
        RETURN_IF_ERROR(OnData(*id, *body));
        break;
      case FrameType::kWindow:
        RETURN_IF_ERROR(OnWindow(*id, *body));
        break;
      case FrameType::kFin:
        RETURN_IF_ERROR(OnFin(*id, *body));
        break;
      case FrameType::kReset:
        RETURN_IF_ERROR(OnReset(*id, *body));
        break;
      case FrameType::kPing:
      case FrameType::kPong:
        RETURN_IF_ERROR(OnPing(frame_type, *id, *body));
        break;
      case FrameType::kGoAway:
        RETURN_IF_ERROR(OnGoAway(*id, *body));
        break;
      default:
        return Fail(Code::kMalformed, "unknown frame type " + Num(*type));
    }
  }
  return Ok();
}

Result<void> Session::State::OnOpen(StreamId id, ByteSpan body) {
  if (side != Side::kServer) {
    return Fail(Code::kMalformed, "OPEN frame from the server");
  }
  if (body.size() != 2) {
    return BadBodySize(FrameType::kOpen, id, body.size());
  }
  RETURN_IF_ERROR(CheckStreamFrameId(FrameType::kOpen, id));
  if (id <= highest_peer_id) {
    return Fail(Code::kMalformed,
                "OPEN of stream " + Num(id) + " after stream " + Num(highest_peer_id));
  }
  highest_peer_id = id;
  auto port = static_cast<uint16_t>((body[0] << 8) | body[1]);
  if (go_away_sent) {
    QueueReset(id, ResetCode::kRefused, "going away");
    return Ok();
  }
  if (streams.size() >= options.max_streams) {
    QueueReset(id, ResetCode::kRefused, "too many streams");
    return Ok();
  }
  Stream& st = streams[id];
  st.send_credit = options.initial_window;
  st.recv_credit = options.initial_window;
  highest_accepted_id = id;
  events.emplace_back(event::Opened{id, port});
  return Ok();
}

Result<void> Session::State::OnData(StreamId id, ByteSpan body) {
  RETURN_IF_ERROR(CheckStreamFrameId(FrameType::kData, id));
  if (body.empty()) {
    return BadBodySize(FrameType::kData, id, 0);
  }
  auto it = streams.find(id);
  if (it == streams.end()) {
    if (id > HighestOpenedId()) {
      return Fail(Code::kMalformed, "DATA on stream " + Num(id) + ", which was never opened");
    }
    return Ok();  // The stream was reset or closed meanwhile; its data no longer matters.
  }
  Stream& st = it->second;
  if (st.fin_received) {
    ResetStream(it, ResetCode::kProtocolError, "data after fin", /*notify=*/true);
    return Ok();
  }
  if (body.size() > st.recv_credit) {
    return Fail(Code::kLimitExceeded, "stream " + Num(id) + " exceeded its window");
  }
  st.recv_credit -= body.size();
  st.unconsumed += body.size();
  events.emplace_back(event::Data{id, Bytes(body.begin(), body.end())});
  return Ok();
}

Result<void> Session::State::OnWindow(StreamId id, ByteSpan body) {
  RETURN_IF_ERROR(CheckStreamFrameId(FrameType::kWindow, id));
  if (body.size() != 4) {
    return BadBodySize(FrameType::kWindow, id, body.size());
  }
  uint32_t increment = GetU32(body);
  if (increment == 0) {
    return Fail(Code::kMalformed, "WINDOW frame on stream " + Num(id) + " with a zero increment");
  }
  auto it = streams.find(id);
  if (it == streams.end()) {
    return Ok();
  }
  Stream& st = it->second;
  // The peer grants only bytes it received, which we counted against the credit when written,
  // so a correct peer never lifts the credit above the initial window.
  if (st.send_credit + increment > options.initial_window) {
    return Fail(Code::kLimitExceeded, "WINDOW frame overflows the window of stream " + Num(id));
  }
  // Writable when a writer was turned away, or when the credit was used up exactly: a writer
  // that never offers more than send_credit() also waits for this event.
  bool was_exhausted = st.send_credit == 0;
  st.send_credit += increment;
  if (st.blocked || was_exhausted) {
    st.blocked = false;
    events.emplace_back(event::Writable{id});
  }
  return Ok();
}

Result<void> Session::State::OnFin(StreamId id, ByteSpan body) {
  RETURN_IF_ERROR(CheckStreamFrameId(FrameType::kFin, id));
  if (!body.empty()) {
    return BadBodySize(FrameType::kFin, id, body.size());
  }
  auto it = streams.find(id);
  if (it == streams.end()) {
    return Ok();
  }
  Stream& st = it->second;
  if (st.fin_received) {
    ResetStream(it, ResetCode::kProtocolError, "second fin", /*notify=*/true);
    return Ok();
  }
  st.fin_received = true;
  events.emplace_back(event::Fin{id});
  if (st.fin_sent) {
    Erase(it);
    events.emplace_back(event::Closed{id});
  }
  return Ok();
}

Result<void> Session::State::OnReset(StreamId id, ByteSpan body) {
  RETURN_IF_ERROR(CheckStreamFrameId(FrameType::kReset, id));
  if (body.empty() || body.size() > 1 + kMaxReasonSize) {
    return BadBodySize(FrameType::kReset, id, body.size());
  }
  ASSIGN_OR_RETURN(ResetCode code, ParseResetCode(FrameType::kReset, body[0]));
  auto it = streams.find(id);
  if (it == streams.end()) {
    return Ok();  // Both sides reset at once, or the stream closed meanwhile.
  }
  Erase(it);
  events.emplace_back(event::Reset{id, code, std::string(AsString(body.subspan(1)))});
  return Ok();
}

Result<void> Session::State::OnPing(FrameType type, StreamId id, ByteSpan body) {
  RETURN_IF_ERROR(CheckSessionFrameId(type, id));
  if (body.size() != 8) {
    return BadBodySize(type, id, body.size());
  }
  if (type == FrameType::kPing) {
    QueueFrame(FrameType::kPong, 0, body);
  } else {
    events.emplace_back(event::Pong{GetU64(body)});
  }
  return Ok();
}

Result<void> Session::State::OnGoAway(StreamId id, ByteSpan body) {
  RETURN_IF_ERROR(CheckSessionFrameId(FrameType::kGoAway, id));
  if (body.size() < 5 || body.size() > 5 + kMaxReasonSize) {
    return BadBodySize(FrameType::kGoAway, id, body.size());
  }
  StreamId last_id = GetU32(body);
  ASSIGN_OR_RETURN(ResetCode code, ParseResetCode(FrameType::kGoAway, body[4]));
  std::string reason(AsString(body.subspan(5)));
  go_away_received = true;
  events.emplace_back(event::GoAway{last_id, code, reason});
  if (side != Side::kClient) {
    return Ok();  // The server opens no streams, so none of its streams can be refused.
  }
  // Streams above last_id were not (and will not be) accepted by the server.
  std::vector<StreamId> refused;
  for (const auto& [stream_id, st] : streams) {
    if (stream_id > last_id) {
      refused.push_back(stream_id);
    }
  }
  std::sort(refused.begin(), refused.end());
  for (StreamId stream_id : refused) {
    Erase(streams.find(stream_id));
    events.emplace_back(event::Reset{stream_id, ResetCode::kRefused, reason});
  }
  return Ok();
}

Session::Session(Side side, Options options) : state_(std::make_unique<State>(side, options)) {
  ENCLAVIA_CHECK(options.initial_window > 0);
  ENCLAVIA_CHECK(options.max_message_size >= kMinMessageSize);
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

Result<StreamId> Session::Open(uint16_t port) {
  State& s = *state_;
  if (s.side != Side::kClient) {
    return Fail(Code::kFailedPrecondition, "only the client opens streams");
  }
  if (s.go_away_sent || s.go_away_received) {
    return Fail(Code::kFailedPrecondition, "the session is going away");
  }
  if (s.streams.size() >= s.options.max_streams) {
    return Fail(Code::kLimitExceeded, "too many open streams");
  }
  if (s.next_id > kMaxStreamId) {
    return Fail(Code::kLimitExceeded, "stream ids exhausted");
  }
  auto id = static_cast<StreamId>(s.next_id);
  s.next_id += 2;
  Stream& st = s.streams[id];
  st.send_credit = s.options.initial_window;
  st.recv_credit = s.options.initial_window;
  Bytes body;
  PutU16(body, port);
  s.QueueFrame(FrameType::kOpen, id, body);
  return id;
}

Result<size_t> Session::Write(StreamId id, ByteSpan data) {
  State& s = *state_;
  auto it = s.streams.find(id);
  if (it == s.streams.end()) {
    return Fail(Code::kNotFound, "stream " + Num(id) + " is not open");
  }
  Stream& st = it->second;
  if (st.fin_queued) {
    return Fail(Code::kFailedPrecondition, "stream " + Num(id) + " is finished");
  }
  size_t n = static_cast<size_t>(std::min<uint64_t>(data.size(), st.send_credit));
  if (n < data.size()) {
    st.blocked = true;
  }
  if (n == 0) {
    return size_t{0};
  }
  ByteSpan take = data.first(n);
  if (!st.queue.empty() && st.queue.back().size() + n <= kCoalesceSize) {
    st.queue.back().insert(st.queue.back().end(), take.begin(), take.end());
  } else {
    st.queue.emplace_back(take.begin(), take.end());
  }
  st.send_credit -= n;
  st.queued += n;
  s.queued_bytes += n;
  if (!st.in_ready) {
    st.in_ready = true;
    s.ready.push_back(id);
  }
  return n;
}

Result<void> Session::Fin(StreamId id) {
  State& s = *state_;
  auto it = s.streams.find(id);
  if (it == s.streams.end()) {
    return Fail(Code::kNotFound, "stream " + Num(id) + " is not open");
  }
  Stream& st = it->second;
  if (st.fin_queued) {
    return Fail(Code::kFailedPrecondition, "stream " + Num(id) + " is finished");
  }
  st.fin_queued = true;
  st.blocked = false;
  if (st.queued > 0) {
    st.fin_after_data = true;  // PollOutgoing sends it right after the last DATA.
  } else {
    Bytes frame;
    PutHeader(frame, FrameType::kFin, id, 0);
    s.QueueControl(std::move(frame), id);
  }
  return Ok();
}

Result<void> Session::Reset(StreamId id, ResetCode code, std::string_view reason) {
  State& s = *state_;
  auto it = s.streams.find(id);
  if (it == s.streams.end()) {
    return Fail(Code::kNotFound, "stream " + Num(id) + " is not open");
  }
  s.ResetStream(it, code, reason, /*notify=*/false);
  return Ok();
}

void Session::Consumed(StreamId id, size_t n) {
  State& s = *state_;
  auto it = s.streams.find(id);
  if (it == s.streams.end()) {
    return;
  }
  Stream& st = it->second;
  uint64_t take = std::min<uint64_t>(n, st.unconsumed);
  st.unconsumed -= take;
  if (st.fin_received) {
    return;  // The peer sends nothing more; a WINDOW would be wasted.
  }
  st.pending_grant += take;
  // Granting in halves keeps WINDOW frames rare while the peer never waits for a full round
  // trip with an empty window.
  if (st.pending_grant > 0 && st.pending_grant * 2 >= s.options.initial_window) {
    s.QueueWindow(id, static_cast<uint32_t>(st.pending_grant));
    st.recv_credit += st.pending_grant;
    st.pending_grant = 0;
  }
}

void Session::Ping(uint64_t opaque) {
  Bytes body;
  PutU64(body, opaque);
  state_->QueueFrame(FrameType::kPing, 0, body);
}

void Session::GoAway(ResetCode code, std::string_view reason) {
  State& s = *state_;
  if (s.go_away_sent) {
    return;
  }
  s.go_away_sent = true;
  reason = BoundReason(reason);
  Bytes body;
  body.reserve(5 + reason.size());
  PutU32(body, s.side == Side::kServer ? s.highest_accepted_id : 0);
  body.push_back(static_cast<uint8_t>(code));
  ByteSpan text = AsBytes(reason);
  body.insert(body.end(), text.begin(), text.end());
  s.QueueFrame(FrameType::kGoAway, 0, body);
}

Result<void> Session::Receive(ByteSpan message) {
  State& s = *state_;
  if (s.failed) {
    return Fail(Code::kFailedPrecondition, "session already failed");
  }
  auto result = s.ReceiveMessage(message);
  if (!result) {
    s.failed = true;
  }
  return result;
}

std::optional<Event> Session::PollEvent() {
  State& s = *state_;
  if (s.events.empty()) {
    return std::nullopt;
  }
  Event e = std::move(s.events.front());
  s.events.pop_front();
  return e;
}

std::optional<Bytes> Session::PollOutgoing() {
  State& s = *state_;
  if (s.control.empty() && s.queued_bytes == 0) {
    return std::nullopt;
  }
  const size_t max = s.options.max_message_size;
  Bytes msg;
  msg.reserve(
      std::min(max, s.control_bytes + s.queued_bytes + kFrameHeaderSize * (s.ready.size() + 1)));

  while (!s.control.empty() && msg.size() + s.control.front().frame.size() <= max) {
    Control c = std::move(s.control.front());
    s.control.pop_front();
    s.control_bytes -= c.frame.size();
    msg.insert(msg.end(), c.frame.begin(), c.frame.end());
    if (c.fin_of != 0) {
      s.FinSent(c.fin_of);
    }
  }
  // DATA waits until every control frame is out: a stream's OPEN goes before its data.
  if (!s.control.empty()) {
    return msg;
  }

  // Round-robin: each stream in the ready list gets at most one frame per message and goes to
  // the back if it has more.
  for (size_t turns = s.ready.size(); turns > 0 && msg.size() + kFrameHeaderSize < max; --turns) {
    StreamId id = s.ready.front();
    auto it = s.streams.find(id);
    if (it == s.streams.end()) {
      s.ready.pop_front();  // Reset or refused since it was listed.
      continue;
    }
    Stream& st = it->second;
    size_t n = std::min({st.queued, max - msg.size() - kFrameHeaderSize, kMaxDataPerFrame});
    if (n < st.queued && n < kMinDataSplit && !msg.empty()) {
      break;
    }
    s.ready.pop_front();
    PutHeader(msg, FrameType::kData, id, n);
    s.TakeData(st, n, msg);
    if (st.queued > 0) {
      s.ready.push_back(id);
      continue;
    }
    st.in_ready = false;
    if (st.fin_after_data) {
      st.fin_after_data = false;
      if (msg.size() + kFrameHeaderSize <= max) {
        PutHeader(msg, FrameType::kFin, id, 0);
        s.FinSent(id);  // May erase `st`.
      } else {
        Bytes frame;
        PutHeader(frame, FrameType::kFin, id, 0);
        s.QueueControl(std::move(frame), id);
      }
    }
  }
  if (msg.empty()) {
    return std::nullopt;
  }
  return msg;
}

bool Session::has_outgoing() const { return !state_->control.empty() || state_->queued_bytes > 0; }

size_t Session::send_credit(StreamId id) const {
  auto it = state_->streams.find(id);
  if (it == state_->streams.end() || it->second.fin_queued) {
    return 0;
  }
  return static_cast<size_t>(it->second.send_credit);
}

size_t Session::open_streams() const { return state_->streams.size(); }

bool Session::go_away_received() const { return state_->go_away_received; }

}  // namespace enclavia::mux
