// SPDX-License-Identifier: Apache-2.0
// Feeds arbitrary bytes to every parser of host-controlled volume bytes (segment header, summary,
// superblock record, map page, recovery statement) under a fixed test key. None may crash; a
// superblock that opens must re-seal and open to the same version.
#include <cstdint>

#include "lib/blockstore/format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enclavia;
  using namespace enclavia::blockstore;
  static const crypto::SecretBytes kKey(Bytes(32, 0x5a));
  auto keys = VolumeKeys::Derive(kKey, VolumeIdFor("fuzz"));
  ENCLAVIA_CHECK(keys.has_value());
  ByteSpan in(data, size);
  if (auto h = ParseSegmentHeader(in); h && h->total_size() <= size) {
    (void)OpenSummary(*keys, *h, in.subspan(h->summary_offset, h->summary_length));
    if (auto sb = OpenSuperblock(in.subspan(h->superblock_offset, h->superblock_length), *keys)) {
      auto again = OpenSuperblock(SealSuperblock(*sb, *keys).value(), *keys);
      ENCLAVIA_CHECK(again && again->version == sb->version);
    }
  }
  (void)OpenSuperblock(in, *keys);
  (void)DecodeSummary(in);
  Superblock body;
  (void)DecodeSuperblockBody(in, body);
  ChildRef ref;
  ref.hash = crypto::Sha256(in);
  for (uint32_t level : {0u, 1u}) {
    (void)OpenPage(*keys, ref, level, 0, kDefaultArity, in);
  }
  auto owner = crypto::PublicKey::FromRaw(crypto::SignatureAlgorithm::kEd25519, Bytes(32, 0x11));
  if (owner) {
    (void)ParseRecoveryStatement(in, *owner);
  }
  return 0;
}
