// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_KMS_PROTOCOL_H_
#define ENCLAVIA_LIB_KMS_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/secret.h"
#include "lib/crypto/x25519.h"
#include "lib/net/address.h"
#include "lib/sys/fd.h"

// The local KMS simulator's wire protocol (docs/kms.md), shared by LocalKmsClient (inside the
// enclave) and the simulator's server (src/host/kms, outside). One request, one response, each a
// frame: u32 BE length (1..kMaxMessageSize), then a canonical CBOR map.
namespace enclavia::kms {

inline constexpr uint64_t kKmsProtocolVersion = 1;
inline constexpr size_t kMaxMessageSize = 64 * 1024;
inline constexpr size_t kMaxKeyIdSize = 64;
// kMaxBlobSize bounds a ciphertext blob and a sealed key: room for an Encrypt blob of
// kMaxPlaintextSize bytes (kms.h).
inline constexpr size_t kMaxBlobSize = 8192;

enum class Operation { kGenerateDataKey, kDecrypt, kEncrypt };

// KmsRequest: GenerateDataKey names `key_id` (blob empty); Decrypt carries `blob` (key_id empty:
// the blob names its key); Encrypt names `key_id` and carries `plaintext` (1..kMaxPlaintextSize
// bytes; in the clear on this wire: the local simulator runs in the host's place and keeps its
// master keys on the host, so it protects nothing from the host anyway — AWS KMS is reached over
// TLS that ends inside the enclave). `attestation` is a COSE_Sign1 NSM document whose public_key
// is the X25519 key the response's data key is sealed to.
struct KmsRequest {
  Operation op = Operation::kGenerateDataKey;
  std::string key_id;
  Bytes blob;
  Bytes attestation;
  Bytes plaintext;
  bool operator==(const KmsRequest&) const = default;
};

// KmsResponse: `sealed_key` is the data key (Decrypt: the plaintext) sealed to the document's
// public key (SealToRecipient; empty for Encrypt); `blob` is the new ciphertext blob
// (GenerateDataKey and Encrypt, else empty).
struct KmsResponse {
  Bytes sealed_key;
  Bytes blob;
  bool operator==(const KmsResponse&) const = default;
};

// ValidKeyId: 1..64 characters of [A-Za-z0-9._-], not starting with '.'.
bool ValidKeyId(std::string_view key_id);

// Encoders write deterministic CBOR maps ("v" = 1). EncodeError carries an Error (its code and a
// message cut to 256 bytes) in place of a response.
Bytes EncodeRequest(const KmsRequest& request);
Bytes EncodeResponse(const KmsResponse& response);
Bytes EncodeError(const Error& error);

// DecodeRequest parses untrusted bytes strictly: one definite-length map in deterministic
// encoding, "v" = 1, exactly the fields of the operation with their types and bounds (a valid
// key id, a blob of at most kMaxBlobSize bytes, a plaintext of 1..kMaxPlaintextSize bytes, a
// non-empty attestation). kMalformed, one line
// starting "kms: ".
Result<KmsRequest> DecodeRequest(ByteSpan data);
// DecodeResponse parses a response the same way; an error response becomes that Error (its code
// if it is a known one, else kMalformed), with the message prefixed "kms: ".
Result<KmsResponse> DecodeResponse(ByteSpan data);

// SealToRecipient encrypts `plaintext` to an X25519 public key (libsodium crypto_box_seal: an
// ephemeral key, X25519 and XSalsa20-Poly1305; only the holder of the private key can open it).
Result<Bytes> SealToRecipient(ByteSpan plaintext, ByteSpan recipient_public_key);
// OpenSealed opens a SealToRecipient box with `recipient`; kVerifyFailed for anything else.
Result<crypto::SecretBytes> OpenSealed(ByteSpan sealed, const crypto::X25519Keypair& recipient);

// Blocking framed I/O on a connected stream socket (writes never raise SIGPIPE).
// ConnectTo connects to `address`; kUnavailable when nobody listens.
Result<sys::UniqueFd> ConnectTo(const net::Address& address);
Result<void> WriteMessage(int fd, ByteSpan message);
// ReadMessage returns one frame's body; kUnavailable when the stream ends, kLimitExceeded for a
// frame over kMaxMessageSize.
Result<Bytes> ReadMessage(int fd);

}  // namespace enclavia::kms

#endif  // ENCLAVIA_LIB_KMS_PROTOCOL_H_
