// SPDX-License-Identifier: Apache-2.0
// In-process tests over real sockets: a fake enclave on a Unix socket (it parses records and
// echoes them, or floods, or stops reading) and Beast WebSocket clients, plain and TLS.
#include "host/relay/relay.h"

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <gtest/gtest.h>

namespace enclavia::host {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Bytes8 = std::vector<uint8_t>;
using namespace std::chrono_literals;

// Generous: the tests run on a loaded 2-core VM and under ASan.
constexpr std::chrono::steady_clock::duration kWait = 10s;

const std::string kFloodCommand = "enclavia-test:flood";
const std::string kSinkCommand = "enclavia-test:sink";
constexpr size_t kFloodRecord = 60000;

Bytes8 ToBytes(std::string_view s) { return Bytes8(s.begin(), s.end()); }

Bytes8 RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes8 out(n);
  for (auto& b : out) {
    b = static_cast<uint8_t>(rng());
  }
  return out;
}

bool WaitFor(const std::function<bool()>& done,
             std::chrono::steady_clock::duration timeout = kWait) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// RunFor runs one asynchronous operation on `io` (run by no other thread) for at most `timeout`.
// On timeout it calls `cancel` (which must make the operation complete) and returns timed_out.
template <typename Initiate, typename Cancel>
error_code RunFor(asio::io_context& io, Initiate&& initiate, Cancel&& cancel,
                  std::chrono::steady_clock::duration timeout = kWait) {
  bool done = false;
  error_code result;
  initiate([&done, &result](error_code ec, auto...) {
    done = true;
    result = ec;
  });
  io.restart();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done && io.run_one_until(deadline) > 0) {
  }
  if (done) {
    return result;
  }
  cancel();
  io.restart();
  while (!done && io.run_one() > 0) {
  }
  return asio::error::timed_out;
}

// FakeEnclave listens on a Unix socket and serves records. The first record of a connection may
// be a command: kFloodCommand (write kFloodRecord-byte records as fast as the relay takes them,
// read nothing more) or kSinkCommand (read nothing more). Otherwise every record is echoed.
class FakeEnclave {
 public:
  enum class Mode { kEcho, kCloseAtOnce };

  FakeEnclave(const std::string& path, Mode mode)
      : mode_(mode), acceptor_(io_, asio::local::stream_protocol::endpoint(path)) {
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeEnclave() {
    io_.stop();
    thread_.join();
  }

  uint64_t connections() const { return connections_.load(); }
  uint64_t ended() const { return ended_.load(); }  // Connections whose peer closed.
  uint64_t flooded() const { return flooded_.load(); }

 private:
  using Socket = asio::local::stream_protocol::socket;

  struct Conn : std::enable_shared_from_this<Conn> {
    Conn(FakeEnclave& e, Socket s) : enclave(e), socket(std::move(s)) {}

    void Read() {
      asio::async_read(socket, asio::buffer(header),
                       [self = shared_from_this()](error_code ec, size_t) {
                         if (ec) {
                           self->enclave.ended_.fetch_add(1);
                           return;
                         }
                         self->body.resize((size_t{self->header[0]} << 8) | self->header[1]);
                         asio::async_read(self->socket, asio::buffer(self->body),
                                          [self](error_code body_ec, size_t) {
                                            if (body_ec) {
                                              self->enclave.ended_.fetch_add(1);
                                              return;
                                            }
                                            self->OnRecord();
                                          });
                       });
    }

    void OnRecord() {
      bool first = records++ == 0;
      std::string_view text(reinterpret_cast<const char*>(body.data()), body.size());
      if (first && text == kSinkCommand) {
        enclave.parked_.push_back(shared_from_this());  // Keep the socket open, unread.
        return;
      }
      if (first && text == kFloodCommand) {
        out.assign(2 + kFloodRecord, 0x5a);
        out[0] = static_cast<uint8_t>(kFloodRecord >> 8);
        out[1] = static_cast<uint8_t>(kFloodRecord & 0xff);
        Flood();
        return;
      }
      out.assign(header.begin(), header.end());
      out.insert(out.end(), body.begin(), body.end());
      asio::async_write(socket, asio::buffer(out),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (!ec) {
                            self->Read();
                          }
                        });
    }

    void Flood() {
      asio::async_write(socket, asio::buffer(out),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (!ec) {
                            self->enclave.flooded_.fetch_add(kFloodRecord);
                            self->Flood();
                          }
                        });
    }

