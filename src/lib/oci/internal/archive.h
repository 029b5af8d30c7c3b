// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_OCI_INTERNAL_ARCHIVE_H_
#define ENCLAVIA_LIB_OCI_INTERNAL_ARCHIVE_H_

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <string>

#include "lib/base/result.h"

// RAII for libarchive (the only C library of lib/oci), and its error messages.
namespace enclavia::oci::internal {

struct ArchiveReadFree {
  void operator()(archive* a) const noexcept { archive_read_free(a); }
};
struct ArchiveWriteFree {
  void operator()(archive* a) const noexcept { archive_write_free(a); }
};
using ReadArchive = std::unique_ptr<archive, ArchiveReadFree>;
using WriteArchive = std::unique_ptr<archive, ArchiveWriteFree>;

// ArchiveMessage returns libarchive's last error string for `a`, or "unknown error".
inline std::string ArchiveMessage(archive* a) {
  const char* s = archive_error_string(a);
  return s != nullptr ? std::string(s) : std::string("unknown error");
}

// NewDecompressingReader returns a reader with only the gzip and zstd filters enabled (never
// ones that would run an external program): libarchive's "all" set includes filters that fork
// helpers such as lrzip, which untrusted input must not reach.
Result<ReadArchive> NewDecompressingReader();

}  // namespace enclavia::oci::internal

#endif  // ENCLAVIA_LIB_OCI_INTERNAL_ARCHIVE_H_
