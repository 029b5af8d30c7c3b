// SPDX-License-Identifier: Apache-2.0
#include "lib/net/socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace enclavia::net {

Result<sys::UniqueFd> Connect(const Address& address) {
  ASSIGN_OR_RETURN(SocketAddress resolved, Resolve(address));
  sys::UniqueFd fd(::socket(resolved.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return sys::IoError("socket", errno);
  }
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&resolved.storage), resolved.size);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    return Error(Code::kUnavailable,
                 sys::IoError("connect to " + address.ToString(), errno).message());
  }
  return fd;
}

Result<sys::UniqueFd> ListenOn(const Address& address, int backlog, mode_t unix_mode) {
  ASSIGN_OR_RETURN(SocketAddress resolved, Resolve(address));
  sys::UniqueFd fd(::socket(resolved.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return sys::IoError("socket", errno);
  }
  if (address.family == Family::kUnix) {
    struct stat st {};
    if (::lstat(address.host.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      ::unlink(address.host.c_str());
    }
  } else {
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&resolved.storage), resolved.size) != 0) {
    return sys::IoError("bind " + address.ToString(), errno);
  }
  if (address.family == Family::kUnix && ::chmod(address.host.c_str(), unix_mode) != 0) {
    return sys::IoError("chmod " + address.host, errno);
  }
  if (::listen(fd.get(), backlog) != 0) {
    return sys::IoError("listen on " + address.ToString(), errno);
  }
  return fd;
}

}  // namespace enclavia::net
