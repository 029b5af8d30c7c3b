// SPDX-License-Identifier: Apache-2.0
// NbdServer over a real Unix socket, driven by a raw client written from the spec.
#include "enclave/storage/nbd_server.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "enclave/storage/nbd_test_util.h"

namespace enclavia::enclave {
namespace {

using nbd_testing::FaultyDevice;
using nbd_testing::MemoryDevice;
using nbd_testing::RawClient;
using nbd_testing::RawReply;

constexpr uint64_t kSize = 8 * 1024 * 1024;
constexpr uint16_t kRead = 0, kWrite = 1, kDisc = 2, kFlush = 3, kTrim = 4, kZeroes = 6;
constexpr uint16_t kFua = 1;

class NbdServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = nbd_testing::MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/nbd.sock";
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartServer(NbdOptions options = {}) {
    Result<std::unique_ptr<NbdServer>> s = NbdServer::Start(path_, faulty_, std::move(options));
    ASSERT_TRUE(s.has_value()) << s.error().message();
    server_ = std::move(s).value();
  }

  RawClient Connected() {
    Result<RawClient> c = RawClient::Connect(path_);
    EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message());
    Result<std::pair<uint64_t, uint16_t>> go = c->Go("");
    EXPECT_TRUE(go.has_value()) << (go ? "" : go.error().message());
    return std::move(c).value();
  }

  std::string dir_;
  std::string path_;
  MemoryDevice memory_{kSize};
  FaultyDevice faulty_{memory_};
  std::unique_ptr<NbdServer> server_;
};

TEST_F(NbdServerTest, SocketIsMode0600) {
  StartServer();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(NbdServerTest, GoReportsSizeAndFlags) {
  StartServer();
  Result<RawClient> c = RawClient::Connect(path_);
  ASSERT_TRUE(c.has_value());
  Result<std::pair<uint64_t, uint16_t>> go = c->Go("enclavia");
  ASSERT_TRUE(go.has_value()) << go.error().message();
  EXPECT_EQ(go->first, kSize);
  EXPECT_EQ(go->second, nbd::kDefaultTransmissionFlags);
}

TEST_F(NbdServerTest, WriteThenReadRoundTripsAndCountsStats) {
  StartServer();
  RawClient c = Connected();
  Bytes data = nbd_testing::RandomBytes(100000, 1);
  Result<RawReply> w = c.Call(0, kWrite, 12345, static_cast<uint32_t>(data.size()), data);
  ASSERT_TRUE(w.has_value()) << w.error().message();
  EXPECT_EQ(w->error, 0u);
  Result<RawReply> r = c.Call(0, kRead, 12345, static_cast<uint32_t>(data.size()));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->error, 0u);
  EXPECT_EQ(r->data, data);

  ASSERT_EQ(c.Call(0, kZeroes, 12345 + 10, 20)->error, 0u);
  ASSERT_EQ(c.Call(0, kTrim, 12345 + 50000, 1000)->error, 0u);
  r = c.Call(0, kRead, 12345, 60000);
  ASSERT_TRUE(r.has_value());
  for (size_t i = 0; i < 60000; ++i) {
    bool zeroed = (i >= 10 && i < 30) || (i >= 50000 && i < 51000);
    ASSERT_EQ(r->data[i], zeroed ? 0 : data[i]) << i;
  }

  NbdStats stats = server_->stats();
  EXPECT_EQ(stats.connections, 1u);
  EXPECT_EQ(stats.requests, 5u);
  EXPECT_EQ(stats.bytes_written, 100000u);
  EXPECT_EQ(stats.bytes_read, 160000u);
  EXPECT_EQ(stats.errors, 0u);
}

TEST_F(NbdServerTest, ReadErrorIsEioForThatRequestAndConnectionSurvives) {
  StartServer();
  faulty_.FailReads(1 << 20, 4096);
  RawClient c = Connected();
  Result<RawReply> bad = c.Call(0, kRead, (1 << 20) + 100, 512);
  ASSERT_TRUE(bad.has_value()) << bad.error().message();
  EXPECT_EQ(bad->error, nbd::kEio);
  EXPECT_TRUE(bad->data.empty());
  // The same connection keeps working, for reads elsewhere and for writes.
  Bytes data = nbd_testing::RandomBytes(4096, 2);
  ASSERT_EQ(c.Call(0, kWrite, 0, 4096, data)->error, 0u);
  Result<RawReply> good = c.Call(0, kRead, 0, 4096);
  ASSERT_TRUE(good.has_value());
  EXPECT_EQ(good->error, 0u);
  EXPECT_EQ(good->data, data);
  EXPECT_EQ(server_->stats().errors, 1u);
}

