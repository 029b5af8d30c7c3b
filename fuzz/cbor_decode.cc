// SPDX-License-Identifier: Apache-2.0
// Decodes arbitrary bytes; whatever decodes must re-encode to a fixed point that decodes equal.
#include <cstddef>
#include <cstdint>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/cbor/cbor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using enclavia::cbor::Decode;
  using enclavia::cbor::Encode;
  enclavia::Result<enclavia::cbor::Value> value = Decode(enclavia::ByteSpan(data, size));
  if (!value) {
    return 0;
  }
  const enclavia::Bytes first = Encode(*value);
  // The encoding is never longer than the input, so it fits the same limits.
  ENCLAVIA_CHECK(first.size() <= size);
  enclavia::Result<enclavia::cbor::Value> again = Decode(first);
  ENCLAVIA_CHECK(again.has_value());
  ENCLAVIA_CHECK(Encode(*again) == first);
  ENCLAVIA_CHECK(Decode(Encode(*value, enclavia::cbor::MapOrder::kAsGiven)).value() == *value);
  return 0;
}
