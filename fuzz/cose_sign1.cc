// SPDX-License-Identifier: Apache-2.0
// Parses arbitrary bytes as COSE_Sign1 and checks a fixed P-256 key against them; a parsed
// message must survive re-encoding of its Sig_structure.
#include <cstdint>

#include "lib/cose/sign1.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enclavia;
  static const auto* key = new crypto::PrivateKey(
      crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEcdsaP256Sha256));
  auto msg = cose::ParseSign1(ByteSpan(data, size));
  if (!msg) {
    return 0;
  }
  Bytes tbs = cose::SigStructure(msg->protected_header, {}, msg->payload);
  ENCLAVIA_CHECK(tbs.size() > msg->payload.size());
  // A random key never verifies someone else's signature.
  ENCLAVIA_CHECK(!cose::VerifySign1(*msg, key->public_key()));
  return 0;
}
