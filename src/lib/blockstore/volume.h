// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BLOCKSTORE_VOLUME_H_
#define ENCLAVIA_LIB_BLOCKSTORE_VOLUME_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/blockstore/format.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/secret.h"
#include "lib/kms/key_ring.h"
#include "lib/storage/block_device.h"
#include "lib/storage/freshness.h"
#include "lib/storage/object_store.h"

// The volume engine (docs/formats/volume.md): an encrypted, Merkle-authenticated,
// rollback-protected block device kept by an untrusted host as immutable segment objects.
namespace enclavia::blockstore {

struct VolumeOptions {
  // label is the host-given volume name (e.g. the enclave name); it determines the volume id.
  std::string label;
  // size_bytes is the size of a new volume: a multiple of 4096, > 0, at most 16 TiB. For an
  // existing volume 0 or its size.
  uint64_t size_bytes = 0;
  // store (untrusted) and freshness (the witnesses; count() may be 0) must outlive the Volume.
  storage::ObjectStore* store = nullptr;
  storage::Freshness* freshness = nullptr;
  // volume_key is the 32-byte data key from KMS; Mount copies what it derives from it. Or, in its
  // place, key_ring: the volume's key ring (lib/kms/key_ring.h) as KMS unwrapped it; exactly one
  // of the two is set.
  const crypto::SecretBytes* volume_key = nullptr;
  const kms::KeyRing* key_ring = nullptr;
  // store_key_ring is required when key_ring's last secret is unassigned (the first mount after
  // an upgrade): Mount gives that secret the next epoch, calls store_key_ring with the updated
  // ring (to wrap it with KMS and store it where the next boot finds it) and only then writes
  // anything under the new epoch; a failure fails the mount and nothing was sealed with the new
  // secret. A later mount whose ring names an epoch beyond the stored head (a crash after
  // store_key_ring) starts at that epoch.
  std::function<Result<void>(const kms::KeyRing&)> store_key_ring;
  // recovery_key is the owner's Ed25519 control key (from the measured enclave config); a
  // recovery_statement the host passed along (MakeRecoveryStatement) lets Mount accept a stored
  // version that no witness knows.
  std::optional<crypto::PublicKey> recovery_key;
  std::optional<Bytes> recovery_statement;

  // Tunables. cache_bytes bounds the clean map pages kept in memory; segment_target_bytes is the
  // size at which a segment is closed and another begun; dirty_limit_bytes bounds the written
  // blocks buffered between flushes (over it they go to a staging segment).
  size_t cache_bytes = 64u << 20;
  size_t segment_target_bytes = 8u << 20;
  size_t dirty_limit_bytes = 32u << 20;
  // merkle_arity is the fan-out of interior map pages for a new volume (2..64).
  uint32_t merkle_arity = kDefaultArity;
  // counter_reservation is how many nonce counters one reservation commit sets aside.
  uint64_t counter_reservation = uint64_t{1} << 32;
  // gc_live_percent: a segment whose live bytes are below this share of its size is compacted.
  uint32_t gc_live_percent = 50;
};

struct SnapshotInfo {
  std::string name;
  uint64_t version = 0;
  uint64_t epoch = 0;
};

// Volume is a storage::BlockDevice over an ObjectStore. Every read is verified up to the root of
// the committed superblock; a block that does not verify is an Error for that read only
// (kVerifyFailed, or kNotFound for a missing segment). Flush writes one segment and then commits
// its superblock to the witnesses. After a failed commit the volume refuses further writes
// (kFailedPrecondition; remount). Thread-safe: one mutex serializes every call.
class Volume : public storage::BlockDevice {
 public:
  // Mount opens the volume named by options.label: formats it when neither the store nor a
  // majority of witnesses knows it; otherwise opens the newest superblock, refusing rollback
  // (kPolicyViolation naming both versions) and a volume the witnesses do not know without an
  // owner-signed recovery (kFailedPrecondition). Mount commits a superblock (reserving nonce
  // counters) before it returns.
  static Result<std::unique_ptr<Volume>> Mount(const VolumeOptions& options);

  // Token makes the constructor usable only by Mount (through std::make_unique).
  class Token {
   private:
    Token() = default;
    friend class Volume;
  };
  Volume(Token token, const VolumeOptions& options, VolumeKeys keys);

  struct Status {
    std::string volume_id;  // Hex.
    uint64_t epoch = 0;
    uint64_t version = 0;  // Last committed version.
    uint64_t size_bytes = 0;
    size_t segments = 0;
    uint64_t stored_bytes = 0;
    uint64_t live_bytes = 0;
    size_t witnesses = 0;
    bool created_now = false;
    std::string state;  // "protected (N witnesses)", "unprotected", or "failed: ...".
  };
  Status status() const;

