// SPDX-License-Identifier: Apache-2.0
#include "lib/blockstore/volume.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "lib/base/encoding.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"

namespace enclavia::blockstore {
namespace {

constexpr uint64_t kLevelMask = (uint64_t{1} << 56) - 1;

std::string Num(uint64_t v) { return std::to_string(v); }

std::string BlockContext(uint64_t index) {
  std::string s("volume: block ");
  s.append(Num(index));
  return s;
}

bool AllZero(ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t c) { return c == 0; });
}

bool ValidSnapshotName(const std::string& name) {
  if (name.empty() || name.size() > kMaxSnapshotNameSize) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

std::span<uint8_t, kPointerSize> LeafSlot(Bytes& page, uint64_t slot) {
  return std::span<uint8_t, kPointerSize>(page.data() + slot * kPointerSize, kPointerSize);
}
std::span<uint8_t, kChildRefSize> ChildSlot(Bytes& page, uint64_t slot) {
  return std::span<uint8_t, kChildRefSize>(page.data() + slot * kChildRefSize, kChildRefSize);
}

}  // namespace

// SegmentWriter builds segments in memory and puts them: staging segments whenever the current
// one reaches segment_target_bytes, and finally the commit segment with the superblock.
class Volume::SegmentWriter {
 public:
  explicit SegmentWriter(Volume& volume) : v_(volume) {}

  uint64_t EnsureOpen() {
    if (!open_) {
      seq_ = v_.next_seq_++;
      body_.assign(kSegmentHeaderSize, 0);
      summary_ = Summary{
          .seq = seq_, .epoch = static_cast<uint32_t>(v_.epoch_), .tag = v_.tag_, .units = {}};
      v_.segments_[seq_] = SegmentInfo{.seq = seq_, .total_bytes = 0, .live_bytes = 0};
      open_ = true;
    }
    return seq_;
  }

  // Add appends one sealed unit and returns its pointer.
  Result<Pointer> Add(UnitKind kind, uint32_t level, uint64_t index, uint64_t counter,
                      ByteSpan sealed) {
    if (open_ && !summary_.units.empty() &&
        body_.size() + sealed.size() > v_.options_.segment_target_bytes) {
      RETURN_IF_ERROR(Close(nullptr, nullptr));
    }
    EnsureOpen();
    Pointer p{.seq = seq_,
              .offset = static_cast<uint32_t>(body_.size()),
              .epoch = static_cast<uint32_t>(v_.epoch_),
              .counter = counter,
              .tag = v_.tag_};
    summary_.units.push_back(SummaryEntry{.kind = kind,
                                          .level = static_cast<uint8_t>(level),
                                          .offset = p.offset,
                                          .length = static_cast<uint32_t>(sealed.size()),
                                          .index = index,
                                          .counter = counter});
    body_.insert(body_.end(), sealed.begin(), sealed.end());
    v_.AddLive(seq_, sealed.size());
    return p;
  }

  // Close seals the summary and puts the segment. With `sb` it is a commit segment: sb->version
  // becomes its sequence number, and sb->segments must list it (its size is filled in here).
  Result<void> Close(Superblock* sb, Bytes* record_out) {
    if (!open_) {
      if (sb == nullptr) {
        return Ok();
      }
      EnsureOpen();
    }
    SegmentHeader h;
    h.seq = seq_;
    h.epoch = static_cast<uint32_t>(v_.epoch_);
    h.summary_offset = static_cast<uint32_t>(body_.size());
    if (!summary_.units.empty()) {
      // A segment without units (a reservation or snapshot-table commit) has no summary, so it
      // needs no counter: a reservation is committed when the counters may be exhausted.
      ASSIGN_OR_RETURN(uint64_t counter, v_.NextCounter());
      ASSIGN_OR_RETURN(const crypto::AeadKey* key, v_.keys_.DataKey(v_.epoch_));
      ASSIGN_OR_RETURN(Bytes sealed,
                       key->Seal(Nonce(v_.tag_, counter),
                                 SummaryAd(v_.keys_.volume_id(), seq_, v_.epoch_, counter),
                                 EncodeSummary(summary_)));
      h.summary_tag = v_.tag_;
      h.summary_counter = counter;
      h.summary_length = static_cast<uint32_t>(sealed.size());
      body_.insert(body_.end(), sealed.begin(), sealed.end());
    }
    h.superblock_offset = static_cast<uint32_t>(body_.size());
    Bytes record;
    if (sb != nullptr) {
      h.flags = SegmentHeader::kCommitted;
      sb->version = seq_;
      auto self = std::find_if(sb->segments.begin(), sb->segments.end(),
                               [&](const SegmentInfo& s) { return s.seq == seq_; });
      ENCLAVIA_CHECK(self != sb->segments.end());
      // The table names this segment's own size, which includes the record: seal once to learn
      // the record's size (it does not depend on the numbers), then again with the total.
      ASSIGN_OR_RETURN(record, SealSuperblock(*sb, v_.keys_));
      self->total_bytes = body_.size() + record.size();
      const size_t first_size = record.size();
      ASSIGN_OR_RETURN(record, SealSuperblock(*sb, v_.keys_));
      ENCLAVIA_CHECK(record.size() == first_size);
      h.superblock_length = static_cast<uint32_t>(record.size());
      body_.insert(body_.end(), record.begin(), record.end());
    }
    if (body_.size() > storage::kMaxObjectSize) {
      return Error(Code::kLimitExceeded, "volume: segment over the object size limit");
    }
    auto header = EncodeSegmentHeader(h);
    std::memcpy(body_.data(), header.data(), header.size());
    v_.segments_[seq_].total_bytes = body_.size();
    open_ = false;
    RETURN_IF_ERROR(v_.store_->Put(SegmentName(seq_), body_));
    if (record_out != nullptr) {
      *record_out = std::move(record);
    }
    return Ok();
  }

