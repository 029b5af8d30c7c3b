// SPDX-License-Identifier: Apache-2.0
#include "lib/egress/policy.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace enclavia::egress {
namespace {

using std::chrono::seconds;
using Clock = Firewall::Clock;

IpAddress Ip(std::string_view text) { return ParseIp(text).value(); }

// Name gives "n<i>.example.com".
std::string Name(size_t i) {
  return std::string("n").append(std::to_string(i)).append(".example.com");
}

Rule MustParse(std::string_view entry) {
  auto rule = ParseRule(entry);
  EXPECT_TRUE(rule) << entry << ": " << rule.error().message();
  return rule ? *rule : Rule{};
}

Policy PolicyOf(std::initializer_list<std::string_view> entries) {
  Policy p;
  p.enabled = true;
  for (auto e : entries) {
    p.allow.push_back(MustParse(e));
  }
  return p;
}

// ---- ParseRule ----

TEST(ParseRuleTest, ReadsIpv4AddressAsHostPrefix) {
  Rule r = MustParse("203.0.113.7");
  EXPECT_EQ(r.kind, Rule::Kind::kAddress);
  EXPECT_EQ(r.entry, "203.0.113.7");
  EXPECT_EQ(r.prefix, V4(203, 0, 113, 7));
  EXPECT_EQ(r.prefix_length, 32);
  EXPECT_EQ(r.ports.first, 1);
  EXPECT_EQ(r.ports.last, 65535);
}

TEST(ParseRuleTest, ReadsIpv4CidrWithPort) {
  Rule r = MustParse("198.51.100.0/24:443");
  EXPECT_EQ(r.kind, Rule::Kind::kAddress);
  EXPECT_EQ(r.prefix, V4(198, 51, 100, 0));
  EXPECT_EQ(r.prefix_length, 24);
  EXPECT_EQ(r.ports.first, 443);
  EXPECT_EQ(r.ports.last, 443);
  EXPECT_EQ(MustParse("0.0.0.0/0").prefix_length, 0);
}

TEST(ParseRuleTest, ReadsIpv6AddressesAndNetworks) {
  Rule host = MustParse("[2001:db8::1]:443");
  EXPECT_EQ(host.kind, Rule::Kind::kAddress);
  EXPECT_EQ(host.prefix, Ip("2001:db8::1"));
  EXPECT_EQ(host.prefix_length, 128);
  EXPECT_EQ(host.ports.first, 443);

  Rule net = MustParse("2001:db8::/32");
  EXPECT_EQ(net.prefix, Ip("2001:db8::"));
  EXPECT_EQ(net.prefix_length, 32);
  EXPECT_EQ(net.ports.first, 1);
  EXPECT_EQ(net.ports.last, 65535);

  Rule bracketed = MustParse("[2001:db8::/32]:443-444");
  EXPECT_EQ(bracketed.prefix_length, 32);
  EXPECT_EQ(bracketed.ports.first, 443);
  EXPECT_EQ(bracketed.ports.last, 444);

  Rule no_port = MustParse("[2001:db8::1]");
  EXPECT_EQ(no_port.prefix_length, 128);
  EXPECT_EQ(no_port.ports.last, 65535);
  EXPECT_EQ(MustParse("2001:db8::1").prefix_length, 128);
}

TEST(ParseRuleTest, ReadsNamesLowercasedWithoutTrailingDot) {
  Rule r = MustParse("API.Example.COM.:443");
  EXPECT_EQ(r.kind, Rule::Kind::kName);
  EXPECT_EQ(r.name, "api.example.com");
  EXPECT_EQ(r.entry, "API.Example.COM.:443");
  EXPECT_EQ(r.ports.first, 443);
  EXPECT_EQ(MustParse("localhost").name, "localhost");
  EXPECT_EQ(MustParse("x-1.a0.example").name, "x-1.a0.example");
  EXPECT_EQ(MustParse("1.example.org").name, "1.example.org");
}

TEST(ParseRuleTest, ReadsWildcardsAsTheirSuffix) {
  Rule r = MustParse("*.Example.org:443-444");
  EXPECT_EQ(r.kind, Rule::Kind::kWildcard);
  EXPECT_EQ(r.name, "example.org");
  EXPECT_EQ(r.ports.first, 443);
  EXPECT_EQ(r.ports.last, 444);
}

TEST(ParseRuleTest, AcceptsPortBoundaries) {
  EXPECT_EQ(MustParse("a.example:1").ports.first, 1);
  EXPECT_EQ(MustParse("a.example:65535").ports.last, 65535);
  Rule all = MustParse("a.example:1-65535");
  EXPECT_EQ(all.ports.first, 1);
  EXPECT_EQ(all.ports.last, 65535);
  Rule one = MustParse("10.0.0.0/8:80-80");
  EXPECT_EQ(one.ports.first, 80);
  EXPECT_EQ(one.ports.last, 80);
}

TEST(ParseRuleTest, AcceptsNameAndLabelLengthLimits) {
  std::string label63(63, 'a');
  EXPECT_EQ(MustParse(label63 + ".example").name, label63 + ".example");
  // 4 labels of 63 + 3 dots = 255; trim to exactly 253.
  std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(name253.size(), 253u);
  EXPECT_EQ(MustParse(name253).name, name253);
  EXPECT_EQ(MustParse(name253 + ".").name, name253);
}

struct BadEntry {
  std::string entry;
  std::string message;
};

TEST(ParseRuleTest, RefusesBadEntriesNamingThem) {
  std::string label63(63, 'a');
  std::vector<BadEntry> cases = {
      {"", "\"\": empty entry"},
      {"xyz:99999", "\"xyz:99999\": port out of range"},
      {"xyz:0", "\"xyz:0\": port out of range"},
      {"xyz:65536", "\"xyz:65536\": port out of range"},
      {"xyz:99999999999999999999", "\"xyz:99999999999999999999\": port out of range"},
      {"xyz:", "\"xyz:\": bad port \"\""},
      {"xyz:http", "\"xyz:http\": bad port \"http\""},
      {"xyz:-443", "\"xyz:-443\": bad port \"\""},
      {"xyz:444-443", "\"xyz:444-443\": reversed port range"},
      {"xyz:443-", "\"xyz:443-\": bad port \"\""},
      {"xyz:1-2-3", "\"xyz:1-2-3\": bad port \"2-3\""},
      {":443", "\":443\": empty host"},
      {"10.0.0.256", "\"10.0.0.256\": bad IP address \"10.0.0.256\""},
      {"10.0.0", "\"10.0.0\": bad IP address \"10.0.0\""},
      {"10.0.0.1/33", "\"10.0.0.1/33\": prefix length over 32"},
      {"10.0.0.0/", "\"10.0.0.0/\": bad prefix length"},
      {"10.0.0.0/x", "\"10.0.0.0/x\": bad prefix length"},
      {"10.0.0.1/24", "\"10.0.0.1/24\": host bits set (the network is 10.0.0.0/24)"},
      {"198.51.100.128/24:443",
       "\"198.51.100.128/24:443\": host bits set (the network is 198.51.100.0/24)"},
      {"2001:db8::/129", "\"2001:db8::/129\": prefix length over 128"},
      {"2001:db8::1/32", "\"2001:db8::1/32\": host bits set (the network is 2001:db8::/32)"},
      {"[2001:db8::1]443", "\"[2001:db8::1]443\": expected ':' and a port after ']'"},
      {"[2001:db8::1", "\"[2001:db8::1\": missing ']'"},
      {"[203.0.113.7]:443", "\"[203.0.113.7]:443\": brackets are for IPv6 addresses only"},
      {"[example.com]:443", "\"[example.com]:443\": bad IP address \"example.com\""},
      {"[]:443", "\"[]:443\": empty host"},
      {"2001:db8::1::2", "\"2001:db8::1::2\": bad IP address \"2001:db8::1::2\""},
      {"example.com/24", "\"example.com/24\": bad IP address \"example.com\""},
      {"a..example", "\"a..example\": empty label in name"},
      {".example", "\".example\": empty label in name"},
      {"a_b.example", "\"a_b.example\": bad character in name label \"a_b\""},
      {"-a.example", "\"-a.example\": name label \"-a\" starts or ends with '-'"},
      {"a-.example", "\"a-.example\": name label \"a-\" starts or ends with '-'"},
      {label63 + "a.example", "\"" + label63 + "a.example\": label longer than 63 characters"},
      {"a.*.example.org",
       "\"a.*.example.org\": a wildcard is allowed only as the whole first "
       "label (\"*.example.org\")"},
      {"*a.example.org",
       "\"*a.example.org\": a wildcard is allowed only as the whole first "
       "label (\"*.example.org\")"},
      {"*", "\"*\": a wildcard is allowed only as the whole first label (\"*.example.org\")"},
      {"*.", "\"*.\": a wildcard is allowed only as the whole first label (\"*.example.org\")"},
      {"*.*.example.org",
       "\"*.*.example.org\": a wildcard is allowed only as the whole first "
       "label (\"*.example.org\")"},
      {"exa mple.com", "\"exa mple.com\": bad character in name label \"exa mple\""},
      {"a\x01.com", "\"a\\x01.com\": bad character in name label \"a\\x01\""},
  };
  std::string long_name;
  while (long_name.size() < 254) {
    long_name += "abcdefghi.";
  }
  long_name += "example";
  cases.push_back({long_name, std::string("\"")
                                  .append(long_name, 0, 80)
                                  .append("...\": name longer than 253 characters")});
  for (const auto& c : cases) {
    auto rule = ParseRule(c.entry);
    ASSERT_FALSE(rule) << c.entry;
    EXPECT_EQ(rule.error().code(), Code::kInvalidArgument) << c.entry;
    EXPECT_EQ(rule.error().message(), c.message) << c.entry;
  }
}

// ---- Firewall: address rules ----

const Clock::time_point kT0 = Clock::time_point(seconds(1000));

TEST(FirewallTest, AllowsIpv4HostOnAnyPortAndNothingElse) {
  Firewall fw(PolicyOf({"203.0.113.7"}));
  for (int port : {1, 80, 443, 65535}) {
    Verdict v = fw.Decide(V4(203, 0, 113, 7), static_cast<uint16_t>(port), kT0);
    EXPECT_TRUE(v.allowed) << port;
    EXPECT_EQ(v.rule, "203.0.113.7");
    EXPECT_EQ(v.name, "");
  }
  Verdict denied = fw.Decide(V4(203, 0, 113, 8), 80, kT0);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.rule, "");
  EXPECT_EQ(denied.reason, "no rule matches 203.0.113.8:80");
}

