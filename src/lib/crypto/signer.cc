// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/signer.h"

#include <utility>

namespace enclavia::crypto {

MemorySigner::MemorySigner(PrivateKey key, std::string description)
    : key_(std::move(key)), public_key_(key_.public_key()), description_(std::move(description)) {}

}  // namespace enclavia::crypto
