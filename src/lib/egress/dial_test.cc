// SPDX-License-Identifier: Apache-2.0
#include "lib/egress/dial.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "lib/base/encoding.h"
#include "lib/net/socket.h"
#include "testing/temp_dir.h"

namespace enclavia::egress {
namespace {

Endpoint V6(const char* text, uint16_t port) { return {*ParseIp(text), port}; }

TEST(DialRequestTest, RoundTripsV4AndV6) {
  for (const Endpoint& to : {Endpoint{V4(203, 0, 113, 7), 443}, Endpoint{V4(0, 0, 0, 0), 1},
                             V6("2001:db8::1", 65535), V6("::ffff:192.0.2.1", 80)}) {
    Bytes bytes = EncodeDialRequest(to);
    EXPECT_EQ(bytes.size(), to.ip.family == IpFamily::kV4 ? 8u : 20u);
    auto decoded = DecodeDialRequest(bytes);
    ASSERT_TRUE(decoded) << decoded.error().message();
    ASSERT_TRUE(decoded->has_value());
    EXPECT_EQ((*decoded)->value, to) << FormatEndpoint(to);
    EXPECT_EQ((*decoded)->used, bytes.size());
  }
}

TEST(DialRequestTest, EncodingIsTheDocumentedLayout) {
  EXPECT_EQ(EncodeDialRequest({V4(203, 0, 113, 7), 443}),
            (Bytes{1, 4, 203, 0, 113, 7, 0x01, 0xbb}));
  Bytes v6 = EncodeDialRequest(V6("2001:db8::1", 8080));
  EXPECT_EQ(v6[0], 1);
  EXPECT_EQ(v6[1], 6);
  EXPECT_EQ(v6[2], 0x20);
  EXPECT_EQ(v6[17], 0x01);
  EXPECT_EQ(v6[18], 0x1f);
  EXPECT_EQ(v6[19], 0x90);
}

TEST(DialRequestTest, TrailingBytesAreNotConsumed) {
  Bytes bytes = EncodeDialRequest({V4(192, 0, 2, 1), 25});
  bytes.push_back('H');
  bytes.push_back('I');
  auto decoded = DecodeDialRequest(bytes);
  ASSERT_TRUE(decoded && decoded->has_value());
  EXPECT_EQ((*decoded)->used, 8u);
}

TEST(DialRequestTest, DecodesIncrementallyByteByByte) {
  for (const Endpoint& to : {Endpoint{V4(198, 51, 100, 9), 8443}, V6("2001:db8::42", 443)}) {
    Bytes bytes = EncodeDialRequest(to);
    for (size_t n = 0; n < bytes.size(); ++n) {
      auto partial = DecodeDialRequest(ByteSpan(bytes).first(n));
      ASSERT_TRUE(partial) << n << ": " << partial.error().message();
      EXPECT_FALSE(partial->has_value()) << n;
    }
    auto full = DecodeDialRequest(bytes);
    ASSERT_TRUE(full && full->has_value());
    EXPECT_EQ((*full)->value, to);
  }
}

TEST(DialRequestTest, RejectsEveryMalformedRequest) {
  const std::vector<Bytes> bad = {
      {0},                                  // Version 0.
      {2, 4, 1, 2, 3, 4, 0, 80},            // Version 2.
      {0xff},                               // Version 255, known after one byte.
      {1, 0, 1, 2, 3, 4, 0, 80},            // Family 0.
      {1, 5},                               // Family 5, known after two bytes.
      {1, 46, 1, 2, 3, 4, 0, 80},           // Family '.' (text).
      {1, 4, 1, 2, 3, 4, 0, 0},             // Port 0.
      {1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0},  // v6, port 0.
  };
  for (const Bytes& bytes : bad) {
    auto decoded = DecodeDialRequest(bytes);
    EXPECT_FALSE(decoded) << HexEncode(bytes);
    if (!decoded) {
      EXPECT_EQ(decoded.error().code(), Code::kMalformed);
      EXPECT_EQ(decoded.error().message().find('\n'), std::string::npos);
    }
  }
}

TEST(DialRequestTest, EmptyInputNeedsMore) {
  auto decoded = DecodeDialRequest({});
  ASSERT_TRUE(decoded);
  EXPECT_FALSE(decoded->has_value());
}

TEST(DialResponseTest, RoundTripsEveryStatus) {
  for (uint8_t s = 0; s <= static_cast<uint8_t>(DialStatus::kFailed); ++s) {
    DialResponse response{static_cast<DialStatus>(s), s == 0 ? "" : "why: ü"};
    Bytes bytes = EncodeDialResponse(response);
    EXPECT_EQ(bytes.size(), 3 + response.message.size());
    auto decoded = DecodeDialResponse(bytes);
    ASSERT_TRUE(decoded) << decoded.error().message();
    ASSERT_TRUE(decoded->has_value());
    EXPECT_EQ((*decoded)->value.status, response.status);
    EXPECT_EQ((*decoded)->value.message, response.message);
    EXPECT_EQ((*decoded)->used, bytes.size());
    EXPECT_FALSE(DialStatusName(response.status).empty());
  }
}

TEST(DialResponseTest, LongMessagesAreCutAtACharacterBoundary) {
  std::string message(254, 'a');
  message += "é";  // Bytes 254 and 255: the cut at 255 would split it.
  Bytes bytes = EncodeDialResponse({DialStatus::kFailed, message});
  EXPECT_EQ(bytes[2], 254);
  auto decoded = DecodeDialResponse(bytes);
  ASSERT_TRUE(decoded && decoded->has_value());
  EXPECT_EQ((*decoded)->value.message, std::string(254, 'a'));
  Bytes longer = EncodeDialResponse({DialStatus::kFailed, std::string(1000, 'b')});
  EXPECT_EQ(longer.size(), 3u + 255u);
}

TEST(DialResponseTest, DecodesIncrementallyByteByByte) {
  Bytes bytes = EncodeDialResponse({DialStatus::kUnreachable, "No route to host"});
  bytes.push_back(0x42);  // The connection's first byte (never for a refusal, but possible).
  for (size_t n = 0; n < bytes.size() - 1; ++n) {
    auto partial = DecodeDialResponse(ByteSpan(bytes).first(n));
    ASSERT_TRUE(partial) << n;
    EXPECT_FALSE(partial->has_value()) << n;
  }
  auto full = DecodeDialResponse(bytes);
  ASSERT_TRUE(full && full->has_value());
  EXPECT_EQ((*full)->used, bytes.size() - 1);
  EXPECT_EQ((*full)->value.message, "No route to host");
}

TEST(DialResponseTest, RejectsEveryMalformedResponse) {
  const std::vector<Bytes> bad = {
      {0, 0, 0},                 // Version 0.
      {2},                       // Version 2.
      {1, 7, 0},                 // Unknown status 7.
      {1, 0xff},                 // Unknown status, known after two bytes.
      {1, 6, 1, 0x80},           // A lone continuation byte.
      {1, 6, 1, 0xc3},           // A truncated sequence.
      {1, 6, 2, 0xc0, 0x80},     // Overlong NUL.
      {1, 6, 3, 0xed, 0xa0, 0x80},  // A surrogate.
      {1, 6, 4, 0xf4, 0x90, 0x80, 0x80},  // Past U+10FFFF.
      {1, 6, 1, 0xff},           // Never in UTF-8.
      {1, 6, 3, 'a', 0, 'b'},    // A NUL.
  };
  for (const Bytes& bytes : bad) {
    auto decoded = DecodeDialResponse(bytes);
    EXPECT_FALSE(decoded) << HexEncode(bytes);
    if (!decoded) {
      EXPECT_EQ(decoded.error().code(), Code::kMalformed);
    }
  }
}

// A small stand-in for the host's dialer (src/host/egress has the real one; lib cannot link
// host code): answers each connection with `response`, then echoes.
class FakeDialer {
 public:
  FakeDialer(const std::string& path, DialResponse response, bool answer = true)
      : response_(std::move(response)), answer_(answer) {
    address_.family = net::Family::kUnix;
    address_.host = path;
    auto fd = net::ListenOn(address_);
    ENCLAVIA_CHECK(fd.has_value());
    listener_ = std::move(*fd);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeDialer() {
    ::shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
  }
  const net::Address& address() const { return address_; }
  const Bytes& request() const { return request_; }

 private:
  void Run() {
    sys::UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      return;
    }
    uint8_t buf[256];
    for (;;) {
      auto decoded = DecodeDialRequest(request_);
      if (!decoded) {
        return;
      }
      if (decoded->has_value()) {
        break;
      }
      ssize_t got = ::recv(conn.get(), buf, sizeof(buf), 0);
      if (got <= 0) {
        return;
      }
      request_.insert(request_.end(), buf, buf + got);
    }
    if (!answer_) {
      pollfd p{conn.get(), POLLIN, 0};
      (void)::poll(&p, 1, 10000);  // Until the client gives up.
      return;
    }
    (void)sys::WriteFull(conn.get(), EncodeDialResponse(response_));
    for (;;) {
      ssize_t got = ::recv(conn.get(), buf, sizeof(buf), 0);
      if (got <= 0 || !sys::WriteFull(conn.get(), ByteSpan(buf, static_cast<size_t>(got)))) {
        return;
      }
    }
  }

