// SPDX-License-Identifier: Apache-2.0
// The reader against malformed images: each names its problem in one line.
#include "lib/eif/reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/cbor/cbor.h"
#include "lib/crypto/random.h"
#include "lib/eif/test_util.h"
#include "lib/eif/writer.h"

namespace enclavia::eif {
namespace {

using crypto::SignatureAlgorithm;
using testing::BuildRaw;
using testing::FixCrc;
using ::testing::HasSubstr;
using testing::kNumSectionsOffset;
using testing::kOffsetsOffset;
using testing::kSizesOffset;
using testing::MakeSigner;
using testing::Put16;
using testing::Put64;
using testing::RawSection;
using testing::ReadAll;
using testing::TempDir;
using testing::TestImage;

constexpr uint16_t kKernel = 1;
constexpr uint16_t kCmdline = 2;
constexpr uint16_t kRamdisk = 3;
constexpr uint16_t kSignature = 4;
constexpr uint16_t kMetadata = 5;

Bytes Meta() { return EncodeMetadata(testing::SampleIdentity()); }

// A valid image by hand: kernel, cmdline, metadata, two ramdisks.
std::vector<RawSection> Valid() {
  return {{kKernel, ToBytes("kernel")},
          {kCmdline, ToBytes("console=ttyS0")},
          {kMetadata, Meta()},
          {kRamdisk, ToBytes("ramdisk one")},
          {kRamdisk, ToBytes("ramdisk two")}};
}

void ExpectError(const Result<EifInfo>& r, Code code, const std::string& substring) {
  ASSERT_FALSE(r.has_value()) << "expected: " << substring;
  EXPECT_EQ(r.error().code(), code) << r.error().message();
  EXPECT_THAT(r.error().message(), HasSubstr(substring));
  EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
  EXPECT_EQ(r.error().message().rfind("eif: ", 0), 0u) << r.error().message();
}

TEST(ReaderTest, AcceptsTheHandBuiltImage) {
  auto info = ParseEif(BuildRaw(Valid()));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->sections.size(), 5u);
  EXPECT_TRUE(info->crc_ok);
}

TEST(ReaderTest, AcceptsOlderVersionsWithoutMetadata) {
  std::vector<RawSection> v = Valid();
  v.erase(v.begin() + 2);
  for (uint16_t version : {2, 3}) {
    auto info = ParseEif(BuildRaw(v, version));
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->version, version);
    EXPECT_FALSE(info->metadata.has_value());
    EXPECT_THAT(DescribeJson(*info), ::testing::Not(HasSubstr("ImageName")));
  }
}

TEST(ReaderTest, RejectsBadMagic) {
  Bytes b = BuildRaw(Valid());
  b[0] = 'x';
  ExpectError(ParseEif(b), Code::kMalformed, "bad magic");
}

TEST(ReaderTest, RejectsUnsupportedVersions) {
  ExpectError(ParseEif(BuildRaw(Valid(), 5)), Code::kUnsupported, "unsupported version 5");
  ExpectError(ParseEif(BuildRaw(Valid(), 1)), Code::kUnsupported, "unsupported version 1");
}

TEST(ReaderTest, RejectsTruncatedHeader) {
  Bytes b = BuildRaw(Valid());
  b.resize(100);
  ExpectError(ParseEif(b), Code::kMalformed, "truncated header: the file is 100 bytes");
  ExpectError(ParseEif({}), Code::kMalformed, "truncated header");
}

TEST(ReaderTest, RejectsBadCrcUnlessAskedToReportIt) {
  Bytes b = BuildRaw(Valid());
  b[b.size() - 1] ^= 1;  // Last byte of the last ramdisk.
  ExpectError(ParseEif(b), Code::kVerifyFailed, "CRC mismatch: header 0x");
  ReadLimits lax;
  lax.require_crc = false;
  auto info = ParseEif(b, lax);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_FALSE(info->crc_ok);
  EXPECT_NE(info->header_crc, info->computed_crc);
  EXPECT_THAT(DescribeJson(*info), HasSubstr("\"CheckCRC\": false"));
}

TEST(ReaderTest, CrcCoversTheHeader) {
  Bytes b = BuildRaw(Valid());
  b[16 + 7] = 9;  // default_cpus
  ExpectError(ParseEif(b), Code::kVerifyFailed, "CRC mismatch");
}

