// SPDX-License-Identifier: Apache-2.0
#include "lib/tunnel/engine.h"

#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace enclavia::tunnel {

std::shared_ptr<Engine> Engine::Create(boost::asio::any_io_executor executor,
                                       std::unique_ptr<MessageStream> stream,
                                       channel::SecureChannel channel, mux::Side side,
                                       mux::Options options, Callbacks callbacks) {
  return std::shared_ptr<Engine>(new Engine(std::move(executor), std::move(stream),
                                            std::move(channel), mux::Session(side, options),
                                            std::move(callbacks)));
}

Engine::Engine(boost::asio::any_io_executor executor, std::unique_ptr<MessageStream> stream,
               channel::SecureChannel channel, mux::Session session, Callbacks callbacks)
    : executor_(std::move(executor)), stream_(std::move(stream)), channel_(std::move(channel)),
      session_(std::move(session)), callbacks_(std::move(callbacks)) {}

Engine::~Engine() {
  if (stream_) {
    stream_->Close();
  }
}

void Engine::Start() { ReadNext(); }

void Engine::ReadNext() {
  if (closed_) {
    return;
  }
  stream_->AsyncRead([self = shared_from_this()](Result<Bytes> message) {
    if (self->closed_) {
      return;
    }
    if (!message) {
      self->Fail(message.error());
      return;
    }
    self->OnMessage(std::move(*message));
  });
}

void Engine::OnMessage(Bytes message) {
  auto plaintext = channel_.OpenInPlace(std::move(message));
  if (!plaintext) {
    // A message that fails authentication was altered, replayed, reordered or follows a lost
    // one: the path is hostile and the channel cannot continue (docs/protocol.md).
    Fail(Error(Code::kVerifyFailed, "channel: message failed authentication; channel dropped"));
    return;
  }
  if (auto received = session_.Receive(*plaintext); !received) {
    Fail(received.error());
    return;
  }
  DrainEvents();
  if (closed_) {
    return;
  }
  Flush();
  ReadNext();
}

void Engine::DrainEvents() {
  while (!closed_) {
    std::optional<mux::Event> event = session_.PollEvent();
    if (!event) {
      break;
    }
    std::visit(
        [this](auto& e) {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, mux::event::Opened>) {
            if (callbacks_.on_open) {
              // A copy: Fail, reachable from inside on_open, clears the member.
              auto on_open = callbacks_.on_open;
              on_open(e.id, e.port);
            } else {
              (void)session_.Reset(e.id, mux::ResetCode::kRefused, "streams are not accepted");
            }
          } else if constexpr (std::is_same_v<T, mux::event::Pong> ||
                               std::is_same_v<T, mux::event::GoAway>) {
            // GoAway: existing streams continue; Open now fails, so the owner reconnects.
          } else {
            auto it = sinks_.find(e.id);
            if (it == sinks_.end()) {
              if constexpr (std::is_same_v<T, mux::event::Data>) {
                session_.Consumed(e.id, e.bytes.size());
              }
              return;
            }
            std::shared_ptr<StreamSink> sink = it->second;
            if constexpr (std::is_same_v<T, mux::event::Data>) {
              sink->OnData(std::move(e.bytes));
            } else if constexpr (std::is_same_v<T, mux::event::Fin>) {
              sink->OnFin();
            } else if constexpr (std::is_same_v<T, mux::event::Writable>) {
              sink->OnWritable();
            } else if constexpr (std::is_same_v<T, mux::event::Reset>) {
              sinks_.erase(e.id);
              sink->OnReset(e.code, e.reason);
            } else if constexpr (std::is_same_v<T, mux::event::Closed>) {
              sinks_.erase(e.id);
              sink->OnClosed();
            }
          }
        },
        *event);
  }
}

void Engine::Flush() {
  if (writing_ || closed_) {
    return;
  }
  // Up to kMaxBatch messages leave in one write (one syscall on a RecordStream); more would
  // only delay the first.
  constexpr size_t kMaxBatch = 8;
  std::vector<Bytes> batch;
  while (batch.size() < kMaxBatch) {
    std::optional<Bytes> plaintext = session_.PollOutgoing();
    if (!plaintext) {
      break;
    }
    auto sealed = channel_.SealInPlace(std::move(*plaintext));
    if (!sealed) {
      Fail(sealed.error());
      return;
    }
    batch.push_back(std::move(*sealed));
  }
  if (batch.empty()) {
    if (shutting_down_) {
      Fail(Error(Code::kUnavailable, "channel closed"));
    }
    return;
  }
  writing_ = true;
  stream_->AsyncWriteMany(std::move(batch), [self = shared_from_this()](Result<void> written) {
    self->writing_ = false;
    if (self->closed_) {
      return;
    }
    if (!written) {
      self->Fail(written.error());
      return;
    }
    self->Flush();
  });
}

void Engine::Fail(const Error& error) {
  if (closed_) {
    return;
  }
  closed_ = true;
  auto sinks = std::move(sinks_);
  sinks_.clear();
  for (auto& [id, sink] : sinks) {
    sink->OnReset(mux::ResetCode::kInternal, "channel ended: " + error.message());
  }
  stream_->Close();
  if (callbacks_.on_closed) {
    auto on_closed = std::move(callbacks_.on_closed);
    callbacks_.on_closed = nullptr;
    on_closed(error);
  }
  callbacks_.on_open = nullptr;
}

Result<mux::StreamId> Engine::Open(uint16_t port, std::shared_ptr<StreamSink> sink) {
  if (closed_) {
    return Error(Code::kUnavailable, "channel closed");
  }
  ASSIGN_OR_RETURN(mux::StreamId id, session_.Open(port));
  sinks_[id] = std::move(sink);
  Flush();
  return id;
}

void Engine::Attach(mux::StreamId id, std::shared_ptr<StreamSink> sink) {
  if (!closed_) {
    sinks_[id] = std::move(sink);
  }
}

size_t Engine::Write(mux::StreamId id, ByteSpan data) {
  if (closed_) {
    return 0;
  }
  auto taken = session_.Write(id, data);
  if (!taken) {
    return 0;
  }
  Flush();
  return *taken;
}

void Engine::Fin(mux::StreamId id) {
  if (!closed_ && session_.Fin(id)) {
    Flush();
  }
}

void Engine::Reset(mux::StreamId id, mux::ResetCode code, std::string_view reason) {
  sinks_.erase(id);
  if (!closed_ && session_.Reset(id, code, reason)) {
    Flush();
  }
}

void Engine::Consumed(mux::StreamId id, size_t n) {
  if (!closed_) {
    session_.Consumed(id, n);
    Flush();
  }
}

size_t Engine::send_credit(mux::StreamId id) const {
  return closed_ ? 0 : session_.send_credit(id);
}

void Engine::Ping() {
  if (!closed_) {
    session_.Ping(++ping_counter_);
    Flush();
  }
}

void Engine::Shutdown(std::string_view reason) {
  if (closed_ || shutting_down_) {
    return;
  }
  shutting_down_ = true;
  session_.GoAway(mux::ResetCode::kNone, reason);
  Flush();
}

}  // namespace enclavia::tunnel
