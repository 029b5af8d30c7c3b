// SPDX-License-Identifier: Apache-2.0
#include "lib/blockstore/format.h"

#include <cstring>
#include <utility>

#include "lib/base/encoding.h"
#include "lib/base/reader.h"
#include "lib/crypto/random.h"

namespace enclavia::blockstore {
namespace {

constexpr std::string_view kSegmentMagic = "ENCVSEG1";
constexpr std::string_view kSuperblockMagic = "ENCVSB01";
constexpr std::string_view kHkdfSalt = "enclavia/volume/v1";
constexpr std::string_view kSignKeyLabel = "enclavia/volume/sign-key/v1";
constexpr std::string_view kDataKeyLabel = "enclavia/volume/data-key/v1";
constexpr std::string_view kSuperblockKeyLabel = "enclavia/volume/superblock-key/v1";
constexpr std::string_view kSuperblockSigLabel = "enclavia/volume/superblock/v1";
constexpr std::string_view kRecoverLabel = "enclavia/recover/v1";

// Counts in a superblock are bounded so that a hostile body cannot make us allocate much.
constexpr uint32_t kMaxSegments = 1u << 22;
constexpr uint32_t kMaxPinned = 1u << 22;

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
  }
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
  }
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v = (v << 8) | p[i];
  }
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8) | p[i];
  }
  return v;
}

std::array<uint8_t, 8> U64Be(uint64_t v) {
  std::array<uint8_t, 8> out{};
  PutU64(out.data(), v);
  return out;
}

// Lp appends a u32 BE length prefix and the field: every HKDF info and signed statement is a
// sequence of these, so no two distinct field lists encode the same bytes.
void Lp(Writer& w, ByteSpan field) {
  w.WriteU32Be(static_cast<uint32_t>(field.size()));
  w.WriteBytes(field);
}

Result<std::unique_ptr<crypto::AeadKey>> DeriveAeadKey(const crypto::SecretBytes& volume_key,
                                                       std::string_view label, const VolumeId& id,
                                                       uint64_t epoch) {
  Writer info;
  Lp(info, AsBytes(label));
  Lp(info, id);
  Lp(info, U64Be(epoch));
  ASSIGN_OR_RETURN(crypto::SecretBytes okm,
                   crypto::Hkdf(crypto::HashAlgorithm::kSha256, volume_key.Expose(),
                                AsBytes(kHkdfSalt), info.bytes(), crypto::kAeadKeySize));
  ASSIGN_OR_RETURN(crypto::AeadKey key,
                   crypto::AeadKey::Create(crypto::AeadAlgorithm::kAes256Gcm, okm.Expose()));
  return std::make_unique<crypto::AeadKey>(std::move(key));
}

Bytes Ad(std::string_view domain, const VolumeId& id) {
  Bytes out;
  out.reserve(64);
  out.insert(out.end(), domain.begin(), domain.end());
  out.insert(out.end(), id.begin(), id.end());
  return out;
}
void AppendU64(Bytes& out, uint64_t v) {
  auto b = U64Be(v);
  out.insert(out.end(), b.begin(), b.end());
}

}  // namespace

VolumeId VolumeIdFor(std::string_view label) {
  Bytes input = ToBytes(std::string_view("enclavia/volume-id/v1"));
  input.insert(input.end(), label.begin(), label.end());
  crypto::Sha256Digest digest = crypto::Sha256(input);
  VolumeId id{};
  std::memcpy(id.data(), digest.data(), id.size());
  return id;
}

std::string SegmentName(uint64_t seq) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = "seg/";
  for (int shift = 60; shift >= 0; shift -= 4) {
    name.push_back(kHex[(seq >> shift) & 0xf]);
  }
  return name;
}

