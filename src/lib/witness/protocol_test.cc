// SPDX-License-Identifier: Apache-2.0
#include "lib/witness/protocol.h"

#include <gtest/gtest.h>

#include "lib/cbor/cbor.h"
#include "lib/crypto/keys.h"

namespace enclavia::witness {
namespace {

storage::CommitRecord SampleRecord() {
  storage::CommitRecord r;
  r.volume_id.fill(0x11);
  r.epoch = 3;
  r.version = 70000;
  r.superblock_hash.fill(0x22);
  r.volume_public_key.fill(0x33);
  r.signature.fill(0x44);
  return r;
}

std::vector<Message> AllMessages() {
  Challenge challenge;
  challenge.nonce.fill(1);
  challenge.witness_key.fill(2);
  Query query;
  query.volume_id.fill(9);
  Ack ack;
  ack.signature.fill(7);
  return {challenge,
          Hello{Bytes{0xd2, 0x84}, {}},
          Hello{Bytes{0xd2, 0x84}, {Bytes(40, 1), Bytes(kMaxChainEntrySize, 2), Bytes{3}}},
          Ready{},
          query,
          Commit{SampleRecord()},
          Known{SampleRecord()},
          Unknown{},
          ack,
          Refused{"rollback: nope"}};
}

TEST(WitnessProtocolTest, EveryMessageRoundTripsThroughItsCanonicalEncoding) {
  for (const Message& m : AllMessages()) {
    Bytes encoded = EncodeMessage(m);
    auto decoded = DecodeMessage(encoded);
    ASSERT_TRUE(decoded) << MessageName(m) << ": " << decoded.error().message();
    EXPECT_EQ(*decoded, m) << MessageName(m);
    EXPECT_EQ(EncodeMessage(*decoded), encoded);
  }
}

TEST(WitnessProtocolTest, RequestAndResponseDecodersAcceptOnlyTheirKind) {
  EXPECT_TRUE(DecodeRequest(EncodeMessage(Message(Query{}))));
  EXPECT_TRUE(DecodeRequest(EncodeMessage(Message(Commit{SampleRecord()}))));
  EXPECT_FALSE(DecodeRequest(EncodeMessage(Message(Unknown{}))));
  EXPECT_TRUE(DecodeResponse(EncodeMessage(Message(Unknown{}))));
  EXPECT_TRUE(DecodeResponse(EncodeMessage(Message(Refused{"x"}))));
  auto wrong = DecodeResponse(EncodeMessage(Message(Query{})));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message(), "witness: unexpected query");
}

cbor::Value::Map BaseMap(std::string_view type) {
  return {{cbor::Value::TextString("v"), cbor::Value::Uint(1)},
          {cbor::Value::TextString("t"), cbor::Value::TextString(type)}};
}

TEST(WitnessProtocolTest, RejectsNonDeterministicEncodings) {
  // {"v": 1, "t": "ready"}: "t" sorts first in the deterministic order.
  Bytes unsorted = cbor::Encode(cbor::Value::MakeMap(BaseMap("ready")), cbor::MapOrder::kAsGiven);
  auto decoded = DecodeMessage(unsorted);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code(), Code::kMalformed);
  // The same message with v as a two-byte integer.
  Bytes good = EncodeMessage(Message(Ready{}));
  Bytes wide = good;
  size_t at = 0;
  for (size_t i = 0; i + 2 < wide.size(); ++i) {
    if (wide[i] == 0x61 && wide[i + 1] == 'v') {
      at = i + 2;
    }
  }
  ASSERT_NE(at, size_t{0});
  ASSERT_EQ(wide[at], 0x01);
  wide[at] = 0x18;
  wide.insert(wide.begin() + static_cast<std::ptrdiff_t>(at) + 1, uint8_t{0x01});
  EXPECT_FALSE(DecodeMessage(wide));
}

TEST(WitnessProtocolTest, RejectsUnknownFieldsWrongSizesAndOtherVersions) {
  auto extra = BaseMap("ready");
  extra.emplace_back(cbor::Value::TextString("x"), cbor::Value::Uint(0));
  EXPECT_FALSE(DecodeMessage(cbor::Encode(cbor::Value::MakeMap(extra))));

  auto short_nonce = BaseMap("challenge");
  short_nonce.emplace_back(cbor::Value::TextString("nonce"), cbor::Value::ByteString(Bytes(31)));
  short_nonce.emplace_back(cbor::Value::TextString("key"), cbor::Value::ByteString(Bytes(32)));
  auto r = DecodeMessage(cbor::Encode(cbor::Value::MakeMap(short_nonce)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "witness: challenge: nonce must be 32 bytes");

  cbor::Value::Map v2 = {{cbor::Value::TextString("v"), cbor::Value::Uint(2)},
                         {cbor::Value::TextString("t"), cbor::Value::TextString("ready")}};
  auto other = DecodeMessage(cbor::Encode(cbor::Value::MakeMap(v2)));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), Code::kUnsupported);

  EXPECT_FALSE(DecodeMessage(cbor::Encode(cbor::Value::MakeMap(BaseMap("teapot")))));
  EXPECT_FALSE(DecodeMessage(Bytes{0xff}));
  EXPECT_FALSE(DecodeMessage(Bytes{}));
}

