// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_TUNNEL_ENGINE_H_
#define ENCLAVIA_LIB_TUNNEL_ENGINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/channel/handshake.h"
#include "lib/mux/mux.h"
#include "lib/tunnel/message_stream.h"

// Engine runs an established channel: it decrypts each message from its MessageStream into the
// mux, hands stream events to each stream's sink, and encrypts and writes what the mux queues,
// one message at a time. Memory stays bounded by the mux windows: a sink that does not call
// Consumed stops only its own stream.
//
// Threading: everything (calls, callbacks, sink events) happens on `executor`, a strand.
namespace enclavia::tunnel {

// StreamSink receives one stream's events.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // OnData delivers bytes; the sink calls Engine::Consumed once it has passed them on.
  virtual void OnData(Bytes bytes) = 0;
  // OnFin: the peer sends no more.
  virtual void OnFin() = 0;
  // OnReset: the stream is gone (peer reset, or the channel ended). Last event.
  virtual void OnReset(mux::ResetCode code, std::string_view reason) = 0;
  // OnWritable: send credit is available again after a short Write.
  virtual void OnWritable() = 0;
  // OnClosed: both directions finished cleanly. Last event.
  virtual void OnClosed() = 0;
};

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  struct Callbacks {
    // on_open (server side): the peer opened `id` to `port`. Call Attach or Reset from it.
    std::function<void(mux::StreamId id, uint16_t port)> on_open;
    // on_closed: the channel ended; `error` says why (kUnavailable for a clean close). Every
    // stream was reset before it is called.
    std::function<void(const Error& error)> on_closed;
  };

  static std::shared_ptr<Engine> Create(boost::asio::any_io_executor executor,
                                        std::unique_ptr<MessageStream> stream,
                                        channel::SecureChannel channel, mux::Side side,
                                        mux::Options options, Callbacks callbacks);
  ~Engine();

  // Start begins reading. Call once, on the executor.
  void Start();

  // Open starts a stream to `port` whose events go to `sink` (client side).
  Result<mux::StreamId> Open(uint16_t port, std::shared_ptr<StreamSink> sink);
  // Attach gives a peer-opened stream its sink (server side, from on_open).
  void Attach(mux::StreamId id, std::shared_ptr<StreamSink> sink);
  // Write queues up to the stream's credit and returns how much it took.
  size_t Write(mux::StreamId id, ByteSpan data);
  void Fin(mux::StreamId id);
  // Reset ends the stream (no further sink events).
  void Reset(mux::StreamId id, mux::ResetCode code, std::string_view reason);
  void Consumed(mux::StreamId id, size_t n);
  size_t send_credit(mux::StreamId id) const;
  // Ping sends a keepalive; a dead path shows as a read error.
  void Ping();

  // Shutdown sends GoAway and closes the channel once queued data is written (or at once when
  // `error` is set, e.g. after tampering). on_closed runs once.
  void Shutdown(std::string_view reason);
  // Abort ends the channel now: streams are reset, on_closed runs with kUnavailable(reason).
  void Abort(std::string_view reason) { Fail(Error(Code::kUnavailable, std::string(reason))); }
  bool closed() const { return closed_; }
  const boost::asio::any_io_executor& executor() const { return executor_; }
  size_t open_streams() const { return sinks_.size(); }
  const noise::HandshakeHash& handshake_hash() const { return channel_.handshake_hash(); }

 private:
  Engine(boost::asio::any_io_executor executor, std::unique_ptr<MessageStream> stream,
         channel::SecureChannel channel, mux::Session session, Callbacks callbacks);
  void ReadNext();
  void OnMessage(Bytes message);
  void DrainEvents();
  void Flush();
  void Fail(const Error& error);

  boost::asio::any_io_executor executor_;
  std::unique_ptr<MessageStream> stream_;
  channel::SecureChannel channel_;
  mux::Session session_;
  Callbacks callbacks_;
  std::map<mux::StreamId, std::shared_ptr<StreamSink>> sinks_;
  bool writing_ = false;
  bool closed_ = false;
  bool shutting_down_ = false;
  uint64_t ping_counter_ = 0;
};

}  // namespace enclavia::tunnel

#endif  // ENCLAVIA_LIB_TUNNEL_ENGINE_H_
