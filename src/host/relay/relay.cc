// SPDX-License-Identifier: Apache-2.0
// The one file that talks to Boost.Beast for the relay: every Beast/Asio call here uses an
// error_code overload, and the few that can only throw (context construction) are caught in
// Relay::Create.
#include "host/relay/relay.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <mutex>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <openssl/ssl.h>

#include "lib/net/framing.h"
#include "lib/net/accept_retry.h"
#include "lib/net/listen.h"

namespace enclavia::host {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxRequestHeaderSize = 8192;
// Buffer for records from the enclave: several full records per read (a record is ≤ 64 KiB + 2).
constexpr size_t kDownBufferSize = 256 * 1024;
constexpr std::chrono::milliseconds kMaxCloseGrace{3000};
constexpr std::string_view kSubprotocol = "enclavia.v1";

// SessionBase lets Relay::Stop reach every connection without knowing its stream type.
// Sessions are owned by the handlers of their own pending operations (the usual Asio lifetime:
// a connection lives exactly as long as something can still happen to it), hence shared_ptr.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  // Abort closes the connection (1001). Thread-safe: it posts to the session's strand.
  virtual void Abort() = 0;
};

}  // namespace

struct Relay::State {
  State(asio::io_context& io_context, RelayOptions opts)
      : io(io_context),
        options(std::move(opts)),
        acceptor(asio::make_strand(io_context)),
        accept_retry(acceptor.get_executor()) {}

  // TryAcquireSlot counts one more open connection unless max_connections are open.
  bool TryAcquireSlot() {
    uint64_t current = active.load();
    while (current < options.max_connections) {
      if (active.compare_exchange_weak(current, current + 1)) {
        return true;
      }
    }
    return false;
  }

  asio::io_context& io;
  const RelayOptions options;
  asio::generic::stream_protocol::endpoint enclave_endpoint;
  std::optional<asio::ssl::context> tls;
  tcp::acceptor acceptor;           // Used only on its own strand.
  asio::steady_timer accept_retry;  // Same strand as the acceptor.
  net::Address local;
  std::chrono::milliseconds close_grace{0};

  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> pending{0};  // Sessions between TCP accept and the open phase.
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> active{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> closed_oversize{0};
  std::atomic<uint64_t> closed_idle{0};
  std::atomic<uint64_t> bytes_up{0};
  std::atomic<uint64_t> bytes_down{0};
  std::atomic<uint64_t> answered{0};
  std::atomic<uint64_t> http_requests{0};

  std::mutex mu;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;  // Guarded by mu.
};

namespace {

// OffersSubprotocol reports whether any Sec-WebSocket-Protocol header lists "enclavia.v1"
// (RFC 6455 §4.1: a comma-separated list; the values are case-sensitive).
bool OffersSubprotocol(const http::request<http::empty_body>& request) {
  auto [begin, end] = request.equal_range(http::field::sec_websocket_protocol);
  for (auto it = begin; it != end; ++it) {
    std::string_view list = it->value();
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
        item.remove_prefix(1);
      }
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
        item.remove_suffix(1);
      }
      if (item == kSubprotocol) {
        return true;
      }
    }
  }
  return false;
}

// Session is one client: its WebSocket (over TCP, or TLS when kTls) and its enclave connection.
// Every member is used only on the session's strand (the executor of its sockets and timer).
//
// Phases: kHandshake (TLS, HTTP upgrade, dialling the enclave; bounded by handshake_timeout),
// kOpen (piping; bounded by idle_timeout), kClosing (close handshake; bounded by close_grace).
// In each direction exactly one operation is outstanding: a read, or the write of what that
// read returned; the next read starts only when the write completed.
template <bool kTls>
class Session final : public SessionBase {
 public:
  using Next = std::conditional_t<kTls, asio::ssl::stream<tcp::socket>, tcp::socket>;

  template <typename... Args>
  explicit Session(std::shared_ptr<Relay::State> state, Args&&... args)
      : state_(std::move(state)),
        ws_(std::forward<Args>(args)...),
        enclave_(ws_.get_executor()),
        timer_(ws_.get_executor()) {}