TEST(ReaderTest, RejectsSectionPastEndOfFile) {
  Bytes b = BuildRaw(Valid());
  b.resize(b.size() - 5);
  ExpectError(ParseEif(b), Code::kMalformed, "section 4 (ramdisk), 11 bytes at offset");
  ExpectError(ParseEif(b), Code::kMalformed, "runs past the end of the file");
  // A size so large the arithmetic would overflow.
  b = BuildRaw(Valid());
  const size_t last = b.size() - 11 - 12;
  Put64(b, last + 4, ~uint64_t{0});
  Put64(b, kSizesOffset + 8 * 4, ~uint64_t{0});
  ExpectError(ParseEif(b), Code::kMalformed, "runs past the end of the file");
}

TEST(ReaderTest, RejectsTooManyOrNoSections) {
  std::vector<RawSection> many = Valid();
  while (many.size() < 33) {
    many.push_back({kRamdisk, ToBytes("r")});
  }
  ExpectError(ParseEif(BuildRaw(many)), Code::kMalformed, "declares 33 sections");
  Bytes b = BuildRaw(Valid());
  Put16(b, kNumSectionsOffset, 0);
  ExpectError(ParseEif(b), Code::kMalformed, "declares 0 sections");
}

TEST(ReaderTest, RejectsMissingAndDuplicateSections) {
  std::vector<RawSection> v = Valid();
  v.erase(v.begin() + 3, v.end());
  ExpectError(ParseEif(BuildRaw(v)), Code::kMalformed, "no ramdisk section");

  v = Valid();
  v.erase(v.begin());
  ExpectError(ParseEif(BuildRaw(v)), Code::kMalformed, "no kernel section");

  v = Valid();
  v.erase(v.begin() + 1);
  ExpectError(ParseEif(BuildRaw(v)), Code::kMalformed, "no cmdline section");

  v = Valid();
  v.insert(v.begin() + 1, {kKernel, ToBytes("another")});
  ExpectError(ParseEif(BuildRaw(v)), Code::kMalformed, "more than one kernel section");

  v = Valid();
  v.push_back({kMetadata, Meta()});
  ExpectError(ParseEif(BuildRaw(v)), Code::kMalformed, "more than one metadata section");

  v = Valid();
  v.push_back({kCmdline, ToBytes("x")});
  ExpectError(ParseEif(BuildRaw(v)), Code::kMalformed, "more than one cmdline section");
}

TEST(ReaderTest, RejectsRamdisksThatAreNotContiguous) {
  std::vector<RawSection> v = Valid();
  v.insert(v.begin() + 4, {kMetadata, Meta()});
  v.erase(v.begin() + 2);  // kernel, cmdline, ramdisk, metadata, ramdisk
  ExpectError(ParseEif(BuildRaw(v)), Code::kMalformed, "ramdisks are not contiguous");
}

TEST(ReaderTest, RejectsSectionsTheVersionDoesNotHave) {
  ExpectError(ParseEif(BuildRaw(Valid(), 3)), Code::kMalformed,
              "metadata section in a version 3 image");
  std::vector<RawSection> v = Valid();
  v.erase(v.begin() + 2);
  v.push_back({kSignature, ToBytes("x")});
  ExpectError(ParseEif(BuildRaw(v, 2)), Code::kMalformed, "signature section in a version 2");
}

TEST(ReaderTest, RejectsInvalidSectionTypes) {
  for (uint16_t type : {0, 6, 0xffff}) {
    std::vector<RawSection> v = Valid();
    v.push_back({type, ToBytes("x")});
    ExpectError(ParseEif(BuildRaw(v)), Code::kMalformed,
                "section 5 has invalid type " + std::to_string(type));
  }
}

TEST(ReaderTest, RejectsHeaderThatDisagreesWithSectionHeaders) {
  Bytes b = BuildRaw(Valid());
  Put64(b, kSizesOffset + 8 * 1, 12);  // cmdline is 13 bytes
  FixCrc(b);
  ExpectError(ParseEif(b), Code::kMalformed,
              "section 1 (cmdline): the header table says 12 bytes, its section header 13");
}

