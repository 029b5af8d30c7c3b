// SPDX-License-Identifier: Apache-2.0
#include "lib/oci/internal/staging.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/stat.h>

#include "lib/base/encoding.h"
#include "lib/crypto/hash.h"
#include "lib/sys/fd.h"

namespace enclavia::oci::internal {
namespace {

constexpr size_t kMinRead = size_t{4} << 10;
constexpr uint64_t kMaxPreallocate = uint64_t{64} << 20;

// UnlinkOnExit removes a temporary file unless Keep() was called: a failed Stage leaves nothing.
class UnlinkOnExit {
 public:
  explicit UnlinkOnExit(std::string path) : path_(std::move(path)) {}
  UnlinkOnExit(const UnlinkOnExit&) = delete;
  UnlinkOnExit& operator=(const UnlinkOnExit&) = delete;
  UnlinkOnExit(UnlinkOnExit&&) = delete;
  UnlinkOnExit& operator=(UnlinkOnExit&&) = delete;
  ~UnlinkOnExit() {
    if (!path_.empty()) {
      ::unlink(path_.c_str());
    }
  }
  void Keep() { path_.clear(); }

 private:
  std::string path_;
};

}  // namespace

Result<void> ChargeBytes(uint64_t* left, uint64_t n, const std::string& what) {
  if (n > *left) {
    return Error(Code::kLimitExceeded, what + ": over max_total_bytes");
  }
  *left -= n;
  return Ok();
}

Result<Staging> Staging::Create(const std::string& dir) {
  if (dir.empty()) {
    return Staging("");
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return sys::IoError("create staging directory " + dir, errno);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return sys::IoError("stat staging directory " + dir, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error(Code::kInvalidArgument, "staging directory " + dir + " is not a directory");
  }
  return Staging(dir);
}

Result<StagedFile> Staging::Stage(const PullFn& pull, uint64_t size_hint, Budget& budget,
                                  const std::string& name) {
  if (in_memory()) {
    // Read straight into the result: sized from the hint (capped, since it is untrusted) plus one
    // byte so that the end is seen without growing, and grown geometrically if the hint was low.
    Bytes data(static_cast<size_t>(std::min({size_hint, kMaxPreallocate, budget.memory_left})) + 1);
    size_t used = 0;
    for (;;) {
      if (data.size() == used) {
        data.resize(used + std::max(kMinRead, used));
      }
      ASSIGN_OR_RETURN(size_t n, pull(std::span<uint8_t>(data).subspan(used)));
      if (n == 0) {
        break;
      }
      RETURN_IF_ERROR(ChargeBytes(&budget.memory_left, n, name));
      used += n;
    }
    data.resize(used);
    if (data.capacity() - used > used / 8) {
      data.shrink_to_fit();
    }
    const uint64_t size = data.size();
    return StagedFile{image::FileContent(std::in_place_type<Bytes>, std::move(data)), size};
  }

  if (buffer_ == nullptr) {
    buffer_ = std::make_unique_for_overwrite<StagingBuffer>();
  }
  std::string temp = dir_ + "/.stage-XXXXXX";
  int raw_fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (raw_fd < 0) {
    return sys::IoError("create staging file in " + dir_, errno);
  }
  sys::UniqueFd fd(raw_fd);
  UnlinkOnExit cleanup(temp);
  crypto::Hasher hasher(crypto::HashAlgorithm::kSha256);
  uint64_t size = 0;
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, pull(*buffer_));
    if (n == 0) {
      break;
    }
    ByteSpan chunk = ByteSpan(*buffer_).first(n);
    hasher.Update(chunk);
    RETURN_IF_ERROR(sys::WriteFull(fd.get(), chunk));
    size += n;
  }
  if (::fchmod(fd.get(), 0600) != 0) {
    return sys::IoError("chmod " + temp, errno);
  }
  fd = sys::UniqueFd();
  const std::string final_path = dir_ + "/" + HexEncode(hasher.Finish());
  // Content addressing: a file already there with this name and size has these bytes (the
  // staging directory belongs to the build), so the new copy is dropped by `cleanup`.
  struct stat st {};
  const bool present = ::lstat(final_path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
                       static_cast<uint64_t>(st.st_size) == size;
  if (!present) {
    if (::rename(temp.c_str(), final_path.c_str()) != 0) {
      return sys::IoError("rename " + temp + " to " + final_path, errno);
    }
    cleanup.Keep();
  }
  return StagedFile{
      image::FileContent(std::in_place_type<image::PathContent>, image::PathContent{final_path}),
      size};
}

Result<TempDir> TempDir::Create(const std::string& parent, const std::string& prefix) {
  std::string path = parent + "/" + prefix + "XXXXXX";
  if (::mkdtemp(path.data()) == nullptr) {
    return sys::IoError("create temporary directory in " + parent, errno);
  }
  return TempDir(std::move(path));
}

TempDir::~TempDir() {
  if (!path_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
}

}  // namespace enclavia::oci::internal
