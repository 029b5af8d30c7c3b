// SPDX-License-Identifier: Apache-2.0
// UnpackArchive: a ramdisk into the sandbox's tmpfs root, the way Linux's initramfs unpacker
// (init/initramfs.c) does it, but walking every path with *at() calls and O_NOFOLLOW so that no
// symlink (the archive's own included) can lead a write outside the root.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "host/launcher/sandbox.h"
#include "lib/image/cpio.h"
#include "lib/sys/fd.h"

namespace enclavia::host {
namespace {

using sys::UniqueFd;

struct Ctx {
  int index;
  const std::string* path;
};

Error Fail(const Ctx& ctx, std::string_view what, int err) {
  Code code = err == ENOSPC || err == EDQUOT ? Code::kLimitExceeded : Code::kIo;
  std::string message = "ramdisk " + std::to_string(ctx.index) + ": " + *ctx.path + ": " +
                        std::string(what);
  if (err == ENOSPC || err == EDQUOT) {
    message += ": the ramdisks do not fit in the enclave's memory";
  } else if (err != 0) {
    message += ": " + std::generic_category().message(err);
  }
  return Error(code, message);
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) {
      slash = path.size();
    }
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// OpenParent walks to the directory holding the last component, creating missing directories
// (0755, as cpio -d would), refusing symlinks and non-directories on the way.
Result<UniqueFd> OpenParent(int root_fd, const std::vector<std::string>& parts, const Ctx& ctx) {
  UniqueFd dir(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!dir.valid()) {
    return Fail(ctx, "dup", errno);
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const char* name = parts[i].c_str();
    int fd = ::openat(dir.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      if (::mkdirat(dir.get(), name, 0755) != 0) {
        return Fail(ctx, "cannot create parent directory " + parts[i], errno);
      }
      fd = ::openat(dir.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
      if (errno == ELOOP || errno == ENOTDIR) {
        return Fail(ctx, "parent " + parts[i] + " is not a directory (symlinks are not followed)",
                    0);
      }
      return Fail(ctx, "cannot open parent " + parts[i], errno);
    }
    dir = UniqueFd(fd);
  }
  return dir;
}

// ClearFor removes what is at `leaf` unless it is a directory and `type` is one too (the kernel's
// clean_path). Returns whether a directory was kept.
Result<bool> ClearFor(int parent, const std::string& leaf, image::EntryType type, const Ctx& ctx) {
  struct stat st {};
  if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      return false;
    }
    return Fail(ctx, "stat", errno);
  }
  if (S_ISDIR(st.st_mode)) {
    if (type == image::EntryType::kDirectory) {
      return true;
    }
    if (::unlinkat(parent, leaf.c_str(), AT_REMOVEDIR) != 0) {
      return Fail(ctx, "cannot replace a directory", errno);
    }
    return false;
  }
  if (::unlinkat(parent, leaf.c_str(), 0) != 0) {
    return Fail(ctx, "cannot replace an earlier entry", errno);
  }
  return false;
}

Result<void> SetMeta(int fd, const image::CpioEntry& e, const Ctx& ctx) {
  // chown first: it clears set-user-id bits that fchmod then sets.
  if (::fchown(fd, e.uid, e.gid) != 0) {
    return Fail(ctx, "chown", errno);
  }
  if (::fchmod(fd, e.mode & 07777) != 0) {
    return Fail(ctx, "chmod", errno);
  }
  return Ok();
}

Result<void> WriteData(int fd, ByteSpan data, const Ctx& ctx) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return Fail(ctx, "write", n < 0 ? errno : EIO);
    }
    done += static_cast<size_t>(n);
  }
  return Ok();
}

struct LinkKey {
  uint32_t ino, major, minor, mode;
  bool operator<(const LinkKey& o) const {
    return std::tie(ino, major, minor, mode) < std::tie(o.ino, o.major, o.minor, o.mode);
  }
};
struct LinkLeader {
  UniqueFd parent;
  std::string leaf;
};

}  // namespace

