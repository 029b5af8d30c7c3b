// SPDX-License-Identifier: Apache-2.0
#include "lib/kms/key_ring.h"

#include <gtest/gtest.h>

#include "lib/crypto/random.h"
#include "lib/kms/kms.h"

namespace enclavia::kms {
namespace {

crypto::SecretBytes Secret(uint8_t fill) { return crypto::SecretBytes(Bytes(kDataKeySize, fill)); }

KeyRing Ring(std::initializer_list<uint64_t> epochs) {
  KeyRing ring;
  uint8_t fill = 1;
  for (uint64_t epoch : epochs) {
    ring.entries.push_back(KeyRingEntry{epoch, Secret(fill++)});
  }
  return ring;
}

TEST(KeyRingTest, EncodesAndDecodesEveryEntry) {
  KeyRing ring = Ring({0, 3, 9, kUnassigned});
  crypto::SecretBytes encoded = EncodeKeyRing(ring);
  EXPECT_EQ(encoded.size(), 20u + 1u + 4u * 40u);
  auto decoded = DecodeKeyRing(encoded.Expose());
  ASSERT_TRUE(decoded) << decoded.error().message();
  ASSERT_EQ(decoded->entries.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(decoded->entries[i].first_epoch, ring.entries[i].first_epoch);
    EXPECT_TRUE(crypto::ConstantTimeEqual(decoded->entries[i].secret.Expose(),
                                          ring.entries[i].secret.Expose()));
  }
  // Deterministic: the same ring encodes to the same bytes.
  EXPECT_TRUE(crypto::ConstantTimeEqual(EncodeKeyRing(*decoded).Expose(), encoded.Expose()));
}

TEST(KeyRingTest, ABareDataKeyIsOneEntryAtEpochZero) {
  Bytes key(kDataKeySize, 0x5a);
  auto ring = DecodeKeyRing(key);
  ASSERT_TRUE(ring);
  ASSERT_EQ(ring->entries.size(), 1u);
  EXPECT_EQ(ring->entries[0].first_epoch, 0u);
  EXPECT_TRUE(crypto::ConstantTimeEqual(ring->entries[0].secret.Expose(), key));
}

TEST(KeyRingTest, RejectsMalformedRingsWithoutEchoingThem) {
  crypto::SecretBytes encoded_good = EncodeKeyRing(Ring({0, 4}));
  Bytes good(encoded_good.Expose().begin(), encoded_good.Expose().end());
  auto bad = [](const Bytes& bytes) {
    auto decoded = DecodeKeyRing(bytes);
    return !decoded && decoded.error().code() == Code::kMalformed &&
           decoded.error().message() == "kms: the key ring does not parse";
  };
  EXPECT_TRUE(bad({}));
  EXPECT_TRUE(bad(Bytes(31, 1)));
  EXPECT_TRUE(bad(Bytes(33, 1)));
  EXPECT_TRUE(bad(Bytes(good.begin(), good.end() - 1)));  // Truncated.
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_TRUE(bad(longer));  // Trailing byte.
  Bytes magic = good;
  magic[0] ^= 1;
  EXPECT_TRUE(bad(magic));
  Bytes zero = good;
  zero[20] = 0;  // Count 0.
  EXPECT_TRUE(bad(Bytes(zero.begin(), zero.begin() + 21)));
  Bytes count = good;
  count[20] = 3;  // Count larger than the entries.
  EXPECT_TRUE(bad(count));
  auto encoded = [](std::initializer_list<uint64_t> epochs) {
    crypto::SecretBytes e = EncodeKeyRing(Ring(epochs));
    return Bytes(e.Expose().begin(), e.Expose().end());
  };
  EXPECT_TRUE(bad(encoded({0, 0})));                    // Not ascending.
  EXPECT_TRUE(bad(encoded({5, 2})));                    // Descending.
  EXPECT_TRUE(bad(encoded({0, kUnassigned, 7})));       // Unassigned not last.
  EXPECT_TRUE(bad(encoded({kUnassigned})));             // The first entry needs an epoch.
  EXPECT_TRUE(bad(encoded({0, kUnassigned, kUnassigned})));
  EXPECT_FALSE(bad(encoded({0, 2, kUnassigned})));
}

TEST(KeyRingTest, AppendFreshAddsOneRandomUnassignedSecret) {
  KeyRing ring = Ring({0});
  ASSERT_TRUE(AppendFresh(ring));
  ASSERT_EQ(ring.entries.size(), 2u);
  EXPECT_EQ(ring.entries[1].first_epoch, kUnassigned);
  EXPECT_EQ(ring.entries[1].secret.size(), kDataKeySize);
  EXPECT_FALSE(crypto::ConstantTimeEqual(ring.entries[1].secret.Expose(),
                                         ring.entries[0].secret.Expose()));
  auto twice = AppendFresh(ring);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), Code::kFailedPrecondition);

  KeyRing other = Ring({0});
  ASSERT_TRUE(AppendFresh(other));
  EXPECT_FALSE(crypto::ConstantTimeEqual(ring.entries[1].secret.Expose(),
                                         other.entries[1].secret.Expose()));
  KeyRing empty;
  EXPECT_FALSE(AppendFresh(empty));
}

TEST(KeyRingTest, AppendFreshStopsAtTheLimit) {
  KeyRing ring;
  for (uint64_t i = 0; i < kMaxRingEntries; ++i) {
    ring.entries.push_back(KeyRingEntry{i, Secret(static_cast<uint8_t>(i))});
  }
  auto full = AppendFresh(ring);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), Code::kLimitExceeded);
  // The largest ring still round-trips, and fits what Encrypt takes.
  crypto::SecretBytes encoded = EncodeKeyRing(ring);
  EXPECT_LE(encoded.size(), kMaxPlaintextSize);
  auto decoded = DecodeKeyRing(encoded.Expose());
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->entries.size(), kMaxRingEntries);
}

}  // namespace
}  // namespace enclavia::kms
