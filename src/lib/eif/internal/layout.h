// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EIF_INTERNAL_LAYOUT_H_
#define ENCLAVIA_LIB_EIF_INTERNAL_LAYOUT_H_

#include <array>
#include <cstdint>
#include <span>

#include "lib/base/bytes.h"
#include "lib/eif/format.h"

// The fixed-size structures of an EIF, big-endian (aws-nitro-enclaves-image-format src/defs).
namespace enclavia::eif::internal {

struct Header {
  std::array<uint8_t, 4> magic = kMagic;
  uint16_t version = kVersion;
  uint16_t flags = 0;
  uint64_t default_mem = 0;
  uint64_t default_cpus = 0;
  uint16_t reserved = 0;
  uint16_t num_sections = 0;
  std::array<uint64_t, kMaxSections> section_offsets{};
  std::array<uint64_t, kMaxSections> section_sizes{};
  uint32_t unused = 0;
  uint32_t crc = 0;
};

using HeaderBytes = std::array<uint8_t, kHeaderSize>;
using SectionHeaderBytes = std::array<uint8_t, kSectionHeaderSize>;

HeaderBytes EncodeHeader(const Header& header);
// DecodeHeader reads every field; it checks nothing (the reader does).
Header DecodeHeader(std::span<const uint8_t, kHeaderSize> bytes);

struct SectionHeader {
  uint16_t type = 0;  // Raw: the reader rejects values that are not a SectionType.
  uint16_t flags = 0;
  uint64_t size = 0;
};

SectionHeaderBytes EncodeSectionHeader(const SectionHeader& header);
SectionHeader DecodeSectionHeader(std::span<const uint8_t, kSectionHeaderSize> bytes);

}  // namespace enclavia::eif::internal

#endif  // ENCLAVIA_LIB_EIF_INTERNAL_LAYOUT_H_
