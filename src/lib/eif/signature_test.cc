// SPDX-License-Identifier: Apache-2.0
// The signature section's bytes, checked against the serde_cbor and COSE encodings by hand.
#include "lib/eif/signature.h"


#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/base/encoding.h"
#include "lib/cbor/cbor.h"
#include "lib/cose/sign1.h"
#include "lib/crypto/random.h"
#include "lib/crypto/x509.h"
#include "lib/eif/reader.h"
#include "lib/eif/test_util.h"

namespace enclavia::eif {
namespace {

using crypto::SignatureAlgorithm;
using ::testing::HasSubstr;

Bytes Pcr0() {
  Bytes pcr(48);
  for (size_t i = 0; i < pcr.size(); ++i) {
    pcr[i] = static_cast<uint8_t>(i);
  }
  return pcr;
}

// IsColonHex matches "AB:CD:...:EF" (uppercase hex pairs joined by ':').
bool IsColonHex(const std::string& s) {
  if (s.size() < 2 || (s.size() + 1) % 3 != 0) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = i % 3 == 2 ? c == ':' : ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'));
    if (!ok) {
      return false;
    }
  }
  return true;
}

TEST(SignatureTest, PcrInfoIsSerdeCborOfTheStruct) {
  // {"register_index": 0, "register_value": [0, 1, ..., 47]}: a map of two text keys in field
  // order; the i32 as a CBOR integer; the Vec<u8> as an array (0x98 0x30: 48 items) of uints,
  // 0..23 in one byte and 24..47 as 0x18 xx.
  std::string expected =
      "a2"
      "6e" +
      HexEncode(AsBytes("register_index")) +
      "00"
      "6e" +
      HexEncode(AsBytes("register_value")) + "9830";
  for (int i = 0; i < 48; ++i) {
    expected += (i < 24 ? "" : "18") + HexEncode(Bytes{static_cast<uint8_t>(i)});
  }
  EXPECT_EQ(HexEncode(EncodePcrInfo(0, Pcr0())), expected);
}

class SignatureSectionTest : public ::testing::TestWithParam<SignatureAlgorithm> {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(crypto::Init()); }
};

