// SPDX-License-Identifier: Apache-2.0
// Decodes arbitrary bytes; whatever decodes must re-encode to a fixed point that decodes equal.
#include <cstddef>
#include <cstdint>
#include <limits>

#include "lib/cbor/cbor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace cbor = enclavia::cbor;
  enclavia::Result<cbor::Value> value = cbor::Decode(enclavia::ByteSpan(data, size));
  if (!value) {
    return 0;
  }
  // Definite heads can be a few bytes longer than an indefinite item's 0x9f..0xff.
  cbor::DecodeOptions unlimited_size;
  unlimited_size.max_input_size = std::numeric_limits<size_t>::max();
  const enclavia::Bytes first = cbor::Encode(*value);
  enclavia::Result<cbor::Value> again = cbor::Decode(first, unlimited_size);
  ENCLAVIA_CHECK(again.has_value());
  ENCLAVIA_CHECK(cbor::Encode(*again) == first);
  const enclavia::Bytes as_given = cbor::Encode(*value, cbor::MapOrder::kAsGiven);
  ENCLAVIA_CHECK(cbor::Decode(as_given, unlimited_size).value() == *value);
  return 0;
}
