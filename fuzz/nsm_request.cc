// SPDX-License-Identifier: Apache-2.0
// Decodes arbitrary bytes as an NSM request, as the local provider's NSM server does with what an
// enclave sends to /dev/nsm; whatever decodes must re-encode to bytes that decode equal and
// re-encode identically.
#include <cstddef>
#include <cstdint>

#include "lib/attestation/nsm_codec.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"

// Declared for -Wmissing-declarations; libFuzzer and replay_main.cc call it.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enclavia;
  Result<attestation::NsmRequest> request = attestation::DecodeRequest(ByteSpan(data, size));
  if (!request) {
    return 0;
  }
  // An absent Attestation option is re-encoded as null, so no size bound against the input.
  const Bytes encoded = attestation::EncodeRequest(*request);
  Result<attestation::NsmRequest> again = attestation::DecodeRequest(encoded);
  ENCLAVIA_CHECK(again.has_value());
  ENCLAVIA_CHECK(*again == *request);
  ENCLAVIA_CHECK(attestation::EncodeRequest(*again) == encoded);
  return 0;
}