    FakeEnclave& enclave;
    Socket socket;
    std::array<uint8_t, 2> header{};
    Bytes8 body;
    Bytes8 out;
    uint64_t records = 0;
  };

  void Accept() {
    acceptor_.async_accept([this](error_code ec, Socket socket) {
      if (ec) {
        return;
      }
      connections_.fetch_add(1);
      if (mode_ == Mode::kCloseAtOnce) {
        error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Conn>(*this, std::move(socket))->Read();
      }
      Accept();
    });
  }

  Mode mode_;
  asio::io_context io_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::thread thread_;
  std::vector<std::shared_ptr<Conn>> parked_;  // Only on the enclave's thread.
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> ended_{0};
  std::atomic<uint64_t> flooded_{0};
};

// Client is a WebSocket client (TLS when kTls) with a deadline on every operation.
template <bool kTls>
class Client {
 public:
  using Next = std::conditional_t<kTls, asio::ssl::stream<tcp::socket>, tcp::socket>;

  Client() requires(!kTls) : ws_(io_) {}
  explicit Client(asio::ssl::context& tls) requires(kTls) : ws_(io_, tls) {}

  // Connect opens a WebSocket to 127.0.0.1:port. `offer`, if not empty, is sent as
  // Sec-WebSocket-Protocol. The server's response (also a refusal) lands in response().
  error_code Connect(uint16_t port, const std::string& target = "/",
                     const std::string& offer = "") {
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    error_code ec = Run([&](auto h) { Lowest().async_connect(endpoint, std::move(h)); });
    if (ec) {
      return ec;
    }
    if constexpr (kTls) {
      SSL_set_tlsext_host_name(ws_.next_layer().native_handle(), "localhost");
      ws_.next_layer().set_verify_mode(asio::ssl::verify_peer);
      ws_.next_layer().set_verify_callback(asio::ssl::host_name_verification("localhost"));
      ec = Run([&](auto h) {
        ws_.next_layer().async_handshake(asio::ssl::stream_base::client, std::move(h));
      });
      if (ec) {
        return ec;
      }
    }
    ws_.set_option(websocket::stream_base::decorator([offer](websocket::request_type& req) {
      if (!offer.empty()) {
        req.set(http::field::sec_websocket_protocol, offer);
      }
    }));
    ws_.binary(true);
    return Run([&](auto h) { ws_.async_handshake(response_, "localhost", target, std::move(h)); });
  }

  error_code Send(std::span<const uint8_t> data, bool text = false,
                  std::chrono::steady_clock::duration timeout = kWait) {
    ws_.text(text);
    return Run(
        [&](auto h) { ws_.async_write(asio::buffer(data.data(), data.size()), std::move(h)); },
        timeout);
  }
  error_code Send(std::string_view text_as_binary) { return Send(ToBytes(text_as_binary)); }

  struct Message {
    error_code ec;
    Bytes8 data;
    bool text = false;
  };
  Message Receive(std::chrono::steady_clock::duration timeout = kWait) {
    beast::flat_buffer buffer;
    Message m;
    m.ec = Run([&](auto h) { ws_.async_read(buffer, std::move(h)); }, timeout);
    auto data = buffer.data();
    const auto* p = static_cast<const uint8_t*>(data.data());
    m.data.assign(p, p + data.size());
    m.text = ws_.got_text();
    return m;
  }

  error_code Close() {
    return Run([&](auto h) { ws_.async_close(websocket::close_code::normal, std::move(h)); });
  }

  websocket::close_reason reason() const { return ws_.reason(); }
  const websocket::response_type& response() const { return response_; }

 private:
  tcp::socket& Lowest() { return beast::get_lowest_layer(ws_); }

