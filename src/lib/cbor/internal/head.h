// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CBOR_INTERNAL_HEAD_H_
#define ENCLAVIA_LIB_CBOR_INTERNAL_HEAD_H_

#include <cstddef>
#include <cstdint>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// One CBOR data item head (RFC 8949 §3). We parse heads ourselves rather than with libcbor:
// Debian 12 ships libcbor without a static library, and the enclave runtime is linked static.
namespace enclavia::cbor::internal {

// Head is one data item head, with a definite string's contents.
struct Head {
  enum class Kind {
    kUnsigned,         // arg = value.
    kNegative,         // arg = n for the value -1 - n.
    kBytes,            // Definite byte string; data = contents.
    kText,             // Definite text string; data = contents (UTF-8 not checked here).
    kBytesStart,       // Indefinite-length byte string (0x5f).
    kTextStart,        // Indefinite-length text string (0x7f).
    kArray,            // arg = number of items.
    kIndefiniteArray,  // 0x9f.
    kMap,              // arg = number of pairs.
    kIndefiniteMap,    // 0xbf.
    kTag,              // arg = tag number.
    kFloat,            // number = the half, single or double, widened exactly.
    kBool,             // arg = 0 or 1.
    kNull,
    kUndefined,
    kSimple,  // arg = 0..19 or 32..255.
    kBreak,   // 0xff.
  };
  Kind kind = Kind::kNull;
  uint8_t initial = 0;    // The initial byte: major type << 5 | additional information.
  uint8_t arg_bytes = 0;  // Bytes of argument after the initial byte: 0, 1, 2, 4 or 8.
  uint64_t arg = 0;       // Integer, length, tag, bool or simple value.
  double number = 0;      // kFloat only.
  ByteSpan data;          // kBytes and kText: points into the input.
  size_t size = 0;        // Bytes used: initial byte, argument and string contents.

  uint8_t major() const { return initial >> 5; }
  uint8_t info() const { return initial & 0x1f; }
  // IsShortest reports whether the argument uses the shortest form for its value (RFC 8949
  // §4.2.1). ReadHead accepts longer forms; callers that need preferred encoding check this.
  bool IsShortest() const;
};

// ReadHead parses the head at the start of `data`, and a definite string's contents, without
// reading past `data`. Errors (kMalformed, one line starting "cbor: "): "cbor: truncated..."
// when `data` ends inside the head or the string, reserved additional information 28..30, the
// indefinite marker on major types 0, 1 and 6, and two-byte simple values below 32.
Result<Head> ReadHead(ByteSpan data);

}  // namespace enclavia::cbor::internal

#endif  // ENCLAVIA_LIB_CBOR_INTERNAL_HEAD_H_
