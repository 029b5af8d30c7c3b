// SPDX-License-Identifier: Apache-2.0
#include "lib/eif/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <optional>
#include <vector>

#include "lib/crypto/hash.h"
#include "lib/eif/internal/consumers.h"
#include "lib/eif/internal/layout.h"
#include "lib/eif/internal/pipeline.h"
#include "lib/eif/metadata.h"
#include "lib/sys/fd.h"

namespace enclavia::eif {
namespace {

using internal::Pipeline;
using internal::Stream;

// Images smaller than this are hashed inline: threads cost more than they save.
constexpr uint64_t kThreadedMinBytes = uint64_t{8} << 20;
constexpr uint64_t kProgressStep = uint64_t{4} << 20;

struct PlannedSection {
  SectionType type;
  std::string name;  // For messages: "kernel", "ramdisk 2", ...
  uint64_t size = 0;
  const ByteSource* source = nullptr;  // Or, when null, `bytes`.
  ByteSpan bytes;
  Stream stream = Stream::kUnmeasured;
};

// Plan is the layout of an image before its signature: the signature section, when there is
// one, starts at `body_end`.
struct Plan {
  std::vector<PlannedSection> sections;
  std::optional<Bytes> certificate_der;
  uint64_t body_end = kHeaderSize;
};

Error Invalid(const std::string& what) { return {Code::kInvalidArgument, "eif: " + what}; }

Result<Plan> MakePlan(const ImageSpec& spec) {
  if (spec.kernel == nullptr) {
    return Invalid("no kernel");
  }
  if (spec.ramdisks.empty()) {
    return Invalid("no ramdisk (an image needs at least one)");
  }
  const size_t count = 3 + spec.ramdisks.size() + (spec.signer != nullptr ? 1 : 0);
  if (count > kMaxSections) {
    return Invalid(std::to_string(spec.ramdisks.size()) + " ramdisks make " +
                   std::to_string(count) + " sections; the header holds at most 32");
  }
  if (spec.cmdline.find('\0') != std::string::npos) {
    return Invalid("the kernel command line contains a NUL byte");
  }
  auto metadata = DecodeMetadata(spec.metadata);
  if (!metadata) {
    return Invalid("the image metadata does not decode: " + metadata.error().message());
  }
  Plan plan;
  if (spec.signer != nullptr) {
    ASSIGN_OR_RETURN(plan.certificate_der, SigningCertificateDer(*spec.signer));
  }
  // nitro-cli's order: kernel, cmdline, metadata, ramdisks (then the signature).
  plan.sections.push_back(
      {SectionType::kKernel, "kernel", spec.kernel->size(), spec.kernel, {}, Stream::kBoot});
  plan.sections.push_back({SectionType::kCmdline, "cmdline", spec.cmdline.size(), nullptr,
                           AsBytes(spec.cmdline), Stream::kBoot});
  plan.sections.push_back({SectionType::kMetadata, "metadata", spec.metadata.size(), nullptr,
                           spec.metadata, Stream::kUnmeasured});
  for (size_t i = 0; i < spec.ramdisks.size(); ++i) {
    if (spec.ramdisks[i] == nullptr) {
      return Invalid("ramdisk " + std::to_string(i + 1) + " is null");
    }
    plan.sections.push_back({SectionType::kRamdisk,
                             "ramdisk " + std::to_string(i + 1),
                             spec.ramdisks[i]->size(),
                             spec.ramdisks[i],
                             {},
                             i == 0 ? Stream::kBoot : Stream::kApp});
  }
  for (const PlannedSection& s : plan.sections) {
    auto end = CheckedAdd<uint64_t>(plan.body_end, kSectionHeaderSize);
    end = end ? CheckedAdd<uint64_t>(*end, s.size) : std::nullopt;
    if (!end) {
      return Invalid("image size overflows 64 bits");
    }
    plan.body_end = *end;
  }
  return plan;
}

class ProgressReporter {
 public:
  ProgressReporter(const ImageSpec& spec, uint64_t total) : spec_(spec), total_(total) {}
  void Add(uint64_t n) {
    done_ += n;
    if (spec_.progress && done_ - reported_ >= kProgressStep) {
      reported_ = done_;
      spec_.progress(done_, total_);
    }
  }
  void Done() {
    if (spec_.progress) {
      spec_.progress(total_, total_);
    }
  }