  template <typename Initiate>
  error_code Run(Initiate&& initiate, std::chrono::steady_clock::duration timeout = kWait) {
    return RunFor(
        io_, std::forward<Initiate>(initiate),
        [this] {
          error_code ignored;
          Lowest().close(ignored);
        },
        timeout);
  }

  asio::io_context io_;
  websocket::stream<Next> ws_;
  websocket::response_type response_;
};

using PlainClient = Client<false>;
using TlsClient = Client<true>;

// ExpectEcho sends `data` and expects the same bytes back as one binary message.
void ExpectEcho(PlainClient& client, const Bytes8& data) {
  ASSERT_FALSE(client.Send(data)) << "size " << data.size();
  auto m = client.Receive();
  ASSERT_FALSE(m.ec) << m.ec.message();
  EXPECT_FALSE(m.text);
  EXPECT_EQ(m.data, data) << "size " << data.size();
}

// ExpectClosed expects the next read to end with a close frame carrying `code`.
template <bool kTls>
void ExpectClosed(Client<kTls>& client, websocket::close_code code) {
  auto m = client.Receive();
  ASSERT_EQ(m.ec, websocket::error::closed) << m.ec.message();
  EXPECT_EQ(client.reason().code, code);
}

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (std::filesystem::temp_directory_path() / "enclavia-relay-XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    enclave_path_ = dir_ + "/enclave.sock";
  }

  void TearDown() override {
    if (relay_) {
      relay_->Stop();
    }
    guard_.reset();
    io_.stop();
    for (auto& t : threads_) {
      t.join();
    }
    relay_.reset();
    enclave_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void StartEnclave(FakeEnclave::Mode mode = FakeEnclave::Mode::kEcho) {
    enclave_ = std::make_unique<FakeEnclave>(enclave_path_, mode);
  }

  RelayOptions DefaultOptions() {
    RelayOptions options;
    options.listen = *net::ParseAddress("tcp:127.0.0.1:0");
    options.enclave = *net::ParseAddress("unix:" + enclave_path_);
    return options;
  }

  // StartRelay runs a relay on two threads, to exercise the strands.
  void StartRelay(const std::function<void(RelayOptions&)>& adjust = {}) {
    RelayOptions options = DefaultOptions();
    if (adjust) {
      adjust(options);
    }
    auto relay = Relay::Create(io_, options);
    ASSERT_TRUE(relay) << relay.error().message();
    relay_ = std::move(*relay);
    for (int i = 0; i < 2; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
  }

  uint16_t port() const { return static_cast<uint16_t>(relay_->local_address().port); }

  std::string dir_;
  std::string enclave_path_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{
      io_.get_executor()};
  std::vector<std::thread> threads_;
  std::unique_ptr<FakeEnclave> enclave_;
  std::unique_ptr<Relay> relay_;
};

TEST_F(RelayTest, EchoesExactBytesOfEverySize) {
  StartEnclave();
  StartRelay();
  EXPECT_NE(relay_->local_address().port, 0u);
  EXPECT_EQ(relay_->local_address().host, "127.0.0.1");
  PlainClient client;
  ASSERT_FALSE(client.Connect(port()));
  uint64_t total = 0;
  for (size_t size : {size_t{0}, size_t{1}, size_t{2}, size_t{125}, size_t{126}, size_t{65535},
                      size_t{0}, size_t{4097}}) {
    ExpectEcho(client, RandomBytes(size, static_cast<uint32_t>(size)));
    total += size;
  }
  // Several messages in flight keep their boundaries and order.
  std::vector<Bytes8> burst;
  for (uint32_t i = 0; i < 8; ++i) {
    burst.push_back(RandomBytes(1000 + i, 100 + i));
    ASSERT_FALSE(client.Send(burst.back()));
    total += burst.back().size();
  }
  for (const auto& expected : burst) {
    auto m = client.Receive();
    ASSERT_FALSE(m.ec);
    EXPECT_EQ(m.data, expected);
  }
  ASSERT_FALSE(client.Close());
  EXPECT_TRUE(WaitFor([&] { return relay_->stats().active == 0; }));
  RelayStats stats = relay_->stats();
  EXPECT_EQ(stats.accepted, 1u);
  EXPECT_EQ(stats.bytes_up, total);
  EXPECT_EQ(stats.bytes_down, total);
}

TEST_F(RelayTest, EchoesTheSubprotocolOnlyWhenOffered) {
  StartEnclave();
  StartRelay();
  PlainClient offered;
  ASSERT_FALSE(offered.Connect(port(), "/", "chat, enclavia.v1"));
  EXPECT_EQ(offered.response()[http::field::sec_websocket_protocol], "enclavia.v1");
  ExpectEcho(offered, ToBytes("hello"));

  PlainClient other;
  ASSERT_FALSE(other.Connect(port(), "/", "chat"));
  EXPECT_EQ(other.response().count(http::field::sec_websocket_protocol), 0u);

  PlainClient none;
  ASSERT_FALSE(none.Connect(port()));
  EXPECT_EQ(none.response().count(http::field::sec_websocket_protocol), 0u);
}

TEST_F(RelayTest, FiftyConcurrentConnectionsEachGetTheirOwnData) {
  StartEnclave();
  StartRelay();
  constexpr int kClients = 50;
  std::vector<std::unique_ptr<PlainClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<PlainClient>());
    ASSERT_FALSE(clients.back()->Connect(port())) << i;
  }
  EXPECT_TRUE(WaitFor([&] { return enclave_->connections() == kClients; }));
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kClients; ++i) {
      ASSERT_FALSE(clients[i]->Send(RandomBytes(777 + i, static_cast<uint32_t>(round * 1000 + i))));
    }
    for (int i = 0; i < kClients; ++i) {
      auto m = clients[i]->Receive();
      ASSERT_FALSE(m.ec) << i;
      EXPECT_EQ(m.data, RandomBytes(777 + i, static_cast<uint32_t>(round * 1000 + i))) << i;
    }
  }
  EXPECT_EQ(relay_->stats().active, static_cast<uint64_t>(kClients));
}

