// SPDX-License-Identifier: Apache-2.0
#include "lib/tunnel/message_stream.h"

#include <array>
#include <string>
#include <utility>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "lib/net/framing.h"

namespace enclavia::tunnel {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

Error StreamError(const error_code& ec, std::string_view what) {
  if (ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe) {
    return Error(Code::kUnavailable, "closed by peer");
  }
  if (ec == asio::error::operation_aborted) {
    return Error(Code::kUnavailable, "stream closed");
  }
  return Error(Code::kIo, std::string(what) + ": " + ec.message());
}

}  // namespace

struct RecordStream::State {
  explicit State(GenericSocket s) : socket(std::move(s)) {}
  GenericSocket socket;
  std::array<uint8_t, net::kRecordHeaderSize> read_header{};
  Bytes read_body;
  Bytes write_buffer;
};

RecordStream::RecordStream(GenericSocket socket)
    : state_(std::make_shared<State>(std::move(socket))) {}

RecordStream::~RecordStream() { Close(); }

void RecordStream::AsyncRead(ReadHandler handler) {
  auto state = state_;
  asio::async_read(
      state->socket, asio::buffer(state->read_header),
      [state, handler = std::move(handler)](error_code ec, size_t) mutable {
        if (ec) {
          handler(StreamError(ec, "read record"));
          return;
        }
        size_t size = (size_t{state->read_header[0]} << 8) | state->read_header[1];
        state->read_body.resize(size);
        asio::async_read(state->socket, asio::buffer(state->read_body),
                         [state, handler = std::move(handler)](error_code ec2, size_t) {
                           if (ec2) {
                             handler(ec2 == asio::error::eof
                                         ? Error(Code::kMalformed, "record truncated")
                                         : StreamError(ec2, "read record"));
                             return;
                           }
                           handler(std::move(state->read_body));
                         });
      });
}

void RecordStream::AsyncWrite(Bytes message, WriteHandler handler) {
  if (message.size() > net::kMaxRecordSize) {
    handler(Error(Code::kInvalidArgument, "record larger than 65535 bytes"));
    return;
  }
  auto state = state_;
  // Header and body go out in one write (one syscall, one segment for small messages).
  state->write_buffer.clear();
  state->write_buffer.reserve(net::kRecordHeaderSize + message.size());
  state->write_buffer.push_back(static_cast<uint8_t>(message.size() >> 8));
  state->write_buffer.push_back(static_cast<uint8_t>(message.size() & 0xff));
  state->write_buffer.insert(state->write_buffer.end(), message.begin(), message.end());
  asio::async_write(state->socket, asio::buffer(state->write_buffer),
                    [state, handler = std::move(handler)](error_code ec, size_t) {
                      if (ec) {
                        handler(StreamError(ec, "write record"));
                        return;
                      }
                      handler(Ok());
                    });
}

void RecordStream::Close() {
  if (state_ && state_->socket.is_open()) {
    error_code ignored;
    state_->socket.shutdown(GenericSocket::shutdown_both, ignored);
    state_->socket.close(ignored);
  }
}

Result<GenericSocket> OpenSocket(const asio::any_io_executor& executor,
                                 const net::SocketAddress& address) {
  GenericSocket socket(executor);
  error_code ec;
  int protocol = 0;
  socket.open(asio::generic::stream_protocol(address.family(), protocol), ec);
  if (ec) {
    return Error(Code::kIo, "socket: " + ec.message());
  }
  return socket;
}

asio::generic::stream_protocol::endpoint ToEndpoint(const net::SocketAddress& address) {
  return asio::generic::stream_protocol::endpoint(&address.storage, address.size);
}

}  // namespace enclavia::tunnel
