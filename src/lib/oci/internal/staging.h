// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_OCI_INTERNAL_STAGING_H_
#define ENCLAVIA_LIB_OCI_INTERNAL_STAGING_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/image/tree.h"

namespace enclavia::oci::internal {

// Budget is what an import may still consume; every producer of bytes or entries charges it.
struct Budget {
  uint64_t bytes_left = 0;   // uncompressed layer bytes, tarball member bytes
  uint64_t memory_left = 0;  // file bytes held in memory (memory mode only)
};

// ChargeBytes takes `n` from `*left`, or fails with kLimitExceeded naming `what`.
Result<void> ChargeBytes(uint64_t* left, uint64_t n, const std::string& what);

// PullFn reads up to out.size() bytes of a stream into `out`; 0 means end of stream.
using PullFn = std::function<Result<size_t>(std::span<uint8_t> out)>;

// StagingBuffer is the chunk size files are copied to the staging directory in.
using StagingBuffer = std::array<uint8_t, size_t{256} << 10>;

// StagedFile is where a file's bytes ended up.
struct StagedFile {
  image::FileContent content;
  uint64_t size = 0;
};

// Staging keeps regular-file contents: in memory (empty `dir`), or content-addressed in `dir`
// as <dir>/<sha256 hex>, mode 0600, each distinct content once. Not thread-safe.
class Staging {
 public:
  // Create makes `dir` (one level, mode 0700) if it does not exist; kIo if that fails.
  static Result<Staging> Create(const std::string& dir);

  [[nodiscard]] bool in_memory() const { return dir_.empty(); }
  [[nodiscard]] const std::string& dir() const { return dir_; }

  // Stage drains `pull` into a staged file. `size_hint` is the expected size (untrusted: only
  // used to size buffers). In memory mode the bytes are charged to `budget.memory_left`. `name`
  // is used in messages.
  Result<StagedFile> Stage(const PullFn& pull, uint64_t size_hint, Budget& budget,
                           const std::string& name);

 private:
  explicit Staging(std::string dir) : dir_(std::move(dir)) {}

  std::string dir_;
  std::unique_ptr<StagingBuffer> buffer_;  // for copying to staging files, made on first use
};

// TempDir is a directory removed (with its contents) when the TempDir is destroyed.
class TempDir {
 public:
  // Create makes a fresh directory "<parent>/<prefix>XXXXXX", mode 0700.
  static Result<TempDir> Create(const std::string& parent, const std::string& prefix);
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace enclavia::oci::internal

#endif  // ENCLAVIA_LIB_OCI_INTERNAL_STAGING_H_
