// SPDX-License-Identifier: Apache-2.0
#include "lib/cose/sign1.h"

#include <gtest/gtest.h>

#include "lib/base/encoding.h"
#include "lib/crypto/random.h"

namespace enclavia::cose {
namespace {

using crypto::PrivateKey;
using crypto::SignatureAlgorithm;

Bytes Hex(std::string_view hex) { return HexDecode(hex).value(); }

class Sign1RoundTripTest : public ::testing::TestWithParam<SignatureAlgorithm> {};

TEST_P(Sign1RoundTripTest, SignsParsesAndVerifies) {
  ASSERT_TRUE(crypto::Init());
  PrivateKey key = PrivateKey::Generate(GetParam());
  for (Tagging tagging : {Tagging::kUntagged, Tagging::kTagged}) {
    auto msg = CreateSign1(AsBytes("payload"), key, tagging);
    ASSERT_TRUE(msg) << msg.error().message();
    EXPECT_EQ((*msg)[0], tagging == Tagging::kTagged ? 0xd2 : 0x84);
    auto parsed = ParseSign1(*msg);
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(parsed->tagged, tagging == Tagging::kTagged);
    EXPECT_EQ(parsed->algorithm, AlgorithmForKey(GetParam()));
    EXPECT_EQ(AsString(parsed->payload), "payload");
    EXPECT_EQ(parsed->signature.size(), crypto::RawSignatureSize(GetParam()));
    EXPECT_TRUE(VerifySign1(*parsed, key.public_key()));
  }
}

TEST_P(Sign1RoundTripTest, RejectsTamperingWrongKeyAndWrongAad) {
  PrivateKey key = PrivateKey::Generate(GetParam());
  auto msg = CreateSign1(AsBytes("payload"), key, Tagging::kUntagged, cbor::Value::MakeMap({}),
                         AsBytes("aad"));
  ASSERT_TRUE(msg);
  auto parsed = ParseSign1(*msg);
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(VerifySign1(*parsed, key.public_key(), AsBytes("aad")));
  auto wrong_aad = VerifySign1(*parsed, key.public_key(), AsBytes("aae"));
  ASSERT_FALSE(wrong_aad);
  EXPECT_EQ(wrong_aad.error().code(), Code::kVerifyFailed);
  EXPECT_FALSE(VerifySign1(*parsed, PrivateKey::Generate(GetParam()).public_key(), AsBytes("aad")));
  Sign1 tampered = *parsed;
  tampered.payload[0] ^= 1;
  EXPECT_FALSE(VerifySign1(tampered, key.public_key(), AsBytes("aad")));
  tampered = *parsed;
  tampered.signature.back() ^= 1;
  EXPECT_FALSE(VerifySign1(tampered, key.public_key(), AsBytes("aad")));
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, Sign1RoundTripTest,
                         ::testing::Values(SignatureAlgorithm::kEcdsaP256Sha256,
                                           SignatureAlgorithm::kEcdsaP384Sha384,
                                           SignatureAlgorithm::kEd25519));

TEST(Sign1Test, ProtectedHeaderIsTheMinimalAlgMap) {
  // {1: -35} is exactly the header AWS's NSM writes (a1 01 38 22).
  const std::pair<SignatureAlgorithm, const char*> cases[] = {
      {SignatureAlgorithm::kEcdsaP384Sha384, "a1013822"},
      {SignatureAlgorithm::kEcdsaP256Sha256, "a10126"},
      {SignatureAlgorithm::kEd25519, "a10127"}};
  for (const auto& [alg, hex] : cases) {
    auto msg = CreateSign1(AsBytes("x"), PrivateKey::Generate(alg), Tagging::kUntagged);
    ASSERT_TRUE(msg);
    EXPECT_EQ(HexEncode(ParseSign1(*msg)->protected_header), hex);
  }
}

TEST(Sign1Test, SigStructureMatchesRfc9052Layout) {
  // ["Signature1", h'a10126', h'', h'01'] (RFC 9052 §4.4).
  EXPECT_EQ(HexEncode(SigStructure(Hex("a10126"), {}, Hex("01"))),
            "846a5369676e61747572653143a101264041" "01");
}

TEST(Sign1Test, VerifiesRfc9052AppendixC21Example) {
  // RFC 9052 Appendix C.2.1: COSE_Sign1 with ES256, key "11" of Appendix C.7.1.
  Bytes msg = Hex(
      "d28443a10126a10442313154546869732069732074686520636f6e74656e742e58408eb33e4ca31d1c465ab05a"
      "ac34cc6b23d58fef5c083106c4d25a91aef0b0117e2af9a291aa32e14ab834dc56ed2a223444547e01f11d3b09"
      "16e5a4c345cacb36");
  auto key = crypto::PublicKey::FromRaw(
      SignatureAlgorithm::kEcdsaP256Sha256,
      Hex("04bac5b11cad8f99f9c72b05cf4b9e26d244dc189f745228255a219a86d6a09eff20138bf82dc1b6d562be0f"
          "a54ab7804a3a64b6d72ccfed6b6fb6ed28bbfc117e"));
  ASSERT_TRUE(key);
  auto parsed = ParseSign1(msg);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_TRUE(parsed->tagged);
  EXPECT_EQ(AsString(parsed->payload), "This is the content.");
  EXPECT_TRUE(VerifySign1(*parsed, *key));
}

TEST(Sign1Test, RejectsKeyOfAnotherAlgorithm) {
  auto msg = CreateSign1(AsBytes("x"), PrivateKey::Generate(SignatureAlgorithm::kEcdsaP384Sha384),
                         Tagging::kUntagged);
  auto v = VerifySign1(*ParseSign1(*msg),
                       PrivateKey::Generate(SignatureAlgorithm::kEcdsaP256Sha256).public_key());
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), Code::kVerifyFailed);
}

struct BadCase {
  const char* name;
  const char* hex;
  Code code;
};

TEST(Sign1Test, RejectsMalformedEnvelopes) {
  const BadCase cases[] = {
      {"not an array", "a0", Code::kMalformed},
      {"array of 3", "8343a1012640f6", Code::kMalformed},
      {"wrong tag", "d38443a10126a0414140", Code::kMalformed},
      {"detached payload", "8443a10126a0f640", Code::kMalformed},
      {"payload text", "8443a10126a0614140", Code::kMalformed},
      {"protected not bstr", "84a10126a0414140", Code::kMalformed},
      {"protected not a map", "844101a0414140", Code::kMalformed},
      {"no alg", "8441a0a0414140", Code::kMalformed},
      {"alg unsupported (ES512)", "8444a1013823a0414140", Code::kUnsupported},
      {"crit present", "8446a2012602810ea0414140", Code::kUnsupported},
      {"alg unprotected", "8443a10126a10126414140", Code::kMalformed},
      {"signature not bstr", "8443a10126a04141f6", Code::kMalformed},
      {"trailing bytes", "8443a10126a041414000", Code::kMalformed},
      {"truncated", "8443a10126a04141", Code::kMalformed},
  };
  for (const BadCase& c : cases) {
    auto r = ParseSign1(Hex(c.hex));
    ASSERT_FALSE(r) << c.name;
    EXPECT_EQ(r.error().code(), c.code) << c.name << ": " << r.error().message();
    EXPECT_EQ(r.error().message().rfind("cose", 0), 0u) << c.name << ": " << r.error().message();
  }
}

}  // namespace
}  // namespace enclavia::cose
