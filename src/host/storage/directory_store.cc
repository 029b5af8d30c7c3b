// SPDX-License-Identifier: Apache-2.0
#include "host/storage/directory_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

#include <sys/stat.h>

#include "lib/base/encoding.h"
#include "lib/crypto/random.h"

namespace enclavia::host {

namespace {

constexpr std::string_view kTempPrefix = "~tmp.";

struct DirCloser {
  void operator()(DIR* d) const noexcept { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// ObjectError maps errno for an operation on `name`: a full disk is kLimitExceeded (the caller
// can free space and retry), the rest kIo.
Error ObjectError(const std::string& name, std::string_view what, int err) {
  if (err == ENOSPC || err == EDQUOT) {
    return Error(Code::kLimitExceeded, "object " + name + ": disk full while " + std::string(what));
  }
  if (err == ELOOP) {
    return Error(Code::kIo,
                 "object " + name + ": refusing to follow a symlink while " + std::string(what));
  }
  return Error(Code::kIo, "object " + name + ": " + std::string(what) + ": " + strerror(err));
}

Error NoObject(const std::string& name) { return Error(Code::kNotFound, "no object " + name); }

std::string_view Leaf(std::string_view name) {
  size_t slash = name.rfind('/');
  return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

Result<void> WriteAll(int fd, ByteSpan data, const std::string& name) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ObjectError(name, "writing", errno);
    }
    data = data.subspan(static_cast<size_t>(n));
  }
  return Ok();
}

Result<void> FsyncDir(int fd, const std::string& name) {
  if (fsync(fd) != 0) {
    return ObjectError(name, "syncing its directory", errno);
  }
  return Ok();
}

}  // namespace

Result<std::unique_ptr<DirectoryObjectStore>> DirectoryObjectStore::Open(const std::string& root) {
  if (mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) {
    return sys::IoError("cannot create storage directory " + root, errno);
  }
  sys::UniqueFd dir(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    return sys::IoError("cannot open storage directory " + root, errno);
  }
  return std::unique_ptr<DirectoryObjectStore>(new DirectoryObjectStore(root, std::move(dir)));
}

Result<sys::UniqueFd> DirectoryObjectStore::OpenParent(const std::string& name, Create create) {
  sys::UniqueFd current(fcntl(dir_.get(), F_DUPFD_CLOEXEC, 0));
  if (!current.valid()) {
    return ObjectError(name, "opening the storage directory", errno);
  }
  size_t start = 0;
  for (size_t slash = name.find('/'); slash != std::string::npos;
       start = slash + 1, slash = name.find('/', start)) {
    std::string part = name.substr(start, slash - start);
    for (int attempt = 0;; ++attempt) {
      int fd = openat(current.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0) {
        current = sys::UniqueFd(fd);
        break;
      }
      if (errno != ENOENT) {
        return ObjectError(name, "opening directory " + name.substr(0, slash), errno);
      }
      if (create == Create::kNo) {
        return NoObject(name);
      }
      if (attempt > 0) {
        return ObjectError(name, "creating directory " + name.substr(0, slash), ENOENT);
      }
      if (mkdirat(current.get(), part.c_str(), 0700) != 0 && errno != EEXIST) {
        return ObjectError(name, "creating directory " + name.substr(0, slash), errno);
      }
      // The new directory's entry must be durable before objects in it are.
      RETURN_IF_ERROR(FsyncDir(current.get(), name));
    }
  }
  return current;
}

Result<std::pair<sys::UniqueFd, uint64_t>> DirectoryObjectStore::OpenObject(
    const std::string& name) {
  if (!storage::ValidObjectName(name)) {
    return Error(Code::kInvalidArgument, "invalid object name");
  }
  ASSIGN_OR_RETURN(sys::UniqueFd parent, OpenParent(name, Create::kNo));
  std::string leaf(Leaf(name));
  sys::UniqueFd fd(openat(parent.get(), leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) {
      return NoObject(name);
    }
    return ObjectError(name, "opening", errno);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) {
    return ObjectError(name, "reading its size", errno);
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(Code::kIo, "object " + name + " is not a regular file");
  }
  auto size = static_cast<uint64_t>(st.st_size);
  if (size > storage::kMaxObjectSize) {
    return Error(Code::kLimitExceeded, "object " + name + " is over the object size limit");
  }
  return std::make_pair(std::move(fd), size);
}

Result<void> DirectoryObjectStore::Put(const std::string& name, ByteSpan data) {
  if (!storage::ValidObjectName(name)) {
    return Error(Code::kInvalidArgument, "invalid object name");
  }
  if (data.size() > storage::kMaxObjectSize) {
    return Error(Code::kLimitExceeded, "object " + name + " is over the object size limit");
  }
  ASSIGN_OR_RETURN(sys::UniqueFd parent, OpenParent(name, Create::kYes));
  std::string temp = std::string(kTempPrefix) + HexEncode(crypto::RandomBytes(8));
  sys::UniqueFd fd(openat(parent.get(), temp.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    return ObjectError(name, "creating a temporary file", errno);
  }
  auto written = WriteAll(fd.get(), data, name);
  if (written && fsync(fd.get()) != 0) {
    written = ObjectError(name, "syncing", errno);
  }
  if (written && close(fd.Release()) != 0) {
    written = ObjectError(name, "closing", errno);
  }
  if (written &&
      renameat(parent.get(), temp.c_str(), parent.get(), std::string(Leaf(name)).c_str()) != 0) {
    written = ObjectError(name, "renaming into place", errno);
  }
  if (!written) {
    unlinkat(parent.get(), temp.c_str(), 0);  // The old object, if any, is untouched.
    return written;
  }
  return FsyncDir(parent.get(), name);
}

Result<Bytes> DirectoryObjectStore::Get(const std::string& name) {
  ASSIGN_OR_RETURN(auto opened, OpenObject(name));
  Bytes out(opened.second);
  auto read = sys::PreadFull(opened.first.get(), out, 0);
  if (!read) {
    return Error(Code::kIo, "object " + name + ": " + read.error().message());
  }
  return out;
}

Result<Bytes> DirectoryObjectStore::GetRange(const std::string& name, uint64_t offset,
                                             uint64_t length) {
  ASSIGN_OR_RETURN(auto opened, OpenObject(name));
  uint64_t size = opened.second;
  if (offset > size || length > size - offset) {
    return Error(Code::kMalformed, "object " + name + " is shorter than the range asked");
  }
  Bytes out(length);
  auto read = sys::PreadFull(opened.first.get(), out, offset);
  if (!read) {
    return Error(Code::kIo, "object " + name + ": " + read.error().message());
  }
  return out;
}

Result<void> DirectoryObjectStore::Delete(const std::string& name) {
  if (!storage::ValidObjectName(name)) {
    return Error(Code::kInvalidArgument, "invalid object name");
  }
  auto parent = OpenParent(name, Create::kNo);
  if (!parent) {
    if (parent.error().code() == Code::kNotFound) {
      return Ok();
    }
    return std::move(parent).error();
  }
  // Directories are left in place even when empty: removing one could race with a Put that
  // has just opened it.
  if (unlinkat(parent->get(), std::string(Leaf(name)).c_str(), 0) != 0) {
    if (errno == ENOENT) {
      return Ok();
    }
    return ObjectError(name, "deleting", errno);
  }
  return FsyncDir(parent->get(), name);
}

namespace {

// Walk collects the regular files under `dir` (whose path relative to the root is `path`, "" or
// ending in '/') whose names are valid and start with `prefix`. Symlinks and other files are
// skipped; directories that cannot hold a match are not entered.
Result<void> Walk(int dir, const std::string& path, const std::string& prefix,
                  std::vector<std::string>& out) {
  // A new open file description: a dup() would share (and move) the directory's read offset.
  int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return sys::IoError("cannot list objects", errno);
  }
  DirPtr d(fdopendir(fd));
  if (!d) {
    int err = errno;
    close(fd);
    return sys::IoError("cannot list objects", err);
  }
  for (;;) {
    errno = 0;
    dirent* entry = readdir(d.get());
    if (entry == nullptr) {
      if (errno != 0) {
        return sys::IoError("cannot list objects in " + (path.empty() ? "/" : path), errno);
      }
      return Ok();
    }
    std::string_view leaf = entry->d_name;
    if (leaf == "." || leaf == ".." || leaf.substr(0, kTempPrefix.size()) == kTempPrefix) {
      continue;
    }
    std::string full = path + std::string(leaf);
    if (full.size() > storage::kMaxObjectNameSize) {
      continue;
    }
    struct stat st {};
    if (fstatat(dir, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) {
        continue;  // Deleted meanwhile.
      }
      return sys::IoError("cannot list objects: " + full, errno);
    }
    if (S_ISDIR(st.st_mode)) {
      std::string sub = full + "/";
      size_t n = std::min(sub.size(), prefix.size());
      bool may_match = sub.compare(0, n, prefix, 0, n) == 0;
      if (!may_match) {
        continue;
      }
      sys::UniqueFd child(
          openat(dir, entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!child.valid()) {
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) {
          continue;
        }
        return sys::IoError("cannot list objects: " + full, errno);
      }
      RETURN_IF_ERROR(Walk(child.get(), sub, prefix, out));
    } else if (S_ISREG(st.st_mode) && storage::ValidObjectName(full) &&
               full.compare(0, prefix.size(), prefix) == 0) {
      out.push_back(std::move(full));
    }
  }
}

}  // namespace

Result<std::vector<std::string>> DirectoryObjectStore::List(const std::string& prefix) {
  std::vector<std::string> out;
  RETURN_IF_ERROR(Walk(dir_.get(), "", prefix, out));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace enclavia::host
