// SPDX-License-Identifier: Apache-2.0
#include "lib/cbor/cbor.h"

#include <bit>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "lib/base/encoding.h"

namespace enclavia::cbor {
namespace {

Bytes Hex(std::string_view hex) {
  Result<Bytes> b = HexDecode(hex);
  EXPECT_TRUE(b.has_value()) << hex;
  return b ? *b : Bytes();
}

Result<Value> DecodeHex(std::string_view hex, const DecodeOptions& options = {}) {
  return Decode(Hex(hex), options);
}

std::string EncodeHex(const Value& v, MapOrder order = MapOrder::kDeterministic) {
  return HexEncode(Encode(v, order));
}

Value Text(std::string_view s) { return Value::TextString(s); }
Value U(uint64_t v) { return Value::Uint(v); }
Value I(int64_t v) { return Value::Int(v); }
Value Arr(Value::Array items) { return Value::MakeArray(std::move(items)); }
Value MapOf(Value::Map entries) { return Value::MakeMap(std::move(entries)); }

// A data item from RFC 8949 Appendix A: its encoding, the value, and whether that encoding is
// the preferred one (so Encode must give it back).
struct Example {
  std::string hex;
  Value value;
  bool preferred = true;
};

std::vector<Example> AppendixAExamples() {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Value::Array one_to_25;
  for (uint64_t i = 1; i <= 25; ++i) {
    one_to_25.push_back(U(i));
  }
  Value nested = Arr({U(1), Arr({U(2), U(3)}), Arr({U(4), U(5)})});
  return {
      {"00", U(0)},
      {"01", U(1)},
      {"0a", U(10)},
      {"17", U(23)},
      {"1818", U(24)},
      {"1819", U(25)},
      {"1864", U(100)},
      {"1903e8", U(1000)},
      {"1a000f4240", U(1000000)},
      {"1b000000e8d4a51000", U(1000000000000)},
      {"1bffffffffffffffff", U(18446744073709551615ULL)},
      {"c249010000000000000000", Value::Tagged(2, Value::ByteString(Hex("010000000000000000")))},
      {"3bffffffffffffffff", Value::NegInt(18446744073709551615ULL)},
      {"c349010000000000000000", Value::Tagged(3, Value::ByteString(Hex("010000000000000000")))},
      {"20", I(-1)},
      {"29", I(-10)},
      {"3863", I(-100)},
      {"3903e7", I(-1000)},
      {"f90000", Value::Double(0.0)},
      {"f98000", Value::Double(-0.0)},
      {"f93c00", Value::Double(1.0)},
      {"fb3ff199999999999a", Value::Double(1.1)},
      {"f93e00", Value::Double(1.5)},
      {"f97bff", Value::Double(65504.0)},
      {"fa47c35000", Value::Double(100000.0)},
      {"fa7f7fffff", Value::Double(3.4028234663852886e+38)},
      {"fb7e37e43c8800759c", Value::Double(1.0e+300)},
      {"f90001", Value::Double(5.960464477539063e-8)},
      {"f90400", Value::Double(0.00006103515625)},
      {"f9c400", Value::Double(-4.0)},
      {"fbc010666666666666", Value::Double(-4.1)},
      {"f97c00", Value::Double(inf)},
      {"f97e00", Value::Double(nan)},
      {"f9fc00", Value::Double(-inf)},
      {"fa7f800000", Value::Double(inf), false},
      {"fa7fc00000", Value::Double(nan), false},
      {"faff800000", Value::Double(-inf), false},
      {"fb7ff0000000000000", Value::Double(inf), false},
      {"fb7ff8000000000000", Value::Double(nan), false},
      {"fbfff0000000000000", Value::Double(-inf), false},
      {"f4", Value::Boolean(false)},
      {"f5", Value::Boolean(true)},
      {"f6", Value::Null()},
      {"f7", Value::Undefined()},
      {"f0", Value::Simple(16)},
      {"f8ff", Value::Simple(255)},
      {"c074323031332d30332d32315432303a30343a30305a",
       Value::Tagged(0, Text("2013-03-21T20:04:00Z"))},
      {"c11a514b67b0", Value::Tagged(1, U(1363896240))},
      {"c1fb41d452d9ec200000", Value::Tagged(1, Value::Double(1363896240.5))},
      {"d74401020304", Value::Tagged(23, Value::ByteString(Hex("01020304")))},
      {"d818456449455446", Value::Tagged(24, Value::ByteString(Hex("6449455446")))},
      {"d82076687474703a2f2f7777772e6578616d706c652e636f6d",
       Value::Tagged(32, Text("http://www.example.com"))},
      {"40", Value::ByteString(Bytes{})},
      {"4401020304", Value::ByteString(Hex("01020304"))},
      {"60", Text("")},
      {"6161", Text("a")},
      {"6449455446", Text("IETF")},
      {"62225c", Text("\"\\")},
      {"62c3bc", Text("\u00fc")},
      {"63e6b0b4", Text("\u6c34")},
      {"64f0908591", Text("\U00010151")},
      {"80", Arr({})},
      {"83010203", Arr({U(1), U(2), U(3)})},
      {"8301820203820405", nested},
      {"98190102030405060708090a0b0c0d0e0f101112131415161718181819", Arr(one_to_25)},
      {"a0", MapOf({})},
      {"a201020304", MapOf({{U(1), U(2)}, {U(3), U(4)}})},
      {"a26161016162820203", MapOf({{Text("a"), U(1)}, {Text("b"), Arr({U(2), U(3)})}})},
      {"826161a161626163", Arr({Text("a"), MapOf({{Text("b"), Text("c")}})})},
      {"a56161614161626142616361436164614461656145", MapOf({{Text("a"), Text("A")},
                                                            {Text("b"), Text("B")},
                                                            {Text("c"), Text("C")},
                                                            {Text("d"), Text("D")},
                                                            {Text("e"), Text("E")}})},
      // Indefinite-length forms decode to the same values as the definite ones.
      {"5f42010243030405ff", Value::ByteString(Hex("0102030405")), false},
      {"7f657374726561646d696e67ff", Text("streaming"), false},
      {"9fff", Arr({}), false},
      {"9f018202039f0405ffff", nested, false},
      {"9f01820203820405ff", nested, false},
      {"83018202039f0405ff", nested, false},
      {"83019f0203ff820405", nested, false},
      {"9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff", Arr(one_to_25), false},
      {"bf61610161629f0203ffff", MapOf({{Text("a"), U(1)}, {Text("b"), Arr({U(2), U(3)})}}), false},
      {"826161bf61626163ff", Arr({Text("a"), MapOf({{Text("b"), Text("c")}})}), false},
      {"bf6346756ef563416d7421ff",
       MapOf({{Text("Fun"), Value::Boolean(true)}, {Text("Amt"), I(-2)}}), false},
  };
}

TEST(CborDecodeTest, DecodesEveryAppendixAExample) {
  for (const Example& ex : AppendixAExamples()) {
    SCOPED_TRACE(ex.hex);
    Result<Value> v = DecodeHex(ex.hex);
    ASSERT_TRUE(v.has_value()) << v.error().message();
    EXPECT_EQ(*v, ex.value) << Diagnostic(*v) << " vs " << Diagnostic(ex.value);
  }
}

TEST(CborEncodeTest, EncodesAppendixAExamplesInPreferredForm) {
  for (const Example& ex : AppendixAExamples()) {
    SCOPED_TRACE(ex.hex);
    if (ex.preferred) {
      EXPECT_EQ(EncodeHex(ex.value), ex.hex);
    }
    // Every form, preferred or not, re-encodes to the preferred form of its value.
    Result<Value> v = DecodeHex(ex.hex);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(Encode(*v, MapOrder::kAsGiven), Encode(ex.value, MapOrder::kAsGiven));
  }
}

TEST(CborEncodeTest, ReencodesIndefiniteFormsAsDefinite) {
  EXPECT_EQ(EncodeHex(*DecodeHex("9f018202039f0405ffff")), "8301820203820405");
  EXPECT_EQ(EncodeHex(*DecodeHex("5f42010243030405ff")), "450102030405");
  EXPECT_EQ(EncodeHex(*DecodeHex("7f657374726561646d696e67ff")), "6973747265616d696e67");
  EXPECT_EQ(EncodeHex(*DecodeHex("bf6346756ef563416d7421ff")), "a263416d74216346756ef5");
  EXPECT_EQ(EncodeHex(*DecodeHex("bf6346756ef563416d7421ff"), MapOrder::kAsGiven),
            "a26346756ef563416d7421");
}

TEST(CborEncodeTest, UsesShortestFloatThatKeepsTheValue) {
  EXPECT_EQ(EncodeHex(Value::Double(0.5)), "f93800");
  EXPECT_EQ(EncodeHex(Value::Double(65505.0)), "fa477fe100");           // Not a half.
  EXPECT_EQ(EncodeHex(Value::Double(std::ldexp(1.0, -24))), "f90001");  // Smallest subnormal.
  EXPECT_EQ(EncodeHex(Value::Double(std::ldexp(1.0, -25))), "fa33000000");
  EXPECT_EQ(EncodeHex(Value::Double(std::ldexp(1.0, -149))), "fa00000001");  // Float subnormal.
  EXPECT_EQ(EncodeHex(Value::Double(std::ldexp(1.0, -150))), "fb3690000000000000");
  EXPECT_EQ(EncodeHex(Value::Double(1.0e39)), "fb48078287f49c4a1d");  // Beyond float range.
  // Any NaN payload becomes the one canonical NaN.
  EXPECT_EQ(EncodeHex(*DecodeHex("fb7ff8000000000001")), "f97e00");
  EXPECT_EQ(EncodeHex(*DecodeHex("f97c01")), "f97e00");
}

TEST(CborDecodeTest, DecodesHalfFloatSubnormalsExactly) {
  Result<Value> v = DecodeHex("f903ff");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->as_double(), 1023.0 * std::ldexp(1.0, -24));
  EXPECT_EQ(EncodeHex(*v), "f903ff");
}

TEST(CborDecodeTest, DecodesUnassignedSimpleValues) {
  // Unassigned simple values are well-formed CBOR (some decoders, e.g. libcbor 0.8, refuse them).
  for (int s = 0; s < 20; ++s) {
    const Bytes enc{static_cast<uint8_t>(0xe0 + s)};
    Result<Value> v = Decode(enc);
    ASSERT_TRUE(v.has_value()) << s;
    EXPECT_EQ(v->type(), Type::kSimple);
    EXPECT_EQ(v->as_simple(), s);
    EXPECT_EQ(Encode(*v), enc);
  }
  Result<Value> v = DecodeHex("f820");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->as_simple(), 32);
  EXPECT_EQ(EncodeHex(*v), "f820");
}