TEST_P(SignatureSectionTest, MatchesWhatNitroCliWrites) {
  const SigningKey signer = testing::MakeSigner(GetParam());
  auto section = EncodeSignatureSection(signer, Pcr0());
  ASSERT_TRUE(section) << section.error().message();
  const Bytes& s = *section;
  // [ {"signing_certificate": [pem bytes...], ...} ]: array(1), map(2), text(19).
  const std::string pem_len =
      HexEncode(Bytes{static_cast<uint8_t>(signer.certificate_pem.size() >> 8),
                      static_cast<uint8_t>(signer.certificate_pem.size())});
  EXPECT_EQ(HexEncode(ByteSpan(s).first(25)),
            "81"
            "a2"
            "73" +
                HexEncode(AsBytes("signing_certificate")) + "99" + pem_len);

  auto decoded = cbor::Decode(s);
  ASSERT_TRUE(decoded);
  ASSERT_EQ(decoded->as_array().size(), 1u);
  const cbor::Value::Map& entry = decoded->as_array()[0].as_map();
  ASSERT_EQ(entry.size(), 2u);
  EXPECT_EQ(entry[0].first.as_text(), "signing_certificate");
  EXPECT_EQ(entry[1].first.as_text(), "signature");
  auto to_bytes = [](const cbor::Value& array) {
    Bytes out;
    for (const cbor::Value& v : array.as_array()) {
      EXPECT_TRUE(v.is_unsigned());
      out.push_back(static_cast<uint8_t>(v.as_uint()));
    }
    return out;
  };
  EXPECT_EQ(AsString(to_bytes(entry[0].second)), signer.certificate_pem);
  const Bytes cose = to_bytes(entry[1].second);

  // COSE_Sign1 as aws-nitro-enclaves-cose's CoseSign1::new + as_bytes(false) writes it:
  // untagged array of 4; protected = bstr(a1 01 <alg>); unprotected = {}; payload; signature.
  const bool p384 = GetParam() == SignatureAlgorithm::kEcdsaP384Sha384;
  const Bytes protected_header = p384 ? Bytes{0xa1, 0x01, 0x38, 0x22} : Bytes{0xa1, 0x01, 0x26};
  const Bytes payload = EncodePcrInfo(0, Pcr0());
  ASSERT_GT(cose.size(), 8u);
  const std::string head =
      "84" + HexEncode(Bytes{static_cast<uint8_t>(0x40 + protected_header.size())}) +
      HexEncode(protected_header) +
      "a0"
      "58" +
      HexEncode(Bytes{static_cast<uint8_t>(payload.size())}) + HexEncode(payload);
  ASSERT_GT(cose.size(), head.size() / 2);
  EXPECT_EQ(HexEncode(ByteSpan(cose).first(head.size() / 2)), head);
  const size_t sig_size = p384 ? 96 : 64;
  const Bytes sig(cose.end() - static_cast<ptrdiff_t>(sig_size), cose.end());
  EXPECT_EQ(HexEncode(ByteSpan(cose).subspan(head.size() / 2, 2)),
            "58" + HexEncode(Bytes{static_cast<uint8_t>(sig_size)}));
  EXPECT_EQ(cose.size(), head.size() / 2 + 2 + sig_size);

  // The raw r||s signature verifies over the Sig_structure spelled out by hand (RFC 9052 §4.4):
  // ["Signature1", protected, h'', payload].
  Bytes tbs = Concat({Bytes{0x84, 0x6a}, AsBytes("Signature1"),
                      Bytes{static_cast<uint8_t>(0x40 + protected_header.size())}, protected_header,
                      Bytes{0x40, 0x58, static_cast<uint8_t>(payload.size())}, payload});
  EXPECT_TRUE(signer.key.public_key().Verify(tbs, sig));

  auto info = DecodeSignatureSection(s, Pcr0());
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_TRUE(info->valid);
  EXPECT_EQ(info->cose_sign1, cose);
  EXPECT_EQ(info->register_index, 0);
  EXPECT_EQ(info->register_value, Pcr0());
  EXPECT_EQ(info->algorithm, p384 ? "ecdsa-with-SHA384" : "ecdsa-with-SHA256");
  Bytes other = Pcr0();
  other[0] ^= 1;
  auto wrong = DecodeSignatureSection(s, other);
  ASSERT_TRUE(wrong);
  EXPECT_FALSE(wrong->valid);
}

INSTANTIATE_TEST_SUITE_P(Curves, SignatureSectionTest,
                         ::testing::Values(SignatureAlgorithm::kEcdsaP256Sha256,
                                           SignatureAlgorithm::kEcdsaP384Sha384));

TEST(SignatureTest, AcceptsByteStringsWhereSerdeWritesArrays) {
  ASSERT_TRUE(crypto::Init());
  const SigningKey signer = testing::MakeSigner(SignatureAlgorithm::kEcdsaP384Sha384);
  auto cose = cose::CreateSign1(
      cbor::Encode(
          cbor::Value::MakeMap(
              {{cbor::Value::TextString("register_index"), cbor::Value::Uint(0)},
               {cbor::Value::TextString("register_value"), cbor::Value::ByteString(Pcr0())}}),
          cbor::MapOrder::kAsGiven),
      signer.key, cose::Tagging::kTagged);
  ASSERT_TRUE(cose);
  cbor::Value::Map entry;
  entry.emplace_back(cbor::Value::TextString("signing_certificate"),
                     cbor::Value::ByteString(AsBytes(signer.certificate_pem)));
  entry.emplace_back(cbor::Value::TextString("signature"), cbor::Value::ByteString(*cose));
  Bytes section = cbor::Encode(cbor::Value::MakeArray({cbor::Value::MakeMap(std::move(entry))}));
  auto info = DecodeSignatureSection(section, Pcr0());
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_TRUE(info->valid);
}

