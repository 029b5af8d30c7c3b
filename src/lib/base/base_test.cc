// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <limits>

#include "lib/base/bytes.h"
#include "lib/base/encoding.h"
#include "lib/base/flags.h"
#include "lib/base/reader.h"
#include "lib/base/result.h"

namespace enclavia {
namespace {

Result<int> Half(int v) {
  if (v % 2 != 0) {
    return Error(Code::kInvalidArgument, "odd");
  }
  return v / 2;
}

Result<int> Quarter(int v) {
  ASSIGN_OR_RETURN(int h, Half(v));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Result<void> CheckEven(int v) {
  RETURN_IF_ERROR(Half(v));
  return Ok();
}

TEST(ResultTest, PropagatesValuesAndErrors) {
  ASSERT_TRUE(Quarter(8).has_value());
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "odd");
  EXPECT_TRUE(CheckEven(4));
  EXPECT_FALSE(CheckEven(3));
}

TEST(ResultTest, WithContextPrefixesMessage) {
  Error e(Code::kMalformed, "truncated");
  EXPECT_EQ(e.WithContext("cbor").message(), "cbor: truncated");
  EXPECT_EQ(CodeName(Code::kVerifyFailed), "verify_failed");
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  EXPECT_DEATH((void)Quarter(3).value(), "odd");
}

TEST(ReaderTest, ReadsBigAndLittleEndianAndStopsAtEnd) {
  Bytes data = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
  Reader r(data);
  EXPECT_EQ(*r.ReadU8(), 0x01);
  EXPECT_EQ(*r.ReadU16Be(), 0x0203);
  EXPECT_EQ(*r.ReadU16Le(), 0x0504);
  auto too_far = r.ReadU32Be();
  ASSERT_FALSE(too_far);
  EXPECT_EQ(too_far.error().code(), Code::kMalformed);
  EXPECT_EQ(r.remaining(), 2u);  // A failed read consumes nothing.
  EXPECT_FALSE(r.ExpectEnd("frame"));
  EXPECT_EQ(r.ExpectEnd("frame").error().message(), "frame: trailing bytes");
}

TEST(ReaderTest, PrefixedReadsRestoreOnTruncation) {
  Bytes data = {0x00, 0x05, 'a', 'b'};
  Reader r(data);
  EXPECT_FALSE(r.ReadPrefixed16());
  EXPECT_EQ(r.remaining(), 4u);
}

TEST(WriterTest, RoundTripsThroughReader) {
  Writer w;
  w.WriteU32Be(0xdeadbeef);
  w.WriteU64Le(42);
  ASSERT_TRUE(w.WritePrefixed16(AsBytes("hello")));
  Bytes out = w.Finish();
  Reader r(out);
  EXPECT_EQ(*r.ReadU32Be(), 0xdeadbeefu);
  EXPECT_EQ(*r.ReadU64Le(), 42u);
  EXPECT_EQ(AsString(*r.ReadPrefixed16()), "hello");
  EXPECT_TRUE(r.empty());
}

TEST(WriterTest, PrefixedWriteRejectsOversizeBody) {
  Writer w;
  Bytes big(256, 0);
  EXPECT_EQ(w.WritePrefixed8(big).error().code(), Code::kLimitExceeded);
}

TEST(BytesTest, CheckedArithmeticDetectsOverflow) {
  EXPECT_EQ(CheckedAdd<uint32_t>(1, 2), 3u);
  EXPECT_FALSE(CheckedAdd<uint32_t>(std::numeric_limits<uint32_t>::max(), 1));
  EXPECT_FALSE(CheckedMul<size_t>(std::numeric_limits<size_t>::max() / 2, 3));
}

TEST(HexTest, RoundTripsAndRejectsBadInput) {
  Bytes data = {0x00, 0xab, 0xff};
  EXPECT_EQ(HexEncode(data), "00abff");
  EXPECT_EQ(*HexDecode("00ABff"), data);
  EXPECT_FALSE(HexDecode("abc"));
  EXPECT_FALSE(HexDecode("zz"));
}

TEST(Base64Test, MatchesRfc4648Vectors) {
  // RFC 4648 §10.
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(AsBytes(plain)), encoded);
    auto decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded) << encoded;
    EXPECT_EQ(AsString(*decoded), plain);
  }
}

TEST(Base64Test, AcceptsWhitespaceUrlSafeAndMissingPadding) {
  EXPECT_EQ(AsString(*Base64Decode("Zm9v\nYmE=\n")), "fooba");
  EXPECT_EQ(AsString(*Base64Decode("Zm9vYmE")), "fooba");
  EXPECT_EQ(*Base64Decode("-_8="), (Bytes{0xfb, 0xff}));
}

TEST(Base64Test, RejectsMalformed) {
  EXPECT_FALSE(Base64Decode("Zm9v!"));
  EXPECT_FALSE(Base64Decode("Z"));
  EXPECT_FALSE(Base64Decode("Zh=="));  // Non-zero trailing bits.
  EXPECT_FALSE(Base64Decode("Zg==="));
  EXPECT_FALSE(Base64Decode("Zg="));
}

TEST(TimeTest, ParsesAndFormatsRfc3339) {
  auto t = ParseRfc3339("2022-10-13T08:58:02.136Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(ToUnixMillis(*t), 1665651482136);
  EXPECT_EQ(FormatRfc3339(*t), "2022-10-13T08:58:02.136Z");
  auto offset = ParseRfc3339("2022-10-13T10:58:02.136+02:00");
  ASSERT_TRUE(offset);
  EXPECT_EQ(*offset, *t);
  EXPECT_FALSE(ParseRfc3339("2022-10-13 08:58:02"));
  EXPECT_FALSE(ParseRfc3339("2022-13-13T08:58:02Z"));
  EXPECT_FALSE(ParseRfc3339("2022-10-13T08:58:02Zjunk"));
}

TEST(FlagsTest, SplitsNamesValuesAndSwitches) {
  auto flags = SplitFlags({"--config", "/a", "--ready-fd=3", "-h"}, {"--help", "-h"});
  ASSERT_TRUE(flags) << flags.error().message();
  ASSERT_EQ(flags->size(), 3u);
  EXPECT_EQ((*flags)[0].name, "--config");
  EXPECT_EQ((*flags)[0].value, "/a");
  EXPECT_EQ((*flags)[1].value, "3");
  EXPECT_TRUE((*flags)[2].value.empty());
  EXPECT_EQ(SplitFlags({"--config"}, {}).error().message(), "--config needs a value");
  EXPECT_EQ(SplitFlags({"x"}, {}).error().code(), Code::kInvalidArgument);
}

TEST(FlagsTest, DescriptorFlagTakesOnlySmallNonNegativeNumbers) {
  EXPECT_EQ(*DescriptorFlag({"--ready-fd", "3"}), 3);
  EXPECT_EQ(*DescriptorFlag({"--ready-fd", "0"}), 0);
  for (const char* bad : {"-1", "1024", "3x", "x", "99999999999999999999"}) {
    auto fd = DescriptorFlag({"--ready-fd", bad});
    ASSERT_FALSE(fd) << bad;
    EXPECT_EQ(fd.error().message(), "--ready-fd needs a descriptor number");
  }
}

}  // namespace
}  // namespace enclavia
