// SPDX-License-Identifier: Apache-2.0
#include "lib/mux/mux.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

namespace enclavia::mux {
namespace {

Bytes Frame(FrameType type, StreamId id, ByteSpan body) {
  Bytes out;
  out.reserve(kFrameHeaderSize + body.size());
  out.push_back(static_cast<uint8_t>(type));
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(id >> shift));
  }
  out.push_back(static_cast<uint8_t>(body.size() >> 8));
  out.push_back(static_cast<uint8_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Bytes Frame(FrameType type, StreamId id, std::string_view body = "") {
  return Frame(type, id, AsBytes(body));
}

Bytes U16(uint16_t v) { return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}; }
Bytes U32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

Bytes Open(StreamId id, uint16_t port) { return Frame(FrameType::kOpen, id, U16(port)); }

struct ParsedFrame {
  FrameType type;
  StreamId id;
  Bytes body;
};

// ParseFrames splits a message into frames, independently of the library's parser.
std::vector<ParsedFrame> ParseFrames(ByteSpan msg) {
  std::vector<ParsedFrame> out;
  size_t i = 0;
  while (i < msg.size()) {
    EXPECT_GE(msg.size() - i, kFrameHeaderSize);
    if (msg.size() - i < kFrameHeaderSize) {
      break;
    }
    auto id = static_cast<StreamId>((uint32_t{msg[i + 1]} << 24) | (uint32_t{msg[i + 2]} << 16) |
                                    (uint32_t{msg[i + 3]} << 8) | msg[i + 4]);
    size_t len = (size_t{msg[i + 5]} << 8) | msg[i + 6];
    EXPECT_LE(i + kFrameHeaderSize + len, msg.size());
    if (i + kFrameHeaderSize + len > msg.size()) {
      break;
    }
    ByteSpan body = msg.subspan(i + kFrameHeaderSize, len);
    out.push_back({static_cast<FrameType>(msg[i]), id, Bytes(body.begin(), body.end())});
    i += kFrameHeaderSize + len;
  }
  return out;
}

std::vector<Event> Drain(Session& s) {
  std::vector<Event> out;
  while (auto e = s.PollEvent()) {
    out.push_back(std::move(*e));
  }
  return out;
}

template <typename T>
std::vector<T> Only(const std::vector<Event>& events) {
  std::vector<T> out;
  for (const Event& e : events) {
    if (const T* t = std::get_if<T>(&e)) {
      out.push_back(*t);
    }
  }
  return out;
}

// Deliver moves every pending message of `from` into `to`; it returns how many it moved.
size_t Deliver(Session& from, Session& to) {
  size_t n = 0;
  while (auto msg = from.PollOutgoing()) {
    auto r = to.Receive(*msg);
    EXPECT_TRUE(r.has_value()) << r.error().message();
    ++n;
  }
  return n;
}

// Pump moves messages both ways until both sides are quiet.
void Pump(Session& client, Session& server) {
  while (Deliver(client, server) + Deliver(server, client) > 0) {
  }
}

uint8_t PatternByte(StreamId id, int direction, size_t offset) {
  uint64_t x = (uint64_t{id} * 0x9E3779B97F4A7C15ULL) ^ (offset * 0xBF58476D1CE4E5B9ULL) ^
               (static_cast<uint64_t>(direction) << 7);
  return static_cast<uint8_t>((x >> 29) ^ (x >> 47) ^ offset);
}

Bytes Pattern(StreamId id, int direction, size_t offset, size_t n) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) {
    out[i] = PatternByte(id, direction, offset + i);
  }
  return out;
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) {
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

TEST(SessionTest, OpenDataFinRoundTripHasExactBytes) {
  Session client(Side::kClient);
  Session server(Side::kServer);
  auto id = client.Open(8080);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(*id, 1U);
  ASSERT_EQ(*client.Write(1, AsBytes("hi")), 2U);
  ASSERT_TRUE(client.Fin(1).has_value());
  auto msg = client.PollOutgoing();
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(*msg, (Bytes{1, 0, 0, 0, 1, 0, 2, 0x1f, 0x90,  // OPEN 1 port 8080
                         2, 0, 0, 0, 1, 0, 2, 'h',  'i',   // DATA 1 "hi"
                         4, 0, 0, 0, 1, 0, 0}));           // FIN 1
  EXPECT_FALSE(client.PollOutgoing().has_value());
  EXPECT_FALSE(client.has_outgoing());

  ASSERT_TRUE(server.Receive(*msg).has_value());
  auto events = Drain(server);
  ASSERT_EQ(events.size(), 3U);
  auto opened = std::get<event::Opened>(events[0]);
  EXPECT_EQ(opened.id, 1U);
  EXPECT_EQ(opened.port, 8080);
  EXPECT_EQ(std::get<event::Data>(events[1]).bytes, ToBytes("hi"));
  EXPECT_EQ(std::get<event::Fin>(events[2]).id, 1U);
  server.Consumed(1, 2);

  ASSERT_EQ(*server.Write(1, AsBytes("yo")), 2U);
  ASSERT_TRUE(server.Fin(1).has_value());
  EXPECT_EQ(server.open_streams(), 1U);
  auto reply = server.PollOutgoing();
  ASSERT_TRUE(reply.has_value());
  // The client's FIN came in, so the stream closed: no WINDOW is sent for the consumed bytes.
  EXPECT_EQ(*reply, (Bytes{2, 0, 0, 0, 1, 0, 2, 'y', 'o', 4, 0, 0, 0, 1, 0, 0}));
  events = Drain(server);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(std::get<event::Closed>(events[0]).id, 1U);
  EXPECT_EQ(server.open_streams(), 0U);

  ASSERT_TRUE(client.Receive(*reply).has_value());
  events = Drain(client);
  ASSERT_EQ(events.size(), 3U);
  EXPECT_EQ(std::get<event::Data>(events[0]).bytes, ToBytes("yo"));
  EXPECT_EQ(std::get<event::Fin>(events[1]).id, 1U);
  EXPECT_EQ(std::get<event::Closed>(events[2]).id, 1U);
  EXPECT_EQ(client.open_streams(), 0U);
  EXPECT_EQ(client.Write(1, AsBytes("x")).error().code(), Code::kNotFound);
  EXPECT_EQ(*client.Open(80), 3U);  // Ids are never reused.
}

TEST(SessionTest, ClosedComesWhenOurFinIsEmittedAfterThePeers) {
  Session client(Side::kClient);
  Session server(Side::kServer);
  ASSERT_EQ(*client.Open(1), 1U);
  Pump(client, server);
  ASSERT_TRUE(server.Fin(1).has_value());
  Pump(client, server);
  auto events = Drain(client);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_TRUE(std::holds_alternative<event::Fin>(events[0]));
  ASSERT_TRUE(client.Fin(1).has_value());
  EXPECT_EQ(client.open_streams(), 1U);  // Not closed until the FIN is actually emitted.
  EXPECT_TRUE(Drain(client).empty());
  auto msg = client.PollOutgoing();
  ASSERT_TRUE(msg.has_value());
  events = Drain(client);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(std::get<event::Closed>(events[0]).id, 1U);
  EXPECT_EQ(client.open_streams(), 0U);
  ASSERT_TRUE(server.Receive(*msg).has_value());
  events = Drain(server);
  ASSERT_EQ(events.size(), 3U);  // Opened, Fin, Closed.
  EXPECT_EQ(std::get<event::Closed>(events[2]).id, 1U);
}

// Endpoint is a test application on one side: it writes a known pattern per stream, checks what
// it receives against the peer's pattern, and consumes (or not) what it received.
struct Endpoint {
  struct StreamModel {
    size_t to_send = 0;
    size_t sent = 0;
    bool fin_called = false;
    size_t received = 0;
    size_t unconsumed = 0;
    bool fin_received = false;
    bool closed = false;
    bool reset = false;  // Reset by the peer (event) or by us.
  };

  Endpoint(Side side, Options options)
      : session(side, options), direction(side == Side::kClient ? 0 : 1) {}

  // NOLINTBEGIN(misc-non-private-member-variables-in-classes)
  Session session;
  int direction;
  std::map<StreamId, StreamModel> streams;
  // NOLINTEND(misc-non-private-member-variables-in-classes)

  // HandleEvents checks every event against the model.
  void HandleEvents(const std::map<StreamId, size_t>& peer_totals, uint32_t window) {
    while (auto e = session.PollEvent()) {
      if (auto* opened = std::get_if<event::Opened>(&*e)) {
        ASSERT_FALSE(streams.contains(opened->id));
        streams[opened->id];
      } else if (auto* data = std::get_if<event::Data>(&*e)) {
        auto& m = streams.at(data->id);
        ASSERT_FALSE(m.fin_received);
        ASSERT_EQ(data->bytes, Pattern(data->id, 1 - direction, m.received, data->bytes.size()));
        m.received += data->bytes.size();
        m.unconsumed += data->bytes.size();
        ASSERT_LE(m.unconsumed, window);
      } else if (auto* fin = std::get_if<event::Fin>(&*e)) {
        auto& m = streams.at(fin->id);
        m.fin_received = true;
        auto it = peer_totals.find(fin->id);
        ASSERT_NE(it, peer_totals.end());
        ASSERT_EQ(m.received, it->second);
      } else if (auto* closed = std::get_if<event::Closed>(&*e)) {
        auto& m = streams.at(closed->id);
        ASSERT_TRUE(m.fin_received && m.fin_called);
        ASSERT_FALSE(m.closed || m.reset);
        m.closed = true;
      } else if (auto* reset = std::get_if<event::Reset>(&*e)) {
        auto& m = streams.at(reset->id);
        ASSERT_FALSE(m.closed || m.reset);
        m.reset = true;
      }
    }
  }

  [[nodiscard]] static bool Live(const StreamModel& m) { return !m.closed && !m.reset; }

  // WriteSome writes up to `limit` more bytes of stream `id`'s pattern; returns bytes taken.
  size_t WriteSome(StreamId id, size_t limit) {
    auto& m = streams.at(id);
    size_t n = std::min(limit, m.to_send - m.sent);
    if (n == 0 || m.fin_called || !Live(m)) {
      return 0;
    }
    auto took = session.Write(id, Pattern(id, direction, m.sent, n));
    EXPECT_TRUE(took.has_value());
    if (!took) {
      return 0;
    }
    EXPECT_LE(*took, n);
    m.sent += *took;
    return *took;
  }

  void FinIfDone(StreamId id) {
    auto& m = streams.at(id);
    if (Live(m) && !m.fin_called && m.sent == m.to_send) {
      ASSERT_TRUE(session.Fin(id).has_value());
      m.fin_called = true;
    }
  }

  void ConsumeSome(StreamId id, size_t limit) {
    auto& m = streams.at(id);
    size_t n = std::min(limit, m.unconsumed);
    session.Consumed(id, n);
    m.unconsumed -= n;
  }
};

TEST(SessionTest, HundredStreamsInterleavedKeepEveryByteInOrder) {
  Options options;
  options.initial_window = 16 * 1024;
  options.max_message_size = 4096;
  Endpoint client(Side::kClient, options);
  Endpoint server(Side::kServer, options);
  std::mt19937_64 rng(42);  // NOLINT(cert-msc32-c,cert-msc51-cpp): reproducible on purpose.
  std::map<StreamId, size_t> client_totals;
  std::map<StreamId, size_t> server_totals;
  for (int i = 0; i < 100; ++i) {
    auto id = client.session.Open(static_cast<uint16_t>(1000 + i));
    ASSERT_TRUE(id.has_value());
    client_totals[*id] = rng() % 100000;
    server_totals[*id] = rng() % 100000;
    client.streams[*id].to_send = client_totals[*id];
  }
  for (int round = 0; round < 10000; ++round) {
    for (auto& [id, m] : client.streams) {
      client.WriteSome(id, rng() % 20000);
      client.FinIfDone(id);
      client.ConsumeSome(id, rng() % 20000);
    }
    for (auto& [id, m] : server.streams) {
      if (m.to_send == 0 && m.sent == 0) {
        m.to_send = server_totals.at(id);
      }
      server.WriteSome(id, rng() % 20000);
      server.FinIfDone(id);
      server.ConsumeSome(id, rng() % 20000);
    }
    size_t moved = 0;
    for (int k = 0; k < 8; ++k) {
      if (auto msg = client.session.PollOutgoing()) {
        ASSERT_LE(msg->size(), options.max_message_size);
        ParseFrames(*msg);
        ASSERT_TRUE(server.session.Receive(*msg).has_value());
        ++moved;
      }
      if (auto msg = server.session.PollOutgoing()) {
        ASSERT_LE(msg->size(), options.max_message_size);
        ParseFrames(*msg);
        ASSERT_TRUE(client.session.Receive(*msg).has_value());
        ++moved;
      }
    }
    ASSERT_NO_FATAL_FAILURE(client.HandleEvents(server_totals, options.initial_window));
    ASSERT_NO_FATAL_FAILURE(server.HandleEvents(client_totals, options.initial_window));
    if (moved == 0 && client.session.open_streams() == 0 && server.session.open_streams() == 0) {
      break;
    }
  }
  ASSERT_EQ(server.streams.size(), 100U);
  for (auto& [id, m] : client.streams) {
    EXPECT_TRUE(m.closed) << id;
    EXPECT_EQ(m.received, server_totals[id]) << id;
    EXPECT_EQ(server.streams[id].received, client_totals[id]) << id;
    EXPECT_TRUE(server.streams[id].closed) << id;
  }
}

TEST(SessionTest, WindowBoundsWhatAStalledReceiverBuffers) {
  Options options;
  options.initial_window = 64 * 1024;
  Session client(Side::kClient, options);
  Session server(Side::kServer, options);
  ASSERT_EQ(*client.Open(1), 1U);
  Bytes chunk(10000, 0xab);
  size_t accepted = 0;
  size_t delivered = 0;
  for (int i = 0; i < 100; ++i) {
    accepted += *client.Write(1, chunk);
    Deliver(client, server);
    Deliver(server, client);
    for (const auto& d : Only<event::Data>(Drain(server))) {
      delivered += d.bytes.size();  // Never Consumed.
    }
    // Queued at the client plus delivered at the server never exceeds the window.
    ASSERT_LE(accepted, options.initial_window);
  }
  EXPECT_EQ(accepted, options.initial_window);
  EXPECT_EQ(delivered, options.initial_window);
  EXPECT_EQ(client.send_credit(1), 0U);
  EXPECT_EQ(*client.Write(1, chunk), 0U);
  EXPECT_FALSE(client.has_outgoing());
  EXPECT_TRUE(Drain(client).empty());

  // Consuming less than half the window sends nothing; reaching half sends one WINDOW.
  server.Consumed(1, options.initial_window / 2 - 1);
  EXPECT_FALSE(server.has_outgoing());
  server.Consumed(1, 1);
  auto msg = server.PollOutgoing();
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(*msg, Frame(FrameType::kWindow, 1, U32(options.initial_window / 2)));
  ASSERT_TRUE(client.Receive(*msg).has_value());
  auto events = Drain(client);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(std::get<event::Writable>(events[0]).id, 1U);
  EXPECT_EQ(client.send_credit(1), options.initial_window / 2);
  // Consumed beyond what was delivered is clamped.
  server.Consumed(1, 1 << 30);
  Deliver(server, client);
  EXPECT_EQ(client.send_credit(1), options.initial_window);
  // Not blocked since the WINDOW before, so no second Writable.
  EXPECT_TRUE(Drain(client).empty());
}

TEST(SessionTest, WritableAfterABlockedWriteOrUsedUpCredit) {
  Options options;
  options.initial_window = 1000;
  Session client(Side::kClient, options);
  Session server(Side::kServer, options);
  ASSERT_EQ(*client.Open(1), 1U);
  ASSERT_EQ(*client.Write(1, Bytes(600, 1)), 600U);  // Credit left: no event when it grows.
  Pump(client, server);
  server.Consumed(1, 600);
  Pump(client, server);
  EXPECT_TRUE(Drain(client).empty());
  // A writer that never offers more than send_credit() still learns when credit returns.
  ASSERT_EQ(*client.Write(1, Bytes(1000, 1)), 1000U);
  Pump(client, server);
  server.Consumed(1, 1000);
  Pump(client, server);
  auto refilled = Drain(client);
  ASSERT_EQ(refilled.size(), 1U);
  EXPECT_EQ(std::get<event::Writable>(refilled[0]).id, 1U);
  EXPECT_EQ(client.send_credit(1), 1000U);
  ASSERT_EQ(*client.Write(1, Bytes(1500, 1)), 1000U);  // Blocked.
  Pump(client, server);
  server.Consumed(1, 600);
  Pump(client, server);
  auto events = Drain(client);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(std::get<event::Writable>(events[0]).id, 1U);
  EXPECT_EQ(client.send_credit(1), 600U);
}

TEST(SessionTest, AStreamWithoutCreditDoesNotBlockOthers) {
  Options options;
  options.initial_window = 32 * 1024;
  Session client(Side::kClient, options);
  Session server(Side::kServer, options);
  StreamId a = *client.Open(1);
  StreamId b = *client.Open(2);
  Bytes big(1 << 20, 7);
  size_t a_sent = *client.Write(a, big);
  EXPECT_EQ(a_sent, options.initial_window);
  size_t b_sent = 0;
  size_t b_received = 0;
  for (int i = 0; i < 1000 && b_received < big.size(); ++i) {
    b_sent += *client.Write(b, ByteSpan(big).subspan(b_sent));
    Pump(client, server);
    for (const auto& d : Only<event::Data>(Drain(server))) {
      if (d.id == b) {
        b_received += d.bytes.size();
        server.Consumed(b, d.bytes.size());  // A is never consumed.
      }
    }
  }
  EXPECT_EQ(b_received, big.size());
  EXPECT_EQ(client.send_credit(a), 0U);
}

TEST(SessionTest, RoundRobinAlternatesBetweenBusyStreams) {
  Session client(Side::kClient);
  StreamId a = *client.Open(1);
  StreamId b = *client.Open(2);
  Bytes big(200000, 1);
  ASSERT_EQ(*client.Write(a, big), big.size());
  ASSERT_EQ(*client.Write(b, big), big.size());
  std::vector<StreamId> order;
  while (auto msg = client.PollOutgoing()) {
    EXPECT_LE(msg->size(), Options{}.max_message_size);
    for (const auto& f : ParseFrames(*msg)) {
      if (f.type == FrameType::kData) {
        order.push_back(f.id);
      }
    }
  }
  // 200000 bytes in 65512-byte frames: 4 frames per stream, strictly alternating.
  EXPECT_EQ(order, (std::vector<StreamId>{a, b, a, b, a, b, a, b}));
}

TEST(SessionTest, SmallWritesOfManyStreamsShareAMessage) {
  Session client(Side::kClient);
  for (int i = 0; i < 10; ++i) {
    StreamId id = *client.Open(80);
    ASSERT_EQ(*client.Write(id, AsBytes("abc")), 3U);
  }
  auto msg = client.PollOutgoing();
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(msg->size(), 10 * (kFrameHeaderSize + 2) + 10 * (kFrameHeaderSize + 3));
  EXPECT_FALSE(client.PollOutgoing().has_value());
}

TEST(SessionTest, ResetDropsQueuedDataAndReachesThePeer) {
  Session client(Side::kClient);
  Session server(Side::kServer);
  ASSERT_EQ(*client.Open(1), 1U);
  ASSERT_EQ(*client.Write(1, Bytes(1000, 1)), 1000U);
  Pump(client, server);
  ASSERT_EQ(Only<event::Data>(Drain(server)).size(), 1U);

  ASSERT_EQ(*client.Write(1, Bytes(5000, 2)), 5000U);
  ASSERT_TRUE(client.Reset(1, ResetCode::kCancelled, "bye").has_value());
  auto msg = client.PollOutgoing();
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(*msg, Frame(FrameType::kReset, 1, Bytes{4, 'b', 'y', 'e'}));
  EXPECT_FALSE(client.PollOutgoing().has_value());
  EXPECT_TRUE(Drain(client).empty());  // Our own reset emits no event.
  EXPECT_EQ(client.open_streams(), 0U);
  EXPECT_EQ(client.Write(1, AsBytes("x")).error().code(), Code::kNotFound);

  ASSERT_TRUE(server.Receive(*msg).has_value());
  auto events = Drain(server);
  ASSERT_EQ(events.size(), 1U);
  auto reset = std::get<event::Reset>(events[0]);
  EXPECT_EQ(reset.id, 1U);
  EXPECT_EQ(reset.code, ResetCode::kCancelled);
  EXPECT_EQ(reset.reason, "bye");
  EXPECT_EQ(server.open_streams(), 0U);
  server.Consumed(1, 1000);  // Ignored: the stream is gone.
  EXPECT_FALSE(server.has_outgoing());

  // The other way, with a reason longer than the limit.
  ASSERT_EQ(*client.Open(2), 3U);
  Pump(client, server);
  ASSERT_EQ(Only<event::Opened>(Drain(server)).size(), 1U);
  ASSERT_EQ(*server.Write(3, Bytes(100, 3)), 100U);
  std::string reason(300, 'r');
  ASSERT_TRUE(server.Reset(3, ResetCode::kConnectFailed, reason).has_value());
  msg = server.PollOutgoing();
  ASSERT_TRUE(msg.has_value());
  auto frames = ParseFrames(*msg);
  ASSERT_EQ(frames.size(), 1U);
  EXPECT_EQ(frames[0].type, FrameType::kReset);
  EXPECT_EQ(frames[0].body.size(), 1 + kMaxReasonSize);
  ASSERT_TRUE(client.Receive(*msg).has_value());
  events = Drain(client);
  ASSERT_EQ(events.size(), 1U);
  reset = std::get<event::Reset>(events[0]);
  EXPECT_EQ(reset.id, 3U);
  EXPECT_EQ(reset.code, ResetCode::kConnectFailed);
  EXPECT_EQ(reset.reason, std::string(kMaxReasonSize, 'r'));
  EXPECT_TRUE(Drain(server).empty());
}

TEST(SessionTest, ResetReasonIsCutAtACharacterBoundary) {
  Session client(Side::kClient);
  ASSERT_EQ(*client.Open(1), 1U);
  std::string reason = std::string(199, 'a') + "\xc3\xa9";  // 201 bytes; é straddles the limit.
  ASSERT_TRUE(client.Reset(1, ResetCode::kCancelled, reason).has_value());
  auto frames = ParseFrames(*client.PollOutgoing());
  ASSERT_EQ(frames.size(), 2U);
  EXPECT_EQ(frames[1].body.size(), 1U + 199U);
}

TEST(SessionTest, FramesRacingWithAResetAreIgnored) {
  Session client(Side::kClient);
  Session server(Side::kServer);
  ASSERT_EQ(*client.Open(1), 1U);
  Pump(client, server);
  Drain(server);
  ASSERT_EQ(*server.Write(1, AsBytes("in flight")), 9U);
  ASSERT_TRUE(server.Fin(1).has_value());
  auto in_flight = server.PollOutgoing();
  ASSERT_TRUE(client.Reset(1, ResetCode::kCancelled, "").has_value());
  ASSERT_TRUE(client.Receive(*in_flight).has_value());
  EXPECT_TRUE(Drain(client).empty());
  ASSERT_TRUE(client
                  .Receive(Cat({Frame(FrameType::kWindow, 1, U32(5)),
                                Frame(FrameType::kReset, 1, Bytes{1}), Frame(FrameType::kFin, 1)}))
                  .has_value());
  EXPECT_TRUE(Drain(client).empty());
  Pump(client, server);
  auto events = Drain(server);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(std::get<event::Reset>(events[0]).code, ResetCode::kCancelled);
}

TEST(SessionTest, OpensBeyondMaxStreamsAreRefused) {
  Options server_options;
  server_options.max_streams = 2;
  Session client(Side::kClient);
  Session server(Side::kServer, server_options);
  ASSERT_EQ(*client.Open(1), 1U);
  ASSERT_EQ(*client.Open(2), 3U);
  ASSERT_EQ(*client.Open(3), 5U);
  ASSERT_EQ(*client.Write(5, AsBytes("dropped")), 7U);
  Pump(client, server);
  auto opened = Only<event::Opened>(Drain(server));
  ASSERT_EQ(opened.size(), 2U);
  EXPECT_EQ(opened[1].id, 3U);
  EXPECT_EQ(server.open_streams(), 2U);
  auto events = Drain(client);
  ASSERT_EQ(events.size(), 1U);
  auto reset = std::get<event::Reset>(events[0]);
  EXPECT_EQ(reset.id, 5U);
  EXPECT_EQ(reset.code, ResetCode::kRefused);
  EXPECT_EQ(client.open_streams(), 2U);

  Options client_options;
  client_options.max_streams = 1;
  Session small(Side::kClient, client_options);
  ASSERT_TRUE(small.Open(1).has_value());
  EXPECT_EQ(small.Open(1).error().code(), Code::kLimitExceeded);
}

TEST(SessionTest, GoAwayFromTheServerRefusesLaterStreams) {
  Session client(Side::kClient);
  Session server(Side::kServer);
  ASSERT_EQ(*client.Open(1), 1U);
  Pump(client, server);
  ASSERT_EQ(Drain(server).size(), 1U);
  ASSERT_EQ(*client.Open(2), 3U);  // Not yet delivered when the server goes away.
  server.GoAway(ResetCode::kNone, "bye");
  server.GoAway(ResetCode::kInternal, "again");  // Only the first is sent.
  EXPECT_EQ(server.Open(1).error().code(), Code::kFailedPrecondition);
  auto msg = server.PollOutgoing();
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(*msg, Frame(FrameType::kGoAway, 0, Bytes{0, 0, 0, 1, 0, 'b', 'y', 'e'}));
  ASSERT_TRUE(client.Receive(*msg).has_value());
  auto events = Drain(client);
  ASSERT_EQ(events.size(), 2U);
  auto go_away = std::get<event::GoAway>(events[0]);
  EXPECT_EQ(go_away.last_id, 1U);
  EXPECT_EQ(go_away.code, ResetCode::kNone);
  EXPECT_EQ(go_away.reason, "bye");
  auto reset = std::get<event::Reset>(events[1]);
  EXPECT_EQ(reset.id, 3U);
  EXPECT_EQ(reset.code, ResetCode::kRefused);
  EXPECT_TRUE(client.go_away_received());
  EXPECT_EQ(client.Open(1).error().code(), Code::kFailedPrecondition);

  // The OPEN of stream 3 still reaches the server, which refuses it; stream 1 keeps working.
  ASSERT_EQ(*client.Write(1, AsBytes("still here")), 10U);
  Pump(client, server);
  events = Drain(server);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(std::get<event::Data>(events[0]).bytes, ToBytes("still here"));
  EXPECT_TRUE(Drain(client).empty());
  EXPECT_EQ(server.open_streams(), 1U);
}

TEST(SessionTest, GoAwayFromTheClientStopsItsOpens) {
  Session client(Side::kClient);
  Session server(Side::kServer);
  ASSERT_EQ(*client.Open(1), 1U);
  client.GoAway(ResetCode::kCancelled, "done");
  EXPECT_EQ(client.Open(1).error().code(), Code::kFailedPrecondition);
  Pump(client, server);
  auto events = Drain(server);
  ASSERT_EQ(events.size(), 2U);
  EXPECT_TRUE(std::holds_alternative<event::Opened>(events[0]));
  auto go_away = std::get<event::GoAway>(events[1]);
  EXPECT_EQ(go_away.last_id, 0U);
  EXPECT_EQ(go_away.code, ResetCode::kCancelled);
  EXPECT_TRUE(server.go_away_received());
  EXPECT_EQ(server.open_streams(), 1U);
}

TEST(SessionTest, PingIsAnsweredWithPong) {
  Session client(Side::kClient);
  Session server(Side::kServer);
  client.Ping(0x0102030405060708);
  auto msg = client.PollOutgoing();
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(*msg, Frame(FrameType::kPing, 0, Bytes{1, 2, 3, 4, 5, 6, 7, 8}));
  ASSERT_TRUE(server.Receive(*msg).has_value());
  EXPECT_TRUE(Drain(server).empty());
  msg = server.PollOutgoing();
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(*msg, Frame(FrameType::kPong, 0, Bytes{1, 2, 3, 4, 5, 6, 7, 8}));
  ASSERT_TRUE(client.Receive(*msg).has_value());
  auto events = Drain(client);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(std::get<event::Pong>(events[0]).opaque, 0x0102030405060708U);
}

TEST(SessionTest, DataAfterFinResetsOnlyThatStream) {
  Session server(Side::kServer);
  ASSERT_TRUE(server
                  .Receive(Cat({Open(1, 80), Open(3, 80), Frame(FrameType::kFin, 1),
                                Frame(FrameType::kData, 1, "late")}))
                  .has_value());
  auto events = Drain(server);
  ASSERT_EQ(events.size(), 4U);
  auto reset = std::get<event::Reset>(events[3]);
  EXPECT_EQ(reset.id, 1U);
  EXPECT_EQ(reset.code, ResetCode::kProtocolError);
  auto msg = server.PollOutgoing();
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(*msg, Frame(FrameType::kReset, 1,
                        "\x03"
                        "data after fin"));
  EXPECT_EQ(server.open_streams(), 1U);
  ASSERT_TRUE(server.Receive(Frame(FrameType::kData, 3, "ok")).has_value());
  EXPECT_EQ(std::get<event::Data>(*server.PollEvent()).bytes, ToBytes("ok"));
}

TEST(SessionTest, ReceiveAcceptsLimitsExactly) {
  Options options;
  options.initial_window = 10;
  Session server(Side::kServer, options);
  std::string reason(kMaxReasonSize, '\xff');  // Not UTF-8: passed through as is.
  ASSERT_TRUE(server
                  .Receive(Cat({Open(1, 80), Frame(FrameType::kData, 1, "0123456789"), Open(3, 80),
                                Frame(FrameType::kReset, 3, "\x05" + reason),
                                Frame(FrameType::kGoAway, 0, Cat({U32(7), Bytes{0}}))}))
                  .has_value());
  auto events = Drain(server);
  ASSERT_EQ(events.size(), 5U);
  EXPECT_EQ(std::get<event::Reset>(events[3]).reason, reason);
}

struct MalformedCase {
  std::string name;
  Side side;
  Bytes message;
  Code code;
};

// BeyondDefaultWindow is an OPEN followed by DATA frames of 60,000 bytes adding up to just over
// the default window, whatever its size.
Bytes BeyondDefaultWindow(const Bytes& open) {
  Bytes message = open;
  for (size_t sent = 0; sent <= Options{}.initial_window; sent += 60000) {
    Bytes frame = Frame(FrameType::kData, 1, Bytes(60000, 0));
    message.insert(message.end(), frame.begin(), frame.end());
  }
  return message;
}

std::vector<MalformedCase> MalformedCases() {
  std::string long_reason(kMaxReasonSize + 1, 'x');
  Bytes open1 = Open(1, 80);
  return {
      {"empty message", Side::kServer, {}, Code::kMalformed},
      {"truncated header", Side::kServer, {1, 0, 0, 0, 1, 0}, Code::kMalformed},
      {"truncated body", Side::kServer, {1, 0, 0, 0, 1, 0, 2, 0}, Code::kMalformed},
      {"truncated second frame", Side::kServer, Cat({open1, Bytes{2, 0, 0}}), Code::kMalformed},
      {"type 0", Side::kServer, Frame(static_cast<FrameType>(0), 1), Code::kMalformed},
      {"type 9", Side::kServer, Frame(static_cast<FrameType>(9), 0), Code::kMalformed},
      {"open body size", Side::kServer, Frame(FrameType::kOpen, 1, "abc"), Code::kMalformed},
      {"open even id", Side::kServer, Open(2, 80), Code::kMalformed},
      {"open zero id", Side::kServer, Open(0, 80), Code::kMalformed},
      {"open same id", Side::kServer, Cat({open1, open1}), Code::kMalformed},
      {"open lower id", Side::kServer, Cat({Open(3, 80), open1}), Code::kMalformed},
      {"open from server", Side::kClient, open1, Code::kMalformed},
      {"empty data", Side::kServer, Cat({open1, Frame(FrameType::kData, 1)}), Code::kMalformed},
      {"data never opened", Side::kServer, Cat({open1, Frame(FrameType::kData, 3, "x")}),
       Code::kMalformed},
      {"data never opened client", Side::kClient, Frame(FrameType::kData, 1, "x"),
       Code::kMalformed},
      {"data stream 0", Side::kServer, Frame(FrameType::kData, 0, "x"), Code::kMalformed},
      {"data even stream", Side::kServer, Cat({Open(5, 80), Frame(FrameType::kData, 2, "x")}),
       Code::kMalformed},
      {"window body size", Side::kServer, Cat({open1, Frame(FrameType::kWindow, 1, "abc")}),
       Code::kMalformed},
      {"window zero", Side::kServer, Cat({open1, Frame(FrameType::kWindow, 1, U32(0))}),
       Code::kMalformed},
      {"window overflow", Side::kServer, Cat({open1, Frame(FrameType::kWindow, 1, U32(1))}),
       Code::kLimitExceeded},
      {"fin body", Side::kServer, Cat({open1, Frame(FrameType::kFin, 1, "x")}), Code::kMalformed},
      {"reset empty", Side::kServer, Cat({open1, Frame(FrameType::kReset, 1)}), Code::kMalformed},
      {"reset long reason", Side::kServer,
       Cat({open1, Frame(FrameType::kReset, 1, "\x01" + long_reason)}), Code::kMalformed},
      {"reset unknown code", Side::kServer, Cat({open1, Frame(FrameType::kReset, 1, "\x06")}),
       Code::kMalformed},
      {"ping short", Side::kServer, Frame(FrameType::kPing, 0, "1234567"), Code::kMalformed},
      {"pong long", Side::kClient, Frame(FrameType::kPong, 0, "123456789"), Code::kMalformed},
      {"ping on stream", Side::kServer, Frame(FrameType::kPing, 1, "12345678"), Code::kMalformed},
      {"goaway on stream", Side::kClient, Frame(FrameType::kGoAway, 1, Bytes(5, 0)),
       Code::kMalformed},
      {"goaway short", Side::kClient, Frame(FrameType::kGoAway, 0, Bytes(4, 0)), Code::kMalformed},
      {"goaway long reason", Side::kClient,
       Frame(FrameType::kGoAway, 0, Cat({U32(0), Bytes{0}, ToBytes(long_reason)})),
       Code::kMalformed},
      {"goaway unknown code", Side::kClient, Frame(FrameType::kGoAway, 0, Cat({U32(0), Bytes{9}})),
       Code::kMalformed},
      {"data beyond window", Side::kServer, BeyondDefaultWindow(open1), Code::kLimitExceeded},
  };
}

TEST(SessionTest, MalformedInputIsASessionError) {
  for (const auto& c : MalformedCases()) {
    SCOPED_TRACE(c.name);
    Session s(c.side);
    auto r = s.Receive(c.message);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), c.code);
    const std::string& m = r.error().message();
    EXPECT_EQ(m.rfind("mux: ", 0), 0U) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_LT(m.size(), 120U) << m;
    // The session stays failed.
    EXPECT_EQ(s.Receive(Frame(FrameType::kPing, 0, "12345678")).error().code(),
              Code::kFailedPrecondition);
  }
}

