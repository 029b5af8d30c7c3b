// SPDX-License-Identifier: Apache-2.0
#include "lib/cbor/internal/head.h"

#include <bit>
#include <cmath>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "lib/base/encoding.h"
#include "lib/cbor/cbor.h"

namespace enclavia::cbor::internal {
namespace {

Bytes Hex(std::string_view hex) {
  Result<Bytes> b = HexDecode(hex);
  EXPECT_TRUE(b.has_value()) << hex;
  return b ? *b : Bytes();
}

Result<Head> ReadHex(std::string_view hex) { return ReadHead(Hex(hex)); }

void ExpectTruncated(const Bytes& b) {
  Result<Head> h = ReadHead(b);
  ASSERT_FALSE(h.has_value()) << HexEncode(b);
  EXPECT_EQ(h.error().code(), Code::kMalformed);
  EXPECT_EQ(h.error().message(), "cbor: truncated") << HexEncode(b);
}

TEST(CborHeadTest, ReadsEveryArgumentWidthOfEveryIntegerMajorType) {
  struct Case {
    std::string hex_arg;  // Additional information and argument bytes after the major type.
    uint8_t arg_bytes;
    uint64_t arg;
  };
  const Case cases[] = {
      {"00", 0, 0},
      {"17", 0, 23},
      {"18ff", 1, 0xff},
      {"190102", 2, 0x0102},
      {"1a01020304", 4, 0x01020304},
      {"1b0102030405060708", 8, 0x0102030405060708},
      {"1bffffffffffffffff", 8, 0xffffffffffffffff},
  };
  const struct {
    uint8_t major;
    Head::Kind kind;
  } majors[] = {{0, Head::Kind::kUnsigned}, {1, Head::Kind::kNegative}, {4, Head::Kind::kArray},
                {5, Head::Kind::kMap},      {6, Head::Kind::kTag}};
  for (const auto& m : majors) {
    for (const Case& c : cases) {
      Bytes b = Hex(c.hex_arg);
      b[0] = static_cast<uint8_t>(b[0] | (m.major << 5));
      b.push_back(0xaa);  // A following byte that must not be consumed.
      Result<Head> h = ReadHead(b);
      ASSERT_TRUE(h.has_value()) << HexEncode(b);
      EXPECT_EQ(h->kind, m.kind) << HexEncode(b);
      EXPECT_EQ(h->major(), m.major);
      EXPECT_EQ(h->arg, c.arg) << HexEncode(b);
      EXPECT_EQ(h->arg_bytes, c.arg_bytes);
      EXPECT_EQ(h->size, 1U + c.arg_bytes);
      EXPECT_TRUE(h->IsShortest()) << HexEncode(b);
    }
  }
}

TEST(CborHeadTest, TruncatedHeadsFailAtEveryByte) {
  for (const char* hex : {"18ff", "190102", "1a01020304", "1b0102030405060708", "3b0102030405060708",
                          "9b0000000000000001", "db0102030405060708", "f820", "f93c00", "fa3f800000",
                          "fb3ff0000000000000", "5b000000000000000401020304", "63616263"}) {
    const Bytes full = Hex(hex);
    ASSERT_TRUE(ReadHead(full).has_value()) << hex;
    for (size_t n = 0; n < full.size(); ++n) {
      ExpectTruncated(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
    }
  }
}

TEST(CborHeadTest, ReportsNonShortestFormsWithTheirWidth) {
  struct Case {
    std::string hex;
    uint8_t arg_bytes;
    uint64_t arg;
  };
  for (const Case& c : {Case{"1817", 1, 23}, Case{"1900ff", 2, 0xff}, Case{"1a0000ffff", 4, 0xffff},
                        Case{"1b00000000ffffffff", 8, 0xffffffff}, Case{"3800", 1, 0},
                        Case{"9900 01", 2, 1}, Case{"d817", 1, 23}}) {
    std::string hex = c.hex;
    std::erase(hex, ' ');
    Result<Head> h = ReadHex(hex);
    ASSERT_TRUE(h.has_value()) << hex;
    EXPECT_EQ(h->arg, c.arg) << hex;
    EXPECT_EQ(h->arg_bytes, c.arg_bytes) << hex;
    EXPECT_FALSE(h->IsShortest()) << hex;
  }
  // The shortest form at each width boundary.
  for (const char* hex : {"1818", "190100", "1a00010000", "1b0000000100000000"}) {
    Result<Head> h = ReadHex(hex);
    ASSERT_TRUE(h.has_value()) << hex;
    EXPECT_TRUE(h->IsShortest()) << hex;
  }
  // A non-shortest length still frames the string correctly.
  const Bytes str = Hex("5a00000002abcd");  // Head::data points into it.
  Result<Head> s = ReadHead(str);
  ASSERT_TRUE(s.has_value());
  EXPECT_FALSE(s->IsShortest());
  EXPECT_EQ(HexEncode(s->data), "abcd");
  EXPECT_EQ(s->size, 7U);
}

TEST(CborHeadTest, ReadsDefiniteStringsWithinBounds) {
  // Head::data points into the input, so keep it alive.
  const Bytes bytes = Hex("43010203ff");
  Result<Head> b = ReadHead(bytes);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, Head::Kind::kBytes);
  EXPECT_EQ(HexEncode(b->data), "010203");
  EXPECT_EQ(b->size, 4U);

  const Bytes text = Hex("7818" + std::string(48, '6'));  // 24 bytes of 'f'.
  Result<Head> t = ReadHead(text);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->kind, Head::Kind::kText);
  EXPECT_EQ(AsString(t->data), std::string(24, 'f'));
  EXPECT_EQ(t->size, 26U);

