// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CBOR_INTERNAL_KEYS_H_
#define ENCLAVIA_LIB_CBOR_INTERNAL_KEYS_H_

#include "lib/base/bytes.h"
#include "lib/cbor/cbor.h"

namespace enclavia::cbor::internal {

// BytewiseLess orders encodings as RFC 8949 §4.2.1 does: bytewise lexicographic, a proper prefix
// first.
bool BytewiseLess(const Bytes& a, const Bytes& b);

// HasDuplicateKeys reports whether two keys of `entries` have the same deterministic encoding,
// i.e. are the same data item even if written differently (maps in another entry order).
bool HasDuplicateKeys(const Value::Map& entries);

}  // namespace enclavia::cbor::internal

#endif  // ENCLAVIA_LIB_CBOR_INTERNAL_KEYS_H_
