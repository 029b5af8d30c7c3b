// SPDX-License-Identifier: Apache-2.0
#include "lib/blockstore/volume.h"

#include <random>
#include <set>

#include <gtest/gtest.h>

#include "lib/crypto/hash.h"

namespace enclavia::blockstore {
namespace {

using storage::CommitRecord;

// FakeWitnesses plays N witnesses with majority logic, as src/lib/witness does over channels.
class FakeWitnesses : public storage::Freshness {
 public:
  struct Witness {
    bool up = true;
    std::map<VolumeId, CommitRecord> records;
  };
  explicit FakeWitnesses(size_t n) : witnesses(n) {}

  Result<std::optional<CommitRecord>> Latest(const VolumeId& id) override {
    size_t answered = 0;
    std::optional<CommitRecord> best;
    for (const Witness& w : witnesses) {
      if (!w.up) {
        continue;
      }
      ++answered;
      auto it = w.records.find(id);
      if (it != w.records.end() && (!best || it->second.version > best->version)) {
        best = it->second;
      }
    }
    if (answered < Majority()) {
      return Error(Code::kUnavailable, std::to_string(answered) + " witnesses answered");
    }
    return best;
  }

  Result<void> Commit(const CommitRecord& record) override {
    size_t acks = 0;
    for (Witness& w : witnesses) {
      if (!w.up || !storage::VerifyCommitRecord(record)) {
        continue;
      }
      auto it = w.records.find(record.volume_id);
      if (it != w.records.end() && (record.version <= it->second.version ||
                                    record.volume_public_key != it->second.volume_public_key)) {
        continue;
      }
      w.records[record.volume_id] = record;
      ++acks;
    }
    ++commits;
    if (acks < Majority()) {
      return Error(Code::kUnavailable, "no majority acknowledged");
    }
    return Ok();
  }

  size_t count() const override { return witnesses.size(); }
  size_t Majority() const { return witnesses.size() / 2 + 1; }

  std::vector<Witness> witnesses;
  size_t commits = 0;
};

// CrashPlan cuts a run after a given number of Puts and Commits: the operation at the cut is
// applied or not (a Put possibly torn), fails, and everything after it fails.
struct CrashPlan {
  std::mt19937_64 rng;
  int64_t ops_left = -1;  // -1: never crash.
  bool crashed = false;
  enum class Step { kNormal, kCut, kDead };
  Step Next() {
    if (crashed) {
      return Step::kDead;
    }
    if (ops_left < 0) {
      return Step::kNormal;
    }
    if (ops_left-- == 0) {
      crashed = true;
      return Step::kCut;
    }
    return Step::kNormal;
  }
};

Error Crashed() { return Error(Code::kUnavailable, "crashed"); }

// TestStore wraps a MemoryObjectStore: it records every attempted Put (what the host saw),
// follows a CrashPlan, and can lie about Puts.
class TestStore : public storage::ObjectStore {
 public:
  enum class Lie { kNone, kDropPut, kStoreOldBytes };
  explicit TestStore(storage::MemoryObjectStore& inner) : inner_(inner) {}

  Result<void> Put(const std::string& name, ByteSpan data) override {
    puts.emplace_back(name, Bytes(data.begin(), data.end()));
    if (plan != nullptr) {
      switch (plan->Next()) {
        case CrashPlan::Step::kDead:
          return Crashed();
        case CrashPlan::Step::kCut: {
          int what = static_cast<int>(plan->rng() % 3);
          if (what == 1) {
            (void)inner_.Put(name, data);
          } else if (what == 2) {
            (void)inner_.Put(name, data.first(plan->rng() % data.size()));
          }
          return Crashed();
        }
        case CrashPlan::Step::kNormal:
          break;
      }
    }
    if (lie == Lie::kDropPut) {
      return Ok();
    }
    if (lie == Lie::kStoreOldBytes && !last_put_.empty()) {
      return inner_.Put(name, last_put_);
    }
    last_put_ = Bytes(data.begin(), data.end());
    return inner_.Put(name, data);
  }
  Result<Bytes> Get(const std::string& name) override {
    RETURN_IF_ERROR(Alive());
    return inner_.Get(name);
  }
  Result<Bytes> GetRange(const std::string& name, uint64_t offset, uint64_t length) override {
    RETURN_IF_ERROR(Alive());
    return inner_.GetRange(name, offset, length);
  }
  Result<void> Delete(const std::string& name) override {
    RETURN_IF_ERROR(Alive());
    return inner_.Delete(name);
  }
  Result<std::vector<std::string>> List(const std::string& prefix) override {
    RETURN_IF_ERROR(Alive());
    return inner_.List(prefix);
  }

  CrashPlan* plan = nullptr;
  Lie lie = Lie::kNone;
  std::vector<std::pair<std::string, Bytes>> puts;

 private:
  Result<void> Alive() const {
    if (plan != nullptr && plan->crashed) {
      return Crashed();
    }
    return Ok();
  }
  storage::MemoryObjectStore& inner_;
  Bytes last_put_;
};

class CrashingFreshness : public storage::Freshness {
 public:
  CrashingFreshness(FakeWitnesses& inner, CrashPlan& plan) : inner_(inner), plan_(plan) {}
  Result<std::optional<CommitRecord>> Latest(const VolumeId& id) override {
    if (plan_.crashed) {
      return Crashed();
    }
    return inner_.Latest(id);
  }
  Result<void> Commit(const CommitRecord& record) override {
    switch (plan_.Next()) {
      case CrashPlan::Step::kDead:
        return Crashed();
      case CrashPlan::Step::kCut:
        if (plan_.rng() % 2 == 0) {
          (void)inner_.Commit(record);
        }
        return Crashed();
      case CrashPlan::Step::kNormal:
        break;
    }
    return inner_.Commit(record);
  }
  size_t count() const override { return inner_.count(); }

