// SPDX-License-Identifier: Apache-2.0
// Feeds arbitrary bytes to both storage wire decoders (the host parses requests from the enclave,
// the enclave parses responses from the host). Whatever decodes must re-encode to the same bytes:
// the decoders accept canonical encodings only.
#include <cstdint>

#include "lib/storage/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enclavia;
  ByteSpan in(data, size);
  if (auto request = storage::wire::DecodeRequest(in)) {
    auto again = storage::wire::EncodeRequest(*request);
    ENCLAVIA_CHECK(again && *again == Bytes(in.begin(), in.end()));
  }
  if (auto response = storage::wire::DecodeResponse(in)) {
    auto again = storage::wire::EncodeResponse(*response);
    ENCLAVIA_CHECK(again && *again == Bytes(in.begin(), in.end()));
  }
  if (in.size() >= storage::wire::kFrameHeaderSize) {
    (void)storage::wire::ParseFrameHeader(in.first(storage::wire::kFrameHeaderSize));
  }
  return 0;
}
