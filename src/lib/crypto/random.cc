// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/random.h"

#include <sodium.h>

#include <mutex>

#include <openssl/crypto.h>

namespace enclavia::crypto {

Result<void> Init() {
  // sodium_init() is itself idempotent, but call_once also orders the OpenSSL
  // check and makes the result visible to every thread that calls Init().
  static std::once_flag once;
  static int sodium_status = -1;
  std::call_once(once, [] { sodium_status = sodium_init(); });
  if (sodium_status < 0) {
    return Error(Code::kInternal, "crypto: sodium_init failed");
  }
  // We rely on the 3.0 provider APIs (EVP_MAC, EVP_KDF, EVP_PKEY_fromdata).
  if (OpenSSL_version_num() < 0x30000000L) {
    return Error(Code::kUnsupported, "crypto: OpenSSL 3.0 or later is required");
  }
  return Ok();
}

void RandomFill(std::span<uint8_t> out) {
  if (!out.empty()) {
    randombytes_buf(out.data(), out.size());
  }
}

Bytes RandomBytes(size_t n) {
  Bytes out(n);
  RandomFill(out);
  return out;
}

}  // namespace enclavia::crypto
