// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_IMAGE_INTERNAL_CONTENT_H_
#define ENCLAVIA_LIB_IMAGE_INTERNAL_CONTENT_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/image/tree.h"
#include "lib/sys/fd.h"

namespace enclavia::image::internal {

// kChunkSize is the size of the buffers file content is streamed through: large enough that a
// sink (hashing threads downstream) sees few writes, small enough to stay in L2/L3.
inline constexpr size_t kChunkSize = size_t{4} << 20;

// ContentReader reads a regular file entry's bytes into caller-provided buffers, so the cpio
// writer can read straight into its chunk buffer. Open checks that a PathContent file is still a
// regular file of `entry.size` bytes; Read fails with kFailedPrecondition if it ends early. The
// entry must outlive the reader. `name` is used in messages for in-memory content.
class ContentReader {
 public:
  static Result<ContentReader> Open(const Entry& entry, std::string_view name);

  uint64_t remaining() const { return size_ - done_; }
  // Read fills min(out.size(), remaining()) bytes of `out` and returns that count.
  Result<size_t> Read(std::span<uint8_t> out);
  // InMemory returns the bytes of in-memory content (empty span for PathContent).
  ByteSpan in_memory() const { return bytes_; }
  bool is_in_memory() const { return path_ == nullptr; }

 private:
  ContentReader() = default;

  sys::UniqueFd fd_;
  const std::string* path_ = nullptr;
  ByteSpan bytes_;
  uint64_t size_ = 0;
  uint64_t done_ = 0;
};

}  // namespace enclavia::image::internal

#endif  // ENCLAVIA_LIB_IMAGE_INTERNAL_CONTENT_H_
