// SPDX-License-Identifier: Apache-2.0
// The one file that wraps Boost.Beast's WebSocket client; Beast's exceptions stay in here.
#include "client/websocket.h"

#include <charconv>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "lib/net/framing.h"

namespace enclavia::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;
using tcp = asio::ip::tcp;
// Every connection runs on a generic stream socket, so that one code path serves the URL's TCP
// host and DialOptions::via (unix, tcp or vsock).
using LowestStream = beast::basic_stream<asio::generic::stream_protocol, asio::any_io_executor,
                                         beast::unlimited_rate_policy>;
using Socket = asio::generic::stream_protocol::socket;

Result<Url> ParseUrl(std::string_view text) {
  Url url;
  std::string_view rest;
  if (text.starts_with("ws://")) {
    rest = text.substr(5);
  } else if (text.starts_with("wss://")) {
    url.tls = true;
    rest = text.substr(6);
  } else {
    return Error(Code::kInvalidArgument, "url must start with ws:// or wss://");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  url.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  url.port = url.tls ? 443 : 80;
  std::string_view host = authority;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Error(Code::kInvalidArgument, "url: unterminated [IPv6] host");
    }
    host = authority.substr(1, close - 1);
    authority = authority.substr(close + 1);
    if (!authority.empty() && authority[0] != ':') {
      return Error(Code::kInvalidArgument, "url: junk after [IPv6] host");
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    authority = authority.substr(colon);
  } else {
    authority = {};
  }
  if (authority.starts_with(":")) {
    std::string_view digits = authority.substr(1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
        port == 0 || port > 65535) {
      return Error(Code::kInvalidArgument, "url: bad port");
    }
    url.port = static_cast<uint16_t>(port);
  }
  if (host.empty()) {
    return Error(Code::kInvalidArgument, "url: no host");
  }
  url.host = std::string(host);
  return url;
}

namespace {

Error NetError(const error_code& ec, std::string_view what) {
  if (ec == websocket::error::closed) {  // The relay sent a close frame.
    return Error(Code::kUnavailable, "closed by peer");
  }
  return tunnel::StreamError(ec, what);
}

// WsStream adapts a Beast websocket stream (plain or TLS) to MessageStream.
template <typename Next>
class WsStream : public tunnel::MessageStream {
 public:
  explicit WsStream(std::shared_ptr<websocket::stream<Next>> ws) : ws_(std::move(ws)) {}
  ~WsStream() override { Close(); }

  void AsyncRead(ReadHandler handler) override {
    // One buffer for the stream's life: a new one per message would regrow (and, past malloc's
    // mmap threshold, page-fault in) 64 KiB for every message.
    auto buffer = buffer_;
    ws_->async_read(*buffer, [ws = ws_, buffer, handler = std::move(handler)](error_code ec,
                                                                               size_t) {
      if (ec) {
        handler(NetError(ec, "websocket read"));
        return;
      }
      if (!ws->got_binary()) {
        handler(Error(Code::kMalformed, "websocket: text message on a binary channel"));
        return;
      }
      auto data = buffer->data();
      const auto* p = static_cast<const uint8_t*>(data.data());
      Bytes message(p, p + data.size());
      buffer->consume(buffer->size());
      handler(std::move(message));
    });
  }

  void AsyncWrite(Bytes message, WriteHandler handler) override {
    auto owned = std::make_shared<Bytes>(std::move(message));
    ws_->async_write(asio::buffer(*owned),
                     [owned, handler = std::move(handler)](error_code ec, size_t) {
                       if (ec) {
                         handler(NetError(ec, "websocket write"));
                         return;
                       }
                       handler(Ok());
                     });
  }

  void Close() override {
    if (closed_) {
      return;
    }
    closed_ = true;
    error_code ignored;
    beast::get_lowest_layer(*ws_).socket().shutdown(Socket::shutdown_both, ignored);
    beast::get_lowest_layer(*ws_).socket().close(ignored);
  }

 private:
  std::shared_ptr<websocket::stream<Next>> ws_;
  std::shared_ptr<beast::flat_buffer> buffer_ = std::make_shared<beast::flat_buffer>();
  bool closed_ = false;
};

template <typename Next>
void Configure(websocket::stream<Next>& ws, const Url& url) {
  ws.binary(true);
  ws.read_message_max(net::kMaxRecordSize);
  ws.auto_fragment(false);
  // A client masks what it sends (RFC 6455 §5.3) through this buffer; at Beast's default of
  // 4 KiB every 64 KiB message would leave in 16 writes.
  ws.write_buffer_bytes(net::kMaxRecordSize + 16);
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
  ws.set_option(websocket::stream_base::decorator([host = url.host](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "enclavia-client/1");
    req.set(beast::http::field::sec_websocket_protocol, "enclavia.v1");
    (void)host;
  }));
}

struct DialState {
  DialState(asio::any_io_executor ex, Url u, DialOptions o, DialDone d)
      : executor(ex), resolver(ex), timer(ex), url(std::move(u)), options(std::move(o)),
        done(std::move(d)) {}
  asio::any_io_executor executor;
  tcp::resolver resolver;
  asio::steady_timer timer;
  Url url;
  DialOptions options;
  DialDone done;
  std::optional<asio::ssl::context> ssl;
  std::shared_ptr<websocket::stream<LowestStream>> plain;
  std::shared_ptr<websocket::stream<beast::ssl_stream<LowestStream>>> secure;
  bool finished = false;

