// SPDX-License-Identifier: Apache-2.0
#include "lib/attestation/nsm_codec.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "lib/base/encoding.h"
#include "lib/cbor/cbor.h"

namespace enclavia::attestation {
namespace {

using cbor::Value;

// H decodes hex written in the tests.
Bytes H(std::string_view hex) { return HexDecode(hex).value(); }

// T is a short CBOR text string (under 24 bytes): header then characters.
Bytes T(std::string_view s) {
  const auto header = static_cast<uint8_t>(0x60 + s.size());
  return Concat({ByteSpan(&header, 1), AsBytes(s)});
}

Value Text(std::string_view s) { return Value::TextString(s); }

// Map builds a CBOR map from (key, value) pairs, keeping their order.
Value Map(std::vector<std::pair<Value, Value>> entries) {
  return Value::MakeMap(std::move(entries));
}

Bytes Enc(const Value& v) { return cbor::Encode(v, cbor::MapOrder::kAsGiven); }

template <typename T>
void ExpectRejected(const Result<T>& result, Code code = Code::kMalformed) {
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), code) << result.error().message();
  EXPECT_EQ(result.error().message().rfind("nsm: ", 0), 0U) << result.error().message();
  EXPECT_EQ(result.error().message().find('\n'), std::string::npos);
}

NsmDescription SampleDescription() {
  NsmDescription d;
  d.version_major = 1;
  d.version_minor = 0;
  d.version_patch = 0;
  d.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  d.max_pcrs = 32;
  d.locked_pcrs = {0, 1, 2, 3, 4, 8};
  d.digest = "SHA384";
  return d;
}

std::vector<NsmRequest> AllRequests() {
  return {
      AttestationRequest{},
      AttestationRequest{Bytes{1, 2, 3}, Bytes(32, 0xaa), Bytes(91, 0x30)},
      AttestationRequest{std::nullopt, Bytes{}, std::nullopt},
      DescribePcrRequest{0},
      DescribePcrRequest{65535},
      ExtendPcrRequest{16, ToBytes("hello")},
      ExtendPcrRequest{31, Bytes{}},
      LockPcrRequest{16},
      LockPcrsRequest{32},
      DescribeNsmRequest{},
      GetRandomRequest{},
  };
}

std::vector<NsmResponse> AllResponses() {
  std::vector<NsmResponse> out = {
      AttestationResponse{Bytes(4000, 0x84)},
      PcrDescription{false, Bytes(48, 0)},
      PcrDescription{true, Bytes(48, 0x5c)},
      ExtendPcrResponse{Bytes(48, 0x11)},
      LockPcrResponse{},
      LockPcrsResponse{},
      SampleDescription(),
      NsmDescription{1, 2, 3, "", 0, {}, "SHA256"},
      GetRandomResponse{Bytes(256, 0x42)},
  };
  for (int i = 0; i <= static_cast<int>(NsmErrorCode::kInternalError); ++i) {
    out.emplace_back(ErrorResponse{static_cast<NsmErrorCode>(i)});
  }
  return out;
}

TEST(NsmCodecTest, RoundTripsEveryRequest) {
  for (const NsmRequest& request : AllRequests()) {
    Bytes encoded = EncodeRequest(request);
    Result<NsmRequest> decoded = DecodeRequest(encoded);
    ASSERT_TRUE(decoded.has_value()) << RequestName(request) << ": " << decoded.error().message();
    EXPECT_EQ(*decoded, request) << RequestName(request);
    EXPECT_EQ(RequestName(*decoded), RequestName(request));
    EXPECT_EQ(EncodeRequest(*decoded), encoded);
  }
}

TEST(NsmCodecTest, RoundTripsEveryResponse) {
  for (const NsmResponse& response : AllResponses()) {
    Bytes encoded = EncodeResponse(response);
    Result<NsmResponse> decoded = DecodeResponse(encoded);
    ASSERT_TRUE(decoded.has_value()) << ResponseName(response) << ": " << decoded.error().message();
    EXPECT_EQ(*decoded, response) << ResponseName(response);
    EXPECT_EQ(EncodeResponse(*decoded), encoded);
  }
}

