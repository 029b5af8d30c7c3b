// SPDX-License-Identifier: Apache-2.0
// Round trips through WriteEif and ReadEif, known answers, and the writer's contract.
#include <cstdio>
#include <tuple>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"
#include "lib/crypto/x509.h"
#include "lib/eif/reader.h"
#include "lib/eif/test_util.h"
#include "lib/eif/writer.h"

namespace enclavia::eif {
namespace {

using crypto::SignatureAlgorithm;
using ::testing::HasSubstr;
using testing::MakeSigner;
using testing::Random;
using testing::ReadAll;
using testing::TempDir;
using testing::TestImage;

// Pcr computes a PCR the long way, with nothing from the library but SHA-384.
Bytes Pcr(std::initializer_list<ByteSpan> parts) {
  Bytes all;
  for (ByteSpan p : parts) {
    all.insert(all.end(), p.begin(), p.end());
  }
  crypto::Sha384Digest digest = crypto::Sha384(all);
  Bytes extend(48, 0);
  extend.insert(extend.end(), digest.begin(), digest.end());
  crypto::Sha384Digest pcr = crypto::Sha384(extend);
  return Bytes(pcr.begin(), pcr.end());
}

TestImage SmallImage(size_t ramdisks, uint64_t seed, std::string cmdline = "console=ttyS0") {
  TestImage image;
  image.kernel = Random(3000 + seed, seed);
  image.cmdline = std::move(cmdline);
  for (size_t i = 0; i < ramdisks; ++i) {
    image.ramdisks.push_back(Random(1000 * (i + 1) + seed, seed + i + 1));
  }
  return image;
}

class RoundTripTest : public ::testing::TestWithParam<std::tuple<size_t, bool, bool>> {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(crypto::Init()); }
};

TEST_P(RoundTripTest, ReadsBackWhatWasWritten) {
  auto [ramdisks, is_signed, empty_cmdline] = GetParam();
  TempDir dir;
  TestImage image = SmallImage(ramdisks, 7, empty_cmdline ? "" : "console=ttyS0 quiet");
  SigningKey signer = MakeSigner(SignatureAlgorithm::kEcdsaP384Sha384);
  ImageSpec spec = image.Spec(is_signed ? &signer : nullptr);
  auto written = WriteEif(spec, dir.File("image.eif"));
  ASSERT_TRUE(written) << written.error().message();
  auto measured = MeasureImage(spec);
  ASSERT_TRUE(measured) << measured.error().message();
  EXPECT_EQ(*measured, *written);

  auto info = ReadEif(dir.File("image.eif"));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->version, 4);
  EXPECT_EQ(info->flags, 0);
  EXPECT_EQ(info->default_mem, 1073741824u);
  EXPECT_EQ(info->default_cpus, 2u);
  EXPECT_TRUE(info->crc_ok);
  EXPECT_EQ(info->header_crc, info->computed_crc);
  EXPECT_EQ(info->measurements, *written);

  // nitro-cli's order: kernel, cmdline, metadata, ramdisks, signature.
  std::vector<SectionType> types = {SectionType::kKernel, SectionType::kCmdline,
                                    SectionType::kMetadata};
  std::vector<uint64_t> sizes = {image.kernel.size(), image.cmdline.size(),
                                 EncodeMetadata(image.identity).size()};
  for (const Bytes& r : image.ramdisks) {
    types.push_back(SectionType::kRamdisk);
    sizes.push_back(r.size());
  }
  if (is_signed) {
    types.push_back(SectionType::kSignature);
  }
  ASSERT_EQ(info->sections.size(), types.size());
  uint64_t offset = kHeaderSize;
  for (size_t i = 0; i < types.size(); ++i) {
    EXPECT_EQ(info->sections[i].type, types[i]) << i;
    EXPECT_EQ(info->sections[i].header_offset, offset) << i;
    EXPECT_EQ(info->sections[i].data_offset, offset + kSectionHeaderSize) << i;
    if (i < sizes.size()) {
      EXPECT_EQ(info->sections[i].size, sizes[i]) << i;
    }
    offset += kSectionHeaderSize + info->sections[i].size;
  }
  ASSERT_TRUE(info->metadata.has_value());
  IdentityInfo expected = image.identity;
  expected.docker_info_json = R"({"a":[true,null],"b":1})";  // Keys sorted, as serde_json.
  EXPECT_EQ(*info->metadata, expected);
  EXPECT_EQ(info->metadata_json, std::string(AsString(EncodeMetadata(image.identity))));

