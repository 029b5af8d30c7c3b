// SPDX-License-Identifier: Apache-2.0
// AsyncDial over DialOptions::via: the WebSocket runs over the given stream address (here a Unix
// socket) and the URL only names the Host header and the path.
#include "client/websocket.h"
#include "testing/temp_dir.h"

#include <stdlib.h>

#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>

namespace enclavia::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using local = asio::local::stream_protocol;

using testing::TempDir;

// UnixEchoServer accepts one WebSocket on a Unix socket, records the upgrade's Host and target,
// and echoes one binary message.
struct Upgrade {
  std::string host;
  std::string target;
};

std::future<Upgrade> ServeOnce(local::acceptor& acceptor) {
  return std::async(std::launch::async, [&acceptor] {
    Upgrade seen;
    boost::system::error_code ec;
    local::socket socket(acceptor.get_executor());
    acceptor.accept(socket, ec);
    if (ec) {
      return seen;
    }
    websocket::stream<local::socket> ws(std::move(socket));
    beast::http::request<beast::http::empty_body> request;
    beast::flat_buffer buffer;
    beast::http::read(ws.next_layer(), buffer, request, ec);
    if (ec) {
      return seen;
    }
    seen.host = std::string(request[beast::http::field::host]);
    seen.target = std::string(request.target());
    ws.accept(request, ec);
    if (ec) {
      return seen;
    }
    beast::flat_buffer message;
    ws.read(message, ec);
    if (!ec) {
      ws.binary(true);
      ws.write(message.data(), ec);
    }
    ws.close(websocket::close_code::normal, ec);
    return seen;
  });
}

TEST(WebSocketViaTest, DialsTheViaAddressAndKeepsTheUrlsHostAndPath) {
  TempDir dir;
  std::string path = dir.path() + "/parent-5100.sock";
  asio::io_context server_io;
  local::acceptor acceptor(server_io, local::endpoint(path));
  auto served = ServeOnce(acceptor);

  auto url = ParseUrl("ws://witness-2.invalid:8443/witness");  // Never resolved.
  ASSERT_TRUE(url);
  DialOptions options;
  options.via = *net::ParseAddress("unix:" + path);
  asio::io_context io;
  std::promise<Result<Bytes>> echoed;
  std::unique_ptr<tunnel::MessageStream> stream;
  AsyncDial(io.get_executor(), *url, options,
            [&](Result<std::unique_ptr<tunnel::MessageStream>> dialed) {
              if (!dialed) {
                echoed.set_value(dialed.error());
                return;
              }
              stream = std::move(*dialed);
              stream->AsyncWrite(Bytes{1, 2, 3}, [&](Result<void> wrote) {
                if (!wrote) {
                  echoed.set_value(wrote.error());
                  return;
                }
                stream->AsyncRead([&](Result<Bytes> read) { echoed.set_value(std::move(read)); });
              });
            });
  io.run();
  auto result = echoed.get_future().get();
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(*result, (Bytes{1, 2, 3}));
  stream.reset();  // Closes the socket: the server's close handshake ends.
  Upgrade seen = served.get();
  EXPECT_EQ(seen.host, "witness-2.invalid:8443");
  EXPECT_EQ(seen.target, "/witness");
}

TEST(WebSocketViaTest, AnAddressNobodyListensOnFailsClearly) {
  TempDir dir;
  auto url = ParseUrl("ws://witness.invalid/");
  ASSERT_TRUE(url);
  DialOptions options;
  options.via = *net::ParseAddress("unix:" + dir.path() + "/nobody.sock");
  asio::io_context io;
  std::optional<Error> error;
  AsyncDial(io.get_executor(), *url, options,
            [&](Result<std::unique_ptr<tunnel::MessageStream>> dialed) {
              ASSERT_FALSE(dialed);
              error = dialed.error();
            });
  io.run();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code(), Code::kUnavailable);
  EXPECT_NE(error->message().find("nobody.sock"), std::string::npos) << error->message();
}

}  // namespace
}  // namespace enclavia::client