TEST_F(RelayTest, OversizedMessageClosesOnlyThatConnectionWith1009) {
  StartEnclave();
  StartRelay([](RelayOptions& o) { o.max_message_size = 1000; });
  PlainClient big;
  PlainClient bystander;
  ASSERT_FALSE(big.Connect(port()));
  ASSERT_FALSE(bystander.Connect(port()));
  ExpectEcho(big, RandomBytes(1000, 1));  // Exactly the limit passes.
  ASSERT_FALSE(big.Send(RandomBytes(1001, 2)));
  ExpectClosed(big, websocket::close_code::too_big);
  ExpectEcho(bystander, RandomBytes(1000, 3));
  EXPECT_TRUE(WaitFor([&] { return relay_->stats().closed_oversize == 1; }));
  EXPECT_TRUE(WaitFor([&] { return relay_->stats().active == 1; }));
}

TEST_F(RelayTest, DefaultLimitIsTheRecordLimit) {
  StartEnclave();
  StartRelay();
  PlainClient client;
  ASSERT_FALSE(client.Connect(port()));
  ASSERT_FALSE(client.Send(RandomBytes(65536, 4)));
  ExpectClosed(client, websocket::close_code::too_big);
}

TEST_F(RelayTest, TextMessageClosesWith1003) {
  StartEnclave();
  StartRelay();
  PlainClient client;
  ASSERT_FALSE(client.Connect(port()));
  ASSERT_FALSE(client.Send(ToBytes("not binary"), /*text=*/true));
  ExpectClosed(client, websocket::close_code::unknown_data);
  EXPECT_EQ(relay_->stats().bytes_up, 0u);
}

TEST_F(RelayTest, WrongPathGets404) {
  StartEnclave();
  StartRelay([](RelayOptions& o) { o.path = "/enclavia"; });
  PlainClient wrong;
  EXPECT_EQ(wrong.Connect(port(), "/other"), websocket::error::upgrade_declined);
  EXPECT_EQ(wrong.response().result(), http::status::not_found);
  PlainClient right;
  ASSERT_FALSE(right.Connect(port(), "/enclavia?v=1"));
  ExpectEcho(right, ToBytes("ok"));
  EXPECT_EQ(relay_->stats().refused, 1u);
}