TEST(NsmCodecTest, UnitRequestsAreBareTextStrings) {
  EXPECT_EQ(EncodeRequest(DescribeNsmRequest{}), H("6b4465736372696265"
                                                   "4e534d"));
  EXPECT_EQ(EncodeRequest(DescribeNsmRequest{}), T("DescribeNSM"));
  EXPECT_EQ(EncodeRequest(GetRandomRequest{}), T("GetRandom"));
}

TEST(NsmCodecTest, DescribePcrRequestIsOneEntryMapOfFields) {
  Bytes expected = Concat({H("a1"), T("DescribePCR"), H("a1"), T("index"), H("03")});
  EXPECT_EQ(EncodeRequest(DescribePcrRequest{3}), expected);
  Result<NsmRequest> decoded = DecodeRequest(expected);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<DescribePcrRequest>(*decoded).index, 3);
}

TEST(NsmCodecTest, ExtendPcrDataIsAByteString) {
  Bytes expected =
      Concat({H("a1"), T("ExtendPCR"), H("a2"), T("index"), H("10"), T("data"), H("420102")});
  EXPECT_EQ(EncodeRequest(ExtendPcrRequest{16, Bytes{1, 2}}), expected);
}

TEST(NsmCodecTest, LargeIndexUsesShortestInteger) {
  Bytes expected = Concat({H("a1"), T("LockPCRs"), H("a1"), T("range"), H("190100")});
  EXPECT_EQ(EncodeRequest(LockPcrsRequest{256}), expected);
}

TEST(NsmCodecTest, AttestationNoneFieldsAreNullInDeclarationOrder) {
  Bytes expected = Concat({H("a1"), T("Attestation"), H("a3"), T("user_data"), H("f6"), T("nonce"),
                           H("f6"), T("public_key"), H("f6")});
  EXPECT_EQ(EncodeRequest(AttestationRequest{}), expected);
  Bytes with_nonce = Concat({H("a1"), T("Attestation"), H("a3"), T("user_data"), H("f6"),
                             T("nonce"), H("43616263"), T("public_key"), H("f6")});
  EXPECT_EQ(EncodeRequest(AttestationRequest{std::nullopt, ToBytes("abc"), std::nullopt}),
            with_nonce);
}

TEST(NsmCodecTest, AttestationAbsentOptionsReadAsNone) {
  // serde's derive reads a missing Option field as None, so the module accepts this.
  Bytes only_nonce =
      Enc(Map({{Text("Attestation"), Map({{Text("nonce"), Value::ByteString(ToBytes("n"))}})}}));
  Result<NsmRequest> decoded = DecodeRequest(only_nonce);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  EXPECT_EQ(*decoded, NsmRequest(AttestationRequest{std::nullopt, ToBytes("n"), std::nullopt}));
}

TEST(NsmCodecTest, ErrorResponseIsNewtypeVariantOfCodeName) {
  Bytes expected = Concat({H("a1"), T("Error"), T("InvalidIndex")});
  EXPECT_EQ(EncodeResponse(ErrorResponse{NsmErrorCode::kInvalidIndex}), expected);
  Result<NsmResponse> decoded = DecodeResponse(Concat({H("a1"), T("Error"), T("ReadOnlyIndex")}));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<ErrorResponse>(*decoded).code, NsmErrorCode::kReadOnlyIndex);
}

TEST(NsmCodecTest, UnitResponsesAreBareTextStrings) {
  EXPECT_EQ(EncodeResponse(LockPcrResponse{}), T("LockPCR"));
  EXPECT_EQ(EncodeResponse(LockPcrsResponse{}), T("LockPCRs"));
}

TEST(NsmCodecTest, GetRandomResponseMatchesTheKernelHwrngParser) {
  // The Linux driver's hwrng path compares this exact prefix, then reads a byte string.
  Bytes encoded = EncodeResponse(GetRandomResponse{Bytes(32, 7)});
  Bytes prefix = Concat({H("a1"), T("GetRandom"), H("a1"), T("random"), H("5820")});
  ASSERT_GT(encoded.size(), prefix.size());
  EXPECT_EQ(Bytes(encoded.begin(), encoded.begin() + static_cast<long>(prefix.size())), prefix);
  EXPECT_EQ(encoded.size(), prefix.size() + 32);
}