TEST(ReaderTest, RejectsGapsOverlapsAndTrailingData) {
  Bytes b = BuildRaw(Valid());
  b.push_back(0);
  ExpectError(ParseEif(b), Code::kMalformed, "1 bytes of trailing data after the last section");

  b = BuildRaw(Valid());
  uint64_t second = 548 + 12 + 6;
  Put64(b, kOffsetsOffset + 8, second + 4);
  ExpectError(ParseEif(b), Code::kMalformed, "gap of 4 bytes before section 1");

  b = BuildRaw(Valid());
  Put64(b, kOffsetsOffset + 8, second - 2);
  ExpectError(ParseEif(b), Code::kMalformed, "section 1 at offset 564 overlaps the previous");

  b = BuildRaw(Valid());
  Put64(b, kOffsetsOffset, 500);
  ExpectError(ParseEif(b), Code::kMalformed, "overlaps the EIF header");

  b = BuildRaw(Valid());
  Put64(b, kOffsetsOffset + 8 * 31, 7);
  ExpectError(ParseEif(b), Code::kMalformed, "unused section table entry 31 is not zero");
}

TEST(ReaderTest, EnforcesLimits) {
  ReadLimits limits;
  limits.max_kernel = 5;
  ExpectError(ParseEif(BuildRaw(Valid()), limits), Code::kLimitExceeded,
              "section 0 (kernel) is 6 bytes, over the limit of 5");
  limits = {};
  limits.max_file_size = 600;
  ExpectError(ParseEif(BuildRaw(Valid()), limits), Code::kLimitExceeded, "over the limit of 600");
  limits = {};
  limits.max_metadata = 10;
  ExpectError(ParseEif(BuildRaw(Valid()), limits), Code::kLimitExceeded, "(metadata)");
}

TEST(ReaderTest, RejectsMetadataThatDoesNotDecode) {
  std::vector<RawSection> v = Valid();
  v[2].data = ToBytes(R"({"ImageName":"x"})");
  ExpectError(ParseEif(BuildRaw(v)), Code::kMalformed, "eif: metadata: missing ImageVersion");
}

TEST(ReaderTest, ReadEifReportsMissingFiles) {
  auto r = ReadEif("/nonexistent/image.eif");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kIo);
  EXPECT_THAT(r.error().message(), HasSubstr("/nonexistent/image.eif"));
}

TEST(ReaderTest, ReadSectionDataNoticesAChangedFile) {
  TempDir dir;
  testing::WriteAll(dir.File("a.eif"), BuildRaw(Valid()));
  auto info = ReadEif(dir.File("a.eif"));
  ASSERT_TRUE(info) << info.error().message();
  auto data = ReadSectionData(dir.File("a.eif"), info->sections[3], 100);
  ASSERT_TRUE(data);
  EXPECT_EQ(AsString(*data), "ramdisk one");
  auto big = ReadSectionData(dir.File("a.eif"), info->sections[3], 5);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), Code::kLimitExceeded);
  std::vector<RawSection> v = Valid();
  v[3].data = ToBytes("ramdisk 1");
  testing::WriteAll(dir.File("a.eif"), BuildRaw(v));
  auto changed = ReadSectionData(dir.File("a.eif"), info->sections[3], 100);
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code(), Code::kFailedPrecondition);
  EXPECT_THAT(changed.error().message(), HasSubstr("changed since it was read"));
}

// Signature sections.

class SignatureReadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(crypto::Init()); }

  // SignedSections returns Valid() plus a signature section over its PCR0.
  std::vector<RawSection> Signed(const SigningKey& signer, ByteSpan pcr0) {
    std::vector<RawSection> v = Valid();
    auto section = EncodeSignatureSection(signer, pcr0);
    ENCLAVIA_CHECK(section.has_value());
    v.push_back({kSignature, *section});
    return v;
  }
  Bytes Pcr0() {
    auto info = ParseEif(BuildRaw(Valid()));
    ENCLAVIA_CHECK(info.has_value());
    return info->measurements.pcr0;
  }
  SigningKey signer_ = MakeSigner(SignatureAlgorithm::kEcdsaP384Sha384);
};