 private:
  FakeWitnesses& inner_;
  CrashPlan& plan_;
};

constexpr std::string_view kLabel = "app";

struct Env {
  explicit Env(size_t witness_count) : witnesses(witness_count), store(memory) {
    options.label = std::string(kLabel);
    options.size_bytes = 4 << 20;
    options.store = &store;
    options.freshness = &witnesses;
    options.volume_key = &key;
  }
  Result<std::unique_ptr<Volume>> Mount() { return Volume::Mount(options); }
  std::unique_ptr<Volume> MustMount() {
    auto v = Mount();
    EXPECT_TRUE(v.has_value()) << v.error().message();
    return v ? std::move(v).value() : nullptr;
  }
  VolumeKeys Keys() const {
    auto k = VolumeKeys::Derive(key, VolumeIdFor(kLabel));
    ENCLAVIA_CHECK(k.has_value());
    return std::move(k).value();
  }

  crypto::SecretBytes key{Bytes(32, 0x42)};
  FakeWitnesses witnesses;
  storage::MemoryObjectStore memory;
  TestStore store;
  VolumeOptions options;
};

Bytes Pattern(size_t n, uint32_t seed) {
  Bytes b(n);
  std::mt19937 rng(seed);
  for (uint8_t& c : b) {
    c = static_cast<uint8_t>(rng() | 1);  // Never an all-zero block.
  }
  return b;
}

Bytes Block(uint32_t seed) { return Pattern(kBlockSize, seed); }

void WriteBlock(Volume& v, uint64_t index, const Bytes& data) {
  ASSERT_TRUE(v.Write(index * kBlockSize, data, false));
}

Result<Bytes> ReadBlock(Volume& v, uint64_t index) {
  Bytes out(kBlockSize);
  RETURN_IF_ERROR(v.Read(index * kBlockSize, out));
  return out;
}

void ExpectBlock(Volume& v, uint64_t index, const Bytes& want) {
  auto got = ReadBlock(v, index);
  ASSERT_TRUE(got.has_value()) << "block " << index << ": " << got.error().message();
  EXPECT_TRUE(*got == want) << "block " << index;
}

void ExpectReadFails(Volume& v, uint64_t index) {
  auto got = ReadBlock(v, index);
  ASSERT_FALSE(got.has_value()) << "block " << index << " read despite tampering";
  EXPECT_TRUE(got.error().code() == Code::kVerifyFailed || got.error().code() == Code::kNotFound)
      << got.error().message();
}

// Unit is where a sealed unit lives; Units finds every unit the store holds, by its summary.
struct Unit {
  std::string object;
  UnitKind kind;
  uint32_t level;
  uint64_t index;
  uint32_t offset;
  uint32_t length;
  uint64_t counter;
  uint32_t epoch;
  uint32_t tag;
};

std::vector<Unit> UnitsOf(VolumeKeys& keys, const std::string& name, ByteSpan object,
                          uint64_t* summary_counter = nullptr) {
  std::vector<Unit> out;
  auto header = ParseSegmentHeader(object);
  if (!header || header->total_size() != object.size() || header->summary_length == 0) {
    return out;
  }
  auto summary =
      OpenSummary(keys, *header, object.subspan(header->summary_offset, header->summary_length));
  if (!summary) {
    return out;
  }
  if (summary_counter != nullptr) {
    *summary_counter = header->summary_counter;
  }
  for (const SummaryEntry& u : summary->units) {
    out.push_back(Unit{name, u.kind, u.level, u.index, u.offset, u.length, u.counter, header->epoch,
                       summary->tag});
  }
  return out;
}

// CurrentDataUnit is the newest sealed unit of data block `index` in `objects`.
std::optional<Unit> CurrentDataUnit(VolumeKeys& keys, const std::map<std::string, Bytes>& objects,
                                    uint64_t index) {
  std::optional<Unit> found;
  for (const auto& [name, bytes] : objects) {
    for (const Unit& u : UnitsOf(keys, name, bytes)) {
      if (u.kind == UnitKind::kData && u.index == index) {
        found = u;  // Names sort by sequence number, so the last one is the newest.
      }
    }
  }
  return found;
}

TEST(VolumeTest, ReadWriteTrimAndZeroesRoundTripAtUnalignedOffsets) {
  Env env(1);
  env.options.merkle_arity = 4;  // Several interior levels on 4 MiB.
  auto v = env.MustMount();
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(v->status().created_now);
  EXPECT_EQ(v->size(), uint64_t{4} << 20);
  Bytes model(v->size(), 0);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    const uint64_t len = 1 + rng() % 20000;
    const uint64_t off = rng() % (model.size() - len);
    const int op = static_cast<int>(rng() % 5);
    if (op < 3) {
      Bytes data = Pattern(len, static_cast<uint32_t>(i));
      ASSERT_TRUE(v->Write(off, data, op == 2));
      std::copy(data.begin(), data.end(), model.begin() + static_cast<std::ptrdiff_t>(off));
    } else {
      ASSERT_TRUE(op == 3 ? v->Trim(off, len, false) : v->WriteZeroes(off, len, false));
      std::fill_n(model.begin() + static_cast<std::ptrdiff_t>(off), len, 0);
    }
    if (i % 50 == 49) {
      ASSERT_TRUE(v->Flush());
    }
    const uint64_t roff = rng() % (model.size() - 9000);
    Bytes got(9000);
    ASSERT_TRUE(v->Read(roff, got));
    ASSERT_TRUE(
        std::equal(got.begin(), got.end(), model.begin() + static_cast<std::ptrdiff_t>(roff)));
  }
  ASSERT_TRUE(v->Flush());
  v.reset();
  env.options.cache_bytes = 8192;  // Evict constantly.
  v = env.MustMount();
  ASSERT_NE(v, nullptr);
  EXPECT_FALSE(v->status().created_now);
  Bytes all(model.size());
  ASSERT_TRUE(v->Read(0, all));
  EXPECT_TRUE(all == model);
  Bytes past(11);
  EXPECT_FALSE(v->Read(model.size() - 10, past).has_value());
  EXPECT_FALSE(v->Write(model.size(), Bytes(1, 1), false).has_value());
}

TEST(VolumeTest, RemountKeepsFlushedData) {
  Env env(3);
  auto v = env.MustMount();
  ASSERT_NE(v, nullptr);
  WriteBlock(*v, 3, Block(1));
  WriteBlock(*v, 700, Block(2));
  ASSERT_TRUE(v->Flush());
  WriteBlock(*v, 4, Block(3));  // Never flushed: may or may not survive.
  v.reset();
  v = env.MustMount();
  ASSERT_NE(v, nullptr);
  ExpectBlock(*v, 3, Block(1));
  ExpectBlock(*v, 700, Block(2));
  ExpectBlock(*v, 5, Bytes(kBlockSize, 0));
  EXPECT_EQ(v->status().state, "protected (3 witnesses)");
  EXPECT_EQ(v->status().witnesses, 3u);
}

TEST(VolumeTest, MountWithoutWitnessesIsUnprotectedAndRefusesAWitnessedVolume) {
  Env env(0);
  auto v = env.MustMount();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->status().state, "unprotected");
  WriteBlock(*v, 1, Block(1));
  ASSERT_TRUE(v->Flush());
  v.reset();
  v = env.MustMount();
  ASSERT_NE(v, nullptr);
  ExpectBlock(*v, 1, Block(1));

