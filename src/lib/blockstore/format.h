// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BLOCKSTORE_FORMAT_H_
#define ENCLAVIA_LIB_BLOCKSTORE_FORMAT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/aead.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/secret.h"
#include "lib/kms/key_ring.h"
#include "lib/storage/freshness.h"
#include "lib/storage/object_store.h"

// The byte layouts of an Enclavia volume on the host (docs/formats/volume.md): key derivation,
// sealed blocks and map pages, segment objects, superblocks and recovery statements. Volume
// (volume.h) is the engine; this header is the format, shared with the fuzz target, the
// benchmark and the tests. Everything that parses host bytes here is bounded and returns an
// Error for anything malformed; nothing here does I/O except LocateSuperblock.
namespace enclavia::blockstore {

using VolumeId = std::array<uint8_t, storage::kVolumeIdSize>;

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kBlockSize = 4096;
// kSealedBlockSize is a data block or a leaf page after sealing (ciphertext || tag).
inline constexpr size_t kSealedBlockSize = kBlockSize + crypto::kAeadTagSize;
inline constexpr size_t kPointerSize = 32;
inline constexpr size_t kChildRefSize = 64;
// kLeafFanout data-block pointers fill one 4 KiB leaf page.
inline constexpr uint32_t kLeafFanout = kBlockSize / kPointerSize;
// Interior pages hold `arity` child references (pointer || SHA-256 of the sealed child).
inline constexpr uint32_t kMinArity = 2;
inline constexpr uint32_t kMaxArity = kBlockSize / kChildRefSize;
inline constexpr uint32_t kDefaultArity = 64;
inline constexpr size_t kSegmentHeaderSize = 64;
inline constexpr size_t kSuperblockHeaderSize = 64;
inline constexpr size_t kSignatureSize = 64;
// kMaxVolumeSize caps a volume at 16 TiB (2^32 blocks).
inline constexpr uint64_t kMaxVolumeSize = uint64_t{1} << 44;
inline constexpr size_t kMaxSnapshots = 64;
inline constexpr size_t kMaxSnapshotNameSize = 64;
inline constexpr uint32_t kAeadAes256Gcm = 1;

// VolumeIdFor is the first 16 bytes of SHA-256("enclavia/volume-id/v1" || label).
VolumeId VolumeIdFor(std::string_view label);

// SegmentName is "seg/" and the sequence number as 16 lowercase hex digits.
std::string SegmentName(uint64_t seq);
// ParseSegmentName inverts SegmentName; nullopt for any other name.
std::optional<uint64_t> ParseSegmentName(std::string_view name);

// VolumeKeys holds the keys derived from the volume's key ring (lib/kms/key_ring.h; HKDF-SHA256,
// length-prefixed and domain-separated inputs): the Ed25519 signing key (one per volume, whatever
// the epoch, because witnesses pin it: always from the ring's FIRST secret), the data key of each
// epoch (blocks, pages, summaries; counter nonces) and the superblock key of each epoch (random
// nonces). The keys of epoch e come from the ring entry that covers e: the last one whose
// first_epoch <= e (the first entry for epochs before it); an unassigned entry covers nothing
// until AssignEpoch. A one-entry ring at epoch 0 derives exactly what the bare volume key did
// before rings existed. Move-only; not thread-safe (it caches the epoch keys it derived).
class VolumeKeys {
 public:
  // Derive copies what it needs of `volume_key` (32 bytes, else kInvalidArgument): a ring of one
  // entry at epoch 0.
  static Result<VolumeKeys> Derive(const crypto::SecretBytes& volume_key,
                                   const VolumeId& volume_id);
  // Derive copies `ring` (kInvalidArgument for an empty ring, a secret that is not 32 bytes,
  // first epochs that do not ascend, or an unassigned entry that is not the last or is the first).
  static Result<VolumeKeys> Derive(const kms::KeyRing& ring, const VolumeId& volume_id);

  // has_unassigned says the ring's last secret has no epoch yet (an upgrade appended it).
  bool has_unassigned() const;
  // last_assigned_epoch is the highest first_epoch of an assigned entry.
  uint64_t last_assigned_epoch() const;
  // AssignEpoch gives the unassigned secret `epoch` (above last_assigned_epoch, below 2^32), so
  // that epoch and later ones are keyed by it; keys derived earlier for those epochs are dropped.
  // kFailedPrecondition when nothing is unassigned, kInvalidArgument for such an epoch.
  Result<void> AssignEpoch(uint64_t epoch);
  // ring returns a copy of the ring (to be wrapped by the KMS again after AssignEpoch).
  kms::KeyRing ring() const;

