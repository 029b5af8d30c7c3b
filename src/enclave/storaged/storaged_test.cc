// SPDX-License-Identifier: Apache-2.0
// The daemon's pieces that run without a sandbox: its flags, the sandbox's attach answer, and
// the NBD handshake the Nitro path does before handing the socket to the kernel (against our
// own NBD server).
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "enclave/storage/nbd_server.h"
#include "enclave/storaged/attach.h"
#include "enclave/storaged/daemon.h"
#include "enclave/storaged/keys.h"
#include "host/nsm/simulator.h"
#include "lib/blockstore/volume.h"
#include "lib/crypto/random.h"
#include "lib/storage/block_device.h"
#include "testing/upgrade_chain.h"
#include "lib/witness/witness_set.h"
#include "testing/temp_dir.h"

namespace enclavia::enclave {
namespace {

TEST(StorageFlagsTest, ParsesAndRejects) {
  auto flags = ParseStorageFlags({"--config", "/c.toml", "--nsm=/n", "--ready-fd", "3",
                                  "--storage", "unix:/s.sock", "--kms", "unix:/k.sock"});
  ASSERT_TRUE(flags) << flags.error().message();
  EXPECT_EQ(flags->config_path, "/c.toml");
  EXPECT_EQ(flags->nsm_path, "/n");
  EXPECT_EQ(flags->ready_fd, 3);
  ASSERT_TRUE(flags->storage.has_value());
  EXPECT_EQ(flags->storage->host, "/s.sock");
  EXPECT_FALSE(ParseStorageFlags({"--ready-fd", "x"}));
  EXPECT_FALSE(ParseStorageFlags({"--what", "1"}));
  EXPECT_FALSE(ParseStorageFlags({"--config"}));
  EXPECT_TRUE(ParseStorageFlags({"--help"})->help);
}

TEST(AttachReplyTest, OnlyADevicePathOrAnErrorLine) {
  EXPECT_EQ(*ParseAttachReply("ok /dev/nbd0"), "/dev/nbd0");
  auto error = ParseAttachReply("error mkfs.btrfs failed (1): no space");
  ASSERT_FALSE(error);
  EXPECT_EQ(error.error().message(), "attach the volume: mkfs.btrfs failed (1): no space");
  for (const char* bad : {"", "ok", "ok /etc/passwd", "ok /dev/../etc", "ok /dev/a b", "yes"}) {
    EXPECT_FALSE(ParseAttachReply(bad)) << bad;
  }
}

class MemoryDevice : public storage::BlockDevice {
 public:
  explicit MemoryDevice(uint64_t size) : data_(size) {}
  uint64_t size() const override { return data_.size(); }
  Result<void> Read(uint64_t offset, std::span<uint8_t> out) override {
    std::lock_guard lock(mu_);
    std::memcpy(out.data(), data_.data() + offset, out.size());
    return Ok();
  }
  Result<void> Write(uint64_t offset, ByteSpan data, bool /*fua*/) override {
    std::lock_guard lock(mu_);
    std::memcpy(data_.data() + offset, data.data(), data.size());
    return Ok();
  }
  Result<void> Trim(uint64_t, uint64_t, bool) override { return Ok(); }
  Result<void> WriteZeroes(uint64_t, uint64_t, bool) override { return Ok(); }
  Result<void> Flush() override { return Ok(); }

 private:
  std::mutex mu_;
  Bytes data_;
};

TEST(NbdHandshakeTest, TheKernelPathsHandshakeAgreesWithOurServer) {
  std::string dir = std::filesystem::temp_directory_path() / "enclavia-storaged-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  MemoryDevice device(64 << 20);
  auto server = NbdServer::Start(dir + "/nbd.sock", device, NbdOptions{});
  ASSERT_TRUE(server) << server.error().message();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = dir + "/nbd.sock";
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  auto exported = NbdExportNameHandshake(fd);
  ASSERT_TRUE(exported) << exported.error().message();
  EXPECT_EQ(exported->size, uint64_t{64} << 20);
  EXPECT_NE(exported->flags & 1, 0);  // NBD_FLAG_HAS_FLAGS
  ::close(fd);
  (*server)->Stop();
  std::filesystem::remove_all(dir);
}

TEST(NbdHandshakeTest, RefusesWhatIsNotAnNbdServer) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  const char junk[18] = "HTTP/1.1 200 OK\r\n";
  ASSERT_EQ(::write(pair[1], junk, sizeof(junk)), static_cast<ssize_t>(sizeof(junk)));
  auto exported = NbdExportNameHandshake(pair[0]);
  ASSERT_FALSE(exported);
  EXPECT_EQ(exported.error().code(), Code::kMalformed);
  ::close(pair[0]);
  ::close(pair[1]);
}

// FakeKms wraps by keeping the plaintext under a blob name; it refuses everything once
// `other_image` is set (another image's policy).
class FakeKms : public kms::Kms {
 public:
  Result<kms::DataKey> GenerateDataKey(const std::string& key_id) override {
    if (other_image) {
      return Error(Code::kPolicyViolation, "kms: PCR0 differs");
    }
    kms::DataKey key{crypto::SecretBytes(crypto::RandomBytes(kms::kDataKeySize)), {}};
    key.ciphertext_blob = Wrap(key_id, key.plaintext.Expose());
    ++generated;
    last_key_id = key_id;
    return key;
  }
  Result<crypto::SecretBytes> Decrypt(ByteSpan blob) override {
    if (other_image) {
      return Error(Code::kPolicyViolation, "kms: PCR0 differs");
    }
    auto it = wrapped_.find(std::string(blob.begin(), blob.end()));
    if (it == wrapped_.end()) {
      return Error(Code::kVerifyFailed, "kms: ciphertext blob does not verify");
    }
    return crypto::SecretBytes(it->second);
  }
  Result<Bytes> Encrypt(const std::string& key_id, ByteSpan plaintext) override {
    if (other_image) {
      return Error(Code::kPolicyViolation, "kms: PCR0 differs");
    }
    ++encrypts;
    last_key_id = key_id;
    return Wrap(key_id, plaintext);
  }