  ~Session() override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->sessions.erase(this);
    }
    ReleaseCounters();
  }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Start registers the session and begins the handshake on its strand. The caller has already
  // counted it in state->pending.
  void Start() {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->sessions.emplace(this, weak_from_this());
    }
    pending_ = true;
    asio::dispatch(ws_.get_executor(), [self = Self()] { self->OnStart(); });
  }

  void Abort() override {
    asio::post(ws_.get_executor(), [self = Self()] {
      self->CloseWs(websocket::close_code::going_away, "relay stopping");
    });
  }

 private:
  enum class Phase { kHandshake, kOpen, kClosing };

  std::shared_ptr<Session> Self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  tcp::socket& Lowest() { return beast::get_lowest_layer(ws_); }

  void OnStart() {
    if (state_->stopping.load()) {
      Teardown();
      return;
    }
    error_code ignored;
    Lowest().set_option(tcp::no_delay(true), ignored);
    ArmTimer(Clock::now() + state_->options.handshake_timeout);
    if constexpr (kTls) {
      ws_.next_layer().async_handshake(asio::ssl::stream_base::server,
                                       [self = Self()](error_code ec) {
                                         if (ec || self->closing_) {
                                           self->Teardown();
                                           return;
                                         }
                                         self->ReadRequest();
                                       });
    } else {
      ReadRequest();
    }
  }

  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(kMaxRequestHeaderSize);
    http::async_read(ws_.next_layer(), http_buffer_, *parser_,
                     [self = Self()](error_code ec, size_t) { self->OnRequest(ec); });
  }

  void OnRequest(error_code ec) {
    if (ec || closing_) {
      Teardown();
      return;
    }
    const http::request<http::empty_body>& request = parser_->get();
    std::string_view target = request.target();
    target = target.substr(0, target.find('?'));
    if (state_->options.http_handler && !websocket::is_upgrade(request)) {
      ServeHttp(request);
      return;
    }
    if (target != state_->options.path) {
      Refuse(http::status::not_found, "not found\n");
      return;
    }
    if (!websocket::is_upgrade(request)) {
      Refuse(http::status::upgrade_required, "this is a WebSocket endpoint\n");
      return;
    }
    if (!state_->TryAcquireSlot()) {
      Refuse(http::status::service_unavailable, "too many connections\n");
      return;
    }
    holds_slot_ = true;
    bool offered = OffersSubprotocol(request);
    ws_.set_option(websocket::stream_base::decorator([offered](websocket::response_type& res) {
      res.set(http::field::server, "enclavia-relay");
      if (offered) {
        res.set(http::field::sec_websocket_protocol, kSubprotocol);
      }
    }));
    // Beast's own timer bounds the close handshake, including the ones it starts by itself
    // (1002 for a protocol error); idleness is ours to track.
    ws_.set_option(websocket::stream_base::timeout{state_->options.handshake_timeout,
                                                   websocket::stream_base::none(), false});
    ws_.read_message_max(0);  // Unlimited for Beast: ReadClient enforces max_message_size.
    ws_.binary(true);
    // One WebSocket frame per message: Beast would otherwise cut each message into 4 KiB frames,
    // which costs the client a read (two on this kernel) per 4 KiB.
    ws_.auto_fragment(false);
    ws_.async_accept(request,
                     [self = Self()](error_code accept_ec) { self->OnAccepted(accept_ec); });
  }

  void Refuse(http::status status, std::string_view body) {
    state_->refused.fetch_add(1);
    refusal_.version(11);
    refusal_.result(status);
    refusal_.set(http::field::server, "enclavia-relay");
    refusal_.set(http::field::content_type, "text/plain");
    refusal_.keep_alive(false);
    refusal_.body() = std::string(body);
    refusal_.prepare_payload();
    http::async_write(ws_.next_layer(), refusal_,
                      [self = Self()](error_code, size_t) { self->Teardown(); });
  }

  // ServeHttp hands a plain request to http_handler and writes its reply, then closes. The reply
  // may come from any thread (it is posted to this strand), or never (the handshake timer then
  // cuts the connection), or after the connection was cut (it is dropped).
  void ServeHttp(const http::request<http::empty_body>& request) {
    state_->http_requests.fetch_add(1);
    enclavia::http::Request plain;
    plain.method = std::string(request.method_string());
    plain.target = std::string(request.target());
    for (const auto& field : request) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      });
      plain.headers[name] = std::string(field.value());
    }
    auto replied = std::make_shared<std::atomic<bool>>(false);
    enclavia::http::Reply reply = [self = Self(), replied](enclavia::http::Response response) {
      if (replied->exchange(true)) {
        return;  // Exactly once; a second reply is a handler bug, and harmless here.
      }
      asio::post(self->ws_.get_executor(), [self, response = std::move(response)]() mutable {
        self->WriteHttpResponse(std::move(response));
      });
    };
    // The handler runs on this strand and must not block (it may reply later).
    state_->options.http_handler(std::move(plain), std::move(reply));
  }

  void WriteHttpResponse(enclavia::http::Response response) {
    if (closing_ || torn_down_) {
      return;
    }
    timer_.cancel();  // Writing the reply is bounded by close_grace instead.
    ArmTimer(Clock::now() + state_->close_grace);
    phase_ = Phase::kClosing;
    closing_ = true;
    refusal_.version(11);
    refusal_.result(static_cast<unsigned>(response.status));
    refusal_.set(http::field::server, "enclavia-relay");
    refusal_.set(http::field::content_type, response.content_type);
    refusal_.set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : response.headers) {
      refusal_.set(name, value);
    }
    refusal_.keep_alive(false);
    refusal_.body() = std::move(response.body);
    refusal_.prepare_payload();
    http::async_write(ws_.next_layer(), refusal_,
                      [self = Self()](error_code, size_t) { self->Teardown(); });
  }

  void OnAccepted(error_code ec) {
    if (ec || closing_) {
      Teardown();
      return;
    }
    ws_open_ = true;
    state_->accepted.fetch_add(1);
    enclave_.async_connect(state_->enclave_endpoint, [self = Self()](error_code connect_ec) {
      self->OnEnclaveConnected(connect_ec);
    });
  }

  void OnEnclaveConnected(error_code ec) {
    if (closing_) {
      return;
    }
    if (ec) {
      CloseWs(websocket::close_code::internal_error, "enclave unavailable");
      return;
    }
    if (state_->options.enclave.family == net::Family::kTcp) {
      error_code ignored;
      enclave_.set_option(tcp::no_delay(true), ignored);
    }
    phase_ = Phase::kOpen;
    LeavePending();
    Touch();
    if (state_->options.idle_timeout.count() > 0) {
      ArmTimer(last_activity_ + state_->options.idle_timeout);
    } else {
      timer_.cancel();
    }
    ReadClient();
    ReadEnclave();
  }

  // Client → enclave.

  // ReadClient reads the next piece of the current message, never past max_message_size + 1
  // bytes in all. The limit is enforced here rather than by Beast's read_message_max: Boost
  // 1.74's teardown after its own 1009 close stops draining after one read and closes with
  // unread data, so the client gets a TCP reset instead of the close frame. Our close goes
  // through async_close, which reads on until the client's close frame.
  void ReadClient() {
    size_t room = state_->options.max_message_size + 1 - up_buffer_.size();
    ws_.async_read_some(up_buffer_, room,
                        [self = Self()](error_code ec, size_t) { self->OnClientRead(ec); });
  }

  void OnClientRead(error_code ec) {
    if (torn_down_) {
      return;
    }
    if (ec) {
      // The client closed (Beast has answered its close frame), broke the protocol (Beast has
      // answered 1002) or the connection broke. Either way both sides end.
      Teardown();
      return;
    }
    if (closing_) {
      return;  // Our close handshake is under way; Beast reads the rest.
    }
    if (ws_.got_text()) {
      CloseWs(websocket::close_code::unknown_data, "binary messages only");
      return;
    }
    if (up_buffer_.size() > state_->options.max_message_size) {
      state_->closed_oversize.fetch_add(1);
      CloseWs(websocket::close_code::too_big, "message too big");
      return;
    }
    if (!ws_.is_message_done()) {
      ReadClient();
      return;
    }
    // max_message_size ≤ kMaxRecordSize (checked in Create), so the length fits in u16.
    size_t size = up_buffer_.size();
    up_header_[0] = static_cast<uint8_t>(size >> 8);
    up_header_[1] = static_cast<uint8_t>(size & 0xff);
    std::array<asio::const_buffer, 2> record{asio::buffer(up_header_), up_buffer_.data()};
    asio::async_write(enclave_, record, [self = Self(), size](error_code write_ec, size_t) {
      self->OnEnclaveWritten(write_ec, size);
    });
  }

  void OnEnclaveWritten(error_code ec, size_t size) {
    if (torn_down_) {
      return;
    }
    if (ec) {
      CloseWs(websocket::close_code::internal_error, "enclave connection lost");
      return;
    }
    up_buffer_.consume(up_buffer_.size());
    state_->bytes_up.fetch_add(size);
    Touch();
    if (!closing_) {
      ReadClient();
    }
  }

  // Enclave → client.

  // ReadEnclave hands the next record to WriteClient, reading more only when the buffer holds
  // no whole record: one read usually brings several records, and each is written to the client
  // straight from the buffer (the next read starts only after that write completed).
  void ReadEnclave() {
    if (down_begin_ == down_end_) {
      down_begin_ = down_end_ = 0;
    }
    size_t available = down_end_ - down_begin_;
    if (available >= 2) {
      size_t size = (size_t{down_in_[down_begin_]} << 8) | size_t{down_in_[down_begin_ + 1]};
      if (available >= 2 + size) {
        down_record_ = asio::buffer(down_in_.data() + down_begin_ + 2, size);
        down_begin_ += 2 + size;
        WriteClient();
        return;
      }
    }
    if (down_begin_ > 0) {  // Keep the partial record; make room behind it.
      std::copy(down_in_.begin() + static_cast<std::ptrdiff_t>(down_begin_),
                down_in_.begin() + static_cast<std::ptrdiff_t>(down_end_), down_in_.begin());
      down_end_ -= down_begin_;
      down_begin_ = 0;
    }
    enclave_.async_read_some(
        asio::buffer(down_in_.data() + down_end_, down_in_.size() - down_end_),
        [self = Self()](error_code ec, size_t n) { self->OnEnclaveRead(ec, n); });
  }

  void OnEnclaveRead(error_code ec, size_t n) {
    if (closing_) {
      return;
    }
    if (ec) {
      if (ec == asio::error::eof && down_end_ == down_begin_) {
        CloseWs(websocket::close_code::normal, "enclave closed");
      } else {
        // An error, or the enclave stopped in the middle of a record: it broke the framing.
        CloseWs(websocket::close_code::internal_error, "enclave connection lost");
      }
      return;
    }
    down_end_ += n;
    ReadEnclave();
  }

  void WriteClient() {
    // Counted before the write starts: a client that has received the record must find it
    // counted (counting on completion raced the client's read).
    if (!answered_) {
      answered_ = true;
      state_->answered.fetch_add(1);
    }
    ws_.async_write(down_record_,
                    [self = Self()](error_code ec, size_t) { self->OnClientWritten(ec); });
  }

  void OnClientWritten(error_code ec) {
    if (torn_down_) {
      return;
    }
    if (ec) {
      Teardown();
      return;
    }
    state_->bytes_down.fetch_add(down_record_.size());
    Touch();
    if (!closing_) {
      ReadEnclave();
    }
  }

  // Timers and endings.

  void Touch() { last_activity_ = Clock::now(); }

  void ArmTimer(Clock::time_point at) {
    timer_.expires_at(at);
    timer_.async_wait([self = Self()](error_code ec) { self->OnTimer(ec); });
  }

  void OnTimer(error_code ec) {
    if (ec || torn_down_) {
      return;
    }
    if (timer_.expiry() > Clock::now()) {
      return;  // Re-armed after this wait had already fired.
    }
    switch (phase_) {
      case Phase::kHandshake:
        // Before the upgrade there is no WebSocket to close; after it, the enclave dial hangs.
        CloseWs(websocket::close_code::internal_error, "enclave unavailable");
        return;
      case Phase::kOpen: {
        Clock::time_point deadline = last_activity_ + state_->options.idle_timeout;
        if (Clock::now() >= deadline) {
          state_->closed_idle.fetch_add(1);
          CloseWs(websocket::close_code::normal, "idle timeout");
        } else {
          ArmTimer(deadline);
        }
        return;
      }
      case Phase::kClosing:
        Teardown();
        return;
    }
  }

  // CloseWs ends the enclave connection and starts the WebSocket close handshake with `code`;
  // the connection is cut if that does not finish within close_grace (a client that does not
  // read would otherwise hold it: the close frame queues behind a stalled write).
  void CloseWs(websocket::close_code code, std::string_view reason) {
    if (closing_ || torn_down_) {
      return;
    }
    closing_ = true;
    phase_ = Phase::kClosing;
    LeavePending();
    CloseEnclave();
    if (!ws_open_) {
      Teardown();
      return;
    }
    ArmTimer(Clock::now() + state_->close_grace);
    ws_.async_close(websocket::close_reason(code, reason),
                    [self = Self()](error_code) { self->Teardown(); });
  }

  void CloseEnclave() {
    error_code ignored;
    enclave_.shutdown(asio::socket_base::shutdown_both, ignored);
    enclave_.close(ignored);
  }

  // Teardown closes both sockets at once; every pending operation then completes with an error
  // and drops its reference, which destroys the session.
  void Teardown() {
    if (torn_down_) {
      return;
    }
    torn_down_ = true;
    closing_ = true;
    phase_ = Phase::kClosing;
    timer_.cancel();
    CloseEnclave();
    error_code ignored;
    Lowest().shutdown(asio::socket_base::shutdown_both, ignored);
    Lowest().close(ignored);
    ReleaseCounters();
  }

  void LeavePending() {
    if (pending_) {
      pending_ = false;
      state_->pending.fetch_sub(1);
    }
  }

  void ReleaseCounters() {
    LeavePending();
    if (holds_slot_) {
      holds_slot_ = false;
      state_->active.fetch_sub(1);
    }
  }

  std::shared_ptr<Relay::State> state_;
  websocket::stream<Next> ws_;
  asio::generic::stream_protocol::socket enclave_;
  asio::steady_timer timer_;

  beast::flat_buffer http_buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> refusal_;  // A refusal, or http_handler's reply.

  beast::flat_buffer up_buffer_;  // At most max_message_size + 1 bytes (ReadClient).
  std::array<uint8_t, 2> up_header_{};
  // Records from the enclave: down_in_[down_begin_, down_end_) is read but not yet sent.
  std::vector<uint8_t> down_in_ = std::vector<uint8_t>(kDownBufferSize);
  size_t down_begin_ = 0;
  size_t down_end_ = 0;
  asio::const_buffer down_record_;  // The record being written, inside down_in_.

  Phase phase_ = Phase::kHandshake;
  Clock::time_point last_activity_{};
  bool ws_open_ = false;     // The upgrade completed.
  bool closing_ = false;     // CloseWs or Teardown ran: start no new reads.
  bool torn_down_ = false;   // Sockets closed.
  bool holds_slot_ = false;  // Counted in state->active.
  bool pending_ = false;     // Counted in state->pending.
  bool answered_ = false;    // Counted in state->answered.
};