TEST(NsmCodecTest, DescribeNsmResponseFieldsAndOrder) {
  NsmDescription d{1, 0, 0, "m", 32, {3, 1}, "SHA384"};
  Bytes expected =
      Concat({H("a1"), T("DescribeNSM"), H("a7"), T("version_major"), H("01"), T("version_minor"),
              H("00"), T("version_patch"), H("00"), T("module_id"), T("m"), T("max_pcrs"),
              H("1820"), T("locked_pcrs"), H("820103"), T("digest"), T("SHA384")});
  // locked_pcrs is a BTreeSet on the Rust side: written sorted.
  EXPECT_EQ(EncodeResponse(d), expected);
}

TEST(NsmCodecTest, DescribePcrResponseFields) {
  Bytes expected =
      Concat({H("a1"), T("DescribePCR"), H("a2"), T("lock"), H("f5"), T("data"), H("4100")});
  EXPECT_EQ(EncodeResponse(PcrDescription{true, Bytes{0}}), expected);
}

TEST(NsmCodecTest, AcceptsFieldsInAnyOrder) {
  Bytes reordered = Enc(Map({{Text("ExtendPCR"), Map({{Text("data"), Value::ByteString(Bytes{9})},
                                                      {Text("index"), Value::Uint(4)}})}}));
  Result<NsmRequest> decoded = DecodeRequest(reordered);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  EXPECT_EQ(*decoded, NsmRequest(ExtendPcrRequest{4, Bytes{9}}));
}

TEST(NsmCodecTest, RejectsUnknownVariants) {
  ExpectRejected(DecodeRequest(T("Shutdown")));
  ExpectRejected(DecodeRequest(Enc(Map({{Text("Shutdown"), Map({})}}))));
  ExpectRejected(DecodeResponse(T("Shutdown")));
  // Request names that are only responses, and the other way round.
  ExpectRejected(DecodeRequest(Concat({H("a1"), T("Error"), T("InvalidIndex")})));
  ExpectRejected(DecodeResponse(T("DescribeNSM")));
  // Variant names are case-sensitive.
  ExpectRejected(DecodeRequest(T("describeNSM")));
}

TEST(NsmCodecTest, RejectsWrongVariantShapes) {
  // A struct variant given as a bare name.
  ExpectRejected(DecodeRequest(T("DescribePCR")));
  // A unit variant given a body.
  ExpectRejected(DecodeRequest(Enc(Map({{Text("DescribeNSM"), Value::Null()}}))));
  ExpectRejected(DecodeResponse(Enc(Map({{Text("LockPCR"), Map({})}}))));
  // Fields not a map.
  ExpectRejected(DecodeRequest(Enc(Map({{Text("DescribePCR"), Value::Uint(3)}}))));
  // Two variants in one map.
  ExpectRejected(DecodeRequest(
      Enc(Map({{Text("DescribeNSM"), Value::Null()}, {Text("GetRandom"), Value::Null()}}))));
  // Variant key not text, top level not a map or text.
  ExpectRejected(DecodeRequest(Enc(Map({{Value::Uint(1), Map({})}}))));
  ExpectRejected(DecodeRequest(Enc(Value::MakeArray({Text("DescribeNSM")}))));
  ExpectRejected(DecodeRequest(Enc(Value::Uint(0))));
  // Error's code not a text string, or unknown.
  ExpectRejected(DecodeResponse(Enc(Map({{Text("Error"), Value::Uint(2)}}))));
  ExpectRejected(DecodeResponse(Concat({H("a1"), T("Error"), T("Oops")})));
  ExpectRejected(DecodeResponse(T("Error")));
}