TEST_F(RelayTest, OverMaxConnectionsGets503UntilASlotFrees) {
  StartEnclave();
  StartRelay([](RelayOptions& o) { o.max_connections = 2; });
  PlainClient a;
  PlainClient b;
  ASSERT_FALSE(a.Connect(port()));
  ASSERT_FALSE(b.Connect(port()));
  // A round trip each: both sessions have left the handshake phase (whose own cap would close a
  // third connection at once, without the 503), so the connection limit is what refuses c.
  ExpectEcho(a, ToBytes("a0"));
  ExpectEcho(b, ToBytes("b0"));
  PlainClient c;
  EXPECT_EQ(c.Connect(port()), websocket::error::upgrade_declined);
  EXPECT_EQ(c.response().result(), http::status::service_unavailable);
  ASSERT_FALSE(a.Close());
  ASSERT_TRUE(WaitFor([&] { return relay_->stats().active == 1; }));
  PlainClient d;
  ASSERT_FALSE(d.Connect(port()));
  ExpectEcho(d, ToBytes("d"));
  ExpectEcho(b, ToBytes("b"));
}

TEST_F(RelayTest, IdleTimeoutClosesBothSides) {
  StartEnclave();
  StartRelay([](RelayOptions& o) { o.idle_timeout = 300ms; });
  PlainClient client;
  ASSERT_FALSE(client.Connect(port()));
  ExpectEcho(client, ToBytes("ping"));
  ExpectClosed(client, websocket::close_code::normal);
  EXPECT_EQ(client.reason().reason, "idle timeout");
  EXPECT_TRUE(WaitFor([&] { return enclave_->ended() == 1; }));
  EXPECT_EQ(relay_->stats().closed_idle, 1u);
}

TEST_F(RelayTest, UnreachableEnclaveClosesWith1011) {
  // No enclave listens at enclave_path_.
  StartRelay();
  PlainClient client;
  ASSERT_FALSE(client.Connect(port()));
  ExpectClosed(client, websocket::close_code::internal_error);
  EXPECT_EQ(client.reason().reason, "enclave unavailable");
  EXPECT_TRUE(WaitFor([&] { return relay_->stats().active == 0; }));
}

TEST_F(RelayTest, EnclaveClosingClosesTheWebSocketWith1000) {
  StartEnclave(FakeEnclave::Mode::kCloseAtOnce);
  StartRelay();
  PlainClient client;
  ASSERT_FALSE(client.Connect(port()));
  ExpectClosed(client, websocket::close_code::normal);
}

TEST_F(RelayTest, ClientClosingClosesTheEnclaveConnection) {
  StartEnclave();
  StartRelay();
  PlainClient client;
  ASSERT_FALSE(client.Connect(port()));
  ExpectEcho(client, ToBytes("x"));
  ASSERT_FALSE(client.Close());
  EXPECT_TRUE(WaitFor([&] { return enclave_->ended() == 1; }));
  EXPECT_TRUE(WaitFor([&] { return relay_->stats().active == 0; }));
}

TEST_F(RelayTest, SilentTcpConnectionIsDroppedAfterTheHandshakeTimeout) {
  StartEnclave();
  StartRelay([](RelayOptions& o) { o.handshake_timeout = 300ms; });
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()));
  std::array<uint8_t, 16> buffer{};
  error_code ec = RunFor(
      io, [&](auto h) { socket.async_read_some(asio::buffer(buffer), std::move(h)); },
      [&] { socket.close(); });
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_EQ(enclave_->connections(), 0u);
}

