// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EIF_FORMAT_H_
#define ENCLAVIA_LIB_EIF_FORMAT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "lib/base/bytes.h"

// The Enclave Image Format (EIF) as AWS's aws-nitro-enclaves-image-format and nitro-cli write it.
// docs/formats/eif.md describes the byte layout, the CRC and the measurements.
namespace enclavia::eif {

inline constexpr size_t kHeaderSize = 548;
inline constexpr size_t kSectionHeaderSize = 12;
inline constexpr size_t kMaxSections = 32;
// kCrcOffset is where the header's CRC field starts; the CRC covers the bytes before it.
inline constexpr size_t kCrcOffset = 544;
inline constexpr uint16_t kVersion = 4;
// kMinReadVersion is the oldest version the reader accepts (version 2 added the CRC).
inline constexpr uint16_t kMinReadVersion = 2;
inline constexpr std::array<uint8_t, 4> kMagic = {0x2e, 0x65, 0x69, 0x66};  // ".eif"
// kFlagAarch64 is header flag bit 0: the image is for aarch64 (clear: x86_64).
inline constexpr uint16_t kFlagAarch64 = 0x1;
inline constexpr size_t kPcrSize = 48;  // SHA-384

enum class SectionType : uint16_t {
  kInvalid = 0,
  kKernel = 1,
  kCmdline = 2,
  kRamdisk = 3,
  kSignature = 4,
  kMetadata = 5,
};

// SectionTypeName returns "kernel", "cmdline", "ramdisk", "signature", "metadata" or "invalid".
std::string_view SectionTypeName(SectionType type);

// Measurements are an image's PCRs, 48 bytes each. PCR0 covers the kernel, cmdline and every
// ramdisk; PCR1 the kernel, cmdline and first ramdisk; PCR2 the other ramdisks; PCR8 (signed
// images only) the signing certificate.
struct Measurements {
  Bytes pcr0;
  Bytes pcr1;
  Bytes pcr2;
  std::optional<Bytes> pcr8;

  bool operator==(const Measurements&) const = default;
};

// ExtendPcr returns SHA-384(48 zero bytes || digest): a PCR extended once from zero, as the Nitro
// hypervisor and nitro-cli compute every PCR from the SHA-384 digest of what it covers.
Bytes ExtendPcr(ByteSpan digest);

}  // namespace enclavia::eif

#endif  // ENCLAVIA_LIB_EIF_FORMAT_H_
