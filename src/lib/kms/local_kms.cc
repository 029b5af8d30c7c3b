// SPDX-License-Identifier: Apache-2.0
#include "lib/kms/local_kms.h"

#include <utility>

namespace enclavia::kms {

LocalKmsClient::LocalKmsClient(std::shared_ptr<attestation::Nsm> nsm, net::Address service)
    : nsm_(std::move(nsm)), service_(std::move(service)) {}

Result<crypto::SecretBytes> LocalKmsClient::Call(KmsRequest request, Bytes* blob_out) {
  std::lock_guard lock(mu_);
  // A key pair for this call only: a response recorded by the host is useless to anyone else,
  // and to us after this call.
  crypto::X25519Keypair recipient = crypto::X25519Keypair::Generate();
  attestation::AttestationRequest attest;
  attest.public_key = Bytes(recipient.public_key.begin(), recipient.public_key.end());
  auto document = nsm_->Attestation(attest);
  if (!document) {
    return std::move(document).error().WithContext("kms: attestation");
  }
  request.attestation = std::move(*document);
  ASSIGN_OR_RETURN(sys::UniqueFd fd, ConnectTo(service_));
  RETURN_IF_ERROR(WriteMessage(fd.get(), EncodeRequest(request)));
  ASSIGN_OR_RETURN(Bytes reply, ReadMessage(fd.get()));
  ASSIGN_OR_RETURN(KmsResponse response, DecodeResponse(reply));
  ASSIGN_OR_RETURN(crypto::SecretBytes key, OpenSealed(response.sealed_key, recipient));
  if (key.size() != kDataKeySize) {
    return Error(Code::kMalformed, "kms: data key is not 32 bytes");
  }
  if (blob_out != nullptr) {
    if (response.blob.empty()) {
      return Error(Code::kMalformed, "kms: no ciphertext blob in the response");
    }
    *blob_out = std::move(response.blob);
  }
  return key;
}

Result<DataKey> LocalKmsClient::GenerateDataKey(const std::string& key_id) {
  if (!ValidKeyId(key_id)) {
    return Error(Code::kInvalidArgument, "kms: invalid key id");
  }
  KmsRequest request;
  request.op = Operation::kGenerateDataKey;
  request.key_id = key_id;
  DataKey out;
  ASSIGN_OR_RETURN(out.plaintext, Call(std::move(request), &out.ciphertext_blob));
  return out;
}

Result<crypto::SecretBytes> LocalKmsClient::Decrypt(ByteSpan ciphertext_blob) {
  if (ciphertext_blob.empty() || ciphertext_blob.size() > kMaxBlobSize) {
    return Error(Code::kInvalidArgument, "kms: ciphertext blob must be 1..1024 bytes");
  }
  KmsRequest request;
  request.op = Operation::kDecrypt;
  request.blob = Bytes(ciphertext_blob.begin(), ciphertext_blob.end());
  return Call(std::move(request), nullptr);
}

}  // namespace enclavia::kms
