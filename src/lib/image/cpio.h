// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_IMAGE_CPIO_H_
#define ENCLAVIA_LIB_IMAGE_CPIO_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/base/sink.h"
#include "lib/image/tree.h"

// Deterministic cpio "newc" archives (the SVR4 format without checksums, magic "070701"), the
// format of Linux initramfs images, and a strict reader for archives from anywhere. The exact
// writer rules are in docs/formats/ramdisk.md.
namespace enclavia::image {

struct CpioOptions {
  // mtime is every entry's modification time (seconds since the epoch; at most 0xffffffff):
  // 0 or SOURCE_DATE_EPOCH, decided by the caller.
  uint64_t mtime = 0;
};

// CpioSize returns the exact length WriteCpio produces for `tree`: per entry, the 110-byte header
// plus the NUL-terminated name padded to 4, plus the data padded to 4; then the "TRAILER!!!"
// entry. There is no padding of the whole archive. It fails as WriteCpio does on a tree that
// cannot be written (Validate errors; kLimitExceeded for a path or symlink target over 4095
// bytes or a file of 4 GiB or more, which newc's 32-bit size field cannot hold).
Result<uint64_t> CpioSize(const Tree& tree);

// WriteCpio streams the archive for `tree` to `sink`, entries in bytewise path order. The sink
// sees Writes of exactly 4 MiB except for the last. If `file_digests` is non-null it receives,
// keyed by path, the SHA-256 of every regular file's content (hard links included, empty files
// too), computed from the bytes as they are streamed; existing keys are overwritten. Fails with
// CpioSize's errors, kInvalidArgument for an mtime over 32 bits, the sink's error, or
// StreamContent's (kIo; kFailedPrecondition if a file changed since it was scanned); after a
// failure the sink has received a prefix of the archive. Files are read once, as the archive is
// written; `tree` must not change during the call.
Result<void> WriteCpio(const Tree& tree, const CpioOptions& options, ByteSink& sink,
                       std::map<std::string, Bytes>* file_digests = nullptr);

// CpioSource adapts a Tree to ByteSource: size() is CpioSize and WriteTo is WriteCpio. It keeps
// references to `tree` and `file_digests` (which may be null); both must outlive it, and the tree
// must not change while it exists. Not thread-safe (WriteTo fills the digest map).
class CpioSource final : public ByteSource {
 public:
  // Create computes the archive size, so an unwritable tree fails here rather than in WriteTo.
  static Result<CpioSource> Create(const Tree& tree, const CpioOptions& options,
                                   std::map<std::string, Bytes>* file_digests = nullptr);

  uint64_t size() const override { return size_; }
  Result<void> WriteTo(ByteSink& sink) const override;

 private:
  CpioSource(const Tree& tree, const CpioOptions& options,
             std::map<std::string, Bytes>* file_digests, uint64_t size)
      : tree_(&tree), options_(options), file_digests_(file_digests), size_(size) {}

  const Tree* tree_;
  CpioOptions options_;
  std::map<std::string, Bytes>* file_digests_;
  uint64_t size_;
};

// CpioEntry is one member of a parsed archive, its fields as stored (names normalized).
struct CpioEntry {
  std::string path;  // normalized as in tree.h; "." for an entry naming the root directory
  EntryType type = EntryType::kFile;
  uint32_t mode = 0;  // permission bits (07777); the type is in `type`
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint32_t ino = 0;
  uint64_t mtime = 0;
  uint64_t size = 0;        // the stored data length (0 for hard links that do not carry data)
  std::string link_target;  // symlinks
  Bytes sha256;             // regular files with size > 0: SHA-256 of the data; else empty
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint32_t rdev_major = 0;
  uint32_t rdev_minor = 0;
  uint64_t data_offset = 0;  // offset of the data in the archive
};

struct CpioLimits {
  size_t max_entries = size_t{1} << 20;  // not counting the trailer
  size_t max_name = 4096;                // bytes, without the NUL
  size_t max_link_target = 4096;
};

// ListCpio parses untrusted bytes as a newc archive and returns its entries in archive order,
// up to the "TRAILER!!!" entry, after which only zero bytes (block padding) may follow. Entries
// with magic "070702" (newc with checksums) are accepted and their checksums verified; in
// "070701" entries the check field must be 0. Every field must be 8 hex digits; names must be
// NUL-terminated within namesize, free of ".." and unique after normalization (a leading "./" or
// "/" is dropped); padding must be zero bytes; the file type must be one of EntryType's (no
// sockets); directories, devices and FIFOs carry no data; symlink targets are non-empty and
// NUL-free. Failures are kMalformed, or kLimitExceeded when `limits` are exceeded, with one line
// naming the entry index, its path (escaped) and offset. `archive` need not outlive the result.
Result<std::vector<CpioEntry>> ListCpio(ByteSpan archive, const CpioLimits& limits = {});

// EntryDiff is one difference between two listings. `expected`/`actual` point into the listings
// passed to DiffEntries (null on the side where the path is missing).
struct EntryDiff {
  std::string path;
  // what: "only in expected", "only in actual", "type file != directory", "mode 0644 != 0755",
  // "owner 0:0 != 1000:1000", "content differs: 5 bytes sha256 ab.. != 5 bytes sha256 cd..",
  // "link target \"a\" != \"b\"", "device 1:3 != 1:5", "hard link to \"a\" != none".
  std::string what;
  const CpioEntry* expected;
  const CpioEntry* actual;
};

// DiffEntries compares two listings by path, in bytewise path order, one EntryDiff per differing
// attribute: presence, type, permission bits, owner, content (size and SHA-256), symlink target,
// device numbers, and hard-link grouping (a changed type is reported alone). It ignores ino, nlink,
// mtime and dev numbers except to group hard links: regular files with nlink >= 2 and equal (dev,
// ino, mode) are one inode, as the kernel's unpacker sees them; each group member's content is the
// group's data, and its link is named by the group's first path. Paths are assumed unique in each
// listing (ListCpio guarantees it). The listings must outlive the result.
std::vector<EntryDiff> DiffEntries(const std::vector<CpioEntry>& expected,
                                   const std::vector<CpioEntry>& actual);

// EntryTypeName returns "file", "directory", "symlink", "char device", "block device" or "fifo".
std::string_view EntryTypeName(EntryType type);

}  // namespace enclavia::image

#endif  // ENCLAVIA_LIB_IMAGE_CPIO_H_
