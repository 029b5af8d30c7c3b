// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_IMAGE_SCAN_H_
#define ENCLAVIA_LIB_IMAGE_SCAN_H_

#include <cstddef>
#include <string>
#include <vector>

#include "lib/base/result.h"
#include "lib/image/tree.h"

namespace enclavia::image {

struct ScanOptions {
  // devices lists the device nodes the Enclaviafile declares, as relative paths ("dev/console";
  // normalized here). Any other device node found is an error. Declared paths that are missing
  // or are not device nodes are not an error.
  std::vector<std::string> devices;
};

// kMaxScanEntries and kMaxScanDepth bound ScanDirectory (kLimitExceeded beyond them).
inline constexpr size_t kMaxScanEntries = size_t{1} << 20;
inline constexpr size_t kMaxScanDepth = 256;

// ScanDirectory walks the directory `root` (itself followed if it is a symlink; nothing below
// it is) and returns a Tree of everything under it, with metadata normalized so the result does
// not depend on who checked the tree out, the umask, mtimes or creation order (the rules and
// their reasons are in docs/formats/ramdisk.md): owner 0:0; directories 0755; regular files
// 0755 if any execute bit is set, else 0644; symlinks 0777 with the target verbatim; FIFOs 0644;
// declared device nodes keep their permission bits (without setuid/setgid/sticky) and rdev.
// Regular files sharing (st_dev, st_ino) become a hard-link group led by the bytewise-first
// path. File contents are PathContent with absolute paths and are not read here; sizes come
// from lstat.
//
// Errors name the path: kIo for anything unreadable (a directory that cannot be listed, a file
// the caller cannot read), kUnsupported for sockets, kInvalidArgument for undeclared device
// nodes or bad `options`, kLimitExceeded past kMaxScanEntries entries or kMaxScanDepth levels.
// The walk holds one descriptor per directory level.
Result<Tree> ScanDirectory(const std::string& root, const ScanOptions& options = {});

}  // namespace enclavia::image

#endif  // ENCLAVIA_LIB_IMAGE_SCAN_H_
