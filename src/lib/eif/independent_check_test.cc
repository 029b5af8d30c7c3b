// SPDX-License-Identifier: Apache-2.0
// The independent check: tests/integration/eif_check.py, a from-scratch Python reading of the
// format (stdlib only, no code shared with this library), must agree with the writer and reader
// on the CRC, every PCR and the section table.
#include <cstdio>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include "lib/base/encoding.h"
#include "lib/crypto/random.h"
#include "lib/eif/reader.h"
#include "lib/eif/test_util.h"
#include "lib/eif/writer.h"

#ifndef ENCLAVIA_EIF_CHECK_PY
#error "ENCLAVIA_EIF_CHECK_PY must name tests/integration/eif_check.py"
#endif

namespace enclavia::eif {
namespace {

using crypto::SignatureAlgorithm;

// RunCheck runs the script on `path` and returns its stdout and exit status.
std::pair<std::string, int> RunCheck(const std::string& path) {
  std::string command = "python3 '" ENCLAVIA_EIF_CHECK_PY "' '" + path + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return {"popen failed", -1};
  }
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) {
    out.append(buf, n);
  }
  return {out, ::pclose(pipe)};
}

struct Shape {
  std::vector<size_t> ramdisk_sizes;
  size_t kernel_size;
  std::string cmdline;
  std::optional<SignatureAlgorithm> signer;
};

class IndependentCheckTest : public ::testing::TestWithParam<Shape> {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(crypto::Init()); }
};

TEST_P(IndependentCheckTest, PythonReadingAgrees) {
  const Shape& shape = GetParam();
  testing::TempDir dir;
  testing::TestImage image;
  uint64_t seed = shape.kernel_size;
  image.kernel = testing::Random(shape.kernel_size, seed++);
  image.cmdline = shape.cmdline;
  for (size_t size : shape.ramdisk_sizes) {
    image.ramdisks.push_back(testing::Random(size, seed++));
  }
  std::optional<SigningKey> signer;
  if (shape.signer) {
    signer = testing::MakeSigner(*shape.signer);
  }
  const std::string path = dir.File("image.eif");
  auto m = WriteEif(image.Spec(signer ? &*signer : nullptr), path);
  ASSERT_TRUE(m) << m.error().message();
  auto info = ReadEif(path);
  ASSERT_TRUE(info) << info.error().message();

  auto [out, status] = RunCheck(path);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    GTEST_SKIP() << "python3 not found";
  }
  ASSERT_EQ(status, 0) << out;
  nlohmann::json j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["crc_ok"], true);
  char crc[16];
  std::snprintf(crc, sizeof(crc), "0x%08x", info->header_crc);
  EXPECT_EQ(j["crc"], crc);
  EXPECT_EQ(j["pcr0"], HexEncode(m->pcr0));
  EXPECT_EQ(j["pcr1"], HexEncode(m->pcr1));
  EXPECT_EQ(j["pcr2"], HexEncode(m->pcr2));
  if (signer) {
    ASSERT_TRUE(m->pcr8.has_value());
    EXPECT_EQ(j["pcr8"], HexEncode(*m->pcr8));
    EXPECT_EQ(j["signed_pcr0_matches"], true);
  } else {
    EXPECT_FALSE(j.contains("pcr8"));
  }
  ASSERT_EQ(j["sections"].size(), info->sections.size());
  for (size_t i = 0; i < info->sections.size(); ++i) {
    EXPECT_EQ(j["sections"][i]["type"], static_cast<int>(info->sections[i].type)) << i;
    EXPECT_EQ(j["sections"][i]["size"], info->sections[i].size) << i;
  }

  // A flipped bit: both readings see the CRC fail.
  Bytes bytes = testing::ReadAll(path);
  bytes[bytes.size() / 2] ^= 0x10;
  testing::WriteAll(path, bytes);
  ReadLimits lax;
  lax.require_crc = false;
  auto damaged = ReadEif(path, lax);
  auto [damaged_out, damaged_status] = RunCheck(path);
  if (damaged) {  // The flip may land in a signature section that no longer decodes.
    EXPECT_FALSE(damaged->crc_ok);
    ASSERT_EQ(damaged_status, 0) << damaged_out;
    nlohmann::json d = nlohmann::json::parse(damaged_out, nullptr, false);
    EXPECT_EQ(d["crc_ok"], false);
    EXPECT_EQ(d["pcr0"], HexEncode(damaged->measurements.pcr0));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Images, IndependentCheckTest,
    ::testing::Values(Shape{{100}, 1000, "console=ttyS0", std::nullopt},
                      Shape{{1, 2}, 10, "", std::nullopt},
                      Shape{{4096, 70000, 3}, 5000, "a b c", SignatureAlgorithm::kEcdsaP384Sha384},
                      Shape{{0, 0}, 0, "", SignatureAlgorithm::kEcdsaP256Sha256},
                      Shape{{3 << 20, 21 << 20},
                            6 << 20,
                            "console=ttyS0 reboot=k",
                            SignatureAlgorithm::kEcdsaP384Sha384}));

}  // namespace
}  // namespace enclavia::eif
