// SPDX-License-Identifier: Apache-2.0
#include "host/nsm/nsm_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include "lib/attestation/nsm_codec.h"
#include "lib/attestation/nsm_socket.h"

namespace enclavia::host {
namespace {

using attestation::ErrorResponse;
using attestation::NsmErrorCode;
using attestation::NsmResponse;

constexpr int kWriteBudgetMs = 1000;
constexpr size_t kFrameHeader = 4;

// ErrorCodeFor recovers the module's error code from an Nsm error: implementations name it in the
// message ("nsm: ReadOnlyIndex", nsm.h); anything else is classified by its code.
NsmErrorCode ErrorCodeFor(const Error& error) {
  constexpr std::string_view kPrefix = "nsm: ";
  std::string_view message = error.message();
  if (message.starts_with(kPrefix)) {
    message.remove_prefix(kPrefix.size());
    for (int i = static_cast<int>(NsmErrorCode::kInvalidArgument);
         i <= static_cast<int>(NsmErrorCode::kInternalError); ++i) {
      auto code = static_cast<NsmErrorCode>(i);
      if (message == attestation::NsmErrorCodeName(code)) {
        return code;
      }
    }
  }
  return error.code() == Code::kInvalidArgument ? NsmErrorCode::kInvalidArgument
                                                : NsmErrorCode::kInternalError;
}

template <typename T, typename F>
NsmResponse Answer(Result<T> result, F&& wrap) {
  if (!result) {
    return ErrorResponse{ErrorCodeFor(result.error())};
  }
  return wrap(std::move(*result));
}

struct Dispatch {
  attestation::Nsm& nsm;

  NsmResponse operator()(const attestation::AttestationRequest& r) const {
    return Answer(nsm.Attestation(r),
                  [](Bytes doc) { return NsmResponse(attestation::AttestationResponse{std::move(doc)}); });
  }
  NsmResponse operator()(const attestation::DescribePcrRequest& r) const {
    return Answer(nsm.DescribePcr(r.index),
                  [](attestation::PcrDescription d) { return NsmResponse(std::move(d)); });
  }
  NsmResponse operator()(const attestation::ExtendPcrRequest& r) const {
    return Answer(nsm.ExtendPcr(r.index, r.data), [](Bytes value) {
      return NsmResponse(attestation::ExtendPcrResponse{std::move(value)});
    });
  }
  NsmResponse operator()(const attestation::LockPcrRequest& r) const {
    Result<void> done = nsm.LockPcr(r.index);
    if (!done) {
      return ErrorResponse{ErrorCodeFor(done.error())};
    }
    return attestation::LockPcrResponse{};
  }
  NsmResponse operator()(const attestation::LockPcrsRequest& r) const {
    Result<void> done = nsm.LockPcrs(r.range);
    if (!done) {
      return ErrorResponse{ErrorCodeFor(done.error())};
    }
    return attestation::LockPcrsResponse{};
  }
  NsmResponse operator()(const attestation::DescribeNsmRequest& /*unused*/) const {
    return Answer(nsm.DescribeNsm(),
                  [](attestation::NsmDescription d) { return NsmResponse(std::move(d)); });
  }
  NsmResponse operator()(const attestation::GetRandomRequest& /*unused*/) const {
    return Answer(nsm.GetRandom(), [](Bytes random) {
      return NsmResponse(attestation::GetRandomResponse{std::move(random)});
    });
  }
};

uint32_t ReadU32Be(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

Bytes Frame(const Bytes& body) {
  Bytes out;
  out.reserve(kFrameHeader + body.size());
  const auto n = static_cast<uint32_t>(body.size());
  out.push_back(static_cast<uint8_t>(n >> 24));
  out.push_back(static_cast<uint8_t>(n >> 16));
  out.push_back(static_cast<uint8_t>(n >> 8));
  out.push_back(static_cast<uint8_t>(n));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// WriteWithin writes all of `data` to the (non-blocking) socket within `budget_ms`.
bool WriteWithin(int fd, ByteSpan data, int budget_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(budget_ms);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) {
        return false;
      }
      pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
      ::poll(&p, 1, static_cast<int>(left));
      continue;
    }
    return false;
  }
  return true;
}

Result<bool> RecvExactly(int fd, uint8_t* out, size_t size, bool eof_ok) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::recv(fd, out + done, size - done, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return sys::IoError("nsm server: recv", errno);
    }
    if (n == 0) {
      if (done == 0 && eof_ok) {
        return false;
      }
      return Error(Code::kIo, "nsm server: connection closed inside a frame");
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Bytes HandleNsmRequest(ByteSpan request, attestation::Nsm& nsm) {
  Result<attestation::NsmRequest> decoded = attestation::DecodeRequest(request);
  NsmResponse response = decoded ? std::visit(Dispatch{nsm}, *decoded)
                                 : NsmResponse(ErrorResponse{NsmErrorCode::kInvalidArgument});
  Bytes encoded = attestation::EncodeResponse(response);
  if (encoded.size() > attestation::kNsmSocketMaxResponse) {
    // The driver's response buffer could not hold it.
    encoded = attestation::EncodeResponse(ErrorResponse{NsmErrorCode::kBufferTooSmall});
  }
  return encoded;
}

Result<bool> ServeNsmRequest(int fd, attestation::Nsm& nsm) {
  uint8_t header[kFrameHeader];
  ASSIGN_OR_RETURN(bool got, RecvExactly(fd, header, sizeof(header), /*eof_ok=*/true));
  if (!got) {
    return false;
  }
  uint32_t size = ReadU32Be(header);
  if (size > attestation::kNsmSocketMaxRequest) {
    return Error(Code::kLimitExceeded, "nsm server: request of " + std::to_string(size) +
                                           " bytes is over the limit");
  }
  Bytes request(size);
  RETURN_IF_ERROR(RecvExactly(fd, request.data(), request.size(), /*eof_ok=*/false));
  Bytes framed = Frame(HandleNsmRequest(request, nsm));
  RETURN_IF_ERROR(sys::WriteFull(fd, framed));
  return true;
}

Result<NsmServer> NsmServer::Listen(const std::string& path, attestation::Nsm& nsm) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Error(Code::kInvalidArgument, "nsm server: socket path is empty or too long: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    ::unlink(path.c_str());
  }
  sys::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    return sys::IoError("nsm server: socket", errno);
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return sys::IoError("nsm server: bind " + path, errno);
  }
  // Anyone inside the enclave may use /dev/nsm, as with the real device (mode 0666 there too).
  if (::chmod(path.c_str(), 0666) != 0 || ::listen(fd.get(), 16) != 0) {
    return sys::IoError("nsm server: listen on " + path, errno);
  }
  return NsmServer(std::move(fd), nsm);
}

