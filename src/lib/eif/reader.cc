// SPDX-License-Identifier: Apache-2.0
#include "lib/eif/reader.h"

#include <fcntl.h>

#include <array>
#include <cstdio>

#include "lib/crypto/hash.h"
#include "lib/eif/internal/consumers.h"
#include "lib/eif/internal/layout.h"
#include "lib/eif/internal/pipeline.h"
#include "lib/sys/fd.h"

namespace enclavia::eif {
namespace {

using internal::Pipeline;
using internal::Stream;

constexpr uint64_t kThreadedMinBytes = uint64_t{8} << 20;

Error Malformed(const std::string& what) { return {Code::kMalformed, "eif: " + what}; }

std::string Num(uint64_t v) { return std::to_string(v); }

std::string Hex32(uint32_t v) {
  std::array<char, 11> buf{};
  (void)std::snprintf(buf.data(), buf.size(), "0x%08x", v);
  return {buf.data()};
}

// Input is where the image's bytes come from: a file (read in chunks straight into the
// pipeline's buffers) or memory (shared with the pipeline in place).
class Input {
 public:
  Input() = default;
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;
  Input(Input&&) = delete;
  Input& operator=(Input&&) = delete;
  virtual ~Input() = default;
  virtual uint64_t size() const = 0;
  virtual Result<void> ReadAt(uint64_t offset, std::span<uint8_t> out) const = 0;
  virtual Result<void> Feed(uint64_t offset, uint64_t size, Stream stream,
                            Pipeline& pipeline) const = 0;
};

class FileInput final : public Input {
 public:
  FileInput(int fd, uint64_t size) : fd_(fd), size_(size) {}
  uint64_t size() const override { return size_; }
  Result<void> ReadAt(uint64_t offset, std::span<uint8_t> out) const override {
    auto r = sys::PreadFull(fd_, out, offset);
    if (!r) {
      return std::move(r).error().WithContext("eif: reading the image");
    }
    return Ok();
  }
  Result<void> Feed(uint64_t offset, uint64_t size, Stream stream,
                    Pipeline& pipeline) const override {
    return pipeline.Fill(size, stream, [this, offset](uint64_t at, std::span<uint8_t> out) {
      return ReadAt(offset + at, out);
    });
  }

 private:
  int fd_;
  uint64_t size_;
};

class MemoryInput final : public Input {
 public:
  explicit MemoryInput(ByteSpan data) : data_(data) {}
  uint64_t size() const override { return data_.size(); }
  // Callers only ask for ranges the walk has checked lie within the image.
  Result<void> ReadAt(uint64_t offset, std::span<uint8_t> out) const override {
    ByteSpan in = Slice(offset, out.size());
    std::copy(in.begin(), in.end(), out.begin());
    return Ok();
  }
  Result<void> Feed(uint64_t offset, uint64_t size, Stream stream,
                    Pipeline& pipeline) const override {
    return pipeline.Write(Slice(offset, size), stream);
  }

