// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "lib/config/enclave_config.h"
#include "lib/config/enclaviafile.h"

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

constexpr std::string_view kIssueExample = R"(
[egress]
enabled = true
resolvers = ["9.9.9.9", "149.112.112.112"]
dnssec = "require"
allow = ["203.0.113.7", "198.51.100.0/24:443", "api.example.com:443", "*.example.org:443-444", "[2001:db8::1]:443"]
)";

Result<Enclaviafile> WithEgress(std::string_view section) {
  return ParseEnclaviafile(std::string(kApp).append(section), "/src/hello");
}

EnclaveConfig Minimal() {
  EnclaveConfig c;
  c.name = "hello";
  c.version = "1";
  c.app.cmd = {"/bin/hello"};
  return c;
}

TEST(EgressSection, ParsesTheIssueExample) {
  auto f = WithEgress(kIssueExample);
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_TRUE(f->egress.enabled);
  EXPECT_EQ(f->egress.resolvers, (std::vector<std::string>{"9.9.9.9", "149.112.112.112"}));
  EXPECT_EQ(f->egress.dnssec, egress::DnssecMode::kRequire);
  ASSERT_EQ(f->egress.allow.size(), 5u);
  EXPECT_EQ(f->egress.allow[3], "*.example.org:443-444");
  EXPECT_EQ(f->trust_anchor, "/usr/share/dns/root.key");

  auto policy = ToPolicy(f->egress);
  ASSERT_TRUE(policy) << policy.error().message();
  EXPECT_TRUE(policy->enabled);
  ASSERT_EQ(policy->resolvers.size(), 2u);
  EXPECT_EQ(policy->resolvers[0], egress::V4(9, 9, 9, 9));
  ASSERT_EQ(policy->allow.size(), 5u);
  EXPECT_EQ(policy->allow[2].kind, egress::Rule::Kind::kName);
  EXPECT_EQ(policy->allow[2].name, "api.example.com");
  EXPECT_EQ(policy->allow[3].kind, egress::Rule::Kind::kWildcard);
}

TEST(EgressSection, AbsentOrDisabledMeansNoEgress) {
  auto none = ParseEnclaviafile(kApp, "/src/hello");
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_EQ(none->egress, EgressConfig{});
  EXPECT_FALSE(none->egress.enabled);
  EXPECT_EQ(none->egress.dnssec, egress::DnssecMode::kRequire);

  auto empty = WithEgress("\n[egress]\n");
  ASSERT_TRUE(empty) << empty.error().message();
  EXPECT_EQ(empty->egress, EgressConfig{});

  // Disabled with other keys: kept as written, inert.
  auto inert = WithEgress(
      "\n[egress]\nenabled = false\nresolvers = [\"9.9.9.9\"]\n"
      "allow = [\"api.example.com:443\"]\ndnssec = \"off\"\n");
  ASSERT_TRUE(inert) << inert.error().message();
  EXPECT_FALSE(inert->egress.enabled);
  EXPECT_EQ(inert->egress.allow, (std::vector<std::string>{"api.example.com:443"}));
  EXPECT_EQ(inert->egress.dnssec, egress::DnssecMode::kOff);
  auto policy = ToPolicy(inert->egress);
  ASSERT_TRUE(policy);
  EXPECT_FALSE(policy->enabled);
}

TEST(EgressSection, ResolvesTrustAnchorAgainstTheEnclaviafileDir) {
  auto relative = WithEgress("\n[egress]\nenabled = true\ntrust_anchor = \"keys/root.key\"\n");
  ASSERT_TRUE(relative) << relative.error().message();
  EXPECT_EQ(relative->trust_anchor, "/src/hello/keys/root.key");
  auto absolute = WithEgress("\n[egress]\ntrust_anchor = \"/etc/anchor\"\n");
  ASSERT_TRUE(absolute) << absolute.error().message();
  EXPECT_EQ(absolute->trust_anchor, "/etc/anchor");
  // The anchor path is the Enclaviafile's business: enclave.toml carries the anchor's bytes.
  EXPECT_FALSE(ParseEnclaveConfig(
      "version = 1\n[enclave]\n[app]\ncmd = [\"/a\"]\n[egress]\ntrust_anchor = \"/x\"\n"));
}

struct Bad {
  std::string section;
  std::string message;
};

