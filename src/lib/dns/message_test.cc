// SPDX-License-Identifier: Apache-2.0
#include "lib/dns/message.h"

#include <gtest/gtest.h>

namespace enclavia::dns {
namespace {

Bytes Hex(std::string_view hex) {
  Bytes out;
  auto nibble = [](char c) {
    return static_cast<uint8_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  };
  for (size_t i = 0; i + 1 < hex.size();) {
    if (hex[i] == ' ') {
      ++i;
      continue;
    }
    out.push_back(static_cast<uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
    i += 2;
  }
  return out;
}

// A query for WWW.Example.com AAAA with an EDNS OPT (payload 1232, DO set), as dig sends it.
const char kEdnsQuery[] =
    "abcd 0120 0001 0000 0000 0001"
    "03575757 074578616d706c65 03636f6d 00 001c 0001"
    "00 0029 04d0 0000 8000 0000";

// A response for www.example.com A: CNAME to web.example.com (compressed), two A records.
const char kCnameAnswer[] =
    "1234 8180 0001 0003 0000 0000"
    "03777777 076578616d706c65 03636f6d 00 0001 0001"
    "c00c 0005 0001 00000e10 0006 03776562 c010"  // www CNAME web.example.com
    "c02d 0001 0001 0000012c 0004 c0000201"       // web A 192.0.2.1, ttl 300
    "c02d 0001 0001 80000000 0004 c0000202";      // ttl with top bit set → 0

TEST(MessageTest, ParsesQueryWithEdnsAndKeepsQuestionCase) {
  auto q = ParseQuery(Hex(kEdnsQuery));
  ASSERT_TRUE(q) << q.error().message();
  EXPECT_EQ(q->header.id, 0xabcd);
  EXPECT_TRUE(q->header.rd());
  EXPECT_EQ(q->name, "www.example.com");
  EXPECT_EQ(q->qtype, kTypeAaaa);
  EXPECT_EQ(q->qclass, kClassIn);
  ASSERT_TRUE(q->edns_udp_size.has_value());
  EXPECT_EQ(*q->edns_udp_size, 1232);
  EXPECT_EQ(q->question, Hex("03575757 074578616d706c65 03636f6d 00 001c 0001"));
}

TEST(MessageTest, BuildsRefusedWithQuestionEchoed) {
  auto q = ParseQuery(Hex(kEdnsQuery));
  ASSERT_TRUE(q);
  Bytes r = BuildResponse(*q, Rcode::kRefused);
  auto h = ParseHeader(r);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->id, 0xabcd);
  EXPECT_TRUE(h->qr());
  EXPECT_TRUE(h->rd());
  EXPECT_EQ(h->rcode(), 5);
  EXPECT_EQ(h->qdcount, 1);
  EXPECT_EQ(h->ancount + h->nscount + h->arcount, 0);
  EXPECT_EQ(Bytes(r.begin() + 12, r.end()), q->question);
  EXPECT_FALSE(ParseQuery(r)) << "a response must not parse as a query";
  Bytes tc = BuildResponse(*q, Rcode::kNoError, true);
  EXPECT_TRUE(ParseHeader(tc)->tc());
}

TEST(MessageTest, BuildsFormErrFromHeaderOnly) {
  Bytes bad = Hex("beef 0100 0001 0000 0000 0000 05 6162");  // label runs past the end
  EXPECT_FALSE(ParseQuery(bad));
  auto h = ParseHeader(bad);
  ASSERT_TRUE(h);
  Bytes r = BuildHeaderResponse(*h, Rcode::kFormErr);
  ASSERT_EQ(r.size(), 12u);
  EXPECT_EQ(ParseHeader(r)->id, 0xbeef);
  EXPECT_EQ(ParseHeader(r)->rcode(), 1);
  EXPECT_EQ(ParseHeader(r)->qdcount, 0);
}

TEST(MessageTest, RejectsMalformedQueries) {
  EXPECT_FALSE(ParseHeader(Hex("0001 0100 0001 0000 00")));
  // Two questions.
  EXPECT_FALSE(ParseQuery(Hex("0001 0100 0002 0000 0000 0000 00 0001 0001 00 0001 0001")));
  // QR set.
  EXPECT_FALSE(ParseQuery(Hex("0001 8100 0001 0000 0000 0000 00 0001 0001")));
  // An answer record in a query.
  EXPECT_FALSE(ParseQuery(Hex("0001 0100 0001 0001 0000 0000 00 0001 0001")));
  // Trailing bytes.
  EXPECT_FALSE(ParseQuery(Hex("0001 0100 0001 0000 0000 0000 00 0001 0001 ff")));
  // Truncated type.
  EXPECT_FALSE(ParseQuery(Hex("0001 0100 0001 0000 0000 0000 00 0001")));
  // Label type 0x40 (extended label).
  EXPECT_FALSE(ParseQuery(Hex("0001 0100 0001 0000 0000 0000 41 00 0001 0001")));
  // Two OPT records.
  EXPECT_FALSE(
      ParseQuery(Hex("0001 0100 0001 0000 0000 0002 00 0001 0001"
                     "00 0029 0200 00000000 0000 00 0029 0200 00000000 0000")));
  // OPT record data past the end.
  EXPECT_FALSE(
      ParseQuery(Hex("0001 0100 0001 0000 0000 0001 00 0001 0001"
                     "00 0029 0200 00000000 0004 00")));
  // Root query is fine.
  auto root = ParseQuery(Hex("0001 0100 0001 0000 0000 0000 00 0030 0001"));
  ASSERT_TRUE(root);
  EXPECT_EQ(root->name, "");
  EXPECT_EQ(root->qtype, kTypeDnskey);
}

TEST(MessageTest, RejectsCompressionLoopsAndForwardPointers) {
  // The question name points to itself.
  EXPECT_FALSE(ParseQuery(Hex("0001 0100 0001 0000 0000 0000 c00c 0001 0001")));
  // A label, then a pointer back to that label: a loop that only the jump limit stops.
  EXPECT_FALSE(ParseQuery(Hex("0001 0100 0001 0000 0000 0000 0161 c00c 0001 0001")));
  // A forward pointer.
  EXPECT_FALSE(ParseQuery(Hex("0001 0100 0001 0000 0000 0000 c00e 0001 0001 00")));
  // A pointer into the header.
  EXPECT_FALSE(ParseQuery(Hex("0001 0100 0001 0000 0000 0000 c002 0001 0001")));
  // 100 questions, each "a" + a pointer to the previous one: question k takes k jumps, so the
  // jump limit stops the walk (each step is backwards, as RFC 1035 allows).
  Bytes m = Hex("0001 8100 0064 0000 0000 0000");
  size_t prev = 0;
  for (int i = 0; i < 100; ++i) {
    size_t here = m.size();
    m.push_back(1);
    m.push_back('a');
    if (i == 0) {
      m.push_back(0);
    } else {
      m.push_back(static_cast<uint8_t>(0xc0 | (prev >> 8)));
      m.push_back(static_cast<uint8_t>(prev));
    }
    m.insert(m.end(), {0, 1, 0, 1});
    prev = here;
  }
  auto limited = ExtractAddresses(m);
  ASSERT_FALSE(limited);
  EXPECT_NE(limited.error().message().find("too many compression pointers"), std::string::npos);
  m[5] = 60;  // only the first 60 questions: within the limit
  m.resize(12 + 7 + 59 * 8);
  EXPECT_TRUE(ExtractAddresses(m));
}

TEST(MessageTest, RejectsNamesOver255Bytes) {
  Bytes m = Hex("0001 0100 0001 0000 0000 0000");
  for (int i = 0; i < 5; ++i) {
    m.push_back(63);
    m.insert(m.end(), 63, 'x');
  }
  m.push_back(0);
  m.insert(m.end(), {0, 1, 0, 1});
  EXPECT_FALSE(ParseQuery(m));
}

TEST(MessageTest, EscapesUnusualLabelBytes) {
  // One label "A.b\" then "com".
  auto q = ParseQuery(Hex("0001 0100 0001 0000 0000 0000 04 412e625c 03636f6d 00 0001 0001"));
  ASSERT_TRUE(q);
  EXPECT_EQ(q->name, "a\\046b\\092.com");
  auto wire = EncodeName(q->name);
  ASSERT_TRUE(wire);
  EXPECT_EQ(*wire, Hex("04 612e625c 03636f6d 00"));
}

TEST(MessageTest, ExtractsAddressesThroughCnameChain) {
  auto records = ExtractAddresses(Hex(kCnameAnswer));
  ASSERT_TRUE(records) << records.error().message();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].name, "web.example.com");
  EXPECT_EQ((*records)[0].address, Hex("c0000201"));
  EXPECT_EQ((*records)[0].ttl, 300u);
  EXPECT_EQ((*records)[1].ttl, 0u);
}

