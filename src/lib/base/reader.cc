// SPDX-License-Identifier: Apache-2.0
#include "lib/base/reader.h"

#include <string>

namespace enclavia {

Result<uint64_t> Reader::ReadUint(size_t n, bool big_endian) {
  if (data_.size() < n) {
    return Error(Code::kMalformed, "truncated: need " + std::to_string(n) + " bytes, have " +
                                       std::to_string(data_.size()));
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    size_t idx = big_endian ? i : n - 1 - i;
    v = (v << 8) | data_[idx];
  }
  data_ = data_.subspan(n);
  return v;
}

Result<uint8_t> Reader::ReadU8() {
  ASSIGN_OR_RETURN(uint64_t v, ReadUint(1, true));
  return static_cast<uint8_t>(v);
}
Result<uint16_t> Reader::ReadU16Be() {
  ASSIGN_OR_RETURN(uint64_t v, ReadUint(2, true));
  return static_cast<uint16_t>(v);
}
Result<uint32_t> Reader::ReadU32Be() {
  ASSIGN_OR_RETURN(uint64_t v, ReadUint(4, true));
  return static_cast<uint32_t>(v);
}
Result<uint64_t> Reader::ReadU64Be() { return ReadUint(8, true); }
Result<uint16_t> Reader::ReadU16Le() {
  ASSIGN_OR_RETURN(uint64_t v, ReadUint(2, false));
  return static_cast<uint16_t>(v);
}
Result<uint32_t> Reader::ReadU32Le() {
  ASSIGN_OR_RETURN(uint64_t v, ReadUint(4, false));
  return static_cast<uint32_t>(v);
}
Result<uint64_t> Reader::ReadU64Le() { return ReadUint(8, false); }

Result<ByteSpan> Reader::ReadBytes(size_t n) {
  if (data_.size() < n) {
    return Error(Code::kMalformed, "truncated: need " + std::to_string(n) + " bytes, have " +
                                       std::to_string(data_.size()));
  }
  ByteSpan out = data_.first(n);
  data_ = data_.subspan(n);
  return out;
}

Result<ByteSpan> Reader::ReadPrefixed8() {
  Reader save = *this;
  ASSIGN_OR_RETURN(uint8_t n, ReadU8());
  auto body = ReadBytes(n);
  if (!body) {
    *this = save;
  }
  return body;
}

Result<ByteSpan> Reader::ReadPrefixed16() {
  Reader save = *this;
  ASSIGN_OR_RETURN(uint16_t n, ReadU16Be());
  auto body = ReadBytes(n);
  if (!body) {
    *this = save;
  }
  return body;
}

Result<ByteSpan> Reader::ReadPrefixed32() {
  Reader save = *this;
  ASSIGN_OR_RETURN(uint32_t n, ReadU32Be());
  auto body = ReadBytes(n);
  if (!body) {
    *this = save;
  }
  return body;
}

Result<void> Reader::Skip(size_t n) {
  ASSIGN_OR_RETURN(ByteSpan skipped, ReadBytes(n));
  (void)skipped;
  return Ok();
}

Result<void> Reader::ExpectEnd(std::string_view what) const {
  if (!data_.empty()) {
    return Error(Code::kMalformed, std::string(what) + ": trailing bytes");
  }
  return Ok();
}

void Writer::WriteUint(uint64_t v, size_t n, bool big_endian) {
  for (size_t i = 0; i < n; ++i) {
    size_t shift = big_endian ? 8 * (n - 1 - i) : 8 * i;
    out_.push_back(static_cast<uint8_t>(v >> shift));
  }
}

void Writer::WriteU8(uint8_t v) { out_.push_back(v); }
void Writer::WriteU16Be(uint16_t v) { WriteUint(v, 2, true); }
void Writer::WriteU32Be(uint32_t v) { WriteUint(v, 4, true); }
void Writer::WriteU64Be(uint64_t v) { WriteUint(v, 8, true); }
void Writer::WriteU16Le(uint16_t v) { WriteUint(v, 2, false); }
void Writer::WriteU32Le(uint32_t v) { WriteUint(v, 4, false); }
void Writer::WriteU64Le(uint64_t v) { WriteUint(v, 8, false); }
void Writer::WriteBytes(ByteSpan b) { out_.insert(out_.end(), b.begin(), b.end()); }

Result<void> Writer::WritePrefixed8(ByteSpan b) {
  if (b.size() > 0xff) {
    return Error(Code::kLimitExceeded, "body does not fit an 8-bit length");
  }
  WriteU8(static_cast<uint8_t>(b.size()));
  WriteBytes(b);
  return Ok();
}

Result<void> Writer::WritePrefixed16(ByteSpan b) {
  if (b.size() > 0xffff) {
    return Error(Code::kLimitExceeded, "body does not fit a 16-bit length");
  }
  WriteU16Be(static_cast<uint16_t>(b.size()));
  WriteBytes(b);
  return Ok();
}

Result<void> Writer::WritePrefixed32(ByteSpan b) {
  if (b.size() > 0xffffffffu) {
    return Error(Code::kLimitExceeded, "body does not fit a 32-bit length");
  }
  WriteU32Be(static_cast<uint32_t>(b.size()));
  WriteBytes(b);
  return Ok();
}

}  // namespace enclavia