  // Snapshot flushes, then pins the committed version under `name` ([a-z0-9._-]{1,64}):
  // its segments are never collected while the snapshot exists. kAlreadyExists for a taken name.
  Result<void> Snapshot(const std::string& name);
  Result<std::vector<SnapshotInfo>> Snapshots();
  // DeleteSnapshot drops the pin (kNotFound for no such snapshot) and commits.
  Result<void> DeleteSnapshot(const std::string& name);
  // CollectGarbage rewrites the live units of mostly-dead segments into a new segment, commits,
  // then deletes segments nothing references. Flush runs it when dead bytes pile up.
  Result<void> CollectGarbage();

  uint64_t size() const override;
  Result<void> Read(uint64_t offset, std::span<uint8_t> out) override;
  Result<void> Write(uint64_t offset, ByteSpan data, bool fua) override;
  Result<void> Trim(uint64_t offset, uint64_t length, bool fua) override;
  Result<void> WriteZeroes(uint64_t offset, uint64_t length, bool fua) override;
  Result<void> Flush() override;

 private:
  class SegmentWriter;
  struct Page {
    Bytes plain;
    bool dirty = false;
    std::list<uint64_t>::iterator lru;
  };

  Result<void> MountLocked();
  Result<void> LoadHead(const Superblock& head);
  Result<void> FormatNew();
  void SetGeometry();
  Superblock WorkingSuperblock() const;
  Result<void> CommitRecordFor(const Superblock& sb, ByteSpan record);
  Result<void> ReserveLocked(uint64_t needed);
  Result<void> CommitLocked(bool force);
  Result<void> CommitWorking(SegmentWriter& writer);
  Result<void> ApplyDirtyBlocks(SegmentWriter& writer);
  Result<void> SpillLocked();
  Result<void> CollectLocked();
  void Sweep();
  Result<void> MaybeCollect();
  Result<void> CheckUsable() const;
  Result<void> Fail(Error error);
  Result<void> CheckRange(uint64_t offset, uint64_t length) const;
  Result<uint64_t> ZeroBlocksToSkip(uint64_t index, uint64_t count);
  Result<void> ZeroRangeLocked(uint64_t offset, uint64_t length, bool fua);
  Result<void> AfterWrite(bool fua);

  Result<uint64_t> NextCounter();
  Result<Page*> LoadPage(uint32_t level, uint64_t index);
  Result<ChildRef> RefOf(uint32_t level, uint64_t index);
  void MarkDirty(uint32_t level, uint64_t index, Page& page);
  void EvictIfNeeded();
  Result<Bytes> ReadBlockLocked(uint64_t index);
  Result<Bytes> FetchUnit(const Pointer& p, size_t length);
  void AddLive(uint64_t seq, uint64_t bytes);
  void ReleaseLive(const Pointer& p, uint64_t bytes);
  size_t UnitSize(uint32_t level) const;
  std::set<uint64_t> PinnedSegments() const;
  void SetDirtyBlock(uint64_t index, std::optional<Bytes> block);

  static uint64_t PageKey(uint32_t level, uint64_t index) {
    return (uint64_t{level} << 56) | index;
  }

  const VolumeOptions options_;
  mutable std::mutex mu_;
  VolumeKeys keys_;
  storage::ObjectStore* store_;
  storage::Freshness* freshness_;

  // committed_ is the last committed superblock; the fields below are the working state.
  Superblock committed_;
  Bytes committed_record_;
  uint64_t epoch_ = 0;
  uint64_t size_bytes_ = 0;
  uint32_t arity_ = kDefaultArity;
  std::vector<uint64_t> level_counts_;  // Pages per level; the last level has one (the root).
  ChildRef root_;
  std::map<uint64_t, SegmentInfo> segments_;
  std::vector<SnapshotRecord> snapshots_;
  bool meta_dirty_ = false;
  uint64_t next_seq_ = 1;
  uint64_t counter_next_ = 0;
  uint64_t reserved_until_ = 0;
  uint32_t tag_ = 0;
  bool created_now_ = false;
  std::optional<Error> failed_;

  std::unordered_map<uint64_t, Page> pages_;
  std::list<uint64_t> lru_;  // Clean pages, least recently used first.
  size_t clean_page_bytes_ = 0;
  std::set<uint64_t> dirty_pages_;  // PageKeys, so ascending order is bottom-up.
  std::map<uint64_t, std::optional<Bytes>> dirty_blocks_;  // nullopt: reads as zeros.
  size_t dirty_bytes_ = 0;
};

}  // namespace enclavia::blockstore

#endif  // ENCLAVIA_LIB_BLOCKSTORE_VOLUME_H_
