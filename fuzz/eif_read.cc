// SPDX-License-Identifier: Apache-2.0
// Parses arbitrary bytes as an EIF with small limits and the CRC not required (so inputs get past
// it to the sections). What parses must describe, and its metadata must re-encode to a fixed point.
#include <cstddef>
#include <cstdint>

#include "lib/eif/metadata.h"
#include "lib/eif/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace eif = enclavia::eif;
  eif::ReadLimits limits;
  limits.max_file_size = limits.max_kernel = limits.max_ramdisk = 1 << 20;
  limits.max_cmdline = limits.max_metadata = limits.max_signature = 16 << 10;
  limits.require_crc = false;
  enclavia::Result<eif::EifInfo> info = eif::ParseEif(enclavia::ByteSpan(data, size), limits);
  if (!info) {
    return 0;
  }
  ENCLAVIA_CHECK(info->measurements.pcr0.size() == eif::kPcrSize);
  ENCLAVIA_CHECK(info->measurements.pcr8.has_value() == info->signature.has_value());
  ENCLAVIA_CHECK(!eif::DescribeJson(*info).empty());
  if (info->metadata) {
    ENCLAVIA_CHECK(eif::ValidateIdentity(*info->metadata).has_value());
    ENCLAVIA_CHECK(eif::DecodeMetadata(eif::EncodeMetadata(*info->metadata)).value() ==
                   *info->metadata);
  }
  return 0;
}
