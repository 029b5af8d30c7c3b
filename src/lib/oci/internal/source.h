// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_OCI_INTERNAL_SOURCE_H_
#define ENCLAVIA_LIB_OCI_INTERNAL_SOURCE_H_

#include <cstddef>
#include <memory>
#include <string>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/oci/internal/layer.h"
#include "lib/oci/internal/staging.h"

namespace enclavia::oci::internal {

// Source is the files of an image layout or docker archive, by normalized relative name
// ("index.json", "blobs/sha256/<hex>"). Contents are not verified here: callers check digests.
class Source {
 public:
  Source() = default;
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;
  Source(Source&&) = delete;
  Source& operator=(Source&&) = delete;
  virtual ~Source() = default;
  [[nodiscard]] virtual bool Exists(const std::string& name) const = 0;
  // ReadSmall returns a whole file: kNotFound if absent, kLimitExceeded if over `max` bytes.
  virtual Result<Bytes> ReadSmall(const std::string& name, size_t max) const = 0;
  // Open returns a stream over a file, read once; it must not outlive the Source.
  virtual Result<std::unique_ptr<LayerInput>> Open(const std::string& name) const = 0;
};

// OpenDirSource reads the files of the directory `root`.
Result<std::unique_ptr<Source>> OpenDirSource(const std::string& root);

// OpenTarSource indexes the tar file `path` (gzip or zstd compressed, or not) in one pass,
// extracting its regular members to a temporary directory in `temp_parent` (removed with the
// Source), or to memory if `temp_parent` is empty. Member bytes are charged to
// `budget.bytes_left`; more than `max_members` members is kLimitExceeded. Symlinks and hard links
// between members are followed (within the archive only).
Result<std::unique_ptr<Source>> OpenTarSource(const std::string& path,
                                              const std::string& temp_parent, Budget& budget,
                                              size_t max_members);

}  // namespace enclavia::oci::internal

#endif  // ENCLAVIA_LIB_OCI_INTERNAL_SOURCE_H_
