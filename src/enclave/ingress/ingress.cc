// SPDX-License-Identifier: Apache-2.0
#include "enclave/ingress/ingress.h"

#include <sys/stat.h>
#include <unistd.h>

#include <list>
#include <mutex>
#include <string>
#include <utility>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "lib/net/accept_retry.h"
#include "lib/net/listen.h"
#include "lib/tunnel/engine.h"
#include "lib/tunnel/handshake_io.h"
#include "lib/tunnel/message_stream.h"
#include "lib/tunnel/tcp_bridge.h"

namespace enclavia::enclave {

namespace asio = boost::asio;
using boost::system::error_code;

struct Ingress::State : std::enable_shared_from_this<Ingress::State> {
  State(asio::io_context& io_context, IngressOptions opts, crypto::X25519Keypair key,
        std::shared_ptr<channel::AttestationSource> src)
      : io(io_context), acceptor(asio::make_strand(io_context)), options(std::move(opts)),
        static_key(std::move(key)), source(std::move(src)) {}

  asio::io_context& io;
  // On its own strand: with several threads running `io`, Stop's close would otherwise race
  // the accept handler's next async_accept.
  asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor;
  asio::steady_timer accept_retry{acceptor.get_executor()};
  IngressOptions options;
  crypto::X25519Keypair static_key;
  std::shared_ptr<channel::AttestationSource> source;
  net::Address bound;
  std::atomic<bool> stopped{false};

  std::atomic<uint64_t> accepted{0}, active{0}, refused{0}, handshakes_failed{0}, dropped{0},
      streams_opened{0}, streams_refused{0};

  std::mutex mu;  // Guards engines.
  std::list<std::weak_ptr<tunnel::Engine>> engines;

  void Accept();
  void OnConnection(tunnel::GenericSocket socket);
  void RunChannel(asio::any_io_executor strand, tunnel::ServerReady ready);
};

void Ingress::State::Accept() {
  auto self = shared_from_this();
  // Each channel gets its own strand, so an io_context run by N threads serves N channels at once.
  auto socket = std::make_shared<tunnel::GenericSocket>(asio::make_strand(io));
  acceptor.async_accept(*socket, [self, socket](error_code ec) {
    if (self->stopped) {
      return;
    }
    if (ec) {
      net::RetryAcceptSoon(self->accept_retry, [self] { return self->stopped.load(); },
                           [self] { self->Accept(); });
      return;
    }
    self->OnConnection(std::move(*socket));
    self->Accept();
  });
}

void Ingress::State::OnConnection(tunnel::GenericSocket socket) {
  if (active.load() >= options.max_channels || (options.admit && !options.admit())) {
    ++refused;
    error_code ignored;
    socket.close(ignored);
    return;
  }
  ++accepted;
  ++active;
  auto strand = socket.get_executor();
  auto handshake = channel::ServerHandshake::Create(static_key, *source);
  if (!handshake) {
    --active;
    ++handshakes_failed;
    return;
  }
  auto stream = std::make_unique<tunnel::RecordStream>(std::move(socket));
  auto self = shared_from_this();
  tunnel::AsyncServerHandshake(
      strand, std::move(stream), std::move(*handshake), options.handshake_timeout,
      [self, strand](Result<tunnel::ServerReady> ready) {
        if (!ready) {
          --self->active;
          ++self->handshakes_failed;
          if (self->options.log) {
            self->options.log("handshake failed: " + ready.error().message());
          }
          return;
        }
        self->RunChannel(strand, std::move(*ready));
      });
}

void Ingress::State::RunChannel(asio::any_io_executor strand, tunnel::ServerReady ready) {
  auto self = shared_from_this();
  auto engine_slot = std::make_shared<std::weak_ptr<tunnel::Engine>>();
  tunnel::Engine::Callbacks callbacks;
  callbacks.on_open = [self, engine_slot, strand](mux::StreamId id, uint16_t port) {
    auto engine = engine_slot->lock();
    if (!engine) {
      return;
    }
    if (port == kHandoverPort) {
      auto sink = self->options.handover ? self->options.handover(engine, id) : nullptr;
      if (sink == nullptr) {
        ++self->streams_refused;
        engine->Reset(id, mux::ResetCode::kRefused, "this enclave awaits no handover");
        return;
      }
      ++self->streams_opened;
      engine->Attach(id, std::move(sink));
      return;
    }
    if (self->options.app_streams && !self->options.app_streams()) {
      ++self->streams_refused;
      engine->Reset(id, mux::ResetCode::kRefused, "this enclave awaits its upgrade handover");
      return;
    }
    if (!self->options.allowed_ports.contains(port)) {
      ++self->streams_refused;
      engine->Reset(id, mux::ResetCode::kRefused,
                    "port " + std::to_string(port) + " is not open in this enclave");
      return;
    }
    ++self->streams_opened;
    auto bridge = std::make_shared<tunnel::TcpBridge>(engine, asio::ip::tcp::socket(strand));
    bridge->Bind(id);
    engine->Attach(id, bridge);
    bridge->Connect(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), port));
  };
  callbacks.on_closed = [self](const Error& error) {
    --self->active;
    if (error.code() != Code::kUnavailable) {
      ++self->dropped;
      if (self->options.log) {
        self->options.log("channel dropped: " + error.message());
      }
    }
  };
  auto engine = tunnel::Engine::Create(strand, std::move(ready.stream), std::move(ready.channel),
                                       mux::Side::kServer, options.mux, std::move(callbacks));
  *engine_slot = engine;
  bool stopping;
  {
    // Under mu, so either Stop's swap sees this engine or we see `stopped` (it is set first).
    std::lock_guard lock(mu);
    stopping = stopped.load();
    if (!stopping) {
      engines.remove_if([](const auto& weak) { return weak.expired(); });
      engines.push_back(engine);
    }
  }
  engine->Start();
  if (stopping) {
    engine->Shutdown("enclave stopping");  // Its handshake finished after Stop.
  }
}