TEST_F(NbdServerTest, OutOfRangeRequestsAreRejectedWithoutClosing) {
  StartServer();
  RawClient c = Connected();
  EXPECT_EQ(c.Call(0, kRead, kSize - 10, 20)->error, nbd::kEinval);
  Bytes data(20, 0xab);
  EXPECT_EQ(c.Call(0, kWrite, kSize - 10, 20, data)->error, nbd::kEnospc);  // Payload drained.
  EXPECT_EQ(c.Call(0, kRead, UINT64_MAX - 5, 20)->error, nbd::kEinval);
  EXPECT_EQ(c.Call(0, kRead, 0, nbd::kMaxPayload + 1)->error, nbd::kEinval);
  EXPECT_EQ(c.Call(0, 7, 0, 512)->error, nbd::kEinval);             // BLOCK_STATUS: not negotiated.
  EXPECT_EQ(c.Call(1 << 4, kZeroes, 0, 512)->error, nbd::kEinval);  // FAST_ZERO: not offered.
  // Still in sync: a valid request works.
  Result<RawReply> r = c.Call(0, kRead, kSize - 10, 10);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error, 0u);
  EXPECT_EQ(r->data.size(), 10u);
  // The device never saw the rejected requests.
  for (const std::string& e : faulty_.events()) {
    EXPECT_EQ(e, "read");
  }
}

TEST_F(NbdServerTest, FlushRepliesOnlyAfterDeviceFlushReturned) {
  StartServer();
  RawClient c = Connected();
  Bytes data(4096, 7);
  ASSERT_EQ(c.Call(0, kWrite, 0, 4096, data)->error, 0u);
  faulty_.CloseFlushGate();
  ASSERT_TRUE(c.SendRequest(0, kFlush, 99, 0, 0).has_value());
  ASSERT_TRUE(faulty_.WaitForEvent("flush-begin"));
  // The device's Flush is blocked: no reply may have been sent.
  EXPECT_FALSE(c.Readable(200));
  faulty_.OpenFlushGate();
  Result<RawReply> reply = c.RecvReply(0);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error, 0u);
  EXPECT_EQ(reply->cookie, 99u);
  EXPECT_EQ(faulty_.events(), (std::vector<std::string>{"write", "flush-begin", "flush"}));
}

TEST_F(NbdServerTest, FuaPassesThroughToTheDevice) {
  StartServer();
  RawClient c = Connected();
  Bytes data(512, 1);
  ASSERT_EQ(c.Call(kFua, kWrite, 0, 512, data)->error, 0u);
  ASSERT_EQ(c.Call(0, kWrite, 512, 512, data)->error, 0u);
  EXPECT_EQ(faulty_.events(), (std::vector<std::string>{"write+fua", "write"}));
}

TEST_F(NbdServerTest, BadRequestMagicClosesTheConnection) {
  StartServer();
  RawClient c = Connected();
  Bytes garbage(28, 0x42);
  ASSERT_TRUE(c.Send(garbage).has_value());
  EXPECT_TRUE(c.ClosedByPeer());
}

TEST_F(NbdServerTest, OversizedWriteClosesTheConnection) {
  StartServer();
  RawClient c = Connected();
  ASSERT_TRUE(c.SendRequest(0, kWrite, 1, 0, nbd::kMaxPayload + 1).has_value());
  EXPECT_TRUE(c.ClosedByPeer());
}

TEST_F(NbdServerTest, DiscClosesTheConnectionWithoutReply) {
  StartServer();
  RawClient c = Connected();
  ASSERT_TRUE(c.SendRequest(0, kDisc, 1, 0, 0).has_value());
  EXPECT_TRUE(c.ClosedByPeer());
}

TEST_F(NbdServerTest, UnknownClientFlagsCloseTheConnection) {
  StartServer();
  Result<RawClient> c = RawClient::Connect(path_);
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE(c->Greeting(0x10).has_value());
  EXPECT_TRUE(c->ClosedByPeer());
}

TEST_F(NbdServerTest, OptionHagglingOverTheSocket) {
  StartServer();
  Result<RawClient> c = RawClient::Connect(path_);
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE(c->Greeting(3).has_value());
  ASSERT_TRUE(c->SendOption(nbd::kOptStructuredReply, {}).has_value());
  EXPECT_EQ(c->RecvOptionReply(nbd::kOptStructuredReply)->first, nbd::kRepErrUnsup);
  // Option data over 16 KiB is drained and refused; the session goes on.
  ASSERT_TRUE(c->SendOption(nbd::kOptList, Bytes(20000, 0)).has_value());
  EXPECT_EQ(c->RecvOptionReply(nbd::kOptList)->first, nbd::kRepErrTooBig);
  ASSERT_TRUE(c->SendOption(nbd::kOptList, {}).has_value());
  auto server = c->RecvOptionReply(nbd::kOptList);
  ASSERT_TRUE(server.has_value());
  EXPECT_EQ(server->first, nbd::kRepServer);
  EXPECT_EQ(AsString(ByteSpan(server->second).subspan(4)), "enclavia");
  EXPECT_EQ(c->RecvOptionReply(nbd::kOptList)->first, nbd::kRepAck);
  // NBD_OPT_EXPORT_NAME without NO_ZEROES... the client sent NO_ZEROES: 10 bytes.
  ASSERT_TRUE(c->SendOption(nbd::kOptExportName, AsBytes("enclavia")).has_value());
  Result<Bytes> reply = c->Recv(10);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(ByteSpan(*reply).first(8)[7], 0);  // 8 MiB = 0x800000.
  EXPECT_EQ((*reply)[5], 0x80);
  // Transmission works.
  ASSERT_TRUE(c->SendRequest(0, kRead, 5, 0, 16).has_value());
  Result<RawReply> r = c->RecvReply(16);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->cookie, 5u);
  EXPECT_EQ(r->data, Bytes(16, 0));
}

