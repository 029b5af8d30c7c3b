// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/secret.h"

#include <openssl/crypto.h>

namespace enclavia::crypto {

void Cleanse(void* data, size_t size) {
  if (data != nullptr && size != 0) {
    OPENSSL_cleanse(data, size);
  }
}

bool ConstantTimeEqual(ByteSpan a, ByteSpan b) {
  // The lengths are public; only the contents are compared in constant time.
  if (a.size() != b.size()) {
    return false;
  }
  if (a.empty()) {
    return true;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace enclavia::crypto