TEST(CborDecodeTest, DecodesTagsSixToTwentyInTheInitialByte) {
  // Tags 6..20 in the initial byte (0xc6..0xd4) are well-formed (libcbor 0.8 refused them).
  for (uint64_t tag = 6; tag <= 20; ++tag) {
    const Bytes enc{static_cast<uint8_t>(0xc0 + tag), 0x01};
    Result<Value> v = Decode(enc);
    ASSERT_TRUE(v.has_value()) << tag;
    EXPECT_EQ(*v, Value::Tagged(tag, U(1)));
    EXPECT_EQ(Encode(*v), enc);
  }
}

TEST(CborDecodeTest, AcceptsNonPreferredIntegerHeads) {
  Result<Value> v = DecodeHex("1b0000000000000001");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, U(1));
  EXPECT_EQ(EncodeHex(*v), "01");
}

// RFC 8949 Appendix F.1: every one of these is not well-formed.
TEST(CborDecodeTest, RejectsEveryAppendixFNotWellFormedExample) {
  const std::vector<std::string> examples = {
      // End of input in a head.
      "18",
      "19",
      "1a",
      "1b",
      "1901",
      "1a0102",
      "1b01020304050607",
      "38",
      "58",
      "78",
      "98",
      "9a01ff00",
      "b8",
      "d8",
      "f8",
      "f900",
      "fa0000",
      "fb000000",
      // Definite-length strings with short data.
      "41",
      "61",
      "5affffffff00",
      "5bffffffffffffffff010203",
      "7affffffff00",
      "7b7fffffffffffffff010203",
      // Definite-length maps and arrays not closed with enough items.
      "81",
      "818181818181818181",
      "8200",
      "a1",
      "a20102",
      "a100",
      "a2000000",
      // Tag number not followed by tag content.
      "c0",
      // Indefinite-length strings not closed by a break.
      "5f4100",
      "7f6100",
      // Indefinite-length maps and arrays not closed by a break.
      "9f",
      "9f0102",
      "bf",
      "bf01020102",
      "819f",
      "9f8000",
      "9f9f9f9f9fffffffff",
      "9f819f819f9fffffff",
      // Reserved additional information values.
      "1c",
      "1d",
      "1e",
      "3c",
      "3d",
      "3e",
      "5c",
      "5d",
      "5e",
      "7c",
      "7d",
      "7e",
      "9c",
      "9d",
      "9e",
      "bc",
      "bd",
      "be",
      "dc",
      "dd",
      "de",
      "fc",
      "fd",
      "fe",
      // Reserved two-byte encodings of simple values.
      "f800",
      "f801",
      "f818",
      "f81f",
      // Indefinite-length string chunks not of the correct type.
      "5f00ff",
      "5f21ff",
      "5f6100ff",
      "5f80ff",
      "5fa0ff",
      "5fc000ff",
      "5fe0ff",
      "7f4100ff",
      // Indefinite-length string chunks not definite length.
      "5f5f4100ffff",
      "7f7f6100ffff",
      // Break on its own.
      "ff",
      // Break in a definite-length array, map or tag.
      "81ff",
      "8200ff",
      "a1ff",
      "a1ff00",
      "a100ff",
      "a20000ff",
      "9f81ff",
      "9f829f819f9fffffffff",
      // Break in a value position of an indefinite-length map.
      "bf00ff",
      "bf000000ff",
      // Major types 0, 1 and 6 with additional information 31.
      "1f",
      "3f",
      "df",
  };
  for (const std::string& hex : examples) {
    Result<Value> v = DecodeHex(hex);
    ASSERT_FALSE(v.has_value()) << hex << " decoded as " << Diagnostic(*v);
    EXPECT_EQ(v.error().code(), Code::kMalformed) << hex;
    EXPECT_TRUE(v.error().message().starts_with("cbor: ")) << v.error().message();
    EXPECT_EQ(v.error().message().find('\n'), std::string::npos);
  }
}

