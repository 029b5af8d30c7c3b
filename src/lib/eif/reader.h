// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EIF_READER_H_
#define ENCLAVIA_LIB_EIF_READER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/eif/format.h"
#include "lib/eif/metadata.h"
#include "lib/eif/signature.h"

namespace enclavia::eif {

// ReadLimits bounds what an untrusted image may make the reader do. Sizes are section data sizes.
struct ReadLimits {
  uint64_t max_file_size = uint64_t{8} << 30;
  uint64_t max_kernel = uint64_t{512} << 20;
  uint64_t max_cmdline = uint64_t{64} << 10;
  uint64_t max_metadata = uint64_t{1} << 20;    // Read into memory.
  uint64_t max_signature = uint64_t{64} << 10;  // Read into memory.
  uint64_t max_ramdisk = uint64_t{8} << 30;     // Each.
  // require_crc makes a CRC mismatch an error; otherwise it is reported as crc_ok = false.
  bool require_crc = true;
};

// Section is one section as found in the file.
struct Section {
  SectionType type = SectionType::kInvalid;
  uint16_t flags = 0;
  uint64_t header_offset = 0;  // Of its 12-byte section header (what the EIF header lists).
  uint64_t data_offset = 0;    // header_offset + 12.
  uint64_t size = 0;           // Of the data.
};

// EifInfo is everything the reader checked and computed.
struct EifInfo {
  uint16_t version = 0;
  uint16_t flags = 0;
  uint64_t default_mem = 0;
  uint64_t default_cpus = 0;
  uint32_t header_crc = 0;    // As stored.
  uint32_t computed_crc = 0;  // Over the file.
  bool crc_ok = false;
  std::vector<Section> sections;         // In file order.
  Measurements measurements;             // pcr8 set when the image is signed.
  std::optional<IdentityInfo> metadata;  // Version 4 images.
  std::string metadata_json;             // The metadata section as stored ("" if none).
  std::optional<SignatureInfo> signature;
};

// ReadEif reads and checks the image at `path`, streaming it through the same fan-out as the
// writer (bounded memory; PCR0, PCR1/PCR2 and the CRC computed concurrently). It checks:
// magic; version 2..4 (kUnsupported otherwise); 1..32 sections; that the header's offset and
// size table agrees with the section headers, sections follow each other with no gap, overlap
// or trailing bytes and end within the file; unused table entries are zero; section types are
// valid; exactly one kernel and one cmdline, at most one metadata (version 4 only) and one
// signature (version 3 and up), at least one ramdisk, ramdisks contiguous; the ReadLimits; the
// CRC (unless !require_crc); the metadata (DecodeMetadata) and signature section
// (DecodeSignatureSection). PCRs cover the sections in file order, as nitro-cli computes them.
// Errors: kMalformed, kUnsupported, kLimitExceeded, kVerifyFailed ("eif: CRC mismatch: header
// 0x…, contents 0x…"), kIo; one line, starting "eif: ".
Result<EifInfo> ReadEif(const std::string& path, const ReadLimits& limits = {});

// ParseEif makes the same checks on an image in memory.
Result<EifInfo> ParseEif(ByteSpan image, const ReadLimits& limits = {});

// ReadSectionData returns `section`'s data from the image at `path` (a Section from ReadEif),
// after checking its section header is still the one ReadEif saw (kFailedPrecondition if the
// file changed). kLimitExceeded if the section is larger than `max_size`.
Result<Bytes> ReadSectionData(const std::string& path, const Section& section, uint64_t max_size);

// DescribeJson renders `info` as nitro-cli describe-eif prints it (serde_json pretty, 2-space
// indent): EifVersion, Measurements {HashAlgorithm, PCR0, PCR1, PCR2[, PCR8]}, IsSigned,
// [SigningCertificate], CheckCRC, [SignatureCheck], [ImageName, ImageVersion, Metadata].
std::string DescribeJson(const EifInfo& info);

}  // namespace enclavia::eif

#endif  // ENCLAVIA_LIB_EIF_READER_H_
