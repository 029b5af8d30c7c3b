// SPDX-License-Identifier: Apache-2.0
#include "lib/eif/internal/layout.h"

#include "lib/base/reader.h"

namespace enclavia::eif::internal {
namespace {

// Fixed-size spans make every read below in bounds, so value() cannot fail.
template <typename T>
T Must(Result<T> r) {
  ENCLAVIA_CHECK(r.has_value());
  return std::move(r).value();
}

}  // namespace

HeaderBytes EncodeHeader(const Header& header) {
  Writer w;
  w.WriteBytes(header.magic);
  w.WriteU16Be(header.version);
  w.WriteU16Be(header.flags);
  w.WriteU64Be(header.default_mem);
  w.WriteU64Be(header.default_cpus);
  w.WriteU16Be(header.reserved);
  w.WriteU16Be(header.num_sections);
  for (uint64_t offset : header.section_offsets) {
    w.WriteU64Be(offset);
  }
  for (uint64_t size : header.section_sizes) {
    w.WriteU64Be(size);
  }
  w.WriteU32Be(header.unused);
  w.WriteU32Be(header.crc);
  ENCLAVIA_CHECK(w.size() == kHeaderSize);
  HeaderBytes out{};
  std::copy(w.bytes().begin(), w.bytes().end(), out.begin());
  return out;
}

Header DecodeHeader(std::span<const uint8_t, kHeaderSize> bytes) {
  Reader r(bytes);
  Header h;
  ByteSpan magic = Must(r.ReadBytes(4));
  std::copy(magic.begin(), magic.end(), h.magic.begin());
  h.version = Must(r.ReadU16Be());
  h.flags = Must(r.ReadU16Be());
  h.default_mem = Must(r.ReadU64Be());
  h.default_cpus = Must(r.ReadU64Be());
  h.reserved = Must(r.ReadU16Be());
  h.num_sections = Must(r.ReadU16Be());
  for (uint64_t& offset : h.section_offsets) {
    offset = Must(r.ReadU64Be());
  }
  for (uint64_t& size : h.section_sizes) {
    size = Must(r.ReadU64Be());
  }
  h.unused = Must(r.ReadU32Be());
  h.crc = Must(r.ReadU32Be());
  ENCLAVIA_CHECK(r.empty());
  return h;
}

SectionHeaderBytes EncodeSectionHeader(const SectionHeader& header) {
  Writer w;
  w.WriteU16Be(header.type);
  w.WriteU16Be(header.flags);
  w.WriteU64Be(header.size);
  SectionHeaderBytes out{};
  std::copy(w.bytes().begin(), w.bytes().end(), out.begin());
  return out;
}

SectionHeader DecodeSectionHeader(std::span<const uint8_t, kSectionHeaderSize> bytes) {
  Reader r(bytes);
  SectionHeader h;
  h.type = Must(r.ReadU16Be());
  h.flags = Must(r.ReadU16Be());
  h.size = Must(r.ReadU64Be());
  return h;
}

}  // namespace enclavia::eif::internal