TEST(FirewallTest, MatchesIpv4CidrBoundariesAndPort) {
  Firewall fw(PolicyOf({"198.51.100.0/24:443"}));
  EXPECT_TRUE(fw.Decide(V4(198, 51, 100, 0), 443, kT0).allowed);
  EXPECT_TRUE(fw.Decide(V4(198, 51, 100, 255), 443, kT0).allowed);
  EXPECT_FALSE(fw.Decide(V4(198, 51, 99, 255), 443, kT0).allowed);
  EXPECT_FALSE(fw.Decide(V4(198, 51, 101, 0), 443, kT0).allowed);
  EXPECT_FALSE(fw.Decide(V4(198, 51, 100, 1), 442, kT0).allowed);
  EXPECT_FALSE(fw.Decide(V4(198, 51, 100, 1), 444, kT0).allowed);
}

TEST(FirewallTest, MatchesOddPrefixLengths) {
  Firewall fw(PolicyOf({"10.0.0.0/9", "192.0.2.128/25:80-81", "0.0.0.0/0:7"}));
  EXPECT_TRUE(fw.Decide(V4(10, 127, 255, 255), 1, kT0).allowed);
  EXPECT_FALSE(fw.Decide(V4(10, 128, 0, 0), 1, kT0).allowed);
  EXPECT_TRUE(fw.Decide(V4(192, 0, 2, 128), 81, kT0).allowed);
  EXPECT_FALSE(fw.Decide(V4(192, 0, 2, 127), 81, kT0).allowed);
  EXPECT_FALSE(fw.Decide(V4(192, 0, 2, 200), 82, kT0).allowed);
  EXPECT_TRUE(fw.Decide(V4(8, 8, 8, 8), 7, kT0).allowed);
  EXPECT_EQ(fw.Decide(V4(8, 8, 8, 8), 7, kT0).rule, "0.0.0.0/0:7");
  EXPECT_FALSE(fw.Decide(Ip("2001:db8::1"), 7, kT0).allowed);
}

