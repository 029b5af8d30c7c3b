// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/keys.h"

#include <array>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "lib/base/encoding.h"

namespace enclavia::crypto {
namespace {

Bytes Hex(std::string_view hex) { return HexDecode(hex).value(); }

constexpr std::array<SignatureAlgorithm, 2> kEcdsaAlgorithms = {
    SignatureAlgorithm::kEcdsaP256Sha256, SignatureAlgorithm::kEcdsaP384Sha384};
constexpr std::array<SignatureAlgorithm, 3> kAllAlgorithms = {SignatureAlgorithm::kEcdsaP256Sha256,
                                                              SignatureAlgorithm::kEcdsaP384Sha384,
                                                              SignatureAlgorithm::kEd25519};

// Ed25519PrivateKeyFromSeed wraps a 32-byte RFC 8032 secret in PKCS#8 (RFC 8410 §7).
Result<PrivateKey> Ed25519PrivateKeyFromSeed(std::string_view seed_hex) {
  return PrivateKey::FromPkcs8Der(Concat({Hex("302e020100300506032b657004220420"), Hex(seed_hex)}));
}

struct Rfc8032Vector {
  std::string_view secret;
  std::string_view public_key;
  std::string_view message;
  std::string_view signature;
};

// RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte).
constexpr std::array<Rfc8032Vector, 2> kRfc8032Vectors = {{
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9"
     "b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f1"
     "1d8c387b2eaeb4302aeeb00d291612bb0c00"},
}};

TEST(Ed25519Test, MatchesRfc8032Tests1And2) {
  for (const Rfc8032Vector& v : kRfc8032Vectors) {
    auto key = Ed25519PrivateKeyFromSeed(v.secret);
    ASSERT_TRUE(key.has_value());
    EXPECT_EQ(key->algorithm(), SignatureAlgorithm::kEd25519);
    EXPECT_EQ(HexEncode(key->public_key().ToRaw()), v.public_key);
    const Bytes message = Hex(v.message);
    auto signature = key->Sign(message);
    ASSERT_TRUE(signature.has_value());
    EXPECT_EQ(HexEncode(*signature), v.signature);

    auto public_key = PublicKey::FromRaw(SignatureAlgorithm::kEd25519, Hex(v.public_key));
    ASSERT_TRUE(public_key.has_value());
    EXPECT_TRUE(public_key->Verify(message, Hex(v.signature)).has_value());
    Bytes bad = Hex(v.signature);
    bad[10] ^= 0x04;
    auto result = public_key->Verify(message, bad);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code(), Code::kVerifyFailed);
    EXPECT_FALSE(public_key->Verify(AsBytes("other"), Hex(v.signature)).has_value());
  }
}

TEST(Ed25519Test, FromSeedMatchesRfc8032AndRejectsOtherSizes) {
  for (const Rfc8032Vector& v : kRfc8032Vectors) {
    auto key = PrivateKey::FromEd25519Seed(Hex(v.secret));
    ASSERT_TRUE(key.has_value());
    EXPECT_EQ(HexEncode(key->public_key().ToRaw()), v.public_key);
    auto signature = key->Sign(Hex(v.message));
    ASSERT_TRUE(signature.has_value());
    EXPECT_EQ(HexEncode(*signature), v.signature);
  }
  auto short_seed = PrivateKey::FromEd25519Seed(Bytes(31, 1));
  ASSERT_FALSE(short_seed.has_value());
  EXPECT_EQ(short_seed.error().code(), Code::kInvalidArgument);
}

TEST(Ed25519Test, HasNoDerSignatures) {
  PrivateKey key = PrivateKey::Generate(SignatureAlgorithm::kEd25519);
  auto der = key.SignDer(AsBytes("m"));
  ASSERT_FALSE(der.has_value());
  EXPECT_EQ(der.error().code(), Code::kUnsupported);
  auto verify = key.public_key().VerifyDer(AsBytes("m"), key.Sign(AsBytes("m")).value());
  ASSERT_FALSE(verify.has_value());
  EXPECT_EQ(verify.error().code(), Code::kVerifyFailed);
}

TEST(EcdsaTest, SignVerifyRoundTripOnBothCurves) {
  for (SignatureAlgorithm alg : kEcdsaAlgorithms) {
    PrivateKey key = PrivateKey::Generate(alg);
    EXPECT_EQ(key.algorithm(), alg);
    PublicKey pub = key.public_key();
    EXPECT_EQ(pub.algorithm(), alg);
    const Bytes message = ToBytes("attestation document");
    auto signature = key.Sign(message);
    ASSERT_TRUE(signature.has_value());
    EXPECT_EQ(signature->size(), RawSignatureSize(alg));
    EXPECT_TRUE(pub.Verify(message, *signature).has_value());

    // VerifyDer agrees with Verify after the raw signature is converted.
    auto der = EcdsaRawToDer(*signature);
    ASSERT_TRUE(der.has_value());
    EXPECT_TRUE(pub.VerifyDer(message, *der).has_value());
    auto raw_again = EcdsaDerToRaw(*der, RawSignatureSize(alg) / 2);
    ASSERT_TRUE(raw_again.has_value());
    EXPECT_EQ(*raw_again, *signature);

    // And SignDer output verifies both ways.
    auto der_signature = key.SignDer(message);
    ASSERT_TRUE(der_signature.has_value());
    EXPECT_TRUE(pub.VerifyDer(message, *der_signature).has_value());
    EXPECT_TRUE(
        pub.Verify(message, EcdsaDerToRaw(*der_signature, RawSignatureSize(alg) / 2).value())
            .has_value());
  }
}