void NsmServer::Accept() {
  for (;;) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      return;  // EAGAIN, or an aborted connection: nothing to do until the next poll.
    }
    sys::UniqueFd owned(fd);
    if (clients_.size() >= kMaxConnections) {
      continue;  // Closed: the enclave holds too many NSM connections already.
    }
    clients_.push_back(Client{std::move(owned), {}});
  }
}

bool NsmServer::OnReadable(Client& client) {
  uint8_t chunk[4096];
  bool open = true;
  for (;;) {
    ssize_t n = ::recv(client.fd.get(), chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    }
    if (n <= 0) {
      open = false;  // Closed or failed; still answer what came before (a half-closed client).
      break;
    }
    client.buffer.insert(client.buffer.end(), chunk, chunk + n);
    if (client.buffer.size() > kFrameHeader + attestation::kNsmSocketMaxRequest) {
      // More than one whole frame pending: the client is not waiting for answers. Serve what is
      // complete below and read the rest on the next poll.
      break;
    }
  }
  size_t offset = 0;
  while (client.buffer.size() - offset >= kFrameHeader) {
    uint32_t size = ReadU32Be(client.buffer.data() + offset);
    if (size > attestation::kNsmSocketMaxRequest) {
      return false;
    }
    if (client.buffer.size() - offset - kFrameHeader < size) {
      break;
    }
    ByteSpan request(client.buffer.data() + offset + kFrameHeader, size);
    Bytes framed = Frame(HandleNsmRequest(request, *nsm_));
    offset += kFrameHeader + size;
    if (!WriteWithin(client.fd.get(), framed, kWriteBudgetMs)) {
      return false;
    }
  }
  client.buffer.erase(client.buffer.begin(),
                      client.buffer.begin() + static_cast<std::ptrdiff_t>(offset));
  return open;
}

Result<std::vector<int>> NsmServer::Poll(std::span<const int> extra_fds, int timeout_ms) {
  std::vector<pollfd> fds;
  fds.reserve(1 + clients_.size() + extra_fds.size());
  fds.push_back({.fd = listener_.get(), .events = POLLIN, .revents = 0});
  for (const Client& c : clients_) {
    fds.push_back({.fd = c.fd.get(), .events = POLLIN, .revents = 0});
  }
  for (int fd : extra_fds) {
    fds.push_back({.fd = fd, .events = POLLIN, .revents = 0});
  }
  int rc = ::poll(fds.data(), fds.size(), timeout_ms);
  if (rc < 0) {
    if (errno == EINTR) {
      return std::vector<int>{};
    }
    return sys::IoError("nsm server: poll", errno);
  }
  std::vector<int> ready;
  const size_t first_extra = 1 + clients_.size();
  for (size_t i = first_extra; i < fds.size(); ++i) {
    if (fds[i].revents != 0) {
      ready.push_back(fds[i].fd);
    }
  }
  // Serve connections first (their indices are only valid until the vector changes).
  std::vector<bool> keep(clients_.size(), true);
  for (size_t i = 0; i < clients_.size(); ++i) {
    short revents = fds[1 + i].revents;
    if (revents == 0) {
      continue;
    }
    if ((revents & POLLIN) != 0) {
      keep[i] = OnReadable(clients_[i]);
    } else {
      keep[i] = false;  // POLLHUP / POLLERR without data.
    }
  }
  std::vector<Client> kept;
  kept.reserve(clients_.size());
  for (size_t i = 0; i < clients_.size(); ++i) {
    if (keep[i]) {
      kept.push_back(std::move(clients_[i]));
    }
  }
  clients_ = std::move(kept);
  if ((fds[0].revents & POLLIN) != 0) {
    Accept();
  }
  return ready;
}

}  // namespace enclavia::host
