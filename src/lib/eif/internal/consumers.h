// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EIF_INTERNAL_CONSUMERS_H_
#define ENCLAVIA_LIB_EIF_INTERNAL_CONSUMERS_H_

#include <cstdint>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/hash.h"
#include "lib/eif/format.h"
#include "lib/eif/internal/pipeline.h"

// The pipeline's consumers. PCR0 and PCR1+PCR2 hash on two threads: each hashes every measured
// byte exactly once, so the two SHA-384 passes an image needs are balanced across two cores.
namespace enclavia::eif::internal {

// Pcr0Hasher hashes kernel, cmdline and every ramdisk, in stream order.
class Pcr0Hasher final : public Consumer {
 public:
  bool Wants(Stream stream) const override { return stream != Stream::kUnmeasured; }
  Result<void> Consume(ByteSpan data, Stream stream) override;
  // Pcr0 returns the extended PCR; call once, after the pipeline finished.
  Bytes Pcr0() { return ExtendPcr(hasher_.Finish()); }

 private:
  crypto::Hasher hasher_{crypto::HashAlgorithm::kSha384};
};

// Pcr12Hasher hashes the boot stream for PCR1 and the app stream for PCR2.
class Pcr12Hasher final : public Consumer {
 public:
  bool Wants(Stream stream) const override { return stream != Stream::kUnmeasured; }
  Result<void> Consume(ByteSpan data, Stream stream) override;
  Bytes Pcr1() { return ExtendPcr(boot_.Finish()); }
  Bytes Pcr2() { return ExtendPcr(app_.Finish()); }

 private:
  crypto::Hasher boot_{crypto::HashAlgorithm::kSha384};
  crypto::Hasher app_{crypto::HashAlgorithm::kSha384};
};

// Crc32 is CRC-32/ISO-HDLC (zlib's crc32) of everything it is given.
class Crc32 final : public Consumer {
 public:
  bool Wants(Stream /*stream*/) const override { return true; }
  Result<void> Consume(ByteSpan data, Stream stream) override;
  uint32_t crc() const { return crc_; }
  uint64_t length() const { return length_; }

 private:
  uint32_t crc_ = 0;
  uint64_t length_ = 0;
};

// FileWriter writes everything to `fd` at consecutive offsets from `offset`.
class FileWriter final : public Consumer {
 public:
  FileWriter(int fd, uint64_t offset) : fd_(fd), offset_(offset) {}
  bool Wants(Stream /*stream*/) const override { return true; }
  Result<void> Consume(ByteSpan data, Stream stream) override;
  uint64_t offset() const { return offset_; }

 private:
  int fd_;
  uint64_t offset_;
};

// CrcUpdate continues `crc` over `data`; CrcCombine returns the CRC of A||B from CRC(A), CRC(B)
// and B's length (zlib's crc32_combine), so the header's CRC can be prepended at the end.
uint32_t CrcUpdate(uint32_t crc, ByteSpan data);
uint32_t CrcCombine(uint32_t crc_a, uint32_t crc_b, uint64_t length_b);

}  // namespace enclavia::eif::internal

#endif  // ENCLAVIA_LIB_EIF_INTERNAL_CONSUMERS_H_