  Env protected_env(1);
  ASSERT_NE(protected_env.MustMount(), nullptr);
  FakeWitnesses none(0);
  protected_env.options.freshness = &none;
  auto refused = protected_env.Mount();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kPolicyViolation);
}

TEST(VolumeTest, OlderSuperblockAfterLaterCommitIsRefusedNamingBothVersions) {
  for (size_t witnesses : {1, 3}) {
    Env env(witnesses);
    auto v = env.MustMount();
    ASSERT_NE(v, nullptr);
    WriteBlock(*v, 1, Block(1));
    ASSERT_TRUE(v->Flush());
    const uint64_t old_version = v->status().version;
    auto old_objects = env.memory.Snapshot();
    WriteBlock(*v, 1, Block(2));
    ASSERT_TRUE(v->Flush());
    const uint64_t new_version = v->status().version;
    v.reset();
    env.memory.Restore(old_objects);
    auto refused = env.Mount();
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code(), Code::kPolicyViolation);
    EXPECT_EQ(refused.error().message(), "rollback: the host serves version " +
                                             std::to_string(old_version) +
                                             " of volume app but witnesses acknowledged version " +
                                             std::to_string(new_version));
  }
}

TEST(VolumeTest, EmptyStoreAfterCommitsIsRollback) {
  Env env(1);
  ASSERT_NE(env.MustMount(), nullptr);
  env.memory.Restore({});
  auto refused = env.Mount();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kPolicyViolation);
  EXPECT_NE(refused.error().message().find("rollback: the host serves version 0"),
            std::string::npos);
}

// Sets up blocks 1..3 written at a first flush and block 1 rewritten at a second one.
struct Tampering {
  Env env{1};
  std::unique_ptr<Volume> v;
  VolumeKeys keys = env.Keys();
  void SetUp() {
    v = env.MustMount();
    ASSERT_NE(v, nullptr);
    for (uint64_t i = 1; i <= 3; ++i) {
      WriteBlock(*v, i, Block(static_cast<uint32_t>(i)));
    }
    WriteBlock(*v, 200, Block(200));
    ASSERT_TRUE(v->Flush());
    WriteBlock(*v, 1, Block(100));
    WriteBlock(*v, 300, Block(300));
    ASSERT_TRUE(v->Flush());
  }
  void CheckOthersAndRemount(std::vector<uint64_t> broken) {
    std::map<uint64_t, Bytes> good = {
        {1, Block(100)}, {2, Block(2)}, {3, Block(3)}, {200, Block(200)}, {300, Block(300)}};
    for (int round = 0; round < 2; ++round) {
      for (const auto& [index, data] : good) {
        if (std::find(broken.begin(), broken.end(), index) != broken.end()) {
          ExpectReadFails(*v, index);
        } else {
          ExpectBlock(*v, index, data);
        }
      }
      v.reset();
      v = env.MustMount();
      ASSERT_NE(v, nullptr);
    }
  }
};

TEST(VolumeTest, OlderVersionOfABlockFailsThatReadOnly) {
  Tampering t;
  t.SetUp();
  auto objects = t.env.memory.Snapshot();
  // The first version of block 1 is the first data unit for block 1.
  std::optional<Unit> old_unit, new_unit;
  for (const auto& [name, bytes] : objects) {
    for (const Unit& u : UnitsOf(t.keys, name, bytes)) {
      if (u.kind == UnitKind::kData && u.index == 1) {
        (old_unit ? new_unit : old_unit) = u;
      }
    }
  }
  ASSERT_TRUE(old_unit && new_unit);
  Bytes& target = objects[new_unit->object];
  const Bytes& source = objects[old_unit->object];
  std::copy_n(source.begin() + old_unit->offset, kSealedBlockSize,
              target.begin() + new_unit->offset);
  t.env.memory.Restore(objects);
  t.CheckOthersAndRemount({1});
}

