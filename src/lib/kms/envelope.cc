// SPDX-License-Identifier: Apache-2.0
#include "lib/kms/envelope.h"

#include <algorithm>
#include <string_view>

#include "lib/crypto/aead.h"
#include "lib/crypto/random.h"

namespace enclavia::kms {
namespace {

constexpr std::string_view kMagic = "enclavia/key-ring-envelope/v1";

bool HasMagic(ByteSpan stored) {
  return stored.size() >= kMagic.size() &&
         std::equal(kMagic.begin(), kMagic.end(), stored.begin());
}

}  // namespace

Result<Bytes> SealKeyRing(Kms& kms, const std::string& key_id, const KeyRing& ring) {
  ASSIGN_OR_RETURN(DataKey key, kms.GenerateDataKey(key_id));
  ASSIGN_OR_RETURN(crypto::AeadKey aead,
                   crypto::AeadKey::Create(crypto::AeadAlgorithm::kAes256Gcm, key.plaintext.Expose()));
  Bytes out(kMagic.begin(), kMagic.end());
  const auto size = static_cast<uint32_t>(key.ciphertext_blob.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(size >> shift));
  }
  out.insert(out.end(), key.ciphertext_blob.begin(), key.ciphertext_blob.end());
  const size_t aad_size = out.size();
  Bytes nonce = crypto::RandomBytes(crypto::kAeadNonceSize);
  crypto::SecretBytes plaintext = EncodeKeyRing(ring);
  ASSIGN_OR_RETURN(Bytes sealed, aead.Seal(nonce, ByteSpan(out).first(aad_size), plaintext.Expose()));
  out.insert(out.end(), nonce.begin(), nonce.end());
  out.insert(out.end(), sealed.begin(), sealed.end());
  return out;
}

Result<KeyRing> OpenKeyRing(Kms& kms, ByteSpan stored) {
  if (!HasMagic(stored)) {
    // A volume from before upgrades: the blob of GenerateDataKey, a bare data key.
    ASSIGN_OR_RETURN(crypto::SecretBytes plaintext, kms.Decrypt(stored));
    if (plaintext.size() != kDataKeySize) {
      return Error(Code::kMalformed, "kms: the stored key is neither a key-ring envelope nor a data key");
    }
    return DecodeKeyRing(plaintext.Expose());
  }
  ByteSpan rest = stored.subspan(kMagic.size());
  if (rest.size() < 4) {
    return Error(Code::kMalformed, "kms: truncated key-ring envelope");
  }
  const uint32_t size = (uint32_t{rest[0]} << 24) | (uint32_t{rest[1]} << 16) |
                        (uint32_t{rest[2]} << 8) | uint32_t{rest[3]};
  rest = rest.subspan(4);
  if (size == 0 || size > rest.size() ||
      rest.size() - size < crypto::kAeadNonceSize + crypto::kAeadTagSize) {
    return Error(Code::kMalformed, "kms: truncated key-ring envelope");
  }
  ByteSpan blob = rest.first(size);
  ByteSpan nonce = rest.subspan(size, crypto::kAeadNonceSize);
  ByteSpan sealed = rest.subspan(size + crypto::kAeadNonceSize);
  ByteSpan aad = stored.first(kMagic.size() + 4 + size);
  ASSIGN_OR_RETURN(crypto::SecretBytes data_key, kms.Decrypt(blob));
  if (data_key.size() != kDataKeySize) {
    return Error(Code::kMalformed, "kms: the envelope's key is not a data key");
  }
  ASSIGN_OR_RETURN(crypto::AeadKey aead,
                   crypto::AeadKey::Create(crypto::AeadAlgorithm::kAes256Gcm, data_key.Expose()));
  auto plaintext = aead.Open(nonce, aad, sealed);
  if (!plaintext) {
    return Error(Code::kVerifyFailed, "kms: the key ring does not open (altered envelope)");
  }
  return DecodeKeyRing(plaintext->Expose());
}

}  // namespace enclavia::kms