 private:
  ByteSpan Slice(uint64_t offset, uint64_t size) const {
    ENCLAVIA_CHECK(offset <= data_.size() && size <= data_.size() - offset);
    return data_.subspan(static_cast<size_t>(offset), static_cast<size_t>(size));
  }
  ByteSpan data_;
};

uint64_t LimitFor(SectionType type, const ReadLimits& limits) {
  switch (type) {
    case SectionType::kKernel:
      return limits.max_kernel;
    case SectionType::kCmdline:
      return limits.max_cmdline;
    case SectionType::kRamdisk:
      return limits.max_ramdisk;
    case SectionType::kSignature:
      return limits.max_signature;
    case SectionType::kMetadata:
      return limits.max_metadata;
    case SectionType::kInvalid:
      break;
  }
  return 0;
}

std::string Describe(size_t index, SectionType type) {
  return "section " + Num(index) + " (" + std::string(SectionTypeName(type)) + ")";
}

// Walk checks the header and the section table against the section headers, without reading
// any section data.
Result<void> Walk(const Input& in, const internal::Header& h, const ReadLimits& limits,
                  EifInfo& info, std::vector<internal::SectionHeaderBytes>& raw) {
  if (h.magic != kMagic) {
    return Malformed("bad magic (not an EIF file)");
  }
  if (h.version < kMinReadVersion || h.version > kVersion) {
    return Error(Code::kUnsupported,
                 "eif: unsupported version " + Num(h.version) + " (this reader handles 2 to 4)");
  }
  if (h.num_sections == 0 || h.num_sections > kMaxSections) {
    return Malformed("the header declares " + Num(h.num_sections) +
                     " sections (it must be 1 to 32)");
  }
  for (size_t i = h.num_sections; i < kMaxSections; ++i) {
    if (h.section_offsets[i] != 0 || h.section_sizes[i] != 0) {
      return Malformed("unused section table entry " + Num(i) + " is not zero");
    }
  }
  const uint64_t file_size = in.size();
  uint64_t expected = kHeaderSize;
  for (size_t i = 0; i < h.num_sections; ++i) {
    const uint64_t offset = h.section_offsets[i];
    if (offset < expected) {
      return Malformed("section " + Num(i) + " at offset " + Num(offset) + " overlaps " +
                       (i == 0 ? std::string("the EIF header")
                               : "the previous section (which ends at " + Num(expected) + ")"));
    }
    if (offset > expected) {
      return Malformed("gap of " + Num(offset - expected) + " bytes before section " + Num(i) +
                       " (at offset " + Num(offset) + ")");
    }
    auto data_offset = CheckedAdd<uint64_t>(offset, kSectionHeaderSize);
    if (!data_offset || *data_offset > file_size) {
      return Malformed("section " + Num(i) + " header at offset " + Num(offset) +
                       " runs past the end of the file (" + Num(file_size) + " bytes)");
    }
    internal::SectionHeaderBytes bytes{};
    RETURN_IF_ERROR(in.ReadAt(offset, bytes));
    const internal::SectionHeader sh = internal::DecodeSectionHeader(bytes);
    if (sh.type == 0 || sh.type > static_cast<uint16_t>(SectionType::kMetadata)) {
      return Malformed("section " + Num(i) + " has invalid type " + Num(sh.type));
    }
    const auto type = static_cast<SectionType>(sh.type);
    if (sh.size != h.section_sizes[i]) {
      return Malformed(Describe(i, type) + ": the header table says " + Num(h.section_sizes[i]) +
                       " bytes, its section header " + Num(sh.size));
    }
    auto end = CheckedAdd<uint64_t>(*data_offset, sh.size);
    if (!end || *end > file_size) {
      return Malformed(Describe(i, type) + ", " + Num(sh.size) + " bytes at offset " + Num(offset) +
                       ", runs past the end of the file (" + Num(file_size) + " bytes)");
    }
    if (sh.size > LimitFor(type, limits)) {
      return Error(Code::kLimitExceeded, "eif: " + Describe(i, type) + " is " + Num(sh.size) +
                                             " bytes, over the limit of " +
                                             Num(LimitFor(type, limits)));
    }
    info.sections.push_back({type, sh.flags, offset, *data_offset, sh.size});
    raw.push_back(bytes);
    expected = *end;
  }
  if (expected != file_size) {
    return Malformed(Num(file_size - expected) + " bytes of trailing data after the last section");
  }

  std::array<size_t, 6> count{};
  bool ramdisks_ended = false;
  for (size_t i = 0; i < info.sections.size(); ++i) {
    const SectionType type = info.sections[i].type;
    if (type == SectionType::kRamdisk) {
      if (ramdisks_ended) {
        return Malformed("ramdisks are not contiguous (" + Describe(i, type) + ")");
      }
    } else if (count[static_cast<size_t>(SectionType::kRamdisk)] > 0) {
      ramdisks_ended = true;
    }
    ++count[static_cast<size_t>(type)];
    if (type != SectionType::kRamdisk && count[static_cast<size_t>(type)] > 1) {
      return Malformed("more than one " + std::string(SectionTypeName(type)) + " section (" +
                       Describe(i, type) + ")");
    }
    if (type == SectionType::kMetadata && h.version < 4) {
      return Malformed("metadata section in a version " + Num(h.version) + " image");
    }
    if (type == SectionType::kSignature && h.version < 3) {
      return Malformed("signature section in a version " + Num(h.version) + " image");
    }
  }
  for (SectionType needed : {SectionType::kKernel, SectionType::kCmdline, SectionType::kRamdisk}) {
    if (count[static_cast<size_t>(needed)] == 0) {
      return Malformed("no " + std::string(SectionTypeName(needed)) + " section");
    }
  }
  return Ok();
}

Result<EifInfo> Parse(const Input& in, const ReadLimits& limits) {
  const uint64_t file_size = in.size();
  if (file_size > limits.max_file_size) {
    return Error(Code::kLimitExceeded, "eif: the file is " + Num(file_size) +
                                           " bytes, over the limit of " +
                                           Num(limits.max_file_size));
  }
  if (file_size < kHeaderSize) {
    return Malformed("truncated header: the file is " + Num(file_size) +
                     " bytes, the header alone 548");
  }
  internal::HeaderBytes header_bytes{};
  RETURN_IF_ERROR(in.ReadAt(0, header_bytes));
  const internal::Header h = internal::DecodeHeader(header_bytes);
  EifInfo info;
  std::vector<internal::SectionHeaderBytes> raw;
  RETURN_IF_ERROR(Walk(in, h, limits, info, raw));
  info.version = h.version;
  info.flags = h.flags;
  info.default_mem = h.default_mem;
  info.default_cpus = h.default_cpus;
  info.header_crc = h.crc;

  uint64_t measured = 0;
  for (const Section& s : info.sections) {
    if (s.type == SectionType::kKernel || s.type == SectionType::kCmdline ||
        s.type == SectionType::kRamdisk) {
      measured += s.size;  // Bounded by the file size.
    }
  }
  internal::Pcr0Hasher pcr0;
  internal::Pcr12Hasher pcr12;
  internal::Crc32 crc;
  Bytes metadata;
  Bytes signature;
  {
    internal::PipelineOptions options;
    options.threaded = measured >= kThreadedMinBytes;
    Pipeline pipeline({&pcr0, &pcr12, &crc}, options);
    RETURN_IF_ERROR(pipeline.Start());
    auto streamed = [&]() -> Result<void> {
      // nitro-cli: the CRC covers the header up to its CRC field, then every section in order;
      // PCRs take sections in file order.
      RETURN_IF_ERROR(
          pipeline.Write(ByteSpan(header_bytes).first(kCrcOffset), Stream::kUnmeasured));
      size_t ramdisks = 0;
      for (size_t i = 0; i < info.sections.size(); ++i) {
        const Section& s = info.sections[i];
        RETURN_IF_ERROR(pipeline.Write(raw[i], Stream::kUnmeasured));
        switch (s.type) {
          case SectionType::kKernel:
          case SectionType::kCmdline:
            RETURN_IF_ERROR(in.Feed(s.data_offset, s.size, Stream::kBoot, pipeline));
            break;
          case SectionType::kRamdisk:
            RETURN_IF_ERROR(in.Feed(s.data_offset, s.size,
                                    ramdisks++ == 0 ? Stream::kBoot : Stream::kApp, pipeline));
            break;
          case SectionType::kMetadata:
          case SectionType::kSignature: {
            // Walk held these to max_metadata / max_signature.
            Bytes& data = s.type == SectionType::kMetadata ? metadata : signature;
            data.resize(static_cast<size_t>(s.size));
            RETURN_IF_ERROR(in.ReadAt(s.data_offset, data));
            RETURN_IF_ERROR(pipeline.Write(data, Stream::kUnmeasured));
            break;
          }
          case SectionType::kInvalid:
            ENCLAVIA_CHECK(false);  // Walk rejected it.
        }
      }
      return Ok();
    }();
    auto finished = pipeline.Finish();
    RETURN_IF_ERROR(streamed);
    RETURN_IF_ERROR(finished);
  }
  info.computed_crc = crc.crc();
  info.crc_ok = info.computed_crc == info.header_crc;
  if (!info.crc_ok && limits.require_crc) {
    return Error(Code::kVerifyFailed, "eif: CRC mismatch: header " + Hex32(info.header_crc) +
                                          ", contents " + Hex32(info.computed_crc));
  }
  info.measurements.pcr0 = pcr0.Pcr0();
  info.measurements.pcr1 = pcr12.Pcr1();
  info.measurements.pcr2 = pcr12.Pcr2();
  for (const Section& s : info.sections) {
    if (s.type == SectionType::kMetadata) {
      info.metadata_json = std::string(AsString(metadata));
      ASSIGN_OR_RETURN(info.metadata, DecodeMetadata(metadata));
    } else if (s.type == SectionType::kSignature) {
      ASSIGN_OR_RETURN(info.signature, DecodeSignatureSection(signature, info.measurements.pcr0));
      info.measurements.pcr8 = ExtendPcr(crypto::Sha384(info.signature->certificate_der));
    }
  }
  return info;
}

}  // namespace

Result<EifInfo> ReadEif(const std::string& path, const ReadLimits& limits) {
  auto fd = sys::Open(path, O_RDONLY);
  if (!fd) {
    return std::move(fd).error().WithContext("eif");
  }
  auto size = sys::FileSize(fd->get());
  if (!size) {
    return std::move(size).error().WithContext("eif: " + path);
  }
  FileInput in(fd->get(), *size);
  return Parse(in, limits);
}

Result<EifInfo> ParseEif(ByteSpan image, const ReadLimits& limits) {
  MemoryInput in(image);
  return Parse(in, limits);
}

Result<Bytes> ReadSectionData(const std::string& path, const Section& section, uint64_t max_size) {
  if (section.size > max_size) {
    return Error(Code::kLimitExceeded, "eif: " + std::string(SectionTypeName(section.type)) +
                                           " section is " + Num(section.size) +
                                           " bytes, over the limit of " + Num(max_size));
  }
  auto fd = sys::Open(path, O_RDONLY);
  if (!fd) {
    return std::move(fd).error().WithContext("eif");
  }
  ASSIGN_OR_RETURN(uint64_t file_size, sys::FileSize(fd->get()));
  auto end = CheckedAdd<uint64_t>(section.data_offset, section.size);
  internal::SectionHeaderBytes raw{};
  const Error changed(Code::kFailedPrecondition,
                      "eif: " + path + " changed since it was read (section at offset " +
                          Num(section.header_offset) + ")");
  auto data_offset = CheckedAdd<uint64_t>(section.header_offset, kSectionHeaderSize);
  if (!data_offset || section.data_offset != *data_offset || !end || *end > file_size) {
    return changed;
  }
  RETURN_IF_ERROR(sys::PreadFull(fd->get(), raw, section.header_offset));
  const internal::SectionHeader sh = internal::DecodeSectionHeader(raw);
  if (sh.type != static_cast<uint16_t>(section.type) || sh.size != section.size) {
    return changed;
  }
  Bytes out(static_cast<size_t>(section.size));
  auto read = sys::PreadFull(fd->get(), out, section.data_offset);
  if (!read) {
    return std::move(read).error().WithContext("eif: reading " + path);
  }
  return out;
}

}  // namespace enclavia::eif
