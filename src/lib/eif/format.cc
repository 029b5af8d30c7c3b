// SPDX-License-Identifier: Apache-2.0
#include "lib/eif/format.h"

#include "lib/crypto/hash.h"

namespace enclavia::eif {

std::string_view SectionTypeName(SectionType type) {
  switch (type) {
    case SectionType::kKernel:
      return "kernel";
    case SectionType::kCmdline:
      return "cmdline";
    case SectionType::kRamdisk:
      return "ramdisk";
    case SectionType::kSignature:
      return "signature";
    case SectionType::kMetadata:
      return "metadata";
    case SectionType::kInvalid:
      break;
  }
  return "invalid";
}

Bytes ExtendPcr(ByteSpan digest) {
  crypto::Hasher hasher(crypto::HashAlgorithm::kSha384);
  const std::array<uint8_t, kPcrSize> zero{};
  hasher.Update(zero);
  hasher.Update(digest);
  return hasher.Finish();
}

}  // namespace enclavia::eif
