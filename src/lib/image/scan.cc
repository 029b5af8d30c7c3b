// SPDX-License-Identifier: Apache-2.0
#include "lib/image/scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "lib/sys/fd.h"

namespace enclavia::image {
namespace {

struct DirCloser {
  void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// Scanner walks one tree. Paths in messages are the absolute paths on the build machine.
class Scanner {
 public:
  Scanner(std::string root, std::set<std::string, std::less<>> devices)
      : root_(std::move(root)), devices_(std::move(devices)) {}

  Result<Tree> Run();

 private:
  // Abs is the build-machine path of `rel` ("" is the root; root_ is "" for "/").
  [[nodiscard]] std::string Abs(const std::string& rel) const {
    return rel.empty() ? (root_.empty() ? "/" : root_) : root_ + "/" + rel;
  }
  Result<std::vector<std::string>> List(int dir_fd, const std::string& rel);
  Result<void> Walk(int dir_fd, const std::string& rel, size_t depth);
  Result<void> Add(int dir_fd, const std::string& name, const std::string& rel, size_t depth);

  std::string root_;
  std::set<std::string, std::less<>> devices_;
  Tree tree_;
  size_t count_ = 0;
  // Regular files with st_nlink > 1, by inode: candidates for hard-link groups.
  std::map<std::pair<dev_t, ino_t>, std::vector<std::string>> inodes_;
};

// List returns the names in directory `dir_fd` other than "." and "..".
Result<std::vector<std::string>> Scanner::List(int dir_fd, const std::string& rel) {
  // fdopendir takes ownership of its descriptor; give it a duplicate so `dir_fd` stays usable
  // for the *at() calls after the listing is closed.
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    return sys::IoError("dup " + Abs(rel), errno);
  }
  DirPtr dir(::fdopendir(dup_fd));
  if (dir == nullptr) {
    int err = errno;
    ::close(dup_fd);
    return sys::IoError("opendir " + Abs(rel), err);
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    // readdir is safe on a stream no other thread uses.
    const dirent* ent = ::readdir(dir.get());  // NOLINT(concurrency-mt-unsafe)
    if (ent == nullptr) {
      if (errno != 0) {
        return sys::IoError("readdir " + Abs(rel), errno);
      }
      break;
    }
    std::string_view name(ent->d_name);
    if (name == "." || name == "..") {
      continue;
    }
    names.emplace_back(name);
  }
  return names;
}

// Walk and Add recurse once per directory level, bounded by kMaxScanDepth.
// NOLINTNEXTLINE(misc-no-recursion)
Result<void> Scanner::Walk(int dir_fd, const std::string& rel, size_t depth) {
  if (depth > kMaxScanDepth) {
    return Error(Code::kLimitExceeded,
                 Abs(rel) + ": deeper than " + std::to_string(kMaxScanDepth) + " levels");
  }
  ASSIGN_OR_RETURN(std::vector<std::string> names, List(dir_fd, rel));
  for (const std::string& name : names) {
    std::string child = rel;
    if (!child.empty()) {
      child.push_back('/');
    }
    child += name;
    RETURN_IF_ERROR(Add(dir_fd, name, child, depth));
  }
  return Ok();
}

// NOLINTNEXTLINE(misc-no-recursion)
Result<void> Scanner::Add(int dir_fd, const std::string& name, const std::string& rel,
                          size_t depth) {
  if (++count_ > kMaxScanEntries) {
    return Error(Code::kLimitExceeded,
                 root_ + ": more than " + std::to_string(kMaxScanEntries) + " entries");
  }
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return sys::IoError("lstat " + Abs(rel), errno);
  }
  Entry entry;
  // Owner, mode and mtime of the checkout are accidents of who ran it and how; see
  // docs/formats/ramdisk.md "Scanning a directory".
  entry.uid = 0;
  entry.gid = 0;
  switch (st.st_mode & S_IFMT) {
    case S_IFDIR: {
      entry.type = EntryType::kDirectory;
      entry.mode = 0755;
      RETURN_IF_ERROR(tree_.Put(rel, std::move(entry)));
      int fd = -1;
      do {
        fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      } while (fd < 0 && errno == EINTR);
      if (fd < 0) {
        return sys::IoError("open directory " + Abs(rel), errno);
      }
      sys::UniqueFd child(fd);
      return Walk(child.get(), rel, depth + 1);
    }
    case S_IFREG: {
      entry.type = EntryType::kFile;
      entry.mode = (st.st_mode & 0111) != 0 ? 0755 : 0644;
      entry.size = static_cast<uint64_t>(st.st_size);
      // Content is read later, when the archive is written; fail now rather than then.
      if (::faccessat(dir_fd, name.c_str(), R_OK, AT_EACCESS) != 0) {
        return sys::IoError(Abs(rel), errno);
      }
      entry.content = PathContent{Abs(rel)};
      if (st.st_nlink > 1) {
        inodes_[{st.st_dev, st.st_ino}].push_back(rel);
      }
      break;
    }
    case S_IFLNK: {
      entry.type = EntryType::kSymlink;
      entry.mode = 0777;
      // st_size is the target length; one more byte tells a target that grew since lstat.
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
      if (n < 0) {
        return sys::IoError("readlink " + Abs(rel), errno);
      }
      if (static_cast<size_t>(n) >= target.size() || n == 0) {
        return Error(Code::kIo, Abs(rel) + ": symlink changed while being read");
      }
      target.resize(static_cast<size_t>(n));
      entry.link_target = std::move(target);
      break;
    }
    case S_IFIFO:
      entry.type = EntryType::kFifo;
      entry.mode = 0644;
      break;
    case S_IFCHR:
    case S_IFBLK:
      if (devices_.find(rel) == devices_.end()) {
        return Error(Code::kInvalidArgument,
                     Abs(rel) + ": device node not declared in the Enclaviafile's devices");
      }
      entry.type = S_ISCHR(st.st_mode) ? EntryType::kCharDevice : EntryType::kBlockDevice;
      entry.mode = st.st_mode & 0777;
      entry.rdev_major = major(st.st_rdev);
      entry.rdev_minor = minor(st.st_rdev);
      break;
    case S_IFSOCK:
      return Error(Code::kUnsupported,
                   Abs(rel) + ": is a socket; sockets cannot be put in a ramdisk");
    default:
      return Error(Code::kUnsupported, Abs(rel) + ": unknown file type");
  }
  return tree_.Put(rel, std::move(entry));
}

Result<Tree> Scanner::Run() {
  int fd = -1;
  do {
    fd = ::open(root_.empty() ? "/" : root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return sys::IoError("open directory " + root_, errno);
  }
  sys::UniqueFd root_fd(fd);
  RETURN_IF_ERROR(Walk(root_fd.get(), "", 0));
  // Hard links: the group's bytewise-first path leads, whatever order readdir returned.
  for (auto& [inode, paths] : inodes_) {
    if (paths.size() < 2) {
      continue;
    }
    std::sort(paths.begin(), paths.end());
    for (size_t i = 1; i < paths.size(); ++i) {
      Entry* entry = tree_.Find(paths[i]);
      ENCLAVIA_CHECK(entry != nullptr);
      entry->hardlink_to = paths[0];
    }
  }
  return std::move(tree_);
}

}  // namespace

Result<Tree> ScanDirectory(const std::string& root, const ScanOptions& options) {
  std::set<std::string, std::less<>> devices;
  for (const std::string& device : options.devices) {
    Result<std::string> path = NormalizePath(device);
    if (!path) {
      return std::move(path).error().WithContext("ScanOptions.devices");
    }
    devices.insert(*std::move(path));
  }
  // PathContent paths are absolute, so the tree does not depend on the working directory.
  char* resolved = ::realpath(root.c_str(), nullptr);
  if (resolved == nullptr) {
    return sys::IoError("realpath " + root, errno);
  }
  std::string abs_root(resolved);
  std::free(resolved);  // NOLINT(cppcoreguidelines-no-malloc): realpath's buffer.
  if (abs_root == "/") {
    abs_root.clear();  // so that Abs("bin") is "/bin", not "//bin"
  }
  return Scanner(std::move(abs_root), std::move(devices)).Run();
}

}  // namespace enclavia::image