 private:
  Volume& v_;
  bool open_ = false;
  uint64_t seq_ = 0;
  Bytes body_;
  Summary summary_;
};

Volume::Volume(Token /*token*/, const VolumeOptions& options, VolumeKeys keys)
    : options_(options),
      keys_(std::move(keys)),
      store_(options.store),
      freshness_(options.freshness) {}

Result<std::unique_ptr<Volume>> Volume::Mount(const VolumeOptions& options) {
  if (options.store == nullptr || options.freshness == nullptr ||
      (options.volume_key == nullptr) == (options.key_ring == nullptr) || options.label.empty()) {
    return Error(Code::kInvalidArgument,
                 "volume: store, freshness, a key (or a key ring) and label are required");
  }
  if (options.segment_target_bytes < 2 * kSealedBlockSize + kSegmentHeaderSize ||
      options.segment_target_bytes > storage::kMaxObjectSize / 2 ||
      options.counter_reservation < 16 || options.gc_live_percent > 100) {
    return Error(Code::kInvalidArgument, "volume: bad tunables");
  }
  const VolumeId id = VolumeIdFor(options.label);
  ASSIGN_OR_RETURN(VolumeKeys keys, options.key_ring != nullptr
                                        ? VolumeKeys::Derive(*options.key_ring, id)
                                        : VolumeKeys::Derive(*options.volume_key, id));
  if (keys.has_unassigned() && !options.store_key_ring) {
    return Error(Code::kInvalidArgument,
                 "volume: a key ring with an unassigned secret needs store_key_ring");
  }
  auto volume = std::make_unique<Volume>(Token(), options, std::move(keys));
  std::lock_guard lock(volume->mu_);
  RETURN_IF_ERROR(volume->MountLocked());
  return volume;
}

