// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/aead.h"

#include <array>
#include <string_view>

#include <gtest/gtest.h>

#include "lib/base/encoding.h"
#include "lib/crypto/random.h"

namespace enclavia::crypto {
namespace {

Bytes Hex(std::string_view hex) { return HexDecode(hex).value(); }

class AeadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(Init().has_value()); }
};

constexpr std::array<AeadAlgorithm, 2> kAlgorithms = {AeadAlgorithm::kAes256Gcm,
                                                      AeadAlgorithm::kChaCha20Poly1305};

// McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (256-bit key, 60-byte
// plaintext, 20-byte AAD, 96-bit IV).
TEST_F(AeadTest, Aes256GcmMatchesGcmSpecTestCase16) {
  auto key =
      AeadKey::Create(AeadAlgorithm::kAes256Gcm,
                      Hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"));
  ASSERT_TRUE(key.has_value());
  const Bytes nonce = Hex("cafebabefacedbaddecaf888");
  const Bytes aad = Hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const Bytes plaintext =
      Hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
          "49a6b525b16aedf5aa0de657ba637b39");
  auto sealed = key->Seal(nonce, aad, plaintext);
  ASSERT_TRUE(sealed.has_value());
  EXPECT_EQ(
      HexEncode(*sealed),
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
      "56828838c5f61e6393ba7a0abcc9f662"
      "76fc6ece0f4e1768cddf8853bb2d551b");
  auto opened = key->Open(nonce, aad, *sealed);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(ToBytes(opened->Expose()), plaintext);
}

// RFC 8439 §2.8.2.
TEST_F(AeadTest, ChaCha20Poly1305MatchesRfc8439) {
  Bytes key_bytes;
  for (int b = 0x80; b <= 0x9f; ++b) {
    key_bytes.push_back(static_cast<uint8_t>(b));
  }
  auto key = AeadKey::Create(AeadAlgorithm::kChaCha20Poly1305, key_bytes);
  ASSERT_TRUE(key.has_value());
  const Bytes nonce = Hex("070000004041424344454647");
  const Bytes aad = Hex("50515253c0c1c2c3c4c5c6c7");
  const std::string_view plaintext =
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
      "sunscreen would be it.";
  auto sealed = key->Seal(nonce, aad, AsBytes(plaintext));
  ASSERT_TRUE(sealed.has_value());
  EXPECT_EQ(
      HexEncode(*sealed),
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69"
      "da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad67594"
      "5585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"
      "1ae10b594f09e26a7e902ecbd0600691");
  auto opened = key->Open(nonce, aad, *sealed);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(AsString(opened->Expose()), plaintext);
}

TEST_F(AeadTest, RejectsFlippedTagBit) {
  for (AeadAlgorithm alg : kAlgorithms) {
    AeadKey key = AeadKey::Generate(alg);
    const Bytes nonce(kAeadNonceSize, 7);
    Bytes sealed = key.Seal(nonce, AsBytes("aad"), AsBytes("hello")).value();
    sealed.back() ^= 0x01;
    auto opened = key.Open(nonce, AsBytes("aad"), sealed);
    ASSERT_FALSE(opened.has_value());
    EXPECT_EQ(opened.error().code(), Code::kVerifyFailed);
  }
}

TEST_F(AeadTest, RejectsAnyTamperingWithOneFixedMessage) {
  for (AeadAlgorithm alg : kAlgorithms) {
    AeadKey key = AeadKey::Generate(alg);
    const Bytes nonce(kAeadNonceSize, 1);
    const Bytes aad = ToBytes("header");
    const Bytes sealed = key.Seal(nonce, aad, AsBytes("payload bytes")).value();

    Bytes flipped_ciphertext = sealed;
    flipped_ciphertext[0] ^= 0x80;
    Bytes other_nonce = nonce;
    other_nonce[11] ^= 0x01;
    const Bytes truncated(sealed.begin(), sealed.end() - 1);
    const Bytes too_short(kAeadTagSize - 1, 0);

    std::vector<Result<SecretBytes>> failures;
    failures.push_back(key.Open(nonce, aad, flipped_ciphertext));
    failures.push_back(key.Open(nonce, AsBytes("Header"), sealed));
    failures.push_back(key.Open(other_nonce, aad, sealed));
    failures.push_back(key.Open(nonce, aad, truncated));
    failures.push_back(key.Open(nonce, aad, too_short));
    failures.push_back(AeadKey::Generate(alg).Open(nonce, aad, sealed));
    for (const auto& failure : failures) {
      ASSERT_FALSE(failure.has_value());
      EXPECT_EQ(failure.error().code(), Code::kVerifyFailed);
      EXPECT_EQ(failure.error().message(), failures[0].error().message());
    }
  }
}

TEST_F(AeadTest, EmptyPlaintextAndAadRoundTrip) {
  for (AeadAlgorithm alg : kAlgorithms) {
    AeadKey key = AeadKey::Generate(alg);
    const Bytes nonce(kAeadNonceSize, 0);
    auto sealed = key.Seal(nonce, {}, {});
    ASSERT_TRUE(sealed.has_value());
    EXPECT_EQ(sealed->size(), kAeadTagSize);
    auto opened = key.Open(nonce, {}, *sealed);
    ASSERT_TRUE(opened.has_value());
    EXPECT_TRUE(opened->empty());
  }
}

TEST_F(AeadTest, LargeMessageRoundTrips) {
  for (AeadAlgorithm alg : kAlgorithms) {
    AeadKey key = AeadKey::Generate(alg);
    EXPECT_EQ(key.algorithm(), alg);
    const Bytes nonce = RandomBytes(kAeadNonceSize);
    const Bytes plaintext = RandomBytes(100'003);
    auto sealed = key.Seal(nonce, AsBytes("x"), plaintext);
    ASSERT_TRUE(sealed.has_value());
    auto opened = key.Open(nonce, AsBytes("x"), *sealed);
    ASSERT_TRUE(opened.has_value());
    EXPECT_EQ(ToBytes(opened->Expose()), plaintext);
  }
}

TEST_F(AeadTest, RejectsBadKeyAndNonceSizes) {
  auto short_key = AeadKey::Create(AeadAlgorithm::kAes256Gcm, Bytes(16, 0));
  ASSERT_FALSE(short_key.has_value());
  EXPECT_EQ(short_key.error().code(), Code::kInvalidArgument);
  AeadKey key = AeadKey::Generate(AeadAlgorithm::kChaCha20Poly1305);
  auto sealed = key.Seal(Bytes(8, 0), {}, AsBytes("x"));
  ASSERT_FALSE(sealed.has_value());
  EXPECT_EQ(sealed.error().code(), Code::kInvalidArgument);
  auto opened = key.Open(Bytes(24, 0), {}, Bytes(32, 0));
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code(), Code::kInvalidArgument);
}

TEST_F(AeadTest, AlgorithmsAreNotInterchangeable) {
  const Bytes key_bytes(kAeadKeySize, 0x42);
  AeadKey gcm = AeadKey::Create(AeadAlgorithm::kAes256Gcm, key_bytes).value();
  AeadKey chacha = AeadKey::Create(AeadAlgorithm::kChaCha20Poly1305, key_bytes).value();
  const Bytes nonce(kAeadNonceSize, 3);
  const Bytes sealed = gcm.Seal(nonce, {}, AsBytes("data")).value();
  EXPECT_FALSE(chacha.Open(nonce, {}, sealed).has_value());
}

}  // namespace
}  // namespace enclavia::crypto
