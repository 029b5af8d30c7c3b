// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_IMAGE_INTERNAL_TEST_UTIL_H_
#define ENCLAVIA_LIB_IMAGE_INTERNAL_TEST_UTIL_H_

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "lib/base/bytes.h"
#include "lib/image/tree.h"
#include "lib/sys/fd.h"

// Helpers shared by the image tests (not part of the library).
namespace enclavia::image::testing {

// TempDir is a fresh directory under $TMPDIR (or /tmp), removed with its contents at the end.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/enclavia_image_XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) {
      path_ = pattern;
    }
  }
  ~TempDir() {
    if (path_.empty()) {
      return;
    }
    MakeRemovable(path_);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string operator/(std::string_view rel) const { return path_ + "/" + std::string(rel); }

 private:
  // MakeRemovable gives the owner full access to every directory under `dir` (tests make some
  // unreadable), so that remove_all works without root.
  static void MakeRemovable(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->symlink_status(ec).type() == std::filesystem::file_type::directory) {
        MakeRemovable(it->path());
      }
    }
  }

  std::string path_;
};

// WriteTestFile creates (or truncates) `path` with `data` and permissions `mode`.
inline bool WriteTestFile(const std::string& path, ByteSpan data, unsigned mode = 0644) {
  Result<sys::UniqueFd> fd = sys::Open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  return fd.has_value() && sys::WriteFull(fd->get(), data).has_value();
}
inline bool WriteTestFile(const std::string& path, std::string_view data, unsigned mode = 0644) {
  return WriteTestFile(path, AsBytes(data), mode);
}

inline Entry FileEntry(std::string_view content, uint32_t mode = 0644) {
  Entry e;
  e.type = EntryType::kFile;
  e.mode = mode;
  e.content = ToBytes(content);
  e.size = content.size();
  return e;
}

inline Entry DirEntry(uint32_t mode = 0755) {
  Entry e;
  e.type = EntryType::kDirectory;
  e.mode = mode;
  return e;
}

inline Entry SymlinkEntry(std::string target) {
  Entry e;
  e.type = EntryType::kSymlink;
  e.mode = 0777;
  e.link_target = std::move(target);
  return e;
}

inline Entry HardLinkEntry(std::string leader) {
  Entry e;
  e.type = EntryType::kFile;
  e.hardlink_to = std::move(leader);
  return e;
}

// PatternBytes returns `n` bytes of a fixed, non-repeating-looking pattern.
inline Bytes PatternBytes(size_t n, uint32_t seed = 1) {
  Bytes out(n);
  uint32_t x = seed * 2654435761U + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245U + 12345U;
    out[i] = static_cast<uint8_t>(x >> 24);
  }
  return out;
}

}  // namespace enclavia::image::testing

#endif  // ENCLAVIA_LIB_IMAGE_INTERNAL_TEST_UTIL_H_