TEST(MessageTest, ExtractsCompressedCnameTarget) {
  auto cnames = ExtractCnames(Hex(kCnameAnswer));
  ASSERT_TRUE(cnames) << cnames.error().message();
  ASSERT_EQ(cnames->size(), 1u);
  EXPECT_EQ((*cnames)[0].owner, "www.example.com");
  EXPECT_EQ((*cnames)[0].target, "web.example.com");
  EXPECT_EQ((*cnames)[0].ttl, 3600u);
  // RDATA longer than the name in it.
  Bytes padded = Hex("1234 8180 0000 0001 0000 0000 00 0005 0001 0000012c 0002 00 00");
  EXPECT_FALSE(ExtractCnames(padded));
}

TEST(MessageTest, RejectsAddressRecordOfWrongSize) {
  Bytes m = Hex("1234 8180 0000 0001 0000 0000 00 0001 0001 0000012c 0003 c00002");
  EXPECT_FALSE(ExtractAddresses(m));
  Bytes aaaa = Hex("1234 8180 0000 0001 0000 0000 00 001c 0001 0000012c 0004 c0000201");
  EXPECT_FALSE(ExtractAddresses(aaaa));
}

TEST(MessageTest, AnswerForTakesQueryIdAndQuestionCase) {
  auto q =
      ParseQuery(Hex("7777 0100 0001 0000 0000 0000 03575757 074578616d706c65 03636f6d 00 "
                     "0001 0001"));
  ASSERT_TRUE(q);
  auto a = AnswerFor(*q, Hex(kCnameAnswer));
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(ParseHeader(*a)->id, 0x7777);
  EXPECT_EQ(Bytes(a->begin() + 12, a->begin() + 12 + static_cast<long>(q->question.size())),
            q->question);
  auto records = ExtractAddresses(*a);
  ASSERT_TRUE(records);
  EXPECT_EQ(records->size(), 2u);

  auto other = ParseQuery(Hex("7777 0100 0001 0000 0000 0000 03777777 03636f6d 00 0001 0001"));
  ASSERT_TRUE(other);
  EXPECT_FALSE(AnswerFor(*other, Hex(kCnameAnswer)));
  auto aaaa =
      ParseQuery(Hex("7777 0100 0001 0000 0000 0000 03777777 076578616d706c65 03636f6d "
                     "00 001c 0001"));
  ASSERT_TRUE(aaaa);
  EXPECT_FALSE(AnswerFor(*aaaa, Hex(kCnameAnswer)));
}

TEST(MessageTest, ReplaceIdAndBuildQueryRoundTrip) {
  auto built = BuildQuery(42, "Api.Example.ORG.", kTypeA);
  ASSERT_TRUE(built);
  auto q = ParseQuery(*built);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->name, "api.example.org");
  EXPECT_EQ(q->header.id, 42);
  auto replaced = ReplaceId(*built, 7);
  ASSERT_TRUE(replaced);
  EXPECT_EQ(ParseHeader(*replaced)->id, 7);
  EXPECT_FALSE(ReplaceId(Hex("0001"), 7));
  EXPECT_FALSE(EncodeName("a..b"));
  EXPECT_FALSE(EncodeName(std::string(64, 'x') + ".com"));
  EXPECT_FALSE(EncodeName("a\\25"));
  EXPECT_FALSE(EncodeName("a\\256"));
  EXPECT_EQ(*EncodeName("."), Bytes{0});
}

}  // namespace
}  // namespace enclavia::dns