std::optional<uint64_t> ParseSegmentName(std::string_view name) {
  if (name.size() != 20 || name.substr(0, 4) != "seg/") {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : name.substr(4)) {
    int d = HexDigitValue(c);
    if (d < 0 || (c >= 'A' && c <= 'F')) {
      return std::nullopt;
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

// VolumeKeys.

VolumeKeys::VolumeKeys(kms::KeyRing ring, const VolumeId& volume_id,
                       crypto::PrivateKey signing_key)
    : ring_(std::move(ring)), volume_id_(volume_id), signing_key_(std::move(signing_key)) {
  Bytes raw = signing_key_.public_key().ToRaw();
  ENCLAVIA_CHECK(raw.size() == public_key_.size());
  std::memcpy(public_key_.data(), raw.data(), raw.size());
}

Result<VolumeKeys> VolumeKeys::Derive(const crypto::SecretBytes& volume_key,
                                      const VolumeId& volume_id) {
  if (volume_key.size() != 32) {
    return Error(Code::kInvalidArgument, "volume: the volume key must be 32 bytes");
  }
  kms::KeyRing ring;
  ring.entries.push_back(kms::KeyRingEntry{0, crypto::SecretBytes(volume_key.Expose())});
  return Derive(ring, volume_id);
}

Result<VolumeKeys> VolumeKeys::Derive(const kms::KeyRing& ring, const VolumeId& volume_id) {
  const std::vector<kms::KeyRingEntry>& entries = ring.entries;
  if (entries.empty() || entries.size() > kms::kMaxRingEntries) {
    return Error(Code::kInvalidArgument, "volume: the key ring must have 1..64 secrets");
  }
  kms::KeyRing copy;
  for (size_t i = 0; i < entries.size(); ++i) {
    const uint64_t first = entries[i].first_epoch;
    if (entries[i].secret.size() != 32 ||
        (first == kms::kUnassigned && (i == 0 || i + 1 != entries.size())) ||
        (i > 0 && first <= entries[i - 1].first_epoch)) {
      return Error(Code::kInvalidArgument, "volume: the key ring is not well-formed");
    }
    copy.entries.push_back(kms::KeyRingEntry{first, crypto::SecretBytes(entries[i].secret.Expose())});
  }
  // The signing key comes from the first secret only: witnesses pin its public key, so it must
  // not change when an upgrade adds a secret.
  Writer info;
  Lp(info, AsBytes(kSignKeyLabel));
  Lp(info, volume_id);
  ASSIGN_OR_RETURN(crypto::SecretBytes seed,
                   crypto::Hkdf(crypto::HashAlgorithm::kSha256, copy.entries[0].secret.Expose(),
                                AsBytes(kHkdfSalt), info.bytes(), 32));
  ASSIGN_OR_RETURN(crypto::PrivateKey signing, crypto::PrivateKey::FromEd25519Seed(seed.Expose()));
  return VolumeKeys(std::move(copy), volume_id, std::move(signing));
}

bool VolumeKeys::has_unassigned() const {
  return ring_.entries.back().first_epoch == kms::kUnassigned;
}

uint64_t VolumeKeys::last_assigned_epoch() const {
  for (auto it = ring_.entries.rbegin(); it != ring_.entries.rend(); ++it) {
    if (it->first_epoch != kms::kUnassigned) {
      return it->first_epoch;
    }
  }
  return 0;  // Unreachable: Derive refuses a ring whose first entry is unassigned.
}

Result<void> VolumeKeys::AssignEpoch(uint64_t epoch) {
  if (!has_unassigned()) {
    return Error(Code::kFailedPrecondition, "volume: the key ring has no unassigned secret");
  }
  if (epoch <= last_assigned_epoch() || epoch >= (uint64_t{1} << 32)) {
    return Error(Code::kInvalidArgument, "volume: a new key epoch must follow the ring's last");
  }
  ring_.entries.back().first_epoch = epoch;
  // Keys cached for these epochs (a hostile superblock can name any epoch) came from the
  // previous secret.
  data_keys_.erase(data_keys_.lower_bound(epoch), data_keys_.end());
  superblock_keys_.erase(superblock_keys_.lower_bound(epoch), superblock_keys_.end());
  return Ok();
}

kms::KeyRing VolumeKeys::ring() const {
  kms::KeyRing copy;
  for (const kms::KeyRingEntry& entry : ring_.entries) {
    copy.entries.push_back(
        kms::KeyRingEntry{entry.first_epoch, crypto::SecretBytes(entry.secret.Expose())});
  }
  return copy;
}

const crypto::SecretBytes& VolumeKeys::SecretFor(uint64_t epoch) const {
  const crypto::SecretBytes* secret = &ring_.entries.front().secret;
  for (const kms::KeyRingEntry& entry : ring_.entries) {
    if (entry.first_epoch != kms::kUnassigned && entry.first_epoch <= epoch) {
      secret = &entry.secret;
    }
  }
  return *secret;
}

Result<const crypto::AeadKey*> VolumeKeys::DataKey(uint64_t epoch) {
  auto it = data_keys_.find(epoch);
  if (it == data_keys_.end()) {
    ASSIGN_OR_RETURN(auto key, DeriveAeadKey(SecretFor(epoch), kDataKeyLabel, volume_id_, epoch));
    it = data_keys_.emplace(epoch, std::move(key)).first;
  }
  return it->second.get();
}

Result<const crypto::AeadKey*> VolumeKeys::SuperblockKey(uint64_t epoch) {
  auto it = superblock_keys_.find(epoch);
  if (it == superblock_keys_.end()) {
    ASSIGN_OR_RETURN(auto key,
                     DeriveAeadKey(SecretFor(epoch), kSuperblockKeyLabel, volume_id_, epoch));
    it = superblock_keys_.emplace(epoch, std::move(key)).first;
  }
  return it->second.get();
}

// Pointers and child references.

void EncodePointer(const Pointer& p, std::span<uint8_t, kPointerSize> out) {
  PutU64(&out[0], p.seq);
  PutU32(&out[8], p.offset);
  PutU32(&out[12], p.epoch);
  PutU64(&out[16], p.counter);
  PutU32(&out[24], p.tag);
  PutU32(&out[28], 0);
}

Pointer DecodePointer(std::span<const uint8_t, kPointerSize> in) {
  Pointer p;
  p.seq = GetU64(&in[0]);
  p.offset = GetU32(&in[8]);
  p.epoch = GetU32(&in[12]);
  p.counter = GetU64(&in[16]);
  p.tag = GetU32(&in[24]);
  return p;
}

void EncodeChildRef(const ChildRef& c, std::span<uint8_t, kChildRefSize> out) {
  EncodePointer(c.ptr, out.first<kPointerSize>());
  std::memcpy(&out[kPointerSize], c.hash.data(), c.hash.size());
}

ChildRef DecodeChildRef(std::span<const uint8_t, kChildRefSize> in) {
  ChildRef c;
  c.ptr = DecodePointer(in.first<kPointerSize>());
  std::memcpy(c.hash.data(), &in[kPointerSize], c.hash.size());
  return c;
}

std::array<uint8_t, crypto::kAeadNonceSize> Nonce(uint32_t tag, uint64_t counter) {
  std::array<uint8_t, crypto::kAeadNonceSize> n{};
  PutU32(&n[0], tag);
  PutU64(&n[4], counter);
  return n;
}

Bytes BlockAd(const VolumeId& id, uint64_t index, uint64_t epoch, uint64_t counter) {
  Bytes ad = Ad("enclavia/volume/block/v1", id);
  AppendU64(ad, index);
  AppendU64(ad, epoch);
  AppendU64(ad, counter);
  return ad;
}

Bytes PageAd(const VolumeId& id, uint32_t level, uint64_t index, uint64_t epoch, uint64_t counter) {
  Bytes ad = Ad("enclavia/volume/page/v1", id);
  AppendU64(ad, level);
  AppendU64(ad, index);
  AppendU64(ad, epoch);
  AppendU64(ad, counter);
  return ad;
}

Bytes SummaryAd(const VolumeId& id, uint64_t seq, uint64_t epoch, uint64_t counter) {
  Bytes ad = Ad("enclavia/volume/summary/v1", id);
  AppendU64(ad, seq);
  AppendU64(ad, epoch);
  AppendU64(ad, counter);
  return ad;
}

Result<crypto::SecretBytes> OpenPage(VolumeKeys& keys, const ChildRef& ref, uint32_t level,
                                     uint64_t index, uint32_t arity, ByteSpan sealed) {
  if (sealed.size() != PagePlainSize(level, arity) + crypto::kAeadTagSize ||
      !crypto::ConstantTimeEqual(crypto::Sha256(sealed), ref.hash)) {
    return Error(Code::kVerifyFailed, "volume: map page failed verification");
  }
  ASSIGN_OR_RETURN(const crypto::AeadKey* key, keys.DataKey(ref.ptr.epoch));
  auto plain =
      key->Open(Nonce(ref.ptr.tag, ref.ptr.counter),
                PageAd(keys.volume_id(), level, index, ref.ptr.epoch, ref.ptr.counter), sealed);
  if (!plain) {
    return Error(Code::kVerifyFailed, "volume: map page failed verification");
  }
  return std::move(plain).value();
}

// Segment header.

std::array<uint8_t, kSegmentHeaderSize> EncodeSegmentHeader(const SegmentHeader& h) {
  std::array<uint8_t, kSegmentHeaderSize> out{};
  std::memcpy(out.data(), kSegmentMagic.data(), 8);
  PutU32(&out[8], kFormatVersion);
  PutU32(&out[12], h.flags);
  PutU64(&out[16], h.seq);
  PutU32(&out[24], h.epoch);
  PutU32(&out[28], h.summary_tag);
  PutU64(&out[32], h.summary_counter);
  PutU32(&out[40], h.summary_offset);
  PutU32(&out[44], h.summary_length);
  PutU32(&out[48], h.superblock_offset);
  PutU32(&out[52], h.superblock_length);
  return out;
}

Result<SegmentHeader> ParseSegmentHeader(ByteSpan bytes) {
  if (bytes.size() < kSegmentHeaderSize ||
      std::memcmp(bytes.data(), kSegmentMagic.data(), 8) != 0) {
    return Error(Code::kMalformed, "volume segment: bad header");
  }
  if (GetU32(&bytes[8]) != kFormatVersion) {
    return Error(Code::kUnsupported, "volume segment: unknown format version");
  }
  SegmentHeader h;
  h.flags = GetU32(&bytes[12]);
  h.seq = GetU64(&bytes[16]);
  h.epoch = GetU32(&bytes[24]);
  h.summary_tag = GetU32(&bytes[28]);
  h.summary_counter = GetU64(&bytes[32]);
  h.summary_offset = GetU32(&bytes[40]);
  h.summary_length = GetU32(&bytes[44]);
  h.superblock_offset = GetU32(&bytes[48]);
  h.superblock_length = GetU32(&bytes[52]);
  const bool committed = h.committed();
  if ((h.flags & ~SegmentHeader::kCommitted) != 0 || h.summary_offset < kSegmentHeaderSize ||
      (h.summary_length != 0 && h.summary_length < crypto::kAeadTagSize) ||
      uint64_t{h.summary_offset} + h.summary_length != h.superblock_offset ||
      committed != (h.superblock_length != 0) || h.total_size() > storage::kMaxObjectSize) {
    return Error(Code::kMalformed, "volume segment: inconsistent header");
  }
  return h;
}

// Summary.

Bytes EncodeSummary(const Summary& s) {
  Writer w;
  w.WriteU64Be(s.seq);
  w.WriteU32Be(s.epoch);
  w.WriteU32Be(s.tag);
  w.WriteU32Be(static_cast<uint32_t>(s.units.size()));
  for (const SummaryEntry& u : s.units) {
    w.WriteU8(static_cast<uint8_t>(u.kind));
    w.WriteU8(u.level);
    w.WriteU16Be(0);
    w.WriteU32Be(u.offset);
    w.WriteU32Be(u.length);
    w.WriteU32Be(0);
    w.WriteU64Be(u.index);
    w.WriteU64Be(u.counter);
  }
  return w.Finish();
}

Result<Summary> DecodeSummary(ByteSpan plain) {
  Reader r(plain);
  Summary s;
  ASSIGN_OR_RETURN(s.seq, r.ReadU64Be());
  ASSIGN_OR_RETURN(s.epoch, r.ReadU32Be());
  ASSIGN_OR_RETURN(s.tag, r.ReadU32Be());
  ASSIGN_OR_RETURN(uint32_t count, r.ReadU32Be());
  if (uint64_t{count} * 32 != r.remaining()) {
    return Error(Code::kMalformed, "volume summary: bad unit count");
  }
  s.units.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    SummaryEntry u;
    ASSIGN_OR_RETURN(uint8_t kind, r.ReadU8());
    if (kind != static_cast<uint8_t>(UnitKind::kData) &&
        kind != static_cast<uint8_t>(UnitKind::kPage)) {
      return Error(Code::kMalformed, "volume summary: bad unit kind");
    }
    u.kind = static_cast<UnitKind>(kind);
    ASSIGN_OR_RETURN(u.level, r.ReadU8());
    RETURN_IF_ERROR(r.Skip(2));
    ASSIGN_OR_RETURN(u.offset, r.ReadU32Be());
    ASSIGN_OR_RETURN(u.length, r.ReadU32Be());
    RETURN_IF_ERROR(r.Skip(4));
    ASSIGN_OR_RETURN(u.index, r.ReadU64Be());
    ASSIGN_OR_RETURN(u.counter, r.ReadU64Be());
    s.units.push_back(u);
  }
  return s;
}

Result<Summary> OpenSummary(VolumeKeys& keys, const SegmentHeader& header, ByteSpan sealed) {
  ASSIGN_OR_RETURN(const crypto::AeadKey* key, keys.DataKey(header.epoch));
  auto plain = key->Open(
      Nonce(header.summary_tag, header.summary_counter),
      SummaryAd(keys.volume_id(), header.seq, header.epoch, header.summary_counter), sealed);
  if (!plain) {
    return Error(Code::kVerifyFailed, "volume summary: failed verification");
  }
  ASSIGN_OR_RETURN(Summary s, DecodeSummary(plain->Expose()));
  if (s.seq != header.seq || s.epoch != header.epoch) {
    return Error(Code::kVerifyFailed, "volume summary: failed verification");
  }
  return s;
}

// Superblock.

Bytes EncodeSuperblockBody(const Superblock& sb) {
  Writer w;
  w.WriteU64Be(sb.size_bytes);
  w.WriteU32Be(sb.aead);
  w.WriteU32Be(sb.arity);
  w.WriteU32Be(sb.depth);
  std::array<uint8_t, kChildRefSize> ref{};
  EncodeChildRef(sb.root, ref);
  w.WriteBytes(ref);
  w.WriteU64Be(sb.reserved_until);
  w.WriteU32Be(sb.witness_count);
  w.WriteU32Be(static_cast<uint32_t>(sb.segments.size()));
  for (const SegmentInfo& s : sb.segments) {
    w.WriteU64Be(s.seq);
    w.WriteU64Be(s.total_bytes);
    w.WriteU64Be(s.live_bytes);
  }
  w.WriteU32Be(static_cast<uint32_t>(sb.snapshots.size()));
  for (const SnapshotRecord& s : sb.snapshots) {
    w.WriteU8(static_cast<uint8_t>(s.name.size()));
    w.WriteString(s.name);
    w.WriteU64Be(s.version);
    w.WriteU64Be(s.epoch);
    w.WriteU32Be(s.depth);
    EncodeChildRef(s.root, ref);
    w.WriteBytes(ref);
    w.WriteU32Be(static_cast<uint32_t>(s.pinned.size()));
    for (uint64_t seq : s.pinned) {
      w.WriteU64Be(seq);
    }
  }
  return w.Finish();
}

Result<void> DecodeSuperblockBody(ByteSpan plain, Superblock& sb) {
  Reader r(plain);
  ASSIGN_OR_RETURN(sb.size_bytes, r.ReadU64Be());
  ASSIGN_OR_RETURN(sb.aead, r.ReadU32Be());
  ASSIGN_OR_RETURN(sb.arity, r.ReadU32Be());
  ASSIGN_OR_RETURN(sb.depth, r.ReadU32Be());
  ASSIGN_OR_RETURN(ByteSpan root, r.ReadBytes(kChildRefSize));
  sb.root = DecodeChildRef(root.first<kChildRefSize>());
  ASSIGN_OR_RETURN(sb.reserved_until, r.ReadU64Be());
  ASSIGN_OR_RETURN(sb.witness_count, r.ReadU32Be());
  if (sb.aead != kAeadAes256Gcm || sb.arity < kMinArity || sb.arity > kMaxArity ||
      sb.size_bytes == 0 || sb.size_bytes % kBlockSize != 0 || sb.size_bytes > kMaxVolumeSize ||
      sb.depth > 64) {
    return Error(Code::kMalformed, "volume superblock: bad parameters");
  }
  ASSIGN_OR_RETURN(uint32_t segments, r.ReadU32Be());
  if (segments > kMaxSegments || uint64_t{segments} * 24 > r.remaining()) {
    return Error(Code::kMalformed, "volume superblock: bad segment count");
  }
  sb.segments.resize(segments);
  for (SegmentInfo& s : sb.segments) {
    ASSIGN_OR_RETURN(s.seq, r.ReadU64Be());
    ASSIGN_OR_RETURN(s.total_bytes, r.ReadU64Be());
    ASSIGN_OR_RETURN(s.live_bytes, r.ReadU64Be());
  }
  ASSIGN_OR_RETURN(uint32_t snapshots, r.ReadU32Be());
  if (snapshots > kMaxSnapshots) {
    return Error(Code::kMalformed, "volume superblock: too many snapshots");
  }
  sb.snapshots.resize(snapshots);
  for (SnapshotRecord& s : sb.snapshots) {
    ASSIGN_OR_RETURN(ByteSpan name, r.ReadPrefixed8());
    s.name = std::string(AsString(name));
    ASSIGN_OR_RETURN(s.version, r.ReadU64Be());
    ASSIGN_OR_RETURN(s.epoch, r.ReadU64Be());
    ASSIGN_OR_RETURN(s.depth, r.ReadU32Be());
    ASSIGN_OR_RETURN(ByteSpan sroot, r.ReadBytes(kChildRefSize));
    s.root = DecodeChildRef(sroot.first<kChildRefSize>());
    ASSIGN_OR_RETURN(uint32_t pinned, r.ReadU32Be());
    if (pinned > kMaxPinned || uint64_t{pinned} * 8 > r.remaining()) {
      return Error(Code::kMalformed, "volume superblock: bad snapshot");
    }
    s.pinned.resize(pinned);
    for (uint64_t& seq : s.pinned) {
      ASSIGN_OR_RETURN(seq, r.ReadU64Be());
    }
  }
  return r.ExpectEnd("volume superblock");
}

namespace {

Bytes SuperblockSignedMessage(ByteSpan header_and_body) {
  Writer w;
  Lp(w, AsBytes(kSuperblockSigLabel));
  Lp(w, header_and_body);
  return w.Finish();
}

}  // namespace

Result<Bytes> SealSuperblock(const Superblock& sb, VolumeKeys& keys) {
  ASSIGN_OR_RETURN(const crypto::AeadKey* key, keys.SuperblockKey(sb.epoch));
  Bytes body = EncodeSuperblockBody(sb);
  // Superblocks take random nonces: the first superblock of a session is sealed before its
  // counter reservation is acknowledged, so counters could repeat if that commit is lost.
  std::array<uint8_t, crypto::kAeadNonceSize> nonce{};
  crypto::RandomFill(nonce);
  Bytes record(kSuperblockHeaderSize, 0);
  std::memcpy(record.data(), kSuperblockMagic.data(), 8);
  PutU32(&record[8], kFormatVersion);
  std::memcpy(&record[16], sb.volume_id.data(), sb.volume_id.size());
  PutU64(&record[32], sb.epoch);
  PutU64(&record[40], sb.version);
  std::memcpy(&record[48], nonce.data(), nonce.size());
  PutU32(&record[60], static_cast<uint32_t>(body.size() + crypto::kAeadTagSize));
  ASSIGN_OR_RETURN(Bytes sealed,
                   key->Seal(nonce, ByteSpan(record.data(), kSuperblockHeaderSize), body));
  crypto::Cleanse(body.data(), body.size());
  record.insert(record.end(), sealed.begin(), sealed.end());
  ASSIGN_OR_RETURN(Bytes signature, keys.signing_key().Sign(SuperblockSignedMessage(record)));
  record.insert(record.end(), signature.begin(), signature.end());
  return record;
}

Result<SuperblockHeader> ParseSuperblockHeader(ByteSpan record) {
  if (record.size() < kSuperblockHeaderSize + crypto::kAeadTagSize + kSignatureSize ||
      std::memcmp(record.data(), kSuperblockMagic.data(), 8) != 0) {
    return Error(Code::kMalformed, "volume superblock: bad header");
  }
  if (GetU32(&record[8]) != kFormatVersion) {
    return Error(Code::kUnsupported, "volume superblock: unknown format version");
  }
  if (uint64_t{GetU32(&record[60])} + kSuperblockHeaderSize + kSignatureSize != record.size()) {
    return Error(Code::kMalformed, "volume superblock: bad length");
  }
  SuperblockHeader h;
  std::memcpy(h.volume_id.data(), &record[16], h.volume_id.size());
  h.epoch = GetU64(&record[32]);
  h.version = GetU64(&record[40]);
  return h;
}

Result<Superblock> OpenSuperblock(ByteSpan record, VolumeKeys& keys) {
  ASSIGN_OR_RETURN(SuperblockHeader h, ParseSuperblockHeader(record));
  ByteSpan signed_part = record.first(record.size() - kSignatureSize);
  ByteSpan signature = record.last(kSignatureSize);
  ASSIGN_OR_RETURN(
      crypto::PublicKey pub,
      crypto::PublicKey::FromRaw(crypto::SignatureAlgorithm::kEd25519, keys.public_key()));
  if (!pub.Verify(SuperblockSignedMessage(signed_part), signature) ||
      h.volume_id != keys.volume_id()) {
    return Error(Code::kVerifyFailed, "volume superblock: failed verification");
  }
  ASSIGN_OR_RETURN(const crypto::AeadKey* key, keys.SuperblockKey(h.epoch));
  ByteSpan header = record.first(kSuperblockHeaderSize);
  auto plain = key->Open(header.subspan(48, crypto::kAeadNonceSize), header,
                         signed_part.subspan(kSuperblockHeaderSize));
  if (!plain) {
    return Error(Code::kVerifyFailed, "volume superblock: failed verification");
  }
  Superblock sb;
  sb.volume_id = h.volume_id;
  sb.epoch = h.epoch;
  sb.version = h.version;
  RETURN_IF_ERROR(DecodeSuperblockBody(plain->Expose(), sb));
  return sb;
}

Result<StoredSuperblock> LocateSuperblock(storage::ObjectStore& store, uint64_t seq) {
  const std::string name = SegmentName(seq);
  ASSIGN_OR_RETURN(Bytes head, store.GetRange(name, 0, kSegmentHeaderSize));
  ASSIGN_OR_RETURN(SegmentHeader h, ParseSegmentHeader(head));
  if (!h.committed() || h.seq != seq) {
    return Error(Code::kMalformed, "volume segment " + name + " holds no superblock");
  }
  StoredSuperblock out;
  ASSIGN_OR_RETURN(out.record, store.GetRange(name, h.superblock_offset, h.superblock_length));
  ASSIGN_OR_RETURN(out.header, ParseSuperblockHeader(out.record));
  if (out.header.version != seq) {
    return Error(Code::kMalformed, "volume segment " + name + " holds another version");
  }
  out.hash = crypto::Sha256(out.record);
  return out;
}

// Recovery statements.

namespace {
Bytes RecoveryMessage(const RecoveryStatement& s) {
  Writer w;
  Lp(w, AsBytes(kRecoverLabel));
  Lp(w, s.volume_id);
  Lp(w, U64Be(s.version));
  Lp(w, s.superblock_hash);
  return w.Finish();
}
}  // namespace

Result<Bytes> MakeRecoveryStatement(const crypto::PrivateKey& owner, const RecoveryStatement& s) {
  if (owner.algorithm() != crypto::SignatureAlgorithm::kEd25519) {
    return Error(Code::kInvalidArgument, "recovery statement: the owner key must be Ed25519");
  }
  Bytes message = RecoveryMessage(s);
  ASSIGN_OR_RETURN(Bytes signature, owner.Sign(message));
  Writer w;
  w.WriteBytes(message);
  Lp(w, signature);
  return w.Finish();
}

Result<RecoveryStatement> ParseRecoveryStatement(ByteSpan statement,
                                                 const crypto::PublicKey& owner) {
  Reader r(statement);
  RecoveryStatement s;
  ASSIGN_OR_RETURN(ByteSpan label, r.ReadPrefixed32());
  ASSIGN_OR_RETURN(ByteSpan id, r.ReadPrefixed32());
  ASSIGN_OR_RETURN(ByteSpan version, r.ReadPrefixed32());
  ASSIGN_OR_RETURN(ByteSpan hash, r.ReadPrefixed32());
  const size_t message_size = statement.size() - r.remaining();
  ASSIGN_OR_RETURN(ByteSpan signature, r.ReadPrefixed32());
  RETURN_IF_ERROR(r.ExpectEnd("recovery statement"));
  if (AsString(label) != kRecoverLabel || id.size() != s.volume_id.size() || version.size() != 8 ||
      hash.size() != s.superblock_hash.size()) {
    return Error(Code::kMalformed, "recovery statement: bad fields");
  }
  if (owner.algorithm() != crypto::SignatureAlgorithm::kEd25519 ||
      !owner.Verify(statement.first(message_size), signature)) {
    return Error(Code::kVerifyFailed, "recovery statement: bad signature");
  }
  std::memcpy(s.volume_id.data(), id.data(), id.size());
  s.version = GetU64(version.data());
  std::memcpy(s.superblock_hash.data(), hash.data(), hash.size());
  return s;
}

}  // namespace enclavia::blockstore
