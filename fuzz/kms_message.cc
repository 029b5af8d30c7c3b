// SPDX-License-Identifier: Apache-2.0
// Fuzzes the local KMS protocol decoders: the simulator reads requests from the enclave's side,
// the enclave reads responses that crossed the host.
#include <cstddef>
#include <cstdint>

#include "lib/kms/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  enclavia::ByteSpan input(data, size);
  auto request = enclavia::kms::DecodeRequest(input);
  if (request) {
    ENCLAVIA_CHECK(enclavia::kms::EncodeRequest(*request) ==
                   enclavia::Bytes(input.begin(), input.end()));
  }
  auto response = enclavia::kms::DecodeResponse(input);
  if (response) {
    ENCLAVIA_CHECK(enclavia::kms::EncodeResponse(*response) ==
                   enclavia::Bytes(input.begin(), input.end()));
  }
  return 0;
}
