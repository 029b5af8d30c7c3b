// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CRYPTO_INTERNAL_UTIL_H_
#define ENCLAVIA_LIB_CRYPTO_INTERNAL_UTIL_H_

#include <climits>
#include <cstdint>
#include <string>
#include <string_view>

#include <openssl/err.h>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

namespace enclavia::crypto::internal {

// NonNull returns a pointer that is never null: OpenSSL reads a null buffer as
// "absent" even with length zero, so an empty span is passed as a pointer to
// this byte.
inline const uint8_t* NonNull(ByteSpan data) {
  static constexpr uint8_t kEmpty = 0;
  return data.empty() ? &kEmpty : data.data();
}

// FitsLong and FitsInt check a size before it is handed to OpenSSL's signed
// length types.
inline bool FitsLong(size_t n) { return n <= static_cast<size_t>(LONG_MAX); }
inline bool FitsInt(size_t n) { return n <= static_cast<size_t>(INT_MAX); }

// OsslError clears the thread's OpenSSL error queue (so stale entries cannot
// confuse a later call) and returns an Error. The queue's text is dropped on
// purpose: it can carry detail about a failed verification.
inline Error OsslError(Code code, std::string message) {
  ERR_clear_error();
  return Error(code, std::move(message));
}

}  // namespace enclavia::crypto::internal

#endif  // ENCLAVIA_LIB_CRYPTO_INTERNAL_UTIL_H_
