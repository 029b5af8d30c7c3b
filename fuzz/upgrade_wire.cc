// SPDX-License-Identifier: Apache-2.0
// Fuzzes the upgrade wire decoder (untrusted both ways: the enclave reads what the host sends on
// its upgrade service, the host reads what an enclave answers).
#include <cstddef>
#include <cstdint>

#include "lib/upgrade/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  enclavia::ByteSpan input(data, size);
  auto message = enclavia::upgrade::DecodeMessage(input);
  if (message) {
    // Decoding is canonical: a decoded message re-encodes to exactly the input.
    ENCLAVIA_CHECK(enclavia::upgrade::EncodeMessage(*message) ==
                   enclavia::Bytes(input.begin(), input.end()));
  }
  return 0;
}