  bool other_image = false;
  int generated = 0;
  int encrypts = 0;  // The enclave never calls Encrypt (lib/kms/envelope.h).
  std::string last_key_id;

 private:
  Bytes Wrap(const std::string& key_id, ByteSpan plaintext) {
    // Keyed by text: GCC 12 -O3 warns falsely on map<vector> comparisons.
    std::string blob = key_id + "#" + std::to_string(wrapped_.size());
    wrapped_[blob] = Bytes(plaintext.begin(), plaintext.end());
    return ToBytes(blob);
  }
  std::map<std::string, Bytes> wrapped_;
};

TEST(KeyRingStorageTest, FirstBootStoresABareKeyThatLoadsAsAOneEntryRing) {
  storage::MemoryObjectStore store;
  FakeKms kms;
  auto ring = LoadKeyRing(store, kms, "app");
  ASSERT_TRUE(ring) << ring.error().message();
  ASSERT_EQ(ring->entries.size(), 1u);
  EXPECT_EQ(ring->entries[0].first_epoch, 0u);
  ASSERT_EQ(store.Snapshot().count(std::string(kDataKeyObject)), 1u);
  auto again = LoadKeyRing(store, kms, "app");
  ASSERT_TRUE(again);
  EXPECT_TRUE(crypto::ConstantTimeEqual(again->entries[0].secret.Expose(),
                                        ring->entries[0].secret.Expose()));
  EXPECT_EQ(kms.generated, 1);  // Nothing to re-wrap without an upgrade.
  EXPECT_EQ(kms.encrypts, 0);

  kms.other_image = true;
  auto refused = LoadKeyRing(store, kms, "app");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kPolicyViolation);
}