TEST(VolumeTest, SwappedBlocksFailOnlyThoseReads) {
  Tampering t;
  t.SetUp();
  auto objects = t.env.memory.Snapshot();
  auto u2 = CurrentDataUnit(t.keys, objects, 2);
  auto u3 = CurrentDataUnit(t.keys, objects, 3);
  ASSERT_TRUE(u2 && u3);
  ASSERT_EQ(u2->object, u3->object);
  Bytes& seg = objects[u2->object];
  std::swap_ranges(seg.begin() + u2->offset, seg.begin() + u2->offset + kSealedBlockSize,
                   seg.begin() + u3->offset);
  t.env.memory.Restore(objects);
  t.CheckOthersAndRemount({2, 3});
}

TEST(VolumeTest, OneFlippedBitFailsThatReadOnly) {
  Tampering t;
  t.SetUp();
  auto objects = t.env.memory.Snapshot();
  auto u = CurrentDataUnit(t.keys, objects, 3);
  ASSERT_TRUE(u);
  objects[u->object][u->offset + 1000] ^= 0x10;
  t.env.memory.Restore(objects);
  t.CheckOthersAndRemount({3});
}

TEST(VolumeTest, DeletedSegmentFailsOnlyItsBlocks) {
  Tampering t;
  t.SetUp();
  auto objects = t.env.memory.Snapshot();
  auto u = CurrentDataUnit(t.keys, objects, 2);
  ASSERT_TRUE(u);
  ASSERT_TRUE(t.env.memory.Delete(u->object));
  t.CheckOthersAndRemount({2, 3, 200});
}

TEST(VolumeTest, TruncatedSegmentFailsOnlyTheBlocksCut) {
  Tampering t;
  t.SetUp();
  auto objects = t.env.memory.Snapshot();
  auto u2 = CurrentDataUnit(t.keys, objects, 2);
  auto u3 = CurrentDataUnit(t.keys, objects, 3);
  ASSERT_TRUE(u2 && u3);
  ASSERT_LT(u2->offset, u3->offset);
  objects[u3->object].resize(u3->offset + 100);
  t.env.memory.Restore(objects);
  // Block 200 followed block 3 in that segment.
  t.CheckOthersAndRemount({3, 200});
}

TEST(VolumeTest, ReorderedSegmentsFailOnlyTheirBlocks) {
  Env env(1);
  env.options.segment_target_bytes = 3 * kSealedBlockSize + kSegmentHeaderSize;
  env.options.dirty_limit_bytes = 2 * kBlockSize;
  auto v = env.MustMount();
  ASSERT_NE(v, nullptr);
  for (uint64_t i = 0; i < 12; ++i) {
    WriteBlock(*v, i, Block(static_cast<uint32_t>(i)));
  }
  ASSERT_TRUE(v->Flush());
  VolumeKeys keys = env.Keys();
  auto objects = env.memory.Snapshot();
  auto a = CurrentDataUnit(keys, objects, 0);
  auto b = CurrentDataUnit(keys, objects, 4);
  ASSERT_TRUE(a && b);
  ASSERT_NE(a->object, b->object);
  std::swap(objects[a->object], objects[b->object]);
  env.memory.Restore(objects);
  // The blocks of both swapped segments are broken; the others (and the map) are intact.
  std::set<uint64_t> broken;
  for (const auto& [name, bytes] : objects) {
    if (name == a->object || name == b->object) {
      for (const Unit& u : UnitsOf(keys, name, bytes)) {
        if (u.kind == UnitKind::kData) {
          broken.insert(u.index);
        }
      }
    }
  }
  ASSERT_FALSE(broken.empty());
  for (int round = 0; round < 2; ++round) {
    for (uint64_t i = 0; i < 12; ++i) {
      if (broken.count(i) != 0) {
        ExpectReadFails(*v, i);
      } else {
        ExpectBlock(*v, i, Block(static_cast<uint32_t>(i)));
      }
    }
    v.reset();
    v = env.MustMount();
    ASSERT_NE(v, nullptr);
  }
}

TEST(VolumeTest, DroppedPutAcknowledgedByTheHostIsDetected) {
  for (auto lie : {TestStore::Lie::kDropPut, TestStore::Lie::kStoreOldBytes}) {
    Env env(1);
    auto v = env.MustMount();
    ASSERT_NE(v, nullptr);
    WriteBlock(*v, 1, Block(1));
    ASSERT_TRUE(v->Flush());
    env.store.lie = lie;
    WriteBlock(*v, 2, Block(2));
    ASSERT_TRUE(v->Flush());  // The host said the segment is durable; the witness acked.
    env.store.lie = TestStore::Lie::kNone;
    ExpectReadFails(*v, 2);
    v.reset();
    auto refused = env.Mount();
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code(), Code::kPolicyViolation);
    EXPECT_NE(refused.error().message().find("rollback"), std::string::npos);
  }
}

TEST(VolumeTest, WitnessMajorityIsRequired) {
  Env env(3);
  auto v = env.MustMount();
  ASSERT_NE(v, nullptr);
  env.witnesses.witnesses[0].up = false;
  WriteBlock(*v, 1, Block(1));
  ASSERT_TRUE(v->Flush());
  env.witnesses.witnesses[1].up = false;
  WriteBlock(*v, 2, Block(2));
  auto failed = v->Flush();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), Code::kUnavailable);
  EXPECT_NE(v->status().state.find("failed"), std::string::npos);
  EXPECT_FALSE(v->Write(0, Block(3), false).has_value());
  v.reset();
  auto down = env.Mount();
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), Code::kUnavailable);
  env.witnesses.witnesses[0].up = true;
  env.witnesses.witnesses[1].up = true;
  v = env.MustMount();  // The unacknowledged segment is newer than the witnesses: accepted.
  ASSERT_NE(v, nullptr);
  ExpectBlock(*v, 1, Block(1));
}