Result<std::unique_ptr<Ingress>> Ingress::Create(
    asio::io_context& io, IngressOptions options, crypto::X25519Keypair static_key,
    std::shared_ptr<channel::AttestationSource> source) {
  if (source == nullptr) {
    return Error(Code::kInvalidArgument, "ingress: no attestation source");
  }
  ASSIGN_OR_RETURN(net::SocketAddress address, net::Resolve(options.listen));
  auto state = std::make_shared<State>(io, std::move(options), std::move(static_key),
                                       std::move(source));
  if (state->options.listen.family == net::Family::kUnix) {
    struct stat st {};
    if (lstat(state->options.listen.host.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      ::unlink(state->options.listen.host.c_str());
    }
  }
  error_code ec;
  auto listening = net::Listen(
      state->acceptor, tunnel::ToEndpoint(address),
      state->options.listen.family == net::Family::kTcp ? net::ReuseAddress::kYes
                                                        : net::ReuseAddress::kNo,
      state->options.listen.ToString());
  if (!listening) {
    return listening.error().WithContext("ingress");
  }
  state->bound = state->options.listen;
  if (state->bound.family == net::Family::kTcp) {
    auto local = state->acceptor.local_endpoint(ec);
    if (!ec && local.size() >= sizeof(sockaddr_in)) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(local.data());
      state->bound.port = ntohs(in->sin_port);
    }
  }
  asio::post(state->acceptor.get_executor(), [state] { state->Accept(); });
  return std::unique_ptr<Ingress>(new Ingress(std::move(state)));
}

Ingress::~Ingress() { Stop(); }

net::Address Ingress::local_address() const { return state_->bound; }

void Ingress::Stop() {
  if (state_->stopped.exchange(true)) {
    return;
  }
  asio::post(state_->acceptor.get_executor(), [state = state_] {
    error_code ignored;
    state->acceptor.close(ignored);
  });
  std::list<std::weak_ptr<tunnel::Engine>> engines;
  {
    std::lock_guard lock(state_->mu);
    engines.swap(state_->engines);
  }
  for (auto& weak : engines) {
    if (auto engine = weak.lock()) {
      // Shutdown must run on the engine's strand; the engine keeps itself alive meanwhile.
      asio::post(engine->executor(), [engine] { engine->Shutdown("enclave stopping"); });
    }
  }
}

IngressStats Ingress::stats() const {
  IngressStats s;
  s.channels_accepted = state_->accepted;
  s.channels_active = state_->active;
  s.channels_refused = state_->refused;
  s.handshakes_failed = state_->handshakes_failed;
  s.channels_dropped = state_->dropped;
  s.streams_opened = state_->streams_opened;
  s.streams_refused = state_->streams_refused;
  return s;
}

}  // namespace enclavia::enclave