TEST(CborDecodeTest, RejectsEmptyInputAsTruncated) {
  Result<Value> v = Decode({});
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().message(), "cbor: truncated");
}

TEST(CborDecodeTest, RejectsBreakOutsideIndefiniteItem) {
  Result<Value> v = DecodeHex("81ff");
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().message(), "cbor: break outside indefinite-length item");
}

TEST(CborDecodeTest, RejectsReservedAdditionalInformation) {
  Result<Value> v = DecodeHex("1c");
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().message(), "cbor: reserved additional information in 0x1c");
}

TEST(CborDecodeTest, RejectsTwoByteSimpleValuesBelow32) {
  for (int s = 0; s < 32; ++s) {
    const Bytes enc{0xf8, static_cast<uint8_t>(s)};
    Result<Value> v = Decode(enc);
    ASSERT_FALSE(v.has_value()) << s;
    EXPECT_EQ(v.error().code(), Code::kMalformed);
  }
}

TEST(CborDecodeTest, RejectsIndefiniteStringChunkOfOtherType) {
  Result<Value> v = DecodeHex("7f4100ff");
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().message(),
            "cbor: indefinite-length text string chunk is not a definite text string");
}

TEST(CborDecodeTest, RejectsTrailingBytes) {
  Result<Value> v = DecodeHex("0000");
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), Code::kMalformed);
  EXPECT_EQ(v.error().message(), "cbor: trailing bytes");
}

