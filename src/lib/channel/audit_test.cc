// SPDX-License-Identifier: Apache-2.0
#include "lib/channel/audit.h"

#include <gtest/gtest.h>

#include "lib/cbor/cbor.h"

namespace enclavia::channel {
namespace {

using cbor::Value;

Bytes Map(Value::Map entries) { return cbor::Encode(Value::MakeMap(std::move(entries))); }
Value Text(std::string_view s) { return Value::TextString(s); }

TEST(AuditRequest, RoundTrips) {
  AuditRequest request{.nonce = Bytes(32, 0xAB)};
  Bytes encoded = EncodeAuditRequest(request);
  auto back = DecodeAuditRequest(encoded);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->nonce, request.nonce);
  // The exact bytes: {"v": 1, "nonce": h'ab…'} with "v" first (shorter key encodes first).
  EXPECT_EQ(encoded[0], 0xA2);
  EXPECT_EQ(encoded[1], 0x61);
  EXPECT_EQ(encoded[2], 'v');
}

TEST(AuditRequest, NonceBounds) {
  EXPECT_TRUE(DecodeAuditRequest(EncodeAuditRequest({.nonce = Bytes(1, 1)})));
  EXPECT_TRUE(DecodeAuditRequest(EncodeAuditRequest({.nonce = Bytes(64, 1)})));
  auto empty = DecodeAuditRequest(EncodeAuditRequest({.nonce = {}}));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Code::kInvalidArgument);
  EXPECT_FALSE(DecodeAuditRequest(EncodeAuditRequest({.nonce = Bytes(65, 1)})));
}

TEST(AuditRequest, RejectsAnythingButTheCanonicalMap) {
  // Wrong types, unknown keys, missing fields, another version.
  EXPECT_FALSE(DecodeAuditRequest(Map({{Text("v"), Value::Uint(1)}})));
  EXPECT_FALSE(DecodeAuditRequest(Map({{Text("v"), Value::Uint(1)}, {Text("nonce"), Text("ab")}})));
  EXPECT_FALSE(DecodeAuditRequest(Map({{Text("v"), Value::Uint(1)},
                                       {Text("nonce"), Value::ByteString(Bytes(4, 1))},
                                       {Text("extra"), Value::Uint(0)}})));
  auto v2 = DecodeAuditRequest(
      Map({{Text("v"), Value::Uint(2)}, {Text("nonce"), Value::ByteString(Bytes(4, 1))}}));
  ASSERT_FALSE(v2);
  EXPECT_EQ(v2.error().code(), Code::kUnsupported);
  EXPECT_FALSE(DecodeAuditRequest(cbor::Encode(Value::MakeArray({Value::Uint(1)}))));
  EXPECT_FALSE(DecodeAuditRequest(Bytes{}));

  // The same map with its keys in non-deterministic order.
  Bytes unordered = cbor::Encode(
      Value::MakeMap({{Text("nonce"), Value::ByteString(Bytes(4, 1))}, {Text("v"), Value::Uint(1)}}),
      cbor::MapOrder::kAsGiven);
  auto order = DecodeAuditRequest(unordered);
  ASSERT_FALSE(order);
  EXPECT_NE(order.error().message().find("deterministic"), std::string::npos);

  // A non-shortest integer (v = 1 as 0x18 0x01).
  Bytes canonical = EncodeAuditRequest({.nonce = Bytes(4, 1)});
  Bytes long_int = canonical;
  long_int[3] = 0x18;
  long_int.insert(long_int.begin() + 4, 0x01);
  EXPECT_FALSE(DecodeAuditRequest(long_int));
  // Trailing bytes.
  canonical.push_back(0);
  EXPECT_FALSE(DecodeAuditRequest(canonical));
}

TEST(AuditResponse, RoundTripsADocumentAndChain) {
  AuditResponse response;
  response.attestation = Bytes(1000, 7);
  response.chain = {Bytes{1, 2}, Bytes{3}};
  Bytes encoded = EncodeAuditResponse(response);
  auto back = DecodeAuditResponse(encoded);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->attestation, response.attestation);
  EXPECT_EQ(back->chain, response.chain);
  EXPECT_EQ(back->error, "");
}

TEST(AuditResponse, RoundTripsAnError) {
  AuditResponse response;
  response.error = "nsm: InternalError";
  auto back = DecodeAuditResponse(EncodeAuditResponse(response));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->error, "nsm: InternalError");
  EXPECT_TRUE(back->attestation.empty());
}

TEST(AuditResponse, Bounds) {
  AuditResponse big;
  big.attestation = Bytes(16 * 1024 + 1, 1);
  auto too_big = DecodeAuditResponse(EncodeAuditResponse(big));
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code(), Code::kLimitExceeded);

  AuditResponse long_chain;
  long_chain.attestation = Bytes(10, 1);
  long_chain.chain.assign(65, Bytes{1});
  auto chain = DecodeAuditResponse(EncodeAuditResponse(long_chain));
  ASSERT_FALSE(chain);

  AuditResponse empty;
  empty.attestation = {};
  EXPECT_FALSE(DecodeAuditResponse(EncodeAuditResponse(empty)));

  // An error beside a document, an error of the wrong type, an unknown key.
  EXPECT_FALSE(DecodeAuditResponse(Map({{Text("v"), Value::Uint(1)},
                                        {Text("error"), Text("x")},
                                        {Text("attestation"), Value::ByteString(Bytes{1})},
                                        {Text("chain"), Value::MakeArray({})}})));
  EXPECT_FALSE(DecodeAuditResponse(Map({{Text("v"), Value::Uint(1)}, {Text("error"), Value::Uint(3)}})));
  EXPECT_FALSE(DecodeAuditResponse(Map({{Text("v"), Value::Uint(1)},
                                        {Text("attestation"), Value::ByteString(Bytes{1})},
                                        {Text("chain"), Value::MakeArray({Text("x")})}})));
  EXPECT_FALSE(DecodeAuditResponse(Map({{Text("v"), Value::Uint(1)},
                                        {Text("attestation"), Value::ByteString(Bytes{1})}})));
}

TEST(AuditResponse, EveryTruncationFails) {
  AuditResponse response;
  response.attestation = Bytes(300, 9);
  response.chain = {Bytes(20, 1)};
  Bytes encoded = EncodeAuditResponse(response);
  for (size_t n = 0; n < encoded.size(); ++n) {
    EXPECT_FALSE(DecodeAuditResponse(ByteSpan(encoded.data(), n))) << n;
  }
}

}  // namespace
}  // namespace enclavia::channel