TEST(NsmCodecTest, RejectsMissingAndExtraFields) {
  ExpectRejected(DecodeRequest(Enc(Map({{Text("DescribePCR"), Map({})}}))));
  ExpectRejected(
      DecodeRequest(Enc(Map({{Text("ExtendPCR"), Map({{Text("index"), Value::Uint(1)}})}}))));
  ExpectRejected(DecodeRequest(
      Enc(Map({{Text("DescribePCR"),
                Map({{Text("index"), Value::Uint(1)}, {Text("x"), Value::Uint(2)}})}}))));
  ExpectRejected(
      DecodeRequest(Enc(Map({{Text("Attestation"), Map({{Text("nonces"), Value()}})}}))));
  // A field key that is not text.
  ExpectRejected(
      DecodeRequest(Enc(Map({{Text("DescribePCR"), Map({{Value::Uint(0), Value::Uint(1)}})}}))));
  // Every DescribeNSM field is required.
  Value full = Map({{Text("version_major"), Value::Uint(1)},
                    {Text("version_minor"), Value::Uint(0)},
                    {Text("version_patch"), Value::Uint(0)},
                    {Text("module_id"), Text("m")},
                    {Text("max_pcrs"), Value::Uint(32)},
                    {Text("locked_pcrs"), Value::MakeArray({})},
                    {Text("digest"), Text("SHA384")}});
  ASSERT_TRUE(DecodeResponse(Enc(Map({{Text("DescribeNSM"), full}}))).has_value());
  for (size_t skip = 0; skip < full.as_map().size(); ++skip) {
    Value::Map partial;
    for (size_t i = 0; i < full.as_map().size(); ++i) {
      if (i != skip) {
        partial.push_back(full.as_map()[i]);
      }
    }
    ExpectRejected(DecodeResponse(Enc(Map({{Text("DescribeNSM"), Value::MakeMap(partial)}}))));
  }
  // Duplicate keys (the decoder's rule, surfaced with our prefix).
  ExpectRejected(DecodeRequest(
      Enc(Map({{Text("DescribePCR"),
                Map({{Text("index"), Value::Uint(1)}, {Text("index"), Value::Uint(1)}})}}))));
}

TEST(NsmCodecTest, RejectsWrongFieldTypes) {
  auto describe_pcr = [](Value index) {
    return DecodeRequest(
        Enc(Map({{Text("DescribePCR"), Map({{Text("index"), std::move(index)}})}})));
  };
  ExpectRejected(describe_pcr(Value::Uint(65536)));
  ExpectRejected(describe_pcr(Value::Int(-1)));
  ExpectRejected(describe_pcr(Text("3")));
  ExpectRejected(describe_pcr(Value::Boolean(true)));
  ExpectRejected(describe_pcr(Value::Double(3.0)));
  EXPECT_TRUE(describe_pcr(Value::Uint(65535)).has_value());

  // serde_bytes fields are byte strings; an array of integers (plain Vec<u8>) is refused.
  ExpectRejected(DecodeRequest(
      Enc(Map({{Text("ExtendPCR"), Map({{Text("index"), Value::Uint(1)},
                                        {Text("data"), Value::MakeArray({Value::Uint(1)})}})}}))));
  ExpectRejected(
      DecodeResponse(Enc(Map({{Text("GetRandom"), Map({{Text("random"), Text("abc")}})}}))));
  ExpectRejected(
      DecodeRequest(Enc(Map({{Text("Attestation"), Map({{Text("user_data"), Value::Uint(0)}})}}))));
  ExpectRejected(DecodeRequest(
      Enc(Map({{Text("Attestation"), Map({{Text("user_data"), Value::Undefined()}})}}))));
  ExpectRejected(DecodeResponse(Enc(
      Map({{Text("DescribePCR"),
            Map({{Text("lock"), Value::Uint(1)}, {Text("data"), Value::ByteString(Bytes{})}})}}))));
  // A byte string wrapped in a tag is not a byte string.
  ExpectRejected(DecodeResponse(
      Enc(Map({{Text("Attestation"),
                Map({{Text("document"), Value::Tagged(18, Value::ByteString(Bytes{1}))}})}}))));
}