TEST(CborDecodeTest, DecodePrefixReportsBytesConsumed) {
  const Bytes data = Hex("8301820203820405ffee");
  Result<std::pair<Value, size_t>> r = DecodePrefix(data);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->second, 8U);
  EXPECT_EQ(r->first, Arr({U(1), Arr({U(2), U(3)}), Arr({U(4), U(5)})}));
  // The rest is not examined, even when it is not CBOR.
  r = DecodePrefix(Hex("6161ff"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->second, 2U);
}

TEST(CborDecodeTest, DecodePrefixLooksOnlyAtMaxInputSizeBytes) {
  Bytes data = Hex("00");
  data.resize(100, 0xff);
  DecodeOptions options;
  options.max_input_size = 10;
  Result<std::pair<Value, size_t>> r = DecodePrefix(data, options);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->second, 1U);
  // A string running past the limit is over the limit, not truncated.
  Bytes long_string = Hex("5820");
  long_string.resize(34, 0);
  r = DecodePrefix(long_string, options);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded);
}

TEST(CborDecodeTest, RejectsInvalidUtf8) {
  const std::vector<std::string> bad = {
      "61ff",          // Not a UTF-8 byte.
      "6180",          // Lone continuation byte.
      "62c0af",        // Overlong '/'.
      "62c1bf",        // Overlong.
      "63e08080",      // Overlong 3-byte NUL.
      "63e09fbf",      // Overlong below U+0800.
      "63eda080",      // Surrogate U+D800.
      "63edbfbf",      // Surrogate U+DFFF.
      "64f08fbfbf",    // Overlong below U+10000.
      "64f4908080",    // U+110000.
      "64f5808080",    // Lead byte above U+10FFFF.
      "62e6b0",        // Truncated sequence.
      "63c3bc80",      // Trailing continuation.
      "7f61c361bcff",  // Character split across chunks.
  };
  for (const std::string& hex : bad) {
    Result<Value> v = DecodeHex(hex);
    ASSERT_FALSE(v.has_value()) << hex;
    EXPECT_EQ(v.error().message(), "cbor: invalid UTF-8 in text string") << hex;
  }
  // Boundary characters that are valid.
  for (const char* hex : {"64f48fbfbf", "63ed9fbf", "63ee8080", "64f0908080", "62c280"}) {
    EXPECT_TRUE(DecodeHex(hex).has_value()) << hex;
  }
}

