// SPDX-License-Identifier: Apache-2.0
// NbdServer against the real clients: libnbd's nbdinfo and nbdcopy, and the full local stack
// nbdfuse → loop device → btrfs. Each test skips when its tools or privileges are missing.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "enclave/storage/nbd_server.h"
#include "enclave/storage/nbd_test_util.h"

namespace enclavia::enclave {
namespace {

using nbd_testing::CommandResult;
using nbd_testing::FaultyDevice;
using nbd_testing::MemoryDevice;
using nbd_testing::RunCommand;

bool WriteFile(const std::string& path, ByteSpan data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(out);
}

Bytes ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    return {};
  }
  Bytes out(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size()));
  return in ? out : Bytes();
}

class NbdInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = nbd_testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    socket_ = dir_ + "/nbd.sock";
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartServer(storage::BlockDevice& device) {
    Result<std::unique_ptr<NbdServer>> s = NbdServer::Start(socket_, device, {});
    ASSERT_TRUE(s.has_value()) << s.error().message();
    server_ = std::move(s).value();
  }
  std::string Uri() const { return "nbd+unix:///?socket=" + socket_; }

  std::string dir_;
  std::string socket_;
  std::unique_ptr<NbdServer> server_;
};

TEST_F(NbdInteropTest, NbdinfoSeesSizeFlagsAndBlockSizes) {
  if (!nbd_testing::HaveTool("nbdinfo")) {
    GTEST_SKIP() << "nbdinfo (libnbd-bin) is not installed";
  }
  MemoryDevice device(64 * 1024 * 1024);
  StartServer(device);
  CommandResult r = RunCommand({"nbdinfo", "--json", Uri()});
  ASSERT_EQ(r.status, 0) << r.output;
  nlohmann::json info = nlohmann::json::parse(r.output, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(info.is_discarded()) << r.output;
  EXPECT_EQ(info["protocol"], "newstyle-fixed");
  EXPECT_EQ(info["structured"], false);
  ASSERT_EQ(info["exports"].size(), 1u);
  const nlohmann::json& e = info["exports"][0];
  EXPECT_EQ(e["export-size"], 64 * 1024 * 1024);
  EXPECT_EQ(e["is_read_only"], false);
  EXPECT_EQ(e["can_flush"], true);
  EXPECT_EQ(e["can_fua"], true);
  EXPECT_EQ(e["can_trim"], true);
  EXPECT_EQ(e["can_zero"], true);
  EXPECT_EQ(e["can_multi_conn"], true);
  EXPECT_EQ(e["can_cache"], false);
  EXPECT_EQ(e["block_size_minimum"], 1);
  EXPECT_EQ(e["block_size_preferred"], 4096);
  EXPECT_EQ(e["block_size_maximum"], 32 * 1024 * 1024);

  // The named export and NBD_OPT_LIST work too; an unknown name is refused.
  r = RunCommand({"nbdinfo", "--size", "nbd+unix:///enclavia?socket=" + socket_});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "67108864\n");
  r = RunCommand({"nbdinfo", "--list", "--json", Uri()});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"export-name\": \"enclavia\""), std::string::npos) << r.output;
  r = RunCommand({"nbdinfo", "--size", "nbd+unix:///nope?socket=" + socket_});
  EXPECT_NE(r.status, 0) << r.output;
}

TEST_F(NbdInteropTest, NbdcopyIn64MiBAndOutAgainIsByteIdentical) {
  if (!nbd_testing::HaveTool("nbdcopy")) {
    GTEST_SKIP() << "nbdcopy (libnbd-bin) is not installed";
  }
  constexpr size_t kSize = 64 * 1024 * 1024;
  MemoryDevice device(kSize);
  StartServer(device);
  Bytes data = nbd_testing::RandomBytes(kSize, 42);
  // A zero run, so nbdcopy's sparse detection sends WRITE_ZEROES / TRIM as well.
  std::fill(data.begin() + 5 * 1024 * 1024, data.begin() + 7 * 1024 * 1024, 0);
  ASSERT_TRUE(WriteFile(dir_ + "/in.img", data));
  CommandResult r = RunCommand({"nbdcopy", "--flush", dir_ + "/in.img", Uri()});
  ASSERT_EQ(r.status, 0) << r.output;
  r = RunCommand({"nbdcopy", Uri(), dir_ + "/out.img"});
  ASSERT_EQ(r.status, 0) << r.output;
  Bytes out = ReadFile(dir_ + "/out.img");
  ASSERT_EQ(out.size(), kSize);
  EXPECT_TRUE(out == data) << "nbdcopy round trip differs";
  // Also check the device itself, not only what the server reads back.
  Bytes direct(kSize);
  ASSERT_TRUE(device.Read(0, direct).has_value());
  EXPECT_TRUE(direct == data);
  NbdStats stats = server_->stats();
  EXPECT_GE(stats.bytes_read, kSize);
  EXPECT_GE(stats.connections, 2u);
  EXPECT_EQ(stats.errors, 0u);
}