  VolumeKeys(VolumeKeys&&) noexcept = default;
  VolumeKeys& operator=(VolumeKeys&&) noexcept = default;

  const VolumeId& volume_id() const { return volume_id_; }
  const crypto::PrivateKey& signing_key() const { return signing_key_; }
  const std::array<uint8_t, 32>& public_key() const { return public_key_; }
  // DataKey returns the data key of `epoch` (derived on first use).
  Result<const crypto::AeadKey*> DataKey(uint64_t epoch);
  // SuperblockKey returns the superblock key of `epoch`.
  Result<const crypto::AeadKey*> SuperblockKey(uint64_t epoch);

 private:
  VolumeKeys(kms::KeyRing ring, const VolumeId& volume_id, crypto::PrivateKey signing_key);
  // SecretFor returns the ring secret that covers `epoch`.
  const crypto::SecretBytes& SecretFor(uint64_t epoch) const;
  kms::KeyRing ring_;
  VolumeId volume_id_;
  crypto::PrivateKey signing_key_;
  std::array<uint8_t, 32> public_key_{};
  std::map<uint64_t, std::unique_ptr<crypto::AeadKey>> data_keys_;
  std::map<uint64_t, std::unique_ptr<crypto::AeadKey>> superblock_keys_;
};

// Pointer locates one sealed unit (a data block or a map page): segment, byte offset in it, and
// how it was sealed (epoch key, nonce = tag || counter). seq == 0 is the zero pointer (an empty
// or trimmed block, a page whose subtree is empty).
struct Pointer {
  uint64_t seq = 0;
  uint32_t offset = 0;
  uint32_t epoch = 0;
  uint64_t counter = 0;
  uint32_t tag = 0;

  bool present() const { return seq != 0; }
  bool SameUnit(const Pointer& o) const { return seq == o.seq && offset == o.offset; }
};
void EncodePointer(const Pointer& p, std::span<uint8_t, kPointerSize> out);
Pointer DecodePointer(std::span<const uint8_t, kPointerSize> in);

// ChildRef is a pointer to a map page and the SHA-256 of its sealed bytes.
struct ChildRef {
  Pointer ptr;
  crypto::Sha256Digest hash{};
};
void EncodeChildRef(const ChildRef& c, std::span<uint8_t, kChildRefSize> out);
ChildRef DecodeChildRef(std::span<const uint8_t, kChildRefSize> in);

// Nonce is tag (u32 BE) || counter (u64 BE).
std::array<uint8_t, crypto::kAeadNonceSize> Nonce(uint32_t tag, uint64_t counter);
// BlockAd, PageAd and SummaryAd are the associated data of each kind of sealed unit.
Bytes BlockAd(const VolumeId& id, uint64_t index, uint64_t epoch, uint64_t counter);
Bytes PageAd(const VolumeId& id, uint32_t level, uint64_t index, uint64_t epoch, uint64_t counter);
Bytes SummaryAd(const VolumeId& id, uint64_t seq, uint64_t epoch, uint64_t counter);

// InteriorPageSize is the plaintext size of an interior page (arity child refs).
inline size_t InteriorPageSize(uint32_t arity) { return size_t{arity} * kChildRefSize; }
// PagePlainSize is the plaintext size of a page at `level` (0 = leaves).
inline size_t PagePlainSize(uint32_t level, uint32_t arity) {
  return level == 0 ? kBlockSize : InteriorPageSize(arity);
}

// OpenPage checks a sealed page against `ref` (hash, then AEAD) and returns its plaintext;
// kVerifyFailed for any mismatch.
Result<crypto::SecretBytes> OpenPage(VolumeKeys& keys, const ChildRef& ref, uint32_t level,
                                     uint64_t index, uint32_t arity, ByteSpan sealed);

// Segment objects: a 64-byte cleartext header (a locator; everything it points at authenticates
// itself), the sealed units, the sealed summary, then the superblock record of a commit segment
// (none in a staging segment).
struct SegmentHeader {
  uint64_t seq = 0;
  uint32_t epoch = 0;
  uint32_t flags = 0;  // kSegmentCommitted when a superblock follows the summary.
  uint32_t summary_tag = 0;
  uint64_t summary_counter = 0;
  uint32_t summary_offset = 0;
  uint32_t summary_length = 0;
  uint32_t superblock_offset = 0;
  uint32_t superblock_length = 0;