TEST(EcdsaTest, RejectsTamperedMessageAndSignature) {
  for (SignatureAlgorithm alg : kEcdsaAlgorithms) {
    PrivateKey key = PrivateKey::Generate(alg);
    PublicKey pub = key.public_key();
    const Bytes message = ToBytes("message");
    const Bytes signature = key.Sign(message).value();

    Bytes other_message = message;
    other_message[0] ^= 1;
    Bytes flipped_r = signature;
    flipped_r[3] ^= 0x10;
    Bytes flipped_s = signature;
    flipped_s[signature.size() - 1] ^= 0x01;
    Bytes longer = signature;
    longer.push_back(0);
    const Bytes shorter(signature.begin(), signature.end() - 1);
    const Bytes zeros(signature.size(), 0);
    const Bytes other_key_signature = PrivateKey::Generate(alg).Sign(message).value();

    std::vector<Result<void>> failures;
    failures.push_back(pub.Verify(other_message, signature));
    failures.push_back(pub.Verify(message, flipped_r));
    failures.push_back(pub.Verify(message, flipped_s));
    failures.push_back(pub.Verify(message, longer));
    failures.push_back(pub.Verify(message, shorter));
    failures.push_back(pub.Verify(message, zeros));
    failures.push_back(pub.Verify(message, {}));
    failures.push_back(pub.Verify(message, other_key_signature));
    for (const auto& failure : failures) {
      ASSERT_FALSE(failure.has_value());
      EXPECT_EQ(failure.error().code(), Code::kVerifyFailed);
      EXPECT_EQ(failure.error().message(), failures[0].error().message());
    }
  }
}

TEST(EcdsaTest, DerWithTrailingBytesIsRejected) {
  for (SignatureAlgorithm alg : kEcdsaAlgorithms) {
    PrivateKey key = PrivateKey::Generate(alg);
    const Bytes message = ToBytes("message");
    Bytes der = key.SignDer(message).value();
    der.push_back(0x00);
    auto verify = key.public_key().VerifyDer(message, der);
    ASSERT_FALSE(verify.has_value());
    EXPECT_EQ(verify.error().code(), Code::kVerifyFailed);
    auto raw = EcdsaDerToRaw(der, RawSignatureSize(alg) / 2);
    ASSERT_FALSE(raw.has_value());
    EXPECT_EQ(raw.error().code(), Code::kMalformed);
  }
}

TEST(EcdsaTest, DerToRawRejectsNonCanonicalAndOversizedValues) {
  // r = 1, s = 1 in canonical DER converts.
  auto ok = EcdsaDerToRaw(Hex("3006020101020101"), 32);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->size(), 64U);
  EXPECT_EQ((*ok)[31], 1);
  EXPECT_EQ((*ok)[63], 1);
  for (std::string_view bad : {
           "30080202000102020001",  // INTEGERs with a superfluous leading zero.
           "308106020101020101",    // Long-form length where short form is required.
           "3006020181020101",      // Negative r.
           "30060201010201",        // Truncated.
           "",
       }) {
    auto raw = EcdsaDerToRaw(Hex(bad), 32);
    EXPECT_FALSE(raw.has_value()) << bad;
    if (!raw.has_value()) {
      EXPECT_EQ(raw.error().code(), Code::kMalformed) << bad;
    }
  }
  // A 33-byte r does not fit a P-256 scalar.
  const Bytes big = Concat({Hex("3026022101"), Bytes(32, 0x11), Hex("020101")});
  auto too_big = EcdsaDerToRaw(big, 32);
  ASSERT_FALSE(too_big.has_value());
  EXPECT_EQ(too_big.error().code(), Code::kMalformed);
  EXPECT_TRUE(EcdsaDerToRaw(big, 48).has_value());
  EXPECT_EQ(EcdsaDerToRaw(Hex("3006020101020101"), 31).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(EcdsaRawToDer(Bytes(63, 1)).error().code(), Code::kInvalidArgument);
}

