// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CRYPTO_INTERNAL_UTIL_H_
#define ENCLAVIA_LIB_CRYPTO_INTERNAL_UTIL_H_

#include <climits>
#include <cstdint>
#include <string>
#include <string_view>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/ossl.h"

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

// NoPassphrase refuses to supply a passphrase. Passing it (instead of nullptr) keeps OpenSSL
// from prompting on the terminal when it meets an encrypted PEM.
inline int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

// MemBio wraps `text` (which must outlive the BIO) in a read-only memory BIO.
inline Result<ossl::Ptr<BIO>> MemBio(std::string_view text) {
  if (!FitsInt(text.size())) {
    return Error(Code::kLimitExceeded, "pem: input too large");
  }
  ossl::Ptr<BIO> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (bio == nullptr) {
    return OsslError(Code::kInternal, "pem: BIO_new_mem_buf failed");
  }
  return bio;
}

// BioText views what has been written to a memory BIO; valid until the BIO changes.
inline std::string_view BioText(BIO* bio) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  ENCLAVIA_CHECK(mem != nullptr);
  return {mem->data, mem->length};
}

}  // namespace enclavia::crypto::internal

#endif  // ENCLAVIA_LIB_CRYPTO_INTERNAL_UTIL_H_