Result<void> Volume::MountLocked() {
  const std::string& label = options_.label;
  const VolumeId& id = keys_.volume_id();
  const bool witnessed = freshness_->count() > 0;

  std::optional<storage::CommitRecord> acked;
  if (witnessed) {
    auto latest = freshness_->Latest(id);
    if (!latest) {
      return std::move(latest).error().WithContext("volume " + label + ": witnesses");
    }
    acked = *latest;
    if (acked) {
      if (!VerifyCommitRecord(*acked) || acked->volume_id != id ||
          acked->volume_public_key != keys_.public_key()) {
        return Error(
            Code::kPolicyViolation,
            "volume " + label + ": the witnesses' record is not signed by this volume's key");
      }
    }
  }

  ASSIGN_OR_RETURN(std::vector<std::string> names, store_->List("seg/"));
  std::vector<uint64_t> seqs;
  for (const std::string& name : names) {
    if (auto seq = ParseSegmentName(name); seq && *seq != 0) {
      seqs.push_back(*seq);
    }
  }
  std::sort(seqs.begin(), seqs.end());
  const uint64_t max_seq = seqs.empty() ? 0 : seqs.back();

  // The newest superblock that verifies. Segments that do not (a torn Put, junk from the host)
  // are skipped; store failures are not, or an outage would look like a rollback.
  std::optional<Superblock> head;
  Bytes head_record;
  crypto::Sha256Digest head_hash{};
  for (auto it = seqs.rbegin(); it != seqs.rend(); ++it) {
    auto stored = LocateSuperblock(*store_, *it);
    if (!stored) {
      if (stored.error().code() == Code::kUnavailable || stored.error().code() == Code::kIo) {
        return std::move(stored).error().WithContext("volume " + label);
      }
      continue;
    }
    auto sb = OpenSuperblock(stored->record, keys_);
    if (!sb || sb->version != *it) {
      continue;
    }
    head = std::move(sb).value();
    head_record = std::move(stored->record);
    head_hash = stored->hash;
    break;
  }
  const uint64_t served = head ? head->version : 0;

  bool recovered = false;
  if (acked) {
    if (served < acked->version) {
      return Error(Code::kPolicyViolation,
                   "rollback: the host serves version " + Num(served) + " of volume " + label +
                       " but witnesses acknowledged version " + Num(acked->version));
    }
    if (served == acked->version && head_hash != acked->superblock_hash) {
      return Error(Code::kPolicyViolation,
                   "rollback: the host serves version " + Num(served) + " of volume " + label +
                       " but its superblock differs from the acknowledged one");
    }
  } else if (witnessed && head && !head->root.ptr.present() && head->snapshots.empty()) {
    // The witnesses never acknowledged this volume (its first commit was cut short) or lost it,
    // and the host serves a state without data. Mounting it is no weaker than formatting anew,
    // which a host that deletes every object gets anyway; the volume is reported as new.
    created_now_ = true;
  } else if (witnessed && head) {
    if (!options_.recovery_statement || !options_.recovery_key) {
      return Error(Code::kFailedPrecondition,
                   "witnesses have no record of volume " + label + " (the host serves version " +
                       Num(served) +
                       "): mount needs an owner-signed recovery (enclavia storage recover)");
    }
    auto statement = ParseRecoveryStatement(*options_.recovery_statement, *options_.recovery_key);
    if (!statement) {
      return std::move(statement).error().WithContext("volume " + label);
    }
    if (statement->volume_id != id) {
      return Error(Code::kPolicyViolation,
                   "volume " + label + ": the recovery statement names another volume");
    }
    auto stored = LocateSuperblock(*store_, statement->version);
    if (!stored || stored->hash != statement->superblock_hash) {
      return Error(Code::kPolicyViolation, "volume " + label +
                                               ": the host does not serve the superblock the "
                                               "recovery statement names (version " +
                                               Num(statement->version) + ")");
    }
    auto sb = OpenSuperblock(stored->record, keys_);
    if (!sb || sb->version != statement->version) {
      return Error(
          Code::kVerifyFailed,
          "volume " + label + ": the superblock the recovery statement names does not verify");
    }
    head = std::move(sb).value();
    recovered = true;
  }

  if (head) {
    if (!witnessed && head->witness_count > 0) {
      return Error(Code::kPolicyViolation,
                   "volume " + label + " is protected by " + Num(head->witness_count) +
                       " witnesses; mounting it without witnesses would allow rollback");
    }
    if (options_.size_bytes != 0 && options_.size_bytes != head->size_bytes) {
      return Error(Code::kFailedPrecondition, "volume " + label + " has " + Num(head->size_bytes) +
                                                  " bytes, not " + Num(options_.size_bytes));
    }
    RETURN_IF_ERROR(LoadHead(*head));
    if (recovered) {
      // A new epoch means new keys: whatever the lost witnesses' sessions sealed cannot collide
      // with what this one seals.
      epoch_ = head->epoch + 1;
    }
  } else {
    RETURN_IF_ERROR(FormatNew());
    created_now_ = true;
  }
  // The key ring (docs/formats/volume.md, "Key epochs"). A secret already assigned beyond the
  // head's epoch was stored by a mount that crashed before its first commit: continue there.
  epoch_ = std::max(epoch_, keys_.last_assigned_epoch());
  if (keys_.has_unassigned()) {
    // An upgrade's fresh secret: new writes go under a new epoch keyed by it, which the old image
    // never held. The ring naming that epoch is stored before anything is sealed under it.
    uint64_t next = (head && !recovered) ? epoch_ + 1 : epoch_;
    next = std::max(next, keys_.last_assigned_epoch() + 1);
    if (next >= (uint64_t{1} << 32)) {
      return Error(Code::kLimitExceeded, "volume " + label + ": epochs exhausted");
    }
    RETURN_IF_ERROR(keys_.AssignEpoch(next));
    if (auto stored = options_.store_key_ring(keys_.ring()); !stored) {
      return std::move(stored).error().WithContext("volume " + label + ": storing the key ring");
    }
    epoch_ = next;
  }
  if (epoch_ >= (uint64_t{1} << 32)) {
    return Error(Code::kLimitExceeded, "volume " + label + ": epochs exhausted");
  }
  next_seq_ = std::max(max_seq, served) + 1;
  std::array<uint8_t, 4> tag{};
  crypto::RandomFill(tag);
  tag_ = (uint32_t{tag[0]} << 24) | (uint32_t{tag[1]} << 16) | (uint32_t{tag[2]} << 8) | tag[3];

  RETURN_IF_ERROR(ReserveLocked(0));
  failed_.reset();

  // Segments the committed table does not name are leftovers: staging segments of a session that
  // crashed, superblocks newer than a recovered version, segments whose deletion was cut short.
  for (uint64_t seq : seqs) {
    if (segments_.count(seq) == 0) {
      (void)store_->Delete(SegmentName(seq));
    }
  }
  return Ok();
}

void Volume::SetGeometry() {
  level_counts_.clear();
  uint64_t count = (size_bytes_ / kBlockSize + kLeafFanout - 1) / kLeafFanout;
  level_counts_.push_back(count);
  while (count > 1) {
    count = (count + arity_ - 1) / arity_;
    level_counts_.push_back(count);
  }
}

Result<void> Volume::LoadHead(const Superblock& head) {
  size_bytes_ = head.size_bytes;
  arity_ = head.arity;
  SetGeometry();
  if (head.depth + 1 != level_counts_.size()) {
    return Error(Code::kMalformed, "volume " + options_.label + ": superblock depth mismatch");
  }
  epoch_ = head.epoch;
  root_ = head.root;
  segments_.clear();
  for (const SegmentInfo& s : head.segments) {
    segments_[s.seq] = s;
  }
  snapshots_ = head.snapshots;
  reserved_until_ = head.reserved_until;
  counter_next_ = head.reserved_until;
  committed_ = head;
  return Ok();
}

