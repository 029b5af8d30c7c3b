// SPDX-License-Identifier: Apache-2.0
// The one file that talks to Boost.Beast for lib/http: every Beast/Asio call uses an error_code
// overload; the few that can only throw are caught where they are made.
#include "lib/http/http.h"

#include "lib/base/encoding.h"

#include <strings.h>

#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <exception>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <utility>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include "lib/net/accept_retry.h"
#include "lib/net/listen.h"

namespace enclavia::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Socket = asio::generic::stream_protocol::socket;
using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
using Endpoint = asio::generic::stream_protocol::endpoint;

constexpr size_t kMaxHeaderSize = 16 * 1024;
// After an early error response (401, 413) the rest of the request is drained for at most this
// long, so the client reads our response instead of a reset.
constexpr std::chrono::milliseconds kLingerTime{1000};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}


// PercentDecode decodes %XX and '+' (form encoding); a malformed escape is kept as is.
std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && HexDigitValue(s[i + 1]) >= 0 && HexDigitValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigitValue(s[i + 1]) * 16 + HexDigitValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string OneLine(std::string_view s) {
  std::string out(s);
  std::replace_if(out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return out;
}

bool TokenMatches(std::string_view header, const std::string& token) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (header.size() != kPrefix.size() + token.size() || header.substr(0, kPrefix.size()) != kPrefix) {
    return false;  // The length of the token is not a secret.
  }
  return CRYPTO_memcmp(header.data() + kPrefix.size(), token.data(), token.size()) == 0;
}

template <typename Fields>
std::map<std::string, std::string> HeaderMap(const Fields& fields) {
  std::map<std::string, std::string> out;
  for (const auto& field : fields) {
    std::string name = Lower(field.name_string());
    auto [it, inserted] = out.emplace(name, std::string(field.value()));
    if (!inserted) {
      it->second += ", ";
      it->second += field.value();
    }
  }
  return out;
}

net::Address BoundAddress(const net::Address& asked, const Endpoint& bound) {
  net::Address out = asked;
  if (asked.family == net::Family::kTcp) {
    if (bound.data()->sa_family == AF_INET && bound.size() >= sizeof(sockaddr_in)) {
      out.port = ntohs(reinterpret_cast<const sockaddr_in*>(bound.data())->sin_port);
    } else if (bound.data()->sa_family == AF_INET6 && bound.size() >= sizeof(sockaddr_in6)) {
      out.port = ntohs(reinterpret_cast<const sockaddr_in6*>(bound.data())->sin6_port);
    }
  }
  return out;
}

Endpoint ToEndpoint(const net::SocketAddress& address) {
  return Endpoint(&address.storage, address.size);
}

class Session;

}  // namespace

struct Server::State {
  State(asio::io_context& io_context, ServerOptions opts)
      : io(io_context),
        options(std::move(opts)),
        acceptor(asio::make_strand(io_context)),
        accept_retry(acceptor.get_executor()) {}

  bool IsPublic(std::string_view path) const {
    return std::find(options.public_paths.begin(), options.public_paths.end(), path) !=
           options.public_paths.end();
  }

  asio::io_context& io;
  const ServerOptions options;
  Acceptor acceptor;                // Used only on its own strand.
  asio::steady_timer accept_retry;  // Same strand.
  net::Address local;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // Guarded by mu.
};

namespace {

// Session is one connection, on its own strand. It serves requests one after another
// (keep-alive); at most one handler call is outstanding. Sessions are owned by the handlers of
// their pending operations and by the Reply of a handler call.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Server::State> state, Socket socket)
      : state_(std::move(state)), socket_(std::move(socket)), timer_(socket_.get_executor()) {}