TEST(CborDecodeTest, RejectsDuplicateMapKeys) {
  Result<Value> v = DecodeHex("a2616101616102");
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), Code::kMalformed);
  EXPECT_EQ(v.error().message(), "cbor: duplicate map key");
  EXPECT_FALSE(DecodeHex("bf01020103ff").has_value());
  // Keys that are the same data item in another encoding or entry order are duplicates too.
  EXPECT_FALSE(DecodeHex("a20102180103").has_value());
  EXPECT_FALSE(DecodeHex("a2a20102030405a2030401020206").has_value());
  // Equal-looking keys of different types are not.
  EXPECT_TRUE(DecodeHex("a40100613100410100f500").has_value());
}

TEST(CborDecodeTest, AcceptsDuplicateMapKeysWhenAllowed) {
  DecodeOptions options;
  options.allow_duplicate_keys = true;
  Result<Value> v = DecodeHex("a2616101616102", options);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->as_map().size(), 2U);
  // Find returns the first entry.
  ASSERT_NE(v->Find("a"), nullptr);
  EXPECT_EQ(*v->Find("a"), U(1));
}

TEST(CborDecodeTest, EnforcesMaxDepth) {
  DecodeOptions options;
  options.max_depth = 3;
  EXPECT_TRUE(DecodeHex("81818100", options).has_value());
  EXPECT_TRUE(DecodeHex("818180", options).has_value());
  Result<Value> v = DecodeHex("8181818100", options);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), Code::kLimitExceeded);
  EXPECT_EQ(v.error().message(), "cbor: nesting deeper than 3");
  // Tags and maps nest too; indefinite strings do not.
  EXPECT_FALSE(DecodeHex("c1c1c1c100", options).has_value());
  EXPECT_FALSE(DecodeHex("a101a101a101a10101", options).has_value());
  EXPECT_TRUE(DecodeHex("81815f4100ff", options).has_value());
}

TEST(CborDecodeTest, RejectsDeepNestingQuicklyWithDefaultLimits) {
  Bytes deep(60000, 0x81);
  deep.push_back(0x00);
  Result<Value> v = Decode(deep);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().message(), "cbor: nesting deeper than 16");
  Bytes deep_indefinite(60000, 0x9f);
  v = Decode(deep_indefinite);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), Code::kLimitExceeded);
}

TEST(CborDecodeTest, EnforcesMaxItems) {
  DecodeOptions options;
  options.max_items = 4;
  EXPECT_TRUE(DecodeHex("83010203", options).has_value());
  Result<Value> v = DecodeHex("8401020304", options);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), Code::kLimitExceeded);
  EXPECT_EQ(v.error().message(), "cbor: more than 4 data items");
  v = DecodeHex("9f01020304ff", options);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), Code::kLimitExceeded);
  // Keys count as items.
  EXPECT_FALSE(DecodeHex("a201020304", options).has_value());
}

TEST(CborDecodeTest, ChecksMaxInputSizeFirst) {
  DecodeOptions options;
  options.max_input_size = 4;
  // Not even well-formed, but too long is reported first.
  Result<Value> v = DecodeHex("ffffffffff", options);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), Code::kLimitExceeded);
  EXPECT_TRUE(DecodeHex("83010203", options).has_value());
}

TEST(CborDecodeTest, RejectsHugeDeclaredLengthsWithoutAllocating) {
  DecodeOptions options;
  options.max_items = std::numeric_limits<size_t>::max();
  const std::vector<std::string> huge = {
      "9affffffff0102030405060708",        // Array of 2^32 - 1 with 8 bytes of items.
      "9bffffffffffffffff01020304050607",  // Array of 2^64 - 1.
      "baffffffff0102030405060708",        // Map of 2^32 - 1 entries.
      "bbffffffffffffffff01020304050607",  // Map of 2^64 - 1 entries.
      "5affffffff0102030405060708",        // Byte string of 2^32 - 1 bytes.
      "5bffffffffffffffff01020304050607",  // Byte string of 2^64 - 1 bytes.
      "7b7fffffffffffffff01020304050607",  // Text string of 2^63 - 1 bytes.
      "5f5bffffffffffffffff0102030405ff",  // Chunk of 2^64 - 1 bytes.
      "9f9affffffff0102030405060708",      // Inside an indefinite array.
  };
  for (const std::string& hex : huge) {
    const auto start = std::chrono::steady_clock::now();
    Result<Value> v = DecodeHex(hex, options);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(v.has_value()) << hex;
    EXPECT_EQ(v.error().code(), Code::kMalformed) << hex;
    EXPECT_TRUE(v.error().message().starts_with("cbor: truncated")) << v.error().message();
    EXPECT_LT(elapsed, std::chrono::milliseconds(50)) << hex;
  }
}

