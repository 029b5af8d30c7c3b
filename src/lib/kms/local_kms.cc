// SPDX-License-Identifier: Apache-2.0
#include "lib/kms/local_kms.h"

#include <utility>

namespace enclavia::kms {

LocalKmsClient::LocalKmsClient(std::shared_ptr<attestation::Nsm> nsm, net::Address service)
    : nsm_(std::move(nsm)), service_(std::move(service)) {}

Result<DataKey> LocalKmsClient::Call(KmsRequest request) {
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
  const Operation op = request.op;
  request.attestation = std::move(*document);
  ASSIGN_OR_RETURN(sys::UniqueFd fd, ConnectTo(service_));
  Bytes encoded = EncodeRequest(request);
  auto sent = WriteMessage(fd.get(), encoded);
  // An Encrypt request carries the key ring: leave no copy behind.
  crypto::Cleanse(encoded.data(), encoded.size());
  crypto::Cleanse(request.plaintext.data(), request.plaintext.size());
  RETURN_IF_ERROR(sent);
  ASSIGN_OR_RETURN(Bytes reply, ReadMessage(fd.get()));
  ASSIGN_OR_RETURN(KmsResponse response, DecodeResponse(reply));
  DataKey out;
  if (op != Operation::kEncrypt) {
    ASSIGN_OR_RETURN(out.plaintext, OpenSealed(response.sealed_key, recipient));
  }
  if (op != Operation::kDecrypt) {
    if (response.blob.empty()) {
      return Error(Code::kMalformed, "kms: no ciphertext blob in the response");
    }
    out.ciphertext_blob = std::move(response.blob);
  }
  return out;
}

Result<DataKey> LocalKmsClient::GenerateDataKey(const std::string& key_id) {
  if (!ValidKeyId(key_id)) {
    return Error(Code::kInvalidArgument, "kms: invalid key id");
  }
  KmsRequest request;
  request.op = Operation::kGenerateDataKey;
  request.key_id = key_id;
  ASSIGN_OR_RETURN(DataKey out, Call(std::move(request)));
  if (out.plaintext.size() != kDataKeySize) {
    return Error(Code::kMalformed, "kms: data key is not 32 bytes");
  }
  return out;
}

Result<crypto::SecretBytes> LocalKmsClient::Decrypt(ByteSpan ciphertext_blob) {
  if (ciphertext_blob.empty() || ciphertext_blob.size() > kMaxBlobSize) {
    return Error(Code::kInvalidArgument, "kms: ciphertext blob must be 1..8192 bytes");
  }
  KmsRequest request;
  request.op = Operation::kDecrypt;
  request.blob = Bytes(ciphertext_blob.begin(), ciphertext_blob.end());
  ASSIGN_OR_RETURN(DataKey out, Call(std::move(request)));
  if (out.plaintext.size() == 0 || out.plaintext.size() > kMaxPlaintextSize) {
    return Error(Code::kMalformed, "kms: decrypted plaintext of a bad size");
  }
  return std::move(out.plaintext);
}

Result<Bytes> LocalKmsClient::Encrypt(const std::string& key_id, ByteSpan plaintext) {
  if (!ValidKeyId(key_id)) {
    return Error(Code::kInvalidArgument, "kms: invalid key id");
  }
  if (plaintext.empty() || plaintext.size() > kMaxPlaintextSize) {
    return Error(Code::kInvalidArgument, "kms: plaintext must be 1..4096 bytes");
  }
  KmsRequest request;
  request.op = Operation::kEncrypt;
  request.key_id = key_id;
  request.plaintext = Bytes(plaintext.begin(), plaintext.end());
  ASSIGN_OR_RETURN(DataKey out, Call(std::move(request)));
  return std::move(out.ciphertext_blob);
}

}  // namespace enclavia::kms
