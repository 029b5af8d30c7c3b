// SPDX-License-Identifier: Apache-2.0
#include "lib/http/http.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace enclavia::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "http_test.XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Fixture runs an io_context on two threads and starts servers on it.
class HttpTest : public ::testing::Test {
 protected:
  HttpTest() : work_(asio::make_work_guard(io_)) {
    for (int i = 0; i < 2; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
  }
  ~HttpTest() override {
    for (auto& t : helpers_) {
      t.join();
    }
    servers_.clear();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) {
      t.join();
    }
  }

  Server& Start(ServerOptions options) {
    if (options.listen.port == 0 && options.listen.host.empty()) {
      options.listen = *net::ParseAddress("tcp:127.0.0.1:0");
    }
    auto server = Server::Create(io_, std::move(options));
    EXPECT_TRUE(server.has_value()) << server.error().message();
    servers_.push_back(std::move(*server));
    return *servers_.back();
  }

  // Echo replies with what it was asked, as JSON.
  static void Echo(Request request, Reply reply) {
    nlohmann::json j = {{"method", request.method},
                        {"path", std::string(request.path())},
                        {"target", request.target},
                        {"body", request.body},
                        {"x", request.Header("X-Test")}};
    Response response;
    response.body = j.dump();
    reply(std::move(response));
  }

  static Request Get(std::string target) {
    Request r;
    r.method = "GET";
    r.target = std::move(target);
    return r;
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::vector<std::thread> helpers_;  // Threads replying late; joined before io_ stops.
  std::vector<std::unique_ptr<Server>> servers_;
};

TEST(RequestTest, QueryIsPercentDecoded) {
  Request r;
  r.target = "/v1/x?name=a%20b%2Fc&empty=&flag&plus=1+2&bad=%zz%4&n%61me2=v#frag";
  EXPECT_EQ(r.path(), "/v1/x");
  EXPECT_EQ(r.Query("name"), "a b/c");
  EXPECT_EQ(r.Query("empty"), "");
  EXPECT_EQ(r.Query("flag"), "");
  EXPECT_EQ(r.Query("plus"), "1 2");
  EXPECT_EQ(r.Query("bad"), "%zz%4");
  EXPECT_EQ(r.Query("name2"), "v");
  EXPECT_EQ(r.Query("missing"), std::nullopt);
  Request no_query;
  no_query.target = "/a";
  EXPECT_EQ(no_query.Query("a"), std::nullopt);
  EXPECT_EQ(no_query.path(), "/a");
}

TEST(RequestTest, JsonErrorIsOneLineAndStatusesMap) {
  Response r = JsonError(404, "no such\nthing");
  EXPECT_EQ(r.status, 404);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["error"], "no such thing");
  EXPECT_EQ(StatusFor(Error(Code::kNotFound, "")), 404);
  EXPECT_EQ(StatusFor(Error(Code::kAlreadyExists, "")), 409);
  EXPECT_EQ(StatusFor(Error(Code::kFailedPrecondition, "")), 409);
  EXPECT_EQ(StatusFor(Error(Code::kMalformed, "")), 400);
  EXPECT_EQ(StatusFor(Error(Code::kInvalidArgument, "")), 400);
  EXPECT_EQ(StatusFor(Error(Code::kUnavailable, "")), 503);
  EXPECT_EQ(StatusFor(Error(Code::kIo, "")), 500);
}

TEST_F(HttpTest, RoutesSyncAndAsyncReplies) {
  ServerOptions options;
  options.handler = [this](Request request, Reply reply) {
    if (request.path() == "/async") {
      helpers_.emplace_back([reply = std::move(reply)] {
        std::this_thread::sleep_for(50ms);
        Response r;
        r.status = 202;
        r.content_type = "text/plain";
        r.body = "later";
        r.headers.emplace_back("X-Extra", "1");
        reply(r);
        reply(r);  // A second call is ignored.
      });
      return;
    }
    Echo(std::move(request), std::move(reply));
  };
  Server& server = Start(std::move(options));
  auto to = server.local_address();
  EXPECT_NE(to.port, 0u);

  Request post;
  post.method = "POST";
  post.target = "/v1/things?a=1";
  post.body = "hello";
  post.headers["X-Test"] = "yes";
  auto r = Fetch(to, post);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "application/json");
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["path"], "/v1/things");
  EXPECT_EQ(j["target"], "/v1/things?a=1");
  EXPECT_EQ(j["body"], "hello");
  EXPECT_EQ(j["x"], "yes");

  auto a = Fetch(to, Get("/async"));
  ASSERT_TRUE(a.has_value()) << a.error().message();
  EXPECT_EQ(a->status, 202);
  EXPECT_EQ(a->content_type, "text/plain");
  EXPECT_EQ(a->body, "later");
  bool found = false;
  for (const auto& [name, value] : a->headers) {
    found = found || (name == "x-extra" && value == "1");
  }
  EXPECT_TRUE(found);
}

