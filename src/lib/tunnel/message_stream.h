// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_TUNNEL_MESSAGE_STREAM_H_
#define ENCLAVIA_LIB_TUNNEL_MESSAGE_STREAM_H_

#include <deque>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/net/address.h"

// An ordered, reliable transport of whole messages (≤ 65535 bytes each): what a channel runs on.
// The enclave reads relay records from vsock (RecordStream); the client speaks WebSocket
// (src/client). Every call and every handler runs on the stream's executor (a strand).
namespace enclavia::tunnel {

class MessageStream {
 public:
  using ReadHandler = std::function<void(Result<Bytes>)>;
  using WriteHandler = std::function<void(Result<void>)>;

  virtual ~MessageStream() = default;

  // AsyncRead reads the next message. At most one read may be outstanding. A clean end of the
  // stream is kUnavailable ("closed by peer").
  virtual void AsyncRead(ReadHandler handler) = 0;
  // AsyncWrite sends one message. At most one write may be outstanding.
  virtual void AsyncWrite(Bytes message, WriteHandler handler) = 0;
  // AsyncWriteMany sends several messages in order, as one operation (RecordStream: one
  // gather write). The default writes them one after another.
  virtual void AsyncWriteMany(std::vector<Bytes> messages, WriteHandler handler);
  // Close ends the stream; outstanding operations complete with errors. Idempotent.
  virtual void Close() = 0;
};

using GenericSocket = boost::asio::generic::stream_protocol::socket;

// RecordStream carries messages as records (u16 BE length, bytes; lib/net/framing.h) over a
// stream socket of any family (unix, tcp, vsock). Reads are buffered (one read may bring many
// records) and writes gather header and body, so a record costs no copy and rarely a syscall
// of its own.
class RecordStream : public MessageStream {
 public:
  explicit RecordStream(GenericSocket socket);
  ~RecordStream() override;

  void AsyncRead(ReadHandler handler) override;
  void AsyncWrite(Bytes message, WriteHandler handler) override;
  void AsyncWriteMany(std::vector<Bytes> messages, WriteHandler handler) override;
  void Close() override;

 private:
  struct State;
  static void ReadRecord(const std::shared_ptr<State>& state, ReadHandler handler);
  std::shared_ptr<State> state_;
};

// StreamError turns a socket error into an Error: kUnavailable, "closed by peer" for an orderly
// or abrupt close, "stream closed" after Close, else "<what>: <system message>".
Error StreamError(const boost::system::error_code& ec, std::string_view what);

// OpenSocket creates a socket for `address`'s family on `executor` (unbound, unconnected).
Result<GenericSocket> OpenSocket(const boost::asio::any_io_executor& executor,
                                 const net::SocketAddress& address);

// ToEndpoint turns a resolved address into an Asio endpoint.
boost::asio::generic::stream_protocol::endpoint ToEndpoint(const net::SocketAddress& address);

}  // namespace enclavia::tunnel

#endif  // ENCLAVIA_LIB_TUNNEL_MESSAGE_STREAM_H_
