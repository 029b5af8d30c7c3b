// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_KMS_LOCAL_KMS_H_
#define ENCLAVIA_LIB_KMS_LOCAL_KMS_H_

#include <memory>
#include <mutex>
#include <string>

#include "lib/attestation/nsm.h"
#include "lib/kms/kms.h"
#include "lib/kms/protocol.h"
#include "lib/net/address.h"

namespace enclavia::kms {

// LocalKmsClient is the enclave's Kms on the local platform: it talks to the KMS simulator
// (src/host/kms) at `service` (the enclave's vsock port to the parent, e.g.
// unix:/run/enclavia/vsock/parent-5200.sock). Per call it makes a fresh X25519 key pair, asks the
// NSM for a document whose public_key is that key, sends the request with the document, and opens
// the data key the simulator sealed to it; the private key never leaves this call. One connection
// per call. Thread-safe (calls are serialised: the NSM is not).
class LocalKmsClient : public Kms {
 public:
  LocalKmsClient(std::shared_ptr<attestation::Nsm> nsm, net::Address service);

  Result<DataKey> GenerateDataKey(const std::string& key_id) override;
  Result<crypto::SecretBytes> Decrypt(ByteSpan ciphertext_blob) override;
  Result<Bytes> Encrypt(const std::string& key_id, ByteSpan plaintext) override;

 private:
  // Call attests, sends `request` with the document and returns the opened key (Encrypt: empty)
  // and the new blob (GenerateDataKey and Encrypt: never empty).
  Result<DataKey> Call(KmsRequest request);

  std::mutex mu_;
  std::shared_ptr<attestation::Nsm> nsm_;  // Guarded by mu_.
  const net::Address service_;
};

}  // namespace enclavia::kms

#endif  // ENCLAVIA_LIB_KMS_LOCAL_KMS_H_
