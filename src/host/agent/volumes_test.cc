// SPDX-License-Identifier: Apache-2.0
// The agent's side of volumes: the deploy spec, the storage port an enclave dials, the witness
// pipes, and the host-side copies (snapshots, backups).
#include "host/agent/volumes.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "lib/storage/remote_store.h"
#include "testing/temp_dir.h"

namespace enclavia::host {
namespace {

using json = nlohmann::json;

using testing::TempDir;

TEST(VolumeSpecTest, ParsesAndRoundTrips) {
  auto spec = ParseVolumeSpec(json{{"size_bytes", 1 << 30},
                                   {"backend", "s3://bucket-1/some/prefix"},
                                   {"witnesses", {"witness-1", "witness-2"}}});
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_EQ(spec->size_bytes, uint64_t{1} << 30);
  EXPECT_EQ(spec->backend, "s3://bucket-1/some/prefix");
  EXPECT_EQ(spec->witnesses.size(), 2u);
  auto again = ParseVolumeSpec(VolumeSpecJson(*spec));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->witnesses, spec->witnesses);
}

TEST(VolumeSpecTest, RejectsEveryBadField) {
  for (const json& bad :
       {json{{"backend", "dir"}}, json{{"size_bytes", 4095}}, json{{"size_bytes", 0}},
        json{{"size_bytes", -4096}}, json{{"size_bytes", "1G"}},
        json{{"size_bytes", 4096}, {"backend", "ftp://x"}},
        json{{"size_bytes", 4096}, {"backend", "dir:relative"}},
        json{{"size_bytes", 4096}, {"backend", "s3://A_B"}},
        json{{"size_bytes", 4096}, {"witnesses", {"Bad_Name"}}},
        json{{"size_bytes", 4096}, {"witnesses", json::array({"a", "b", "c", "d", "e", "f", "g", "h"})}},
        json{{"size_bytes", 4096}, {"recovery_statement", "zz"}},
        json{{"size_bytes", 4096}, {"extra", 1}}, json::array()}) {
    EXPECT_FALSE(ParseVolumeSpec(bad)) << bad.dump();
  }
}

TEST(EnclaveStorageTest, TheEnclaveSeesItsAttachmentAndItsObjects) {
  TempDir dir;
  transport::Endpoint endpoint;
  endpoint.local_dir = dir.path() + "/vsock";
  std::filesystem::create_directories(endpoint.local_dir);
  VolumeSpec spec;
  spec.size_bytes = 64 << 20;
  spec.witnesses = {"witness-1"};
  auto storage = EnclaveStorage::Start("kv", spec, endpoint, dir.path() + "/volumes",
                                       [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(storage) << storage.error().message();
  storage::RemoteObjectStore enclave(*net::ParseAddress("unix:" + endpoint.local_dir +
                                                        "/parent-5002.sock"));
  auto hello = enclave.Hello();
  ASSERT_TRUE(hello) << hello.error().message();
  ASSERT_TRUE(hello->has_value());
  EXPECT_EQ((*hello)->label, "kv");
  EXPECT_EQ((*hello)->size_bytes, uint64_t{64} << 20);
  EXPECT_EQ((*hello)->kms_key_id, "kv");
  EXPECT_EQ((*hello)->witnesses, 1);
  ASSERT_TRUE(enclave.Put("seg/0000000000000001", Bytes{1, 2, 3}));
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/volumes/kv/seg/0000000000000001"));
  ASSERT_TRUE(enclave.Report(R"({"state":"mounted","version":7})"));
  json shown = (*storage)->Json();
  EXPECT_EQ(shown["status"]["version"], 7);
  EXPECT_EQ(shown["witnesses"], json::array({"witness-1"}));
  EXPECT_GT(shown["requests"].get<uint64_t>(), 2u);

  // A witness that does not run: its port refuses (the connection is closed at once).
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  auto address = net::Resolve(*net::ParseAddress("unix:" + endpoint.local_dir +
                                                 "/parent-5100.sock"));
  ASSERT_TRUE(address);
  ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address->storage), address->size), 0);
  char c = 0;
  EXPECT_EQ(::read(fd, &c, 1), 0);
  ::close(fd);
}

TEST(EnclaveStorageTest, WithoutAVolumeTheEnclaveHearsNone) {
  TempDir dir;
  transport::Endpoint endpoint;
  endpoint.local_dir = dir.path();
  auto storage = EnclaveStorage::Start("hello", VolumeSpec{}, endpoint, dir.path() + "/volumes",
                                       [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(storage) << storage.error().message();
  storage::RemoteObjectStore enclave(*net::ParseAddress("unix:" + dir.path() + "/parent-5002.sock"));
  auto hello = enclave.Hello();
  ASSERT_TRUE(hello) << hello.error().message();
  EXPECT_FALSE(hello->has_value());
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/volumes"));
}

TEST(PortForwardTest, PipesBothWaysToTheTargetOfTheMoment) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  uint16_t port = acceptor.local_endpoint().port();
  std::thread echo([&] {
    tcp::socket peer(io);
    acceptor.accept(peer);
    char buf[5];
    asio::read(peer, asio::buffer(buf));
    asio::write(peer, asio::buffer(std::string("pong:") + std::string(buf, 5)));
  });
  TempDir dir;
  bool up = true;
  auto forward = PortForward::Start(*net::ParseAddress("unix:" + dir.path() + "/w.sock"),
                                    [&]() -> std::optional<net::Address> {
                                      if (!up) {
                                        return std::nullopt;
                                      }
                                      return net::ParseAddress("tcp:127.0.0.1:" + std::to_string(port)).value();
                                    });
  ASSERT_TRUE(forward) << forward.error().message();
  auto address = net::Resolve(*net::ParseAddress("unix:" + dir.path() + "/w.sock"));
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address->storage), address->size), 0);
  ASSERT_EQ(::write(fd, "hello", 5), 5);
  std::string got;
  char buf[64];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) {
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, "pong:hello");
  ::close(fd);
  echo.join();
  EXPECT_EQ((*forward)->connections(), 1u);
  EXPECT_EQ((*forward)->bytes(), 15u);
  // No target now: refused (closed at once).
  up = false;
  fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address->storage), address->size), 0);
  EXPECT_EQ(::read(fd, buf, 1), 0);
  ::close(fd);
}

TEST(CopyObjectsTest, CopiesEveryObject) {
  storage::MemoryObjectStore from;
  storage::MemoryObjectStore to;
  ASSERT_TRUE(from.Put("seg/0000000000000001", Bytes{1}));
  ASSERT_TRUE(from.Put("kms/data-key", Bytes{2, 3}));
  auto copied = CopyObjects(from, to);
  ASSERT_TRUE(copied);
  EXPECT_EQ(*copied, 2u);
  EXPECT_EQ(to.Snapshot(), from.Snapshot());
  EXPECT_EQ(RecoveryInfo(to, 0).error().code(), Code::kNotFound);
}

}  // namespace
}  // namespace enclavia::host
