// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_IMAGE_TREE_H_
#define ENCLAVIA_LIB_IMAGE_TREE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/base/sink.h"

// A Tree is a file system image held as metadata plus where each file's bytes come from. It is
// what the builder assembles (runtime binaries, an application rootfs, an OCI image, generated
// config files) and what a deterministic cpio archive (cpio.h) is written from.
namespace enclavia::image {

enum class EntryType { kFile, kDirectory, kSymlink, kCharDevice, kBlockDevice, kFifo };

// FileContent says where a regular file's bytes are: a file on the build machine (read when the
// archive is written; its size must not change in between) or bytes held in memory.
struct PathContent {
  std::string path;  // absolute path on the build machine
};
using FileContent = std::variant<Bytes, PathContent>;

// Entry is one node. Paths are relative, normalized and '/'-separated: no leading '/', no
// trailing '/', no empty, "." or ".." components ("bin/hello"). The root itself has no entry.
struct Entry {
  EntryType type = EntryType::kFile;
  uint32_t mode = 0644;  // permission bits only (07777); the type lives in `type`
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;        // regular files: content length; others 0
  FileContent content;      // regular files only
  std::string link_target;  // symlinks: the target, verbatim
  // Hard links: a regular file whose `hardlink_to` names another regular file's path (the group
  // leader) shares its inode. The leader must exist and must not itself be a hard link. A link's
  // own mode, uid, gid, size and content are ignored: the inode's are the leader's.
  std::string hardlink_to;
  uint32_t rdev_major = 0;  // device nodes only
  uint32_t rdev_minor = 0;
};

// NormalizePath returns `path` in the form above ("./a//b/" -> "a/b", "/a/b" -> "a/b"), or
// kInvalidArgument for paths with ".." components, NUL bytes, or that name the root.
Result<std::string> NormalizePath(std::string_view path);

// Tree maps normalized paths to entries, iterated in bytewise path order (so every directory
// comes before its contents). Adding an entry whose parent directories are missing creates them
// (mode 0755, owner 0:0). Not thread-safe; const methods may run concurrently.
class Tree {
 public:
  // Map compares bytewise (std::less<> on std::string is memcmp order) and allows lookups by
  // std::string_view.
  using Map = std::map<std::string, Entry, std::less<>>;

  // Put adds or replaces the entry at `path` (normalized first). Replacing a directory with a
  // non-directory removes everything under it; replacing it with a directory keeps its contents.
  // Fails if `path` is invalid or an ancestor is an existing non-directory.
  Result<void> Put(std::string_view path, Entry entry);
  // Remove deletes `path` and everything under it; true if anything was removed. Hard links to a
  // removed file are left dangling (Validate reports them).
  bool Remove(std::string_view path);
  // RemoveChildren deletes everything under directory `path`, keeping `path` (OCI opaque dirs).
  // "", "." and "/" name the root: everything is removed.
  void RemoveChildren(std::string_view path);
  // Find returns the entry at `path` (normalized first), or null. The pointer is valid until the
  // next Put, Remove, RemoveChildren or Merge.
  const Entry* Find(std::string_view path) const;
  Entry* Find(std::string_view path);

  const Map& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

  // Merge puts every entry of `other` under `prefix` ("" for the root), replacing conflicts, in
  // `other`'s order. Hard-link targets are rewritten to stay inside the merged copy. Fails like
  // Put (a prefix or ancestor that is a non-directory); entries merged before the failure stay.
  // `other` must not be *this.
  Result<void> Merge(const Tree& other, std::string_view prefix = "");

  // Validate checks cross-entry invariants: every parent is a directory, modes fit 07777, hard
  // links are regular files naming an existing, non-link regular file, in-memory content is
  // `size` bytes, symlink targets are non-empty without NUL. kInvalidArgument naming the first
  // bad path.
  Result<void> Validate() const;

 private:
  Map entries_;
};

// StreamContent writes the bytes of regular file `entry` to `sink`: in-memory bytes in one Write,
// path content read through one buffer of up to 4 MiB. kIo, or kFailedPrecondition if the file
// is no longer a regular file of `entry.size` bytes (changed since it was scanned; growth while
// it is being read is not detected). For a hard link, pass the leader's entry.
Result<void> StreamContent(const Entry& entry, ByteSink& sink);

// FileSource is a file on the build machine as a ByteSource (a kernel, a runtime binary): its size
// is fixed when it is opened, and WriteTo streams it through StreamContent, so a file that changed
// size in between fails rather than producing a different stream.
class FileSource final : public ByteSource {
 public:
  static Result<FileSource> Open(const std::string& path);
  uint64_t size() const override { return size_; }
  Result<void> WriteTo(ByteSink& sink) const override;

 private:
  FileSource(std::string path, uint64_t size) : path_(std::move(path)), size_(size) {}
  std::string path_;
  uint64_t size_;
};

}  // namespace enclavia::image

#endif  // ENCLAVIA_LIB_IMAGE_TREE_H_
