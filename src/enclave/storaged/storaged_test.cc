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
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "enclave/storage/nbd_server.h"
#include "enclave/storaged/attach.h"
#include "enclave/storaged/daemon.h"
#include "lib/storage/block_device.h"

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

}  // namespace
}  // namespace enclavia::enclave