void StartSession(const std::shared_ptr<Relay::State>& state, tcp::socket socket) {
  // A client that never finishes its handshake holds a socket for handshake_timeout; cap how many
  // may do so at once, so half-open connections cannot exhaust descriptors.
  if (state->pending.fetch_add(1) >= state->options.max_connections) {
    state->pending.fetch_sub(1);
    state->refused.fetch_add(1);
    error_code ignored;
    socket.close(ignored);
    return;
  }
  if (state->tls) {
    std::make_shared<Session<true>>(state, std::move(socket), *state->tls)->Start();
  } else {
    std::make_shared<Session<false>>(state, std::move(socket))->Start();
  }
}

void DoAccept(const std::shared_ptr<Relay::State>& state) {
  state->acceptor.async_accept(
      asio::make_strand(state->io), [state](error_code ec, tcp::socket socket) {
        if (state->stopping.load() || ec == asio::error::operation_aborted) {
          return;
        }
        if (ec) {  // Out of descriptors, or a connection aborted before accept.
          net::RetryAcceptSoon(state->accept_retry, [state] { return state->stopping.load(); },
                               [state] { DoAccept(state); });
          return;
        }
        StartSession(state, std::move(socket));
        DoAccept(state);
      });
}

Result<void> LoadTls(Relay::State& state, const TlsFiles& files) {
  state.tls.emplace(asio::ssl::context::tls_server);
  asio::ssl::context& ctx = *state.tls;
  error_code ec;
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                  ec);
  if (ec) {
    return Error(Code::kInternal, "tls: " + ec.message());
  }
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    return Error(Code::kInternal, "tls: cannot require TLS 1.2");
  }
  ctx.use_certificate_chain_file(files.cert_pem_path, ec);
  if (ec) {
    return Error(Code::kInvalidArgument,
                 "tls: cannot load certificate " + files.cert_pem_path + ": " + ec.message());
  }
  ctx.use_private_key_file(files.key_pem_path, asio::ssl::context::pem, ec);
  if (ec) {
    return Error(Code::kInvalidArgument,
                 "tls: cannot load private key " + files.key_pem_path + ": " + ec.message());
  }
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    return Error(Code::kInvalidArgument, "tls: the private key does not match the certificate");
  }
  return Ok();
}

