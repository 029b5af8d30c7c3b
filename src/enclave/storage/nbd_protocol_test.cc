// SPDX-License-Identifier: Apache-2.0
// Byte-exact checks of the NBD encoder/decoder against hex written from the spec (proto.md).
#include "enclave/storage/nbd_protocol.h"

#include <string>

#include <gtest/gtest.h>

#include "lib/base/encoding.h"
#include "lib/base/reader.h"

namespace enclavia::enclave::nbd {
namespace {

using After = Negotiator::After;

Bytes Hex(std::string_view hex) {
  std::string compact;
  for (char c : hex) {
    if (c != ' ') {
      compact.push_back(c);
    }
  }
  Result<Bytes> b = HexDecode(compact);
  EXPECT_TRUE(b.has_value()) << hex;
  return b ? *b : Bytes();
}

Export TestExport() {
  return Export{.name = "vol", .size = 0x10000000, .transmission_flags = kDefaultTransmissionFlags};
}

// The option-reply header for `option`, `type`, `length` (magic 0x3e889045565a9).
std::string ReplyHeader(std::string_view option, std::string_view type, std::string_view length) {
  return "0003e889045565a9" + std::string(option) + std::string(type) + std::string(length);
}

TEST(NbdProtocolTest, GreetingIsMagicOptionMagicAndFixedNewstyleNoZeroes) {
  EXPECT_EQ(HexEncode(EncodeGreeting()),
            "4e42444d41474943"
            "49484156454f5054"
            "0003");
  EXPECT_EQ(EncodeGreeting().size(), kGreetingSize);
}

TEST(NbdProtocolTest, DefaultTransmissionFlagsAreTheAdvertisedSet) {
  // HAS_FLAGS(0) SEND_FLUSH(2) SEND_FUA(3) SEND_TRIM(5) SEND_WRITE_ZEROES(6) CAN_MULTI_CONN(8).
  EXPECT_EQ(kDefaultTransmissionFlags, 0x016d);
}

TEST(NbdProtocolTest, ClientFlagsAcceptKnownBitsOnly) {
  EXPECT_EQ(*DecodeClientFlags(Hex("00000000")), 0u);
  EXPECT_EQ(*DecodeClientFlags(Hex("00000001")), 1u);
  EXPECT_EQ(*DecodeClientFlags(Hex("00000003")), 3u);
  EXPECT_FALSE(DecodeClientFlags(Hex("00000004")).has_value());
  EXPECT_FALSE(DecodeClientFlags(Hex("80000001")).has_value());
  EXPECT_FALSE(DecodeClientFlags(Hex("000001")).has_value());
  EXPECT_FALSE(DecodeClientFlags(Hex("0000000100")).has_value());
}

TEST(NbdProtocolTest, OptionHeaderNeedsIHaveOptMagic) {
  Result<OptionHeader> h = DecodeOptionHeader(Hex("49484156454f5054 00000007 0000000a"));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->option, 7u);
  EXPECT_EQ(h->length, 10u);
  EXPECT_FALSE(DecodeOptionHeader(Hex("49484156454f5055 00000007 0000000a")).has_value());
  EXPECT_FALSE(DecodeOptionHeader(Hex("49484156454f5054 00000007 00000a")).has_value());
}

TEST(NbdProtocolTest, ExportNameRepliesSizeFlagsAndZeroesUnlessNoZeroes) {
  Negotiator n(TestExport());
  n.SetClientFlags(kClientFlagFixedNewstyle);
  Negotiator::Step step = n.HandleOption(kOptExportName, AsBytes("vol"));
  EXPECT_EQ(step.after, After::kTransmission);
  ASSERT_EQ(step.reply.size(), 8u + 2u + 124u);
  EXPECT_EQ(HexEncode(ByteSpan(step.reply).first(10)),
            "0000000010000000"
            "016d");
  for (size_t i = 10; i < step.reply.size(); ++i) {
    ASSERT_EQ(step.reply[i], 0) << i;
  }

  n.SetClientFlags(kClientFlagFixedNewstyle | kClientFlagNoZeroes);
  step = n.HandleOption(kOptExportName, {});  // "" is the default export.
  EXPECT_EQ(step.after, After::kTransmission);
  EXPECT_EQ(HexEncode(step.reply),
            "0000000010000000"
            "016d");
}

TEST(NbdProtocolTest, ExportNameForUnknownExportClosesWithoutReply) {
  Negotiator n(TestExport());
  Negotiator::Step step = n.HandleOption(kOptExportName, AsBytes("other"));
  EXPECT_EQ(step.after, After::kClose);
  EXPECT_TRUE(step.reply.empty());
}

TEST(NbdProtocolTest, GoRepliesInfoExportBlockSizeThenAck) {
  Negotiator n(TestExport());
  // Name "vol", no info requests.
  Negotiator::Step step = n.HandleOption(kOptGo, Hex("00000003 766f6c 0000"));
  EXPECT_EQ(step.after, After::kTransmission);
  std::string expected =
      // NBD_REP_INFO, NBD_INFO_EXPORT: size, flags.
      ReplyHeader("00000007", "00000003", "0000000c") +
      "0000"
      "0000000010000000"
      "016d" +
      // NBD_REP_INFO, NBD_INFO_BLOCK_SIZE: min 1, preferred 4096, max 32 MiB.
      ReplyHeader("00000007", "00000003", "0000000e") +
      "0003"
      "00000001"
      "00001000"
      "02000000" +
      // NBD_REP_ACK.
      ReplyHeader("00000007", "00000001", "00000000");
  EXPECT_EQ(HexEncode(step.reply), expected);
}

TEST(NbdProtocolTest, InfoAnswersLikeGoButStaysInHaggling) {
  Negotiator n(TestExport());
  // Default export, asking for NBD_INFO_NAME and NBD_INFO_BLOCK_SIZE.
  Negotiator::Step step = n.HandleOption(kOptInfo, Hex("00000000 0002 0001 0003"));
  EXPECT_EQ(step.after, After::kContinue);
  std::string expected = ReplyHeader("00000006", "00000003", "0000000c") +
                         "0000"
                         "0000000010000000"
                         "016d" +
                         ReplyHeader("00000006", "00000003", "00000005") +
                         "0001"
                         "766f6c" +
                         ReplyHeader("00000006", "00000003", "0000000e") +
                         "0003"
                         "00000001"
                         "00001000"
                         "02000000" +
                         ReplyHeader("00000006", "00000001", "00000000");
  EXPECT_EQ(HexEncode(step.reply), expected);
}

TEST(NbdProtocolTest, GoForUnknownExportIsErrUnknownAndHagglingContinues) {
  Negotiator n(TestExport());
  Negotiator::Step step = n.HandleOption(kOptGo, Hex("00000002 6e6f 0000"));
  EXPECT_EQ(step.after, After::kContinue);
  ASSERT_GE(step.reply.size(), 20u);
  EXPECT_EQ(HexEncode(ByteSpan(step.reply).first(16)),
            "0003e889045565a9"
            "00000007"
            "80000006");
}

TEST(NbdProtocolTest, MalformedGoDataIsErrInvalid) {
  Negotiator n(TestExport());
  for (std::string_view data : {"", "00000004 766f6c 0000", "00000003 766f6c 0001",
                                "00000003 766f6c 0000 00", "00001001"}) {
    Negotiator::Step step = n.HandleOption(kOptGo, Hex(data));
    EXPECT_EQ(step.after, After::kContinue) << data;
    ASSERT_GE(step.reply.size(), 16u) << data;
    EXPECT_EQ(HexEncode(ByteSpan(step.reply).subspan(12, 4)), "80000003") << data;
  }
}

TEST(NbdProtocolTest, InfoRequestDecodesNameAndInfoTypes) {
  Result<InfoRequest> r = DecodeInfoRequest(Hex("00000003 766f6c 0002 0001 0003"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->name, "vol");
  EXPECT_EQ(r->infos, (std::vector<uint16_t>{1, 3}));
  Bytes too_long = Hex("00001001");
  too_long.resize(4 + 4097 + 2, 'a');
  EXPECT_FALSE(DecodeInfoRequest(too_long).has_value());
}

TEST(NbdProtocolTest, ListRepliesOneServerThenAck) {
  Negotiator n(TestExport());
  Negotiator::Step step = n.HandleOption(kOptList, {});
  EXPECT_EQ(step.after, After::kContinue);
  std::string expected = ReplyHeader("00000003", "00000002", "00000007") +
                         "00000003"
                         "766f6c" +
                         ReplyHeader("00000003", "00000001", "00000000");
  EXPECT_EQ(HexEncode(step.reply), expected);

  step = n.HandleOption(kOptList, Hex("00"));
  EXPECT_EQ(HexEncode(ByteSpan(step.reply).subspan(12, 4)), "80000003");
}

TEST(NbdProtocolTest, AbortAcksThenCloses) {
  Negotiator n(TestExport());
  Negotiator::Step step = n.HandleOption(kOptAbort, {});
  EXPECT_EQ(step.after, After::kClose);
  EXPECT_EQ(HexEncode(step.reply), ReplyHeader("00000002", "00000001", "00000000"));
}

TEST(NbdProtocolTest, StartTlsStructuredRepliesAndUnknownOptionsAreUnsupported) {
  Negotiator n(TestExport());
  for (uint32_t option : {kOptStartTls, kOptStructuredReply, 4u, 9u, 10u, 11u, 0xdeadbeefu}) {
    Negotiator::Step step = n.HandleOption(option, Hex("0102"));
    EXPECT_EQ(step.after, After::kContinue) << option;
    ASSERT_GE(step.reply.size(), 20u);
    Writer w;
    w.WriteU32Be(option);
    EXPECT_EQ(HexEncode(ByteSpan(step.reply).subspan(8, 4)), HexEncode(w.bytes()));
    EXPECT_EQ(HexEncode(ByteSpan(step.reply).subspan(12, 4)), "80000001") << option;
  }
}

TEST(NbdProtocolTest, TooBigOptionIsErrTooBig) {
  Negotiator n(TestExport());
  Negotiator::Step step = n.RejectTooBig(kOptGo);
  EXPECT_EQ(step.after, After::kContinue);
  EXPECT_EQ(HexEncode(ByteSpan(step.reply).subspan(12, 4)), "80000009");
}

TEST(NbdProtocolTest, RequestDecodesAllFieldsAndRoundTrips) {
  Bytes wire = Hex("25609513 0001 0001 0102030405060708 0000000000001000 00000200");
  Result<Request> r = DecodeRequest(wire);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->flags, kCmdFlagFua);
  EXPECT_EQ(r->type, kCmdWrite);
  EXPECT_EQ(r->cookie, 0x0102030405060708u);
  EXPECT_EQ(r->offset, 0x1000u);
  EXPECT_EQ(r->length, 0x200u);
  EXPECT_EQ(EncodeRequest(*r), wire);
}

TEST(NbdProtocolTest, RequestWithBadMagicOrSizeIsMalformed) {
  EXPECT_FALSE(DecodeRequest(Hex("25609514 0000 0000 0000000000000000 0000000000000000 00000000")));
  EXPECT_FALSE(DecodeRequest(Hex("25609513 0000 0000 0000000000000000 0000000000000000 000000")));
  EXPECT_FALSE(
      DecodeRequest(Hex("25609513 0000 0000 0000000000000000 0000000000000000 00000000 00")));
}

TEST(NbdProtocolTest, SimpleReplyIsMagicErrorCookie) {
  EXPECT_EQ(HexEncode(EncodeSimpleReply(kEio, 0xa1b2c3d4e5f60718)),
            "67446698"
            "00000005"
            "a1b2c3d4e5f60718");
}

RequestCheck Check(uint16_t type, uint64_t offset, uint32_t length, uint16_t flags = 0) {
  return CheckRequest(Request{.flags = flags, .type = type, .offset = offset, .length = length},
                      TestExport());
}

TEST(NbdProtocolTest, CheckRequestAcceptsInRangeCommands) {
  const uint64_t size = TestExport().size;
  for (uint16_t type : {kCmdRead, kCmdWrite, kCmdTrim, kCmdWriteZeroes}) {
    EXPECT_EQ(Check(type, 0, 4096).action, RequestCheck::Action::kExecute) << type;
    EXPECT_EQ(Check(type, size - 1, 1).action, RequestCheck::Action::kExecute) << type;
    EXPECT_EQ(Check(type, size, 0).action, RequestCheck::Action::kExecute) << type;
    EXPECT_EQ(Check(type, 0, 512, kCmdFlagFua).action, RequestCheck::Action::kExecute) << type;
  }
  EXPECT_EQ(Check(kCmdFlush, 0, 0).action, RequestCheck::Action::kExecute);
  EXPECT_EQ(Check(kCmdWriteZeroes, 0, 512, kCmdFlagNoHole).action, RequestCheck::Action::kExecute);
  EXPECT_EQ(Check(kCmdRead, 0, kMaxPayload).action, RequestCheck::Action::kExecute);
  // TRIM and WRITE_ZEROES carry no payload: the maximum block size does not bound them.
  EXPECT_EQ(Check(kCmdTrim, 0, kMaxPayload + 1).action, RequestCheck::Action::kExecute);
}

TEST(NbdProtocolTest, CheckRequestRejectsOutOfRangeWithEinvalOrEnospc) {
  const uint64_t size = TestExport().size;
  RequestCheck c = Check(kCmdRead, size - 1, 2);
  EXPECT_EQ(c.action, RequestCheck::Action::kReject);
  EXPECT_EQ(c.error, kEinval);
  c = Check(kCmdWrite, size, 1);
  EXPECT_EQ(c.action, RequestCheck::Action::kReject);
  EXPECT_EQ(c.error, kEnospc);
  c = Check(kCmdWriteZeroes, size + 4096, 4096);
  EXPECT_EQ(c.error, kEnospc);
  c = Check(kCmdTrim, size, 1);
  EXPECT_EQ(c.error, kEinval);
  // offset + length overflows 64 bits.
  c = Check(kCmdRead, UINT64_MAX - 10, 4096);
  EXPECT_EQ(c.action, RequestCheck::Action::kReject);
  EXPECT_EQ(c.error, kEinval);
  c = Check(kCmdWrite, UINT64_MAX, 1);
  EXPECT_EQ(c.error, kEinval);
}

TEST(NbdProtocolTest, CheckRequestRejectsOversizedReadAndClosesOnOversizedWrite) {
  RequestCheck c = Check(kCmdRead, 0, kMaxPayload + 1);
  EXPECT_EQ(c.action, RequestCheck::Action::kReject);
  EXPECT_EQ(c.error, kEinval);
  EXPECT_EQ(Check(kCmdWrite, 0, kMaxPayload + 1).action, RequestCheck::Action::kClose);
  EXPECT_EQ(Check(kCmdWrite, 0, kMaxPayload).action, RequestCheck::Action::kExecute);
}

TEST(NbdProtocolTest, CheckRequestRejectsUnknownCommandsAndFlags) {
  for (uint16_t type : {uint16_t{5}, uint16_t{7}, uint16_t{8}, uint16_t{0xffff}}) {
    RequestCheck c = Check(type, 0, 0);
    EXPECT_EQ(c.action, RequestCheck::Action::kReject) << type;
    EXPECT_EQ(c.error, kEinval);
  }
  EXPECT_EQ(Check(kCmdRead, 0, 512, 1 << 2).error, kEinval);           // DF: not negotiated.
  EXPECT_EQ(Check(kCmdWrite, 0, 512, kCmdFlagNoHole).error, kEinval);  // Only for WRITE_ZEROES.
  EXPECT_EQ(Check(kCmdWriteZeroes, 0, 512, 1 << 4).error, kEinval);    // FAST_ZERO: not offered.
  EXPECT_EQ(Check(kCmdDisc, 0, 0).action, RequestCheck::Action::kClose);
}

}  // namespace
}  // namespace enclavia::enclave::nbd
