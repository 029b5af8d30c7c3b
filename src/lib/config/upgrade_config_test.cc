// SPDX-License-Identifier: Apache-2.0
// The [upgrade] section: control keys pinned in the measured configuration.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "lib/base/encoding.h"
#include "lib/config/enclave_config.h"
#include "lib/config/enclaviafile.h"
#include "lib/crypto/keys.h"

namespace enclavia::config {
namespace {

constexpr std::string_view kApp = R"(
[image]
name = "hello"
version = "1"
[app]
rootfs = "rootfs"
cmd = ["/bin/hello"]
port = 8080
)";

constexpr std::string_view kEnclaveToml =
    "version = 1\n[enclave]\nname = \"hello\"\nversion = \"1\"\n[app]\ncmd = [\"/bin/hello\"]\n";

Bytes NewKey(crypto::SignatureAlgorithm alg) {
  return crypto::PrivateKey::Generate(alg).public_key().ToSpki();
}

std::string Section(const std::vector<std::string>& hex_keys) {
  std::string out = "[upgrade]\ncontrol_keys = [";
  for (size_t i = 0; i < hex_keys.size(); ++i) {
    out.append(i == 0 ? "" : ", ").append("\"").append(hex_keys[i]).append("\"");
  }
  return out.append("]\n");
}

Result<Enclaviafile> WithUpgrade(const std::string& section) {
  return ParseEnclaviafile(std::string(kApp).append(section), "/src/hello");
}

std::string ErrorOf(const Result<Enclaviafile>& r) {
  return r ? std::string("(parsed)") : r.error().message();
}

TEST(UpgradeSection, AbsentMeansNoPinnedKeys) {
  auto file = ParseEnclaviafile(kApp, "/src/hello");
  ASSERT_TRUE(file) << file.error().message();
  EXPECT_TRUE(file->upgrade.control_keys.empty());
  auto empty = WithUpgrade("[upgrade]\n");
  ASSERT_TRUE(empty) << empty.error().message();
  EXPECT_TRUE(empty->upgrade.control_keys.empty());
}

TEST(UpgradeSection, ParsesEd25519AndP256KeysInEitherCase) {
  Bytes ed = NewKey(crypto::SignatureAlgorithm::kEd25519);
  Bytes p256 = NewKey(crypto::SignatureAlgorithm::kEcdsaP256Sha256);
  std::string upper = HexEncode(p256);
  for (char& c : upper) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  auto file = WithUpgrade(Section({HexEncode(ed), upper}));
  ASSERT_TRUE(file) << file.error().message();
  ASSERT_EQ(file->upgrade.control_keys.size(), 2U);
  EXPECT_EQ(file->upgrade.control_keys[0], ed);
  EXPECT_EQ(file->upgrade.control_keys[1], p256);
}

TEST(UpgradeSection, RefusesWhatIsNotAControlKey) {
  Bytes ed = NewKey(crypto::SignatureAlgorithm::kEd25519);
  Bytes p384 = NewKey(crypto::SignatureAlgorithm::kEcdsaP384Sha384);
  Bytes truncated(ed.begin(), ed.end() - 1);
  Bytes trailing = ed;
  trailing.push_back(0);

  EXPECT_EQ(ErrorOf(WithUpgrade(Section({"not hex"}))),
            "Enclaviafile: upgrade.control_keys[0] must be the hex of a DER "
            "SubjectPublicKeyInfo (`enclavia keys show`)");
  EXPECT_EQ(ErrorOf(WithUpgrade(Section({HexEncode(ed), "abc"}))),
            "Enclaviafile: upgrade.control_keys[1] must be the hex of a DER "
            "SubjectPublicKeyInfo (`enclavia keys show`)");
  const std::string kNotAKey =
      "Enclaviafile: upgrade.control_keys[0] is not an Ed25519 or P-256 (uncompressed) "
      "SubjectPublicKeyInfo";
  EXPECT_EQ(ErrorOf(WithUpgrade(Section({HexEncode(p384)}))), kNotAKey);
  EXPECT_EQ(ErrorOf(WithUpgrade(Section({HexEncode(truncated)}))), kNotAKey);
  EXPECT_EQ(ErrorOf(WithUpgrade(Section({HexEncode(trailing)}))), kNotAKey);
  Bytes compressed = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEcdsaP256Sha256)
                         .public_key()
                         .ToSpki();
  compressed[26] = 0x05;  // Not the uncompressed-point marker.
  EXPECT_EQ(ErrorOf(WithUpgrade(Section({HexEncode(compressed)}))), kNotAKey);
  EXPECT_EQ(ErrorOf(WithUpgrade(Section({HexEncode(ed), HexEncode(ed)}))),
            "Enclaviafile: upgrade.control_keys[1] repeats an earlier key");
  // A raw 32-byte Ed25519 key is not an SPKI.
  EXPECT_EQ(ErrorOf(WithUpgrade(Section({HexEncode(Bytes(ed.end() - 32, ed.end()))}))), kNotAKey);
  std::vector<std::string> many(17, HexEncode(ed));
  EXPECT_EQ(ErrorOf(WithUpgrade(Section(many))),
            "Enclaviafile: upgrade.control_keys: more than 16 keys");
}

TEST(UpgradeSection, IsStrict) {
  EXPECT_NE(
      ErrorOf(WithUpgrade("[upgrade]\nimmutable = true\n")).find("unknown key upgrade.immutable"),
      std::string::npos);
  EXPECT_NE(ErrorOf(WithUpgrade("[upgrade]\ncontrol_keys = \"ab\"\n")).find("upgrade.control_keys"),
            std::string::npos);
}

TEST(UpgradeSection, RoundTripsThroughEnclaveTomlAndChangesItOnlyWhenSet) {
  EnclaveConfig c;
  auto base = ParseEnclaveConfig(kEnclaveToml);
  ASSERT_TRUE(base) << base.error().message();
  c = *base;
  std::string without = SerializeEnclaveConfig(c);
  EXPECT_EQ(without.find("[upgrade]"), std::string::npos);  // Same PCR2 as before [upgrade].

  c.upgrade.control_keys = {NewKey(crypto::SignatureAlgorithm::kEcdsaP256Sha256),
                            NewKey(crypto::SignatureAlgorithm::kEd25519)};
  std::string with = SerializeEnclaveConfig(c);
  EXPECT_NE(with, without);
  EXPECT_NE(with.find("\n[upgrade]\ncontrol_keys = [\"" + HexEncode(c.upgrade.control_keys[0]) +
                      "\", \"" + HexEncode(c.upgrade.control_keys[1]) + "\"]\n"),
            std::string::npos)
      << with;
  auto back = ParseEnclaveConfig(with);
  ASSERT_TRUE(back) << back.error().message() << "\n" << with;
  EXPECT_EQ(back->upgrade, c.upgrade);
  EXPECT_EQ(SerializeEnclaveConfig(*back), with);
}

TEST(UpgradeSection, EnclaveTomlRefusesABadKeyNamingIt) {
  auto bad = ParseEnclaveConfig(std::string(kEnclaveToml).append(Section({"00"})));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "enclave.toml: upgrade.control_keys[0] is not an Ed25519 or P-256 (uncompressed) "
            "SubjectPublicKeyInfo");
}

}  // namespace
}  // namespace enclavia::config