TEST(FirewallTest, MatchesIpv6HostsAndNetworks) {
  Firewall fw(PolicyOf({"[2001:db8::1]:443", "2001:db8:1::/48", "[fc00::/7]:22"}));
  EXPECT_TRUE(fw.Decide(Ip("2001:db8::1"), 443, kT0).allowed);
  EXPECT_FALSE(fw.Decide(Ip("2001:db8::1"), 80, kT0).allowed);
  EXPECT_FALSE(fw.Decide(Ip("2001:db8::2"), 443, kT0).allowed);
  EXPECT_TRUE(fw.Decide(Ip("2001:db8:1::"), 80, kT0).allowed);
  EXPECT_TRUE(fw.Decide(Ip("2001:db8:1:ffff:ffff:ffff:ffff:ffff"), 80, kT0).allowed);
  EXPECT_FALSE(fw.Decide(Ip("2001:db8:2::"), 80, kT0).allowed);
  EXPECT_FALSE(fw.Decide(Ip("2001:db8:0:ffff::"), 80, kT0).allowed);
  EXPECT_TRUE(fw.Decide(Ip("fdff::1"), 22, kT0).allowed);
  EXPECT_TRUE(fw.Decide(Ip("fc00::1"), 22, kT0).allowed);
  EXPECT_FALSE(fw.Decide(Ip("fe00::1"), 22, kT0).allowed);
  Verdict denied = fw.Decide(Ip("2001:db8::2"), 443, kT0);
  EXPECT_EQ(denied.reason, "no rule matches [2001:db8::2]:443");
  // An IPv4 address with the same leading bytes is not an IPv6 one.
  EXPECT_FALSE(fw.Decide(V4(0x20, 0x01, 0x0d, 0xb8), 443, kT0).allowed);
}

