// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_MUX_MUX_H_
#define ENCLAVIA_LIB_MUX_MUX_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// Streams multiplexed over one ordered, authenticated message channel (the Noise transport).
// Sans-I/O: the caller feeds each decrypted message to Receive, takes events from PollEvent and
// the next plaintext to encrypt from PollOutgoing. Wire format: docs/formats/mux.md.
namespace enclavia::mux {

using StreamId = uint32_t;

// Frame types (docs/formats/mux.md). Every frame is: type u8, stream id u32 BE, body length u16 BE,
// body. One channel message carries one or more whole frames.
enum class FrameType : uint8_t {
  kOpen = 1,     // body: port u16 BE. Client → server only.
  kData = 2,     // body: bytes (1..kMaxDataPerFrame).
  kWindow = 3,   // body: increment u32 BE (> 0).
  kFin = 4,      // body: empty. The sender writes no more on this stream (half-close).
  kReset = 5,    // body: code u8, reason (UTF-8, ≤ 200 bytes). Both directions end now.
  kPing = 6,     // stream 0; body: 8 opaque bytes.
  kPong = 7,     // stream 0; body: the ping's 8 bytes.
  kGoAway = 8,   // stream 0; body: last accepted stream id u32 BE, code u8, reason.
};

inline constexpr size_t kFrameHeaderSize = 7;
inline constexpr size_t kMaxReasonSize = 200;
// kMaxDataPerFrame is the most a DATA body can hold (its length is a u16); a sender also keeps
// each message within max_message_size.
inline constexpr size_t kMaxDataPerFrame = 0xFFFF;
// kMinMessageSize is the smallest Options::max_message_size: room for any control frame.
inline constexpr size_t kMinMessageSize = 256;

enum class ResetCode : uint8_t {
  kNone = 0,            // Used by GoAway for a normal shutdown.
  kRefused = 1,         // Port not allowed, too many streams, or the server is going away.
  kConnectFailed = 2,   // The target port did not accept the connection.
  kProtocolError = 3,   // The peer broke a rule on this stream (e.g. exceeded its window).
  kCancelled = 4,       // The application gave up on the stream.
  kInternal = 5,
};

enum class Side { kClient, kServer };

struct Options {
  // Bytes the peer may send on a stream before we grant more (our receive buffer per stream).
  uint32_t initial_window = 1024 * 1024;
  // Streams open at once; an Open beyond it is reset with kRefused.
  uint32_t max_streams = 256;
  // The largest plaintext PollOutgoing may be asked for; DATA frames are cut to fit. At least
  // kMinMessageSize. (Session's constructor aborts on an initial_window of 0 or a smaller
  // max_message_size: those are programming errors, not input.)
  size_t max_message_size = 65519;
};

namespace event {
struct Opened { StreamId id; uint16_t port; };            // Server: the peer opened a stream.
struct Data { StreamId id; Bytes bytes; };                  // Call Consumed once delivered.
struct Fin { StreamId id; };                                // The peer will send no more.
struct Reset { StreamId id; ResetCode code; std::string reason; };  // Stream is gone.
struct Writable { StreamId id; };  // Credit arrived after a short Write or after it hit 0.
struct Closed { StreamId id; };                             // Both sides sent Fin; id is freed.
struct Pong { uint64_t opaque; };
struct GoAway { StreamId last_id; ResetCode code; std::string reason; };
}  // namespace event

using Event = std::variant<event::Opened, event::Data, event::Fin, event::Reset, event::Writable,
                           event::Closed, event::Pong, event::GoAway>;

// Session is one side of the multiplexer. Not thread-safe.
//
// Flow control: each stream has a send credit (starting at the peer's initial_window, which is
// the same Options value on both sides in protocol version 1) and a receive window. A peer that
// sends more DATA than its credit is a protocol error for the whole session. Received data is
// handed out in events and counted against the window until the application calls Consumed, so
// at most initial_window bytes per stream (max_streams × initial_window per session) are ever
// buffered on account of the peer. WINDOW frames are sent once half the window is consumed.
//
// Fairness: PollOutgoing sends control frames first, then DATA round-robin across streams, at
// most one max-size frame per stream per turn, so a stream without credit or with a lot of
// data never holds up the others.
class Session {
 public:
  Session(Side side, Options options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Open starts a stream to `port` (client only; kFailedPrecondition on the server or after a
  // GoAway was sent or received; kLimitExceeded at max_streams). Data may be written at once.
  Result<StreamId> Open(uint16_t port);
  // Write queues up to the stream's send credit and returns how many bytes it took (0 when out
  // of credit: wait for event::Writable). kNotFound for an unknown or reset stream,
  // kFailedPrecondition after Fin.
  Result<size_t> Write(StreamId id, ByteSpan data);
  // Fin half-closes our direction (queued after any data already written).
  Result<void> Fin(StreamId id);
  // Reset ends the stream in both directions now, dropping queued data.
  Result<void> Reset(StreamId id, ResetCode code, std::string_view reason);
  // Consumed returns `n` delivered bytes of stream `id` to the window. Unknown ids are ignored
  // (the stream may have been reset meanwhile).
  void Consumed(StreamId id, size_t n);
  void Ping(uint64_t opaque);
  // GoAway tells the peer no new streams will be accepted; existing ones continue.
  void GoAway(ResetCode code, std::string_view reason);

  // Receive processes one decrypted channel message. An error (kMalformed, kLimitExceeded,
  // kFailedPrecondition) means the peer broke the protocol: the caller must end the channel.
  // Stream-level problems (data after Fin, unknown stream) reset that stream instead.
  Result<void> Receive(ByteSpan message);

  // PollEvent returns the next event, or nullopt when there is none.
  std::optional<Event> PollEvent();
  // PollOutgoing returns the next message to encrypt and send (≤ options.max_message_size
  // bytes, one or more whole frames), or nullopt when nothing is queued.
  std::optional<Bytes> PollOutgoing();
  bool has_outgoing() const;

  // send_credit is how many bytes Write would take now on `id` (0 for unknown streams).
  size_t send_credit(StreamId id) const;
  size_t open_streams() const;
  bool go_away_received() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace enclavia::mux

#endif  // ENCLAVIA_LIB_MUX_MUX_H_