// Crash simulation: a workload of writes and flushes is cut at a random Put or Commit (the
// operation at the cut applied, torn or lost). After remounting on the surviving state, every
// flushed write must be there; a block written after the last flush reads as one of the values
// it had since.
void RunCrashIteration(uint64_t seed, size_t witnesses) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  Env env(witnesses);
  env.options.size_bytes = 1 << 20;
  env.options.segment_target_bytes = 6 * kSealedBlockSize;
  env.options.dirty_limit_bytes = 5 * kBlockSize;
  env.options.counter_reservation = 40;
  std::mt19937_64 rng(seed);
  const uint64_t blocks = 48;
  std::vector<std::set<uint32_t>> allowed(blocks, std::set<uint32_t>{0});
  std::vector<uint32_t> value(blocks, 0);
  auto data_of = [](uint32_t v) { return v == 0 ? Bytes(kBlockSize, 0) : Block(v); };

  for (int session = 0; session < 3; ++session) {
    CrashPlan plan{std::mt19937_64(seed * 31 + static_cast<uint64_t>(session)),
                   static_cast<int64_t>(rng() % 14), false};
    env.store.plan = &plan;
    CrashingFreshness freshness(env.witnesses, plan);
    env.options.freshness = &freshness;
    auto mounted = env.Mount();
    if (mounted) {
      auto& v = *mounted;
      for (int op = 0; op < 40 && !plan.crashed; ++op) {
        const uint64_t index = rng() % blocks;
        const int kind = static_cast<int>(rng() % 10);
        uint32_t nv = static_cast<uint32_t>(rng() % 100000 + 1);
        Result<void> r = Ok();
        if (kind < 6) {
          r = v->Write(index * kBlockSize, data_of(nv), false);
        } else if (kind == 6) {
          nv = 0;
          r = v->Trim(index * kBlockSize, kBlockSize, false);
        } else {
          r = v->Flush();
          if (r) {
            for (uint64_t i = 0; i < blocks; ++i) {
              allowed[i] = {value[i]};
            }
          }
          continue;
        }
        if (r) {
          value[index] = nv;
          allowed[index].insert(nv);
        } else {
          // A failed write may still have reached a staging segment in part.
          allowed[index].insert(nv);
        }
      }
    }
    // Remount on what survived, without crashes.
    env.store.plan = nullptr;
    env.options.freshness = &env.witnesses;
    auto v = env.Mount();
    ASSERT_TRUE(v) << v.error().message();
    for (uint64_t i = 0; i < blocks; ++i) {
      auto got = ReadBlock(**v, i);
      ASSERT_TRUE(got) << "block " << i << ": " << got.error().message();
      bool ok = false;
      for (uint32_t candidate : allowed[i]) {
        if (*got == data_of(candidate)) {
          ok = true;
          value[i] = candidate;
        }
      }
      ASSERT_TRUE(ok) << "block " << i << " lost a flushed write";
      allowed[i] = {value[i]};
    }
  }
}

TEST(VolumeTest, CrashAtRandomPointsKeepsEveryFlushedWrite) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    RunCrashIteration(seed, seed % 2 == 0 ? 3 : 1);
    if (HasFatalFailure()) {
      return;
    }
  }
}

// Every (epoch, counter) pair the host ever saw, across remounts, crashes and torn Puts, is
// distinct: no nonce is used twice under one key.
TEST(VolumeTest, NoncesNeverRepeatAcrossRemountsAndCrashes) {
  for (uint64_t seed = 100; seed < 130; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Env env(seed % 2 == 0 ? 1 : 3);
    env.options.size_bytes = 1 << 20;
    env.options.segment_target_bytes = 5 * kSealedBlockSize;
    env.options.dirty_limit_bytes = 4 * kBlockSize;
    env.options.counter_reservation = 24;
    std::mt19937_64 rng(seed);
    for (int session = 0; session < 5; ++session) {
      CrashPlan plan{std::mt19937_64(seed + static_cast<uint64_t>(session)),
                     session % 2 == 0 ? static_cast<int64_t>(rng() % 20) : -1, false};
      env.store.plan = &plan;
      CrashingFreshness freshness(env.witnesses, plan);
      env.options.freshness = &freshness;
      auto v = env.Mount();
      if (v) {
        for (int op = 0; op < 30 && !plan.crashed; ++op) {
          const uint64_t index = rng() % 64;
          if (rng() % 5 == 0) {
            (void)(*v)->Flush();
          } else {
            (void)(*v)->Write(index * kBlockSize, Block(static_cast<uint32_t>(rng())), false);
          }
        }
        (void)(*v)->Flush();
      }
      env.store.plan = nullptr;
    }
    VolumeKeys keys = env.Keys();
    std::set<std::pair<uint64_t, uint64_t>> seen;
    std::set<std::string> superblock_nonces;
    size_t units = 0;
    for (const auto& [name, bytes] : env.store.puts) {
      uint64_t summary_counter = 0;
      for (const Unit& u : UnitsOf(keys, name, bytes, &summary_counter)) {
        ASSERT_TRUE(seen.emplace(u.epoch, u.counter).second)
            << "nonce counter " << u.counter << " reused in " << name;
        ++units;
      }
      auto header = ParseSegmentHeader(bytes);
      ASSERT_TRUE(header);
      if (header->summary_length != 0) {
        ASSERT_TRUE(seen.emplace(header->epoch, summary_counter).second);
      }
      if (header->committed()) {
        ByteSpan record = ByteSpan(bytes).subspan(header->superblock_offset, 64);
        ASSERT_TRUE(superblock_nonces.insert(std::string(AsString(record.subspan(48, 12)))).second);
      }
    }
    EXPECT_GT(units, 30u);
  }
}