TEST_F(HttpTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  std::atomic<int> calls{0};
  ServerOptions options;
  options.handler = [&](Request request, Reply reply) {
    ++calls;
    Echo(std::move(request), std::move(reply));
  };
  Server& server = Start(std::move(options));
  asio::io_context client;
  asio::ip::tcp::socket socket(client);
  boost::system::error_code ec;
  socket.connect({asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server.local_address().port)}, ec);
  ASSERT_FALSE(ec) << ec.message();
  beast::flat_buffer buffer;
  for (int i = 0; i < 3; ++i) {
    bhttp::request<bhttp::string_body> req(bhttp::verb::get, "/n" + std::to_string(i), 11);
    req.set(bhttp::field::host, "x");
    bhttp::write(socket, req, ec);
    ASSERT_FALSE(ec) << ec.message();
    bhttp::response<bhttp::string_body> res;
    bhttp::read(socket, buffer, res, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_TRUE(res.keep_alive());
    EXPECT_EQ(nlohmann::json::parse(res.body())["path"], "/n" + std::to_string(i));
  }
  EXPECT_EQ(calls.load(), 3);
}

TEST_F(HttpTest, AnswersExpectContinueBeforeTheBodyIsSent) {
  ServerOptions options;
  options.handler = Echo;
  Server& server = Start(std::move(options));
  asio::io_context client;
  asio::ip::tcp::socket socket(client);
  boost::system::error_code ec;
  socket.connect({asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server.local_address().port)}, ec);
  ASSERT_FALSE(ec) << ec.message();
  std::string head =
      "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
  asio::write(socket, asio::buffer(head), ec);
  ASSERT_FALSE(ec) << ec.message();
  // The interim answer comes while the body is still unsent.
  std::string got;
  asio::read_until(socket, asio::dynamic_buffer(got), "\r\n\r\n", ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(got.substr(0, got.find("\r\n")), "HTTP/1.1 100 Continue");
  asio::write(socket, asio::buffer(std::string("hello")), ec);
  ASSERT_FALSE(ec) << ec.message();
  beast::flat_buffer buffer;
  std::string rest = got.substr(got.find("\r\n\r\n") + 4);
  asio::buffer_copy(buffer.prepare(rest.size()), asio::buffer(rest));
  buffer.commit(rest.size());
  bhttp::response<bhttp::string_body> res;
  bhttp::read(socket, buffer, res, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(res.body())["body"], "hello");
}

TEST_F(HttpTest, BearerTokenIsRequiredExceptOnPublicPaths) {
  ServerOptions options;
  options.bearer_token = "s3cret-token";
  options.public_paths = {"/healthz"};
  options.handler = Echo;
  Server& server = Start(std::move(options));
  auto to = server.local_address();

  auto none = Fetch(to, Get("/v1/x"));
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->status, 401);
  EXPECT_TRUE(nlohmann::json::parse(none->body).contains("error"));

  ClientOptions wrong;
  wrong.bearer_token = "s3cret-tokem";
  auto bad = Fetch(to, Get("/v1/x"), wrong);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->status, 401);
  wrong.bearer_token = "s3cret";
  EXPECT_EQ(Fetch(to, Get("/v1/x"), wrong)->status, 401);

  ClientOptions right;
  right.bearer_token = "s3cret-token";
  auto good = Fetch(to, Get("/v1/x"), right);
  ASSERT_TRUE(good.has_value());
  EXPECT_EQ(good->status, 200);

  auto pub = Fetch(to, Get("/healthz?x=1"));
  ASSERT_TRUE(pub.has_value());
  EXPECT_EQ(pub->status, 200);
  // A 401 answered before the body was read still reaches the client.
  Request post;
  post.method = "POST";
  post.target = "/v1/x";
  post.body = std::string(100000, 'a');
  auto unauth_post = Fetch(to, post);
  ASSERT_TRUE(unauth_post.has_value()) << unauth_post.error().message();
  EXPECT_EQ(unauth_post->status, 401);
}

