// SPDX-License-Identifier: Apache-2.0
#include "lib/sys/fd.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace enclavia::sys {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = other.Release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) {
    // close() is not retried on EINTR: Linux releases the descriptor either way.
    ::close(fd_);
  }
}

Error IoError(std::string_view what, int err) {
  return Error(Code::kIo, std::string(what) + ": " + std::strerror(err));
}

Result<UniqueFd> Open(const std::string& path, int flags, unsigned mode) {
  int fd = -1;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode));
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return IoError("open " + path, errno);
  }
  return UniqueFd(fd);
}

Result<size_t> ReadSome(int fd, std::span<uint8_t> out) {
  for (;;) {
    ssize_t n = ::read(fd, out.data(), out.size());
    if (n >= 0) {
      return static_cast<size_t>(n);
    }
    if (errno != EINTR) {
      return IoError("read", errno);
    }
  }
}

Result<void> ReadFull(int fd, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ASSIGN_OR_RETURN(size_t n, ReadSome(fd, out.subspan(done)));
    if (n == 0) {
      return Error(Code::kMalformed, "unexpected end of file");
    }
    done += n;
  }
  return {};
}

Result<void> PreadFull(int fd, std::span<uint8_t> out, uint64_t offset) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return IoError("pread", errno);
    }
    if (n == 0) {
      return Error(Code::kMalformed, "unexpected end of file");
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<void> SendFull(int fd, ByteSpan data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) {
      return WriteFull(fd, data);
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return IoError("send", errno);
    }
    data = data.subspan(static_cast<size_t>(n));
  }
  return {};
}

Result<void> WriteFull(int fd, ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return IoError("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<void> PwriteFull(int fd, ByteSpan data, uint64_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return IoError("pwrite", errno);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<uint64_t> FileSize(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return IoError("fstat", errno);
  }
  return static_cast<uint64_t>(st.st_size);
}

Result<void> ReadFullBy(int fd, std::span<uint8_t> out,
                        std::chrono::steady_clock::time_point deadline) {
  size_t got = 0;
  while (got < out.size()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return Error(Code::kUnavailable, "timed out");
    }
    pollfd pfd{.fd = fd, .events = POLLIN, .revents = 0};
    int n = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 60000)));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return IoError("poll", errno);
    }
    if (n == 0) {
      continue;
    }
    ASSIGN_OR_RETURN(size_t read, ReadSome(fd, out.subspan(got)));
    if (read == 0) {
      return Error(Code::kUnavailable, "connection closed");
    }
    got += read;
  }
  return Ok();
}

}  // namespace enclavia::sys