TEST(SignatureTest, DescribesTheCertificateAsDescribeEif) {
  ASSERT_TRUE(crypto::Init());
  crypto::PrivateKey key = crypto::PrivateKey::Generate(SignatureAlgorithm::kEcdsaP384Sha384);
  crypto::CertificateSpec spec;
  spec.subject = {{"C", "US"}, {"O", "Org"}, {"OU", "Unit"}, {"CN", "a\"b\\c\nd"}};
  spec.not_before = SystemTime(std::chrono::seconds(1700000000));
  spec.not_after = SystemTime(std::chrono::seconds(2000000000));
  auto cert = crypto::IssueCertificate(spec, key.public_key(), key, nullptr);
  ASSERT_TRUE(cert);
  SigningKey signer{cert->ToPem(), std::move(key)};
  auto section = EncodeSignatureSection(signer, Pcr0());
  ASSERT_TRUE(section);
  auto info = DecodeSignatureSection(*section, Pcr0());
  ASSERT_TRUE(info);
  // Rust's {:?} of the value with every '"' removed: the escapes stay.
  std::map<std::string, std::string> issuer = {{"commonName", R"(a\b\\c\nd)"},
                                               {"countryName", "US"},
                                               {"organizationName", "Org"},
                                               {"organizationalUnitName", "Unit"}};
  EXPECT_EQ(info->issuer, issuer);
  EXPECT_EQ(info->not_before, "Nov 14 22:13:20 2023 GMT");
  EXPECT_EQ(info->not_after, "May 18 03:33:20 2033 GMT");
  EXPECT_TRUE(IsColonHex(info->signature_hex)) << info->signature_hex;
  EXPECT_EQ(info->certificate_der, cert->der());
}

TEST(DescribeTest, PrintsWhatDescribeEifPrints) {
  ASSERT_TRUE(crypto::Init());
  testing::TempDir dir;
  testing::TestImage image;
  image.kernel = ToBytes("KERNEL");
  image.cmdline = "x";
  image.ramdisks = {ToBytes("R1"), ToBytes("R2")};
  const SigningKey signer = testing::MakeSigner(SignatureAlgorithm::kEcdsaP384Sha384, "me");
  auto m = WriteEif(image.Spec(&signer), dir.File("a.eif"));
  ASSERT_TRUE(m);
  auto info = ReadEif(dir.File("a.eif"));
  ASSERT_TRUE(info);
  const std::string json = DescribeJson(*info);
  const std::string expected_head =
      "{\n"
      "  \"EifVersion\": 4,\n"
      "  \"Measurements\": {\n"
      "    \"HashAlgorithm\": \"Sha384 { ... }\",\n"
      "    \"PCR0\": \"" +
      HexEncode(m->pcr0) +
      "\",\n"
      "    \"PCR1\": \"" +
      HexEncode(m->pcr1) +
      "\",\n"
      "    \"PCR2\": \"" +
      HexEncode(m->pcr2) +
      "\",\n"
      "    \"PCR8\": \"" +
      HexEncode(*m->pcr8) +
      "\"\n"
      "  },\n"
      "  \"IsSigned\": true,\n"
      "  \"SigningCertificate\": {\n"
      "    \"IssuerName\": {\n"
      "      \"commonName\": \"me\",\n"
      "      \"countryName\": \"US\",\n"
      "      \"organizationName\": \"Enclavia Test\"\n"
      "    },\n"
      "    \"Algorithm\": \"ecdsa-with-SHA384\",\n"
      "    \"NotBefore\": \"Nov 14 22:13:20 2023 GMT\",\n"
      "    \"NotAfter\": \"May 18 03:33:20 2033 GMT\",\n"
      "    \"Signature\": \"";
  EXPECT_EQ(json.substr(0, expected_head.size()), expected_head);
  const std::string expected_tail =
      "\"\n"
      "  },\n"
      "  \"CheckCRC\": true,\n"
      "  \"SignatureCheck\": true,\n"
      "  \"ImageName\": \"hello\",\n"
      "  \"ImageVersion\": \"1.0\",\n"
      "  \"Metadata\": {\n"
      "    \"BuildTime\": \"1970-01-01T00:00:00+00:00\",\n"
      "    \"BuildTool\": \"enclavia\",\n"
      "    \"BuildToolVersion\": \"0.1.0\",\n"
      "    \"OperatingSystem\": \"Linux\",\n"
      "    \"KernelVersion\": \"6.1.0\",\n"
      "    \"DockerInfo\": {\n"
      "      \"a\": [\n"
      "        true,\n"
      "        null\n"
      "      ],\n"
      "      \"b\": 1\n"
      "    },\n"
      "    \"Enclavia\": {\n"
      "      \"Port\": 8080\n"
      "    }\n"
      "  }\n"
      "}";
  ASSERT_GT(json.size(), expected_tail.size());
  EXPECT_EQ(json.substr(json.size() - expected_tail.size()), expected_tail);
}

}  // namespace
}  // namespace enclavia::eif
