// SPDX-License-Identifier: Apache-2.0
#include "lib/base/bytes.h"

namespace enclavia {

Bytes Concat(std::initializer_list<ByteSpan> parts) {
  size_t total = 0;
  for (ByteSpan p : parts) {
    total += p.size();
  }
  Bytes out;
  out.reserve(total);
  for (ByteSpan p : parts) {
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

}  // namespace enclavia
