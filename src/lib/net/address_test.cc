// SPDX-License-Identifier: Apache-2.0
#include "lib/net/address.h"

#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <gtest/gtest.h>

namespace enclavia::net {
namespace {

TEST(AddressTest, ParsesEachFamilyAndRoundTrips) {
  for (std::string_view text : {"unix:/tmp/a.sock", "tcp:127.0.0.1:8080", "vsock:16:5000",
                                "tcp:[::1]:443"}) {
    auto a = ParseAddress(text);
    ASSERT_TRUE(a) << text << ": " << a.error().message();
    EXPECT_EQ(a->ToString(), text);
  }
  auto bare = ParseAddress("localhost:80");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->ToString(), "tcp:127.0.0.1:80");
  auto any = ParseAddress(":9000");
  ASSERT_TRUE(any);
  EXPECT_EQ(any->host, "0.0.0.0");
}

TEST(AddressTest, RejectsBadInputWithOneLine) {
  for (std::string_view text : {"", "unix:", "tcp:1.2.3.4", "tcp:1.2.3.4:70000", "vsock:3",
                                "vsock:x:1", "tcp:example.com:80", "tcp:[::1:80",
                                "tcp:1.2.3.4:-1"}) {
    auto a = ParseAddress(text);
    ASSERT_FALSE(a) << text;
    EXPECT_EQ(a.error().code(), Code::kInvalidArgument);
    EXPECT_EQ(a.error().message().find('\n'), std::string::npos);
  }
  std::string long_path = "unix:/" + std::string(200, 'a');
  EXPECT_FALSE(ParseAddress(long_path));
}

TEST(AddressTest, ResolvesToTheRightSockaddr) {
  auto vs = Resolve(*ParseAddress("vsock:3:5005"));
  ASSERT_TRUE(vs);
  ASSERT_EQ(vs->family(), AF_VSOCK);
  const auto* vm = reinterpret_cast<const sockaddr_vm*>(&vs->storage);
  EXPECT_EQ(vm->svm_cid, 3u);
  EXPECT_EQ(vm->svm_port, 5005u);
  EXPECT_EQ(vs->size, sizeof(sockaddr_vm));

  auto tcp = Resolve(*ParseAddress("tcp:127.0.0.1:8080"));
  ASSERT_TRUE(tcp);
  const auto* in = reinterpret_cast<const sockaddr_in*>(&tcp->storage);
  EXPECT_EQ(ntohs(in->sin_port), 8080);
  EXPECT_EQ(ntohl(in->sin_addr.s_addr), 0x7f000001u);

  auto un = Resolve(*ParseAddress("unix:/run/x.sock"));
  ASSERT_TRUE(un);
  EXPECT_EQ(un->family(), AF_UNIX);
  EXPECT_STREQ(reinterpret_cast<const sockaddr_un*>(&un->storage)->sun_path, "/run/x.sock");
}

}  // namespace
}  // namespace enclavia::net
