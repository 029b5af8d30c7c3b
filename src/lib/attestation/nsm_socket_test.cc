// SPDX-License-Identifier: Apache-2.0
#include "lib/attestation/nsm_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <variant>

#include <gtest/gtest.h>

#include "lib/attestation/nsm_codec.h"

namespace enclavia::attestation {
namespace {

Bytes Frame(ByteSpan body, uint32_t declared) {
  Bytes out(4 + body.size());
  out[0] = static_cast<uint8_t>(declared >> 24);
  out[1] = static_cast<uint8_t>(declared >> 16);
  out[2] = static_cast<uint8_t>(declared >> 8);
  out[3] = static_cast<uint8_t>(declared);
  std::copy(body.begin(), body.end(), out.begin() + 4);
  return out;
}

// ReadRequest reads one framed request from the client end, as the server would.
Bytes ReadRequest(int fd) {
  uint8_t h[4];
  ENCLAVIA_CHECK(::recv(fd, h, 4, MSG_WAITALL) == 4);
  uint32_t n = (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | h[3];
  ENCLAVIA_CHECK(n <= kNsmSocketMaxRequest);
  Bytes body(n);
  ENCLAVIA_CHECK(n == 0 || ::recv(fd, body.data(), n, MSG_WAITALL) == static_cast<ssize_t>(n));
  return body;
}

void Send(int fd, const Bytes& data) {
  ENCLAVIA_CHECK(::send(fd, data.data(), data.size(), MSG_NOSIGNAL) ==
                 static_cast<ssize_t>(data.size()));
}

TEST(NsmSocketTest, CarriesTheDriversBytesAndMapsModuleErrors) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::unique_ptr<Nsm> nsm = SocketNsmFromFd(sv[0]);
  std::thread server([fd = sv[1]] {
    // 1: an ExtendPCR request, answered with the module's ReadOnlyIndex error.
    auto request = DecodeRequest(ReadRequest(fd));
    ENCLAVIA_CHECK(request.has_value());
    ENCLAVIA_CHECK((std::get<ExtendPcrRequest>(*request) == ExtendPcrRequest{3, Bytes{9, 9}}));
    Bytes error = EncodeResponse(ErrorResponse{NsmErrorCode::kReadOnlyIndex});
    Send(fd, Frame(error, static_cast<uint32_t>(error.size())));
    // 2: GetRandom, answered properly.
    request = DecodeRequest(ReadRequest(fd));
    ENCLAVIA_CHECK(request.has_value());
    Bytes random = EncodeResponse(GetRandomResponse{Bytes(32, 7)});
    Send(fd, Frame(random, static_cast<uint32_t>(random.size())));
    // 3: DescribeNSM, answered with a length over the limit.
    (void)ReadRequest(fd);
    Send(fd, Frame({}, kNsmSocketMaxResponse + 1));
    ::close(fd);
  });
  auto extended = nsm->ExtendPcr(3, Bytes{9, 9});
  ASSERT_FALSE(extended);
  EXPECT_EQ(extended.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(extended.error().message(), "nsm: ReadOnlyIndex");
  auto random = nsm->GetRandom();
  ASSERT_TRUE(random) << random.error().message();
  EXPECT_EQ(*random, Bytes(32, 7));
  auto oversize = nsm->DescribeNsm();
  ASSERT_FALSE(oversize);
  EXPECT_EQ(oversize.error().code(), Code::kIo);
  server.join();
  // The stream is out of step after that: later calls fail rather than misread.
  EXPECT_FALSE(nsm->GetRandom());
}

TEST(NsmSocketTest, OversizeArgumentsAreRefusedBeforeAnyIo) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::unique_ptr<Nsm> nsm = SocketNsmFromFd(sv[0]);
  AttestationRequest request;
  request.user_data = Bytes(kNsmMaxOptionalFieldSize + 1, 1);
  auto doc = nsm->Attestation(request);
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().code(), Code::kInvalidArgument);
  uint8_t byte = 0;
  EXPECT_EQ(::recv(sv[1], &byte, 1, MSG_DONTWAIT), -1) << "nothing may reach the socket";
  ::close(sv[1]);
}

TEST(NsmSocketTest, OpenNsmRefusesWhatIsNeitherDeviceNorSocket) {
  std::string dir = ::testing::TempDir() + "enclavia_nsm_open_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  std::string file = dir + "/nsm";
  std::FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr) << file;
  std::fclose(f);
  auto plain = OpenNsm(file);
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(plain.error().message().find(file), std::string::npos);
  auto missing = OpenNsm(dir + "/missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kFailedPrecondition);

  // A listening Unix socket is opened as a SocketNsm.
  std::string sock = dir + "/nsm.sock";
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, sock.data(), sock.size());
  ASSERT_EQ(::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  auto opened = OpenNsm(sock);
  ASSERT_TRUE(opened) << opened.error().message();
  ::close(listener);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace enclavia::attestation