Result<void> Volume::FormatNew() {
  if (options_.size_bytes == 0 || options_.size_bytes % kBlockSize != 0 ||
      options_.size_bytes > kMaxVolumeSize) {
    return Error(Code::kInvalidArgument,
                 "volume " + options_.label + ": size must be a positive multiple of 4096");
  }
  if (options_.merkle_arity < kMinArity || options_.merkle_arity > kMaxArity) {
    return Error(Code::kInvalidArgument, "volume: merkle_arity must be 2..64");
  }
  size_bytes_ = options_.size_bytes;
  arity_ = options_.merkle_arity;
  SetGeometry();
  epoch_ = 1;
  root_ = ChildRef{};
  segments_.clear();
  snapshots_.clear();
  counter_next_ = 1;
  reserved_until_ = 1;
  committed_ = WorkingSuperblock();
  return Ok();
}

Superblock Volume::WorkingSuperblock() const {
  Superblock sb;
  sb.volume_id = keys_.volume_id();
  sb.epoch = epoch_;
  sb.version = committed_.version;
  sb.size_bytes = size_bytes_;
  sb.arity = arity_;
  sb.depth = static_cast<uint32_t>(level_counts_.size() - 1);
  sb.root = root_;
  sb.reserved_until = reserved_until_;
  sb.witness_count = static_cast<uint32_t>(freshness_->count());
  for (const auto& [seq, info] : segments_) {
    sb.segments.push_back(info);
  }
  sb.snapshots = snapshots_;
  return sb;
}

Result<void> Volume::CommitRecordFor(const Superblock& sb, ByteSpan record) {
  if (freshness_->count() == 0) {
    return Ok();
  }
  storage::CommitRecord r;
  r.volume_id = sb.volume_id;
  r.epoch = sb.epoch;
  r.version = sb.version;
  r.superblock_hash = crypto::Sha256(record);
  r.volume_public_key = keys_.public_key();
  ASSIGN_OR_RETURN(Bytes signature, keys_.signing_key().Sign(storage::CommitStatement(r)));
  ENCLAVIA_CHECK(signature.size() == r.signature.size());
  std::memcpy(r.signature.data(), signature.data(), signature.size());
  return freshness_->Commit(r);
}

// ReserveLocked commits a superblock that sets aside counters [counter_next_, new end) before
// any of them is used: the committed state plus the new reservation (and epoch).
Result<void> Volume::ReserveLocked(uint64_t needed) {
  auto until = CheckedAdd(counter_next_, std::max(options_.counter_reservation, needed));
  if (!until) {
    return Fail(Error(Code::kLimitExceeded, "volume: nonce counters exhausted"));
  }
  Superblock sb = committed_;
  sb.epoch = epoch_;
  sb.reserved_until = *until;
  sb.witness_count = static_cast<uint32_t>(freshness_->count());
  SegmentWriter writer(*this);
  const uint64_t seq = writer.EnsureOpen();
  sb.segments.push_back(SegmentInfo{.seq = seq, .total_bytes = 0, .live_bytes = 0});
  Bytes record;
  if (auto r = writer.Close(&sb, &record); !r) {
    return Fail(std::move(r).error());
  }
  if (auto r = CommitRecordFor(sb, record); !r) {
    return Fail(std::move(r).error());
  }
  committed_ = std::move(sb);
  committed_record_ = std::move(record);
  reserved_until_ = *until;
  return Ok();
}

Result<uint64_t> Volume::NextCounter() {
  if (counter_next_ >= reserved_until_) {
    return Error(Code::kInternal, "volume: nonce counter beyond its reservation");
  }
  return counter_next_++;
}

Result<void> Volume::CommitLocked(bool force) {
  RETURN_IF_ERROR(CheckUsable());
  if (dirty_blocks_.empty() && dirty_pages_.empty() && !meta_dirty_ && !force) {
    return Ok();
  }
  const uint64_t levels = level_counts_.size();
  const uint64_t units =
      dirty_blocks_.size() + (dirty_pages_.size() + dirty_blocks_.size()) * levels;
  const uint64_t needed = 2 * units + 4;
  if (counter_next_ + needed > reserved_until_) {
    RETURN_IF_ERROR(ReserveLocked(needed));
  }
  SegmentWriter writer(*this);
  if (auto r = CommitWorking(writer); !r) {
    return Fail(std::move(r).error());
  }
  Sweep();
  return Ok();
}

Result<void> Volume::CommitWorking(SegmentWriter& writer) {
  RETURN_IF_ERROR(ApplyDirtyBlocks(writer));
  const uint32_t top = static_cast<uint32_t>(level_counts_.size() - 1);
  ASSIGN_OR_RETURN(const crypto::AeadKey* key, keys_.DataKey(epoch_));
  // Ascending PageKeys are bottom-up: a page is sealed only after all its dirty children were
  // sealed and wrote their references into it.
  while (!dirty_pages_.empty()) {
    const uint64_t page_key = *dirty_pages_.begin();
    dirty_pages_.erase(dirty_pages_.begin());
    const auto level = static_cast<uint32_t>(page_key >> 56);
    const uint64_t index = page_key & kLevelMask;
    Page& page = pages_.at(page_key);
    ChildRef ref;  // An all-zero page (every block below trimmed) is stored as no page.
    if (!AllZero(page.plain)) {
      ASSIGN_OR_RETURN(uint64_t counter, NextCounter());
      ASSIGN_OR_RETURN(
          Bytes sealed,
          key->Seal(Nonce(tag_, counter), PageAd(keys_.volume_id(), level, index, epoch_, counter),
                    page.plain));
      ASSIGN_OR_RETURN(ref.ptr, writer.Add(UnitKind::kPage, level, index, counter, sealed));
      ref.hash = crypto::Sha256(sealed);
    }
    if (level == top) {
      ReleaseLive(root_.ptr, UnitSize(level));
      root_ = ref;
    } else {
      ASSIGN_OR_RETURN(Page * parent, LoadPage(level + 1, index / arity_));
      auto slot = ChildSlot(parent->plain, index % arity_);
      ReleaseLive(DecodeChildRef(slot).ptr, UnitSize(level));
      EncodeChildRef(ref, slot);
      MarkDirty(level + 1, index / arity_, *parent);
    }
    page.dirty = false;
    lru_.push_back(page_key);
    page.lru = std::prev(lru_.end());
    clean_page_bytes_ += page.plain.size();
  }
  writer.EnsureOpen();
  Superblock sb = WorkingSuperblock();
  Bytes record;
  RETURN_IF_ERROR(writer.Close(&sb, &record));
  // Put returned: the segment is durable. Only now ask the witnesses, and only once they acked
  // does Flush return (docs/formats/volume.md, "Commit").
  RETURN_IF_ERROR(CommitRecordFor(sb, record));
  meta_dirty_ = false;
  committed_ = std::move(sb);
  committed_record_ = std::move(record);
  return Ok();
}