TEST(CborDecodeTest, RejectsDeclaredCountOverMaxItemsBeforeReadingItems) {
  Bytes data = Hex("99ffff");
  data.resize(data.size() + 0xffff, 0x00);
  DecodeOptions options;
  options.max_input_size = data.size();
  Result<Value> v = Decode(data, options);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), Code::kLimitExceeded);
}

TEST(CborDecodeTest, RejectsIndefiniteItemsWhenNotAllowed) {
  DecodeOptions options;
  options.allow_indefinite = false;
  for (const char* hex : {"9fff", "bfff", "5fff", "7fff", "819fff"}) {
    Result<Value> v = DecodeHex(hex, options);
    ASSERT_FALSE(v.has_value()) << hex;
    EXPECT_EQ(v.error().message(), "cbor: indefinite-length item not allowed");
  }
  EXPECT_TRUE(DecodeHex("8180", options).has_value());
}

TEST(CborDecodeTest, RejectsUndefinedWhenNotAllowed) {
  DecodeOptions options;
  options.allow_undefined = false;
  EXPECT_FALSE(DecodeHex("f7", options).has_value());
  EXPECT_FALSE(DecodeHex("81f7", options).has_value());
  EXPECT_TRUE(DecodeHex("f6", options).has_value());
}

TEST(CborEncodeTest, SortsMapKeysDeterministically) {
  // RFC 8949 §4.2.1's example order: 10, 100, -1, "z", "aa", [100], [-1], false.
  const Value map = MapOf({
      {Value::Boolean(false), U(8)},
      {Arr({I(-1)}), U(7)},
      {Arr({U(100)}), U(6)},
      {Text("aa"), U(5)},
      {Text("z"), U(4)},
      {I(-1), U(3)},
      {U(100), U(2)},
      {U(10), U(1)},
  });
  EXPECT_EQ(EncodeHex(map),
            "a8"
            "0a01"
            "186402"
            "2003"
            "617a04"
            "62616105"
            "81186406"
            "812007"
            "f408");
  // kAsGiven keeps the order.
  EXPECT_EQ(EncodeHex(MapOf({{Text("z"), U(1)}, {U(1), U(2)}}), MapOrder::kAsGiven),
            "a2617a010102");
  EXPECT_EQ(EncodeHex(MapOf({{Text("z"), U(1)}, {U(1), U(2)}})), "a20102617a01");
}

TEST(CborEncodeTest, SortsNestedMapsAndShorterKeysFirst) {
  const Value map = MapOf({
      {Text("bb"), MapOf({{U(2), U(0)}, {U(1), U(0)}})},
      {Text("c"), U(0)},
      {Value::ByteString(Hex("00")), U(0)},
      {U(1000), U(0)},
  });
  EXPECT_EQ(EncodeHex(map),
            "a4"
            "1903e800"
            "410000"
            "616300"
            "626262a201000200");
}

TEST(CborValueTest, AsInt64ChecksRange) {
  EXPECT_EQ(*U(0).AsInt64(), 0);
  EXPECT_EQ(*U(9223372036854775807ULL).AsInt64(), std::numeric_limits<int64_t>::max());
  EXPECT_FALSE(U(9223372036854775808ULL).AsInt64().has_value());
  EXPECT_EQ(*Value::NegInt(9223372036854775807ULL).AsInt64(), std::numeric_limits<int64_t>::min());
  EXPECT_FALSE(Value::NegInt(9223372036854775808ULL).AsInt64().has_value());
  EXPECT_EQ(*I(-1).AsInt64(), -1);
  EXPECT_EQ(*I(std::numeric_limits<int64_t>::min()).AsInt64(), std::numeric_limits<int64_t>::min());
  Result<int64_t> r = Text("1").AsInt64();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kMalformed);
  EXPECT_EQ(I(-1).as_uint(), 0U);
}