  ~Session() {
    RemoveSpoolFile();
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->sessions.erase(this);
  }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Start() {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->sessions.emplace(this, weak_from_this());
    }
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  // Abort closes the connection if it is waiting for a request; a request being served finishes
  // and then the connection closes (Stop sets `stopping`, which turns keep-alive off).
  void Abort() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      if (self->idle_) {
        self->Close();
      }
    });
  }

 private:
  const ServerOptions& options() const { return state_->options; }

  void ArmTimer(std::chrono::milliseconds after) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->closed_ || self->timer_.expiry() > Clock::now()) {
        return;
      }
      self->Close();
    });
  }

  void ReadHeader() {
    if (closed_) {
      return;
    }
    if (state_->stopping.load()) {
      Close();
      return;
    }
    idle_ = true;
    request_ = Request();
    string_parser_.reset();
    file_parser_.reset();
    header_parser_.emplace();
    header_parser_->header_limit(kMaxHeaderSize);
    // Limits are checked in OnHeader (not boost::none: Beast 1.74 compares a Content-Length
    // against an empty optional as over the limit).
    header_parser_->body_limit(std::numeric_limits<uint64_t>::max());
    ArmTimer(options().timeout);
    bhttp::async_read_header(socket_, buffer_, *header_parser_,
                             [self = shared_from_this()](error_code ec, size_t) {
                               self->OnHeader(ec);
                             });
  }

  void OnHeader(error_code ec) {
    idle_ = false;
    if (ec || closed_) {
      Close();
      return;
    }
    const auto& head = header_parser_->get();
    request_.method = std::string(head.method_string());
    request_.target = std::string(head.target());
    request_.headers = HeaderMap(head);
    keep_alive_ = head.keep_alive();

    if (options().bearer_token && !state_->IsPublic(request_.path()) &&
        !TokenMatches(request_.Header("authorization"), *options().bearer_token)) {
      SendEarly(JsonError(401, "missing or wrong bearer token"));
      return;
    }
    bool has_body = header_parser_->chunked() ||
                    header_parser_->content_length().value_or(0) > 0;
    std::optional<std::string> spool;
    if (has_body && options().spool) {
      spool = options().spool(request_);
    }
    uint64_t limit = spool ? options().spool_max_body : options().max_body;
    if (header_parser_->content_length().value_or(0) > limit) {
      SendEarly(JsonError(413, "request body over " + std::to_string(limit) + " bytes"));
      return;
    }
    // A client that sent "Expect: 100-continue" (curl does for large bodies) waits for this
    // interim answer, or a second, before it sends the body.
    std::string expect = request_.Header("expect");
    if (has_body && expect.size() == 12 && ::strncasecmp(expect.c_str(), "100-continue", 12) == 0) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(socket_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this(), spool, limit](error_code write_ec, size_t) {
                          if (write_ec || self->closed_) {
                            self->Close();
                            return;
                          }
                          self->ReadBody(spool, limit);
                        });
      return;
    }
    ReadBody(spool, limit);
  }

  // ReadBody reads the request's body into memory or, when `spool` names a file, into it.
  void ReadBody(std::optional<std::string> spool, uint64_t limit) {
    if (spool) {
      file_parser_.emplace(std::move(*header_parser_));
      file_parser_->body_limit(limit);
      error_code open_ec;
      file_parser_->get().body().open(spool->c_str(), beast::file_mode::write_new, open_ec);
      if (open_ec) {
        SendEarly(JsonError(500, "cannot create " + *spool + ": " + open_ec.message()));
        return;
      }
      spool_path_ = *spool;
      ::chmod(spool_path_.c_str(), 0600);
      ReadSpooled();
      return;
    }
    string_parser_.emplace(std::move(*header_parser_));
    string_parser_->body_limit(limit);
    bhttp::async_read(socket_, buffer_, *string_parser_,
                      [self = shared_from_this()](error_code read_ec, size_t) {
                        self->OnBody(read_ec);
                      });
  }

  void OnBody(error_code ec) {
    if (closed_) {
      return;
    }
    if (ec == bhttp::error::body_limit) {
      SendEarly(JsonError(413, "request body over " + std::to_string(options().max_body) +
                                   " bytes"));
      return;
    }
    if (ec) {
      Close();
      return;
    }
    request_.body = std::move(string_parser_->get().body());
    Dispatch();
  }

  void ReadSpooled() {
    ArmTimer(options().timeout);
    bhttp::async_read_some(socket_, buffer_, *file_parser_,
                           [self = shared_from_this()](error_code ec, size_t) {
                             self->OnSpooled(ec);
                           });
  }

  void OnSpooled(error_code ec) {
    if (closed_) {
      return;
    }
    if (ec == bhttp::error::body_limit) {
      RemoveSpoolFile();
      SendEarly(JsonError(413, "request body over " +
                                   std::to_string(options().spool_max_body) + " bytes"));
      return;
    }
    if (ec) {
      Close();
      return;
    }
    if (!file_parser_->is_done()) {
      ReadSpooled();
      return;
    }
    error_code close_ec;
    file_parser_->get().body().file().close(close_ec);
    if (close_ec) {
      RemoveSpoolFile();
      SendEarly(JsonError(500, "cannot write the request body: " + close_ec.message()));
      return;
    }
    request_.body_file = std::move(spool_path_);
    spool_path_.clear();  // The handler owns the file now.
    ArmTimer(options().timeout);
    Dispatch();
  }

  void Dispatch() {
    uint64_t generation = ++generation_;
    auto once = std::make_shared<std::atomic<bool>>(false);
    Reply reply = [self = shared_from_this(), generation, once](Response response) {
      if (once->exchange(true)) {
        return;
      }
      asio::post(self->socket_.get_executor(),
                 [self, generation, response = std::move(response)]() mutable {
                   if (self->closed_ || generation != self->generation_) {
                     return;
                   }
                   self->Send(std::move(response), /*close=*/false);
                 });
    };
    options().handler(std::move(request_), std::move(reply));
  }

  // SendEarly answers before the body was read: then the connection closes, after draining what
  // the client still sends for a moment.
  void SendEarly(Response response) {
    ++generation_;
    linger_ = true;
    Send(std::move(response), /*close=*/true);
  }

  void Send(Response response, bool close) {
    response_ = {};
    int status = response.status;
    if (status < 100 || status > 999) {
      status = 500;
    }
    response_.result(static_cast<unsigned>(status));
    response_.version(11);
    response_.set(bhttp::field::server, "enclavia");
    if (!response.content_type.empty()) {
      response_.set(bhttp::field::content_type, response.content_type);
    }
    for (const auto& [name, value] : response.headers) {
      response_.insert(name, value);
    }
    response_.body() = std::move(response.body);
    keep_alive_ = keep_alive_ && !close && !state_->stopping.load();
    response_.keep_alive(keep_alive_);
    response_.prepare_payload();
    bhttp::async_write(socket_, response_, [self = shared_from_this()](error_code ec, size_t) {
      self->OnWritten(ec);
    });
  }

  void OnWritten(error_code ec) {
    if (ec || closed_) {
      Close();
      return;
    }
    if (linger_) {
      Linger();
      return;
    }
    if (!keep_alive_) {
      error_code ignored;
      socket_.shutdown(Socket::shutdown_send, ignored);
      Close();
      return;
    }
    ReadHeader();
  }

  void Linger() {
    error_code ignored;
    socket_.shutdown(Socket::shutdown_send, ignored);
    ArmTimer(kLingerTime);
    Drain();
  }

  void Drain() {
    socket_.async_read_some(asio::buffer(drain_),
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (ec || self->closed_) {
                                self->Close();
                                return;
                              }
                              self->Drain();
                            });
  }

  void RemoveSpoolFile() {
    if (!spool_path_.empty()) {
      if (file_parser_) {
        error_code ignored;
        file_parser_->get().body().file().close(ignored);
      }
      ::unlink(spool_path_.c_str());
      spool_path_.clear();
    }
  }

  void Close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    timer_.cancel();
    RemoveSpoolFile();
    error_code ignored;
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  std::shared_ptr<Server::State> state_;
  Socket socket_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::empty_body>> header_parser_;
  std::optional<bhttp::request_parser<bhttp::string_body>> string_parser_;
  std::optional<bhttp::request_parser<bhttp::file_body>> file_parser_;
  bhttp::response<bhttp::string_body> response_;
  std::array<char, 4096> drain_{};
  Request request_;
  std::string spool_path_;  // Set while a spooled body is being written.
  uint64_t generation_ = 0;
  bool idle_ = false;
  bool keep_alive_ = true;
  bool linger_ = false;
  bool closed_ = false;
};