Result<void> Volume::ApplyDirtyBlocks(SegmentWriter& writer) {
  ASSIGN_OR_RETURN(const crypto::AeadKey* key, keys_.DataKey(epoch_));
  for (auto& [index, block] : dirty_blocks_) {
    const uint64_t leaf_index = index / kLeafFanout;
    ASSIGN_OR_RETURN(Page * leaf, LoadPage(0, leaf_index));
    auto slot = LeafSlot(leaf->plain, index % kLeafFanout);
    ReleaseLive(DecodePointer(slot), kSealedBlockSize);
    Pointer ptr;
    if (block) {
      ASSIGN_OR_RETURN(uint64_t counter, NextCounter());
      ASSIGN_OR_RETURN(Bytes sealed,
                       key->Seal(Nonce(tag_, counter),
                                 BlockAd(keys_.volume_id(), index, epoch_, counter), *block));
      crypto::Cleanse(block->data(), block->size());
      ASSIGN_OR_RETURN(ptr, writer.Add(UnitKind::kData, 0, index, counter, sealed));
    }
    EncodePointer(ptr, slot);
    MarkDirty(0, leaf_index, *leaf);
  }
  dirty_blocks_.clear();
  dirty_bytes_ = 0;
  return Ok();
}

Result<void> Volume::SpillLocked() {
  RETURN_IF_ERROR(CheckUsable());
  const uint64_t needed = 2 * dirty_blocks_.size() + 4;
  if (counter_next_ + needed > reserved_until_) {
    RETURN_IF_ERROR(ReserveLocked(needed));
  }
  SegmentWriter writer(*this);
  auto r = ApplyDirtyBlocks(writer);
  if (r) {
    r = writer.Close(nullptr, nullptr);
  }
  if (!r) {
    return Fail(std::move(r).error());
  }
  return Ok();
}

std::set<uint64_t> Volume::PinnedSegments() const {
  std::set<uint64_t> pinned;
  for (const SnapshotRecord& s : snapshots_) {
    pinned.insert(s.pinned.begin(), s.pinned.end());
  }
  return pinned;
}