TEST(CborValueTest, FindsByTextAndIntegerKey) {
  const Value map = *DecodeHex("a4616101200261620301f6");  // {"a": 1, -1: 2, "b": 3, 1: null}
  ASSERT_NE(map.Find("a"), nullptr);
  EXPECT_EQ(*map.Find("a"), U(1));
  ASSERT_NE(map.Find("b"), nullptr);
  EXPECT_EQ(*map.Find("b"), U(3));
  ASSERT_NE(map.Find(-1), nullptr);
  EXPECT_EQ(*map.Find(-1), U(2));
  ASSERT_NE(map.Find(1), nullptr);
  EXPECT_TRUE(map.Find(1)->is_null());
  EXPECT_EQ(map.Find("c"), nullptr);
  EXPECT_EQ(map.Find(2), nullptr);
  EXPECT_EQ(map.Find(0), nullptr);
  EXPECT_EQ(U(1).Find("a"), nullptr);
  EXPECT_EQ(Arr({Text("a")}).Find("a"), nullptr);
}

TEST(CborValueTest, ComparesStructurally) {
  EXPECT_EQ(Value(), Value::Null());
  EXPECT_NE(U(1), I(-1));
  EXPECT_NE(U(1), Value::Double(1.0));
  EXPECT_NE(Value::Double(0.0), Value::Double(-0.0));
  EXPECT_EQ(Value::Double(std::nan("1")), Value::Double(std::nan("2")));
  EXPECT_NE(Text("a"), Value::ByteString(Hex("61")));
  EXPECT_NE(Value::Tagged(1, U(1)), Value::Tagged(2, U(1)));
  EXPECT_EQ(Value::Tagged(1, Arr({U(1)})), Value::Tagged(1, Arr({U(1)})));
  // Maps compare entry by entry, in order.
  EXPECT_NE(MapOf({{U(1), U(2)}, {U(3), U(4)}}), MapOf({{U(3), U(4)}, {U(1), U(2)}}));
  EXPECT_EQ(Value::Simple(20), Value::Boolean(false));
  EXPECT_EQ(Value::Simple(23), Value::Undefined());
}

TEST(CborDiagnosticTest, RendersNotation) {
  const Value v = MapOf({{Text("a"), Value::ByteString(Hex("01"))}, {U(1), Arr({U(2), I(-3)})}});
  EXPECT_EQ(Diagnostic(v), "{\"a\": h'01', 1: [2, -3]}");
  EXPECT_EQ(Diagnostic(*DecodeHex("c11a514b67b0")), "1(1363896240)");
  EXPECT_EQ(Diagnostic(*DecodeHex("3bffffffffffffffff")), "-18446744073709551616");
  EXPECT_EQ(Diagnostic(Value::Double(1.5)), "1.5");
  EXPECT_EQ(Diagnostic(Value::Double(1.0)), "1.0");
  EXPECT_EQ(Diagnostic(Value::Double(1.0e300)), "1.0e+300");
  EXPECT_EQ(Diagnostic(Value::Double(100000.0)), "100000.0");
  EXPECT_EQ(Diagnostic(Value::Double(-4.1)), "-4.1");
  EXPECT_EQ(Diagnostic(Value::Double(0.00006103515625)), "0.00006103515625");
  EXPECT_EQ(Diagnostic(Value::Double(-std::numeric_limits<double>::infinity())), "-Infinity");
  EXPECT_EQ(Diagnostic(Value::Double(std::nan(""))), "NaN");
  EXPECT_EQ(Diagnostic(*DecodeHex("83f4f5f6")), "[false, true, null]");
  EXPECT_EQ(Diagnostic(*DecodeHex("82f7f0")), "[undefined, simple(16)]");
  EXPECT_EQ(Diagnostic(Text("q\"\\\n")), "\"q\\\"\\\\\\u000a\"");
  EXPECT_EQ(Diagnostic(Value::ByteString(Hex("0102030405")), 2), "h'0102'...(5 bytes)");
}

// RandomValue builds a random Value no deeper than `depth` whose maps have distinct keys.
class RandomValues {
 public:
  explicit RandomValues(uint64_t seed) : rng_(seed) {}

