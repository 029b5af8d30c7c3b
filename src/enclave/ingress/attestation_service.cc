// SPDX-License-Identifier: Apache-2.0
#include "enclave/ingress/attestation_service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <list>
#include <mutex>
#include <string>
#include <utility>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include "lib/base/encoding.h"
#include "lib/channel/audit.h"
#include "lib/net/accept_retry.h"
#include "lib/net/listen.h"
#include "lib/tunnel/message_stream.h"

namespace enclavia::enclave {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// kMaxErrorText keeps error responses short (and within the decoder's bound).
constexpr size_t kMaxErrorText = 200;

struct Connection {
  Connection(asio::any_io_executor executor, tunnel::GenericSocket socket)
      : strand(std::move(executor)), stream(std::move(socket)), timer(strand) {}
  asio::any_io_executor strand;
  tunnel::RecordStream stream;
  asio::steady_timer timer;
  bool done = false;  // Answered, timed out or stopped: nothing more to send.
};

}  // namespace

struct AttestationService::State : std::enable_shared_from_this<AttestationService::State> {
  State(asio::io_context& io_context, AttestationServiceOptions opts,
        std::shared_ptr<channel::AttestationSource> src)
      : io(io_context), acceptor(asio::make_strand(io_context)), options(std::move(opts)),
        source(std::move(src)) {}

  asio::io_context& io;
  asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor;
  asio::steady_timer accept_retry{acceptor.get_executor()};
  AttestationServiceOptions options;
  std::shared_ptr<channel::AttestationSource> source;
  // One worker: the NSM answers one request at a time anyway, and a stuck NSM then stalls only
  // this service's answers (each bounded by the connection timeout), never the channels.
  asio::thread_pool nsm_worker{1};
  net::Address bound;
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> active{0}, served{0}, errors{0}, refused{0}, timed_out{0};

  std::mutex mu;  // Guards connections.
  std::list<std::weak_ptr<Connection>> connections;

  void Log(const std::string& line) const {
    if (options.log) {
      options.log(line);
    }
  }
  void Accept();
  void OnConnection(tunnel::GenericSocket socket);
  void OnRequest(const std::shared_ptr<Connection>& conn, Result<Bytes> record);
  void Answer(const std::shared_ptr<Connection>& conn, const channel::AuditResponse& response);
  void Finish(const std::shared_ptr<Connection>& conn);
};

void AttestationService::State::Accept() {
  auto self = shared_from_this();
  auto socket = std::make_shared<tunnel::GenericSocket>(asio::make_strand(io));
  acceptor.async_accept(*socket, [self, socket](error_code ec) {
    if (self->stopped) {
      return;
    }
    if (ec) {
      net::RetryAcceptSoon(self->accept_retry, [self] { return self->stopped.load(); },
                           [self] { self->Accept(); });
      return;
    }
    self->OnConnection(std::move(*socket));
    self->Accept();
  });
}

void AttestationService::State::OnConnection(tunnel::GenericSocket socket) {
  if (active.load() >= options.max_connections) {
    ++refused;
    error_code ignored;
    socket.close(ignored);
    Log("attestation: refused a connection (" + std::to_string(options.max_connections) +
        " already open)");
    return;
  }
  ++active;
  auto strand = socket.get_executor();
  auto conn = std::make_shared<Connection>(strand, std::move(socket));
  {
    std::lock_guard lock(mu);
    connections.remove_if([](const auto& weak) { return weak.expired(); });
    connections.push_back(conn);
  }
  auto self = shared_from_this();
  // Everything below runs on the connection's strand.
  asio::post(strand, [self, conn] {
    if (self->stopped) {
      self->Finish(conn);
      return;
    }
    conn->timer.expires_after(self->options.timeout);
    conn->timer.async_wait([self, conn](error_code ec) {
      if (ec || conn->done) {
        return;
      }
      ++self->timed_out;
      self->Log("attestation: request timed out");
      self->Finish(conn);
    });
    conn->stream.AsyncRead(
        [self, conn](Result<Bytes> record) { self->OnRequest(conn, std::move(record)); });
  });
}