  auto kernel = ReadSectionData(dir.File("image.eif"), info->sections[0], 1 << 20);
  ASSERT_TRUE(kernel);
  EXPECT_EQ(*kernel, image.kernel);
  auto cmdline = ReadSectionData(dir.File("image.eif"), info->sections[1], 1 << 20);
  ASSERT_TRUE(cmdline);
  EXPECT_EQ(AsString(*cmdline), image.cmdline);  // No NUL terminator.

  if (is_signed) {
    ASSERT_TRUE(info->signature.has_value());
    EXPECT_TRUE(info->signature->valid);
    EXPECT_EQ(info->signature->register_index, 0);
    EXPECT_EQ(info->signature->register_value, written->pcr0);
    EXPECT_EQ(info->signature->certificate_pem, signer.certificate_pem);
    auto cert = crypto::Certificate::FromPem(signer.certificate_pem);
    ASSERT_TRUE(cert);
    ASSERT_TRUE(written->pcr8.has_value());
    EXPECT_EQ(*written->pcr8, Pcr({cert->der()}));
  } else {
    EXPECT_FALSE(info->signature.has_value());
    EXPECT_FALSE(written->pcr8.has_value());
  }

  // The in-memory parser agrees.
  auto parsed = ParseEif(ReadAll(dir.File("image.eif")));
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->measurements, info->measurements);
  EXPECT_EQ(parsed->computed_crc, info->computed_crc);
  EXPECT_EQ(DescribeJson(*parsed), DescribeJson(*info));
  // Only the image is left in the directory.
  EXPECT_THAT(dir.Entries(), ::testing::ElementsAre("image.eif"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, RoundTripTest,
                         ::testing::Combine(::testing::Values(1, 2, 3), ::testing::Bool(),
                                            ::testing::Bool()));

TEST(KnownAnswerTest, PcrsAreSha384OfTheConcatenationExtendedOnce) {
  TempDir dir;
  TestImage image;
  image.kernel = ToBytes("KERNEL");
  image.cmdline = "init=/x";
  image.ramdisks = {ToBytes("RAMDISK-ONE"), ToBytes("RAMDISK-TWO"), ToBytes("3")};
  auto m = WriteEif(image.Spec(), dir.File("a.eif"));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->pcr0, Pcr({AsBytes("KERNELinit=/xRAMDISK-ONERAMDISK-TWO3")}));
  EXPECT_EQ(m->pcr1, Pcr({AsBytes("KERNELinit=/xRAMDISK-ONE")}));
  EXPECT_EQ(m->pcr2, Pcr({AsBytes("RAMDISK-TWO3")}));

  image.ramdisks.resize(1);
  auto one = MeasureImage(image.Spec());
  ASSERT_TRUE(one);
  EXPECT_EQ(one->pcr0, one->pcr1);
  EXPECT_EQ(one->pcr2, Pcr({}));  // No second ramdisk: the extend of SHA-384("").
  // Literal values, computed outside this code base (Python hashlib).
  EXPECT_EQ(HexEncode(one->pcr2),
            "21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c10edb30948c90ba67310f7"
            "b964fc500a");
  EXPECT_EQ(HexEncode(m->pcr0),
            "5f57711044166caf16fd80ba61d1b1cf2ba26498120e58677a96d5cd75d4314b11234c9f7ce12cc229cfb8"
            "457dbf6bc8");
}

