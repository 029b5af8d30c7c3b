// SPDX-License-Identifier: Apache-2.0
#include "lib/tunnel/tcp_bridge.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <boost/asio/write.hpp>

namespace enclavia::tunnel {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// The most read from TCP at once: four full channel messages, which the engine then writes
// with one syscall.
constexpr size_t kReadChunk = 4 * (64 * 1024 - 24);
}  // namespace

TcpBridge::TcpBridge(std::weak_ptr<Engine> engine, asio::ip::tcp::socket socket)
    : engine_(std::move(engine)), socket_(std::move(socket)) {}

TcpBridge::~TcpBridge() {
  error_code ignored;
  socket_.close(ignored);
}

void TcpBridge::Connect(asio::ip::tcp::endpoint endpoint) {
  socket_.async_connect(endpoint, [self = shared_from_this(), endpoint](error_code ec) {
    if (self->finished_) {
      return;
    }
    if (ec) {
      if (auto engine = self->engine_.lock()) {
        engine->Reset(self->id_, mux::ResetCode::kConnectFailed,
                      "port " + std::to_string(endpoint.port()) + ": " + ec.message());
      }
      self->Finish();
      return;
    }
    self->Start();
  });
}

void TcpBridge::Start() {
  connected_ = true;
  error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  ReadNext();
  WriteNext();
  MaybeFinishWrite();
}

void TcpBridge::ReadNext() {
  if (reading_ || read_done_ || finished_ || !connected_) {
    return;
  }
  auto engine = engine_.lock();
  if (!engine) {
    Finish();
    return;
  }
  size_t credit = engine->send_credit(id_);
  engine.reset();
  if (credit == 0) {
    waiting_credit_ = true;
    return;
  }
  read_buffer_.resize(std::min(credit, kReadChunk));
  reading_ = true;
  socket_.async_read_some(
      asio::buffer(read_buffer_), [self = shared_from_this()](error_code ec, size_t n) {
        self->reading_ = false;
        if (self->finished_) {
          return;
        }
        auto live = self->engine_.lock();
        if (!live) {
          self->Finish();
          return;
        }
        if (ec == asio::error::eof) {
          self->read_done_ = true;
          live->Fin(self->id_);
          return;
        }
        if (ec) {
          live->Reset(self->id_, mux::ResetCode::kCancelled, "connection lost: " + ec.message());
          self->Finish();
          return;
        }
        size_t taken = live->Write(self->id_, ByteSpan(self->read_buffer_.data(), n));
        if (taken < n) {
          // Cannot happen (we read at most the credit); treat it as a broken invariant of the
          // stream rather than lose bytes silently.
          live->Reset(self->id_, mux::ResetCode::kInternal, "send credit shrank");
          self->Finish();
          return;
        }
        self->ReadNext();
      });
}

void TcpBridge::OnData(Bytes bytes) {
  write_queue_.push_back(std::move(bytes));
  WriteNext();
}

void TcpBridge::WriteNext() {
  if (writing_ || write_queue_.empty() || finished_ || !connected_) {
    return;
  }
  // Everything queued goes out in one gather write: one syscall for several channel messages.
  writing_ = true;
  in_flight_.clear();
  in_flight_.swap(write_queue_);
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(in_flight_.size());
  for (const Bytes& b : in_flight_) {
    buffers.push_back(asio::buffer(b));
  }
  asio::async_write(socket_, buffers, [self = shared_from_this()](error_code ec, size_t n) {
    self->writing_ = false;
    if (self->finished_) {
      return;
    }
    auto engine = self->engine_.lock();
    if (!engine) {
      self->Finish();
      return;
    }
    if (ec) {
      engine->Reset(self->id_, mux::ResetCode::kCancelled, "connection lost: " + ec.message());
      self->Finish();
      return;
    }
    self->in_flight_.clear();
    engine->Consumed(self->id_, n);
    self->WriteNext();
    self->MaybeFinishWrite();
  });
}

void TcpBridge::OnFin() {
  peer_fin_ = true;
  MaybeFinishWrite();
}

void TcpBridge::MaybeFinishWrite() {
  if (peer_fin_ && connected_ && !writing_ && write_queue_.empty() && !finished_) {
    error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }
}

void TcpBridge::OnReset(mux::ResetCode, std::string_view) { Finish(); }

void TcpBridge::OnWritable() {
  if (waiting_credit_) {
    waiting_credit_ = false;
    ReadNext();
  }
}

void TcpBridge::OnClosed() {
  // Both directions are done; any queued bytes were written before our Fin could complete.
  if (write_queue_.empty() && !writing_) {
    Finish();
  } else {
    peer_fin_ = true;
  }
}

void TcpBridge::Finish() {
  if (finished_) {
    return;
  }
  finished_ = true;
  error_code ignored;
  socket_.close(ignored);
  write_queue_.clear();
  if (on_done_) {
    auto done = std::move(on_done_);
    on_done_ = nullptr;
    done();
  }
}

}  // namespace enclavia::tunnel