void Accept(const std::shared_ptr<Server::State>& state) {
  auto socket = std::make_shared<Socket>(asio::make_strand(state->io));
  state->acceptor.async_accept(*socket, [state, socket](error_code ec) {
    if (state->stopping.load() || ec == asio::error::operation_aborted) {
      return;
    }
    if (ec) {
      net::RetryAcceptSoon(state->accept_retry, [state] { return state->stopping.load(); },
                           [state] { Accept(state); });
      return;
    }
    std::make_shared<Session>(state, std::move(*socket))->Start();
    Accept(state);
  });
}

bool IsSocketFile(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

Result<std::shared_ptr<Server::State>> MakeState(asio::io_context& io, ServerOptions options) {
  if (!options.handler) {
    return Error(Code::kInvalidArgument, "http server: no handler");
  }
  if (options.timeout.count() <= 0) {
    return Error(Code::kInvalidArgument, "http server: the timeout must be positive");
  }
  if (options.bearer_token && options.bearer_token->empty()) {
    return Error(Code::kInvalidArgument, "http server: empty bearer token");
  }
  ASSIGN_OR_RETURN(net::SocketAddress address, net::Resolve(options.listen));
  std::string name = options.listen.ToString();
  auto state = std::make_shared<Server::State>(io, std::move(options));
  bool unix_socket = state->options.listen.family == net::Family::kUnix;
  if (unix_socket && IsSocketFile(state->options.listen.host)) {
    ::unlink(state->options.listen.host.c_str());  // A stale socket from an earlier run.
  }
  RETURN_IF_ERROR(net::Listen(state->acceptor, ToEndpoint(address),
                              unix_socket ? net::ReuseAddress::kNo : net::ReuseAddress::kYes,
                              name));
  error_code ec;
  Endpoint bound = state->acceptor.local_endpoint(ec);
  if (ec) {
    return Error(Code::kIo, "cannot read the bound address of " + name + ": " + ec.message());
  }
  state->local = BoundAddress(state->options.listen, bound);
  return state;
}

// Client.

// Exchange runs one blocking client exchange on a private io_context with one deadline.
class Exchange {
 public:
  Exchange(const net::Address& to, const ClientOptions& options)
      : to_(to), options_(options), socket_(io_), timer_(io_) {}

  Result<void> Connect() {
    ASSIGN_OR_RETURN(net::SocketAddress address, net::Resolve(to_));
    error_code ec;
    socket_.open(asio::generic::stream_protocol(address.family(), 0), ec);
    if (ec) {
      return Error(Code::kUnavailable, "cannot reach " + to_.ToString() + ": " + ec.message());
    }
    timer_.expires_after(options_.timeout);
    timer_.async_wait([this](error_code wait_ec) {
      if (!wait_ec) {
        timed_out_ = true;
        error_code ignored;
        socket_.close(ignored);
      }
    });
    ec = Run([&](auto done) { socket_.async_connect(ToEndpoint(address), done); });
    if (ec) {
      return Error(Code::kUnavailable,
                   "cannot reach " + to_.ToString() + ": " +
                       (timed_out_ ? std::string("timed out") : ec.message()));
    }
    return Ok();
  }

  // Send writes the request; a failure is remembered and reported only if no response follows
  // (the server may have answered early, e.g. 413, and closed).
  Result<void> Send(const Request& request) {
    bhttp::verb verb = bhttp::string_to_verb(request.method);
    if (verb == bhttp::verb::unknown) {
      return Error(Code::kInvalidArgument, "http: unknown method " + OneLine(request.method));
    }
    auto fill = [&](auto& message) {
      message.method(verb);
      message.target(request.target.empty() ? std::string("/") : request.target);
      message.version(11);
      message.set(bhttp::field::host, to_.family == net::Family::kTcp ? to_.host : "localhost");
      for (const auto& [name, value] : request.headers) {
        message.set(name, value);
      }
      if (options_.bearer_token) {
        message.set(bhttp::field::authorization, "Bearer " + *options_.bearer_token);
      }
      message.keep_alive(false);
    };
    if (!request.body_file.empty()) {
      bhttp::request<bhttp::file_body> message;
      fill(message);
      error_code ec;
      message.body().open(request.body_file.c_str(), beast::file_mode::scan, ec);
      if (ec) {
        return Error(Code::kIo, "cannot open " + request.body_file + ": " + ec.message());
      }
      message.prepare_payload();
      write_error_ = Run([&](auto done) { bhttp::async_write(socket_, message, done); });
    } else {
      bhttp::request<bhttp::string_body> message;
      fill(message);
      message.body() = request.body;
      if (!request.body.empty() || verb == bhttp::verb::post || verb == bhttp::verb::put) {
        message.prepare_payload();
      }
      write_error_ = Run([&](auto done) { bhttp::async_write(socket_, message, done); });
    }
    return Ok();
  }

  Error Broken(error_code ec) const {
    if (timed_out_) {
      return Error(Code::kIo, to_.ToString() + ": timed out after " +
                                  std::to_string(options_.timeout.count()) + " ms");
    }
    if (write_error_) {
      ec = write_error_;
    }
    return Error(Code::kIo, to_.ToString() + ": " + ec.message());
  }

  Result<Response> ReadResponse() {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.header_limit(kMaxHeaderSize);
    parser.body_limit(options_.max_body);
    error_code ec = Run([&](auto done) { bhttp::async_read(socket_, buffer_, parser, done); });
    if (ec == bhttp::error::body_limit) {
      return Error(Code::kLimitExceeded, to_.ToString() + ": response body over " +
                                             std::to_string(options_.max_body) + " bytes");
    }
    if (ec) {
      return Broken(ec);
    }
    return ToResponse(parser.get(), std::move(parser.get().body()));
  }

  Result<int> Stream(const std::function<bool(std::string_view)>& on_data) {
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.header_limit(kMaxHeaderSize);
    // Not boost::none: Beast 1.74 compares a Content-Length against an empty optional as over.
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    error_code ec =
        Run([&](auto done) { bhttp::async_read_header(socket_, buffer_, parser, done); });
    if (ec) {
      return Broken(ec);
    }
    error_code ignored;
    timer_.cancel();  // The body may take as long as it likes (logs -f).
    int status = static_cast<int>(parser.get().result_int());
    std::array<char, 16 * 1024> chunk{};
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      ec = Run([&](auto done) { bhttp::async_read(socket_, buffer_, parser, done); });
      size_t n = chunk.size() - parser.get().body().size;
      if (n > 0 && !on_data(std::string_view(chunk.data(), n))) {
        break;
      }
      if (ec == bhttp::error::need_buffer) {
        continue;
      }
      if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) {
        break;
      }
      if (ec) {
        return Broken(ec);
      }
    }
    socket_.close(ignored);
    return status;
  }

 private:
  template <typename Body>
  static Response ToResponse(const bhttp::response<Body>& message, std::string body) {
    Response response;
    response.status = static_cast<int>(message.result_int());
    response.content_type = std::string(message[bhttp::field::content_type]);
    response.body = std::move(body);
    for (const auto& field : message) {
      response.headers.emplace_back(Lower(field.name_string()), std::string(field.value()));
    }
    return response;
  }

  // Run starts one asynchronous operation and runs the private io_context until it completes.
  template <typename Start>
  error_code Run(Start start) {
    bool finished = false;
    error_code result;
    if (io_.stopped()) {
      io_.restart();  // It stops whenever it runs out of work, e.g. after the timer's cancel.
    }
    start([&](error_code ec, auto&&...) {
      result = ec;
      finished = true;
    });
    while (!finished && io_.run_one() > 0) {
    }
    if (!finished) {
      return asio::error::operation_aborted;
    }
    return result;
  }

  net::Address to_;
  ClientOptions options_;
  asio::io_context io_{1};
  Socket socket_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  error_code write_error_;
  bool timed_out_ = false;
};

