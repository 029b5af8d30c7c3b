// SPDX-License-Identifier: Apache-2.0
#include "lib/storage/freshness.h"

#include "lib/crypto/keys.h"

namespace enclavia::storage {
namespace {

void AppendU32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(v >> shift));
  }
}

void AppendField(Bytes& out, ByteSpan field) {
  AppendU32(out, static_cast<uint32_t>(field.size()));
  out.insert(out.end(), field.begin(), field.end());
}

std::array<uint8_t, 8> U64(uint64_t v) {
  std::array<uint8_t, 8> out{};
  for (size_t i = 0; i < 8; ++i) {
    out[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
  }
  return out;
}

}  // namespace

Bytes CommitStatement(const CommitRecord& record) {
  static constexpr std::string_view kLabel = "enclavia/commit/v1";
  Bytes out;
  AppendField(out, ByteSpan(reinterpret_cast<const uint8_t*>(kLabel.data()), kLabel.size()));
  AppendField(out, record.volume_id);
  AppendField(out, U64(record.epoch));
  AppendField(out, U64(record.version));
  AppendField(out, record.superblock_hash);
  AppendField(out, record.volume_public_key);
  return out;
}

Result<void> VerifyCommitRecord(const CommitRecord& record) {
  auto key = crypto::PublicKey::FromRaw(crypto::SignatureAlgorithm::kEd25519,
                                        record.volume_public_key);
  if (!key) {
    return Error(Code::kVerifyFailed, "commit record: bad volume key");
  }
  if (!key->Verify(CommitStatement(record), record.signature)) {
    return Error(Code::kVerifyFailed, "commit record: bad signature");
  }
  return Ok();
}

}  // namespace enclavia::storage