// Sweep runs right after a commit was acknowledged: segments nothing references any more (no
// live unit, not the head, not pinned by a snapshot) are deleted, and the next superblock stops
// listing them.
void Volume::Sweep() {
  const std::set<uint64_t> pinned = PinnedSegments();
  for (auto it = segments_.begin(); it != segments_.end();) {
    const uint64_t seq = it->first;
    if (it->second.live_bytes == 0 && seq != committed_.version && pinned.count(seq) == 0 &&
        store_->Delete(SegmentName(seq))) {
      std::erase_if(committed_.segments, [&](const SegmentInfo& s) { return s.seq == seq; });
      it = segments_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<void> Volume::MaybeCollect() {
  const std::set<uint64_t> pinned = PinnedSegments();
  uint64_t reclaimable = 0;
  for (const auto& [seq, info] : segments_) {
    if (seq != committed_.version && pinned.count(seq) == 0 && info.live_bytes > 0 &&
        info.live_bytes * 100 < info.total_bytes * options_.gc_live_percent) {
      reclaimable += info.total_bytes - info.live_bytes;
    }
  }
  if (reclaimable < options_.segment_target_bytes) {
    return Ok();
  }
  return CollectLocked();
}

Result<void> Volume::CollectLocked() {
  RETURN_IF_ERROR(CheckUsable());
  RETURN_IF_ERROR(CommitLocked(false));
  const std::set<uint64_t> pinned = PinnedSegments();
  std::vector<uint64_t> victims;
  for (const auto& [seq, info] : segments_) {
    if (seq != committed_.version && pinned.count(seq) == 0 && info.live_bytes > 0 &&
        info.live_bytes * 100 < info.total_bytes * options_.gc_live_percent) {
      victims.push_back(seq);
    }
  }
  const uint32_t top = static_cast<uint32_t>(level_counts_.size() - 1);
  size_t relocated = 0;
  for (uint64_t seq : victims) {
    if (relocated >= options_.dirty_limit_bytes) {
      break;
    }
    // A segment whose summary cannot be read keeps its live bytes, so it is never deleted.
    const std::string name = SegmentName(seq);
    auto head = store_->GetRange(name, 0, kSegmentHeaderSize);
    if (!head) {
      continue;
    }
    auto header = ParseSegmentHeader(*head);
    if (!header || header->seq != seq || header->summary_length == 0) {
      continue;
    }
    auto sealed = store_->GetRange(name, header->summary_offset, header->summary_length);
    if (!sealed) {
      continue;
    }
    auto summary = OpenSummary(keys_, *header, *sealed);
    if (!summary) {
      continue;
    }
    for (const SummaryEntry& unit : summary->units) {
      if (unit.kind == UnitKind::kData) {
        if (unit.index >= size_bytes_ / kBlockSize || dirty_blocks_.count(unit.index) != 0) {
          continue;
        }
        auto leaf = LoadPage(0, unit.index / kLeafFanout);
        if (!leaf) {
          continue;
        }
        Pointer p = DecodePointer(LeafSlot((*leaf)->plain, unit.index % kLeafFanout));
        if (p.seq != seq || p.offset != unit.offset) {
          continue;
        }
        auto block = ReadBlockLocked(unit.index);
        if (!block) {
          continue;
        }
        SetDirtyBlock(unit.index, std::move(block).value());
        relocated += kBlockSize;
      } else {
        if (unit.level > top || unit.index >= level_counts_[unit.level]) {
          continue;
        }
        auto ref = RefOf(unit.level, unit.index);
        if (!ref || ref->ptr.seq != seq || ref->ptr.offset != unit.offset) {
          continue;
        }
        auto page = LoadPage(unit.level, unit.index);
        if (!page) {
          continue;
        }
        MarkDirty(unit.level, unit.index, **page);
        relocated += (*page)->plain.size();
      }
    }
  }
  return CommitLocked(true);
}

Result<void> Volume::CheckUsable() const {
  if (failed_) {
    return Error(Code::kFailedPrecondition,
                 "volume " + options_.label + " failed (" + failed_->message() + "); remount it");
  }
  return Ok();
}

Result<void> Volume::Fail(Error error) {
  failed_ = error;
  return error;
}

Result<void> Volume::CheckRange(uint64_t offset, uint64_t length) const {
  if (offset > size_bytes_ || length > size_bytes_ - offset) {
    return Error(Code::kInvalidArgument, "volume: range past the end of the volume");
  }
  return Ok();
}

size_t Volume::UnitSize(uint32_t level) const {
  return PagePlainSize(level, arity_) + crypto::kAeadTagSize;
}

void Volume::AddLive(uint64_t seq, uint64_t bytes) {
  auto it = segments_.find(seq);
  if (it != segments_.end()) {
    it->second.live_bytes += bytes;
  }
}

void Volume::ReleaseLive(const Pointer& p, uint64_t bytes) {
  if (!p.present()) {
    return;
  }
  auto it = segments_.find(p.seq);
  if (it != segments_.end()) {
    it->second.live_bytes -= std::min(it->second.live_bytes, bytes);
  }
}

Result<ChildRef> Volume::RefOf(uint32_t level, uint64_t index) {
  const auto top = static_cast<uint32_t>(level_counts_.size() - 1);
  if (level == top) {
    return root_;
  }
  ASSIGN_OR_RETURN(Page * parent, LoadPage(level + 1, index / arity_));
  return DecodeChildRef(ChildSlot(parent->plain, index % arity_));
}

Result<Volume::Page*> Volume::LoadPage(uint32_t level, uint64_t index) {
  const uint64_t key = PageKey(level, index);
  if (auto it = pages_.find(key); it != pages_.end()) {
    if (!it->second.dirty) {
      lru_.splice(lru_.end(), lru_, it->second.lru);
    }
    return &it->second;
  }
  ASSIGN_OR_RETURN(ChildRef ref, RefOf(level, index));
  Page page;
  if (!ref.ptr.present()) {
    page.plain.assign(PagePlainSize(level, arity_), 0);
  } else {
    ASSIGN_OR_RETURN(Bytes sealed, FetchUnit(ref.ptr, UnitSize(level)));
    ASSIGN_OR_RETURN(crypto::SecretBytes plain, OpenPage(keys_, ref, level, index, arity_, sealed));
    page.plain = ToBytes(plain.Expose());
  }
  lru_.push_back(key);
  page.lru = std::prev(lru_.end());
  clean_page_bytes_ += page.plain.size();
  return &pages_.emplace(key, std::move(page)).first->second;
}

void Volume::MarkDirty(uint32_t level, uint64_t index, Page& page) {
  if (!page.dirty) {
    lru_.erase(page.lru);
    clean_page_bytes_ -= page.plain.size();
    page.dirty = true;
    dirty_pages_.insert(PageKey(level, index));
  }
}

// EvictIfNeeded drops least recently used clean pages. It runs only at the end of a public call,
// so no Page* held during an operation is invalidated.
void Volume::EvictIfNeeded() {
  while (clean_page_bytes_ > options_.cache_bytes && !lru_.empty()) {
    const uint64_t key = lru_.front();
    lru_.pop_front();
    auto it = pages_.find(key);
    clean_page_bytes_ -= it->second.plain.size();
    pages_.erase(it);
  }
}

Result<Bytes> Volume::FetchUnit(const Pointer& p, size_t length) {
  const std::string name = SegmentName(p.seq);
  auto r = store_->GetRange(name, p.offset, length);
  if (!r) {
    switch (r.error().code()) {
      case Code::kNotFound:
        return Error(Code::kNotFound, "volume: segment " + name + " is missing");
      case Code::kMalformed:
        return Error(Code::kVerifyFailed, "volume: segment " + name + " is truncated");
      default:
        return std::move(r).error();
    }
  }
  return std::move(r).value();
}

Result<Bytes> Volume::ReadBlockLocked(uint64_t index) {
  if (auto it = dirty_blocks_.find(index); it != dirty_blocks_.end()) {
    return it->second ? *it->second : Bytes(kBlockSize, 0);
  }
  auto leaf = LoadPage(0, index / kLeafFanout);
  if (!leaf) {
    return std::move(leaf).error().WithContext(BlockContext(index));
  }
  const Pointer p = DecodePointer(LeafSlot((*leaf)->plain, index % kLeafFanout));
  if (!p.present()) {
    return Bytes(kBlockSize, 0);
  }
  auto sealed = FetchUnit(p, kSealedBlockSize);
  if (!sealed) {
    return std::move(sealed).error().WithContext(BlockContext(index));
  }
  ASSIGN_OR_RETURN(const crypto::AeadKey* key, keys_.DataKey(p.epoch));
  auto plain = key->Open(Nonce(p.tag, p.counter),
                         BlockAd(keys_.volume_id(), index, p.epoch, p.counter), *sealed);
  if (!plain) {
    return Error(Code::kVerifyFailed, BlockContext(index) + " failed verification");
  }
  return ToBytes(plain->Expose());
}

void Volume::SetDirtyBlock(uint64_t index, std::optional<Bytes> block) {
  auto [it, inserted] = dirty_blocks_.try_emplace(index);
  if (!inserted && it->second) {
    dirty_bytes_ -= kBlockSize;
  }
  if (block && AllZero(*block)) {
    block.reset();
  }
  if (block) {
    dirty_bytes_ += kBlockSize;
  }
  it->second = std::move(block);
}

Result<void> Volume::AfterWrite(bool fua) {
  if (dirty_bytes_ > options_.dirty_limit_bytes) {
    RETURN_IF_ERROR(SpillLocked());
  }
  if (fua) {
    RETURN_IF_ERROR(CommitLocked(false));
    RETURN_IF_ERROR(MaybeCollect());
  }
  return Ok();
}

uint64_t Volume::size() const {
  std::lock_guard lock(mu_);
  return size_bytes_;
}

Result<void> Volume::Read(uint64_t offset, std::span<uint8_t> out) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(CheckRange(offset, out.size()));
  size_t done = 0;
  Result<void> result = Ok();
  while (done < out.size()) {
    const uint64_t pos = offset + done;
    const uint64_t index = pos / kBlockSize;
    const size_t in_block = pos % kBlockSize;
    const size_t n = std::min(kBlockSize - in_block, out.size() - done);
    auto block = ReadBlockLocked(index);
    if (!block) {
      result = std::move(block).error();
      break;
    }
    std::memcpy(out.data() + done, block->data() + in_block, n);
    done += n;
  }
  EvictIfNeeded();
  return result;
}

Result<void> Volume::Write(uint64_t offset, ByteSpan data, bool fua) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(CheckUsable());
  RETURN_IF_ERROR(CheckRange(offset, data.size()));
  size_t done = 0;
  Result<void> result = Ok();
  while (done < data.size()) {
    const uint64_t pos = offset + done;
    const uint64_t index = pos / kBlockSize;
    const size_t in_block = pos % kBlockSize;
    const size_t n = std::min(kBlockSize - in_block, data.size() - done);
    Bytes block;
    if (n == kBlockSize) {
      block.assign(data.begin() + static_cast<std::ptrdiff_t>(done),
                   data.begin() + static_cast<std::ptrdiff_t>(done + n));
    } else {
      auto old = ReadBlockLocked(index);
      if (!old) {
        result = std::move(old).error();
        break;
      }
      block = std::move(old).value();
      std::memcpy(block.data() + in_block, data.data() + done, n);
    }
    SetDirtyBlock(index, std::move(block));
    done += n;
  }
  if (result) {
    result = AfterWrite(fua);
  }
  EvictIfNeeded();
  return result;
}

// ZeroBlocksToSkip returns how many of the `count` blocks from `index` already read as zeros and
// need no entry: the rest of a leaf page that does not exist, or one block whose pointer is zero.
// mkfs discards the whole device; on a new volume this keeps that from writing zero pages.
Result<uint64_t> Volume::ZeroBlocksToSkip(uint64_t index, uint64_t count) {
  if (dirty_blocks_.count(index) != 0) {
    return 0;
  }
  const uint64_t leaf_index = index / kLeafFanout;
  const uint64_t leaf_end = (leaf_index + 1) * kLeafFanout;
  if (pages_.count(PageKey(0, leaf_index)) == 0) {
    ASSIGN_OR_RETURN(ChildRef ref, RefOf(0, leaf_index));
    if (!ref.ptr.present()) {
      auto next_dirty = dirty_blocks_.lower_bound(index);
      uint64_t end = std::min(leaf_end, index + count);
      if (next_dirty != dirty_blocks_.end()) {
        end = std::min(end, next_dirty->first);
      }
      return end - index;
    }
  }
  ASSIGN_OR_RETURN(Page * leaf, LoadPage(0, leaf_index));
  return DecodePointer(LeafSlot(leaf->plain, index % kLeafFanout)).present() ? 0 : 1;
}

Result<void> Volume::ZeroRangeLocked(uint64_t offset, uint64_t length, bool fua) {
  RETURN_IF_ERROR(CheckUsable());
  RETURN_IF_ERROR(CheckRange(offset, length));
  uint64_t done = 0;
  while (done < length) {
    const uint64_t pos = offset + done;
    const uint64_t index = pos / kBlockSize;
    const size_t in_block = pos % kBlockSize;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlockSize - in_block, length - done));
    if (n == kBlockSize) {
      ASSIGN_OR_RETURN(uint64_t skip, ZeroBlocksToSkip(index, (length - done) / kBlockSize));
      if (skip > 0) {
        done += skip * kBlockSize;
        continue;
      }
      SetDirtyBlock(index, std::nullopt);
    } else {
      ASSIGN_OR_RETURN(Bytes block, ReadBlockLocked(index));
      std::memset(block.data() + in_block, 0, n);
      SetDirtyBlock(index, std::move(block));
    }
    done += n;
    if (dirty_blocks_.size() * sizeof(Bytes) > options_.dirty_limit_bytes) {
      // Trimming a huge range buffers only entries; spill them like data.
      RETURN_IF_ERROR(SpillLocked());
    }
  }
  return AfterWrite(fua);
}

