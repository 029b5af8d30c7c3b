// SPDX-License-Identifier: Apache-2.0
#include "lib/upgrade/wire.h"

#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "lib/cbor/cbor.h"
#include "lib/net/socket.h"
#include "lib/sys/fd.h"
#include "lib/upgrade/chain.h"

namespace enclavia::upgrade {
namespace {

using cbor::Value;

Bytes Entry(uint8_t fill, size_t size = 40) { return Bytes(size, fill); }

Message Make(MessageType type) {
  Message m;
  m.type = type;
  return m;
}

void ExpectSame(const Message& a, const Message& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.chain, b.chain);
  EXPECT_EQ(a.staged, b.staged);
  EXPECT_EQ(a.pending, b.pending);
  EXPECT_EQ(a.entry, b.entry);
  EXPECT_EQ(a.code, b.code);
  EXPECT_EQ(a.message, b.message);
}

void ExpectRoundTrip(const Message& m) {
  Bytes encoded = EncodeMessage(m);
  auto decoded = DecodeMessage(encoded);
  ASSERT_TRUE(decoded) << decoded.error().message();
  ExpectSame(m, *decoded);
  EXPECT_EQ(EncodeMessage(*decoded), encoded);
}

Bytes Encode(Value::Map map) { return cbor::Encode(Value::MakeMap(std::move(map))); }

Value::Map Header(std::string_view t, uint64_t v = 1) {
  return {{Value::TextString("v"), Value::Uint(v)}, {Value::TextString("t"), Value::TextString(t)}};
}

Code DecodeCode(const Bytes& bytes) {
  auto decoded = DecodeMessage(bytes);
  if (decoded) {
    return Code::kOk;
  }
  EXPECT_TRUE(decoded.error().message().starts_with("upgrade wire: ")) << decoded.error().message();
  return decoded.error().code();
}

TEST(UpgradeWireTest, EveryMessageRoundTrips) {
  ExpectRoundTrip(Make(MessageType::kChain));
  Message chain = Make(MessageType::kChain);
  chain.chain = {Entry(1), Entry(2), Entry(3), Entry(4)};
  chain.staged = {Entry(5)};
  ExpectRoundTrip(chain);
  chain.pending = Entry(6);
  ExpectRoundTrip(chain);
  for (MessageType type : {MessageType::kStage, MessageType::kStaged, MessageType::kRevoke,
                           MessageType::kActivated}) {
    Message m = Make(type);
    m.entry = Entry(7, 1000);
    ExpectRoundTrip(m);
  }
  Message activate = Make(MessageType::kActivate);
  activate.entry = Entry(8, 32);
  ExpectRoundTrip(activate);
  ExpectRoundTrip(Make(MessageType::kSuccessor));
  ExpectRoundTrip(Make(MessageType::kOk));
  Message error = Make(MessageType::kError);
  error.code = static_cast<uint32_t>(Code::kPolicyViolation);
  error.message = "upgrade: activated before its window ended";
  ExpectRoundTrip(error);
}

TEST(UpgradeWireTest, ChainRequestIsJustItsType) {
  // The request form documented in wire.h: {"v": 1, "t": "chain"}.
  EXPECT_EQ(EncodeMessage(Make(MessageType::kChain)), Encode(Header("chain")));
}

TEST(UpgradeWireTest, MaximalChainFits) {
  Message chain = Make(MessageType::kChain);
  chain.chain.assign(kMaxChainLength, Entry(9, kMaxEntrySize));
  chain.staged.assign(16, Entry(10, kMaxEntrySize));
  chain.pending = Entry(11, kMaxEntrySize);
  ExpectRoundTrip(chain);
}

TEST(UpgradeWireTest, RefusesWhatIsNotCanonical) {
  // Not CBOR, not a map, trailing bytes, non-deterministic key order.
  EXPECT_EQ(DecodeCode({}), Code::kMalformed);
  EXPECT_EQ(DecodeCode({0xff}), Code::kMalformed);
  EXPECT_EQ(DecodeCode(cbor::Encode(Value::MakeArray({}))), Code::kMalformed);
  Bytes trailing = EncodeMessage(Make(MessageType::kOk));
  trailing.push_back(0);
  EXPECT_EQ(DecodeCode(trailing), Code::kMalformed);
  // Canonical order puts "t" (0x61 0x74) before "v" (0x61 0x76).
  Value::Map reversed = {{Value::TextString("v"), Value::Uint(1)},
                         {Value::TextString("t"), Value::TextString("ok")}};
  EXPECT_EQ(DecodeCode(cbor::Encode(Value::MakeMap(reversed), cbor::MapOrder::kAsGiven)),
            Code::kMalformed);
}

TEST(UpgradeWireTest, RefusesBadHeaders) {
  EXPECT_EQ(DecodeCode(Encode({{Value::TextString("t"), Value::TextString("ok")}})),
            Code::kMalformed);
  EXPECT_EQ(DecodeCode(Encode(Header("ok", 2))), Code::kUnsupported);
  EXPECT_EQ(DecodeCode(Encode({{Value::TextString("v"), Value::Uint(1)}})), Code::kMalformed);
  EXPECT_EQ(DecodeCode(Encode(Header("launch"))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(Encode({{Value::TextString("v"), Value::Uint(1)},
                               {Value::TextString("t"), Value::Uint(3)}})),
            Code::kMalformed);
}

TEST(UpgradeWireTest, RefusesUnknownAndMissingFields) {
  auto with = [](std::string_view t, std::string_view key, Value value) {
    Value::Map map = Header(t);
    map.emplace_back(Value::TextString(key), std::move(value));
    return Encode(std::move(map));
  };
  EXPECT_EQ(DecodeCode(with("ok", "extra", Value::Uint(1))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("successor", "chain", Value::MakeArray({}))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("chain", "entry", Value::ByteString(Entry(1)))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(Encode(Header("stage"))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("stage", "receipt", Value::ByteString(Entry(1)))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("staged", "request", Value::ByteString(Entry(1)))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("revoke", "request", Value::ByteString(Entry(1)))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(Encode(Header("error"))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("error", "code", Value::Uint(2))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(Encode(Header("revoked"))), Code::kOk);
  EXPECT_EQ(DecodeCode(with("revoked", "receipt", Value::ByteString(Entry(1)))), Code::kMalformed);
}

TEST(UpgradeWireTest, RefusesBadFieldTypesAndSizes) {
  auto with = [](std::string_view t, std::string_view key, Value value) {
    Value::Map map = Header(t);
    map.emplace_back(Value::TextString(key), std::move(value));
    return Encode(std::move(map));
  };
  // Entries: byte strings of 1..kMaxEntrySize.
  EXPECT_EQ(DecodeCode(with("stage", "request", Value::TextString("x"))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("stage", "request", Value::ByteString(Bytes{}))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("stage", "request", Value::ByteString(Entry(1, kMaxEntrySize + 1)))),
            Code::kMalformed);
  // activate carries exactly a 32-byte hash.
  EXPECT_EQ(DecodeCode(with("activate", "request", Value::ByteString(Entry(1, 31)))),
            Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("activate", "request", Value::ByteString(Entry(1, 33)))),
            Code::kMalformed);
  // Lists: present only when non-empty, arrays of entries, bounded.
  EXPECT_EQ(DecodeCode(with("chain", "chain", Value::MakeArray({}))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("chain", "staged", Value::MakeArray({}))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("chain", "chain", Value::ByteString(Entry(1)))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("chain", "chain", Value::MakeArray({Value::Uint(1)}))),
            Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("chain", "chain", Value::MakeArray({Value::ByteString(Bytes{})}))),
            Code::kMalformed);
  Value::Array long_chain(kMaxChainLength + 1, Value::ByteString(Entry(1, 2)));
  EXPECT_EQ(DecodeCode(with("chain", "chain", Value::MakeArray(long_chain))),
            Code::kLimitExceeded);
  Value::Array many_staged(17, Value::ByteString(Entry(1, 2)));
  EXPECT_EQ(DecodeCode(with("chain", "staged", Value::MakeArray(many_staged))),
            Code::kLimitExceeded);
  EXPECT_EQ(DecodeCode(with("chain", "pending", Value::ByteString(Bytes{}))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(with("chain", "pending", Value::Boolean(true))), Code::kMalformed);
  // Errors: a known non-zero code and a bounded text.
  auto error = [](Value code, Value message) {
    Value::Map map = Header("error");
    map.emplace_back(Value::TextString("code"), std::move(code));
    map.emplace_back(Value::TextString("message"), std::move(message));
    return Encode(std::move(map));
  };
  EXPECT_EQ(DecodeCode(error(Value::Uint(6), Value::TextString("no"))), Code::kOk);
  EXPECT_EQ(DecodeCode(error(Value::Uint(0), Value::TextString("no"))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(error(Value::Uint(15), Value::TextString("no"))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(error(Value::Int(-1), Value::TextString("no"))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(error(Value::Uint(6), Value::ByteString(Entry(1)))), Code::kMalformed);
  EXPECT_EQ(DecodeCode(error(Value::Uint(6), Value::TextString(std::string(1025, 'x')))),
            Code::kMalformed);
}

TEST(UpgradeWireTest, RefusesOversizedInput) {
  EXPECT_EQ(DecodeCode(Bytes(kMaxMessage + 1, 0)), Code::kLimitExceeded);
}

TEST(UpgradeWireTest, LongErrorTextIsCutWhenEncoded) {
  Message error = Make(MessageType::kError);
  error.code = 13;
  error.message = std::string(5000, 'e');
  auto decoded = DecodeMessage(EncodeMessage(error));
  ASSERT_TRUE(decoded) << decoded.error().message();
  EXPECT_EQ(decoded->message.size(), 1024u);
}

// Framing over a socketpair.
struct Pair {
  Pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    a = sys::UniqueFd(fds[0]);
    b = sys::UniqueFd(fds[1]);
  }
  sys::UniqueFd a, b;
};

TEST(UpgradeWireTest, FramedMessagesCrossASocket) {
  Pair pair;
  Message chain = Make(MessageType::kChain);
  chain.chain = {Entry(1, 5000), Entry(2, 7000)};
  ASSERT_TRUE(WriteMessage(pair.a.get(), chain));
  ASSERT_TRUE(WriteMessage(pair.a.get(), Make(MessageType::kOk)));
  auto first = ReadMessage(pair.b.get(), std::chrono::seconds(5));
  ASSERT_TRUE(first) << first.error().message();
  ExpectSame(chain, *first);
  auto second = ReadMessage(pair.b.get(), std::chrono::seconds(5));
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(second->type, MessageType::kOk);
}

TEST(UpgradeWireTest, ReadRefusesBadFrames) {
  {
    Pair pair;
    uint8_t zero[4] = {0, 0, 0, 0};
    ASSERT_TRUE(sys::WriteFull(pair.a.get(), zero));
    EXPECT_EQ(ReadMessage(pair.b.get(), std::chrono::seconds(5)).error().code(), Code::kMalformed);
  }
  {
    Pair pair;
    uint8_t huge[4] = {0x00, 0x20, 0x00, 0x01};  // kMaxMessage + 1.
    ASSERT_TRUE(sys::WriteFull(pair.a.get(), huge));
    EXPECT_EQ(ReadMessage(pair.b.get(), std::chrono::seconds(5)).error().code(),
              Code::kLimitExceeded);
  }
  {
    Pair pair;  // Truncated: the header promises 10 bytes, 3 come, then the peer closes.
    uint8_t partial[7] = {0, 0, 0, 10, 1, 2, 3};
    ASSERT_TRUE(sys::WriteFull(pair.a.get(), partial));
    pair.a = sys::UniqueFd();
    EXPECT_EQ(ReadMessage(pair.b.get(), std::chrono::seconds(5)).error().code(),
              Code::kUnavailable);
  }
  {
    Pair pair;  // Silence: the deadline ends the wait.
    auto silent = ReadMessage(pair.b.get(), std::chrono::milliseconds(50));
    ASSERT_FALSE(silent);
    EXPECT_EQ(silent.error().code(), Code::kUnavailable);
  }
  {
    Pair pair;  // A well-framed body that is not a message.
    uint8_t junk[6] = {0, 0, 0, 2, 0xa0, 0xff};
    ASSERT_TRUE(sys::WriteFull(pair.a.get(), junk));
    EXPECT_EQ(ReadMessage(pair.b.get(), std::chrono::seconds(5)).error().code(), Code::kMalformed);
  }
}

// A one-shot server on a Unix socket in a fresh temp dir.
class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/upgrade_wire_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    address_.family = net::Family::kUnix;
    address_.host = dir_ + "/parent-5006.sock";
  }
  void TearDown() override {
    if (server_.joinable()) {
      server_.join();
    }
    std::filesystem::remove_all(dir_);
  }
  // Serve answers one connection with `response` after reading one request into `seen`.
  void Serve(Message response) {
    auto listener = net::ListenOn(address_);
    ASSERT_TRUE(listener) << listener.error().message();
    server_ = std::thread([this, fd = std::move(*listener), response]() mutable {
      int conn = ::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) {
        return;
      }
      sys::UniqueFd c(conn);
      auto request = ReadMessage(c.get(), std::chrono::seconds(5));
      if (request) {
        seen_ = *request;
      }
      (void)WriteMessage(c.get(), response);
    });
  }
  std::string dir_;
  net::Address address_;
  std::thread server_;
  Message seen_;
};

TEST_F(ServerFixture, FetchChainReturnsTheHostsAnswer) {
  Message answer = Make(MessageType::kChain);
  answer.chain = {Entry(1), Entry(2), Entry(3), Entry(4)};
  answer.staged = {Entry(5)};
  answer.pending = Entry(6);
  Serve(answer);
  auto chain = FetchChain(address_, std::chrono::seconds(5));
  ASSERT_TRUE(chain) << chain.error().message();
  EXPECT_EQ(chain->chain, answer.chain);
  EXPECT_EQ(chain->staged, answer.staged);
  EXPECT_EQ(chain->pending, answer.pending);
  server_.join();
  EXPECT_EQ(seen_.type, MessageType::kChain);
  EXPECT_TRUE(seen_.chain.empty());
}

TEST_F(ServerFixture, FetchChainRefusesAnotherAnswer) {
  Serve(Make(MessageType::kOk));
  auto chain = FetchChain(address_, std::chrono::seconds(5));
  ASSERT_FALSE(chain);
  EXPECT_EQ(chain.error().code(), Code::kMalformed);
}

TEST_F(ServerFixture, CallTurnsAnErrorResponseIntoAnError) {
  Message error = Make(MessageType::kError);
  error.code = static_cast<uint32_t>(Code::kPolicyViolation);
  error.message = std::string("refused\nsecond line");
  Serve(error);
  auto reply = Call(address_, Make(MessageType::kSuccessor), std::chrono::seconds(5));
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), Code::kPolicyViolation);
  EXPECT_EQ(reply.error().message(), address_.ToString() + ": refused?second line");
}

TEST_F(ServerFixture, FetchChainWithNobodyListeningIsUnavailable) {
  auto chain = FetchChain(address_, std::chrono::milliseconds(200));
  ASSERT_FALSE(chain);
  EXPECT_EQ(chain.error().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace enclavia::upgrade
