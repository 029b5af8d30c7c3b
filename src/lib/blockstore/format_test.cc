// SPDX-License-Identifier: Apache-2.0
#include "lib/blockstore/format.h"

#include <gtest/gtest.h>

#include "lib/base/encoding.h"

namespace enclavia::blockstore {
namespace {

crypto::SecretBytes TestKey(uint8_t fill) { return crypto::SecretBytes(Bytes(32, fill)); }

TEST(FormatTest, VolumeIdIsTruncatedSha256OfLabel) {
  crypto::Sha256Digest d = crypto::Sha256(AsBytes("enclavia/volume-id/v1web"));
  VolumeId id = VolumeIdFor("web");
  EXPECT_EQ(HexEncode(id), HexEncode(ByteSpan(d.data(), 16)));
  EXPECT_NE(VolumeIdFor("web"), VolumeIdFor("web2"));
}

TEST(FormatTest, SegmentNamesRoundTripAndRejectOthers) {
  EXPECT_EQ(SegmentName(0x1a), "seg/000000000000001a");
  EXPECT_EQ(ParseSegmentName("seg/000000000000001a"), 0x1au);
  EXPECT_FALSE(ParseSegmentName("seg/000000000000001A").has_value());
  EXPECT_FALSE(ParseSegmentName("seg/1a").has_value());
  EXPECT_FALSE(ParseSegmentName("xyz/000000000000001a").has_value());
}

TEST(FormatTest, SigningKeyIsPerVolumeAndDataKeysArePerEpoch) {
  auto a = VolumeKeys::Derive(TestKey(1), VolumeIdFor("a"));
  auto a2 = VolumeKeys::Derive(TestKey(1), VolumeIdFor("a"));
  auto b = VolumeKeys::Derive(TestKey(1), VolumeIdFor("b"));
  ASSERT_TRUE(a && a2 && b);
  EXPECT_EQ(a->public_key(), a2->public_key());
  EXPECT_NE(a->public_key(), b->public_key());
  auto nonce = Nonce(7, 9);
  Bytes plain(64, 0x55);
  auto k1 = a->DataKey(1);
  auto k2 = a->DataKey(2);
  auto kb = b->DataKey(1);
  ASSERT_TRUE(k1 && k2 && kb);
  auto c1 = (*k1)->Seal(nonce, {}, plain);
  auto c2 = (*k2)->Seal(nonce, {}, plain);
  auto cb = (*kb)->Seal(nonce, {}, plain);
  ASSERT_TRUE(c1 && c2 && cb);
  EXPECT_NE(*c1, *c2);
  EXPECT_NE(*c1, *cb);
  EXPECT_FALSE((*k2)->Open(nonce, {}, *c1).has_value());
  EXPECT_FALSE(VolumeKeys::Derive(crypto::SecretBytes(Bytes(31, 1)), VolumeIdFor("a")));
}

Superblock SampleSuperblock(const VolumeId& id) {
  Superblock sb;
  sb.volume_id = id;
  sb.epoch = 3;
  sb.version = 42;
  sb.size_bytes = 1 << 20;
  sb.arity = 16;
  sb.depth = 1;
  sb.root.ptr = Pointer{.seq = 41, .offset = 64, .epoch = 3, .counter = 99, .tag = 5};
  sb.root.hash[0] = 0xab;
  sb.reserved_until = 1000;
  sb.witness_count = 3;
  sb.segments = {{.seq = 40, .total_bytes = 9000, .live_bytes = 4112},
                 {.seq = 42, .total_bytes = 500, .live_bytes = 0}};
  sb.snapshots.push_back(SnapshotRecord{
      .name = "daily", .version = 40, .epoch = 3, .depth = 1, .root = sb.root, .pinned = {40}});
  return sb;
}

TEST(FormatTest, SuperblockRoundTripsAndRejectsTampering) {
  auto keys = VolumeKeys::Derive(TestKey(2), VolumeIdFor("v"));
  ASSERT_TRUE(keys);
  Superblock sb = SampleSuperblock(keys->volume_id());
  auto record = SealSuperblock(sb, *keys);
  ASSERT_TRUE(record);
  auto opened = OpenSuperblock(*record, *keys);
  ASSERT_TRUE(opened) << opened.error().message();
  EXPECT_EQ(opened->version, 42u);
  EXPECT_EQ(opened->epoch, 3u);
  EXPECT_EQ(opened->root.ptr.counter, 99u);
  EXPECT_EQ(opened->root.hash, sb.root.hash);
  ASSERT_EQ(opened->segments.size(), 2u);
  EXPECT_EQ(opened->segments[0].live_bytes, 4112u);
  ASSERT_EQ(opened->snapshots.size(), 1u);
  EXPECT_EQ(opened->snapshots[0].name, "daily");
  EXPECT_EQ(opened->snapshots[0].pinned, std::vector<uint64_t>{40});

  for (size_t i : {size_t{0}, size_t{40}, size_t{70}, record->size() - 1}) {
    Bytes bad = *record;
    bad[i] ^= 1;
    EXPECT_FALSE(OpenSuperblock(bad, *keys).has_value()) << i;
  }
  auto other = VolumeKeys::Derive(TestKey(3), VolumeIdFor("v"));
  ASSERT_TRUE(other);
  auto wrong = OpenSuperblock(*record, *other);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Code::kVerifyFailed);
  EXPECT_FALSE(OpenSuperblock(ByteSpan(record->data(), record->size() - 1), *keys));
}

TEST(FormatTest, SegmentHeaderRejectsInconsistentRegions) {
  SegmentHeader h;
  h.seq = 5;
  h.epoch = 1;
  h.flags = SegmentHeader::kCommitted;
  h.summary_offset = 64 + 4112;
  h.summary_length = 100;
  h.superblock_offset = h.summary_offset + 100;
  h.superblock_length = 300;
  auto bytes = EncodeSegmentHeader(h);
  auto parsed = ParseSegmentHeader(bytes);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->total_size(), uint64_t{64 + 4112 + 100 + 300});
  h.superblock_offset += 1;
  EXPECT_FALSE(ParseSegmentHeader(EncodeSegmentHeader(h)));
  h.superblock_offset -= 1;
  h.superblock_length = 0;  // Committed but no superblock.
  EXPECT_FALSE(ParseSegmentHeader(EncodeSegmentHeader(h)));
  bytes[0] = 'X';
  EXPECT_FALSE(ParseSegmentHeader(bytes));
  EXPECT_FALSE(ParseSegmentHeader(ByteSpan(bytes.data(), 10)));
}

