// SPDX-License-Identifier: Apache-2.0
// Feeds arbitrary bytes to both egress dial decoders (the host's dialer reads requests from the
// enclave, the enclave reads responses from the host), whole and in the chunk splits the first
// byte picks: a complete message must decode to the same value however the bytes arrive, and
// re-encode to the bytes it used (the encodings are canonical).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "lib/egress/dial.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using enclavia::Bytes;
using enclavia::ByteSpan;

template <typename Decode, typename Encode>
void Check(ByteSpan in, size_t step, Decode decode, Encode encode) {
  auto whole = decode(in);
  Bytes seen;
  for (size_t off = 0; off < in.size(); off += step) {
    seen.insert(seen.end(), in.begin() + off, in.begin() + std::min(in.size(), off + step));
    auto partial = decode(ByteSpan(seen));
    if (!partial || partial->has_value()) {  // An error or a value: the same as for the whole.
      ENCLAVIA_CHECK(partial.has_value() == whole.has_value());
      if (partial) {
        ENCLAVIA_CHECK(whole->has_value());
        ENCLAVIA_CHECK((*partial)->used == (*whole)->used);
        ENCLAVIA_CHECK(encode((*partial)->value) == encode((*whole)->value));
      }
      break;
    }
  }
  if (whole && whole->has_value()) {
    ENCLAVIA_CHECK(encode((*whole)->value) == Bytes(in.begin(), in.begin() + (*whole)->used));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enclavia::egress;  // NOLINT(google-build-using-namespace): a fuzz target.
  if (size == 0) {
    return 0;
  }
  size_t step = data[0] % 8 + 1;
  ByteSpan in(data + 1, size - 1);
  Check(in, step, DecodeDialRequest, EncodeDialRequest);
  Check(in, step, DecodeDialResponse, EncodeDialResponse);
  return 0;
}