TEST(VolumeTest, RecoveryNeedsAnOwnerSignedStatementAndBumpsTheEpoch) {
  Env env(1);
  auto owner = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519);
  env.options.recovery_key = owner.public_key();
  auto v = env.MustMount();
  ASSERT_NE(v, nullptr);
  WriteBlock(*v, 1, Block(1));
  ASSERT_TRUE(v->Flush());
  const uint64_t version = v->status().version;
  const uint64_t epoch = v->status().epoch;
  v.reset();

  env.witnesses.witnesses[0].records.clear();  // Every witness lost its state.
  auto refused = env.Mount();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(refused.error().message(),
            "witnesses have no record of volume app (the host serves version " +
                std::to_string(version) +
                "): mount needs an owner-signed recovery (enclavia storage recover)");

  auto stored = LocateSuperblock(env.memory, version);
  ASSERT_TRUE(stored);
  RecoveryStatement statement{
      .volume_id = VolumeIdFor(kLabel), .version = version, .superblock_hash = stored->hash};
  auto intruder = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519);
  env.options.recovery_statement = MakeRecoveryStatement(intruder, statement).value();
  auto forged = env.Mount();
  ASSERT_FALSE(forged);
  EXPECT_EQ(forged.error().code(), Code::kVerifyFailed);

  RecoveryStatement wrong_hash = statement;
  wrong_hash.superblock_hash[0] ^= 1;
  env.options.recovery_statement = MakeRecoveryStatement(owner, wrong_hash).value();
  auto mismatched = env.Mount();
  ASSERT_FALSE(mismatched);
  EXPECT_EQ(mismatched.error().code(), Code::kPolicyViolation);

  env.options.recovery_statement = MakeRecoveryStatement(owner, statement).value();
  v = env.MustMount();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->status().epoch, epoch + 1);
  ExpectBlock(*v, 1, Block(1));
  WriteBlock(*v, 2, Block(2));
  ASSERT_TRUE(v->Flush());
  v.reset();

  // The new block was sealed under the new epoch's key, which differs from the old one.
  VolumeKeys keys = env.Keys();
  auto unit = CurrentDataUnit(keys, env.memory.Snapshot(), 2);
  ASSERT_TRUE(unit);
  EXPECT_EQ(unit->epoch, epoch + 1);
  const Bytes object = env.memory.Snapshot()[unit->object];
  const Bytes sealed(object.begin() + unit->offset,
                     object.begin() + unit->offset + kSealedBlockSize);
  auto new_key = keys.DataKey(epoch + 1);
  auto old_key = keys.DataKey(epoch);
  ASSERT_TRUE(new_key && old_key);
  auto nonce = Nonce(unit->tag, unit->counter);
  Bytes ad = BlockAd(keys.volume_id(), 2, epoch + 1, unit->counter);
  EXPECT_TRUE((*new_key)->Open(nonce, ad, sealed).has_value());
  EXPECT_FALSE((*old_key)->Open(nonce, ad, sealed).has_value());
  // The witnesses know the volume again: a plain remount works and reads both epochs' blocks.
  env.options.recovery_statement.reset();
  v = env.MustMount();
  ASSERT_NE(v, nullptr);
  ExpectBlock(*v, 1, Block(1));
  ExpectBlock(*v, 2, Block(2));
}

kms::KeyRing RingOf(std::initializer_list<std::pair<uint64_t, uint8_t>> entries) {
  kms::KeyRing ring;
  for (const auto& [epoch, fill] : entries) {
    ring.entries.push_back(kms::KeyRingEntry{epoch, crypto::SecretBytes(Bytes(32, fill))});
  }
  return ring;
}

TEST(VolumeTest, AOneEntryRingIsTheBareVolumeKey) {
  // Volumes made before rings existed: the same keys, the same signing key.
  VolumeKeys bare =
      VolumeKeys::Derive(crypto::SecretBytes(Bytes(32, 0x42)), VolumeIdFor(kLabel)).value();
  VolumeKeys ring = VolumeKeys::Derive(RingOf({{0, 0x42}}), VolumeIdFor(kLabel)).value();
  EXPECT_EQ(bare.public_key(), ring.public_key());
  auto a = bare.DataKey(3);
  auto b = ring.DataKey(3);
  ASSERT_TRUE(a && b);
  auto sealed = (*a)->Seal(Nonce(1, 2), Bytes{1}, Bytes(16, 9));
  ASSERT_TRUE(sealed);
  EXPECT_TRUE((*b)->Open(Nonce(1, 2), Bytes{1}, *sealed));
  EXPECT_FALSE(ring.has_unassigned());

  // Malformed rings are refused; the signing key follows the first secret only.
  EXPECT_FALSE(VolumeKeys::Derive(kms::KeyRing{}, VolumeIdFor(kLabel)));
  EXPECT_FALSE(VolumeKeys::Derive(RingOf({{0, 1}, {0, 2}}), VolumeIdFor(kLabel)));
  EXPECT_FALSE(VolumeKeys::Derive(RingOf({{kms::kUnassigned, 1}}), VolumeIdFor(kLabel)));
  EXPECT_FALSE(VolumeKeys::Derive(RingOf({{0, 1}, {kms::kUnassigned, 2}, {9, 3}}),
                                  VolumeIdFor(kLabel)));
  VolumeKeys two = VolumeKeys::Derive(RingOf({{0, 0x42}, {5, 0x43}}), VolumeIdFor(kLabel)).value();
  EXPECT_EQ(two.public_key(), bare.public_key());
  // Epoch 4 is still the first secret's: what the bare key sealed there opens.
  auto before = two.DataKey(4);
  auto bare_four = bare.DataKey(4);
  ASSERT_TRUE(before && bare_four);
  auto sealed4 = (*bare_four)->Seal(Nonce(1, 2), Bytes{1}, Bytes(16, 9));
  ASSERT_TRUE(sealed4);
  EXPECT_TRUE((*before)->Open(Nonce(1, 2), Bytes{1}, *sealed4));
  auto at_five = two.DataKey(5);
  auto bare_five = bare.DataKey(5);
  ASSERT_TRUE(at_five && bare_five);
  auto sealed5 = (*bare_five)->Seal(Nonce(1, 2), Bytes{1}, Bytes(16, 9));
  ASSERT_TRUE(sealed5);
  EXPECT_FALSE((*at_five)->Open(Nonce(1, 2), Bytes{1}, *sealed5));
}