TEST(FirewallTest, JudgesIpv4MappedAddressesAsIpv4) {
  Firewall fw(PolicyOf({"203.0.113.7:443", "2001:db8::/32"}));
  EXPECT_TRUE(fw.Decide(Ip("::ffff:203.0.113.7"), 443, kT0).allowed);
  EXPECT_FALSE(fw.Decide(Ip("::ffff:203.0.113.7"), 80, kT0).allowed);
  EXPECT_FALSE(fw.Decide(Ip("::ffff:203.0.113.8"), 443, kT0).allowed);
  // A broad IPv6 rule does not open the IPv4 internet through mapped addresses.
  Firewall all_v6(PolicyOf({"::/0"}));
  EXPECT_TRUE(all_v6.Decide(Ip("2001:db8::5"), 1, kT0).allowed);
  EXPECT_FALSE(all_v6.Decide(Ip("::ffff:192.0.2.1"), 1, kT0).allowed);
  // A mapped network in the policy is the IPv4 network.
  Firewall mapped(PolicyOf({"::ffff:192.0.2.0/120"}));
  EXPECT_TRUE(mapped.Decide(V4(192, 0, 2, 9), 1, kT0).allowed);
  EXPECT_FALSE(mapped.Decide(V4(192, 0, 3, 9), 1, kT0).allowed);
}