  // NOLINTNEXTLINE(misc-no-recursion): bounded by `depth`.
  Value Make(int depth) {
    const int kinds = depth > 0 ? 14 : 10;
    switch (Pick(kinds)) {
      case 0:
        return U(Bits());
      case 1:
        return Value::NegInt(Bits());
      case 2: {
        Bytes b(Pick(40));
        for (uint8_t& x : b) {
          x = static_cast<uint8_t>(Pick(256));
        }
        return Value::ByteString(std::move(b));
      }
      case 3:
        return Text(RandomUtf8());
      case 4:
        return Value::Boolean(Pick(2) == 1);
      case 5:
        return Pick(2) == 0 ? Value::Null() : Value::Undefined();
      case 6: {
        const auto s = static_cast<uint8_t>(Pick(256));
        return Value::Simple(s >= 24 && s < 32 ? 0 : s);
      }
      case 7:
        // Random bit patterns hit NaNs, infinities and subnormals of every width.
        switch (Pick(4)) {
          case 0:
            return Value::Double(std::bit_cast<double>(rng_()));
          case 1:
            return Value::Double(
                static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(rng_()))));
          case 2:
            return Value::Double(std::ldexp(static_cast<double>(Pick(2048)), Pick(60) - 40));
          default:
            return Value::Double(static_cast<double>(Pick(100000)) / 8);
        }
      case 8:
        return Value::Int(static_cast<int64_t>(Pick(1000)) - 500);
      case 9:
        return Text("k");
      case 10:
      case 11: {
        Value::Array items(Pick(6));
        for (Value& item : items) {
          item = Make(depth - 1);
        }
        return Arr(std::move(items));
      }
      case 12: {
        Value::Map entries;
        std::set<std::string> seen;  // Hex: GCC 12 -O3 warns on vector<uint8_t>::operator<.
        const size_t n = Pick(6);
        for (size_t i = 0; i < n; ++i) {
          Value key = Make(depth - 1);
          if (seen.insert(HexEncode(Encode(key))).second) {
            entries.emplace_back(std::move(key), Make(depth - 1));
          }
        }
        return MapOf(std::move(entries));
      }
      default:
        return Value::Tagged(Pick(3) == 0 ? Bits() : Pick(30), Make(depth - 1));
    }
  }

 private:
  size_t Pick(size_t n) { return static_cast<size_t>(rng_() % n); }
  int Pick(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  // Bits returns values of every head width.
  uint64_t Bits() { return rng_() >> (rng_() % 64); }

  std::string RandomUtf8() {
    std::string s;
    const size_t n = Pick(size_t{12});
    for (size_t i = 0; i < n; ++i) {
      uint32_t cp = 0;
      switch (Pick(4)) {
        case 0:
          cp = static_cast<uint32_t>(Pick(0x80));
          break;
        case 1:
          cp = 0x80 + static_cast<uint32_t>(Pick(0x780));
          break;
        case 2:
          cp = 0x800 + static_cast<uint32_t>(Pick(0xf800));
          if (cp >= 0xd800 && cp <= 0xdfff) {
            cp = 0xfffd;
          }
          break;
        default:
          cp = 0x10000 + static_cast<uint32_t>(Pick(0x100000));
          break;
      }
      AppendUtf8(s, cp);
    }
    return s;
  }

  static void AppendUtf8(std::string& s, uint32_t cp) {
    auto put = [&s](uint32_t b) { s.push_back(static_cast<char>(static_cast<uint8_t>(b))); };
    if (cp < 0x80) {
      put(cp);
    } else if (cp < 0x800) {
      put(0xc0 | (cp >> 6));
      put(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      put(0xe0 | (cp >> 12));
      put(0x80 | ((cp >> 6) & 0x3f));
      put(0x80 | (cp & 0x3f));
    } else {
      put(0xf0 | (cp >> 18));
      put(0x80 | ((cp >> 12) & 0x3f));
      put(0x80 | ((cp >> 6) & 0x3f));
      put(0x80 | (cp & 0x3f));
    }
  }

  std::mt19937_64 rng_;
};

TEST(CborRoundTripTest, RandomValuesSurviveEncodeAndDecode) {
  RandomValues gen(0x5eed);
  for (int i = 0; i < 4000; ++i) {
    const Value v = gen.Make(4);
    SCOPED_TRACE(Diagnostic(v));
    // In the given order, decoding gives back the very same Value.
    const Bytes as_given = Encode(v, MapOrder::kAsGiven);
    Result<Value> decoded = Decode(as_given);
    ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
    ASSERT_EQ(*decoded, v);
    // Deterministically, the encoding is a fixed point.
    const Bytes det = Encode(v);
    Result<Value> decoded_det = Decode(det);
    ASSERT_TRUE(decoded_det.has_value()) << decoded_det.error().message();
    ASSERT_EQ(Encode(*decoded_det), det);
    ASSERT_EQ(Encode(*decoded_det, MapOrder::kAsGiven), det);
    ASSERT_EQ(det.size(), as_given.size());
  }
}

}  // namespace
}  // namespace enclavia::cbor