Result<void> Volume::Trim(uint64_t offset, uint64_t length, bool fua) {
  std::lock_guard lock(mu_);
  auto r = ZeroRangeLocked(offset, length, fua);
  EvictIfNeeded();
  return r;
}

Result<void> Volume::WriteZeroes(uint64_t offset, uint64_t length, bool fua) {
  std::lock_guard lock(mu_);
  auto r = ZeroRangeLocked(offset, length, fua);
  EvictIfNeeded();
  return r;
}

Result<void> Volume::Flush() {
  std::lock_guard lock(mu_);
  auto r = CommitLocked(false);
  if (r) {
    r = MaybeCollect();
  }
  EvictIfNeeded();
  return r;
}

Result<void> Volume::CollectGarbage() {
  std::lock_guard lock(mu_);
  auto r = CollectLocked();
  EvictIfNeeded();
  return r;
}

Result<void> Volume::Snapshot(const std::string& name) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(CheckUsable());
  if (!ValidSnapshotName(name)) {
    return Error(Code::kInvalidArgument, "volume: a snapshot name is 1-64 of [a-z0-9._-]");
  }
  for (const SnapshotRecord& s : snapshots_) {
    if (s.name == name) {
      return Error(Code::kAlreadyExists, "volume: snapshot " + name + " exists");
    }
  }
  if (snapshots_.size() >= kMaxSnapshots) {
    return Error(Code::kLimitExceeded, "volume: too many snapshots");
  }
  RETURN_IF_ERROR(CommitLocked(false));
  SnapshotRecord record;
  record.name = name;
  record.version = committed_.version;
  record.epoch = epoch_;
  record.depth = static_cast<uint32_t>(level_counts_.size() - 1);
  record.root = root_;
  for (const auto& [seq, info] : segments_) {
    record.pinned.push_back(seq);
  }
  snapshots_.push_back(std::move(record));
  meta_dirty_ = true;
  auto r = CommitLocked(false);
  EvictIfNeeded();
  return r;
}

