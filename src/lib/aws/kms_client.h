// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_AWS_KMS_CLIENT_H_
#define ENCLAVIA_LIB_AWS_KMS_CLIENT_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "lib/attestation/nsm.h"
#include "lib/aws/http.h"
#include "lib/aws/sigv4.h"
#include "lib/base/encoding.h"
#include "lib/kms/kms.h"

// AwsKmsClient implements kms::Kms over the AWS KMS JSON API (TrentService GenerateDataKey,
// Decrypt and Encrypt), GenerateDataKey and Decrypt always with the Recipient parameter: for each call it makes a fresh RSA-2048 key
// pair, asks the NSM for an attestation document whose public_key is that key (DER
// SubjectPublicKeyInfo), and AWS KMS returns the data key only as CiphertextForRecipient, a CMS
// EnvelopedData encrypted to it (RSAES_OAEP_SHA_256), which is opened here. The plaintext never
// crosses the host; a response that carries a Plaintext field anyway is refused.
//
// Everything the transport returns is untrusted. The transport must terminate TLS inside the
// enclave (it is injected; through the parent's vsock proxy in production), otherwise the host
// could answer in KMS's place.
namespace enclavia::aws {

struct AwsKmsOptions {
  std::string region;    // "eu-west-1".
  std::string endpoint;  // Empty: "https://kms.<region>.amazonaws.com/".
  // credentials is asked once per call (so temporary credentials can rotate).
  std::function<Result<Credentials>()> credentials;
  HttpTransport transport;
  // nsm must outlive the client; calls to it are serialised by the client.
  attestation::Nsm* nsm = nullptr;
  std::function<SystemTime()> clock;  // Defaults to the system clock.
};

class AwsKmsClient : public kms::Kms {
 public:
  // Create checks the options: kInvalidArgument for a missing region, transport, credentials
  // provider or NSM, or an endpoint that is not an http(s) URL.
  static Result<std::unique_ptr<AwsKmsClient>> Create(AwsKmsOptions options);

  // GenerateDataKey asks for an AES_256 data key under `key_id` (key id, ARN or alias).
  // Errors: kPolicyViolation (AccessDeniedException: the key policy rejected the attestation),
  // kNotFound, kFailedPrecondition (disabled key...), kUnavailable (throttling, 5xx, transport),
  // kMalformed (a response that does not parse), kVerifyFailed (CiphertextForRecipient does not
  // open under this call's key). Thread-safe.
  Result<kms::DataKey> GenerateDataKey(const std::string& key_id) override;
  // Decrypt returns the data key inside `ciphertext_blob`; kVerifyFailed for
  // InvalidCiphertextException or an unopenable recipient envelope; other errors as above.
  Result<crypto::SecretBytes> Decrypt(ByteSpan ciphertext_blob) override;
  // Encrypt wraps `plaintext` (1..4096 bytes) under `key_id` with KMS Encrypt
  // (SYMMETRIC_DEFAULT). KMS's Encrypt takes no Recipient, so this call is not attested: the
  // plaintext is protected by the TLS the transport terminates inside the enclave, and the key
  // policy (not the attestation) decides who may call it. Errors as above.
  Result<Bytes> Encrypt(const std::string& key_id, ByteSpan plaintext) override;

 private:
  explicit AwsKmsClient(AwsKmsOptions options) : options_(std::move(options)) {}
  // Call performs one attested request whose JSON body is `fields` (string members) plus
  // Recipient; it returns the opened data key and the CiphertextBlob, if the reply has one.
  Result<kms::DataKey> Call(std::string_view operation,
                            const std::vector<std::pair<std::string, std::string>>& fields);
  // Post signs and sends one request with JSON `body` (wiped after sending) and returns the
  // body of a 200 reply; KMS errors as described above.
  Result<std::string> Post(std::string_view operation, std::string body);

  AwsKmsOptions options_;
  std::string host_;
  std::string url_;
  std::mutex nsm_mu_;
};

}  // namespace enclavia::aws

#endif  // ENCLAVIA_LIB_AWS_KMS_CLIENT_H_
