// SPDX-License-Identifier: Apache-2.0
#include "host/storage/service.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <utility>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

namespace enclavia::host {

namespace wire = storage::wire;

namespace {

Error ListenError(std::string_view step, const net::Address& address, int err) {
  return Error(Code::kIo,
               "cannot " + std::string(step) + " " + address.ToString() + ": " + strerror(err));
}

}  // namespace

Result<std::unique_ptr<StorageService>> StorageService::Start(const net::Address& address,
                                                              storage::ObjectStore& backend,
                                                              ServiceOptions options) {
  ASSIGN_OR_RETURN(net::SocketAddress sa, net::Resolve(address));
  sys::UniqueFd fd(socket(sa.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return ListenError("open a socket for", address, errno);
  }
  if (address.family == net::Family::kUnix) {
    // Replace a stale socket left by a previous run, but never another kind of file.
    struct stat st {};
    if (lstat(address.host.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      unlink(address.host.c_str());
    }
  } else if (address.family == net::Family::kTcp) {
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa.storage), sa.size) != 0) {
    return ListenError("bind", address, errno);
  }
  if (listen(fd.get(), 16) != 0) {
    return ListenError("listen on", address, errno);
  }
  net::Address bound = address;
  if (address.family == net::Family::kTcp) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (ss.ss_family == AF_INET) {
        bound.port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
      } else if (ss.ss_family == AF_INET6) {
        bound.port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
      }
    }
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return ListenError("make a wake-up pipe for", address, errno);
  }
  auto service = std::unique_ptr<StorageService>(
      new StorageService(std::move(bound), backend, std::move(options), std::move(fd)));
  service->wake_read_ = sys::UniqueFd(pipe_fds[0]);
  service->wake_write_ = sys::UniqueFd(pipe_fds[1]);
  service->acceptor_ = std::thread([s = service.get()] { s->AcceptLoop(); });
  return service;
}

StorageService::StorageService(net::Address address, storage::ObjectStore& backend,
                               ServiceOptions options, sys::UniqueFd listener)
    : address_(std::move(address)),
      backend_(backend),
      options_(std::move(options)),
      listener_(std::move(listener)) {}

StorageService::~StorageService() { Stop(); }

void StorageService::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
    for (int fd : open_) {
      shutdown(fd, SHUT_RDWR);  // Wakes the connection's thread; it closes the fd itself.
    }
  }
  uint8_t byte = 1;
  (void)!write(wake_write_.get(), &byte, 1);
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return running_ == 0; });
  listener_ = sys::UniqueFd();
}

std::optional<VolumeReport> StorageService::last_report() const {
  std::lock_guard lock(mu_);
  return report_;
}

ServiceStats StorageService::stats() const {
  return ServiceStats{connections_.load(), requests_.load(), bytes_in_.load(), bytes_out_.load(),
                      errors_.load()};
}

void StorageService::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (fds[1].revents != 0) {
      return;
    }
    sys::UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of resources: wait a little (or for Stop) rather than spin.
        pollfd wake = {wake_read_.get(), POLLIN, 0};
        if (poll(&wake, 1, 100) > 0) {
          return;
        }
      }
      continue;
    }
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    if (running_ >= options_.max_connections) {
      ++errors_;
      continue;  // Over the bound: closed at once.
    }
    ++connections_;
    ++running_;
    int fd = conn.Release();
    open_.insert(fd);
    std::thread([this, fd] { ServeConnection(fd); }).detach();
  }
}

void StorageService::ServeConnection(int fd) {
  sys::UniqueFd conn(fd);
  for (;;) {
    auto frame = wire::ReadFrame(conn.get());
    if (!frame) {
      if (frame.error().code() == Code::kMalformed) {
        ++errors_;
      }
      break;
    }
    bytes_in_ += frame->size() + wire::kFrameHeaderSize;
    ++requests_;
    auto request = wire::DecodeRequest(*frame);
    if (!request) {
      // The enclave is out of step (or hostile): nothing after this can be parsed reliably.
      ++errors_;
      break;
    }
    wire::Response response = Handle(*request);
    if (response.error) {
      ++errors_;
    }
    auto body = wire::EncodeResponse(response);
    if (!body) {
      // E.g. a list too long for one frame: say so rather than send nothing.
      wire::Response failure;
      failure.type = request->type;
      failure.error = body.error();
      body = wire::EncodeResponse(failure);
    }
    if (!body || !wire::WriteFrame(conn.get(), *body)) {
      break;
    }
    bytes_out_ += body->size() + wire::kFrameHeaderSize;
  }
  std::lock_guard lock(mu_);
  open_.erase(fd);
  conn = sys::UniqueFd();  // Close under the lock: Stop never shuts down a reused fd number.
  --running_;
  idle_.notify_all();
}

wire::Response StorageService::Handle(const wire::Request& request) {
  wire::Response response;
  response.type = request.type;
  auto fail = [&](Error error) {
    response.error = std::move(error);
    return response;
  };
  switch (request.type) {
    case wire::Type::kHello:
      if (request.version != wire::kProtocolVersion) {
        return fail(Error(Code::kUnsupported, "storage service speaks protocol version " +
                                                  std::to_string(wire::kProtocolVersion)));
      }
      response.attachment = options_.attachment;
      break;
    case wire::Type::kPut:
      if (auto r = backend_.Put(request.name, request.data); !r) {
        return fail(std::move(r).error());
      }
      break;
    case wire::Type::kGet: {
      auto r = backend_.Get(request.name);
      if (!r) {
        return fail(std::move(r).error());
      }
      response.data = std::move(r).value();
      break;
    }
    case wire::Type::kGetRange: {
      auto r = backend_.GetRange(request.name, request.offset, request.length);
      if (!r) {
        return fail(std::move(r).error());
      }
      response.data = std::move(r).value();
      break;
    }
    case wire::Type::kDelete:
      if (auto r = backend_.Delete(request.name); !r) {
        return fail(std::move(r).error());
      }
      break;
    case wire::Type::kList: {
      auto r = backend_.List(request.name);
      if (!r) {
        return fail(std::move(r).error());
      }
      response.names = std::move(r).value();
      break;
    }
    case wire::Type::kReport: {
      std::lock_guard lock(mu_);
      report_ = VolumeReport{request.status, std::chrono::system_clock::now()};
      break;
    }
  }
  return response;
}

}  // namespace enclavia::host