TEST(FormatTest, SummaryRoundTripsAndRejectsBadCounts) {
  Summary s{.seq = 9, .epoch = 2, .tag = 77, .units = {}};
  s.units.push_back({.kind = UnitKind::kPage,
                     .level = 1,
                     .offset = 64,
                     .length = 1040,
                     .index = 3,
                     .counter = 11});
  Bytes enc = EncodeSummary(s);
  auto dec = DecodeSummary(enc);
  ASSERT_TRUE(dec);
  ASSERT_EQ(dec->units.size(), 1u);
  EXPECT_EQ(dec->units[0].kind, UnitKind::kPage);
  EXPECT_EQ(dec->units[0].counter, 11u);
  enc.pop_back();
  EXPECT_FALSE(DecodeSummary(enc));
}

TEST(FormatTest, RecoveryStatementVerifiesOnlyWithTheOwnerKey) {
  auto owner = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519);
  auto other = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519);
  RecoveryStatement s{.volume_id = VolumeIdFor("x"), .version = 17, .superblock_hash = {}};
  s.superblock_hash[3] = 9;
  auto bytes = MakeRecoveryStatement(owner, s);
  ASSERT_TRUE(bytes);
  auto parsed = ParseRecoveryStatement(*bytes, owner.public_key());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->version, 17u);
  EXPECT_EQ(parsed->volume_id, s.volume_id);
  EXPECT_EQ(parsed->superblock_hash, s.superblock_hash);
  auto wrong = ParseRecoveryStatement(*bytes, other.public_key());
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Code::kVerifyFailed);
  Bytes bad = *bytes;
  bad[30] ^= 1;
  EXPECT_FALSE(ParseRecoveryStatement(bad, owner.public_key()));
  bad = *bytes;
  bad.push_back(0);
  EXPECT_FALSE(ParseRecoveryStatement(bad, owner.public_key()));
  auto ecdsa = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEcdsaP256Sha256);
  EXPECT_FALSE(MakeRecoveryStatement(ecdsa, s));
}

}  // namespace
}  // namespace enclavia::blockstore