TEST(EgressSection, RefusesBadValuesNamingThem) {
  std::vector<Bad> cases = {
      {"allow = [\"xyz:99999\"]\nresolvers = [\"9.9.9.9\"]",
       "Enclaviafile: egress.allow: \"xyz:99999\": port out of range"},
      {"allow = [\"10.0.0.1/24\"]",
       "Enclaviafile: egress.allow: \"10.0.0.1/24\": host bits set (the network is 10.0.0.0/24)"},
      {"allow = [\"a.*.example\"]\nresolvers = [\"9.9.9.9\"]",
       "Enclaviafile: egress.allow: \"a.*.example\": a wildcard is allowed only as the whole "
       "first label (\"*.example.org\")"},
      {"resolvers = [\"dns.quad9.net\"]",
       "Enclaviafile: egress.resolvers: not an IP address: \"dns.quad9.net\""},
      {"enabled = true\nallow = [\"api.example.com:443\"]",
       "Enclaviafile: egress.allow names hosts (\"api.example.com:443\") but egress.resolvers "
       "is empty: name rules need resolvers"},
      {"dnssec = \"maybe\"",
       "Enclaviafile: egress.dnssec must be \"require\" or \"off\", not "
       "\"maybe\" (line 11)"},
      {"enabled = \"yes\"", "Enclaviafile: egress.enabled must be true or false (line 11)"},
      {"allow = \"203.0.113.7\"",
       "Enclaviafile: egress.allow must be an array of strings (line 11)"},
      {"resolvers = [1]", "Enclaviafile: egress.resolvers must be an array of strings (line 11)"},
      {"ports = [443]", "Enclaviafile: unknown key egress.ports (line 11)"},
      {"trust_anchor = \"\"", "Enclaviafile: egress.trust_anchor is empty"},
  };
  for (const auto& c : cases) {
    auto f = WithEgress("\n[egress]\n" + c.section + "\n");
    ASSERT_FALSE(f) << c.section;
    EXPECT_EQ(f.error().code(), Code::kInvalidArgument) << c.section;
    EXPECT_EQ(f.error().message(), c.message) << c.section;
  }
  auto not_table = ParseEnclaviafile(std::string(kApp).append("egress = true\n"), "/d");
  EXPECT_FALSE(not_table);
}

TEST(EgressSection, AddressOnlyRulesNeedNoResolvers) {
  auto f =
      WithEgress("\n[egress]\nenabled = true\nallow = [\"203.0.113.7:443\", \"2001:db8::/32\"]\n");
  ASSERT_TRUE(f) << f.error().message();
  auto policy = ToPolicy(f->egress);
  ASSERT_TRUE(policy) << policy.error().message();
  EXPECT_TRUE(policy->resolvers.empty());
}

TEST(EgressSection, RoundTripsThroughEnclaveTomlDeterministically) {
  auto f = WithEgress(kIssueExample);
  ASSERT_TRUE(f) << f.error().message();
  EnclaveConfig c = Minimal();
  c.egress = f->egress;
  std::string toml = SerializeEnclaveConfig(c);
  EXPECT_NE(toml.find("\n[egress]\nenabled = true\nresolvers = [\"9.9.9.9\", \"149.112.112.112\"]\n"
                      "dnssec = \"require\"\nallow = [\"203.0.113.7\", \"198.51.100.0/24:443\", "
                      "\"api.example.com:443\", \"*.example.org:443-444\", "
                      "\"[2001:db8::1]:443\"]\n"),
            std::string::npos)
      << toml;
  auto back = ParseEnclaveConfig(toml);
  ASSERT_TRUE(back) << back.error().message() << "\n" << toml;
  EXPECT_EQ(back->egress, c.egress);
  EXPECT_EQ(SerializeEnclaveConfig(*back), toml);

  // dnssec = "off" survives, and entries stay as written (case, trailing dot).
  c.egress.dnssec = egress::DnssecMode::kOff;
  c.egress.allow = {"API.Example.com.:443"};
  auto off = ParseEnclaveConfig(SerializeEnclaveConfig(c));
  ASSERT_TRUE(off) << off.error().message();
  EXPECT_EQ(off->egress.dnssec, egress::DnssecMode::kOff);
  EXPECT_EQ(off->egress.allow, (std::vector<std::string>{"API.Example.com.:443"}));

  // enclave.toml is validated the same way.
  auto bad = ParseEnclaveConfig(
      "version = 1\n[enclave]\n[app]\ncmd = [\"/a\"]\n[egress]\nallow = [\"xyz:99999\"]\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "enclave.toml: egress.allow: \"xyz:99999\": port out of range");
}

TEST(EgressSection, DefaultEgressLeavesEnclaveTomlAsBefore) {
  // The exact bytes enclave.toml had before [egress] existed: images without egress keep their
  // PCR2.
  EnclaveConfig c = Minimal();
  EXPECT_EQ(SerializeEnclaveConfig(c),
            "# /etc/enclavia/enclave.toml: written by `enclavia build` and measured in PCR2.\n"
            "version = 1\n\n"
            "[enclave]\nname = \"hello\"\nversion = \"1\"\n\n"
            "[app]\ncmd = [\"/bin/hello\"]\nworkdir = \"/\"\nport = 0\nuid = 65534\n"
            "gid = 65534\nrestart = \"on-failure\"\nrestart_limit = 5\n\n[app.env]\n");
  // An [egress] section that only repeats the defaults is the same configuration, same bytes.
  auto f = WithEgress("\n[egress]\nenabled = false\ndnssec = \"require\"\nallow = []\n");
  ASSERT_TRUE(f) << f.error().message();
  c.egress = f->egress;
  EXPECT_EQ(SerializeEnclaveConfig(c).find("[egress]"), std::string::npos);
}

}  // namespace
}  // namespace enclavia::config
