// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CRYPTO_SIGNER_H_
#define ENCLAVIA_LIB_CRYPTO_SIGNER_H_

#include <memory>
#include <string>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/keys.h"

// A key that signs without handing out its private half: a key in memory, a PKCS#11 token
// (src/control/keys), a key the control plane keeps. Whatever holds it, signatures come out in
// COSE's raw form: Ed25519 64 bytes, ECDSA r||s of the curve's size (P-256: 64 bytes).
namespace enclavia::crypto {

class Signer {
 public:
  virtual ~Signer() = default;
  virtual SignatureAlgorithm algorithm() const = 0;
  virtual const PublicKey& public_key() const = 0;
  // Sign signs `message` (ECDSA hashes it with the curve's SHA-2 first). Errors are one line
  // naming the key's kind ("pkcs11: token not present").
  virtual Result<Bytes> Sign(ByteSpan message) const = 0;
  // Describe names the key for humans, without secrets ("file key.pem", "pkcs11 slot 0 'ctl'").
  virtual std::string Describe() const = 0;
};

// MemorySigner signs with a PrivateKey held in this process.
class MemorySigner final : public Signer {
 public:
  explicit MemorySigner(PrivateKey key, std::string description = "in-memory key");
  SignatureAlgorithm algorithm() const override { return key_.algorithm(); }
  const PublicKey& public_key() const override { return public_key_; }
  Result<Bytes> Sign(ByteSpan message) const override { return key_.Sign(message); }
  std::string Describe() const override { return description_; }

 private:
  PrivateKey key_;
  PublicKey public_key_;
  std::string description_;
};

}  // namespace enclavia::crypto

#endif  // ENCLAVIA_LIB_CRYPTO_SIGNER_H_
