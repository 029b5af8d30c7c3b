// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_COSE_SIGN1_H_
#define ENCLAVIA_LIB_COSE_SIGN1_H_

#include <cstdint>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/cbor/cbor.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/signer.h"

// COSE_Sign1 (RFC 9052 §4.2) for ES256, ES384 and EdDSA.
namespace enclavia::cose {

// Algorithm is a COSE algorithm identifier (RFC 9053 §2).
enum class Algorithm : int64_t { kEs256 = -7, kEs384 = -35, kEdDsa = -8 };

inline constexpr uint64_t kSign1Tag = 18;

enum class Tagging { kUntagged, kTagged };

// AlgorithmName returns "ES256", "ES384" or "EdDSA".
const char* AlgorithmName(Algorithm alg);

// AlgorithmForKey maps P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA.
Algorithm AlgorithmForKey(crypto::SignatureAlgorithm key_alg);

// Sign1 is a parsed, not yet verified, COSE_Sign1 message. `protected_header` holds the exact
// serialized bytes that the signature covers.
struct Sign1 {
  Bytes protected_header;
  cbor::Value unprotected;  // A map.
  Bytes payload;
  Bytes signature;
  bool tagged = false;
  Algorithm algorithm = Algorithm::kEs384;  // From the protected header (label 1).
};

// ParseSign1 parses a COSE_Sign1, untagged or with tag 18: a four-element array of protected
// header (a byte string holding a CBOR map with an `alg` of ES256/ES384/EdDSA and no `crit`),
// unprotected header (a map; `alg` may not appear there), payload (a byte string; detached
// payloads are not supported) and signature. Errors are kMalformed or kUnsupported with a message
// starting "cose: "; bytes after the message are kMalformed.
Result<Sign1> ParseSign1(ByteSpan data, const cbor::DecodeOptions& options = {});

// SigStructure returns the bytes that are signed (RFC 9052 §4.4):
// ["Signature1", protected, external_aad, payload], deterministically encoded.
Bytes SigStructure(ByteSpan protected_header, ByteSpan external_aad, ByteSpan payload);

// VerifySign1 checks `msg`'s signature with `key`. The key's type must match the algorithm in the
// protected header, and ECDSA signatures must be raw r||s of the curve's size. Any failure is
// kVerifyFailed ("cose: signature does not verify" or a key/algorithm mismatch).
Result<void> VerifySign1(const Sign1& msg, const crypto::PublicKey& key, ByteSpan external_aad = {});

// CreateSign1 signs `payload` with `key`: the protected header is {1: alg}, the unprotected header
// is `unprotected` (a map; empty by default). Output is deterministic CBOR (except for ECDSA's
// random nonce in the signature).
Result<Bytes> CreateSign1(ByteSpan payload, const crypto::PrivateKey& key, Tagging tagging,
                          const cbor::Value& unprotected = cbor::Value::MakeMap({}),
                          ByteSpan external_aad = {});

// CreateSign1 with a Signer: the same message, signed by a key this process may not hold (a
// PKCS#11 token). kInternal when the signer returns a signature of the wrong size.
Result<Bytes> CreateSign1(ByteSpan payload, const crypto::Signer& signer, Tagging tagging,
                          const cbor::Value& unprotected = cbor::Value::MakeMap({}),
                          ByteSpan external_aad = {});

}  // namespace enclavia::cose

#endif  // ENCLAVIA_LIB_COSE_SIGN1_H_