  bool committed() const { return (flags & kCommitted) != 0; }
  uint64_t total_size() const { return uint64_t{superblock_offset} + superblock_length; }
  static constexpr uint32_t kCommitted = 1;
};
std::array<uint8_t, kSegmentHeaderSize> EncodeSegmentHeader(const SegmentHeader& h);
// ParseSegmentHeader checks the magic, the format version and that the regions are in order.
Result<SegmentHeader> ParseSegmentHeader(ByteSpan bytes);

// Summary lists the units of one segment (what garbage collection needs to find live units).
// It is sealed with the data key of the segment's epoch, bound to the segment's sequence number.
enum class UnitKind : uint8_t { kData = 1, kPage = 2 };
struct SummaryEntry {
  UnitKind kind = UnitKind::kData;
  uint8_t level = 0;
  uint32_t offset = 0;
  uint32_t length = 0;
  uint64_t index = 0;
  uint64_t counter = 0;
};
struct Summary {
  uint64_t seq = 0;
  uint32_t epoch = 0;
  uint32_t tag = 0;
  std::vector<SummaryEntry> units;
};
Bytes EncodeSummary(const Summary& s);
Result<Summary> DecodeSummary(ByteSpan plain);
// OpenSummary authenticates and parses the summary that `header` locates in `sealed`.
Result<Summary> OpenSummary(VolumeKeys& keys, const SegmentHeader& header, ByteSpan sealed);

// The superblock: what a commit makes durable.
struct SegmentInfo {
  uint64_t seq = 0;
  uint64_t total_bytes = 0;
  uint64_t live_bytes = 0;
};
struct SnapshotRecord {
  std::string name;
  uint64_t version = 0;
  uint64_t epoch = 0;
  uint32_t depth = 0;
  ChildRef root;
  std::vector<uint64_t> pinned;  // Segments this snapshot keeps alive.
};
struct Superblock {
  VolumeId volume_id{};
  uint64_t epoch = 0;
  uint64_t version = 0;
  uint64_t size_bytes = 0;
  uint32_t aead = kAeadAes256Gcm;
  uint32_t arity = kDefaultArity;
  uint32_t depth = 0;  // Level of the root page (0: the root is the only leaf page).
  ChildRef root;
  uint64_t reserved_until = 0;  // Counters below this are reserved (see the doc).
  uint32_t witness_count = 0;
  std::vector<SegmentInfo> segments;
  std::vector<SnapshotRecord> snapshots;
};
Bytes EncodeSuperblockBody(const Superblock& sb);
// DecodeSuperblockBody fills the body fields of `sb` (not volume_id/epoch/version).
Result<void> DecodeSuperblockBody(ByteSpan plain, Superblock& sb);
// SealSuperblock returns the superblock record: header || sealed body || Ed25519 signature.
Result<Bytes> SealSuperblock(const Superblock& sb, VolumeKeys& keys);
// OpenSuperblock verifies the signature with the volume's key, decrypts and parses a record;
// kVerifyFailed for anything that does not verify, kMalformed for bad framing.
Result<Superblock> OpenSuperblock(ByteSpan record, VolumeKeys& keys);

// SuperblockHeader is the cleartext part of a record (unverified: anyone can read it).
struct SuperblockHeader {
  VolumeId volume_id{};
  uint64_t epoch = 0;
  uint64_t version = 0;
};
Result<SuperblockHeader> ParseSuperblockHeader(ByteSpan record);

// StoredSuperblock is a superblock record as the store serves it (unverified), with its hash
// (what witnesses and recovery statements name).
struct StoredSuperblock {
  SuperblockHeader header;
  crypto::Sha256Digest hash{};
  Bytes record;
};
// LocateSuperblock reads the superblock record of segment `seq` (two GetRange calls). It needs no
// key, so the host side (enclavia storage recover) can name a version and hash to the owner.
// kNotFound for no segment, kMalformed for a staging segment or bad framing.
Result<StoredSuperblock> LocateSuperblock(storage::ObjectStore& store, uint64_t seq);

// Recovery: after every witness lost its state, the owner signs which stored superblock to mount.
// Statement = LP("enclavia/recover/v1") LP(volume_id) LP(version u64 BE) LP(superblock_hash)
// LP(signature over the preceding bytes), LP = u32 BE length prefix.
struct RecoveryStatement {
  VolumeId volume_id{};
  uint64_t version = 0;
  crypto::Sha256Digest superblock_hash{};
};
// MakeRecoveryStatement signs with the owner's Ed25519 control key (kInvalidArgument otherwise).
Result<Bytes> MakeRecoveryStatement(const crypto::PrivateKey& owner, const RecoveryStatement& s);
// ParseRecoveryStatement checks the framing and the signature against `owner`.
Result<RecoveryStatement> ParseRecoveryStatement(ByteSpan statement,
                                                 const crypto::PublicKey& owner);

}  // namespace enclavia::blockstore

#endif  // ENCLAVIA_LIB_BLOCKSTORE_FORMAT_H_
