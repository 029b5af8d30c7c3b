// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_SYS_FD_H_
#define ENCLAVIA_LIB_SYS_FD_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// The system-call wrappers: each returns a Result, and the EINTR retry loop lives here only.
namespace enclavia::sys {

// UniqueFd owns a file descriptor and closes it on destruction. Move-only; -1 means none.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Release gives up ownership and returns the descriptor.
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// IoError is kIo with "<what>: <strerror(err)>".
Error IoError(std::string_view what, int err);

// Open opens `path` with `flags` (O_CLOEXEC is always added) and `mode` for O_CREAT.
Result<UniqueFd> Open(const std::string& path, int flags, unsigned mode = 0);

// ReadFull reads exactly `out.size()` bytes at the file position; kIo on error, kMalformed
// ("unexpected end of file") when the file ends first.
Result<void> ReadFull(int fd, std::span<uint8_t> out);

// PreadFull reads exactly `out.size()` bytes at `offset`; errors as ReadFull.
Result<void> PreadFull(int fd, std::span<uint8_t> out, uint64_t offset);

// ReadSome reads up to `out.size()` bytes; returns 0 only at end of file.
Result<size_t> ReadSome(int fd, std::span<uint8_t> out);

// ReadFullBy reads exactly `out.size()` bytes from a stream, waiting (poll) at most until
// `deadline`: kUnavailable ("timed out", or "connection closed" when the peer ends first), kIo on
// error. For framed exchanges with a peer that may stall.
Result<void> ReadFullBy(int fd, std::span<uint8_t> out,
                        std::chrono::steady_clock::time_point deadline);

// WriteFull writes all of `data` at the file position (looping over short writes).
Result<void> WriteFull(int fd, ByteSpan data);

// SendFull writes all of `data` to a blocking stream socket with MSG_NOSIGNAL, so a peer that
// has closed is a kIo error ("send: Broken pipe"), never SIGPIPE. A descriptor that is not a
// socket (a pipe in tests) is written with write(2) instead.
Result<void> SendFull(int fd, ByteSpan data);

// PwriteFull writes all of `data` at `offset`.
Result<void> PwriteFull(int fd, ByteSpan data, uint64_t offset);

// FileSize returns the size of the open file `fd` (fstat).
Result<uint64_t> FileSize(int fd);

}  // namespace enclavia::sys

#endif  // ENCLAVIA_LIB_SYS_FD_H_