Result<std::shared_ptr<Relay::State>> MakeState(asio::io_context& io, RelayOptions options) {
  if (options.listen.family != net::Family::kTcp) {
    return Error(Code::kInvalidArgument, "the listen address must be tcp:HOST:PORT");
  }
  if (options.max_message_size == 0 || options.max_message_size > net::kMaxRecordSize) {
    return Error(Code::kInvalidArgument, "max message size must be 1..65535 bytes");
  }
  if (options.max_connections == 0) {
    return Error(Code::kInvalidArgument, "max connections must be at least 1");
  }
  if (options.path.empty() || options.path.front() != '/') {
    return Error(Code::kInvalidArgument, "the path must start with '/'");
  }
  if (options.handshake_timeout.count() <= 0 || options.idle_timeout.count() < 0) {
    return Error(Code::kInvalidArgument, "timeouts must be positive");
  }
  ASSIGN_OR_RETURN(net::SocketAddress enclave, net::Resolve(options.enclave));
  error_code ec;
  asio::ip::address listen_ip = asio::ip::make_address(options.listen.host, ec);
  if (ec) {
    return Error(Code::kInvalidArgument, "bad listen host " + options.listen.host);
  }
  tcp::endpoint listen_endpoint(listen_ip, static_cast<uint16_t>(options.listen.port));
  std::string listen_text = options.listen.ToString();

  auto state = std::make_shared<Relay::State>(io, std::move(options));
  state->enclave_endpoint =
      asio::generic::stream_protocol::endpoint(&enclave.storage, enclave.size);
  state->close_grace = std::min(state->options.handshake_timeout, kMaxCloseGrace);
  if (state->options.tls) {
    RETURN_IF_ERROR(LoadTls(*state, *state->options.tls));
  }

  tcp::acceptor& acceptor = state->acceptor;
  RETURN_IF_ERROR(net::Listen(acceptor, listen_endpoint, net::ReuseAddress::kYes, listen_text));
  tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) {
    return Error(Code::kIo, "cannot read the bound address of " + listen_text + ": " +
                                ec.message());
  }
  state->local.family = net::Family::kTcp;
  state->local.host = bound.address().to_string();
  state->local.port = bound.port();
  return state;
}

}  // namespace

