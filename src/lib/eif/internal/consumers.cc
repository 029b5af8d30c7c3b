// SPDX-License-Identifier: Apache-2.0
#include "lib/eif/internal/consumers.h"

#include <fcntl.h>
#include <zlib.h>

#include "lib/sys/fd.h"

namespace enclavia::eif::internal {

Result<void> Pcr0Hasher::Consume(ByteSpan data, Stream /*stream*/) {
  hasher_.Update(data);
  return Ok();
}

Result<void> Pcr12Hasher::Consume(ByteSpan data, Stream stream) {
  (stream == Stream::kBoot ? boot_ : app_).Update(data);
  return Ok();
}

Result<void> Crc32::Consume(ByteSpan data, Stream /*stream*/) {
  crc_ = CrcUpdate(crc_, data);
  length_ += data.size();
  return Ok();
}

Result<void> FileWriter::Consume(ByteSpan data, Stream /*stream*/) {
  auto r = sys::PwriteFull(fd_, data, offset_);
  if (!r) {
    return std::move(r).error().WithContext("eif: writing the image");
  }
  // Start writeback now (Linux), so that the fsync before the rename has little left to wait
  // for; without it, the whole image would be flushed only at the end. Advisory: errors are
  // ignored, and the fsync reports any that matter.
  (void)::sync_file_range(fd_, static_cast<off_t>(offset_), static_cast<off_t>(data.size()),
                          SYNC_FILE_RANGE_WRITE);
  offset_ += data.size();
  return Ok();
}

uint32_t CrcUpdate(uint32_t crc, ByteSpan data) {
  // crc32_z takes a size_t length (zlib >= 1.2.9), so spans over 4 GiB need no splitting.
  return static_cast<uint32_t>(crc32_z(crc, data.data(), data.size()));
}

uint32_t CrcCombine(uint32_t crc_a, uint32_t crc_b, uint64_t length_b) {
  // z_off_t is long: 64 bits on the LP64 targets we build for.
  static_assert(sizeof(z_off_t) == 8);
  return static_cast<uint32_t>(crc32_combine(crc_a, crc_b, static_cast<z_off_t>(length_b)));
}

}  // namespace enclavia::eif::internal