TEST(SessionTest, PeerExceedingItsWindowIsCaught) {
  Options options;
  options.initial_window = 16;
  Session server(Side::kServer, options);
  ASSERT_TRUE(
      server.Receive(Cat({Open(1, 80), Frame(FrameType::kData, 1, "0123456789")})).has_value());
  auto r = server.Receive(Frame(FrameType::kData, 1, "0123456"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded);
  EXPECT_EQ(r.error().message(), "mux: stream 1 exceeded its window");
}

TEST(SessionTest, ApiMisuseFails) {
  Session client(Side::kClient);
  Session server(Side::kServer);
  EXPECT_EQ(server.Open(80).error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(client.Write(1, AsBytes("x")).error().code(), Code::kNotFound);
  EXPECT_EQ(client.Fin(1).error().code(), Code::kNotFound);
  EXPECT_EQ(client.Reset(1, ResetCode::kCancelled, "").error().code(), Code::kNotFound);
  EXPECT_EQ(client.send_credit(1), 0U);
  StreamId id = *client.Open(80);
  EXPECT_EQ(client.send_credit(id), Options{}.initial_window);
  EXPECT_EQ(*client.Write(id, {}), 0U);
  ASSERT_TRUE(client.Fin(id).has_value());
  EXPECT_EQ(client.Fin(id).error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(client.Write(id, AsBytes("x")).error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(client.send_credit(id), 0U);
  client.Consumed(99, 5);  // Unknown ids are ignored.
}

TEST(SessionTest, FinWaitsForQueuedDataAcrossMessages) {
  Options options;
  options.max_message_size = kMinMessageSize;
  Session client(Side::kClient, options);
  StreamId id = *client.Open(80);
  ASSERT_EQ(*client.Write(id, Bytes(1000, 9)), 1000U);
  ASSERT_TRUE(client.Fin(id).has_value());
  std::vector<FrameType> types;
  size_t data = 0;
  while (auto msg = client.PollOutgoing()) {
    ASSERT_LE(msg->size(), options.max_message_size);
    for (const auto& f : ParseFrames(*msg)) {
      types.push_back(f.type);
      if (f.type == FrameType::kData) {
        data += f.body.size();
      }
    }
  }
  EXPECT_EQ(data, 1000U);
  ASSERT_GE(types.size(), 3U);
  EXPECT_EQ(types.front(), FrameType::kOpen);
  EXPECT_EQ(types.back(), FrameType::kFin);
}

TEST(SessionTest, MovedSessionKeepsItsState) {
  Session client(Side::kClient);
  StreamId id = *client.Open(80);
  Session moved(std::move(client));
  EXPECT_EQ(moved.open_streams(), 1U);
  EXPECT_EQ(*moved.Write(id, AsBytes("x")), 1U);
}

// A deterministic random walk: both sides open, write, consume, fin and reset at random while
// messages are delivered with random latency; the model checks every byte and every event.
TEST(SessionTest, RandomizedInterleavingKeepsInvariants) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    Options options;
    options.initial_window = 1 + static_cast<uint32_t>(rng() % 20000);
    options.max_message_size = kMinMessageSize + rng() % 5000;
    options.max_streams = 8;
    Endpoint client(Side::kClient, options);
    Endpoint server(Side::kServer, options);
    std::map<StreamId, size_t> client_totals;
    std::map<StreamId, size_t> server_totals;
    std::deque<Bytes> to_server;
    std::deque<Bytes> to_client;
    auto pick = [&](Endpoint& e) -> std::optional<StreamId> {
      std::vector<StreamId> live;
      for (const auto& [id, m] : e.streams) {
        if (Endpoint::Live(m)) {
          live.push_back(id);
        }
      }
      if (live.empty()) {
        return std::nullopt;
      }
      return live[rng() % live.size()];
    };
    auto step = [&](bool wind_down) {
      for (Endpoint* e : {&client, &server}) {
        auto& totals = e == &client ? client_totals : server_totals;
        auto& peer_totals = e == &client ? server_totals : client_totals;
        ASSERT_NO_FATAL_FAILURE(e->HandleEvents(peer_totals, options.initial_window));
        for (auto& [id, m] : e->streams) {
          if (!totals.contains(id)) {
            totals[id] = rng() % 50000;
            m.to_send = totals[id];
          }
        }
        if (wind_down) {
          for (auto& [id, m] : e->streams) {
            if (Endpoint::Live(m)) {
              e->WriteSome(id, 1 << 20);
              e->FinIfDone(id);
              e->ConsumeSome(id, 1 << 20);
            }
          }
          continue;
        }
        auto id = pick(*e);
        if (!id) {
          continue;
        }
        auto& m = e->streams.at(*id);
        uint64_t op = rng() % 100;
        if (op < 40) {
          e->WriteSome(*id, rng() % 10000);
        } else if (op < 70) {
          e->ConsumeSome(*id, rng() % 10000);
        } else if (op < 80) {
          e->FinIfDone(*id);
        } else if (op < 82) {
          ASSERT_TRUE(e->session.Reset(*id, ResetCode::kCancelled, "test").has_value());
          m.reset = true;
        } else if (op < 84) {
          e->session.Ping(rng());
        }
      }
      if (!wind_down && rng() % 4 == 0 && client.session.open_streams() < options.max_streams) {
        auto id = client.session.Open(static_cast<uint16_t>(rng()));
        ASSERT_TRUE(id.has_value());
        client.streams[*id];
      }
      // Send and deliver with random latency.
      for (int k = 0; k < 3; ++k) {
        if (rng() % 2 == 0) {
          if (auto msg = client.session.PollOutgoing()) {
            ASSERT_LE(msg->size(), options.max_message_size);
            to_server.push_back(std::move(*msg));
          }
        }
        if (rng() % 2 == 0) {
          if (auto msg = server.session.PollOutgoing()) {
            ASSERT_LE(msg->size(), options.max_message_size);
            to_client.push_back(std::move(*msg));
          }
        }
        if (!to_server.empty() && (wind_down || rng() % 2 == 0)) {
          auto r = server.session.Receive(to_server.front());
          ASSERT_TRUE(r.has_value()) << r.error().message();
          to_server.pop_front();
        }
        if (!to_client.empty() && (wind_down || rng() % 2 == 0)) {
          auto r = client.session.Receive(to_client.front());
          ASSERT_TRUE(r.has_value()) << r.error().message();
          to_client.pop_front();
        }
      }
      ASSERT_LE(client.session.open_streams(), options.max_streams);
      ASSERT_LE(server.session.open_streams(), options.max_streams);
    };
    for (int i = 0; i < 3000; ++i) {
      ASSERT_NO_FATAL_FAILURE(step(false));
    }
    for (int i = 0;
         i < 100000 && (client.session.open_streams() > 0 || server.session.open_streams() > 0 ||
                        !to_server.empty() || !to_client.empty() || client.session.has_outgoing() ||
                        server.session.has_outgoing());
         ++i) {
      ASSERT_NO_FATAL_FAILURE(step(true));
    }
    ASSERT_NO_FATAL_FAILURE(client.HandleEvents(server_totals, options.initial_window));
    ASSERT_NO_FATAL_FAILURE(server.HandleEvents(client_totals, options.initial_window));
    EXPECT_EQ(client.session.open_streams(), 0U);
    EXPECT_EQ(server.session.open_streams(), 0U);
    size_t closed = 0;
    for (const auto& [id, m] : client.streams) {
      auto it = server.streams.find(id);
      ASSERT_NE(it, server.streams.end()) << id;  // Never refused: max_streams is the same.
      const auto& sm = it->second;
      ASSERT_TRUE(m.closed || m.reset) << id;
      ASSERT_TRUE(sm.closed || sm.reset) << id;
      if (m.closed && sm.closed) {
        ++closed;
        EXPECT_EQ(m.received, server_totals[id]) << id;
        EXPECT_EQ(sm.received, client_totals[id]) << id;
      }
    }
    EXPECT_GT(closed, 0U);
  }
}

}  // namespace
}  // namespace enclavia::mux