template <typename T, typename F>
Result<T> Guard(F body) {
  try {
    return body();
  } catch (const std::exception& e) {
    // Beast's message setters throw on impossible values (e.g. a field over 64 KiB).
    return Error(Code::kInvalidArgument, std::string("http: ") + OneLine(e.what()));
  }
}

}  // namespace

std::string_view Request::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::optional<std::string> Request::Query(std::string_view name) const {
  size_t q = target.find('?');
  if (q == std::string::npos) {
    return std::nullopt;
  }
  std::string_view query = std::string_view(target).substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq));
    if (key == name) {
      return eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1));
    }
  }
  return std::nullopt;
}

std::string Request::Header(std::string_view name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? std::string() : it->second;
}

Response JsonError(int status, std::string_view message) {
  nlohmann::json body = {{"error", OneLine(message)}};
  Response response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return response;
}

int StatusFor(const Error& error) {
  switch (error.code()) {
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
      return 409;
    case Code::kInvalidArgument:
    case Code::kMalformed:
      return 400;
    case Code::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

Result<std::unique_ptr<Server>> Server::Create(asio::io_context& io, ServerOptions options) {
  std::shared_ptr<State> state;
  try {
    ASSIGN_OR_RETURN(state, MakeState(io, std::move(options)));
  } catch (const std::exception& e) {
    return Error(Code::kInternal, std::string("http server setup: ") + OneLine(e.what()));
  }
  asio::post(state->acceptor.get_executor(), [state] { Accept(state); });
  return std::unique_ptr<Server>(new Server(std::move(state)));
}

Server::Server(std::shared_ptr<State> state) : state_(std::move(state)) {}

Server::~Server() { Stop(); }

net::Address Server::local_address() const { return state_->local; }

void Server::Stop() {
  if (state_->stopping.exchange(true)) {
    return;
  }
  asio::post(state_->acceptor.get_executor(), [state = state_] {
    error_code ignored;
    state->acceptor.close(ignored);
    state->accept_retry.cancel();
  });
  if (state_->local.family == net::Family::kUnix && IsSocketFile(state_->local.host)) {
    ::unlink(state_->local.host.c_str());
  }
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
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

Result<Response> Fetch(const net::Address& to, const Request& request,
                       const ClientOptions& options) {
  return Guard<Response>([&]() -> Result<Response> {
    Exchange exchange(to, options);
    RETURN_IF_ERROR(exchange.Connect());
    RETURN_IF_ERROR(exchange.Send(request));
    return exchange.ReadResponse();
  });
}

Result<int> StreamTo(const net::Address& to, const Request& request, const ClientOptions& options,
                     const std::function<bool(std::string_view)>& on_data) {
  return Guard<int>([&]() -> Result<int> {
    Exchange exchange(to, options);
    RETURN_IF_ERROR(exchange.Connect());
    RETURN_IF_ERROR(exchange.Send(request));
    return exchange.Stream(on_data);
  });
}

}  // namespace enclavia::http
