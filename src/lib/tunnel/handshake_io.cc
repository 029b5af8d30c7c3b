// SPDX-License-Identifier: Apache-2.0
#include "lib/tunnel/handshake_io.h"

#include <optional>
#include <utility>

#include <boost/asio/steady_timer.hpp>

namespace enclavia::tunnel {

namespace asio = boost::asio;

namespace {

// Exchange holds one handshake in flight; callbacks keep it alive.
template <typename Handshake, typename Done>
struct Exchange {
  Exchange(asio::any_io_executor ex, std::unique_ptr<MessageStream> s, Handshake h, Done d)
      : timer(ex), stream(std::move(s)), handshake(std::move(h)), done(std::move(d)) {}
  asio::steady_timer timer;
  std::unique_ptr<MessageStream> stream;
  Handshake handshake;
  Done done;
  bool finished = false;
  bool timed_out = false;

  template <typename T>
  void Complete(Result<T> result) {
    if (finished) {
      return;
    }
    finished = true;
    timer.cancel();
    if (!result) {
      stream->Close();
    }
    auto callback = std::move(done);
    callback(std::move(result));
  }
  Error Failure(const Error& error) const {
    return timed_out ? Error(Code::kUnavailable, "channel: handshake timed out") : error;
  }
};

template <typename E>
void ArmTimer(const std::shared_ptr<E>& exchange, std::chrono::milliseconds timeout) {
  exchange->timer.expires_after(timeout);
  exchange->timer.async_wait([exchange](boost::system::error_code ec) {
    if (!ec && !exchange->finished) {
      exchange->timed_out = true;
      exchange->stream->Close();
    }
  });
}

}  // namespace

void AsyncServerHandshake(asio::any_io_executor executor, std::unique_ptr<MessageStream> stream,
                          channel::ServerHandshake handshake, std::chrono::milliseconds timeout,
                          ServerDone done) {
  using E = Exchange<std::optional<channel::ServerHandshake>, ServerDone>;
  auto x = std::make_shared<E>(executor, std::move(stream),
                               std::optional<channel::ServerHandshake>(std::move(handshake)),
                               std::move(done));
  ArmTimer(x, timeout);
  x->stream->AsyncRead([x](Result<Bytes> message1) {
    if (!message1) {
      x->Complete(Result<ServerReady>(x->Failure(message1.error())));
      return;
    }
    auto message2 = x->handshake->ReadClientHello(*message1);
    if (!message2) {
      x->Complete(Result<ServerReady>(message2.error()));
      return;
    }
    x->stream->AsyncWrite(std::move(*message2), [x](Result<void> written) {
      if (!written) {
        x->Complete(Result<ServerReady>(x->Failure(written.error())));
        return;
      }
      x->stream->AsyncRead([x](Result<Bytes> message3) {
        if (!message3) {
          x->Complete(Result<ServerReady>(x->Failure(message3.error())));
          return;
        }
        auto channel = std::move(*x->handshake).ReadClientFinish(*message3);
        if (!channel) {
          x->Complete(Result<ServerReady>(channel.error()));
          return;
        }
        x->Complete(Result<ServerReady>(ServerReady{std::move(x->stream), std::move(*channel)}));
      });
    });
  });
}

void AsyncClientHandshake(asio::any_io_executor executor, std::unique_ptr<MessageStream> stream,
                          channel::ClientHandshake handshake, std::chrono::milliseconds timeout,
                          ClientDone done) {
  using E = Exchange<std::optional<channel::ClientHandshake>, ClientDone>;
  auto x = std::make_shared<E>(executor, std::move(stream),
                               std::optional<channel::ClientHandshake>(std::move(handshake)),
                               std::move(done));
  ArmTimer(x, timeout);
  auto message1 = x->handshake->Start();
  if (!message1) {
    x->Complete(Result<ClientReady>(message1.error()));
    return;
  }
  x->stream->AsyncWrite(std::move(*message1), [x](Result<void> written) {
    if (!written) {
      x->Complete(Result<ClientReady>(x->Failure(written.error())));
      return;
    }
    x->stream->AsyncRead([x](Result<Bytes> message2) {
      if (!message2) {
        x->Complete(Result<ClientReady>(x->Failure(message2.error().WithContext(
            "channel: no server hello"))));
        return;
      }
      auto message3 = x->handshake->ReadServerHello(*message2);
      if (!message3) {
        x->Complete(Result<ClientReady>(message3.error()));
        return;
      }
      x->stream->AsyncWrite(std::move(*message3), [x](Result<void> written3) {
        if (!written3) {
          x->Complete(Result<ClientReady>(x->Failure(written3.error())));
          return;
        }
        auto established = std::move(*x->handshake).Finish();
        if (!established) {
          x->Complete(Result<ClientReady>(established.error()));
          return;
        }
        x->Complete(
            Result<ClientReady>(ClientReady{std::move(x->stream), std::move(*established)}));
      });
    });
  });
}

}  // namespace enclavia::tunnel