TEST(VolumeTest, AnUpgradedRingStartsANewEpochThatTheFirstSecretCannotOpen) {
  Env env(1);
  kms::KeyRing first = RingOf({{0, 0x42}});
  env.options.volume_key = nullptr;
  env.options.key_ring = &first;
  auto v = env.MustMount();
  ASSERT_NE(v, nullptr);
  WriteBlock(*v, 1, Block(1));
  ASSERT_TRUE(v->Flush());
  const uint64_t old_epoch = v->status().epoch;
  v.reset();

  // The upgrade: the successor holds the ring with a fresh, unassigned secret.
  kms::KeyRing upgraded = RingOf({{0, 0x42}});
  ASSERT_TRUE(kms::AppendFresh(upgraded));
  // Without a way to store the ring, the mount is refused before anything is read.
  env.options.key_ring = &upgraded;
  auto refused = env.Mount();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kInvalidArgument);

  // A failing store fails the mount, and nothing was written under the new secret.
  const size_t puts_before = env.store.puts.size();
  env.options.store_key_ring = [](const kms::KeyRing&) -> Result<void> {
    return Error(Code::kUnavailable, "kms down");
  };
  auto failed = env.Mount();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message(), "volume app: storing the key ring: kms down");
  EXPECT_EQ(env.store.puts.size(), puts_before);

  std::optional<kms::KeyRing> stored;
  int store_calls = 0;
  env.options.store_key_ring = [&](const kms::KeyRing& ring) -> Result<void> {
    ++store_calls;
    stored = kms::KeyRing{};
    for (const auto& e : ring.entries) {
      stored->entries.push_back(
          kms::KeyRingEntry{e.first_epoch, crypto::SecretBytes(e.secret.Expose())});
    }
    return Ok();
  };
  v = env.MustMount();
  ASSERT_NE(v, nullptr);
  ASSERT_TRUE(stored.has_value());
  ASSERT_EQ(stored->entries.size(), 2u);
  const uint64_t new_epoch = stored->entries[1].first_epoch;
  EXPECT_EQ(new_epoch, old_epoch + 1);
  EXPECT_EQ(v->status().epoch, new_epoch);
  ExpectBlock(*v, 1, Block(1));  // Data of the first secret's epochs still reads.
  WriteBlock(*v, 2, Block(2));
  ASSERT_TRUE(v->Flush());
  v.reset();

  // The new block is sealed under the new epoch with a key only the new secret gives.
  VolumeKeys with_ring = VolumeKeys::Derive(*stored, VolumeIdFor(kLabel)).value();
  VolumeKeys first_only = VolumeKeys::Derive(first, VolumeIdFor(kLabel)).value();
  EXPECT_EQ(with_ring.public_key(), first_only.public_key());  // The witnesses' pin holds.
  auto unit = CurrentDataUnit(with_ring, env.memory.Snapshot(), 2);
  ASSERT_TRUE(unit);
  EXPECT_EQ(unit->epoch, new_epoch);
  const Bytes object = env.memory.Snapshot()[unit->object];
  const Bytes sealed(object.begin() + unit->offset,
                     object.begin() + unit->offset + kSealedBlockSize);
  auto nonce = Nonce(unit->tag, unit->counter);
  Bytes ad = BlockAd(with_ring.volume_id(), 2, new_epoch, unit->counter);
  auto new_key = with_ring.DataKey(new_epoch);
  auto guess = first_only.DataKey(new_epoch);
  ASSERT_TRUE(new_key && guess);
  EXPECT_TRUE((*new_key)->Open(nonce, ad, sealed).has_value());
  EXPECT_FALSE((*guess)->Open(nonce, ad, sealed).has_value());

  // The old image, holding only the first secret, cannot mount what came after: the newest
  // superblock does not open for it and the witness knows it (rollback).
  env.options.key_ring = &first;
  auto old_image = env.Mount();
  ASSERT_FALSE(old_image);
  EXPECT_EQ(old_image.error().code(), Code::kPolicyViolation) << old_image.error().message();

  // The stored ring mounts again without a new epoch and reads both epochs' blocks.
  env.options.key_ring = &*stored;
  store_calls = 0;
  v = env.MustMount();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(store_calls, 0);
  EXPECT_EQ(v->status().epoch, new_epoch);
  ExpectBlock(*v, 1, Block(1));
  ExpectBlock(*v, 2, Block(2));
}

TEST(VolumeTest, ARingStoredBeforeACrashStartsItsEpochAtTheNextMount) {
  Env env(1);
  auto v = env.MustMount();  // Bare key 0x42.
  ASSERT_NE(v, nullptr);
  WriteBlock(*v, 1, Block(1));
  ASSERT_TRUE(v->Flush());
  const uint64_t epoch = v->status().epoch;
  v.reset();
  // The ring was stored with epoch+1 assigned, then the enclave died before its first commit.
  kms::KeyRing ring = RingOf({{0, 0x42}, {epoch + 1, 0x77}});
  env.options.volume_key = nullptr;
  env.options.key_ring = &ring;
  v = env.MustMount();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->status().epoch, epoch + 1);
  ExpectBlock(*v, 1, Block(1));
}

