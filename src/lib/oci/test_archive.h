// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_OCI_TEST_ARCHIVE_H_
#define ENCLAVIA_LIB_OCI_TEST_ARCHIVE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/image/tree.h"

// Test-only helpers (linked into enclavia_oci_test, not the library): tar streams and image
// layouts written with libarchive, so tests need no network and no docker.
namespace enclavia::oci::testing {

enum class Kind { kFile, kDir, kSymlink, kHardlink, kCharDevice, kBlockDevice, kFifo };

// TarEntry is one member to write. `link` is the symlink or hard-link target.
struct TarEntry {
  Kind kind = Kind::kFile;
  std::string path;
  std::string data;
  std::string link;
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t major = 0;
  uint32_t minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;  // name, value
};

TarEntry File(std::string path, std::string data, uint32_t mode = 0644, uint32_t uid = 0,
              uint32_t gid = 0);
TarEntry Dir(std::string path, uint32_t mode = 0755, uint32_t uid = 0, uint32_t gid = 0);
TarEntry Symlink(std::string path, std::string target);
TarEntry Hardlink(std::string path, std::string target);
TarEntry Device(Kind kind, std::string path, uint32_t major, uint32_t minor);
TarEntry Fifo(std::string path);

enum class Filter { kNone, kGzip, kZstd };

// MakeTar writes `entries` as a pax tar stream, compressed with `filter`. Aborts on failure.
Bytes MakeTar(const std::vector<TarEntry>& entries, Filter filter = Filter::kNone);

// MakeTarWithBinaryNames writes names as raw bytes (pax hdrcharset=BINARY), uncompressed.
Bytes MakeTarWithBinaryNames(const std::vector<TarEntry>& entries);

// TarDirectory returns a tar of the files under `dir` (names relative to it).
Bytes TarDirectory(const std::string& dir);

// Describe renders every entry of `tree` on one line, with content read back through
// image::StreamContent: "path file 0644 0:0 size=3 content=\"abc\"" and so on.
std::vector<std::string> Describe(const image::Tree& tree);

// Sha256Hex returns the lowercase hex sha256 of `data`.
std::string Sha256Hex(ByteSpan data);

// WriteBytes writes `data` to `path`, creating parent directories.
void WriteBytes(const std::string& path, ByteSpan data);

// MakeTempDir returns a fresh directory under TMPDIR (or /tmp).
std::string MakeTempDir();

}  // namespace enclavia::oci::testing

#endif  // ENCLAVIA_LIB_OCI_TEST_ARCHIVE_H_
