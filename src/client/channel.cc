// SPDX-License-Identifier: Apache-2.0
#include "client/channel.h"

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

namespace enclavia::client {

namespace asio = boost::asio;

struct Channel::Impl {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  asio::strand<asio::io_context::executor_type> strand{io.get_executor()};
  std::thread thread;
  std::shared_ptr<tunnel::Engine> engine;  // Touched only on the strand.
  std::optional<attestation::VerifiedAttestation> attestation;
  std::optional<upgrade::VerifiedChain> chain;
  Bytes hash;
  std::mutex mu;
  std::optional<Error> closed;  // Why the channel ended.
  // stopped: ~Channel has begun and the I/O thread is (about to be) gone. A Stream may outlive
  // its Channel (the C ABI lets bindings free them in any order), and a handler posted after
  // that would never run: Run would wait forever, and the handler would keep this Impl alive
  // from inside its own io_context (a leak). So nothing is posted once it is set. Guarded by mu.
  bool stopped = false;

  // Post queues `fn` on the strand; false (and `fn` is dropped) once the channel is destroyed.
  template <typename F>
  bool Post(F fn) {
    std::lock_guard lock(mu);
    if (stopped) {
      return false;
    }
    asio::post(strand, std::move(fn));
    return true;
  }

  // Run executes `fn` on the strand and waits for its result; `fallback` once the channel is
  // destroyed.
  template <typename F, typename T = decltype(std::declval<F>()())>
  T Run(F fn, std::type_identity_t<T> fallback) {
    std::packaged_task<T()> task(std::move(fn));
    auto future = task.get_future();
    if (!Post([&task] { task(); })) {
      return fallback;
    }
    return future.get();
  }
};

// Stream::Impl is the stream's sink (I/O thread side) and its blocking state (caller side).
struct Stream::Impl : tunnel::StreamSink {
  std::shared_ptr<Channel::Impl> channel;
  mux::StreamId id = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Bytes> received;
  size_t offset = 0;  // Into received.front().
  bool fin = false;
  bool writable = false;
  std::optional<Error> error;
  bool done = false;  // Closed or reset: no further engine calls.

  // Done reads `done` for the I/O thread (Close sets it from the caller's).
  bool Done() {
    std::lock_guard lock(mu);
    return done;
  }

  void OnData(Bytes bytes) override {
    std::lock_guard lock(mu);
    received.push_back(std::move(bytes));
    cv.notify_all();
  }
  void OnFin() override {
    std::lock_guard lock(mu);
    fin = true;
    cv.notify_all();
  }
  void OnReset(mux::ResetCode, std::string_view reason) override {
    std::lock_guard lock(mu);
    // The engine ends every stream with "channel ended: …" when the channel itself fails.
    error = Error(Code::kUnavailable, reason.starts_with("channel ended")
                                          ? std::string(reason)
                                          : "stream reset by enclave: " + std::string(reason));
    done = true;
    cv.notify_all();
  }
  void OnWritable() override {
    std::lock_guard lock(mu);
    writable = true;
    cv.notify_all();
  }
  void OnClosed() override {
    std::lock_guard lock(mu);
    fin = true;
    done = true;
    cv.notify_all();
  }
};

Result<std::unique_ptr<Channel>> Channel::Connect(std::string_view url,
                                                  channel::TrustPolicy policy,
                                                  ConnectOptions options) {
  auto impl = std::make_shared<Channel::Impl>();
  impl->thread = std::thread([impl_raw = impl.get()] { impl_raw->io.run(); });
  std::promise<Result<Connected>> promise;
  auto future = promise.get_future();
  std::weak_ptr<Channel::Impl> weak = impl;
  auto shared_policy = std::make_shared<const channel::TrustPolicy>(std::move(policy));
  asio::post(impl->strand, [&, weak] {
    AsyncConnect(
        impl->strand, std::string(url), shared_policy, options,
        [weak](const Error& error) {
          if (auto self = weak.lock()) {
            std::lock_guard lock(self->mu);
            self->closed = error;
          }
        },
        [&promise](Result<Connected> connected) { promise.set_value(std::move(connected)); });
  });
  auto connected = future.get();
  if (!connected) {
    impl->work.reset();
    impl->io.stop();
    impl->thread.join();
    return connected.error();
  }
  impl->Run(
      [&] {
        impl->engine = connected->engine;
        impl->hash = connected->engine->handshake_hash();
        return 0;
      },
      0);
  impl->attestation.emplace(std::move(connected->attestation));
  impl->chain = std::move(connected->chain);
  return std::unique_ptr<Channel>(new Channel(std::move(impl)));
}

Channel::~Channel() {
  // Streams posted their work before `stopped` was set, so it is queued ahead of the abort and
  // runs first (the strand is FIFO); after it, Post refuses. Once the abort ran, nothing is left
  // for the I/O thread to do for a stream, and io.stop() strands no one.
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopped = true;
  }
  std::promise<void> aborted;
  asio::post(impl_->strand, [impl = impl_.get(), &aborted] {
    if (impl->engine) {
      impl->engine->Abort("channel destroyed");
      impl->engine.reset();
    }
    aborted.set_value();
  });
  aborted.get_future().wait();
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
}