TEST(VolumeTest, GarbageCollectionKeepsDataAndFreesObjects) {
  Env env(1);
  env.options.segment_target_bytes = 8 * kSealedBlockSize;
  auto v = env.MustMount();
  ASSERT_NE(v, nullptr);
  for (uint64_t i = 0; i < 64; ++i) {
    WriteBlock(*v, i, Block(static_cast<uint32_t>(i)));
  }
  ASSERT_TRUE(v->Flush());
  std::vector<uint32_t> values(64);
  for (uint32_t round = 1; round <= 3; ++round) {
    for (uint64_t i = 0; i < 64; ++i) {
      if (i % 8 != 0) {
        values[i] = round * 1000 + static_cast<uint32_t>(i);
        WriteBlock(*v, i, Block(values[i]));
      }
    }
    ASSERT_TRUE(v->Flush());
  }
  for (uint64_t i = 0; i < 64; i += 8) {
    values[i] = static_cast<uint32_t>(i);
  }
  const auto before = v->status();
  const size_t objects_before = env.memory.Snapshot().size();
  ASSERT_TRUE(v->CollectGarbage());
  const auto after = v->status();
  EXPECT_LT(env.memory.Snapshot().size(), objects_before);
  EXPECT_LT(after.stored_bytes, before.stored_bytes);
  EXPECT_EQ(after.segments, env.memory.Snapshot().size());
  for (uint64_t i = 0; i < 64; ++i) {
    ExpectBlock(*v, i, Block(values[i]));
  }
  v.reset();
  v = env.MustMount();
  ASSERT_NE(v, nullptr);
  for (uint64_t i = 0; i < 64; ++i) {
    ExpectBlock(*v, i, Block(values[i]));
  }
}

TEST(VolumeTest, SnapshotsPinTheirSegments) {
  Env env(1);
  env.options.segment_target_bytes = 8 * kSealedBlockSize;
  auto v = env.MustMount();
  ASSERT_NE(v, nullptr);
  for (uint64_t i = 0; i < 16; ++i) {
    WriteBlock(*v, i, Block(static_cast<uint32_t>(i)));
  }
  ASSERT_TRUE(v->Snapshot("before"));
  auto pinned = env.memory.Snapshot();
  EXPECT_EQ(v->Snapshot("before").error().code(), Code::kAlreadyExists);
  EXPECT_EQ(v->Snapshot("Bad Name").error().code(), Code::kInvalidArgument);
  for (uint64_t i = 0; i < 16; ++i) {
    WriteBlock(*v, i, Block(static_cast<uint32_t>(i + 500)));
  }
  ASSERT_TRUE(v->Flush());
  ASSERT_TRUE(v->CollectGarbage());
  // Every segment holding the snapshot's data survives.
  VolumeKeys keys = env.Keys();
  auto now = env.memory.Snapshot();
  size_t pinned_data_segments = 0;
  for (const auto& [name, bytes] : pinned) {
    bool has_data = false;
    for (const Unit& u : UnitsOf(keys, name, bytes)) {
      has_data = has_data || u.kind == UnitKind::kData;
    }
    if (has_data) {
      ++pinned_data_segments;
      EXPECT_EQ(now.count(name), 1u) << name << " was collected under a snapshot";
    }
  }
  EXPECT_GT(pinned_data_segments, 0u);
  auto list = v->Snapshots();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "before");

  v.reset();
  v = env.MustMount();  // The snapshot table survives a remount.
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->Snapshots()->size(), 1u);
  EXPECT_EQ(v->DeleteSnapshot("nope").error().code(), Code::kNotFound);
  ASSERT_TRUE(v->DeleteSnapshot("before"));
  ASSERT_TRUE(v->CollectGarbage());
  now = env.memory.Snapshot();
  for (const auto& [name, bytes] : pinned) {
    bool has_data = false;
    for (const Unit& u : UnitsOf(keys, name, bytes)) {
      has_data = has_data || u.kind == UnitKind::kData;
    }
    if (has_data) {
      EXPECT_EQ(now.count(name), 0u) << name << " outlived its snapshot";
    }
  }
  for (uint64_t i = 0; i < 16; ++i) {
    ExpectBlock(*v, i, Block(static_cast<uint32_t>(i + 500)));
  }
}

TEST(VolumeTest, TrimOfAnEmptyVolumeWritesNoPages) {
  Env env(1);
  env.options.size_bytes = 64 << 20;
  auto v = env.MustMount();
  ASSERT_NE(v, nullptr);
  ASSERT_TRUE(v->Trim(0, v->size(), true));
  EXPECT_EQ(v->status().live_bytes, 0u);
  WriteBlock(*v, 5000, Block(1));
  ASSERT_TRUE(v->Trim(0, v->size(), true));
  ExpectBlock(*v, 5000, Bytes(kBlockSize, 0));
  EXPECT_EQ(v->status().live_bytes, 0u);
}

TEST(VolumeTest, MountRejectsBadOptions) {
  Env env(1);
  env.options.size_bytes = 1000;
  EXPECT_EQ(env.Mount().error().code(), Code::kInvalidArgument);
  env.options.size_bytes = 1 << 20;
  ASSERT_NE(env.MustMount(), nullptr);
  env.options.size_bytes = 2 << 20;
  EXPECT_EQ(env.Mount().error().code(), Code::kFailedPrecondition);
  env.options.volume_key = nullptr;
  EXPECT_EQ(env.Mount().error().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace enclavia::blockstore
