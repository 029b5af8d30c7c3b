// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_TUNNEL_TCP_BRIDGE_H_
#define ENCLAVIA_LIB_TUNNEL_TCP_BRIDGE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "lib/base/bytes.h"
#include "lib/mux/mux.h"
#include "lib/tunnel/engine.h"

// TcpBridge joins one mux stream to one TCP connection, both ways, with the stream's credit as
// the only buffer: it reads from TCP no more than the stream may send, and returns received
// bytes to the window only after TCP took them. Half-closes map to shutdown(SHUT_WR) and back;
// a reset closes the socket. Used by the enclave's ingress (stream → app port) and by
// `enclavia proxy` (accepted connection → stream). Runs on the engine's strand.
namespace enclavia::tunnel {

class TcpBridge : public StreamSink, public std::enable_shared_from_this<TcpBridge> {
 public:
  // `socket` must use the engine's executor. `connected` says whether it is connected yet;
  // if not, call Connect.
  TcpBridge(std::weak_ptr<Engine> engine, boost::asio::ip::tcp::socket socket);
  ~TcpBridge() override;

  // Bind sets the stream id (after Engine::Open / on_open).
  void Bind(mux::StreamId id) { id_ = id; }
  // Connect dials `endpoint` and starts pumping; on failure the stream is reset with
  // kConnectFailed and `reason`.
  void Connect(boost::asio::ip::tcp::endpoint endpoint);
  // Start pumps an already connected socket.
  void Start();

  void OnData(Bytes bytes) override;
  void OnFin() override;
  void OnReset(mux::ResetCode code, std::string_view reason) override;
  void OnWritable() override;
  void OnClosed() override;

  // TakeSocket gives the socket back (before Start/Connect), e.g. when no stream could be opened.
  boost::asio::ip::tcp::socket TakeSocket() { return std::move(socket_); }

  // on_done runs once when the bridge is finished (for connection counting).
  void set_on_done(std::function<void()> on_done) { on_done_ = std::move(on_done); }

 private:
  void ReadNext();
  void WriteNext();
  void MaybeFinishWrite();
  void Finish();

  std::weak_ptr<Engine> engine_;
  boost::asio::ip::tcp::socket socket_;
  mux::StreamId id_ = 0;
  bool connected_ = false;
  bool reading_ = false;
  bool read_done_ = false;     // TCP EOF seen and Fin sent.
  bool waiting_credit_ = false;
  bool writing_ = false;
  bool peer_fin_ = false;      // Shut down our write side once the queue drains.
  bool finished_ = false;
  Bytes read_buffer_;
  std::deque<Bytes> write_queue_;  // Received, not yet written to TCP.
  std::deque<Bytes> in_flight_;    // Being written.
  std::function<void()> on_done_;
};

}  // namespace enclavia::tunnel

#endif  // ENCLAVIA_LIB_TUNNEL_TCP_BRIDGE_H_