void Channel::Close() {
  impl_->Run(
      [impl = impl_.get()] {
        if (impl->engine) {
          impl->engine->Shutdown("client closed");
        }
        return 0;
      },
      0);
}

const attestation::VerifiedAttestation& Channel::attestation() const {
  return *impl_->attestation;
}

const std::optional<upgrade::VerifiedChain>& Channel::chain() const {
  return impl_->chain;
}

Bytes Channel::handshake_hash() const { return impl_->hash; }

Result<std::unique_ptr<Stream>> Channel::OpenStream(uint16_t port) {
  auto stream = std::make_shared<Stream::Impl>();
  stream->channel = impl_;
  auto id = impl_->Run(
      [&]() -> Result<mux::StreamId> {
        if (!impl_->engine || impl_->engine->closed()) {
          std::lock_guard lock(impl_->mu);
          return impl_->closed ? impl_->closed->WithContext("channel ended")
                               : Error(Code::kUnavailable, "channel ended");
        }
        return impl_->engine->Open(port, stream);
      },
      Result<mux::StreamId>(Error(Code::kUnavailable, "channel ended")));
  if (!id) {
    return id.error();
  }
  stream->id = *id;
  return std::make_unique<Stream>(std::move(stream));
}

Stream::~Stream() { Close(); }

Result<size_t> Stream::Read(std::span<uint8_t> out) {
  size_t copied = 0;
  {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait(lock, [&] {
      return !impl_->received.empty() || impl_->fin || impl_->error.has_value();
    });
    if (impl_->received.empty()) {
      if (impl_->error && !impl_->fin) {
        return *impl_->error;
      }
      return size_t{0};
    }
    while (copied < out.size() && !impl_->received.empty()) {
      Bytes& front = impl_->received.front();
      size_t n = std::min(out.size() - copied, front.size() - impl_->offset);
      std::copy_n(front.begin() + static_cast<std::ptrdiff_t>(impl_->offset), n,
                  out.begin() + static_cast<std::ptrdiff_t>(copied));
      copied += n;
      impl_->offset += n;
      if (impl_->offset == front.size()) {
        impl_->received.pop_front();
        impl_->offset = 0;
      }
    }
  }
  auto impl = impl_;
  // Refused once the channel is gone: the bytes no longer need a window.
  (void)impl->channel->Post([impl, copied] {
    if (impl->channel->engine) {
      impl->channel->engine->Consumed(impl->id, copied);
    }
  });
  return copied;
}

Result<Bytes> Stream::ReadAll(size_t limit) {
  Bytes all;
  std::array<uint8_t, 64 * 1024> buffer;
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, Read(buffer));
    if (n == 0) {
      return all;
    }
    if (all.size() + n > limit) {
      return Error(Code::kLimitExceeded, "stream: more than the read limit");
    }
    all.insert(all.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
  }
}

Result<void> Stream::Write(ByteSpan data) {
  while (!data.empty()) {
    {
      std::lock_guard lock(impl_->mu);
      if (impl_->error) {
        return *impl_->error;
      }
      impl_->writable = false;
    }
    auto impl = impl_;
    size_t taken = impl_->channel->Run(
        [impl, data]() -> size_t {
          if (!impl->channel->engine || impl->Done()) {
            return 0;
          }
          return impl->channel->engine->Write(impl->id, data);
        },
        size_t{0});  // The channel is gone: the wait below reports why.
    data = data.subspan(taken);
    if (taken == 0) {
      std::unique_lock lock(impl_->mu);
      impl_->cv.wait_for(lock, std::chrono::milliseconds(200),
                         [&] { return impl_->writable || impl_->error.has_value(); });
      if (impl_->error) {
        return *impl_->error;
      }
      if (impl_->done) {
        return Error(Code::kUnavailable, "stream closed");
      }
      std::lock_guard channel_lock(impl_->channel->mu);
      if (impl_->channel->closed) {
        return impl_->channel->closed->WithContext("channel ended");
      }
    }
  }
  return Ok();
}

Result<void> Stream::CloseWrite() {
  auto impl = impl_;
  impl_->channel->Run(
      [impl] {
        if (impl->channel->engine && !impl->Done()) {
          impl->channel->engine->Fin(impl->id);
        }
        return 0;
      },
      0);
  return Ok();
}

void Stream::Close() {
  if (!impl_) {
    return;
  }
  auto impl = impl_;
  bool already;
  {
    std::lock_guard lock(impl->mu);
    already = impl->done;
    impl->done = true;
  }
  if (!already) {
    // Refused once the channel is gone, which has reset the stream already.
    (void)impl->channel->Post([impl] {
      if (impl->channel->engine) {
        impl->channel->engine->Reset(impl->id, mux::ResetCode::kCancelled, "closed by client");
      }
    });
  }
}

}  // namespace enclavia::client
