// SPDX-License-Identifier: Apache-2.0
// Applies arbitrary bytes as an image layer; whatever applies must leave a consistent tree, within
// the limits, with no whiteout markers and every file's content of its recorded size.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/base/sink.h"
#include "lib/oci/import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace image = enclavia::image;
  enclavia::oci::ImportOptions options;  // no staging_dir: contents stay in memory
  options.max_total_bytes = 1 << 20;
  options.max_entries = 1000;
  options.devices = {"dev/null"};
  image::Tree tree;
  std::vector<std::string> warnings;
  if (!enclavia::oci::ApplyLayer(enclavia::ByteSpan(data, size), tree, options, &warnings)) {
    return 0;
  }
  ENCLAVIA_CHECK(tree.Validate().has_value());
  ENCLAVIA_CHECK(tree.size() <= options.max_entries);
  for (const auto& [path, entry] : tree.entries()) {
    const size_t slash = path.rfind('/');
    ENCLAVIA_CHECK(path.compare(slash == std::string::npos ? 0 : slash + 1, 4, ".wh.") != 0);
    if (entry.type == image::EntryType::kFile) {
      enclavia::CountingSink sink;
      ENCLAVIA_CHECK(image::StreamContent(entry, sink).has_value());
      ENCLAVIA_CHECK(sink.count() == entry.size);
    }
  }
  return 0;
}
