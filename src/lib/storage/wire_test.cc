// SPDX-License-Identifier: Apache-2.0
#include "lib/storage/wire.h"

#include <unistd.h>

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "lib/base/encoding.h"
#include "lib/base/reader.h"
#include "lib/sys/fd.h"

namespace enclavia::storage::wire {
namespace {

Request Req(Type type, std::string name = {}) {
  Request r;
  r.type = type;
  r.name = std::move(name);
  return r;
}

Response Resp(Type type) {
  Response r;
  r.type = type;
  return r;
}

Request RoundTrip(const Request& in) {
  auto body = EncodeRequest(in);
  EXPECT_TRUE(body) << body.error().message();
  auto out = DecodeRequest(*body);
  EXPECT_TRUE(out) << out.error().message();
  auto again = EncodeRequest(*out);
  EXPECT_TRUE(again && *again == *body);
  return *out;
}

Response RoundTrip(const Response& in) {
  auto body = EncodeResponse(in);
  EXPECT_TRUE(body) << body.error().message();
  auto out = DecodeResponse(*body);
  EXPECT_TRUE(out) << out.error().message();
  auto again = EncodeResponse(*out);
  EXPECT_TRUE(again && *again == *body);
  return *out;
}

TEST(StorageWireTest, RequestsRoundTrip) {
  Request put = Req(Type::kPut, "seg/000001");
  put.data = ToBytes("ciphertext");
  Request got = RoundTrip(put);
  EXPECT_EQ(got.name, "seg/000001");
  EXPECT_EQ(got.data, ToBytes("ciphertext"));

  Request range = Req(Type::kGetRange, "a");
  range.offset = 7;
  range.length = 9;
  got = RoundTrip(range);
  EXPECT_EQ(got.offset, 7u);
  EXPECT_EQ(got.length, 9u);
  EXPECT_EQ(RoundTrip(Req(Type::kList, "seg/")).name, "seg/");
  EXPECT_EQ(RoundTrip(Req(Type::kList, "")).name, "");
  EXPECT_EQ(RoundTrip(Req(Type::kHello)).version, kProtocolVersion);
  Request report = Req(Type::kReport);
  report.status = "mounted v42";
  EXPECT_EQ(RoundTrip(report).status, "mounted v42");
  EXPECT_EQ(RoundTrip(Req(Type::kDelete, "x")).type, Type::kDelete);
  EXPECT_EQ(RoundTrip(Req(Type::kGet, "x")).type, Type::kGet);
}

TEST(StorageWireTest, ResponsesRoundTrip) {
  Attachment a;
  a.label = "data";
  a.size_bytes = 1 << 30;
  a.kms_key_id = "arn:aws:kms:eu-west-1:1:key/x";
  a.witnesses = 3;
  a.recovery_statement = ToBytes("signed");
  Response hello_in = Resp(Type::kHello);
  hello_in.attachment = a;
  Response hello = RoundTrip(hello_in);
  ASSERT_TRUE(hello.attachment);
  EXPECT_EQ(*hello.attachment, a);
  EXPECT_FALSE(RoundTrip(Resp(Type::kHello)).attachment);

  Response list_in = Resp(Type::kList);
  list_in.names = {"a", "b/c", "d"};
  EXPECT_EQ(RoundTrip(list_in).names, (std::vector<std::string>{"a", "b/c", "d"}));
  Response get_in = Resp(Type::kGet);
  get_in.data = ToBytes("xyz");
  EXPECT_EQ(RoundTrip(get_in).data, ToBytes("xyz"));

  Response err_in = Resp(Type::kGet);
  err_in.error = Error(Code::kNotFound, "no object a\nsecond line");
  Response err = RoundTrip(err_in);
  ASSERT_TRUE(err.error);
  EXPECT_EQ(err.error->code(), Code::kNotFound);
  EXPECT_EQ(err.error->message(), "no object a?second line");
}

TEST(StorageWireTest, EncoderRefusesOutOfBoundsFields) {
  EXPECT_FALSE(EncodeRequest(Req(Type::kGet, "../etc/passwd")));
  EXPECT_FALSE(EncodeRequest(Req(Type::kPut, "UPPER")));
  Request report = Req(Type::kReport);
  report.status = std::string(5000, 'a');
  EXPECT_FALSE(EncodeRequest(report));
  report.status = "two\nlines";
  EXPECT_FALSE(EncodeRequest(report));
  Request range = Req(Type::kGetRange, "a");
  range.length = kMaxObjectSize + 1;
  EXPECT_FALSE(EncodeRequest(range));
  Response list = Resp(Type::kList);
  list.names = {"b", "a"};
  EXPECT_FALSE(EncodeResponse(list));
  Response hello = Resp(Type::kHello);
  hello.attachment = Attachment();
  hello.attachment->label = "x";
  hello.attachment->size_bytes = 100;
  EXPECT_FALSE(EncodeResponse(hello));
}

TEST(StorageWireTest, DecoderRejectsMalformedBodies) {
  const std::vector<Bytes> bad_requests = {
      {},                        // Empty.
      {0x09},                    // Unknown type.
      {0x01, 0x00},              // Short hello.
      {0x01, 0x00, 0x01, 0x00},  // Trailing byte.
      {0x03, 0x02, 'a'},         // Name longer than the frame.
      {0x03, 0x02, '.', '.'},    // Invalid name.
      {0x03, 0x00},              // Empty name.
      {0x06, 0x01, 'A'},         // Invalid prefix.
      {0x07, 0x00, 0x01, '\n'},  // Unprintable report.
      {0x04, 0x01, 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // offset + length
       0, 0, 0, 0, 0, 0, 0, 2},                                          // overflows.
  };
  for (const Bytes& b : bad_requests) {
    auto r = DecodeRequest(b);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Code::kMalformed);
  }
  const std::vector<Bytes> bad_responses = {
      {0x03, 0x00},                              // Get response without data (request type bit).
      {0x83},                                    // No status.
      {0x83, 0x03, 0x00, 0x00},                  // kVerifyFailed is not the host's to say.
      {0x83, 0x08, 0x00, 0x01, 0x07},            // Unprintable error message.
      {0x86, 0x00, 0xff, 0xff, 0xff, 0xff},      // Count larger than the frame.
      {0x86, 0x00, 0, 0, 0, 2, 1, 'b', 1, 'a'},  // Unsorted names.
      {0x86, 0x00, 0, 0, 0, 2, 1, 'a', 1, 'a'},  // Duplicate names.
      {0x81, 0x00, 0x00, 0x01, 0x02},            // Bad volume flag.
      {0x82, 0x00, 0x00},                        // Trailing byte after a put ack.
  };
  for (const Bytes& b : bad_responses) {
    auto r = DecodeResponse(b);
    ASSERT_FALSE(r) << HexEncode(b);
    EXPECT_EQ(r.error().code(), Code::kMalformed);
  }
}

TEST(StorageWireTest, FrameHeaderIsBounded) {
  auto header = FrameHeader(300);
  EXPECT_EQ(header, (std::array<uint8_t, 4>{0, 0, 1, 44}));
  EXPECT_EQ(*ParseFrameHeader(header), 300u);
  Bytes huge = {0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(ParseFrameHeader(huge));
}

TEST(StorageWireTest, FramesTravelOverASocketAndEofIsReported) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  sys::UniqueFd a(fds[0]);
  sys::UniqueFd b(fds[1]);
  ASSERT_TRUE(WriteFrame(a.get(), ToBytes("hello")));
  ASSERT_TRUE(WriteFrame(a.get(), {}));
  EXPECT_EQ(*ReadFrame(b.get()), ToBytes("hello"));
  EXPECT_TRUE(ReadFrame(b.get())->empty());
  // Half a frame, then close: an error, not a clean end.
  uint8_t partial[] = {0, 0, 0, 10, 'x'};
  ASSERT_EQ(write(a.get(), partial, sizeof(partial)), 5);
  a = sys::UniqueFd();
  bool clean = true;
  auto r = ReadFrame(b.get(), &clean);
  ASSERT_FALSE(r);
  EXPECT_FALSE(clean);
  EXPECT_NE(r.error().message().find("middle of a frame"), std::string::npos);
  r = ReadFrame(b.get(), &clean);
  ASSERT_FALSE(r);
  EXPECT_TRUE(clean);
}

}  // namespace
}  // namespace enclavia::storage::wire
