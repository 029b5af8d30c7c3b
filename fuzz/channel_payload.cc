// SPDX-License-Identifier: Apache-2.0
// Fuzzes the channel's handshake payload decoders (untrusted: message 1 reaches the enclave in
// clear, message 2's payload comes from whoever answered the client).
#include <cstddef>
#include <cstdint>

#include "lib/channel/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  enclavia::ByteSpan input(data, size);
  (void)enclavia::channel::DecodeClientHello(input);
  auto hello = enclavia::channel::DecodeServerHello(input);
  if (hello) {
    // A decoded payload re-encodes to exactly the input: decoding is canonical.
    auto again = enclavia::channel::EncodeServerHello(*hello);
    if (again != enclavia::Bytes(input.begin(), input.end())) {
      __builtin_trap();  // ENCLAVIA_CHECK without the message: decoding must be canonical.
    }
  }
  (void)enclavia::channel::DecodeClientFinish(input);
  return 0;
}