TEST(NsmCodecTest, RejectsBadDescribeNsm) {
  auto with = [](std::string_view key, Value value) {
    Value::Map fields = {{Text("version_major"), Value::Uint(1)},
                         {Text("version_minor"), Value::Uint(0)},
                         {Text("version_patch"), Value::Uint(0)},
                         {Text("module_id"), Text("m")},
                         {Text("max_pcrs"), Value::Uint(32)},
                         {Text("locked_pcrs"), Value::MakeArray({Value::Uint(1), Value::Uint(2)})},
                         {Text("digest"), Text("SHA384")}};
    for (auto& [k, v] : fields) {
      if (k.as_text() == key) {
        v = std::move(value);
        break;
      }
    }
    return DecodeResponse(Enc(Map({{Text("DescribeNSM"), Value::MakeMap(std::move(fields))}})));
  };
  EXPECT_TRUE(with("digest", Text("SHA512")).has_value());
  ExpectRejected(with("digest", Text("MD5")));
  ExpectRejected(with("digest", Text("sha384")));
  ExpectRejected(with("module_id", Value::ByteString(ToBytes("m"))));
  ExpectRejected(with("locked_pcrs", Value::MakeArray({Value::Uint(2), Value::Uint(1)})));
  ExpectRejected(with("locked_pcrs", Value::MakeArray({Value::Uint(1), Value::Uint(1)})));
  ExpectRejected(with("locked_pcrs", Value::MakeArray({Value::Uint(70000)})));
  ExpectRejected(with("locked_pcrs", Value::ByteString(Bytes{1, 2})));
  ExpectRejected(with("max_pcrs", Value::Uint(1U << 16)));
}

TEST(NsmCodecTest, RejectsMalformedCbor) {
  ExpectRejected(DecodeRequest(Bytes{}));
  ExpectRejected(DecodeResponse(Bytes{}));
  // Truncated: {"DescribePCR": {"index": <missing>
  Bytes truncated = Concat({H("a1"), T("DescribePCR"), H("a1"), T("index")});
  ExpectRejected(DecodeRequest(truncated));
  // Trailing bytes after a complete message.
  ExpectRejected(DecodeRequest(Concat({T("DescribeNSM"), H("00")})));
  // Indefinite-length forms, which serde_cbor never writes.
  ExpectRejected(DecodeRequest(Concat({H("bf"), T("DescribeNSM"), H("f6ff")})));
  ExpectRejected(
      DecodeRequest(H("7f"
                      "6b4465736372696265"
                      "4e534d"
                      "ff")));
  // Invalid UTF-8 in a variant name.
  ExpectRejected(DecodeRequest(H("62c328")));
  // Reserved additional information.
  ExpectRejected(DecodeResponse(H("1c")));
}

TEST(NsmCodecTest, RejectsOversizeInput) {
  // A valid message one byte over the driver's request limit.
  Bytes body(kNsmRequestMaxSize, 0x01);
  Bytes big = EncodeRequest(ExtendPcrRequest{0, body});
  ASSERT_GT(big.size(), kNsmRequestMaxSize);
  ExpectRejected(DecodeRequest(big), Code::kLimitExceeded);
  Bytes fits = EncodeRequest(ExtendPcrRequest{0, Bytes(kNsmRequestMaxSize - 32, 1)});
  ASSERT_LE(fits.size(), kNsmRequestMaxSize);
  EXPECT_TRUE(DecodeRequest(fits).has_value());

  Bytes big_response = EncodeResponse(AttestationResponse{Bytes(kNsmResponseMaxSize, 0)});
  ExpectRejected(DecodeResponse(big_response), Code::kLimitExceeded);
  EXPECT_TRUE(
      DecodeResponse(EncodeResponse(AttestationResponse{Bytes(kNsmResponseMaxSize - 64, 0)}))
          .has_value());
}

TEST(NsmCodecTest, RejectsDeepNesting) {
  Value deep = Value::Uint(1);
  for (int i = 0; i < 8; ++i) {
    deep = Value::MakeArray({deep});
  }
  ExpectRejected(DecodeRequest(Enc(Map({{Text("DescribePCR"), Map({{Text("index"), deep}})}}))),
                 Code::kLimitExceeded);
}

TEST(NsmCodecTest, NamesErrorCodes) {
  EXPECT_EQ(NsmErrorCodeName(NsmErrorCode::kSuccess), "Success");
  EXPECT_EQ(NsmErrorCodeName(NsmErrorCode::kReadOnlyIndex), "ReadOnlyIndex");
  EXPECT_EQ(NsmErrorCodeName(NsmErrorCode::kInternalError), "InternalError");
}

}  // namespace
}  // namespace enclavia::attestation
