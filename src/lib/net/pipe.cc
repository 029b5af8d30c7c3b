// SPDX-License-Identifier: Apache-2.0
#include "lib/net/pipe.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace enclavia::net {

void PipeBoth(int a, int b, int wake_fd, std::atomic<uint64_t>& bytes) {
  bool a_open = true;  // Still reading from a (writing to b).
  bool b_open = true;
  char buf[16384];
  while (a_open || b_open) {
    pollfd fds[3] = {{.fd = a_open ? a : -1, .events = POLLIN, .revents = 0},
                     {.fd = b_open ? b : -1, .events = POLLIN, .revents = 0},
                     {.fd = wake_fd, .events = POLLIN, .revents = 0}};
    int n = ::poll(fds, 3, -1);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 || (fds[2].revents & POLLIN) != 0) {
      return;
    }
    for (int side = 0; side < 2; ++side) {
      if ((fds[side].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      int from = side == 0 ? a : b;
      int to = side == 0 ? b : a;
      ssize_t got = ::read(from, buf, sizeof(buf));
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got <= 0) {
        ::shutdown(to, SHUT_WR);  // Pass the half-close on.
        (side == 0 ? a_open : b_open) = false;
        if (got < 0) {
          a_open = b_open = false;  // An error ends both directions.
        }
        continue;
      }
      ssize_t off = 0;
      while (off < got) {
        ssize_t put = ::send(to, buf + off, static_cast<size_t>(got - off), MSG_NOSIGNAL);
        if (put < 0 && errno == EINTR) {
          continue;
        }
        if (put <= 0) {
          a_open = b_open = false;
          break;
        }
        off += put;
      }
      bytes.fetch_add(static_cast<uint64_t>(got));
    }
  }
}

}  // namespace enclavia::net
