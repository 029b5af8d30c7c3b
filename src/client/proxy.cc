// SPDX-License-Identifier: Apache-2.0
#include "client/proxy.h"

#include <atomic>
#include <deque>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "lib/net/accept_retry.h"
#include "lib/net/listen.h"
#include "lib/tunnel/tcp_bridge.h"

namespace enclavia::client {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

struct Proxy::State : std::enable_shared_from_this<Proxy::State> {
  State(asio::io_context& io, ProxyOptions opts)
      : strand(asio::make_strand(io)), acceptor(strand), retry_timer(strand),
        options(std::move(opts)), backoff(options.retry_initial) {}

  asio::any_io_executor strand;
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  asio::steady_timer accept_retry{strand};
  ProxyOptions options;
  std::shared_ptr<tunnel::Engine> engine;
  bool connecting = false;
  bool stopped = false;
  bool started = false;
  std::chrono::milliseconds backoff;
  std::function<void(Result<net::Address>)> ready;
  struct Pending {
    tcp::socket socket;
    std::chrono::steady_clock::time_point since;
  };
  std::deque<Pending> pending;
  std::atomic<uint64_t> connections{0}, channels{0}, failures{0};

  void Log(std::string_view line) {
    if (options.log) {
      options.log(line);
    }
  }

  void Connect() {
    if (connecting || stopped) {
      return;
    }
    connecting = true;
    auto self = shared_from_this();
    AsyncConnect(
        strand, options.url, options.policy, options.connect,
        [weak = std::weak_ptr<State>(self)](const Error& error) {
          if (auto s = weak.lock()) {
            // Only if it is this channel that ended: one dropped after a GoAway (Bridge) may end
            // after its replacement was connected, and must not take that one with it.
            if (s->engine && s->engine->closed()) {
              s->engine.reset();
            }
            if (!s->stopped) {
              s->Log("channel ended: " + error.message() + "; reconnecting on demand");
            }
          }
        },
        [self](Result<Connected> connected) {
          self->connecting = false;
          if (self->stopped) {
            return;
          }
          if (!connected) {
            ++self->failures;
            self->Log("cannot open a verified channel to " + self->options.url + ": " +
                      connected.error().message());
            if (!self->started) {
              self->Fail(connected.error());
              return;
            }
            self->ScheduleRetry();
            return;
          }
          ++self->channels;
          self->backoff = self->options.retry_initial;
          self->engine = connected->engine;
          self->Log("verified enclave: " + DescribeAttestation(connected->attestation));
          if (!self->started) {
            self->started = true;
            self->Accept();
            if (self->ready) {
              auto r = std::move(self->ready);
              self->ready = nullptr;
              net::Address bound = self->options.listen;
              error_code ec;
              bound.port = self->acceptor.local_endpoint(ec).port();
              r(bound);
            }
          }
          self->DrainPending();
        });
  }

  void Fail(const Error& error) {
    stopped = true;
    error_code ignored;
    acceptor.close(ignored);
    if (ready) {
      auto r = std::move(ready);
      ready = nullptr;
      r(error);
    }
  }

  void ScheduleRetry() {
    // Drop connections that waited too long: better a refused connection than a hung one.
    auto now = std::chrono::steady_clock::now();
    while (!pending.empty() && now - pending.front().since > options.connect_wait) {
      error_code ignored;
      pending.front().socket.close(ignored);
      pending.pop_front();
    }
    if (pending.empty()) {
      return;  // Reconnect on the next connection.
    }
    retry_timer.expires_after(backoff);
    backoff = std::min(backoff * 2, options.retry_max);
    retry_timer.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) {
        self->Connect();
      }
    });
  }

  void Accept() {
    acceptor.async_accept(strand, [self = shared_from_this()](error_code ec, tcp::socket socket) {
      if (self->stopped) {
        return;
      }
      if (ec) {
        net::RetryAcceptSoon(self->accept_retry, [self] { return self->stopped; },
                             [self] { self->Accept(); });
        return;
      }
      ++self->connections;
      self->OnConnection(std::move(socket));
      self->Accept();
    });
  }

  void OnConnection(tcp::socket socket) {
    if (engine && !engine->closed()) {
      Bridge(std::move(socket));
      return;
    }
    if (pending.size() >= options.max_pending) {
      return;  // Socket closes here.
    }
    pending.push_back({std::move(socket), std::chrono::steady_clock::now()});
    Connect();
  }

  void DrainPending() {
    while (!pending.empty() && engine && !engine->closed()) {
      Bridge(std::move(pending.front().socket));
      pending.pop_front();
    }
  }

  void Bridge(tcp::socket socket) {
    auto bridge = std::make_shared<tunnel::TcpBridge>(engine, std::move(socket));
    auto id = engine->Open(options.port, bridge);
    if (!id) {
      // GoAway from the enclave (upgrade or shutdown): reconnect and retry this one. The old
      // channel is only let go: its streams continue until the enclave closes it.
      engine.reset();
      Log("channel refused a stream (" + id.error().message() + "); reconnecting");
      pending.push_front({bridge->TakeSocket(), std::chrono::steady_clock::now()});
      Connect();
      return;
    }
    bridge->Bind(*id);
    bridge->Start();
  }
};

std::shared_ptr<Proxy> Proxy::Start(asio::io_context& io, ProxyOptions options,
                                    std::function<void(Result<net::Address>)> ready) {
  auto state = std::make_shared<State>(io, std::move(options));
  state->ready = std::move(ready);
  asio::post(state->strand, [state] {
    if (state->options.listen.family != net::Family::kTcp) {
      state->Fail(Error(Code::kInvalidArgument, "proxy: --listen must be a TCP address"));
      return;
    }
    if (state->options.policy == nullptr) {
      state->Fail(Error(Code::kInvalidArgument, "proxy: no trust policy"));
      return;
    }
    error_code ec;
    auto address = asio::ip::make_address(state->options.listen.host, ec);
    tcp::endpoint endpoint(address, static_cast<uint16_t>(state->options.listen.port));
    auto listening = net::Listen(state->acceptor, endpoint, net::ReuseAddress::kYes,
                                 state->options.listen.ToString());
    if (!listening) {
      state->Fail(listening.error().WithContext("proxy"));
      return;
    }
    state->Connect();
  });
  return std::shared_ptr<Proxy>(new Proxy(std::move(state)));
}

Proxy::~Proxy() { Stop(); }

void Proxy::Stop() {
  asio::post(state_->strand, [state = state_] {
    state->stopped = true;
    error_code ignored;
    state->acceptor.close(ignored);
    state->retry_timer.cancel();
    if (state->engine) {
      state->engine->Abort("proxy stopped");
      state->engine.reset();
    }
  });
}

ProxyStats Proxy::stats() const {
  return ProxyStats{state_->connections, state_->channels, state_->failures};
}

}  // namespace enclavia::client