  net::Address address_;
  DialResponse response_;
  bool answer_;
  sys::UniqueFd listener_;
  std::thread thread_;
  Bytes request_;
};

TEST(DialTest, ConnectedGivesAStreamToTheDestination) {
  testing::TempDir dir("egress_dial");
  Endpoint to{V4(203, 0, 113, 7), 443};
  Bytes request;
  {
    FakeDialer fake(dir.path() + "/egress.sock", {DialStatus::kConnected, ""});
    auto fd = Dial(fake.address(), to, std::chrono::seconds(10));
    ASSERT_TRUE(fd) << fd.error().message();
    ASSERT_TRUE(sys::WriteFull(fd->get(), AsBytes("hello")));
    uint8_t back[5];
    ASSERT_TRUE(sys::ReadFull(fd->get(), back));
    EXPECT_EQ(AsString(ByteSpan(back, 5)), "hello");
    ::shutdown(fd->get(), SHUT_WR);
    *fd = sys::UniqueFd();
  }
}

TEST(DialTest, RefusalIsUnavailableWithTheHostsReason) {
  testing::TempDir dir("egress_dial");
  FakeDialer fake(dir.path() + "/egress.sock", {DialStatus::kRefusedByHost, "connection limit"});
  auto fd = Dial(fake.address(), {V4(198, 51, 100, 1), 80}, std::chrono::seconds(10));
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code(), Code::kUnavailable);
  EXPECT_NE(fd.error().message().find("connection limit"), std::string::npos);
  EXPECT_NE(fd.error().message().find("198.51.100.1:80"), std::string::npos);
}

TEST(DialTest, SilentDialerTimesOut) {
  testing::TempDir dir("egress_dial");
  FakeDialer fake(dir.path() + "/egress.sock", {}, /*answer=*/false);
  auto fd = Dial(fake.address(), {V4(198, 51, 100, 1), 80}, std::chrono::milliseconds(100));
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code(), Code::kUnavailable);
}

TEST(DialTest, NobodyListeningIsUnavailable) {
  testing::TempDir dir("egress_dial");
  net::Address address;
  address.family = net::Family::kUnix;
  address.host = dir.path() + "/nobody.sock";
  auto fd = Dial(address, {V4(198, 51, 100, 1), 80}, std::chrono::seconds(1));
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace enclavia::egress