 private:
  const ImageSpec& spec_;
  uint64_t total_;
  uint64_t done_ = 0;
  uint64_t reported_ = 0;
};

// SectionSink passes one source's bytes to the pipeline, holding it to its declared size (the
// header already promised that size).
class SectionSink final : public ByteSink {
 public:
  SectionSink(const PlannedSection& section, Pipeline& pipeline)
      : section_(section), pipeline_(pipeline), remaining_(section.size) {}

  Result<void> Write(ByteSpan data) override {
    if (data.size() > remaining_) {
      return Invalid(section_.name + " produced more than its declared " +
                     std::to_string(section_.size) + " bytes");
    }
    RETURN_IF_ERROR(pipeline_.Write(data, section_.stream));
    remaining_ -= data.size();
    return Ok();
  }
  uint64_t remaining() const { return remaining_; }

 private:
  const PlannedSection& section_;
  Pipeline& pipeline_;
  uint64_t remaining_;
};

Result<void> Produce(const Plan& plan, Pipeline& pipeline) {
  for (const PlannedSection& s : plan.sections) {
    const internal::SectionHeaderBytes header =
        internal::EncodeSectionHeader({static_cast<uint16_t>(s.type), 0, s.size});
    RETURN_IF_ERROR(pipeline.Write(header, Stream::kUnmeasured));
    if (s.source == nullptr) {
      RETURN_IF_ERROR(pipeline.Write(s.bytes, s.stream));
      continue;
    }
    SectionSink sink(s, pipeline);
    auto written = s.source->WriteTo(sink);
    if (!written) {
      const Error& e = written.error();
      // Our own errors already say "eif: ..."; a source's gets the section's name.
      return e.message().rfind("eif: ", 0) == 0 ? e : e.WithContext("eif: " + s.name);
    }
    if (sink.remaining() != 0) {
      return Invalid(s.name + " produced " + std::to_string(s.size - sink.remaining()) +
                     " bytes but declared " + std::to_string(s.size));
    }
  }
  return Ok();
}

internal::PipelineOptions OptionsFor(const Plan& plan, ProgressReporter& progress) {
  internal::PipelineOptions options;
  options.threaded = plan.body_end >= kThreadedMinBytes;
  options.progress = [&progress](uint64_t bytes) { progress.Add(bytes); };
  return options;
}

// TempFile is the file WriteEif writes before renaming it over the target. lib/sys has no
// wrappers for O_EXCL retries, fsync, rename and unlink yet, so they are called here directly.
class TempFile {
 public:
  static Result<TempFile> Create(const std::string& target) {
    static std::atomic<uint64_t> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string temp = target + ".tmp-" + std::to_string(::getpid()) + "-" +
                         std::to_string(counter.fetch_add(1));
      int fd = -1;
      do {
        fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      } while (fd < 0 && errno == EINTR);
      if (fd >= 0) {
        return TempFile(target, std::move(temp), sys::UniqueFd(fd));
      }
      if (errno != EEXIST) {
        return sys::IoError("eif: create " + temp, errno);
      }
    }
    return Error(Code::kIo, "eif: cannot create a temporary file beside " + target);
  }

  TempFile(TempFile&& other) noexcept
      : target_(std::move(other.target_)),
        temp_(std::move(other.temp_)),
        fd_(std::move(other.fd_)),
        live_(std::exchange(other.live_, false)) {}
  TempFile& operator=(TempFile&&) = delete;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (live_) {
      fd_ = sys::UniqueFd();
      ::unlink(temp_.c_str());
    }
  }

  int fd() const { return fd_.get(); }

  // Commit makes the file durable and renames it over the target.
  Result<void> Commit() {
    if (::fsync(fd_.get()) != 0) {
      return sys::IoError("eif: fsync " + temp_, errno);
    }
    if (::close(fd_.Release()) != 0) {
      return sys::IoError("eif: close " + temp_, errno);
    }
    if (::rename(temp_.c_str(), target_.c_str()) != 0) {
      return sys::IoError("eif: rename " + temp_ + " to " + target_, errno);
    }
    live_ = false;
    // Best effort: make the rename itself durable. The image is complete either way.
    size_t slash = target_.rfind('/');
    std::string dir = slash == std::string::npos ? "." : target_.substr(0, slash + 1);
    int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      (void)::fsync(dir_fd);
      ::close(dir_fd);
    }
    return Ok();
  }

 private:
  TempFile(std::string target, std::string temp, sys::UniqueFd fd)
      : target_(std::move(target)), temp_(std::move(temp)), fd_(std::move(fd)) {}

  std::string target_;
  std::string temp_;
  sys::UniqueFd fd_;
  bool live_ = true;
};

