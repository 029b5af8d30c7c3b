// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BASE_FILE_H_
#define ENCLAVIA_LIB_BASE_FILE_H_

#include <cstddef>
#include <string>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

namespace enclavia {

// ReadFile returns the contents of `path`, or kLimitExceeded if it is larger than `max_size`
// (checked while reading, so a growing or special file cannot exhaust memory), or kIo.
Result<Bytes> ReadFile(const std::string& path, size_t max_size);

// WriteFileAtomic writes `data` to a temporary file beside `path` with permissions `mode`, fsyncs
// it, and renames it over `path`: readers see the old or the new contents, never a mix.
Result<void> WriteFileAtomic(const std::string& path, ByteSpan data, unsigned mode = 0644);

}  // namespace enclavia

#endif  // ENCLAVIA_LIB_BASE_FILE_H_