TEST_F(NbdServerTest, AbortIsAckedThenClosed) {
  StartServer();
  Result<RawClient> c = RawClient::Connect(path_);
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE(c->Greeting(1).has_value());
  ASSERT_TRUE(c->SendOption(nbd::kOptAbort, {}).has_value());
  EXPECT_EQ(c->RecvOptionReply(nbd::kOptAbort)->first, nbd::kRepAck);
  EXPECT_TRUE(c->ClosedByPeer());
}

TEST_F(NbdServerTest, SeveralConnectionsShareTheDevice) {
  StartServer();
  RawClient a = Connected();
  RawClient b = Connected();
  Bytes data = nbd_testing::RandomBytes(8192, 3);
  ASSERT_EQ(a.Call(0, kWrite, 4096, 8192, data)->error, 0u);
  Result<RawReply> r = b.Call(0, kRead, 4096, 8192);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->data, data);
  // Concurrent writers on distinct ranges.
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([this, i] {
      RawClient c = Connected();
      Bytes d(65536, static_cast<uint8_t>(i + 1));
      for (int k = 0; k < 16; ++k) {
        uint64_t offset = (uint64_t{1} << 20) * static_cast<uint64_t>(i + 1) + 65536u * k;
        EXPECT_EQ(c.Call(0, kWrite, offset, 65536, d)->error, 0u);
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  for (int i = 0; i < 4; ++i) {
    Result<RawReply> got =
        a.Call(0, kRead, (uint64_t{1} << 20) * static_cast<uint64_t>(i + 1), 65536 * 16);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->data, Bytes(65536 * 16, static_cast<uint8_t>(i + 1)));
  }
}

TEST_F(NbdServerTest, ConnectionsOverTheCapAreClosed) {
  StartServer(NbdOptions{.export_name = "enclavia", .max_connections = 1});
  RawClient a = Connected();
  Result<RawClient> b = RawClient::Connect(path_);
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(b->ClosedByPeer());
  EXPECT_EQ(a.Call(0, kRead, 0, 1)->error, 0u);
}

TEST_F(NbdServerTest, StopClosesConnectionsAndRemovesTheSocket) {
  StartServer();
  RawClient idle = Connected();
  Result<RawClient> haggling = RawClient::Connect(path_);
  ASSERT_TRUE(haggling.has_value());
  server_->Stop();
  EXPECT_TRUE(idle.ClosedByPeer());
  EXPECT_TRUE(haggling->ClosedByPeer());
  EXPECT_FALSE(std::filesystem::exists(path_));
  server_->Stop();  // Idempotent.
}

TEST_F(NbdServerTest, StopWhileAFlushIsInTheDevice) {
  StartServer();
  RawClient c = Connected();
  faulty_.CloseFlushGate();
  ASSERT_TRUE(c.SendRequest(0, kFlush, 1, 0, 0).has_value());
  ASSERT_TRUE(faulty_.WaitForEvent("flush-begin"));
  std::thread stopper([this] { server_->Stop(); });
  // Stop cannot finish while the device call runs; once it returns, Stop joins.
  faulty_.OpenFlushGate();
  stopper.join();
  EXPECT_TRUE(c.ClosedByPeer());
}

TEST_F(NbdServerTest, StartReplacesAStaleSocketButNotALiveOneOrAFile) {
  // A regular file at the path is not ours to remove.
  std::FILE* f = std::fopen(path_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  Result<std::unique_ptr<NbdServer>> s = NbdServer::Start(path_, memory_, {});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), Code::kAlreadyExists);
  std::filesystem::remove(path_);

  // A socket file nobody listens on (a crashed server's) is replaced.
  {
    sys::UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  }
  ASSERT_TRUE(std::filesystem::exists(path_));
  StartServer();
  EXPECT_TRUE(Connected().Call(0, kRead, 0, 1).has_value());

  // A live server's socket is not taken over.
  s = NbdServer::Start(path_, memory_, {});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), Code::kAlreadyExists);
  EXPECT_TRUE(Connected().Call(0, kRead, 0, 1).has_value());
}

TEST_F(NbdServerTest, StartRejectsBadOptions) {
  EXPECT_EQ(NbdServer::Start(path_, memory_, NbdOptions{.max_connections = 0}).error().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(NbdServer::Start(path_, memory_, NbdOptions{.export_name = std::string(4097, 'a')})
                .error()
                .code(),
            Code::kInvalidArgument);
  EXPECT_EQ(NbdServer::Start(dir_ + "/" + std::string(120, 's'), memory_, {}).error().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace enclavia::enclave