TEST(FirewallTest, DeniesEverythingWithAnEmptyPolicy) {
  Firewall fw(Policy{});
  EXPECT_FALSE(fw.Decide(V4(127, 0, 0, 1), 80, kT0).allowed);
  EXPECT_FALSE(fw.NameAllowed("example.com"));
  EXPECT_FALSE(fw.UpstreamNameAllowed(""));
  EXPECT_FALSE(fw.UpstreamNameAllowed("."));
}

// ---- Names ----

TEST(FirewallTest, NameAllowedForExactNamesIgnoringCaseAndTrailingDot) {
  Firewall fw(PolicyOf({"api.example.com:443"}));
  EXPECT_TRUE(fw.NameAllowed("api.example.com"));
  EXPECT_TRUE(fw.NameAllowed("API.Example.Com"));
  EXPECT_TRUE(fw.NameAllowed("api.example.com."));
  EXPECT_FALSE(fw.NameAllowed("example.com"));
  EXPECT_FALSE(fw.NameAllowed("x.api.example.com"));
  EXPECT_FALSE(fw.NameAllowed("api.example.co"));
  EXPECT_FALSE(fw.NameAllowed("api.example.com.."));
  EXPECT_FALSE(fw.NameAllowed(""));
  EXPECT_FALSE(fw.NameAllowed("."));
}

TEST(FirewallTest, WildcardAllowsNamesStrictlyBelowTheSuffix) {
  Firewall fw(PolicyOf({"*.example.org:443-444"}));
  EXPECT_TRUE(fw.NameAllowed("a.example.org"));
  EXPECT_TRUE(fw.NameAllowed("a.b.example.org"));
  EXPECT_TRUE(fw.NameAllowed("A.B.EXAMPLE.ORG."));
  EXPECT_FALSE(fw.NameAllowed("example.org"));
  EXPECT_FALSE(fw.NameAllowed("badexample.org"));
  EXPECT_FALSE(fw.NameAllowed("a.example.org.evil"));
  EXPECT_FALSE(fw.NameAllowed("org"));
  EXPECT_FALSE(fw.NameAllowed(".example.org"));
}

TEST(FirewallTest, RefusesOverlongNames) {
  Firewall fw(PolicyOf({"*.example"}));
  std::string name;
  while (name.size() < 260) {
    name += "abcdefghi.";
  }
  name += "example";
  EXPECT_FALSE(fw.NameAllowed(name));
  EXPECT_FALSE(fw.UpstreamNameAllowed(name));
  fw.Learn(name, V4(192, 0, 2, 1), seconds(30), kT0);
  EXPECT_EQ(fw.learned_size(), 0u);
}

TEST(FirewallTest, UpstreamNameAllowedCoversAncestorsAndRoot) {
  Firewall fw(PolicyOf({"api.example.com:443", "*.svc.example.org", "203.0.113.7"}));
  for (const char* name : {"api.example.com", "example.com", "com", "", ".", "Example.COM.",
                           "a.svc.example.org", "svc.example.org", "example.org", "org"}) {
    EXPECT_TRUE(fw.UpstreamNameAllowed(name)) << name;
  }
  for (const char* name : {"other.example.com", "x.api.example.com", "net", "example.net",
                           "other.example.org", "vc.example.org", "com.", "..", "a..com"}) {
    if (std::string_view(name) == "com.") {
      continue;  // "com." is "com", an ancestor.
    }
    EXPECT_FALSE(fw.UpstreamNameAllowed(name)) << name;
  }
  // The ancestors are for the validator's DNSKEY/DS lookups, not for resolving.
  EXPECT_FALSE(fw.NameAllowed("example.com"));
  EXPECT_FALSE(fw.NameAllowed("svc.example.org"));
}

