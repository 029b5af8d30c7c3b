// SPDX-License-Identifier: Apache-2.0
#include "lib/kms/protocol.h"

#include <gtest/gtest.h>

#include "lib/cbor/cbor.h"
#include "lib/crypto/random.h"
#include "lib/kms/kms.h"

namespace enclavia::kms {
namespace {

TEST(KmsProtocolTest, RequestsRoundTrip) {
  KmsRequest generate{Operation::kGenerateDataKey, "volume-key.1", {}, Bytes{0xd2, 0x84}, {}};
  auto decoded = DecodeRequest(EncodeRequest(generate));
  ASSERT_TRUE(decoded) << decoded.error().message();
  EXPECT_EQ(*decoded, generate);

  KmsRequest decrypt{Operation::kDecrypt, "", Bytes(80, 7), Bytes{1, 2, 3}, {}};
  decoded = DecodeRequest(EncodeRequest(decrypt));
  ASSERT_TRUE(decoded) << decoded.error().message();
  EXPECT_EQ(*decoded, decrypt);

  KmsRequest encrypt{Operation::kEncrypt, "volume.successor", {}, Bytes{4, 5}, Bytes(2581, 9)};
  decoded = DecodeRequest(EncodeRequest(encrypt));
  ASSERT_TRUE(decoded) << decoded.error().message();
  EXPECT_EQ(*decoded, encrypt);

  // An Encrypt response carries only the blob.
  KmsResponse blob_only{{}, Bytes(2700, 3)};
  auto response = DecodeResponse(EncodeResponse(blob_only));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(*response, blob_only);
}

TEST(KmsProtocolTest, RejectsBadEncryptRequests) {
  KmsRequest empty{Operation::kEncrypt, "k", {}, Bytes{1}, {}};
  EXPECT_FALSE(DecodeRequest(EncodeRequest(empty)));
  KmsRequest big{Operation::kEncrypt, "k", {}, Bytes{1}, Bytes(kMaxPlaintextSize + 1, 0)};
  EXPECT_FALSE(DecodeRequest(EncodeRequest(big)));
  KmsRequest bad_id{Operation::kEncrypt, ".k", {}, Bytes{1}, Bytes{1}};
  EXPECT_FALSE(DecodeRequest(EncodeRequest(bad_id)));
  // "generate" with a plaintext, "encrypt" without one: not a request.
  cbor::Value::Map map = {{cbor::Value::TextString("v"), cbor::Value::Uint(1)},
                          {cbor::Value::TextString("op"), cbor::Value::TextString("generate")},
                          {cbor::Value::TextString("key_id"), cbor::Value::TextString("k")},
                          {cbor::Value::TextString("plaintext"), cbor::Value::ByteString(Bytes{1})},
                          {cbor::Value::TextString("doc"), cbor::Value::ByteString(Bytes{1})}};
  EXPECT_FALSE(DecodeRequest(cbor::Encode(cbor::Value::MakeMap(map))));
  map.erase(map.begin() + 3);
  map[1].second = cbor::Value::TextString("encrypt");
  EXPECT_FALSE(DecodeRequest(cbor::Encode(cbor::Value::MakeMap(map))));
}

TEST(KmsProtocolTest, ResponsesAndErrorsRoundTrip) {
  KmsResponse response{Bytes(80, 1), Bytes(90, 2)};
  auto decoded = DecodeResponse(EncodeResponse(response));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, response);

  auto error = DecodeResponse(EncodeError(Error(Code::kPolicyViolation, "PCR3 differs")));
  ASSERT_FALSE(error);
  EXPECT_EQ(error.error().code(), Code::kPolicyViolation);
  EXPECT_EQ(error.error().message(), "kms: PCR3 differs");
}

TEST(KmsProtocolTest, RejectsBadRequests) {
  KmsRequest bad_id{Operation::kGenerateDataKey, "../etc/passwd", {}, Bytes{1}, {}};
  EXPECT_FALSE(DecodeRequest(EncodeRequest(bad_id)));
  KmsRequest no_doc{Operation::kGenerateDataKey, "k", {}, {}, {}};
  EXPECT_FALSE(DecodeRequest(EncodeRequest(no_doc)));
  KmsRequest big_blob{Operation::kDecrypt, "", Bytes(kMaxBlobSize + 1, 0), Bytes{1}, {}};
  EXPECT_FALSE(DecodeRequest(EncodeRequest(big_blob)));
  // Keys out of deterministic order.
  cbor::Value::Map map = {{cbor::Value::TextString("key_id"), cbor::Value::TextString("k")},
                          {cbor::Value::TextString("v"), cbor::Value::Uint(1)},
                          {cbor::Value::TextString("op"), cbor::Value::TextString("generate")},
                          {cbor::Value::TextString("doc"), cbor::Value::ByteString(Bytes{1})}};
  EXPECT_TRUE(DecodeRequest(cbor::Encode(cbor::Value::MakeMap(map))));
  EXPECT_FALSE(DecodeRequest(cbor::Encode(cbor::Value::MakeMap(map), cbor::MapOrder::kAsGiven)));
  // An error response with a code outside the enum.
  cbor::Value::Map err = {{cbor::Value::TextString("v"), cbor::Value::Uint(1)},
                          {cbor::Value::TextString("code"), cbor::Value::Uint(99)},
                          {cbor::Value::TextString("error"), cbor::Value::TextString("x")}};
  auto unknown = DecodeResponse(cbor::Encode(cbor::Value::MakeMap(err)));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), Code::kMalformed);
}

TEST(KmsProtocolTest, KeyIds) {
  EXPECT_TRUE(ValidKeyId("enclave-abc_1.volume"));
  EXPECT_FALSE(ValidKeyId(""));
  EXPECT_FALSE(ValidKeyId(".hidden"));
  EXPECT_FALSE(ValidKeyId("a/b"));
  EXPECT_FALSE(ValidKeyId(std::string(65, 'a')));
}

TEST(KmsProtocolTest, SealedBoxesOpenOnlyForTheirRecipient) {
  ASSERT_TRUE(crypto::Init());
  auto alice = crypto::X25519Keypair::Generate();
  auto bob = crypto::X25519Keypair::Generate();
  Bytes secret = crypto::RandomBytes(32);
  auto sealed = SealToRecipient(secret, alice.public_key);
  ASSERT_TRUE(sealed);
  auto opened = OpenSealed(*sealed, alice);
  ASSERT_TRUE(opened);
  EXPECT_TRUE(crypto::ConstantTimeEqual(opened->Expose(), secret));
  auto wrong = OpenSealed(*sealed, bob);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Code::kVerifyFailed);
  Bytes flipped = *sealed;
  flipped[40] ^= 1;
  EXPECT_FALSE(OpenSealed(flipped, alice));
  EXPECT_FALSE(OpenSealed(Bytes(10), alice));
  EXPECT_FALSE(SealToRecipient(secret, Bytes(31)));
}

}  // namespace
}  // namespace enclavia::kms
