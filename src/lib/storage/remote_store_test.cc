// SPDX-License-Identifier: Apache-2.0
// RemoteObjectStore against hostile hosts: test servers that answer garbage, oversized lengths,
// the wrong response, or close in the middle of a frame. Every case must be a one-line error.
// (The conformance suite against the real StorageService lives in src/host/storage.)
#include "lib/storage/remote_store.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace enclavia::storage {
namespace {

// Handler answers one request on `fd` (it may write anything, or nothing); false closes the
// connection.
using Handler = std::function<bool(int fd, const wire::Request& request, int connection)>;

class ScriptedHost {
 public:
  explicit ScriptedHost(Handler handler) : handler_(std::move(handler)) {
    char tmpl[] = "/tmp/enclavia-remote-XXXXXX";
    ENCLAVIA_CHECK(mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/storage.sock";
    listen_ = sys::UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path_.c_str());
    ENCLAVIA_CHECK(bind(listen_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    ENCLAVIA_CHECK(listen(listen_.get(), 4) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedHost() {
    shutdown(listen_.get(), SHUT_RDWR);
    thread_.join();
    std::filesystem::remove_all(dir_);
  }

  net::Address address() const { return net::Address{net::Family::kUnix, path_, 0, 0}; }
  int connections() const { return connections_; }

 private:
  void Serve() {
    for (;;) {
      sys::UniqueFd conn(accept(listen_.get(), nullptr, nullptr));
      if (!conn.valid()) {
        return;
      }
      int n = ++connections_;
      for (;;) {
        auto frame = wire::ReadFrame(conn.get());
        if (!frame) {
          break;
        }
        auto request = wire::DecodeRequest(*frame);
        ENCLAVIA_CHECK(request.has_value());
        if (!handler_(conn.get(), *request, n)) {
          break;
        }
      }
    }
  }

  Handler handler_;
  std::string dir_;
  std::string path_;
  sys::UniqueFd listen_;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

void SendRaw(int fd, const Bytes& bytes) {
  ENCLAVIA_CHECK(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                 static_cast<ssize_t>(bytes.size()));
}

void Answer(int fd, const wire::Response& response) {
  auto body = wire::EncodeResponse(response);
  ENCLAVIA_CHECK(body.has_value());
  ENCLAVIA_CHECK(wire::WriteFrame(fd, *body).has_value());
}

wire::Response Resp(wire::Type type) {
  wire::Response r;
  r.type = type;
  return r;
}

wire::Response ErrorResp(wire::Type type, Error error) {
  wire::Response r = Resp(type);
  r.error = std::move(error);
  return r;
}

bool OneLine(const Error& e) { return e.message().find('\n') == std::string::npos; }

TEST(RemoteObjectStoreTest, WorksAgainstAWellBehavedHost) {
  ScriptedHost host([](int fd, const wire::Request& req, int) {
    wire::Response resp = Resp(req.type);
    if (req.type == wire::Type::kGet) {
      resp.data = ToBytes("value of " + req.name);
    } else if (req.type == wire::Type::kList) {
      resp.names = {req.name + "1", req.name + "2"};
    } else if (req.type == wire::Type::kHello) {
      resp.attachment = wire::Attachment();
      resp.attachment->label = "data";
      resp.attachment->size_bytes = 1 << 20;
    }
    Answer(fd, resp);
    return true;
  });
  RemoteObjectStore store(host.address());
  EXPECT_EQ(*store.Get("k"), ToBytes("value of k"));
  EXPECT_EQ(*store.List("seg/"), (std::vector<std::string>{"seg/1", "seg/2"}));
  auto hello = store.Hello();
  ASSERT_TRUE(hello) << hello.error().message();
  ASSERT_TRUE(*hello);
  EXPECT_EQ((*hello)->label, "data");
  EXPECT_TRUE(store.Put("k", ToBytes("v")));
  EXPECT_TRUE(store.Report("mounted\nv1"));
  EXPECT_EQ(host.connections(), 1);
}

TEST(RemoteObjectStoreTest, HostErrorsComeBackWithTheirCode) {
  ScriptedHost host([](int fd, const wire::Request& req, int) {
    Answer(fd, ErrorResp(req.type, Error(Code::kNotFound, "no object k")));
    return true;
  });
  RemoteObjectStore store(host.address());
  auto r = store.Get("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kNotFound);
  EXPECT_EQ(r.error().message(), "storage host: no object k");
}

TEST(RemoteObjectStoreTest, GarbageIsMalformed) {
  ScriptedHost host([](int fd, const wire::Request&, int) {
    SendRaw(fd, {0, 0, 0, 3, 0x42, 0x42, 0x42});
    return true;
  });
  RemoteObjectStore store(host.address());
  auto r = store.Get("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kMalformed);
  EXPECT_TRUE(OneLine(r.error()));
  EXPECT_NE(r.error().message().find("storage host"), std::string::npos);
}

TEST(RemoteObjectStoreTest, OversizedLengthIsRefusedWithoutAllocating) {
  ScriptedHost host([](int fd, const wire::Request&, int) {
    SendRaw(fd, {0xff, 0xff, 0xff, 0xff});
    return true;
  });
  RemoteObjectStore store(host.address());
  auto r = store.Get("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kMalformed);
  EXPECT_NE(r.error().message().find("over the limit"), std::string::npos);
  EXPECT_EQ(host.connections(), 1);  // Not retried: that was no broken connection.
}

TEST(RemoteObjectStoreTest, WrongResponseTypeIsMalformed) {
  ScriptedHost host([](int fd, const wire::Request&, int) {
    Answer(fd, Resp(wire::Type::kPut));
    return true;
  });
  RemoteObjectStore store(host.address());
  auto r = store.Get("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kMalformed);
  EXPECT_EQ(r.error().message(), "storage host: answered a get request with a put response");
}

TEST(RemoteObjectStoreTest, ShortRangeAndForeignListNamesAreMalformed) {
  ScriptedHost host([](int fd, const wire::Request& req, int) {
    wire::Response resp = Resp(req.type);
    resp.data = ToBytes("abc");
    resp.names = {"other/1"};
    Answer(fd, resp);
    return true;
  });
  RemoteObjectStore store(host.address());
  auto range = store.GetRange("k", 0, 10);
  ASSERT_FALSE(range);
  EXPECT_EQ(range.error().code(), Code::kMalformed);
  auto list = store.List("seg/");
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().code(), Code::kMalformed);
}

TEST(RemoteObjectStoreTest, ClosingMidFrameIsRetriedOnceThenAnError) {
  ScriptedHost host([](int fd, const wire::Request&, int) {
    SendRaw(fd, {0, 0, 0, 10, 0x83, 0x00});
    return false;
  });
  RemoteObjectStore store(host.address());
  auto r = store.Get("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_NE(r.error().message().find("middle of a frame"), std::string::npos);
  EXPECT_EQ(host.connections(), 2);
}

TEST(RemoteObjectStoreTest, ReconnectsOnceAfterTheHostDropsTheConnection) {
  ScriptedHost host([](int fd, const wire::Request& req, int connection) {
    if (connection == 1) {
      return false;  // Drop the first connection without answering.
    }
    wire::Response resp = Resp(req.type);
    resp.data = ToBytes("ok");
    Answer(fd, resp);
    return true;
  });
  RemoteObjectStore store(host.address());
  auto r = store.Get("k");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, ToBytes("ok"));
  EXPECT_EQ(host.connections(), 2);
}

TEST(RemoteObjectStoreTest, StallingHostTimesOut) {
  ScriptedHost host([](int, const wire::Request&, int) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    return false;
  });
  RemoteObjectStore store(host.address(), RemoteStoreOptions{std::chrono::milliseconds(50)});
  auto r = store.Get("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_TRUE(OneLine(r.error()));
}

TEST(RemoteObjectStoreTest, VersionMismatchIsUnsupported) {
  ScriptedHost host([](int fd, const wire::Request& req, int) {
    wire::Response resp = Resp(req.type);
    resp.version = 9;
    Answer(fd, resp);
    return true;
  });
  RemoteObjectStore store(host.address());
  auto r = store.Hello();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kUnsupported);
}

TEST(RemoteObjectStoreTest, NoServiceIsUnavailable) {
  RemoteObjectStore store(net::Address{net::Family::kUnix, "/nonexistent/enclavia.sock", 0, 0});
  auto r = store.Get("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_NE(r.error().message().find("cannot connect"), std::string::npos);
}

TEST(RemoteObjectStoreTest, InvalidNamesNeverLeaveTheEnclave) {
  RemoteObjectStore store(net::Address{net::Family::kUnix, "/nonexistent/enclavia.sock", 0, 0});
  auto r = store.Put("../x", ToBytes("v"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_TRUE(store.List("UPPER")->empty());
}

}  // namespace
}  // namespace enclavia::storage
