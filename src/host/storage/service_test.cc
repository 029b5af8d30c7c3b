// SPDX-License-Identifier: Apache-2.0
#include "host/storage/service.h"

#include <unistd.h>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "host/storage/storage_test_util.h"

namespace enclavia::host::testing {
namespace {

namespace wire = storage::wire;

sys::UniqueFd ConnectTo(const std::string& path) {
  sys::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
  ENCLAVIA_CHECK(connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  return fd;
}

class StorageServiceTest : public ::testing::Test {
 protected:
  void Start(ServiceOptions options) {
    address_ = net::Address{net::Family::kUnix, dir_.path() + "/storage.sock", 0, 0};
    auto service = StorageService::Start(address_, backend_, std::move(options));
    ASSERT_TRUE(service) << service.error().message();
    service_ = std::move(service).value();
  }
  TempDir dir_;
  storage::MemoryObjectStore backend_;
  net::Address address_;
  std::unique_ptr<StorageService> service_;
};

TEST_F(StorageServiceTest, HelloAnswersTheAttachment) {
  ServiceOptions options;
  options.attachment = wire::Attachment();
  options.attachment->label = "data";
  options.attachment->size_bytes = 1 << 30;
  options.attachment->kms_key_id = "local:key-1";
  options.attachment->witnesses = 1;
  Start(std::move(options));
  storage::RemoteObjectStore client(address_);
  auto hello = client.Hello();
  ASSERT_TRUE(hello) << hello.error().message();
  ASSERT_TRUE(*hello);
  EXPECT_EQ((*hello)->label, "data");
  EXPECT_EQ((*hello)->size_bytes, 1u << 30);
  EXPECT_EQ((*hello)->kms_key_id, "local:key-1");
  EXPECT_EQ((*hello)->witnesses, 1);
}

TEST_F(StorageServiceTest, HelloWithoutAVolumeSaysSo) {
  Start(ServiceOptions{});
  storage::RemoteObjectStore client(address_);
  auto hello = client.Hello();
  ASSERT_TRUE(hello);
  EXPECT_FALSE(*hello);
}

TEST_F(StorageServiceTest, KeepsTheLastReportAndCounts) {
  Start(ServiceOptions{});
  EXPECT_FALSE(service_->last_report());
  storage::RemoteObjectStore client(address_);
  ASSERT_TRUE(client.Report("mounting"));
  ASSERT_TRUE(client.Report("refused: rollback from v7 to v5\n"));
  ASSERT_TRUE(client.Put("x", AsBytes("12345")));
  EXPECT_FALSE(client.Get("missing"));
  auto report = service_->last_report();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->status, "refused: rollback from v7 to v5?");
  ServiceStats stats = service_->stats();
  EXPECT_EQ(stats.requests, 4u);
  EXPECT_EQ(stats.errors, 1u);
  EXPECT_EQ(stats.connections, 1u);
  EXPECT_GT(stats.bytes_in, 5u);
  EXPECT_GT(stats.bytes_out, 0u);
  EXPECT_EQ(*backend_.Get("x"), ToBytes("12345"));
}

TEST_F(StorageServiceTest, MalformedRequestClosesOnlyThatConnection) {
  Start(ServiceOptions{});
  sys::UniqueFd bad = ConnectTo(address_.host);
  uint8_t garbage[] = {0, 0, 0, 3, 0x99, 0x01, 0x02};
  ASSERT_EQ(write(bad.get(), garbage, sizeof(garbage)), 7);
  bool clean = false;
  auto answer = wire::ReadFrame(bad.get(), &clean);
  EXPECT_FALSE(answer);
  EXPECT_TRUE(clean);  // Closed, nothing sent.

  sys::UniqueFd oversized = ConnectTo(address_.host);
  uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
  ASSERT_EQ(write(oversized.get(), huge, sizeof(huge)), 4);
  EXPECT_FALSE(wire::ReadFrame(oversized.get()));

  storage::RemoteObjectStore client(address_);
  EXPECT_TRUE(client.Put("still", AsBytes("serving")));
  EXPECT_GE(service_->stats().errors, 2u);
}

TEST_F(StorageServiceTest, ConnectionsAreBounded) {
  ServiceOptions options;
  options.max_connections = 1;
  Start(std::move(options));
  storage::RemoteObjectStore first(address_);
  ASSERT_TRUE(first.Put("a", AsBytes("1")));  // Holds the only slot.
  sys::UniqueFd second = ConnectTo(address_.host);
  bool clean = false;
  EXPECT_FALSE(wire::ReadFrame(second.get(), &clean));
  EXPECT_TRUE(clean);  // Accepted and closed at once.
  EXPECT_TRUE(first.Get("a"));
}

TEST_F(StorageServiceTest, ListensOnAnEphemeralTcpPortAndStopsTwice) {
  auto service = StorageService::Start(net::Address{net::Family::kTcp, "127.0.0.1", 0, 0}, backend_,
                                       ServiceOptions{});
  ASSERT_TRUE(service) << service.error().message();
  EXPECT_NE((*service)->address().port, 0u);
  storage::RemoteObjectStore client((*service)->address());
  EXPECT_TRUE(client.Put("tcp", AsBytes("ok")));
  (*service)->Stop();
  (*service)->Stop();
  EXPECT_FALSE(client.Get("tcp"));
}

}  // namespace
}  // namespace enclavia::host::testing