void AttestationService::State::OnRequest(const std::shared_ptr<Connection>& conn,
                                          Result<Bytes> record) {
  if (conn->done) {
    return;
  }
  if (!record) {
    // The caller left (or the timer closed the stream): nobody to answer.
    Finish(conn);
    return;
  }
  auto request = channel::DecodeAuditRequest(*record);
  if (!request) {
    std::string message = "bad request: " + request.error().message();
    Log("attestation: " + message);
    ++errors;
    channel::AuditResponse response;
    response.error = std::move(message);
    Answer(conn, response);
    return;
  }
  // The NSM call blocks (the real device's ioctl, or the local socket): off the I/O threads.
  auto self = shared_from_this();
  asio::post(nsm_worker, [self, conn, nonce = std::move(request->nonce)]() mutable {
    Result<channel::AttestationSource::Presented> document =
        self->source->Present(ByteSpan(nonce));
    asio::post(conn->strand, [self = std::move(self), conn = std::move(conn),
                              document = std::move(document)]() mutable {
      if (conn->done) {
        return;
      }
      if (!document) {
        ++self->errors;
        self->Log("attestation: the NSM failed: " + document.error().message());
        channel::AuditResponse response;
        response.error = document.error().message();
        self->Answer(conn, response);
        return;
      }
      ++self->served;
      self->Log("attestation: served a document (" +
                std::to_string(document->attestation.size()) + " bytes)");
      channel::AuditResponse response;
      response.attestation = std::move(document->attestation);
      response.chain = std::move(document->chain);
      self->Answer(conn, response);
    });
  });
}

void AttestationService::State::Answer(const std::shared_ptr<Connection>& conn,
                                       const channel::AuditResponse& response) {
  channel::AuditResponse bounded = response;
  if (bounded.error.size() > kMaxErrorText) {
    bounded.error.resize(kMaxErrorText);
  }
  auto self = shared_from_this();
  conn->stream.AsyncWrite(channel::EncodeAuditResponse(bounded),
                          [self, conn](Result<void>) { self->Finish(conn); });
}

void AttestationService::State::Finish(const std::shared_ptr<Connection>& conn) {
  if (conn->done) {
    return;
  }
  conn->done = true;
  conn->timer.cancel();
  conn->stream.Close();
  --active;
}

Result<std::unique_ptr<AttestationService>> AttestationService::Create(
    asio::io_context& io, AttestationServiceOptions options,
    std::shared_ptr<channel::AttestationSource> source) {
  if (source == nullptr) {
    return Error(Code::kInvalidArgument, "attestation service: no attestation source");
  }
  ASSIGN_OR_RETURN(net::SocketAddress address, net::Resolve(options.listen));
  auto state = std::make_shared<State>(io, std::move(options), std::move(source));
  if (state->options.listen.family == net::Family::kUnix) {
    struct stat st {};
    if (::lstat(state->options.listen.host.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      ::unlink(state->options.listen.host.c_str());
    }
  }
  auto listening = net::Listen(state->acceptor, tunnel::ToEndpoint(address),
                               state->options.listen.family == net::Family::kTcp
                                   ? net::ReuseAddress::kYes
                                   : net::ReuseAddress::kNo,
                               state->options.listen.ToString());
  if (!listening) {
    return listening.error().WithContext("attestation service");
  }
  state->bound = state->options.listen;
  if (state->bound.family == net::Family::kTcp) {
    error_code ec;
    auto local = state->acceptor.local_endpoint(ec);
    if (!ec && local.size() >= sizeof(sockaddr_in)) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(local.data());
      state->bound.port = ntohs(in->sin_port);
    }
  }
  asio::post(state->acceptor.get_executor(), [state] { state->Accept(); });
  return std::unique_ptr<AttestationService>(new AttestationService(std::move(state)));
}

AttestationService::~AttestationService() {
  Stop();
  state_->nsm_worker.join();
}

net::Address AttestationService::local_address() const { return state_->bound; }

void AttestationService::Stop() {
  if (state_->stopped.exchange(true)) {
    return;
  }
  asio::post(state_->acceptor.get_executor(), [state = state_] {
    error_code ignored;
    state->acceptor.close(ignored);
    state->accept_retry.cancel();
  });
  std::list<std::weak_ptr<Connection>> connections;
  {
    std::lock_guard lock(state_->mu);
    connections.swap(state_->connections);
  }
  for (auto& weak : connections) {
    if (auto conn = weak.lock()) {
      asio::post(conn->strand, [state = state_, conn] { state->Finish(conn); });
    }
  }
}

AttestationServiceStats AttestationService::stats() const {
  AttestationServiceStats s;
  s.served = state_->served;
  s.errors = state_->errors;
  s.refused = state_->refused;
  s.timed_out = state_->timed_out;
  return s;
}

}  // namespace enclavia::enclave