// ---- Learned names ----

TEST(FirewallTest, AllowsLearnedIpOnTheRulePortUntilTheTtlEnds) {
  Firewall fw(PolicyOf({"api.example.com:443"}));
  const IpAddress ip = V4(192, 0, 2, 10);
  EXPECT_FALSE(fw.Decide(ip, 443, kT0).allowed);
  fw.Learn("api.example.com", ip, seconds(30), kT0);
  Verdict v = fw.Decide(ip, 443, kT0);
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.rule, "api.example.com:443");
  EXPECT_EQ(v.name, "api.example.com");
  EXPECT_TRUE(fw.Decide(ip, 443, kT0 + seconds(29)).allowed);
  EXPECT_FALSE(fw.Decide(ip, 443, kT0 + seconds(30)).allowed);
  EXPECT_FALSE(fw.Decide(ip, 443, kT0 + seconds(31)).allowed);
  // The same name on another port is refused, and the reason says why.
  Verdict other = fw.Decide(ip, 80, kT0);
  EXPECT_FALSE(other.allowed);
  EXPECT_EQ(other.reason,
            "no rule matches 192.0.2.10:80 (api.example.com resolved to it; its rules allow other "
            "ports)");
  // Another IP is not affected.
  EXPECT_FALSE(fw.Decide(V4(192, 0, 2, 11), 443, kT0).allowed);
}

TEST(FirewallTest, LaterAnswerExtendsOrShortensTheExpiry) {
  Firewall fw(PolicyOf({"api.example.com:443"}));
  const IpAddress ip = Ip("2001:db8::10");
  fw.Learn("api.example.com", ip, seconds(30), kT0);
  fw.Learn("api.example.com.", ip, seconds(60), kT0 + seconds(10));
  EXPECT_EQ(fw.learned_size(), 1u);
  EXPECT_TRUE(fw.Decide(ip, 443, kT0 + seconds(69)).allowed);
  EXPECT_FALSE(fw.Decide(ip, 443, kT0 + seconds(70)).allowed);
  fw.Learn("API.example.com", ip, seconds(5), kT0 + seconds(20));
  EXPECT_TRUE(fw.Decide(ip, 443, kT0 + seconds(24)).allowed);
  EXPECT_FALSE(fw.Decide(ip, 443, kT0 + seconds(25)).allowed);
  // A zero TTL forgets the pair.
  fw.Learn("api.example.com", ip, seconds(0), kT0 + seconds(21));
  EXPECT_FALSE(fw.Decide(ip, 443, kT0 + seconds(21)).allowed);
  EXPECT_EQ(fw.learned_size(), 0u);
}

TEST(FirewallTest, LearnedIpForOneNameDoesNotOpenAnotherNamesPort) {
  Firewall fw(PolicyOf({"a.example.com:443", "b.example.com:8443"}));
  const IpAddress ip = V4(192, 0, 2, 20);
  fw.Learn("a.example.com", ip, seconds(60), kT0);
  EXPECT_TRUE(fw.Decide(ip, 443, kT0).allowed);
  EXPECT_FALSE(fw.Decide(ip, 8443, kT0).allowed);
  // Once b resolves to the same IP (a shared front end), its port opens too, under its rule.
  fw.Learn("b.example.com", ip, seconds(60), kT0);
  Verdict v = fw.Decide(ip, 8443, kT0);
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.name, "b.example.com");
  EXPECT_EQ(v.rule, "b.example.com:8443");
  EXPECT_EQ(fw.learned_size(), 2u);
}

TEST(FirewallTest, IgnoresAnswersForNamesNotAllowed) {
  Firewall fw(PolicyOf({"api.example.com:443", "*.example.org"}));
  const IpAddress ip = V4(192, 0, 2, 30);
  fw.Learn("evil.example.com", ip, seconds(60), kT0);
  fw.Learn("example.org", ip, seconds(60), kT0);
  fw.Learn("", ip, seconds(60), kT0);
  EXPECT_EQ(fw.learned_size(), 0u);
  EXPECT_FALSE(fw.Decide(ip, 443, kT0).allowed);
}