TEST_F(RelayTest, SlowClientStallsOnlyItsOwnConnection) {
  StartEnclave();
  StartRelay();
  PlainClient slow;
  PlainClient other;
  ASSERT_FALSE(slow.Connect(port()));
  ASSERT_FALSE(other.Connect(port()));
  ASSERT_FALSE(slow.Send(kFloodCommand));  // And never read.
  ASSERT_TRUE(WaitFor([&] { return enclave_->flooded() > 0; }));

  // The relay stops reading the enclave once the client stops reading: what the enclave managed
  // to write stops growing, at the socket buffers' size, not at the size of memory.
  uint64_t last = 0;
  int still = 0;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (still < 6 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(250ms);
    uint64_t now = enclave_->flooded();
    still = now == last ? still + 1 : 0;
    last = now;
  }
  ASSERT_EQ(still, 6) << "the enclave never stopped being able to write: " << last;
  EXPECT_LT(last, uint64_t{64} << 20);
  RelayStats stats = relay_->stats();
  EXPECT_LE(stats.bytes_down, last);

  ExpectEcho(other, RandomBytes(30000, 5));
  ExpectEcho(other, RandomBytes(1, 6));
  // The counter moves when the relay's write completes, which may be just after the client read.
  EXPECT_TRUE(WaitFor([&] { return relay_->stats().bytes_down - stats.bytes_down == 30001u; }));
}

TEST_F(RelayTest, EnclaveThatNeverReadsStallsOnlyThatClient) {
  StartEnclave();
  StartRelay();
  PlainClient stuck;
  PlainClient other;
  ASSERT_FALSE(stuck.Connect(port()));
  ASSERT_FALSE(other.Connect(port()));
  ASSERT_FALSE(stuck.Send(kSinkCommand));

  // Keep sending until a send cannot finish: the relay has stopped reading this client.
  Bytes8 chunk = RandomBytes(kFloodRecord, 7);
  uint64_t sent = 0;
  bool stalled = false;
  for (int i = 0; i < 2000 && !stalled; ++i) {
    error_code ec = stuck.Send(chunk, false, 2s);
    if (ec == asio::error::timed_out) {
      stalled = true;
    } else {
      ASSERT_FALSE(ec) << ec.message();
      sent += chunk.size();
    }
  }
  ASSERT_TRUE(stalled) << "sent " << sent << " bytes without backpressure";
  uint64_t up = relay_->stats().bytes_up;
  EXPECT_LT(up, sent);
  EXPECT_LT(up, uint64_t{16} << 20);

  ExpectEcho(other, RandomBytes(4000, 8));
  EXPECT_EQ(relay_->stats().active, 2u);  // Stalled, not closed.
}

TEST_F(RelayTest, StopClosesOpenConnectionsWith1001) {
  StartEnclave();
  StartRelay();
  PlainClient client;
  ASSERT_FALSE(client.Connect(port()));
  ExpectEcho(client, ToBytes("before"));
  uint16_t bound = port();
  relay_->Stop();
  ExpectClosed(client, websocket::close_code::going_away);
  PlainClient late;
  EXPECT_TRUE(late.Connect(bound));
}

TEST_F(RelayTest, ServesWssWithTheConfiguredCertificate) {
  std::string cert = dir_ + "/cert.pem";
  std::string key = dir_ + "/key.pem";
  std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  StartEnclave();
  StartRelay([&](RelayOptions& o) { o.tls = TlsFiles{cert, key}; });

  asio::ssl::context trusting(asio::ssl::context::tls_client);
  trusting.load_verify_file(cert);
  TlsClient client(trusting);
  ASSERT_FALSE(client.Connect(port(), "/", "enclavia.v1"));
  EXPECT_EQ(client.response()[http::field::sec_websocket_protocol], "enclavia.v1");
  for (size_t size : {size_t{0}, size_t{1}, size_t{65535}}) {
    Bytes8 data = RandomBytes(size, 9);
    ASSERT_FALSE(client.Send(data));
    auto m = client.Receive();
    ASSERT_FALSE(m.ec) << m.ec.message();
    EXPECT_EQ(m.data, data);
  }
  ASSERT_FALSE(client.Close());

  // A client that does not trust the certificate fails the TLS handshake.
  asio::ssl::context untrusting(asio::ssl::context::tls_client);
  TlsClient stranger(untrusting);
  EXPECT_TRUE(stranger.Connect(port()));
}