TEST(PublicKeyTest, EncodingsRoundTrip) {
  for (SignatureAlgorithm alg : kAllAlgorithms) {
    PrivateKey key = PrivateKey::Generate(alg);
    PublicKey pub = key.public_key();
    const Bytes message = ToBytes("m");
    const Bytes signature = key.Sign(message).value();

    auto from_spki = PublicKey::FromSpki(pub.ToSpki());
    ASSERT_TRUE(from_spki.has_value());
    EXPECT_EQ(from_spki->algorithm(), alg);
    EXPECT_TRUE(from_spki->Verify(message, signature).has_value());

    const std::string pem = pub.ToPem();
    EXPECT_NE(pem.find("-----BEGIN PUBLIC KEY-----"), std::string::npos);
    auto from_pem = PublicKey::FromPem(pem);
    ASSERT_TRUE(from_pem.has_value());
    EXPECT_EQ(from_pem->ToSpki(), pub.ToSpki());

    const Bytes raw = pub.ToRaw();
    EXPECT_EQ(raw.size(), alg == SignatureAlgorithm::kEd25519           ? 32U
                          : alg == SignatureAlgorithm::kEcdsaP256Sha256 ? 65U
                                                                        : 97U);
    auto from_raw = PublicKey::FromRaw(alg, raw);
    ASSERT_TRUE(from_raw.has_value());
    EXPECT_EQ(from_raw->ToSpki(), pub.ToSpki());
    EXPECT_TRUE(from_raw->Verify(message, signature).has_value());

    PublicKey copy = pub;  // Shares the key.
    copy = *from_raw;
    EXPECT_TRUE(copy.Verify(message, signature).has_value());
  }
}

TEST(PublicKeyTest, FromRawRejectsBadPoints) {
  for (SignatureAlgorithm alg : kEcdsaAlgorithms) {
    Bytes raw = PrivateKey::Generate(alg).public_key().ToRaw();
    Bytes off_curve = raw;
    off_curve.back() ^= 0x01;
    auto result = PublicKey::FromRaw(alg, off_curve);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code(), Code::kMalformed);
    Bytes compressed(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>((raw.size() + 1) / 2));
    compressed[0] = 0x02;
    EXPECT_FALSE(PublicKey::FromRaw(alg, compressed).has_value());
  }
  EXPECT_FALSE(PublicKey::FromRaw(SignatureAlgorithm::kEd25519, Bytes(31, 1)).has_value());
}

TEST(PublicKeyTest, FromSpkiRejectsTrailingBytesAndGarbage) {
  Bytes spki = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP256Sha256).public_key().ToSpki();
  spki.push_back(0);
  auto trailing = PublicKey::FromSpki(spki);
  ASSERT_FALSE(trailing.has_value());
  EXPECT_EQ(trailing.error().code(), Code::kMalformed);
  EXPECT_EQ(PublicKey::FromSpki(Hex("3003020101")).error().code(), Code::kMalformed);
  EXPECT_EQ(PublicKey::FromPem("not a pem").error().code(), Code::kMalformed);
}

TEST(PublicKeyTest, FromSpkiRejectsOtherCurves) {
  ossl::Ptr<EVP_PKEY> p521(EVP_EC_gen("P-521"));
  ASSERT_NE(p521, nullptr);
  const int len = i2d_PUBKEY(p521.get(), nullptr);
  ASSERT_GT(len, 0);
  Bytes der(static_cast<size_t>(len));
  unsigned char* p = der.data();
  ASSERT_EQ(i2d_PUBKEY(p521.get(), &p), len);
  auto result = PublicKey::FromSpki(der);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), Code::kUnsupported);
}

TEST(PrivateKeyPemTest, RoundTripsWithoutPassphrase) {
  for (SignatureAlgorithm alg : kAllAlgorithms) {
    PrivateKey key = PrivateKey::Generate(alg);
    auto pem = key.ToPem();
    ASSERT_TRUE(pem.has_value());
    const std::string_view text = AsString(pem->Expose());
    EXPECT_NE(text.find("-----BEGIN PRIVATE KEY-----"), std::string_view::npos);
    auto parsed = PrivateKey::FromPem(text);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->algorithm(), alg);
    EXPECT_EQ(parsed->public_key().ToSpki(), key.public_key().ToSpki());
    const Bytes signature = parsed->Sign(AsBytes("x")).value();
    EXPECT_TRUE(key.public_key().Verify(AsBytes("x"), signature).has_value());
  }
}

TEST(PrivateKeyPemTest, RoundTripsWithPassphrase) {
  PrivateKey key = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP384Sha384);
  auto pem = key.ToPem("correct horse");
  ASSERT_TRUE(pem.has_value());
  const std::string_view text = AsString(pem->Expose());
  EXPECT_NE(text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----"), std::string_view::npos);

  auto parsed = PrivateKey::FromPem(text, "correct horse");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->public_key().ToSpki(), key.public_key().ToSpki());

  auto wrong = PrivateKey::FromPem(text, "battery staple");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code(), Code::kVerifyFailed);

  auto missing = PrivateKey::FromPem(text);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), Code::kInvalidArgument);
}

TEST(PrivateKeyPemTest, RejectsGarbage) {
  EXPECT_EQ(PrivateKey::FromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .error()
                .code(),
            Code::kMalformed);
  EXPECT_EQ(PrivateKey::FromPkcs8Der(Hex("300100")).error().code(), Code::kMalformed);
}

}  // namespace
}  // namespace enclavia::crypto
