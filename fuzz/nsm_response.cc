// SPDX-License-Identifier: Apache-2.0
// Decodes arbitrary bytes as an NSM response, as DeviceNsm does with what /dev/nsm returns;
// whatever decodes must re-encode to bytes that decode equal and re-encode identically.
#include <cstddef>
#include <cstdint>

#include "lib/attestation/nsm_codec.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"

// Declared for -Wmissing-declarations; libFuzzer and replay_main.cc call it.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enclavia;
  Result<attestation::NsmResponse> response = attestation::DecodeResponse(ByteSpan(data, size));
  if (!response) {
    return 0;
  }
  // Shortest integers and no optional fields: the encoding is never longer than the input.
  const Bytes encoded = attestation::EncodeResponse(*response);
  ENCLAVIA_CHECK(encoded.size() <= size);
  Result<attestation::NsmResponse> again = attestation::DecodeResponse(encoded);
  ENCLAVIA_CHECK(again.has_value());
  ENCLAVIA_CHECK(*again == *response);
  ENCLAVIA_CHECK(attestation::EncodeResponse(*again) == encoded);
  return 0;
}