// PlainGet sends one HTTP/1.1 GET to 127.0.0.1:port and reads the response (or an error).
struct PlainResponse {
  error_code ec;
  unsigned status = 0;
  std::string content_type;
  std::string body;
};
PlainResponse PlainGet(uint16_t port, const std::string& target,
                       std::chrono::steady_clock::duration timeout = kWait) {
  asio::io_context io;
  tcp::socket socket(io);
  PlainResponse out;
  auto cancel = [&] {
    error_code ignored;
    socket.close(ignored);
  };
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  out.ec = RunFor(
      io, [&](auto h) { socket.async_connect(endpoint, std::move(h)); }, cancel);
  if (out.ec) {
    return out;
  }
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "localhost");
  out.ec = RunFor(
      io, [&](auto h) { http::async_write(socket, request, std::move(h)); }, cancel);
  if (out.ec) {
    return out;
  }
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  out.ec = RunFor(
      io, [&](auto h) { http::async_read(socket, buffer, response, std::move(h)); }, cancel,
      timeout);
  out.status = response.result_int();
  out.content_type = std::string(response[http::field::content_type]);
  out.body = response.body();
  return out;
}

// EchoHandler answers with the method, path, a query parameter and a header it saw.
void EchoHandler(enclavia::http::Request request, enclavia::http::Reply reply) {
  enclavia::http::Response response;
  response.status = request.path() == "/missing" ? 404 : 200;
  response.content_type = "text/plain";
  response.body = request.method + " " + request.target + " host=" + request.headers["host"];
  reply(std::move(response));
}

TEST_F(RelayTest, HttpHandlerAnswersPlainRequestsBesideTheWebSocket) {
  StartEnclave();
  StartRelay([](RelayOptions& o) { o.http_handler = EchoHandler; });
  PlainResponse wellknown = PlainGet(port(), "/.well-known/enclavia/attestation?nonce=00ff");
  ASSERT_FALSE(wellknown.ec) << wellknown.ec.message();
  EXPECT_EQ(wellknown.status, 200u);
  EXPECT_EQ(wellknown.content_type, "text/plain");
  EXPECT_EQ(wellknown.body, "GET /.well-known/enclavia/attestation?nonce=00ff host=localhost");
  PlainResponse missing = PlainGet(port(), "/missing");
  ASSERT_FALSE(missing.ec);
  EXPECT_EQ(missing.status, 404u);
  // A plain GET on the WebSocket path goes to the handler too; an upgrade there is relayed.
  PlainResponse root = PlainGet(port(), "/");
  ASSERT_FALSE(root.ec);
  EXPECT_EQ(root.status, 200u);
  PlainClient client;
  ASSERT_FALSE(client.Connect(port()));
  ExpectEcho(client, ToBytes("still a relay"));
  // An upgrade elsewhere is still refused.
  PlainClient wrong;
  EXPECT_EQ(wrong.Connect(port(), "/healthz"), websocket::error::upgrade_declined);
  EXPECT_EQ(wrong.response().result(), http::status::not_found);
  RelayStats stats = relay_->stats();
  EXPECT_EQ(stats.http_requests, 3u);
  EXPECT_EQ(stats.accepted, 1u);
  EXPECT_EQ(stats.refused, 1u);
  EXPECT_EQ(stats.answered, 1u);
}

TEST_F(RelayTest, HttpHandlerMayReplyLaterFromAnotherThread) {
  StartEnclave();
  std::vector<std::thread> repliers;
  std::mutex mu;
  StartRelay([&](RelayOptions& o) {
    o.http_handler = [&](enclavia::http::Request, enclavia::http::Reply reply) {
      std::lock_guard<std::mutex> lock(mu);
      repliers.emplace_back([reply = std::move(reply)] {
        std::this_thread::sleep_for(100ms);
        enclavia::http::Response response;
        response.body = R"({"late": true})";
        reply(response);
        reply(response);  // A second reply is ignored.
      });
    };
  });
  PlainResponse response = PlainGet(port(), "/healthz");
  ASSERT_FALSE(response.ec) << response.ec.message();
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(response.body, R"({"late": true})");
  std::lock_guard<std::mutex> lock(mu);
  for (auto& t : repliers) {
    t.join();
  }
}