TEST_F(HttpTest, BodyOverMaxIs413) {
  ServerOptions options;
  options.max_body = 1000;
  options.handler = Echo;
  Server& server = Start(std::move(options));
  Request post;
  post.method = "POST";
  post.target = "/";
  post.body = std::string(1000, 'a');
  auto ok = Fetch(server.local_address(), post);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
  post.body = std::string(1001, 'a');
  auto big = Fetch(server.local_address(), post);
  ASSERT_TRUE(big.has_value()) << big.error().message();
  EXPECT_EQ(big->status, 413);

  // Chunked bodies have no Content-Length: the limit applies while reading.
  asio::io_context client;
  asio::ip::tcp::socket socket(client);
  boost::system::error_code ec;
  socket.connect({asio::ip::make_address("127.0.0.1"),
                  static_cast<uint16_t>(server.local_address().port)}, ec);
  ASSERT_FALSE(ec);
  std::string chunk(1500, 'b');
  std::ostringstream raw;
  raw << "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" << std::hex
      << chunk.size() << "\r\n" << chunk << "\r\n0\r\n\r\n";
  asio::write(socket, asio::buffer(raw.str()), ec);
  ASSERT_FALSE(ec);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(socket, buffer, res, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(res.result_int(), 413u);
}

TEST_F(HttpTest, IdleAndStuckConnectionsTimeOut) {
  ServerOptions options;
  options.timeout = 300ms;
  options.handler = [](Request request, Reply reply) {
    if (request.path() == "/never") {
      return;  // Drops the reply: the timeout closes the connection.
    }
    Echo(std::move(request), std::move(reply));
  };
  Server& server = Start(std::move(options));

  // An idle connection is closed.
  asio::io_context client;
  asio::ip::tcp::socket socket(client);
  boost::system::error_code ec;
  socket.connect({asio::ip::make_address("127.0.0.1"),
                  static_cast<uint16_t>(server.local_address().port)}, ec);
  ASSERT_FALSE(ec);
  auto start = std::chrono::steady_clock::now();
  char byte;
  socket.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);

  // A handler that never replies: the client sees the connection end.
  auto never = Fetch(server.local_address(), Get("/never"));
  ASSERT_FALSE(never.has_value());
  EXPECT_EQ(never.error().code(), Code::kIo);
}

TEST_F(HttpTest, ClientTimesOut) {
  ServerOptions options;
  options.handler = [this](Request, Reply reply) {
    helpers_.emplace_back([reply = std::move(reply)] {
      std::this_thread::sleep_for(1500ms);
      reply(Response{});
    });
  };
  Server& server = Start(std::move(options));
  ClientOptions client;
  client.timeout = 200ms;
  auto start = std::chrono::steady_clock::now();
  auto r = Fetch(server.local_address(), Get("/"), client);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kIo);
  EXPECT_NE(r.error().message().find("timed out"), std::string::npos) << r.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms);
}

TEST_F(HttpTest, ServesUnixSockets) {
  TempDir dir;
  ServerOptions options;
  options.listen = *net::ParseAddress("unix:" + dir.path() + "/api.sock");
  options.bearer_token = "t";
  options.handler = Echo;
  Server& server = Start(std::move(options));
  EXPECT_EQ(server.local_address().family, net::Family::kUnix);
  ClientOptions client;
  client.bearer_token = "t";
  auto r = Fetch(server.local_address(), Get("/over-unix"), client);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(nlohmann::json::parse(r->body)["path"], "/over-unix");
  server.Stop();
  struct stat st {};
  EXPECT_NE(::lstat((dir.path() + "/api.sock").c_str(), &st), 0);  // Removed by Stop.
}

