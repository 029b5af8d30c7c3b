// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BASE_READER_H_
#define ENCLAVIA_LIB_BASE_READER_H_

#include <cstdint>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

namespace enclavia {

// Reader consumes a byte span from the front and never reads past its end (BoringSSL's CBS).
// Every read that would run past the end fails with kMalformed and leaves the reader unchanged.
// The span must outlive the Reader and every span it returns.
class Reader {
 public:
  explicit Reader(ByteSpan data) : data_(data) {}

  bool empty() const { return data_.empty(); }
  size_t remaining() const { return data_.size(); }
  ByteSpan rest() const { return data_; }

  Result<uint8_t> ReadU8();
  Result<uint16_t> ReadU16Be();
  Result<uint32_t> ReadU32Be();
  Result<uint64_t> ReadU64Be();
  Result<uint16_t> ReadU16Le();
  Result<uint32_t> ReadU32Le();
  Result<uint64_t> ReadU64Le();
  // ReadBytes returns the next `n` bytes.
  Result<ByteSpan> ReadBytes(size_t n);
  // ReadPrefixedN returns a byte string preceded by its big-endian N-bit length.
  Result<ByteSpan> ReadPrefixed8();
  Result<ByteSpan> ReadPrefixed16();
  Result<ByteSpan> ReadPrefixed32();
  // Skip drops `n` bytes.
  Result<void> Skip(size_t n);
  // ExpectEnd fails with kMalformed "<what>: trailing bytes" unless the reader is empty.
  Result<void> ExpectEnd(std::string_view what) const;

 private:
  Result<uint64_t> ReadUint(size_t n, bool big_endian);
  ByteSpan data_;
};

// Writer builds a byte string deterministically (BoringSSL's CBB). Prefixed writes fail with
// kLimitExceeded if the body does not fit its length prefix.
class Writer {
 public:
  Writer() = default;

  void WriteU8(uint8_t v);
  void WriteU16Be(uint16_t v);
  void WriteU32Be(uint32_t v);
  void WriteU64Be(uint64_t v);
  void WriteU16Le(uint16_t v);
  void WriteU32Le(uint32_t v);
  void WriteU64Le(uint64_t v);
  void WriteBytes(ByteSpan b);
  void WriteString(std::string_view s) { WriteBytes(AsBytes(s)); }
  Result<void> WritePrefixed8(ByteSpan b);
  Result<void> WritePrefixed16(ByteSpan b);
  Result<void> WritePrefixed32(ByteSpan b);

  size_t size() const { return out_.size(); }
  const Bytes& bytes() const { return out_; }
  // Finish returns the bytes written and leaves the writer empty.
  Bytes Finish() { return std::move(out_); }

 private:
  void WriteUint(uint64_t v, size_t n, bool big_endian);
  Bytes out_;
};

}  // namespace enclavia

#endif  // ENCLAVIA_LIB_BASE_READER_H_