  Result<Head> empty = ReadHex("40");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->data.empty());
  EXPECT_EQ(empty->size, 1U);

  // Lengths near 2^64 must not wrap when compared with what is left.
  for (const char* hex : {"5bffffffffffffffff00", "7bfffffffffffffffe0102", "5bffffffffffffffff",
                          "5a7fffffff0102"}) {
    SCOPED_TRACE(hex);
    ExpectTruncated(Hex(hex));
  }
}

TEST(CborHeadTest, ReadsIndefiniteMarkersAndBreak) {
  const struct {
    const char* hex;
    Head::Kind kind;
  } cases[] = {{"5f", Head::Kind::kBytesStart},
               {"7f", Head::Kind::kTextStart},
               {"9f", Head::Kind::kIndefiniteArray},
               {"bf", Head::Kind::kIndefiniteMap},
               {"ff", Head::Kind::kBreak}};
  for (const auto& c : cases) {
    Result<Head> h = ReadHex(c.hex);
    ASSERT_TRUE(h.has_value()) << c.hex;
    EXPECT_EQ(h->kind, c.kind) << c.hex;
    EXPECT_EQ(h->size, 1U);
  }
  for (const char* hex : {"1f", "3f", "df"}) {
    Result<Head> h = ReadHex(hex);
    ASSERT_FALSE(h.has_value()) << hex;
    EXPECT_EQ(h.error().message(), std::string("cbor: indefinite length not allowed in 0x") + hex);
  }
}

TEST(CborHeadTest, RejectsReservedAdditionalInformationInEveryMajorType) {
  for (int major = 0; major < 8; ++major) {
    for (int info = 28; info <= 30; ++info) {
      // Followed by plenty of bytes, so nothing can be mistaken for truncation.
      Bytes b(16, 0);
      b[0] = static_cast<uint8_t>(major << 5 | info);
      Result<Head> h = ReadHead(b);
      ASSERT_FALSE(h.has_value()) << HexEncode(b);
      EXPECT_EQ(h.error().code(), Code::kMalformed);
      EXPECT_EQ(h.error().message(),
                "cbor: reserved additional information in 0x" + HexEncode(ByteSpan(b).first(1)));
    }
  }
}

TEST(CborHeadTest, ReadsSimpleValues) {
  for (int s = 0; s < 20; ++s) {
    Result<Head> h = ReadHead(Bytes{static_cast<uint8_t>(0xe0 + s)});
    ASSERT_TRUE(h.has_value()) << s;
    EXPECT_EQ(h->kind, Head::Kind::kSimple);
    EXPECT_EQ(h->arg, static_cast<uint64_t>(s));
  }
  EXPECT_EQ(ReadHex("f4")->kind, Head::Kind::kBool);
  EXPECT_EQ(ReadHex("f4")->arg, 0U);
  EXPECT_EQ(ReadHex("f5")->arg, 1U);
  EXPECT_EQ(ReadHex("f6")->kind, Head::Kind::kNull);
  EXPECT_EQ(ReadHex("f7")->kind, Head::Kind::kUndefined);
  for (int s = 32; s < 256; ++s) {
    Result<Head> h = ReadHead(Bytes{0xf8, static_cast<uint8_t>(s)});
    ASSERT_TRUE(h.has_value()) << s;
    EXPECT_EQ(h->kind, Head::Kind::kSimple);
    EXPECT_EQ(h->arg, static_cast<uint64_t>(s));
    EXPECT_EQ(h->size, 2U);
  }
  for (int s = 0; s < 32; ++s) {
    Result<Head> h = ReadHead(Bytes{0xf8, static_cast<uint8_t>(s)});
    ASSERT_FALSE(h.has_value()) << s;
    EXPECT_EQ(h.error().message(), "cbor: two-byte simple value " + std::to_string(s) + " below 32");
  }
}