TEST(WitnessProtocolTest, LongRefusalReasonsAreCutAndOverlongOnesRejected) {
  Bytes encoded = EncodeMessage(Message(Refused{std::string(1000, 'x')}));
  auto decoded = DecodeMessage(encoded);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<Refused>(*decoded).reason.size(), kMaxReasonSize);

  auto map = BaseMap("refused");
  map.emplace_back(cbor::Value::TextString("reason"),
                   cbor::Value::TextString(std::string(kMaxReasonSize + 1, 'y')));
  EXPECT_FALSE(DecodeMessage(cbor::Encode(cbor::Value::MakeMap(map))));
}

TEST(WitnessProtocolTest, HelloChainsAreBoundedAndHaveOneForm) {
  // Without a chain the Hello has no "chain" field at all (the Hello of before upgrades).
  Bytes plain = EncodeMessage(Message(Hello{Bytes{1}, {}}));
  EXPECT_EQ(DecodeMessage(plain)->index(), Message(Hello{}).index());
  auto with = [](cbor::Value chain) {
    auto map = BaseMap("hello");
    map.emplace_back(cbor::Value::TextString("doc"), cbor::Value::ByteString(Bytes{1}));
    map.emplace_back(cbor::Value::TextString("chain"), std::move(chain));
    return DecodeMessage(cbor::Encode(cbor::Value::MakeMap(map)));
  };
  EXPECT_FALSE(with(cbor::Value::MakeArray({})));  // Empty: only the absent form is valid.
  EXPECT_FALSE(with(cbor::Value::ByteString(Bytes{1})));
  EXPECT_FALSE(with(cbor::Value::MakeArray({cbor::Value::TextString("x")})));
  EXPECT_FALSE(with(cbor::Value::MakeArray({cbor::Value::ByteString(Bytes{})})));
  EXPECT_FALSE(
      with(cbor::Value::MakeArray({cbor::Value::ByteString(Bytes(kMaxChainEntrySize + 1, 0))})));
  cbor::Value::Array many(kMaxHelloChain + 1, cbor::Value::ByteString(Bytes{7}));
  EXPECT_FALSE(with(cbor::Value::MakeArray(many)));
  many.pop_back();
  auto most = with(cbor::Value::MakeArray(many));
  ASSERT_TRUE(most) << most.error().message();
  EXPECT_EQ(std::get<Hello>(*most).chain.size(), kMaxHelloChain);
}

TEST(WitnessProtocolTest, FramesAreBounded) {
  Bytes framed = Frame(Bytes{1, 2, 3});
  EXPECT_EQ(framed, (Bytes{0, 0, 0, 3, 1, 2, 3}));
  std::array<uint8_t, 4> ok{0, 0x20, 0, 0};
  EXPECT_EQ(*ParseFrameHeader(ok), size_t{2 * 1024 * 1024});
  std::array<uint8_t, 4> big{0, 0x20, 0, 1};
  EXPECT_EQ(ParseFrameHeader(big).error().code(), Code::kLimitExceeded);
  std::array<uint8_t, 4> zero{0, 0, 0, 0};
  EXPECT_EQ(ParseFrameHeader(zero).error().code(), Code::kMalformed);
}

TEST(WitnessProtocolTest, AckSignatureCoversTheWholeRecord) {
  auto key = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519);
  WitnessKey public_key{};
  Bytes raw = key.public_key().ToRaw();
  std::copy(raw.begin(), raw.end(), public_key.begin());
  storage::CommitRecord record = SampleRecord();
  auto signature = key.Sign(AckStatement(record));
  ASSERT_TRUE(signature);
  EXPECT_TRUE(VerifyAck(public_key, record, *signature));

  storage::CommitRecord other = record;
  other.version += 1;
  EXPECT_EQ(VerifyAck(public_key, other, *signature).error().code(), Code::kVerifyFailed);
  WitnessKey wrong = public_key;
  wrong[0] ^= 1;
  EXPECT_FALSE(VerifyAck(wrong, record, *signature));
  // The ack is not a commit signature: the label separates the two.
  EXPECT_NE(AckStatement(record), storage::CommitStatement(record));
}

}  // namespace
}  // namespace enclavia::witness
