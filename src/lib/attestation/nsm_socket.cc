// SPDX-License-Identifier: Apache-2.0
#include "lib/attestation/nsm_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "lib/attestation/nsm_device.h"
#include "lib/sys/fd.h"

namespace enclavia::attestation {
namespace {

static_assert(kNsmSocketMaxRequest == kNsmRequestMaxSize, "the socket carries the driver's sizes");
static_assert(kNsmSocketMaxResponse == kNsmResponseMaxSize, "the socket carries the driver's sizes");

// A request the simulator never answers must not hang the enclave forever.
constexpr int kReplyTimeoutSeconds = 30;

bool SendAll(int fd, const uint8_t* data, size_t size) {
  return sys::SendFull(fd, ByteSpan(data, size)).has_value();
}

// RecvAll reads exactly `size` bytes; on end of stream it fails with errno ECONNRESET.
bool RecvAll(int fd, uint8_t* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::recv(fd, data, size, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n == 0) {
      errno = ECONNRESET;
      return false;
    }
    if (n < 0) {
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// SocketCall plays the driver's NSM_IOCTL_RAW over the socket (nsm_socket.h's framing), so that
// DeviceNsm's request checks and response mapping serve both transports unchanged. Like ioctl it
// returns -1 with errno set on failure.
int SocketCall(int fd, unsigned long request, void* arg) {
  if (request != kNsmIoctlRaw || arg == nullptr) {
    errno = EINVAL;
    return -1;
  }
  auto* raw = static_cast<NsmRaw*>(arg);
  if (raw->request.iov_len > kNsmSocketMaxRequest) {
    errno = EMSGSIZE;
    return -1;
  }
  const auto request_size = static_cast<uint32_t>(raw->request.iov_len);
  uint8_t header[4] = {static_cast<uint8_t>(request_size >> 24),
                       static_cast<uint8_t>(request_size >> 16),
                       static_cast<uint8_t>(request_size >> 8), static_cast<uint8_t>(request_size)};
  if (!SendAll(fd, header, sizeof(header)) ||
      !SendAll(fd, static_cast<const uint8_t*>(raw->request.iov_base), request_size)) {
    return -1;
  }
  if (!RecvAll(fd, header, sizeof(header))) {
    return -1;
  }
  const uint32_t response_size = (uint32_t{header[0]} << 24) | (uint32_t{header[1]} << 16) |
                                 (uint32_t{header[2]} << 8) | uint32_t{header[3]};
  if (response_size > kNsmSocketMaxResponse || response_size > raw->response.iov_len) {
    // The stream can no longer be trusted to be in step; every later call fails too.
    ::shutdown(fd, SHUT_RDWR);
    errno = EMSGSIZE;
    return -1;
  }
  if (!RecvAll(fd, static_cast<uint8_t*>(raw->response.iov_base), response_size)) {
    return -1;
  }
  raw->response.iov_len = response_size;
  return 0;
}

}  // namespace

std::unique_ptr<Nsm> SocketNsmFromFd(int connected_fd) {
  return std::make_unique<DeviceNsm>(UniqueFd(connected_fd), SocketCall);
}

Result<std::unique_ptr<Nsm>> ConnectSocketNsm(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Error(Code::kInvalidArgument, "nsm: socket path is empty or too long: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return sys::IoError("nsm: socket", errno);
  }
  timeval timeout{.tv_sec = kReplyTimeoutSeconds, .tv_usec = 0};
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) != 0) {
    return sys::IoError("nsm: setsockopt", errno);
  }
  int rc = -1;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    return sys::IoError("nsm: connect " + path, errno);
  }
  return SocketNsmFromFd(fd.Release());
}

Result<std::unique_ptr<Nsm>> OpenNsm(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    return Error(Code::kFailedPrecondition, "nsm: no NSM at " + path + ": " +
                                                std::generic_category().message(err));
  }
  if (S_ISCHR(st.st_mode)) {
    ASSIGN_OR_RETURN(std::unique_ptr<DeviceNsm> device, DeviceNsm::Open(path));
    return std::unique_ptr<Nsm>(std::move(device));
  }
  if (S_ISSOCK(st.st_mode)) {
    return ConnectSocketNsm(path);
  }
  return Error(Code::kFailedPrecondition,
               "nsm: " + path + " is neither a character device nor a Unix socket");
}

}  // namespace enclavia::attestation