Result<std::unique_ptr<Relay>> Relay::Create(asio::io_context& io, RelayOptions options) {
  std::shared_ptr<State> state;
  try {
    ASSIGN_OR_RETURN(state, MakeState(io, std::move(options)));
  } catch (const std::exception& e) {
    // Asio's ssl::context constructor and a few setup calls can only report by throwing.
    return Error(Code::kInternal, std::string("relay setup: ") + e.what());
  }
  asio::post(state->acceptor.get_executor(), [state] { DoAccept(state); });
  // The constructor is private (only Create builds a Relay), so make_unique cannot reach it.
  return std::unique_ptr<Relay>(new Relay(std::move(state)));
}

Relay::Relay(std::shared_ptr<State> state) : state_(std::move(state)) {}

Relay::~Relay() { Stop(); }

net::Address Relay::local_address() const { return state_->local; }

void Relay::Stop() {
  if (state_->stopping.exchange(true)) {
    return;
  }
  asio::post(state_->acceptor.get_executor(), [state = state_] {
    error_code ignored;
    state->acceptor.close(ignored);
    state->accept_retry.cancel();
  });
  std::vector<std::shared_ptr<SessionBase>> sessions;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    sessions.reserve(state_->sessions.size());
    for (auto& [ptr, weak] : state_->sessions) {
      if (auto session = weak.lock()) {
        sessions.push_back(std::move(session));
      }
    }
  }
  for (auto& session : sessions) {
    session->Abort();
  }
}

RelayStats Relay::stats() const {
  RelayStats s;
  s.accepted = state_->accepted.load();
  s.active = state_->active.load();
  s.refused = state_->refused.load();
  s.closed_oversize = state_->closed_oversize.load();
  s.closed_idle = state_->closed_idle.load();
  s.bytes_up = state_->bytes_up.load();
  s.bytes_down = state_->bytes_down.load();
  s.answered = state_->answered.load();
  s.http_requests = state_->http_requests.load();
  return s;
}

}  // namespace enclavia::host
