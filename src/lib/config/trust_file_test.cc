// SPDX-License-Identifier: Apache-2.0
#include "lib/config/trust_file.h"

#include <gtest/gtest.h>

#include <string>

namespace enclavia::config {
namespace {

const std::string kPcr(96, 'a');

TEST(TrustFileTest, ParsesTheDocumentedExample) {
  std::string text = "roots = [\"aws-nitro\", \"/etc/enclavia/local-root.pem\"]\n"
                     "max_age = \"15m\"\nfresh = true\nallow_debug = false\n"
                     "[[accept]]\nPCR0 = \"" + kPcr + "\"\nPCR2 = \"" + kPcr + "\"\n"
                     "[[accept]]\nPCR8 = \"" + std::string(96, 'B') + "\"\n";
  auto trust = ParseTrustFile(text);
  ASSERT_TRUE(trust) << trust.error().message();
  EXPECT_EQ(trust->roots.size(), 2u);
  EXPECT_EQ(trust->roots[0], kAwsNitroRoot);
  EXPECT_EQ(trust->max_age, std::chrono::minutes(15));
  EXPECT_TRUE(trust->fresh);
  EXPECT_FALSE(trust->allow_debug);
  ASSERT_EQ(trust->accept.size(), 2u);
  EXPECT_EQ(trust->accept[0].size(), 2u);
  EXPECT_EQ(trust->accept[0].at(2), Bytes(48, 0xaa));
  EXPECT_EQ(trust->accept[1].at(8), Bytes(48, 0xbb));
}

TEST(TrustFileTest, DefaultsAreStrict) {
  auto trust = ParseTrustFile("roots = [\"aws-nitro\"]\n[[accept]]\nPCR0 = \"" + kPcr + "\"\n");
  ASSERT_TRUE(trust) << trust.error().message();
  EXPECT_EQ(trust->max_age, std::chrono::hours(1));
  EXPECT_FALSE(trust->fresh);
  EXPECT_FALSE(trust->allow_debug);
}

TEST(TrustFileTest, RejectsWhatCouldNotProtectAnyone) {
  const std::string set = "[[accept]]\nPCR0 = \"" + kPcr + "\"\n";
  struct Case {
    std::string text;
    std::string needle;
  } cases[] = {
      {set, "roots"},
      {"roots = []\n" + set, "roots"},
      {"roots = [\"aws-nitro\"]\n", "no [[accept]]"},
      {"roots = [\"aws-nitro\"]\naccept = []\n", "accept"},
      {"roots = [\"aws-nitro\"]\n[[accept]]\n", "lists no PCR"},
      {"roots = [\"aws-nitro\"]\n[[accept]]\nPCR0 = \"abcd\"\n", "96 hex digits"},
      {"roots = [\"aws-nitro\"]\n[[accept]]\nPCR32 = \"" + kPcr + "\"\n", "PCR31"},
      {"roots = [\"aws-nitro\"]\n[[accept]]\npcr0 = \"" + kPcr + "\"\n", "unknown key"},
      {"roots = [\"aws-nitro\"]\nmax_age = \"soon\"\n" + set, "max_age"},
      {"roots = [\"aws-nitro\"]\nmax_age = \"-1h\"\n" + set, "max_age"},
      {"roots = [\"aws-nitro\"]\nfresh = \"yes\"\n" + set, "fresh"},
      {"roots = [\"aws-nitro\"]\nextra = 1\n" + set, "unknown key"},
      {"roots = [\"aws-nitro\"\n", "trust file"},
  };
  for (const Case& c : cases) {
    auto trust = ParseTrustFile(c.text);
    ASSERT_FALSE(trust) << c.text;
    EXPECT_NE(trust.error().message().find(c.needle), std::string::npos)
        << trust.error().message();
    EXPECT_EQ(trust.error().message().find('\n'), std::string::npos);
  }
}

TEST(TrustFileTest, GenesisHashesMayStandInForAcceptSets) {
  const std::string hash(64, 'c');
  auto only = ParseTrustFile("roots = [\"aws-nitro\"]\ngenesis = [\"" + hash + "\"]\n");
  ASSERT_TRUE(only) << only.error().message();
  ASSERT_EQ(only->genesis.size(), 1u);
  EXPECT_EQ(only->genesis[0], Bytes(32, 0xcc));
  EXPECT_TRUE(only->accept.empty());
  auto both = ParseTrustFile("roots = [\"aws-nitro\"]\ngenesis = [\"" + hash + "\", \"" +
                             std::string(64, 'D') + "\"]\n[[accept]]\nPCR0 = \"" + kPcr + "\"\n");
  ASSERT_TRUE(both) << both.error().message();
  EXPECT_EQ(both->genesis.size(), 2u);
  EXPECT_EQ(both->accept.size(), 1u);
  for (const std::string& bad : {std::string("genesis = []"), std::string("genesis = [\"abcd\"]"),
                                 std::string("genesis = \"") + hash + "\""}) {
    auto refused = ParseTrustFile("roots = [\"aws-nitro\"]\n" + bad + "\n");
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message().find("genesis"), std::string::npos)
        << refused.error().message();
  }
}

TEST(TrustFileTest, Durations) {
  EXPECT_EQ(*ParseDuration("90s"), std::chrono::seconds(90));
  EXPECT_EQ(*ParseDuration("2d"), std::chrono::hours(48));
  EXPECT_EQ(*ParseDuration("30"), std::chrono::seconds(30));
  EXPECT_FALSE(ParseDuration("0s"));
  EXPECT_FALSE(ParseDuration("1w"));
  EXPECT_FALSE(ParseDuration("h"));
}

}  // namespace
}  // namespace enclavia::config