TEST(KnownAnswerTest, HeaderFieldsAndOffsetsAreBigEndianAsNitroCliWritesThem) {
  TempDir dir;
  TestImage image;
  image.kernel = ToBytes("K");
  image.cmdline = "c";
  image.ramdisks = {ToBytes("R")};
  ImageSpec spec = image.Spec();
  spec.flags = kFlagAarch64;
  spec.default_mem = 0x0102030405060708;
  spec.default_cpus = 3;
  ASSERT_TRUE(WriteEif(spec, dir.File("a.eif")));
  Bytes b = ReadAll(dir.File("a.eif"));
  const size_t meta = EncodeMetadata(image.identity).size();
  ASSERT_EQ(b.size(), 548 + 4 * 12 + 1 + 1 + meta + 1);
  EXPECT_EQ(HexEncode(ByteSpan(b).first(28)),
            "2e656966"          // magic
            "0004"              // version
            "0001"              // flags
            "0102030405060708"  // default_mem
            "0000000000000003"  // default_cpus
            "0000"              // reserved
            "0004");            // num_sections
  auto u64 = [&](size_t at) {
    uint64_t v = 0;
    for (size_t i = 0; i < 8; ++i) {
      v = v << 8 | b[at + i];
    }
    return v;
  };
  const uint64_t offsets[] = {548, 548 + 13, 548 + 26, 548 + 38 + meta};
  const uint64_t sizes[] = {1, 1, meta, 1};
  for (size_t i = 0; i < 32; ++i) {
    EXPECT_EQ(u64(28 + 8 * i), i < 4 ? offsets[i] : 0) << i;
    EXPECT_EQ(u64(28 + 256 + 8 * i), i < 4 ? sizes[i] : 0) << i;
  }
  EXPECT_EQ(HexEncode(ByteSpan(b).subspan(540, 4)), "00000000");  // unused
  // Section header: type, flags, size; then the data.
  EXPECT_EQ(HexEncode(ByteSpan(b).subspan(548, 13)),
            "0001"
            "0000"
            "0000000000000001"
            "4b");
  EXPECT_EQ(HexEncode(ByteSpan(b).subspan(561, 13)),
            "0002"
            "0000"
            "0000000000000001"
            "63");
  char meta_size[17];
  std::snprintf(meta_size, sizeof(meta_size), "%016zx", meta);
  EXPECT_EQ(HexEncode(ByteSpan(b).subspan(574, 12)), std::string("0005"
                                                                 "0000") +
                                                         meta_size);
  EXPECT_EQ(AsString(ByteSpan(b).subspan(586, meta)), AsString(EncodeMetadata(image.identity)));
  auto info = ParseEif(b);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->flags, kFlagAarch64);
  EXPECT_EQ(info->default_mem, 0x0102030405060708u);
  EXPECT_EQ(info->default_cpus, 3u);
}

TEST(WriterTest, SameInputsGiveTheSameBytes) {
  TempDir dir;
  TestImage image = SmallImage(2, 3);
  ASSERT_TRUE(WriteEif(image.Spec(), dir.File("a.eif")));
  ASSERT_TRUE(WriteEif(image.Spec(), dir.File("b.eif")));
  EXPECT_EQ(ReadAll(dir.File("a.eif")), ReadAll(dir.File("b.eif")));
}

TEST(WriterTest, LargeImageStreamsThroughWorkerThreads) {
  // Big enough for the threaded pipeline, the in-place path for a 40 MiB span, and several
  // progress reports.
  TempDir dir;
  TestImage image;
  image.kernel = Random(5 << 20, 1);
  image.cmdline = "console=ttyS0";
  image.ramdisks = {Random(3 << 20, 2), Random(40 << 20, 3), Random(12345, 4)};
  SigningKey signer = MakeSigner(SignatureAlgorithm::kEcdsaP256Sha256);
  ImageSpec spec = image.Spec(&signer);
  std::vector<std::pair<uint64_t, uint64_t>> reports;
  spec.progress = [&](uint64_t done, uint64_t total) { reports.emplace_back(done, total); };
  auto m = WriteEif(spec, dir.File("big.eif"));
  ASSERT_TRUE(m) << m.error().message();
  const Bytes& k = image.kernel;
  const auto& r = image.ramdisks;
  EXPECT_EQ(m->pcr0, Pcr({k, AsBytes(image.cmdline), r[0], r[1], r[2]}));
  EXPECT_EQ(m->pcr1, Pcr({k, AsBytes(image.cmdline), r[0]}));
  EXPECT_EQ(m->pcr2, Pcr({r[1], r[2]}));
  ASSERT_GE(reports.size(), 5u);
  for (size_t i = 1; i < reports.size(); ++i) {
    EXPECT_GE(reports[i].first, reports[i - 1].first);
  }
  EXPECT_EQ(reports.back().first, reports.back().second);

  auto info = ReadEif(dir.File("big.eif"));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->measurements, *m);
  EXPECT_TRUE(info->signature->valid);
  Bytes bytes = ReadAll(dir.File("big.eif"));
  auto parsed = ParseEif(bytes);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->measurements, *m);
  EXPECT_EQ(parsed->computed_crc, info->header_crc);
}

// LyingSource declares one size and produces another.
class LyingSource final : public ByteSource {
 public:
  LyingSource(uint64_t declared, size_t produced) : declared_(declared), data_(produced, 'x') {}
  uint64_t size() const override { return declared_; }
  Result<void> WriteTo(ByteSink& sink) const override { return sink.Write(data_); }

 private:
  uint64_t declared_;
  Bytes data_;
};

class FailingSource final : public ByteSource {
 public:
  uint64_t size() const override { return 100; }
  Result<void> WriteTo(ByteSink& sink) const override {
    RETURN_IF_ERROR(sink.Write(Bytes(10, 'y')));
    return Error(Code::kIo, "read /app/file: Input/output error");
  }
};

