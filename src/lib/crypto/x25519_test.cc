// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/x25519.h"

#include <string_view>

#include <gtest/gtest.h>

#include "lib/base/encoding.h"
#include "lib/crypto/random.h"

namespace enclavia::crypto {
namespace {

Bytes Hex(std::string_view hex) { return HexDecode(hex).value(); }

X25519Keypair KeypairFromHex(std::string_view hex) {
  const Bytes raw = Hex(hex);
  return X25519Keypair::FromPrivate(
      std::span<const uint8_t, kX25519KeySize>(raw.data(), kX25519KeySize));
}

class X25519Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(Init().has_value()); }
};

// RFC 7748 §6.1.
TEST_F(X25519Test, MatchesRfc7748Section61) {
  X25519Keypair alice =
      KeypairFromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  X25519Keypair bob =
      KeypairFromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  EXPECT_EQ(HexEncode(alice.public_key),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(HexEncode(bob.public_key),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  auto k1 = X25519(alice.private_key, bob.public_key);
  auto k2 = X25519(bob.private_key, alice.public_key);
  ASSERT_TRUE(k1.has_value());
  ASSERT_TRUE(k2.has_value());
  EXPECT_EQ(HexEncode(k1->Expose()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  EXPECT_EQ(HexEncode(k2->Expose()), HexEncode(k1->Expose()));
}

TEST_F(X25519Test, GeneratedKeypairsAgree) {
  X25519Keypair a = X25519Keypair::Generate();
  X25519Keypair b = X25519Keypair::Generate();
  EXPECT_NE(a.public_key, b.public_key);
  auto k1 = X25519(a.private_key, b.public_key);
  auto k2 = X25519(b.private_key, a.public_key);
  ASSERT_TRUE(k1.has_value() && k2.has_value());
  EXPECT_EQ(HexEncode(k1->Expose()), HexEncode(k2->Expose()));
}

TEST_F(X25519Test, RejectsLowOrderPeerKeys) {
  X25519Keypair a = X25519Keypair::Generate();
  // The identity (0), the point of order 1 (u = 1), and a point of order 8 (RFC 7748 §7 /
  // libsodium's blocklist): each forces an all-zero shared secret.
  for (std::string_view hex : {
           "0000000000000000000000000000000000000000000000000000000000000000",
           "0100000000000000000000000000000000000000000000000000000000000000",
           "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
       }) {
    auto shared = X25519(a.private_key, Hex(hex));
    ASSERT_FALSE(shared.has_value()) << hex;
    EXPECT_EQ(shared.error().code(), Code::kVerifyFailed);
  }
}

TEST_F(X25519Test, RejectsWrongSizePeerKey) {
  X25519Keypair a = X25519Keypair::Generate();
  auto shared = X25519(a.private_key, Bytes(31, 9));
  ASSERT_FALSE(shared.has_value());
  EXPECT_EQ(shared.error().code(), Code::kVerifyFailed);
}

}  // namespace
}  // namespace enclavia::crypto