TEST_F(SignatureReadTest, AcceptsAHandBuiltSignedImage) {
  auto info = ParseEif(BuildRaw(Signed(signer_, Pcr0())));
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_TRUE(info->signature);
  EXPECT_TRUE(info->signature->valid);
  EXPECT_TRUE(info->measurements.pcr8.has_value());
}

TEST_F(SignatureReadTest, SignatureOverAnotherPcr0DoesNotCheck) {
  Bytes other(48, 0xab);
  auto info = ParseEif(BuildRaw(Signed(signer_, other)));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_FALSE(info->signature->valid);
  EXPECT_EQ(info->signature->register_value, other);
  EXPECT_THAT(DescribeJson(*info), HasSubstr("\"SignatureCheck\": false"));
}

TEST_F(SignatureReadTest, CorruptedSignatureValueDoesNotCheck) {
  std::vector<RawSection> v = Signed(signer_, Pcr0());
  // Flip a bit in the COSE signature: the last uint of the "signature" array.
  auto decoded = cbor::Decode(v.back().data);
  ASSERT_TRUE(decoded);
  cbor::Value::Map entry = decoded->as_array()[0].as_map();
  cbor::Value::Array cose = entry[1].second.as_array();
  cose.back() = cbor::Value::Uint(cose.back().as_uint() ^ 1);
  entry[1].second = cbor::Value::MakeArray(std::move(cose));
  v.back().data = cbor::Encode(cbor::Value::MakeArray({cbor::Value::MakeMap(std::move(entry))}),
                               cbor::MapOrder::kAsGiven);
  auto info = ParseEif(BuildRaw(v));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_FALSE(info->signature->valid);
  EXPECT_EQ(info->signature->register_value, Pcr0());  // The payload still decodes.
}

TEST_F(SignatureReadTest, CertificateOfAnotherKeyDoesNotCheck) {
  SigningKey other = MakeSigner(SignatureAlgorithm::kEcdsaP384Sha384);
  std::vector<RawSection> v = Signed(signer_, Pcr0());
  auto decoded = cbor::Decode(v.back().data);
  ASSERT_TRUE(decoded);
  cbor::Value::Map entry = decoded->as_array()[0].as_map();
  entry[0].second = cbor::Value::ByteString(AsBytes(other.certificate_pem));
  v.back().data = cbor::Encode(cbor::Value::MakeArray({cbor::Value::MakeMap(std::move(entry))}),
                               cbor::MapOrder::kAsGiven);
  auto info = ParseEif(BuildRaw(v));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_FALSE(info->signature->valid);
}

TEST_F(SignatureReadTest, RejectsSignatureSectionsThatDoNotDecode) {
  struct Case {
    Bytes section;
    const char* message;
  };
  auto entry = [](cbor::Value cert, cbor::Value sig) {
    cbor::Value::Map m;
    m.emplace_back(cbor::Value::TextString("signing_certificate"), std::move(cert));
    m.emplace_back(cbor::Value::TextString("signature"), std::move(sig));
    return cbor::Encode(cbor::Value::MakeArray({cbor::Value::MakeMap(std::move(m))}),
                        cbor::MapOrder::kAsGiven);
  };
  const cbor::Value pem = cbor::Value::ByteString(AsBytes(signer_.certificate_pem));
  std::vector<Case> cases = {
      {ToBytes("garbage"), "eif: signature:"},
      {cbor::Encode(cbor::Value::MakeArray({})), "no PCR signature"},
      {cbor::Encode(cbor::Value::MakeMap({})), "not an array"},
      {entry(cbor::Value::TextString("pem"), cbor::Value::ByteString(Bytes{})),
       "signing_certificate is not bytes"},
      {entry(cbor::Value::MakeArray({cbor::Value::Uint(256)}), cbor::Value::ByteString(Bytes{})),
       "non-byte element"},
      {entry(cbor::Value::ByteString(ToBytes("not a certificate")),
             cbor::Value::ByteString(Bytes{})),
       "signing certificate"},
      {entry(pem, cbor::Value::ByteString(ToBytes("not cose"))), "eif: signature: cose"},
  };
  for (const Case& c : cases) {
    std::vector<RawSection> v = Valid();
    v.push_back({kSignature, c.section});
    ExpectError(ParseEif(BuildRaw(v)), Code::kMalformed, c.message);
  }
}

}  // namespace
}  // namespace enclavia::eif