  void Finish(Result<std::unique_ptr<tunnel::MessageStream>> result) {
    if (finished) {
      return;
    }
    finished = true;
    timer.cancel();
    auto callback = std::move(done);
    callback(std::move(result));
  }
  std::string HostHeader() const {
    bool default_port = url.port == (url.tls ? 443 : 80);
    std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    return default_port ? host : host + ":" + std::to_string(url.port);
  }
};

void Upgrade(std::shared_ptr<DialState> s) {
  auto on_upgrade = [s](error_code ec) {
    if (ec) {
      s->Finish(NetError(ec, "websocket upgrade to " + s->HostHeader() + s->url.target));
      return;
    }
    if (s->secure) {
      s->Finish(std::unique_ptr<tunnel::MessageStream>(
          new WsStream<beast::ssl_stream<LowestStream>>(s->secure)));
    } else {
      s->Finish(std::unique_ptr<tunnel::MessageStream>(
          new WsStream<LowestStream>(s->plain)));
    }
  };
  if (s->secure) {
    beast::get_lowest_layer(*s->secure).expires_never();
    Configure(*s->secure, s->url);
    s->secure->async_handshake(s->HostHeader(), s->url.target, on_upgrade);
  } else {
    beast::get_lowest_layer(*s->plain).expires_never();
    Configure(*s->plain, s->url);
    s->plain->async_handshake(s->HostHeader(), s->url.target, on_upgrade);
  }
}

// Connected continues once the stream socket is connected: TLS if wss, then the upgrade.
void Connected(const std::shared_ptr<DialState>& s) {
  error_code ignored;  // TCP_NODELAY does not apply to unix or vsock sockets.
  if (s->secure) {
    beast::get_lowest_layer(*s->secure).socket().set_option(tcp::no_delay(true), ignored);
    if (!SSL_set_tlsext_host_name(s->secure->next_layer().native_handle(), s->url.host.c_str())) {
      s->Finish(Error(Code::kInternal, "tls: cannot set SNI"));
      return;
    }
    s->secure->next_layer().set_verify_callback(asio::ssl::host_name_verification(s->url.host));
    s->secure->next_layer().async_handshake(asio::ssl::stream_base::client, [s](error_code ec) {
      if (ec) {
        s->Finish(NetError(ec, "tls handshake with " + s->HostHeader()));
        return;
      }
      Upgrade(s);
    });
  } else {
    beast::get_lowest_layer(*s->plain).socket().set_option(tcp::no_delay(true), ignored);
    Upgrade(s);
  }
}

}  // namespace

void AsyncDial(asio::any_io_executor executor, const Url& url, const DialOptions& options,
               DialDone done) {
  auto s = std::make_shared<DialState>(executor, url, options, std::move(done));
  if (url.tls) {
    s->ssl.emplace(asio::ssl::context::tls_client);
    error_code ec;
    if (options.insecure_tls) {
      s->ssl->set_verify_mode(asio::ssl::verify_none, ec);
    } else {
      s->ssl->set_verify_mode(asio::ssl::verify_peer, ec);
      if (options.ca_file.empty()) {
        s->ssl->set_default_verify_paths(ec);
      } else {
        s->ssl->load_verify_file(options.ca_file, ec);
      }
    }
    if (ec) {
      s->Finish(Error(Code::kInvalidArgument, "tls: " + ec.message()));
      return;
    }
    s->secure = std::make_shared<websocket::stream<beast::ssl_stream<LowestStream>>>(
        executor, *s->ssl);
  } else {
    s->plain = std::make_shared<websocket::stream<LowestStream>>(executor);
  }
  s->timer.expires_after(options.timeout);
  s->timer.async_wait([s](error_code ec) {
    if (!ec && !s->finished) {
      error_code ignored;
      s->resolver.cancel();
      if (s->secure) {
        beast::get_lowest_layer(*s->secure).socket().close(ignored);
      } else {
        beast::get_lowest_layer(*s->plain).socket().close(ignored);
      }
      s->Finish(Error(Code::kUnavailable, "connect to " + s->HostHeader() + " timed out"));
    }
  });
  if (options.via) {
    auto resolved = net::Resolve(*options.via);
    if (!resolved) {
      s->Finish(std::move(resolved).error().WithContext("via"));
      return;
    }
    auto endpoint = tunnel::ToEndpoint(*resolved);
    auto on_connect = [s](error_code ec) {
      if (ec) {
        s->Finish(NetError(ec, "connect to " + s->options.via->ToString()));
        return;
      }
      Connected(s);
    };
    if (s->secure) {
      beast::get_lowest_layer(*s->secure).async_connect(endpoint, on_connect);
    } else {
      beast::get_lowest_layer(*s->plain).async_connect(endpoint, on_connect);
    }
    return;
  }
  s->resolver.async_resolve(
      url.host, std::to_string(url.port),
      [s](error_code ec, tcp::resolver::results_type results) {
        if (ec) {
          s->Finish(NetError(ec, "resolve " + s->url.host));
          return;
        }
        std::vector<asio::generic::stream_protocol::endpoint> endpoints;
        for (const auto& entry : results) {
          endpoints.emplace_back(entry.endpoint());
        }
        auto on_connect = [s](error_code ec2, const asio::generic::stream_protocol::endpoint&) {
          if (ec2) {
            s->Finish(NetError(ec2, "connect to " + s->HostHeader()));
            return;
          }
          Connected(s);
        };
        if (s->secure) {
          beast::get_lowest_layer(*s->secure).async_connect(endpoints, on_connect);
        } else {
          beast::get_lowest_layer(*s->plain).async_connect(endpoints, on_connect);
        }
      });
}

}  // namespace enclavia::client
