// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/secret.h"

#include <algorithm>
#include <array>
#include <utility>

#include <gtest/gtest.h>

#include "lib/crypto/random.h"

namespace enclavia::crypto {
namespace {

bool AllZero(ByteSpan data) {
  return std::all_of(data.begin(), data.end(), [](uint8_t b) { return b == 0; });
}

TEST(SecretTest, MoveConstructionLeavesSourceZeroed) {
  Secret<32> a;
  std::fill(a.MutableBytes().begin(), a.MutableBytes().end(), 0xaa);
  Secret<32> b(std::move(a));
  // Reading a moved-from Secret is exactly what this test is about.
  EXPECT_TRUE(
      AllZero(a.Expose()));  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_TRUE(
      std::all_of(b.Expose().begin(), b.Expose().end(), [](uint8_t x) { return x == 0xaa; }));
}

TEST(SecretTest, MoveAssignmentLeavesSourceZeroed) {
  Secret<16> a;
  Secret<16> b;
  std::fill(a.MutableBytes().begin(), a.MutableBytes().end(), 0x5c);
  b = std::move(a);
  EXPECT_TRUE(
      AllZero(a.Expose()));  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_EQ(b.Expose()[15], 0x5c);
}

TEST(SecretTest, SecretBytesKeepsContentsAcrossMoves) {
  const Bytes data = {1, 2, 3, 4};
  SecretBytes a(data);
  SecretBytes b(std::move(a));
  EXPECT_EQ(ToBytes(b.Expose()), data);
  EXPECT_EQ(b.size(), 4U);
  EXPECT_FALSE(b.empty());
  EXPECT_TRUE(SecretBytes().empty());
}

TEST(SecretTest, CleanseZeroesBuffer) {
  std::array<uint8_t, 64> buf{};
  buf.fill(0xff);
  Cleanse(buf.data(), buf.size());
  EXPECT_TRUE(AllZero(buf));
  Cleanse(nullptr, 0);  // Allowed no-op.
}

TEST(ConstantTimeEqualTest, ComparesContentsAndLengths) {
  const Bytes a = {1, 2, 3};
  const Bytes b = {1, 2, 3};
  const Bytes c = {1, 2, 4};
  const Bytes d = {1, 2};
  EXPECT_TRUE(ConstantTimeEqual(a, b));
  EXPECT_FALSE(ConstantTimeEqual(a, c));
  EXPECT_FALSE(ConstantTimeEqual(a, d));
  EXPECT_FALSE(ConstantTimeEqual(d, a));
  EXPECT_TRUE(ConstantTimeEqual({}, {}));
  EXPECT_FALSE(ConstantTimeEqual(a, {}));
}

TEST(RandomTest, InitIsIdempotent) {
  ASSERT_TRUE(Init().has_value());
  ASSERT_TRUE(Init().has_value());
}

TEST(RandomTest, RandomBytesHaveRequestedSizeAndDiffer) {
  ASSERT_TRUE(Init().has_value());
  const Bytes a = RandomBytes(32);
  const Bytes b = RandomBytes(32);
  EXPECT_EQ(a.size(), 32U);
  EXPECT_NE(a, b);
  EXPECT_TRUE(RandomBytes(0).empty());
  std::array<uint8_t, 32> buf{};
  RandomFill(buf);
  EXPECT_FALSE(AllZero(buf));
}

}  // namespace
}  // namespace enclavia::crypto
