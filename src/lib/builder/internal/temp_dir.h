// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BUILDER_INTERNAL_TEMP_DIR_H_
#define ENCLAVIA_LIB_BUILDER_INTERNAL_TEMP_DIR_H_

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <utility>

#include "lib/base/result.h"
#include "lib/sys/fd.h"

namespace enclavia::builder::internal {

// TempDir is a fresh directory under `parent` (prefix-XXXXXX), removed with its contents when
// it goes out of scope. Move-only.
class TempDir {
 public:
  static Result<TempDir> Create(const std::string& parent, const std::string& prefix) {
    std::string templ = parent + "/" + prefix + "-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      return sys::IoError("mkdtemp in " + parent, errno);
    }
    return TempDir(templ);
  }
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace enclavia::builder::internal

#endif  // ENCLAVIA_LIB_BUILDER_INTERNAL_TEMP_DIR_H_