TEST(WriterTest, RejectsBadSpecsAndLeavesNothingBehind) {
  TempDir dir;
  TestImage image = SmallImage(1, 1);
  const std::string out = dir.File("x.eif");
  struct Case {
    std::function<void(ImageSpec&)> change;
    Code code;
    const char* message;
  };
  LyingSource short_source(100, 50);
  LyingSource long_source(10, 50);
  FailingSource failing;
  std::vector<BytesSource> many(30, BytesSource(image.ramdisks[0]));
  std::vector<Case> cases = {
      {[](ImageSpec& s) { s.kernel = nullptr; }, Code::kInvalidArgument, "no kernel"},
      {[](ImageSpec& s) { s.ramdisks.clear(); }, Code::kInvalidArgument, "no ramdisk"},
      {[&](ImageSpec& s) {
         s.ramdisks.clear();
         for (const BytesSource& m : many) {
           s.ramdisks.push_back(&m);
         }
       },
       Code::kInvalidArgument, "33 sections"},
      {[](ImageSpec& s) { s.cmdline = std::string("a\0b", 3); }, Code::kInvalidArgument, "NUL"},
      {[](ImageSpec& s) { s.metadata = ToBytes("{}"); }, Code::kInvalidArgument,
       "metadata does not decode"},
      {[&](ImageSpec& s) { s.ramdisks.push_back(&short_source); }, Code::kInvalidArgument,
       "ramdisk 2 produced 50 bytes but declared 100"},
      {[&](ImageSpec& s) { s.ramdisks.push_back(&long_source); }, Code::kInvalidArgument,
       "ramdisk 2 produced more than its declared 10 bytes"},
      {[&](ImageSpec& s) { s.ramdisks.push_back(&failing); }, Code::kIo,
       "eif: ramdisk 2: read /app/file"},
  };
  for (const Case& c : cases) {
    ImageSpec spec = image.Spec();
    c.change(spec);
    auto written = WriteEif(spec, out);
    ASSERT_FALSE(written) << c.message;
    EXPECT_EQ(written.error().code(), c.code) << c.message;
    EXPECT_THAT(written.error().message(), HasSubstr(c.message));
    auto measured = MeasureImage(spec);
    ASSERT_FALSE(measured) << c.message;
    EXPECT_EQ(measured.error().code(), c.code) << c.message;
    EXPECT_TRUE(dir.Entries().empty()) << c.message;
  }
}

TEST(WriterTest, FailureKeepsAnExistingImage) {
  TempDir dir;
  TestImage image = SmallImage(1, 1);
  ASSERT_TRUE(WriteEif(image.Spec(), dir.File("x.eif")));
  Bytes before = ReadAll(dir.File("x.eif"));
  FailingSource failing;
  ImageSpec spec = image.Spec();
  spec.ramdisks.push_back(&failing);
  ASSERT_FALSE(WriteEif(spec, dir.File("x.eif")));
  EXPECT_EQ(ReadAll(dir.File("x.eif")), before);
  EXPECT_THAT(dir.Entries(), ::testing::ElementsAre("x.eif"));
}

TEST(WriterTest, ReportsIoErrors) {
  TestImage image = SmallImage(1, 1);
  auto written = WriteEif(image.Spec(), "/nonexistent-dir/x.eif");
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().code(), Code::kIo);
  EXPECT_THAT(written.error().message(), HasSubstr("/nonexistent-dir/x.eif"));
}

TEST(WriterTest, RefusesSignersNitroCliCannotCheck) {
  TempDir dir;
  TestImage image = SmallImage(1, 1);
  SigningKey ed = MakeSigner(SignatureAlgorithm::kEd25519);
  auto r = WriteEif(image.Spec(&ed), dir.File("x.eif"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kUnsupported);
  EXPECT_THAT(r.error().message(), HasSubstr("P-256 or P-384"));

  SigningKey a = MakeSigner(SignatureAlgorithm::kEcdsaP384Sha384);
  SigningKey b = MakeSigner(SignatureAlgorithm::kEcdsaP384Sha384);
  SigningKey mismatched{a.certificate_pem, std::move(b.key)};
  r = WriteEif(image.Spec(&mismatched), dir.File("x.eif"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("not for the signing key"));

  SigningKey garbage{"not a pem",
                     crypto::PrivateKey::Generate(SignatureAlgorithm::kEcdsaP384Sha384)};
  r = MeasureImage(image.Spec(&garbage));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("signing certificate"));
  EXPECT_TRUE(dir.Entries().empty());
}

}  // namespace
}  // namespace enclavia::eif