TEST(FirewallTest, WildcardLearnedNamesUseTheWildcardPorts) {
  Firewall fw(PolicyOf({"*.example.org:443-444"}));
  const IpAddress ip = Ip("2001:db8::30");
  fw.Learn("Deep.A.example.org.", ip, seconds(60), kT0);
  Verdict v = fw.Decide(ip, 444, kT0);
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.name, "deep.a.example.org");
  EXPECT_EQ(v.rule, "*.example.org:443-444");
  EXPECT_TRUE(fw.Decide(ip, 443, kT0).allowed);
  EXPECT_FALSE(fw.Decide(ip, 442, kT0).allowed);
  EXPECT_FALSE(fw.Decide(ip, 445, kT0).allowed);
}

TEST(FirewallTest, NameWithSeveralRulesTakesAnyOfTheirPorts) {
  Firewall fw(PolicyOf({"api.example.com:443", "api.example.com:8000-8001", "*.example.com:22"}));
  const IpAddress ip = V4(192, 0, 2, 40);
  fw.Learn("api.example.com", ip, seconds(60), kT0);
  EXPECT_TRUE(fw.Decide(ip, 443, kT0).allowed);
  EXPECT_TRUE(fw.Decide(ip, 8001, kT0).allowed);
  EXPECT_EQ(fw.Decide(ip, 22, kT0).rule, "*.example.com:22");
  EXPECT_FALSE(fw.Decide(ip, 8002, kT0).allowed);
}

TEST(FirewallTest, LearnsMappedAddressesAsIpv4) {
  Firewall fw(PolicyOf({"api.example.com:443"}));
  fw.Learn("api.example.com", Ip("::ffff:192.0.2.50"), seconds(60), kT0);
  EXPECT_TRUE(fw.Decide(V4(192, 0, 2, 50), 443, kT0).allowed);
  EXPECT_TRUE(fw.Decide(Ip("::ffff:192.0.2.50"), 443, kT0).allowed);
}

TEST(FirewallTest, CutsHugeTtls) {
  Firewall fw(PolicyOf({"api.example.com"}));
  const IpAddress ip = V4(192, 0, 2, 60);
  fw.Learn("api.example.com", ip, seconds(INT32_MAX), kT0);
  EXPECT_TRUE(fw.Decide(ip, 1, kT0 + kMaxLearnedTtl - seconds(1)).allowed);
  EXPECT_FALSE(fw.Decide(ip, 1, kT0 + kMaxLearnedTtl).allowed);
}

TEST(FirewallTest, LearnedTableIsCappedEvictingExpiredFirst) {
  Firewall fw(PolicyOf({"*.example.com:443"}), 4);
  // Two pairs that expire soon, two that live long.
  fw.Learn("a.example.com", V4(192, 0, 2, 1), seconds(10), kT0);
  fw.Learn("b.example.com", V4(192, 0, 2, 2), seconds(100), kT0);
  fw.Learn("c.example.com", V4(192, 0, 2, 3), seconds(20), kT0);
  fw.Learn("d.example.com", V4(192, 0, 2, 4), seconds(100), kT0);
  EXPECT_EQ(fw.learned_size(), 4u);
  // At the cap with none expired: the pair closest to expiry (a) makes room.
  fw.Learn("e.example.com", V4(192, 0, 2, 5), seconds(100), kT0 + seconds(1));
  EXPECT_EQ(fw.learned_size(), 4u);
  EXPECT_FALSE(fw.Decide(V4(192, 0, 2, 1), 443, kT0 + seconds(1)).allowed);
  EXPECT_TRUE(fw.Decide(V4(192, 0, 2, 3), 443, kT0 + seconds(1)).allowed);
  EXPECT_TRUE(fw.Decide(V4(192, 0, 2, 5), 443, kT0 + seconds(1)).allowed);
  // Later, c has expired: it goes, and the live ones stay.
  fw.Learn("f.example.com", V4(192, 0, 2, 6), seconds(100), kT0 + seconds(30));
  EXPECT_EQ(fw.learned_size(), 4u);
  for (int i : {2, 4, 5, 6}) {
    EXPECT_TRUE(fw.Decide(V4(192, 0, 2, static_cast<uint8_t>(i)), 443, kT0 + seconds(30)).allowed)
        << i;
  }
}

