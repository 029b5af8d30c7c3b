// SPDX-License-Identifier: Apache-2.0
#include "lib/egress/ip.h"

#include <array>
#include <vector>

#include <gtest/gtest.h>

namespace enclavia::egress {
namespace {

TEST(IpTest, ParsesAndFormatsIpv4) {
  auto ip = ParseIp("203.0.113.7");
  ASSERT_TRUE(ip) << ip.error().message();
  EXPECT_EQ(ip->family, IpFamily::kV4);
  EXPECT_EQ(ip->size(), 4u);
  EXPECT_EQ(*ip, V4(203, 0, 113, 7));
  EXPECT_EQ(FormatIp(*ip), "203.0.113.7");
  // The unused 12 bytes stay zero, so equal addresses compare equal.
  for (size_t i = 4; i < 16; ++i) {
    EXPECT_EQ(ip->bytes[i], 0) << i;
  }
}

TEST(IpTest, ParsesAndFormatsIpv6Canonically) {
  auto ip = ParseIp("2001:0DB8:0:0:0:0:0:0001");
  ASSERT_TRUE(ip) << ip.error().message();
  EXPECT_EQ(ip->family, IpFamily::kV6);
  EXPECT_EQ(ip->size(), 16u);
  EXPECT_EQ(FormatIp(*ip), "2001:db8::1");
  EXPECT_EQ(ParseIp("2001:db8::1").value(), *ip);
}

TEST(IpTest, RoundTripsThroughText) {
  for (const char* text : {"0.0.0.0", "255.255.255.255", "10.0.2.15", "::", "::1", "fd00:e9c1::15",
                           "2001:db8:1:2:3:4:5:6", "::ffff:192.0.2.1", "fe80::1:2"}) {
    auto ip = ParseIp(text);
    ASSERT_TRUE(ip) << text;
    EXPECT_EQ(FormatIp(*ip), text);
    EXPECT_EQ(ParseIp(FormatIp(*ip)).value(), *ip) << text;
  }
}

TEST(IpTest, MappedIpv6StaysIpv6) {
  auto ip = ParseIp("::ffff:192.0.2.1");
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->family, IpFamily::kV6);
  EXPECT_NE(*ip, V4(192, 0, 2, 1));
}

TEST(IpTest, RefusesWhatIsNotAnAddress) {
  for (const char* text :
       {"", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.4:80", "[::1]", "::1%eth0", "2001:db8::/32",
        "example.com", " 1.2.3.4", "1.2.3.4 ", "1::2::3", "12345::", "0x7f.0.0.1"}) {
    auto ip = ParseIp(text);
    ASSERT_FALSE(ip) << text;
    EXPECT_EQ(ip.error().code(), Code::kInvalidArgument);
    EXPECT_NE(ip.error().message().find(text), std::string::npos) << ip.error().message();
  }
  std::string long_text(100, '1');
  EXPECT_FALSE(ParseIp(long_text));
}

TEST(IpTest, FromBytesTakesFourOrSixteen) {
  std::array<uint8_t, 4> v4{192, 0, 2, 1};
  EXPECT_EQ(FromBytes(v4).value(), V4(192, 0, 2, 1));
  std::array<uint8_t, 16> v6{0x20, 0x01, 0x0d, 0xb8};
  v6[15] = 1;
  auto ip = FromBytes(v6);
  ASSERT_TRUE(ip);
  EXPECT_EQ(FormatIp(*ip), "2001:db8::1");
  EXPECT_TRUE(std::equal(ip->view().begin(), ip->view().end(), v6.begin(), v6.end()));
  for (size_t n : {0u, 3u, 5u, 15u, 17u}) {
    std::vector<uint8_t> bytes(n, 1);
    auto bad = FromBytes(bytes);
    ASSERT_FALSE(bad) << n;
    EXPECT_EQ(bad.error().code(), Code::kMalformed);
  }
}

TEST(IpTest, FormatsEndpointsWithBracketsForIpv6) {
  EXPECT_EQ(FormatEndpoint({V4(203, 0, 113, 7), 443}), "203.0.113.7:443");
  EXPECT_EQ(FormatEndpoint({ParseIp("2001:db8::1").value(), 443}), "[2001:db8::1]:443");
  EXPECT_EQ(FormatEndpoint({ParseIp("::").value(), 0}), "[::]:0");
  EXPECT_EQ(FormatEndpoint({V4(0, 0, 0, 0), 65535}), "0.0.0.0:65535");
}

TEST(IpTest, OrdersAndComparesByFamilyThenBytes) {
  EXPECT_LT(V4(10, 0, 0, 1), V4(10, 0, 0, 2));
  EXPECT_NE(V4(0, 0, 0, 0), ParseIp("::").value());
  Endpoint a{V4(10, 0, 0, 1), 80};
  Endpoint b{V4(10, 0, 0, 1), 443};
  EXPECT_LT(a, b);
  EXPECT_EQ(a, (Endpoint{V4(10, 0, 0, 1), 80}));
}

}  // namespace
}  // namespace enclavia::egress
