// SPDX-License-Identifier: Apache-2.0
#include "lib/kms/key_ring.h"

#include <cstring>
#include <string_view>
#include <utility>

#include "lib/crypto/random.h"
#include "lib/kms/kms.h"

namespace enclavia::kms {
namespace {

constexpr std::string_view kRingMagic = "enclavia/key-ring/v1";
constexpr size_t kEntrySize = 8 + kDataKeySize;

Error BadRing() { return Error(Code::kMalformed, "kms: the key ring does not parse"); }

}  // namespace

crypto::SecretBytes EncodeKeyRing(const KeyRing& ring) {
  // The ring is built straight into cleansed memory: it holds every root secret of the volume.
  crypto::SecretBytes out(kRingMagic.size() + 1 + ring.entries.size() * kEntrySize);
  std::span<uint8_t> bytes = out.MutableBytes();
  size_t at = 0;
  std::memcpy(bytes.data(), kRingMagic.data(), kRingMagic.size());
  at += kRingMagic.size();
  bytes[at++] = static_cast<uint8_t>(ring.entries.size());
  for (const KeyRingEntry& entry : ring.entries) {
    for (int shift = 56; shift >= 0; shift -= 8) {
      bytes[at++] = static_cast<uint8_t>(entry.first_epoch >> shift);
    }
    // A secret of another size is a broken invariant of the caller, not host input.
    ENCLAVIA_CHECK(entry.secret.size() == kDataKeySize);
    std::memcpy(bytes.data() + at, entry.secret.Expose().data(), kDataKeySize);
    at += kDataKeySize;
  }
  ENCLAVIA_CHECK(at == bytes.size());
  return out;
}

Result<KeyRing> DecodeKeyRing(ByteSpan plaintext) {
  KeyRing ring;
  if (plaintext.size() == kDataKeySize) {
    // A volume made before upgrades existed: its data key is the whole ring.
    ring.entries.push_back(KeyRingEntry{0, crypto::SecretBytes(plaintext)});
    return ring;
  }
  const size_t header = kRingMagic.size() + 1;
  if (plaintext.size() < header ||
      std::memcmp(plaintext.data(), kRingMagic.data(), kRingMagic.size()) != 0) {
    return BadRing();
  }
  const size_t count = plaintext[kRingMagic.size()];
  if (count == 0 || count > kMaxRingEntries || plaintext.size() != header + count * kEntrySize) {
    return BadRing();
  }
  size_t at = header;
  for (size_t i = 0; i < count; ++i) {
    uint64_t first_epoch = 0;
    for (size_t b = 0; b < 8; ++b) {
      first_epoch = (first_epoch << 8) | plaintext[at + b];
    }
    at += 8;
    const bool last = i + 1 == count;
    // Ascending first epochs; kUnassigned only as the last entry (and never the only one: the
    // first entry keys the volume's signing key, so it always has an epoch).
    if ((first_epoch == kUnassigned && (!last || i == 0)) ||
        (i > 0 && first_epoch <= ring.entries.back().first_epoch)) {
      return BadRing();
    }
    ring.entries.push_back(
        KeyRingEntry{first_epoch, crypto::SecretBytes(plaintext.subspan(at, kDataKeySize))});
    at += kDataKeySize;
  }
  return ring;
}

Result<void> AppendFresh(KeyRing& ring) {
  if (!ring.entries.empty() && ring.entries.back().first_epoch == kUnassigned) {
    return Error(Code::kFailedPrecondition, "kms: the key ring already has an unassigned secret");
  }
  if (ring.entries.size() >= kMaxRingEntries) {
    return Error(Code::kLimitExceeded, "kms: the key ring is full (64 secrets)");
  }
  if (ring.entries.empty()) {
    return Error(Code::kInvalidArgument, "kms: the key ring is empty");
  }
  KeyRingEntry entry;
  entry.first_epoch = kUnassigned;
  entry.secret = crypto::SecretBytes(kDataKeySize);
  crypto::RandomFill(entry.secret.MutableBytes());
  ring.entries.push_back(std::move(entry));
  return Ok();
}

}  // namespace enclavia::kms
