// SPDX-License-Identifier: Apache-2.0
// The measurements behind docs/formats/volume.md: which AEAD seals 4 KiB blocks faster here, and
// how the Merkle arity trades update+flush cost (pages rewritten per commit) against mount and
// cold-read cost (pages fetched per read). Volumes live in a MemoryObjectStore without witnesses,
// so the numbers are the engine's own CPU and byte costs.
#include <memory>
#include <random>

#include <benchmark/benchmark.h>

#include "lib/blockstore/volume.h"
#include "lib/crypto/random.h"

namespace enclavia::blockstore {
namespace {

class NoWitnesses : public storage::Freshness {
 public:
  Result<std::optional<storage::CommitRecord>> Latest(const VolumeId& /*id*/) override {
    return std::optional<storage::CommitRecord>();
  }
  Result<void> Commit(const storage::CommitRecord& /*record*/) override { return Ok(); }
  size_t count() const override { return 0; }
};

// CountingStore counts the bytes Put and fetched.
class CountingStore : public storage::MemoryObjectStore {
 public:
  Result<void> Put(const std::string& name, ByteSpan data) override {
    put_bytes += data.size();
    return MemoryObjectStore::Put(name, data);
  }
  Result<Bytes> GetRange(const std::string& name, uint64_t offset, uint64_t length) override {
    ++gets;
    return MemoryObjectStore::GetRange(name, offset, length);
  }
  uint64_t put_bytes = 0;
  uint64_t gets = 0;
};

void BM_SealBlock(benchmark::State& state) {
  const auto alg = state.range(0) == 0 ? crypto::AeadAlgorithm::kAes256Gcm
                                       : crypto::AeadAlgorithm::kChaCha20Poly1305;
  crypto::AeadKey key = crypto::AeadKey::Generate(alg);
  Bytes block = crypto::RandomBytes(kBlockSize);
  Bytes ad(64, 1);
  uint64_t counter = 0;
  for (auto _ : state) {
    auto sealed = key.Seal(Nonce(1, ++counter), ad, block);
    auto opened = key.Open(Nonce(1, counter), ad, *sealed);
    benchmark::DoNotOptimize(opened);
  }
  state.SetLabel(state.range(0) == 0 ? "aes-256-gcm" : "chacha20-poly1305");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBlockSize * 2));
}
BENCHMARK(BM_SealBlock)->Arg(0)->Arg(1);

constexpr uint64_t kVolumeSize = uint64_t{1} << 30;  // 1 GiB: 2048 leaf pages.

struct Fixture {
  CountingStore store;
  NoWitnesses witnesses;
  crypto::SecretBytes key{Bytes(32, 7)};
  VolumeOptions options;
  explicit Fixture(uint32_t arity) {
    options.label = "bench";
    options.size_bytes = kVolumeSize;
    options.store = &store;
    options.freshness = &witnesses;
    options.volume_key = &key;
    options.merkle_arity = arity;
    options.gc_live_percent = 0;  // No compaction: measure the tree, not the collector.
  }
  // Populate writes one block into every leaf page, so the whole tree exists.
  std::unique_ptr<Volume> Populate() {
    auto v = Volume::Mount(options).value();
    Bytes block = crypto::RandomBytes(kBlockSize);
    for (uint64_t i = 0; i < kVolumeSize / kBlockSize; i += kLeafFanout) {
      (void)v->Write(i * kBlockSize, block, false);
    }
    (void)v->Flush();
    return v;
  }
};

// Update+flush: 16 random 4 KiB writes, then one commit.
void BM_UpdateFlush(benchmark::State& state) {
  Fixture f(static_cast<uint32_t>(state.range(0)));
  auto v = f.Populate();
  std::mt19937_64 rng(1);
  Bytes block = crypto::RandomBytes(kBlockSize);
  const uint64_t before = f.store.put_bytes;
  for (auto _ : state) {
    for (int i = 0; i < 16; ++i) {
      (void)v->Write((rng() % (kVolumeSize / kBlockSize)) * kBlockSize, block, false);
    }
    (void)v->Flush();
  }
  state.counters["bytes_put_per_flush"] =
      static_cast<double>(f.store.put_bytes - before) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_UpdateFlush)->Arg(4)->Arg(8)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);

// Mount, then 64 random reads with a cold page cache.
void BM_MountColdReads(benchmark::State& state) {
  Fixture f(static_cast<uint32_t>(state.range(0)));
  f.Populate().reset();
  std::mt19937_64 rng(2);
  Bytes out(kBlockSize);
  const uint64_t gets_before = f.store.gets;
  for (auto _ : state) {
    auto v = Volume::Mount(f.options).value();
    for (int i = 0; i < 64; ++i) {
      (void)v->Read((rng() % (kVolumeSize / kBlockSize)) * kBlockSize, out);
    }
  }
  state.counters["gets_per_iteration"] =
      static_cast<double>(f.store.gets - gets_before) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_MountColdReads)
    ->Arg(4)
    ->Arg(8)
    ->Arg(16)
    ->Arg(32)
    ->Arg(64)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace enclavia::blockstore

BENCHMARK_MAIN();