double HalfAt(uint16_t bits) {
  const Bytes b{0xf9, static_cast<uint8_t>(bits >> 8), static_cast<uint8_t>(bits & 0xff)};
  Result<Head> h = ReadHead(b);
  EXPECT_TRUE(h.has_value()) << bits;
  EXPECT_EQ(h->kind, Head::Kind::kFloat);
  EXPECT_EQ(h->size, 3U);
  return h ? h->number : 0.0;
}

TEST(CborHeadTest, WidensHalfFloatsExactly) {
  EXPECT_EQ(std::bit_cast<uint64_t>(HalfAt(0x0000)), 0U);
  EXPECT_EQ(std::bit_cast<uint64_t>(HalfAt(0x8000)), 0x8000000000000000U);  // -0.0
  EXPECT_EQ(HalfAt(0x3c00), 1.0);
  EXPECT_EQ(HalfAt(0xc400), -4.0);
  EXPECT_EQ(HalfAt(0x3e00), 1.5);
  EXPECT_EQ(HalfAt(0x7bff), 65504.0);
  EXPECT_EQ(HalfAt(0x0001), std::ldexp(1.0, -24));             // Smallest subnormal.
  EXPECT_EQ(HalfAt(0x03ff), 1023.0 * std::ldexp(1.0, -24));    // Largest subnormal.
  EXPECT_EQ(HalfAt(0x8001), -std::ldexp(1.0, -24));
  EXPECT_EQ(HalfAt(0x0400), std::ldexp(1.0, -14));             // Smallest normal.
  EXPECT_EQ(HalfAt(0x7c00), std::numeric_limits<double>::infinity());
  EXPECT_EQ(HalfAt(0xfc00), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(HalfAt(0x7e00)));
  EXPECT_TRUE(std::isnan(HalfAt(0x7c01)));  // Signalling payload still a NaN.
  EXPECT_TRUE(std::isnan(HalfAt(0xfe00)));

  // Every finite half round-trips through the encoder's shortest form: exact widening.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    if ((bits & 0x7c00) == 0x7c00) {
      continue;  // Inf and NaN checked above.
    }
    const double d = HalfAt(static_cast<uint16_t>(bits));
    const Bytes enc = Encode(Value::Double(d));
    ASSERT_EQ(enc.size(), 3U) << bits;
    const uint16_t back = static_cast<uint16_t>(enc[1] << 8 | enc[2]);
    ASSERT_EQ(back, bits) << bits;
  }
}

TEST(CborHeadTest, WidensSingleAndDoubleFloats) {
  Result<Head> f = ReadHex("fa47c35000");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Head::Kind::kFloat);
  EXPECT_EQ(f->number, 100000.0);
  EXPECT_EQ(f->size, 5U);
  EXPECT_EQ(ReadHex("fa00000001")->number, std::ldexp(1.0, -149));  // Single subnormal.
  EXPECT_EQ(ReadHex("fa7f800000")->number, std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(ReadHex("fa7fc00000")->number));

  Result<Head> d = ReadHex("fb3ff199999999999a");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->number, 1.1);
  EXPECT_EQ(d->size, 9U);
  EXPECT_EQ(std::bit_cast<uint64_t>(ReadHex("fb8000000000000000")->number), 0x8000000000000000U);
}

TEST(CborHeadTest, EveryInitialByteEitherParsesOrFailsCleanly) {
  // With 9 spare bytes every head fits; strings of length <= 8 fit too.
  for (int initial = 0; initial < 256; ++initial) {
    Bytes b(10, 0);
    b[0] = static_cast<uint8_t>(initial);
    Result<Head> h = ReadHead(b);
    if (h.has_value()) {
      EXPECT_GE(h->size, 1U);
      EXPECT_LE(h->size, b.size());
      EXPECT_EQ(h->initial, b[0]);
    } else {
      EXPECT_EQ(h.error().code(), Code::kMalformed);
      EXPECT_TRUE(h.error().message().starts_with("cbor: ")) << h.error().message();
    }
  }
}

}  // namespace
}  // namespace enclavia::cbor::internal