TEST_F(NbdInteropTest, DeviceReadErrorIsEioForNbdcopy) {
  if (!nbd_testing::HaveTool("nbdcopy")) {
    GTEST_SKIP() << "nbdcopy (libnbd-bin) is not installed";
  }
  MemoryDevice memory(4 * 1024 * 1024);
  FaultyDevice device(memory);
  device.FailReads(3 * 1024 * 1024, 512);
  StartServer(device);
  CommandResult r = RunCommand({"nbdcopy", Uri(), dir_ + "/out.img"});
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Input/output error"), std::string::npos) << r.output;
  EXPECT_GE(server_->stats().errors, 1u);
}

// StackGuard undoes the full stack in reverse, whatever step failed: unmount btrfs, detach the
// loop device, unmount the FUSE file system (nbdfuse then exits) and reap nbdfuse.
struct StackGuard {
  std::string mount_point;  // Set while btrfs is mounted.
  std::string loop_device;  // Set while attached.
  std::string fuse_dir;     // Set once nbdfuse was started.
  pid_t nbdfuse = -1;

  void Unmount() {
    if (mount_point.empty()) {
      return;
    }
    if (RunCommand({"umount", mount_point}).status != 0) {
      (void)RunCommand({"umount", "-l", mount_point});
    }
    mount_point.clear();
  }
  ~StackGuard() {
    Unmount();
    if (!loop_device.empty()) {
      (void)RunCommand({"losetup", "-d", loop_device});
    }
    if (!fuse_dir.empty()) {
      if (RunCommand({"fusermount3", "-u", fuse_dir}).status != 0) {
        (void)RunCommand({"fusermount3", "-u", "-z", fuse_dir});
      }
    }
    if (nbdfuse > 0) {
      nbd_testing::WaitOrKill(nbdfuse);
    }
  }
};

TEST_F(NbdInteropTest, BtrfsOverNbdfuseAndLoopSurvivesRemountAndScrub) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root (loop devices, mount)";
  }
  for (const char* dev : {"/dev/fuse", "/dev/loop-control"}) {
    if (::access(dev, R_OK | W_OK) != 0) {
      GTEST_SKIP() << dev << " is not available";
    }
  }
  for (const char* tool :
       {"nbdfuse", "fusermount3", "losetup", "mkfs.btrfs", "btrfs", "mount", "umount"}) {
    if (!nbd_testing::HaveTool(tool)) {
      GTEST_SKIP() << tool << " is not installed";
    }
  }
  MemoryDevice memory(256 * 1024 * 1024);
  FaultyDevice device(memory);  // Records the calls, injects nothing.
  StartServer(device);

  const std::string fuse_dir = dir_ + "/fuse";
  const std::string mnt = dir_ + "/mnt";
  const std::string pidfile = dir_ + "/nbdfuse.pid";
  ASSERT_TRUE(std::filesystem::create_directory(fuse_dir));
  ASSERT_TRUE(std::filesystem::create_directory(mnt));
  StackGuard guard;

  guard.nbdfuse = nbd_testing::Spawn(
      {"nbdfuse", "-P", pidfile, fuse_dir + "/disk", "--unix", socket_}, dir_ + "/nbdfuse.log");
  ASSERT_GT(guard.nbdfuse, 0);
  guard.fuse_dir = fuse_dir;
  for (int i = 0; i < 200 && !std::filesystem::exists(pidfile); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(std::filesystem::exists(pidfile)) << "nbdfuse did not become ready";

  CommandResult r = RunCommand({"losetup", "-f", "--show", fuse_dir + "/disk"});
  ASSERT_EQ(r.status, 0) << r.output;
  guard.loop_device = r.output.substr(0, r.output.find('\n'));
  ASSERT_EQ(guard.loop_device.rfind("/dev/loop", 0), 0u) << r.output;

  r = RunCommand({"mkfs.btrfs", "-q", "-f", guard.loop_device});
  ASSERT_EQ(r.status, 0) << r.output;
  r = RunCommand({"mount", guard.loop_device, mnt});
  ASSERT_EQ(r.status, 0) << r.output;
  guard.mount_point = mnt;

  std::vector<Bytes> files;
  for (int i = 0; i < 8; ++i) {
    files.push_back(nbd_testing::RandomBytes(static_cast<size_t>(i + 1) * 512 * 1024 + 123,
                                             static_cast<uint64_t>(100 + i)));
    ASSERT_TRUE(WriteFile(mnt + "/file" + std::to_string(i), files.back()));
  }
  ASSERT_EQ(RunCommand({"sync", "-f", mnt}).status, 0);
  guard.Unmount();

  r = RunCommand({"mount", guard.loop_device, mnt});
  ASSERT_EQ(r.status, 0) << r.output;
  guard.mount_point = mnt;
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(ReadFile(mnt + "/file" + std::to_string(i)) == files[static_cast<size_t>(i)])
        << "file" << i << " differs after remount";
  }
  r = RunCommand({"btrfs", "scrub", "start", "-B", mnt});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("no errors found"), std::string::npos) << r.output;

  // btrfs commits with flushes, and they reached the device through the whole stack.
  std::vector<std::string> events = device.events();
  EXPECT_NE(std::find(events.begin(), events.end(), "flush"), events.end());
  EXPECT_GT(server_->stats().bytes_written, 8u * 512 * 1024);
}

}  // namespace
}  // namespace enclavia::enclave
