// SPDX-License-Identifier: Apache-2.0
#include "lib/tunnel/message_stream.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "lib/net/framing.h"

namespace enclavia::tunnel {

namespace asio = boost::asio;
using boost::system::error_code;

Error StreamError(const error_code& ec, std::string_view what) {
  if (ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe) {
    return Error(Code::kUnavailable, "closed by peer");
  }
  if (ec == asio::error::operation_aborted) {
    return Error(Code::kUnavailable, "stream closed");
  }
  return Error(Code::kUnavailable, std::string(what) + ": " + ec.message());
}

namespace {
constexpr size_t kReadBufferSize = 256 * 1024;
}  // namespace

void MessageStream::AsyncWriteMany(std::vector<Bytes> messages, WriteHandler handler) {
  struct Chain {
    MessageStream* stream;
    std::vector<Bytes> messages;
    size_t next = 0;
    WriteHandler handler;
    static void Step(const std::shared_ptr<Chain>& chain) {
      if (chain->next == chain->messages.size()) {
        chain->handler(Ok());
        return;
      }
      Bytes message = std::move(chain->messages[chain->next++]);
      chain->stream->AsyncWrite(std::move(message), [chain](Result<void> written) {
        if (!written) {
          chain->handler(written.error());
          return;
        }
        Step(chain);
      });
    }
  };
  auto chain = std::make_shared<Chain>(Chain{this, std::move(messages), 0, std::move(handler)});
  Chain::Step(chain);
}

struct RecordStream::State {
  explicit State(GenericSocket s) : socket(std::move(s)) { in.resize(kReadBufferSize); }
  GenericSocket socket;
  // in[begin, end) holds received bytes not yet handed out as records.
  Bytes in;
  size_t begin = 0;
  size_t end = 0;
  std::vector<Bytes> out;                            // Bodies being written.
  std::vector<std::array<uint8_t, 2>> out_headers;   // Their length prefixes.

  // TakeRecord returns a whole buffered record, if there is one.
  std::optional<Bytes> TakeRecord() {
    if (end - begin < net::kRecordHeaderSize) {
      return std::nullopt;
    }
    size_t size = (size_t{in[begin]} << 8) | in[begin + 1];
    if (end - begin < net::kRecordHeaderSize + size) {
      return std::nullopt;
    }
    const uint8_t* p = in.data() + begin + net::kRecordHeaderSize;
    Bytes record(p, p + size);
    begin += net::kRecordHeaderSize + size;
    if (begin == end) {
      begin = end = 0;
    }
    return record;
  }
};

RecordStream::RecordStream(GenericSocket socket)
    : state_(std::make_shared<State>(std::move(socket))) {}

RecordStream::~RecordStream() { Close(); }

// ReadRecord completes `handler` with the next record, reading more when the buffer holds none.
// It touches only `state`, which every pending handler keeps alive.
void RecordStream::ReadRecord(const std::shared_ptr<State>& state, ReadHandler handler) {
  if (auto record = state->TakeRecord()) {
    // Completed from the buffer: post rather than call, so a burst of small records cannot
    // recurse through the caller's read loop.
    asio::post(state->socket.get_executor(),
               [handler = std::move(handler), r = std::move(*record)]() mutable {
                 handler(std::move(r));
               });
    return;
  }
  // Make room: move the partial record to the front (it is at most 64 KiB + 2).
  if (state->begin > 0) {
    std::copy(state->in.begin() + static_cast<std::ptrdiff_t>(state->begin),
              state->in.begin() + static_cast<std::ptrdiff_t>(state->end), state->in.begin());
    state->end -= state->begin;
    state->begin = 0;
  }
  state->socket.async_read_some(
      asio::buffer(state->in.data() + state->end, state->in.size() - state->end),
      [state, handler = std::move(handler)](error_code ec, size_t n) mutable {
        if (ec) {
          bool partial = state->end > state->begin;
          handler(ec == asio::error::eof && partial ? Error(Code::kMalformed, "record truncated")
                                                    : StreamError(ec, "read record"));
          return;
        }
        state->end += n;
        ReadRecord(state, std::move(handler));
      });
}

void RecordStream::AsyncRead(ReadHandler handler) { ReadRecord(state_, std::move(handler)); }

void RecordStream::AsyncWrite(Bytes message, WriteHandler handler) {
  std::vector<Bytes> one;
  one.push_back(std::move(message));
  AsyncWriteMany(std::move(one), std::move(handler));
}

void RecordStream::AsyncWriteMany(std::vector<Bytes> messages, WriteHandler handler) {
  auto state = state_;
  for (const Bytes& m : messages) {
    if (m.size() > net::kMaxRecordSize) {
      handler(Error(Code::kInvalidArgument, "record larger than 65535 bytes"));
      return;
    }
  }
  state->out = std::move(messages);
  state->out_headers.resize(state->out.size());
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(2 * state->out.size());
  for (size_t i = 0; i < state->out.size(); ++i) {
    size_t size = state->out[i].size();
    state->out_headers[i] = {static_cast<uint8_t>(size >> 8), static_cast<uint8_t>(size & 0xff)};
    buffers.push_back(asio::buffer(state->out_headers[i]));
    buffers.push_back(asio::buffer(state->out[i]));
  }
  asio::async_write(state->socket, buffers,
                    [state, handler = std::move(handler)](error_code ec, size_t) {
                      state->out.clear();
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
