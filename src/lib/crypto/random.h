// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CRYPTO_RANDOM_H_
#define ENCLAVIA_LIB_CRYPTO_RANDOM_H_

#include <cstddef>
#include <span>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

namespace enclavia::crypto {

// Init initialises libsodium (and checks OpenSSL's version). `main` calls it once, before any
// other crypto call; it is idempotent and thread-safe. Never call it from a static initializer.
Result<void> Init();

// RandomFill fills `out` from the operating system's CSPRNG (libsodium randombytes_buf).
void RandomFill(std::span<uint8_t> out);

// RandomBytes returns `n` bytes from the CSPRNG.
Bytes RandomBytes(size_t n);

}  // namespace enclavia::crypto

#endif  // ENCLAVIA_LIB_CRYPTO_RANDOM_H_