TEST_F(HttpTest, StreamToDeliversTheBodyInPieces) {
  std::string big(1 << 20, 'x');
  for (size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>('a' + i % 26);
  }
  ServerOptions options;
  options.handler = [&](Request, Reply reply) {
    Response r;
    r.content_type = "text/plain";
    r.body = big;
    reply(std::move(r));
  };
  Server& server = Start(std::move(options));
  std::string got;
  int pieces = 0;
  auto status = StreamTo(server.local_address(), Get("/logs"), {}, [&](std::string_view data) {
    got.append(data);
    ++pieces;
    return true;
  });
  ASSERT_TRUE(status.has_value()) << status.error().message();
  EXPECT_EQ(*status, 200);
  EXPECT_EQ(got, big);
  EXPECT_GT(pieces, 1);

  size_t seen = 0;
  auto stopped = StreamTo(server.local_address(), Get("/logs"), {}, [&](std::string_view data) {
    seen += data.size();
    return false;
  });
  ASSERT_TRUE(stopped.has_value());
  EXPECT_LT(seen, big.size());
}

TEST_F(HttpTest, FetchToAClosedPortIsUnavailable) {
  // Bind and close a port so nothing listens on it.
  uint32_t port;
  {
    asio::io_context tmp;
    asio::ip::tcp::acceptor acceptor(tmp, {asio::ip::make_address("127.0.0.1"), 0});
    port = acceptor.local_endpoint().port();
  }
  net::Address to = *net::ParseAddress("tcp:127.0.0.1:" + std::to_string(port));
  auto r = Fetch(to, Get("/"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
  EXPECT_EQ(r.error().message().rfind("cannot reach tcp:127.0.0.1:" + std::to_string(port), 0), 0u)
      << r.error().message();

  auto unix_missing = Fetch(*net::ParseAddress("unix:/nonexistent/dir/x.sock"), Get("/"));
  ASSERT_FALSE(unix_missing.has_value());
  EXPECT_EQ(unix_missing.error().code(), Code::kUnavailable);
}

TEST_F(HttpTest, SpoolsBodiesToFilesAndSendsFiles) {
  TempDir dir;
  std::string received_file;
  std::string received_contents;
  ServerOptions options;
  options.max_body = 10;  // In-memory bodies stay small; spooled ones may be bigger.
  options.spool_max_body = 1 << 20;
  options.spool = [&](const Request& head) -> std::optional<std::string> {
    if (head.path() != "/upload") {
      return std::nullopt;
    }
    return dir.path() + "/spool.tmp";
  };
  options.handler = [&](Request request, Reply reply) {
    received_file = request.body_file;
    std::ifstream in(request.body_file, std::ios::binary);
    received_contents.assign(std::istreambuf_iterator<char>(in), {});
    EXPECT_TRUE(request.body.empty());
    struct stat st {};
    EXPECT_EQ(::stat(request.body_file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ::unlink(request.body_file.c_str());
    reply(Response{});
  };
  Server& server = Start(std::move(options));

  std::string payload(300000, 'p');
  std::string source = dir.path() + "/source.bin";
  {
    std::ofstream out(source, std::ios::binary);
    out << payload;
  }
  Request post;
  post.method = "POST";
  post.target = "/upload";
  post.body_file = source;
  auto r = Fetch(server.local_address(), post);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(received_file, dir.path() + "/spool.tmp");
  EXPECT_EQ(received_contents, payload);

  // Over spool_max_body: 413 and no file left.
  std::string huge_source = dir.path() + "/huge.bin";
  {
    std::ofstream out(huge_source, std::ios::binary);
    out << std::string((1 << 20) + 1, 'h');
  }
  post.body_file = huge_source;
  auto big = Fetch(server.local_address(), post);
  ASSERT_TRUE(big.has_value()) << big.error().message();
  EXPECT_EQ(big->status, 413);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/spool.tmp"));

  // Other paths still use memory and max_body.
  Request small;
  small.method = "POST";
  small.target = "/other";
  small.body = std::string(11, 's');
  EXPECT_EQ(Fetch(server.local_address(), small)->status, 413);
}

TEST_F(HttpTest, StopClosesIdleConnectionsAndRefusesNewOnes) {
  ServerOptions options;
  options.handler = Echo;
  Server& server = Start(std::move(options));
  auto to = server.local_address();
  ASSERT_TRUE(Fetch(to, Get("/")).has_value());
  asio::io_context client;
  asio::ip::tcp::socket socket(client);
  boost::system::error_code ec;
  socket.connect({asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(to.port)}, ec);
  ASSERT_FALSE(ec);
  std::this_thread::sleep_for(50ms);
  server.Stop();
  char byte;
  socket.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  std::this_thread::sleep_for(50ms);
  auto after = Fetch(to, Get("/"));
  ASSERT_FALSE(after.has_value());
  EXPECT_EQ(after.error().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace enclavia::http