Result<void> UnpackArchive(int root_fd, ByteSpan archive, int index) {
  auto listed = image::ListCpio(archive);
  if (!listed) {
    return Error(listed.error().code(),
                 "ramdisk " + std::to_string(index) + ": " + listed.error().message());
  }
  std::map<LinkKey, LinkLeader> links;  // Per archive, as the kernel resets its table.
  for (const image::CpioEntry& e : *listed) {
    Ctx ctx{index, &e.path};
    if (e.path == "." || e.type == image::EntryType::kCharDevice ||
        e.type == image::EntryType::kBlockDevice) {
      continue;  // The root is our tmpfs; devices come from the sandbox's /dev.
    }
    if (e.data_offset > archive.size() || e.size > archive.size() - e.data_offset) {
      return Fail(ctx, "data outside the archive", 0);
    }
    std::vector<std::string> parts = Split(e.path);
    ASSIGN_OR_RETURN(UniqueFd parent, OpenParent(root_fd, parts, ctx));
    const std::string& leaf = parts.back();
    ASSIGN_OR_RETURN(bool kept_dir, ClearFor(parent.get(), leaf, e.type, ctx));
    switch (e.type) {
      case image::EntryType::kDirectory: {
        if (!kept_dir && ::mkdirat(parent.get(), leaf.c_str(), 0700) != 0) {
          return Fail(ctx, "mkdir", errno);
        }
        UniqueFd dir(::openat(parent.get(), leaf.c_str(),
                              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir.valid()) {
          return Fail(ctx, "open directory", errno);
        }
        RETURN_IF_ERROR(SetMeta(dir.get(), e, ctx));
        break;
      }
      case image::EntryType::kFile: {
        UniqueFd file;
        LinkKey key{e.ino, e.dev_major, e.dev_minor, e.mode};
        auto leader = e.nlink >= 2 ? links.find(key) : links.end();
        if (leader != links.end()) {
          if (::linkat(leader->second.parent.get(), leader->second.leaf.c_str(), parent.get(),
                       leaf.c_str(), 0) != 0) {
            return Fail(ctx, "link", errno);
          }
          file = UniqueFd(
              ::openat(parent.get(), leaf.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
        } else {
          file = UniqueFd(::openat(parent.get(), leaf.c_str(),
                                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        }
        if (!file.valid()) {
          return Fail(ctx, "create", errno);
        }
        if (e.size > 0) {
          // The group's data comes with its last name (docs/formats/ramdisk.md).
          if (::ftruncate(file.get(), 0) != 0) {
            return Fail(ctx, "truncate", errno);
          }
          RETURN_IF_ERROR(WriteData(file.get(), archive.subspan(e.data_offset, e.size), ctx));
        }
        RETURN_IF_ERROR(SetMeta(file.get(), e, ctx));
        timespec times[2] = {{.tv_sec = static_cast<time_t>(e.mtime), .tv_nsec = 0},
                             {.tv_sec = static_cast<time_t>(e.mtime), .tv_nsec = 0}};
        (void)::futimens(file.get(), times);
        if (e.nlink >= 2 && leader == links.end()) {
          UniqueFd keep(::fcntl(parent.get(), F_DUPFD_CLOEXEC, 0));
          if (!keep.valid()) {
            return Fail(ctx, "dup", errno);
          }
          links.emplace(key, LinkLeader{std::move(keep), leaf});
        }
        break;
      }
      case image::EntryType::kSymlink: {
        if (::symlinkat(e.link_target.c_str(), parent.get(), leaf.c_str()) != 0) {
          return Fail(ctx, "symlink", errno);
        }
        if (::fchownat(parent.get(), leaf.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0) {
          return Fail(ctx, "chown", errno);
        }
        break;
      }
      case image::EntryType::kFifo: {
        if (::mknodat(parent.get(), leaf.c_str(), S_IFIFO | 0600, 0) != 0) {
          return Fail(ctx, "mkfifo", errno);
        }
        // A FIFO opened O_PATH cannot be fchmod()ed; the name was created just now by us and the
        // *at() calls below do not follow symlinks in `leaf` (it has no slash).
        if (::fchownat(parent.get(), leaf.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0 ||
            ::fchmodat(parent.get(), leaf.c_str(), e.mode & 07777, 0) != 0) {
          return Fail(ctx, "chown/chmod", errno);
        }
        break;
      }
      case image::EntryType::kCharDevice:
      case image::EntryType::kBlockDevice:
        break;
    }
  }
  return Ok();
}

}  // namespace enclavia::host
