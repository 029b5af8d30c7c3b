// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_OCI_INTERNAL_LAYER_H_
#define ENCLAVIA_LIB_OCI_INTERNAL_LAYER_H_

#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/image/tree.h"
#include "lib/oci/import.h"
#include "lib/oci/internal/staging.h"
#include "lib/sys/fd.h"

// Applying a layer happens in two steps so that nothing reaches the tree before the layer's
// digests are known to be right: ReadLayer streams the blob once (stored bytes -> decompressor
// -> tar reader -> staging), hashing the stored and the uncompressed bytes on the way, and
// returns the layer's changes; CommitLayer applies them (whiteouts first, then entries in order).
namespace enclavia::oci::internal {

// LayerInput is the stored (possibly compressed) bytes of a layer, read front to back once.
class LayerInput {
 public:
  LayerInput() = default;
  LayerInput(const LayerInput&) = delete;
  LayerInput& operator=(const LayerInput&) = delete;
  LayerInput(LayerInput&&) = delete;
  LayerInput& operator=(LayerInput&&) = delete;
  virtual ~LayerInput() = default;
  // Read fills up to out.size() bytes; 0 only at the end.
  virtual Result<size_t> Read(std::span<uint8_t> out) = 0;
};

class SpanInput final : public LayerInput {
 public:
  explicit SpanInput(ByteSpan data) : data_(data) {}
  Result<size_t> Read(std::span<uint8_t> out) override;

 private:
  ByteSpan data_;
};

// FdInput reads a file it owns from its current position; `name` is used in messages.
class FdInput final : public LayerInput {
 public:
  FdInput(sys::UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  Result<size_t> Read(std::span<uint8_t> out) override;

 private:
  sys::UniqueFd fd_;
  std::string name_;
};

// LayerRules is what ImportOptions says about single entries, with `devices` normalized.
struct LayerRules {
  size_t max_entries = 0;
  std::set<std::string> devices;
};
Result<LayerRules> MakeLayerRules(const ImportOptions& options);

enum class Compression { kNone, kGzip, kZstd };

// PendingEntry is one tar entry to put into the tree. For a hard link, `hardlink_target` is the
// normalized path it links to and `entry` is completed from the target when committed.
struct PendingEntry {
  std::string path;
  image::Entry entry;
  std::string hardlink_target;
};

// ParsedLayer is a layer's changes and what was learned while reading it.
struct ParsedLayer {
  std::vector<std::string> whiteouts;    // paths deleted from lower layers
  std::vector<std::string> opaque_dirs;  // directories emptied of lower content ("" = root)
  std::vector<PendingEntry> entries;     // in tar order
  std::vector<std::string> warnings;
  Bytes blob_sha256;  // of the stored bytes
  uint64_t blob_size = 0;
  Bytes diff_sha256;  // of the uncompressed tar stream
  uint64_t diff_size = 0;
  Compression compression = Compression::kNone;
};

// ReadLayer reads one layer from `input` to its end. Uncompressed bytes are charged to
// `budget.bytes_left`, in-memory file contents to `budget.memory_left`. If it fails and
// `blob_sha256_on_error` is not null, that is set to the sha256 of the whole stored stream (or
// emptied if the input could not be read to its end), so callers can report a corrupt blob as a
// digest mismatch.
Result<ParsedLayer> ReadLayer(LayerInput& input, Staging& staging, Budget& budget,
                              const LayerRules& rules, Bytes* blob_sha256_on_error = nullptr);

// CommitLayer applies `layer` to `tree` (see ApplyLayer in import.h for the rules). Hard-link
// copies held in memory are charged to `budget.memory_left` when `in_memory`.
Result<void> CommitLayer(ParsedLayer& layer, image::Tree& tree, Budget& budget,
                         const LayerRules& rules, bool in_memory);

}  // namespace enclavia::oci::internal

#endif  // ENCLAVIA_LIB_OCI_INTERNAL_LAYER_H_