Result<std::vector<SnapshotInfo>> Volume::Snapshots() {
  std::lock_guard lock(mu_);
  std::vector<SnapshotInfo> out;
  for (const SnapshotRecord& s : snapshots_) {
    out.push_back(SnapshotInfo{.name = s.name, .version = s.version, .epoch = s.epoch});
  }
  return out;
}

Result<void> Volume::DeleteSnapshot(const std::string& name) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(CheckUsable());
  auto it = std::find_if(snapshots_.begin(), snapshots_.end(),
                         [&](const SnapshotRecord& s) { return s.name == name; });
  if (it == snapshots_.end()) {
    return Error(Code::kNotFound, "volume: no snapshot " + name);
  }
  snapshots_.erase(it);
  meta_dirty_ = true;
  auto r = CommitLocked(false);
  EvictIfNeeded();
  return r;
}

Volume::Status Volume::status() const {
  std::lock_guard lock(mu_);
  Status s;
  s.volume_id = HexEncode(keys_.volume_id());
  s.epoch = epoch_;
  s.version = committed_.version;
  s.size_bytes = size_bytes_;
  s.segments = segments_.size();
  for (const auto& [seq, info] : segments_) {
    s.stored_bytes += info.total_bytes;
    s.live_bytes += info.live_bytes;
  }
  s.witnesses = freshness_->count();
  s.created_now = created_now_;
  if (failed_) {
    s.state = "failed: " + failed_->message();
  } else if (s.witnesses == 0) {
    s.state = "unprotected";
  } else {
    s.state = "protected (" + Num(s.witnesses) + " witnesses)";
  }
  return s;
}

}  // namespace enclavia::blockstore