Bytes Pcr8(const Plan& plan) { return ExtendPcr(crypto::Sha384(*plan.certificate_der)); }

// Measure streams every section of `plan` once through the PCR hashers and `others` (the CRC
// and the file writer when writing), and returns PCR0/1/2.
Result<Measurements> Measure(const Plan& plan, ProgressReporter& progress,
                             std::vector<internal::Consumer*> others) {
  internal::Pcr0Hasher pcr0;
  internal::Pcr12Hasher pcr12;
  others.insert(others.begin(), {&pcr0, &pcr12});
  {
    Pipeline pipeline(std::move(others), OptionsFor(plan, progress));
    RETURN_IF_ERROR(pipeline.Start());
    auto produced = Produce(plan, pipeline);
    auto finished = pipeline.Finish();
    RETURN_IF_ERROR(produced);
    RETURN_IF_ERROR(finished);
  }
  Measurements m;
  m.pcr0 = pcr0.Pcr0();
  m.pcr1 = pcr12.Pcr1();
  m.pcr2 = pcr12.Pcr2();
  return m;
}

}  // namespace

Result<Measurements> WriteEif(const ImageSpec& spec, const std::string& path) {
  ASSIGN_OR_RETURN(Plan plan, MakePlan(spec));
  ASSIGN_OR_RETURN(TempFile file, TempFile::Create(path));

  internal::Crc32 crc;
  internal::FileWriter writer(file.fd(), kHeaderSize);
  ProgressReporter progress(spec, plan.body_end - kHeaderSize);
  ASSIGN_OR_RETURN(Measurements m, Measure(plan, progress, {&crc, &writer}));

  internal::Header header;
  header.flags = spec.flags;
  header.default_mem = spec.default_mem;
  header.default_cpus = spec.default_cpus;
  uint64_t offset = kHeaderSize;
  size_t index = 0;
  for (const PlannedSection& s : plan.sections) {
    header.section_offsets[index] = offset;
    header.section_sizes[index] = s.size;
    offset += kSectionHeaderSize + s.size;  // MakePlan checked the sum.
    ++index;
  }
  uint32_t sections_crc = crc.crc();
  uint64_t sections_length = crc.length();
  if (spec.signer != nullptr) {
    ASSIGN_OR_RETURN(Bytes signature, EncodeSignatureSection(*spec.signer, m.pcr0));
    const internal::SectionHeaderBytes section_header = internal::EncodeSectionHeader(
        {static_cast<uint16_t>(SectionType::kSignature), 0, signature.size()});
    Bytes tail = Concat({section_header, signature});
    auto written = sys::PwriteFull(file.fd(), tail, plan.body_end);
    if (!written) {
      return std::move(written).error().WithContext("eif: writing the image");
    }
    sections_crc = internal::CrcUpdate(sections_crc, tail);
    sections_length += tail.size();
    header.section_offsets[index] = plan.body_end;
    header.section_sizes[index] = signature.size();
    ++index;
    m.pcr8 = Pcr8(plan);
  }
  header.num_sections = static_cast<uint16_t>(index);
  internal::HeaderBytes bytes = internal::EncodeHeader(header);
  // The CRC covers the header up to its own field, then every section in file order; the
  // sections' CRC was computed as they streamed, so combine rather than re-read them.
  uint32_t header_crc = internal::CrcUpdate(0, ByteSpan(bytes).first(kCrcOffset));
  header.crc = internal::CrcCombine(header_crc, sections_crc, sections_length);
  bytes = internal::EncodeHeader(header);
  auto written = sys::PwriteFull(file.fd(), bytes, 0);
  if (!written) {
    return std::move(written).error().WithContext("eif: writing the image");
  }
  RETURN_IF_ERROR(file.Commit());
  progress.Done();
  return m;
}

Result<Measurements> MeasureImage(const ImageSpec& spec) {
  ASSIGN_OR_RETURN(Plan plan, MakePlan(spec));
  ProgressReporter progress(spec, plan.body_end - kHeaderSize);
  ASSIGN_OR_RETURN(Measurements m, Measure(plan, progress, {}));
  if (plan.certificate_der) {
    m.pcr8 = Pcr8(plan);
  }
  progress.Done();
  return m;
}

}  // namespace enclavia::eif
