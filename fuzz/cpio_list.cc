// SPDX-License-Identifier: Apache-2.0
// Lists arbitrary bytes as a cpio archive; whatever parses must lie inside the input and diff
// empty against itself.
#include <cstddef>
#include <cstdint>

#include "lib/image/cpio.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace image = enclavia::image;
  image::CpioLimits limits;
  limits.max_entries = 4096;  // a 64 KiB input holds at most ~580 entries anyway
  enclavia::Result<std::vector<image::CpioEntry>> entries =
      image::ListCpio(enclavia::ByteSpan(data, size), limits);
  if (!entries) {
    return 0;
  }
  for (const image::CpioEntry& entry : *entries) {
    if (entry.data_offset > size || entry.size > size - entry.data_offset ||
        entry.data_offset % 4 != 0 || entry.path.empty()) {
      __builtin_trap();
    }
  }
  if (!image::DiffEntries(*entries, *entries).empty()) {
    __builtin_trap();
  }
  return 0;
}
