// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_STORAGE_FRESHNESS_H_
#define ENCLAVIA_LIB_STORAGE_FRESHNESS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// Freshness across restarts: the block store commits each new superblock to witnesses, and on
// mount asks them which version is the newest (docs/storage.md, "Witnesses").
namespace enclavia::storage {

inline constexpr size_t kVolumeIdSize = 16;

// CommitRecord names one committed superblock of a volume. The volume's Ed25519 key (derived
// inside the enclave from the volume key; docs/formats/volume.md) signs CommitStatement(record),
// so neither the host nor a witness can forge a newer version.
struct CommitRecord {
  std::array<uint8_t, kVolumeIdSize> volume_id{};
  uint64_t epoch = 0;
  uint64_t version = 0;
  std::array<uint8_t, 32> superblock_hash{};  // SHA-256 of the superblock object's bytes.
  std::array<uint8_t, 32> volume_public_key{};  // Ed25519.
  std::array<uint8_t, 64> signature{};          // Ed25519 over CommitStatement.
};

// CommitStatement is the signed message: "enclavia/commit/v1" then volume_id, epoch (u64 BE),
// version (u64 BE), superblock_hash and volume_public_key, each length-prefixed (u32 BE).
Bytes CommitStatement(const CommitRecord& record);
// VerifyCommitRecord checks the signature with record.volume_public_key; kVerifyFailed if bad.
Result<void> VerifyCommitRecord(const CommitRecord& record);

// Freshness is the block store's view of its witnesses (src/lib/witness implements it over
// attested channels; tests use fakes). Both calls need a majority of the configured witnesses.
class Freshness {
 public:
  virtual ~Freshness() = default;

  // Latest returns the newest record a majority of witnesses answered for `volume_id` (the
  // highest version among the answers of a majority), or nullopt when every answering witness
  // of that majority knows nothing of the volume. kUnavailable (naming how many answered) when
  // fewer than a majority answer.
  virtual Result<std::optional<CommitRecord>> Latest(
      const std::array<uint8_t, kVolumeIdSize>& volume_id) = 0;
  // Commit returns once a majority acknowledged `record` (each witness accepts only a version
  // above the one it holds, signed by the key it first saw for the volume). kUnavailable when no
  // majority acknowledged; kFailedPrecondition when a majority refused, with their reason.
  virtual Result<void> Commit(const CommitRecord& record) = 0;
  // count is the number of configured witnesses (0: no rollback protection across restarts
  // beyond what the backend gives; the volume says so in its status).
  virtual size_t count() const = 0;
};

}  // namespace enclavia::storage

#endif  // ENCLAVIA_LIB_STORAGE_FRESHNESS_H_
