// SPDX-License-Identifier: Apache-2.0
#include "lib/transport/transport.h"

#include <gtest/gtest.h>

#include <string>

namespace enclavia::transport {
namespace {

TEST(TransportTest, LocalEnclavePortsAreSocketsInTheSandboxVsockDir) {
  EXPECT_EQ(EnclaveListen(Mode::kLocal, kIngressPort).ToString(),
            "unix:/run/enclavia/vsock/5000.sock");
  EXPECT_EQ(EnclaveToParent(Mode::kLocal, 8000).ToString(),
            "unix:/run/enclavia/vsock/parent-8000.sock");
}

TEST(TransportTest, VsockEnclaveListensOnAnyCidAndDialsTheParent) {
  net::Address listen = EnclaveListen(Mode::kVsock, kAttestationPort);
  EXPECT_EQ(listen.family, net::Family::kVsock);
  EXPECT_EQ(listen.cid, kAnyCid);
  EXPECT_EQ(listen.port, kAttestationPort);
  EXPECT_EQ(EnclaveToParent(Mode::kVsock, 8000).ToString(), "vsock:3:8000");
}

TEST(TransportTest, HostSideOfLocalEndpointMirrorsTheEnclaveSide) {
  Endpoint endpoint{.cid = 0, .local_dir = "/var/lib/enclavia/host/enclaves/web/vsock"};
  // The host's path for port P and the sandbox's path for port P name the same file through the
  // bind mount: same basename, host directory instead of kLocalVsockDir.
  for (uint32_t port : {kIngressPort, kAttestationPort, uint32_t{9}}) {
    std::string host = HostToEnclave(endpoint, port).host;
    std::string inside = EnclaveListen(Mode::kLocal, port).host;
    ASSERT_TRUE(host.starts_with(endpoint.local_dir + "/"));
    ASSERT_TRUE(inside.starts_with(std::string(kLocalVsockDir) + "/"));
    EXPECT_EQ(host.substr(endpoint.local_dir.size()), inside.substr(kLocalVsockDir.size()));
    std::string host_parent = HostListenForEnclave(endpoint, port).host;
    std::string inside_parent = EnclaveToParent(Mode::kLocal, port).host;
    EXPECT_EQ(host_parent.substr(endpoint.local_dir.size()),
              inside_parent.substr(kLocalVsockDir.size()));
    EXPECT_NE(host, host_parent);
  }
  EXPECT_EQ(HostToEnclave(endpoint, 5000).family, net::Family::kUnix);
}

TEST(TransportTest, HostSideOfNitroEndpointIsVsock) {
  Endpoint endpoint{.cid = 16, .local_dir = ""};
  EXPECT_EQ(HostToEnclave(endpoint, kIngressPort).ToString(), "vsock:16:5000");
  net::Address parent = HostListenForEnclave(endpoint, 8000);
  EXPECT_EQ(parent.family, net::Family::kVsock);
  EXPECT_EQ(parent.cid, kAnyCid);
  EXPECT_EQ(parent.port, 8000U);
}

TEST(TransportTest, AddressesRoundTripThroughText) {
  Endpoint local{.cid = 0, .local_dir = "/tmp/e/vsock"};
  Endpoint nitro{.cid = 17, .local_dir = ""};
  for (const net::Address& a :
       {EnclaveListen(Mode::kLocal, 1), EnclaveToParent(Mode::kVsock, 2),
        HostToEnclave(local, 3), HostToEnclave(nitro, 4), HostListenForEnclave(local, 5)}) {
    Result<net::Address> parsed = net::ParseAddress(a.ToString());
    ASSERT_TRUE(parsed.has_value()) << a.ToString();
    EXPECT_EQ(parsed->ToString(), a.ToString());
  }
}

TEST(TransportTest, DetectModeAnswersOrNamesBothOptions) {
  Result<Mode> mode = DetectMode();
  if (!mode) {
    EXPECT_EQ(mode.error().code(), Code::kFailedPrecondition);
    EXPECT_NE(mode.error().message().find("/dev/vsock"), std::string::npos);
    EXPECT_NE(mode.error().message().find(kLocalVsockDir), std::string::npos);
  }
}

}  // namespace
}  // namespace enclavia::transport