TEST(KeyRingStorageTest, AVolumeContinuesAcrossAnUpgradeUnderANewEpoch) {
  storage::MemoryObjectStore store;
  storage::MemoryObjectStore volume_store;
  blockstore::VolumeOptions options;
  options.label = "app";
  options.size_bytes = 1 << 20;
  options.store = &volume_store;
  witness::WitnessSet no_witnesses({});
  options.freshness = &no_witnesses;
  FakeKms kms;

  // The first image: writes a block.
  auto first = LoadKeyRing(store, kms, "app");
  ASSERT_TRUE(first);
  options.key_ring = &*first;
  auto volume = blockstore::Volume::Mount(options);
  ASSERT_TRUE(volume) << volume.error().message();
  Bytes before(blockstore::kBlockSize, 0x11);
  ASSERT_TRUE((*volume)->Write(0, before, false));
  ASSERT_TRUE((*volume)->Flush());
  const uint64_t old_epoch = (*volume)->status().epoch;
  volume->reset();

  // The handover (src/enclave/upgrade does this): the successor appends a fresh secret and
  // stores the ring wrapped under its own key.
  kms::KeyRing handed = LoadKeyRing(store, kms, "app").value();
  ASSERT_TRUE(kms::AppendFresh(handed));
  ASSERT_TRUE(StoreKeyRing(store, kms, "app-successor", handed));
  EXPECT_EQ(kms.last_key_id, "app-successor");

  // The successor's storage daemon: the ring has an unassigned secret; the mount assigns it the
  // next epoch and stores the ring again before writing.
  kms::KeyRing loaded = LoadKeyRing(store, kms, "app-successor").value();
  ASSERT_EQ(loaded.entries.size(), 2u);
  EXPECT_EQ(loaded.entries[1].first_epoch, kms::kUnassigned);
  options.key_ring = &loaded;
  options.store_key_ring = [&](const kms::KeyRing& ring) {
    return StoreKeyRing(store, kms, "app-successor", ring);
  };
  volume = blockstore::Volume::Mount(options);
  ASSERT_TRUE(volume) << volume.error().message();
  EXPECT_EQ((*volume)->status().epoch, old_epoch + 1);
  Bytes read(blockstore::kBlockSize);
  ASSERT_TRUE((*volume)->Read(0, read));
  EXPECT_EQ(read, before);
  Bytes after(blockstore::kBlockSize, 0x22);
  ASSERT_TRUE((*volume)->Write(blockstore::kBlockSize, after, false));
  ASSERT_TRUE((*volume)->Flush());
  volume->reset();

  kms::KeyRing stored = LoadKeyRing(store, kms, "app-successor").value();
  ASSERT_EQ(stored.entries.size(), 2u);
  EXPECT_EQ(stored.entries[1].first_epoch, old_epoch + 1);
  EXPECT_TRUE(crypto::ConstantTimeEqual(stored.entries[1].secret.Expose(),
                                        handed.entries[1].secret.Expose()));
  // The next boot mounts without another epoch and reads both blocks.
  options.key_ring = &stored;
  volume = blockstore::Volume::Mount(options);
  ASSERT_TRUE(volume) << volume.error().message();
  EXPECT_EQ((*volume)->status().epoch, old_epoch + 1);
  ASSERT_TRUE((*volume)->Read(blockstore::kBlockSize, read));
  EXPECT_EQ(read, after);
}

TEST(OwnChainTest, AcceptsOnlyAChainWhoseHeadIsThisEnclave) {
  testing::TempDir dir;
  auto builder = upgrade::testing::ChainBuilder::Create(dir.path() + "/ca");
  ASSERT_TRUE(builder) << builder.error().message();
  auto& b = **builder;
  auto nsm_for = [&](const upgrade::PcrMap& pcrs) {
    host::SimulatorOptions options;
    for (const auto& [index, value] : pcrs) {
      options.boot_pcrs[static_cast<uint16_t>(index)] = value;
    }
    return host::NsmSimulator::Create(b.ca(), options).value();
  };
  auto first = nsm_for(upgrade::testing::Pcrs(1));

  auto unchained = CheckOwnChain(upgrade::HostChain{}, *first, b.verifier());
  ASSERT_TRUE(unchained);
  EXPECT_FALSE(unchained->has_value());

  upgrade::HostChain host;
  host.chain = b.chain();
  auto own = CheckOwnChain(host, *first, b.verifier());
  ASSERT_TRUE(own) << own.error().message();
  ASSERT_TRUE(own->has_value());
  EXPECT_EQ((*own)->head, b.genesis_hash());

  upgrade::testing::StepSpec spec;
  spec.new_pcrs = upgrade::testing::Pcrs(2);
  ASSERT_TRUE(b.Step(spec));
  host.chain = b.chain();
  // The old image handed the new chain: not its head.
  auto old = CheckOwnChain(host, *first, b.verifier());
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code(), Code::kPolicyViolation);
  EXPECT_EQ(old.error().message().rfind("upgrade chain: ", 0), 0u) << old.error().message();
  auto second = nsm_for(upgrade::testing::Pcrs(2));
  own = CheckOwnChain(host, *second, b.verifier());
  ASSERT_TRUE(own) << own.error().message();
  EXPECT_EQ((*own)->head, b.head());
  EXPECT_EQ((*own)->chain.size(), 4u);

  // Tampered, or still pending (ask again), or pending without a chain.
  upgrade::HostChain tampered = host;
  tampered.chain[3].back() ^= 1;
  EXPECT_FALSE(CheckOwnChain(tampered, *second, b.verifier()));
  upgrade::HostChain pending = host;
  pending.pending = Bytes{1};
  EXPECT_EQ(CheckOwnChain(pending, *second, b.verifier()).error().code(), Code::kUnavailable);
  upgrade::HostChain bare;
  bare.pending = Bytes{1};
  EXPECT_EQ(CheckOwnChain(bare, *second, b.verifier()).error().code(), Code::kMalformed);
}

TEST(OwnChainTest, SupersededLinesAreFoundInsideContext) {
  EXPECT_EQ(SupersededLine("volume app: witnesses: superseded: chain head ab… is behind cd…"),
            "superseded: chain head ab… is behind cd…");
  EXPECT_FALSE(SupersededLine("volume app: witnesses: 0 of 1 answered").has_value());
}

}  // namespace
}  // namespace enclavia::enclave