TEST_F(RelayTest, HttpHandlerThatNeverRepliesIsCutAfterTheHandshakeTimeout) {
  StartEnclave();
  std::vector<enclavia::http::Reply> kept;  // Only on the relay's strands; one request.
  StartRelay([&](RelayOptions& o) {
    o.handshake_timeout = 300ms;
    o.http_handler = [&](enclavia::http::Request, enclavia::http::Reply reply) {
      kept.push_back(std::move(reply));
    };
  });
  auto start = std::chrono::steady_clock::now();
  PlainResponse response = PlainGet(port(), "/slow");
  EXPECT_TRUE(response.ec);
  EXPECT_NE(response.ec, asio::error::timed_out);  // The relay cut it, not our deadline.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(WaitFor([&] { return relay_->stats().http_requests == 1; }));
  // A reply after the cut is dropped without harm.
  ASSERT_EQ(kept.size(), 1u);
  kept[0](enclavia::http::Response{});
  PlainClient client;
  ASSERT_FALSE(client.Connect(port()));
  ExpectEcho(client, ToBytes("alive"));
}

TEST_F(RelayTest, WithoutAHandlerPlainRequestsAreRefusedAsBefore) {
  StartEnclave();
  StartRelay();
  PlainResponse root = PlainGet(port(), "/");
  ASSERT_FALSE(root.ec);
  EXPECT_EQ(root.status, 426u);
  PlainResponse other = PlainGet(port(), "/.well-known/enclavia/attestation?nonce=00");
  ASSERT_FALSE(other.ec);
  EXPECT_EQ(other.status, 404u);
  EXPECT_EQ(relay_->stats().refused, 2u);
  EXPECT_EQ(relay_->stats().http_requests, 0u);
}

TEST_F(RelayTest, AnsweredCountsConnectionsTheEnclaveWroteTo) {
  StartEnclave();
  StartRelay();
  PlainClient talker;
  ASSERT_FALSE(talker.Connect(port()));
  ExpectEcho(talker, ToBytes("one"));
  ExpectEcho(talker, ToBytes("two"));
  PlainClient sink;
  ASSERT_FALSE(sink.Connect(port()));
  ASSERT_FALSE(sink.Send(kSinkCommand));
  EXPECT_TRUE(WaitFor([&] { return enclave_->connections() == 2; }));
  EXPECT_EQ(relay_->stats().accepted, 2u);
  EXPECT_EQ(relay_->stats().answered, 1u);
}

TEST(RelayCreateTest, RejectsBadOptions) {
  asio::io_context io;
  auto base = [] {
    RelayOptions o;
    o.listen = *net::ParseAddress("tcp:127.0.0.1:0");
    o.enclave = *net::ParseAddress("unix:/nonexistent/enclave.sock");
    return o;
  };
  RelayOptions unix_listen = base();
  unix_listen.listen = *net::ParseAddress("unix:/tmp/x.sock");
  EXPECT_EQ(Relay::Create(io, unix_listen).error().code(), Code::kInvalidArgument);
  RelayOptions too_big = base();
  too_big.max_message_size = 65536;
  EXPECT_EQ(Relay::Create(io, too_big).error().code(), Code::kInvalidArgument);
  RelayOptions no_slots = base();
  no_slots.max_connections = 0;
  EXPECT_EQ(Relay::Create(io, no_slots).error().code(), Code::kInvalidArgument);
  RelayOptions bad_path = base();
  bad_path.path = "enclavia";
  EXPECT_EQ(Relay::Create(io, bad_path).error().code(), Code::kInvalidArgument);
  RelayOptions no_tls_files = base();
  no_tls_files.tls = TlsFiles{"/nonexistent/cert.pem", "/nonexistent/key.pem"};
  EXPECT_EQ(Relay::Create(io, no_tls_files).error().code(), Code::kInvalidArgument);

  auto first = Relay::Create(io, base());
  ASSERT_TRUE(first);
  RelayOptions taken = base();
  taken.listen.port = (*first)->local_address().port;
  auto second = Relay::Create(io, taken);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Code::kIo);
}

}  // namespace
}  // namespace enclavia::host
