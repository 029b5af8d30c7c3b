// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CHANNEL_INTERNAL_CANONICAL_H_
#define ENCLAVIA_LIB_CHANNEL_INTERNAL_CANONICAL_H_

#include <initializer_list>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/cbor/cbor.h"

namespace enclavia::channel::internal {

// DecodeCanonical decodes `data` as one definite-length map whose keys are all in `keys`, whose
// encoding is the deterministic one (re-encoding gives the same bytes: one message, one byte
// form, no smuggled alternatives for a tamperer to play with) and whose "v" is kProtocolVersion.
// Errors start "`prefix`: `name` …": kMalformed, or kUnsupported for another version. `limits`
// bounds the decoder (indefinite lengths and undefined are refused whatever it says).
Result<cbor::Value> DecodeCanonical(ByteSpan data, std::string_view prefix, std::string_view name,
                                    std::initializer_list<std::string_view> keys,
                                    cbor::DecodeOptions limits = {});

}  // namespace enclavia::channel::internal

#endif  // ENCLAVIA_LIB_CHANNEL_INTERNAL_CANONICAL_H_