TEST(FirewallTest, FloodOfAnswersStaysBounded) {
  Firewall fw(PolicyOf({"*.example.com:443"}));
  for (uint32_t i = 0; i < kMaxLearned + 1000; ++i) {
    IpAddress ip = V4(10, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
                      static_cast<uint8_t>(i));
    fw.Learn(Name(i), ip, seconds(3600), kT0);
  }
  EXPECT_EQ(fw.learned_size(), kMaxLearned);
  // The newest answer is there; the first ones were evicted.
  uint32_t last = kMaxLearned + 999;
  EXPECT_TRUE(fw.Decide(V4(10, static_cast<uint8_t>(last >> 16), static_cast<uint8_t>(last >> 8),
                           static_cast<uint8_t>(last)),
                        443, kT0)
                  .allowed);
}

TEST(FirewallTest, NamesPerIpAreCapped) {
  Firewall fw(PolicyOf({"*.example.com:443", "keep.example.com:8443"}));
  const IpAddress ip = V4(192, 0, 2, 70);
  fw.Learn("keep.example.com", ip, seconds(7200), kT0);
  for (size_t i = 0; i < kMaxNamesPerIp + 10; ++i) {
    fw.Learn(Name(i), ip, seconds(3600), kT0);
  }
  EXPECT_EQ(fw.learned_size(), kMaxNamesPerIp);
  // The longest-lived pair survived the churn.
  EXPECT_TRUE(fw.Decide(ip, 8443, kT0).allowed);
}

TEST(FirewallTest, DecideAndLearnRunConcurrently) {
  Firewall fw(PolicyOf({"*.example.com:443", "198.51.100.0/24"}));
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::thread learner([&] {
    for (uint32_t i = 0; i < 20000; ++i) {
      fw.Learn(Name(i % 500), V4(10, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)),
               seconds(5), kT0 + seconds(i / 1000));
    }
    stop = true;
  });
  std::vector<std::thread> deciders;
  for (int t = 0; t < 2; ++t) {
    deciders.emplace_back([&] {
      while (!stop) {
        if (!fw.Decide(V4(198, 51, 100, 7), 80, kT0).allowed) {
          ++wrong;
        }
        if (fw.Decide(V4(10, 0, 0, 1), 80, kT0).allowed) {
          ++wrong;
        }
        (void)fw.Decide(V4(10, 0, 0, 1), 443, kT0 + seconds(10));
      }
    });
  }
  learner.join();
  for (auto& d : deciders) {
    d.join();
  }
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(fw.learned_size(), kMaxLearned);
}

TEST(FirewallTest, KeepsThePolicy) {
  Policy p = PolicyOf({"api.example.com:443"});
  p.resolvers.push_back(V4(9, 9, 9, 9));
  p.dnssec = DnssecMode::kOff;
  Firewall fw(p);
  EXPECT_TRUE(fw.policy().enabled);
  EXPECT_EQ(fw.policy().dnssec, DnssecMode::kOff);
  ASSERT_EQ(fw.policy().allow.size(), 1u);
  EXPECT_EQ(fw.policy().allow[0].entry, "api.example.com:443");
  // A resolver is not an allowed destination by itself.
  EXPECT_FALSE(fw.Decide(V4(9, 9, 9, 9), 53, kT0).allowed);
}

}  // namespace
}  // namespace enclavia::egress
