// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/hash.h"

#include <string_view>

#include <gtest/gtest.h>

#include "lib/base/encoding.h"

namespace enclavia::crypto {
namespace {

Bytes Hex(std::string_view hex) { return HexDecode(hex).value(); }

Bytes Range(uint8_t first, uint8_t last_inclusive) {
  Bytes out;
  for (int b = first; b <= last_inclusive; ++b) {
    out.push_back(static_cast<uint8_t>(b));
  }
  return out;
}

// FIPS 180-2 Appendix B/C/D: the one-block message "abc".
TEST(HashTest, Sha256MatchesFips180Abc) {
  EXPECT_EQ(HexEncode(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HashTest, Sha384MatchesFips180Abc) {
  EXPECT_EQ(
      HexEncode(Sha384(AsBytes("abc"))),
      "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca1"
      "34c825a7");
}

TEST(HashTest, Sha512MatchesFips180Abc) {
  EXPECT_EQ(
      HexEncode(Sha512(AsBytes("abc"))),
      "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23"
      "a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST(HashTest, DigestSizesMatchAlgorithms) {
  EXPECT_EQ(DigestSize(HashAlgorithm::kSha256), 32U);
  EXPECT_EQ(DigestSize(HashAlgorithm::kSha384), 48U);
  EXPECT_EQ(DigestSize(HashAlgorithm::kSha512), 64U);
}

TEST(HasherTest, IncrementalMatchesOneShot) {
  const Bytes data = ToBytes("The quick brown fox jumps over the lazy dog");
  const ByteSpan all(data);
  for (HashAlgorithm alg :
       {HashAlgorithm::kSha256, HashAlgorithm::kSha384, HashAlgorithm::kSha512}) {
    Hasher hasher(alg);
    hasher.Update(all.subspan(0, 10));
    hasher.Update({});
    hasher.Update(all.subspan(10));
    const Bytes got = hasher.Finish();
    ASSERT_EQ(got.size(), DigestSize(alg));
    switch (alg) {
      case HashAlgorithm::kSha256:
        EXPECT_EQ(HexEncode(got), HexEncode(Sha256(data)));
        break;
      case HashAlgorithm::kSha384:
        EXPECT_EQ(HexEncode(got), HexEncode(Sha384(data)));
        break;
      case HashAlgorithm::kSha512:
        EXPECT_EQ(HexEncode(got), HexEncode(Sha512(data)));
        break;
    }
  }
}

TEST(HasherTest, MovedHasherKeepsState) {
  Hasher a(HashAlgorithm::kSha256);
  a.Update(AsBytes("ab"));
  Hasher b(std::move(a));
  b.Update(AsBytes("c"));
  EXPECT_EQ(HexEncode(b.Finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// RFC 4231 §4.2, test case 1.
TEST(HmacTest, Sha256MatchesRfc4231Case1) {
  const Bytes key(20, 0x0b);
  EXPECT_EQ(HexEncode(Hmac(HashAlgorithm::kSha256, key, AsBytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

// RFC 4231 §4.3, test case 2 (key shorter than the block).
TEST(HmacTest, Sha256MatchesRfc4231Case2) {
  EXPECT_EQ(HexEncode(Hmac(HashAlgorithm::kSha256, AsBytes("Jefe"),
                           AsBytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacTest, AcceptsEmptyKeyAndMessage) {
  // Cross-checked against Python's hmac module.
  EXPECT_EQ(HexEncode(Hmac(HashAlgorithm::kSha256, {}, {})),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

// RFC 5869 Appendix A.1.
TEST(HkdfTest, Sha256MatchesRfc5869Case1) {
  auto okm =
      Hkdf(HashAlgorithm::kSha256, Bytes(22, 0x0b), Range(0x00, 0x0c), Range(0xf0, 0xf9), 42);
  ASSERT_TRUE(okm.has_value());
  EXPECT_EQ(HexEncode(okm->Expose()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

// RFC 5869 Appendix A.2: longer inputs and outputs.
TEST(HkdfTest, Sha256MatchesRfc5869Case2) {
  auto okm =
      Hkdf(HashAlgorithm::kSha256, Range(0x00, 0x4f), Range(0x60, 0xaf), Range(0xb0, 0xff), 82);
  ASSERT_TRUE(okm.has_value());
  EXPECT_EQ(
      HexEncode(okm->Expose()),
      "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c6"
      "5e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

// RFC 5869 Appendix A.3: zero-length salt and info.
TEST(HkdfTest, Sha256MatchesRfc5869Case3) {
  auto okm = Hkdf(HashAlgorithm::kSha256, Bytes(22, 0x0b), {}, {}, 42);
  ASSERT_TRUE(okm.has_value());
  EXPECT_EQ(HexEncode(okm->Expose()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(HkdfTest, RejectsOutputLongerThan255Blocks) {
  auto ok = Hkdf(HashAlgorithm::kSha256, Hex("00"), {}, {}, size_t{255} * 32);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->size(), 255U * 32U);
  auto too_long = Hkdf(HashAlgorithm::kSha256, Hex("00"), {}, {}, size_t{255} * 32 + 1);
  ASSERT_FALSE(too_long.has_value());
  EXPECT_EQ(too_long.error().code(), Code::kInvalidArgument);
}

TEST(HkdfTest, ZeroLengthOutputIsEmpty) {
  auto okm = Hkdf(HashAlgorithm::kSha384, Hex("01"), {}, {}, 0);
  ASSERT_TRUE(okm.has_value());
  EXPECT_TRUE(okm->empty());
}

}  // namespace
}  // namespace enclavia::crypto
