// SPDX-License-Identifier: Apache-2.0
#include "host/nsm/nsm_server.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "host/nsm/simulator.h"
#include "lib/attestation/nsm_codec.h"
#include "lib/attestation/nsm_socket.h"
#include "lib/attestation/verifier.h"
#include "lib/crypto/random.h"

namespace enclavia::host {
namespace {

using attestation::AttestationRequest;
using attestation::ErrorResponse;
using attestation::NsmErrorCode;

class ServerDir {
 public:
  ServerDir() {
    std::string pattern = ::testing::TempDir() + "enclavia_nsm_srv_XXXXXX";
    ENCLAVIA_CHECK(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ServerDir(const ServerDir&) = delete;
  ServerDir& operator=(const ServerDir&) = delete;
  ~ServerDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::string& Path() const { return path_; }

 private:
  std::string path_;
};

Bytes Pcr(uint8_t fill) { return Bytes(attestation::kPcrSize, fill); }

Bytes Frame(ByteSpan body, uint32_t declared) {
  Bytes out(4 + body.size());
  out[0] = static_cast<uint8_t>(declared >> 24);
  out[1] = static_cast<uint8_t>(declared >> 16);
  out[2] = static_cast<uint8_t>(declared >> 8);
  out[3] = static_cast<uint8_t>(declared);
  std::copy(body.begin(), body.end(), out.begin() + 4);
  return out;
}

int ConnectRaw(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ENCLAVIA_CHECK(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  ENCLAVIA_CHECK(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

// ReadFrame reads one answer; empty on end of stream.
Bytes ReadFrame(int fd) {
  uint8_t h[4];
  if (::recv(fd, h, 4, MSG_WAITALL) != 4) {
    return {};
  }
  uint32_t n = (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | h[3];
  Bytes body(n);
  if (n > 0 && ::recv(fd, body.data(), n, MSG_WAITALL) != static_cast<ssize_t>(n)) {
    return {};
  }
  return body;
}

// The server runs in its own thread, as it runs in the sandbox's supervisor process.
class NsmServerTest : public ::testing::Test {
 protected:
  void Start(bool debug) {
    ASSERT_TRUE(crypto::Init());
    auto ca = SimulatorCa::LoadOrCreate(dir_.Path() + "/ca",
                                        [] { return std::chrono::system_clock::now(); });
    ASSERT_TRUE(ca) << ca.error().message();
    ca_ = std::make_shared<const SimulatorCa>(std::move(ca).value());
    SimulatorOptions options;
    options.boot_pcrs = {{0, Pcr(0xa0)}, {1, Pcr(0xa1)}, {2, Pcr(0xa2)}, {4, Pcr(0xa4)},
                         {8, Pcr(0xa8)}};
    options.debug = debug;
    auto sim = NsmSimulator::Create(ca_, std::move(options));
    ASSERT_TRUE(sim) << sim.error().message();
    sim_ = std::move(sim).value();
    path_ = dir_.Path() + "/nsm.sock";
    auto server = NsmServer::Listen(path_, *sim_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::make_unique<NsmServer>(std::move(server).value());
    thread_ = std::thread([this] {
      while (!stop_) {
        ENCLAVIA_CHECK(server_->Poll({}, 20).has_value());
      }
    });
  }
  void TearDown() override {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  Result<attestation::VerifiedAttestation> Verify(ByteSpan doc,
                                                  const attestation::TrustPolicy& policy) const {
    auto verifier = attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {ca_->root()});
    ENCLAVIA_CHECK(verifier.has_value());
    return verifier->Verify(doc, std::chrono::system_clock::now(), policy);
  }

  // NOLINTBEGIN(misc-non-private-member-variables-in-classes)
  ServerDir dir_;
  std::shared_ptr<const SimulatorCa> ca_;
  std::unique_ptr<NsmSimulator> sim_;
  std::unique_ptr<NsmServer> server_;
  std::string path_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  // NOLINTEND(misc-non-private-member-variables-in-classes)
};

TEST_F(NsmServerTest, AttestationOverTheSocketVerifiesWithTheBootedPcrs) {
  Start(/*debug=*/false);
  auto nsm = attestation::OpenNsm(path_);
  ASSERT_TRUE(nsm) << nsm.error().message();
  Bytes nonce = crypto::RandomBytes(32);
  AttestationRequest request;
  request.nonce = nonce;
  auto doc = (*nsm)->Attestation(request);
  ASSERT_TRUE(doc) << doc.error().message();
  attestation::TrustPolicy policy;
  policy.expected_pcrs = {{0, Pcr(0xa0)}, {1, Pcr(0xa1)}, {2, Pcr(0xa2)}, {4, Pcr(0xa4)},
                          {8, Pcr(0xa8)}};
  policy.expected_nonce = nonce;
  auto verified = Verify(*doc, policy);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_FALSE(verified->debug());
  // A wrong expectation is refused: the PCRs really are the booted ones.
  policy.expected_pcrs[2] = Pcr(0xff);
  EXPECT_FALSE(Verify(*doc, policy));
}

TEST_F(NsmServerTest, DebugModeAttestsZeroPcrs) {
  Start(/*debug=*/true);
  auto nsm = attestation::ConnectSocketNsm(path_);
  ASSERT_TRUE(nsm) << nsm.error().message();
  auto doc = (*nsm)->Attestation({});
  ASSERT_TRUE(doc) << doc.error().message();
  attestation::TrustPolicy policy;
  EXPECT_FALSE(Verify(*doc, policy)) << "a default policy must refuse a debug enclave";
  policy.allow_debug = true;
  policy.expected_pcrs = {{0, Pcr(0)}, {1, Pcr(0)}, {2, Pcr(0)}, {8, Pcr(0)}};
  auto verified = Verify(*doc, policy);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_TRUE(verified->debug());
}

TEST_F(NsmServerTest, ModuleErrorsAndOtherRequestsMapLikeTheDevice) {
  Start(/*debug=*/false);
  auto nsm = attestation::ConnectSocketNsm(path_);
  ASSERT_TRUE(nsm) << nsm.error().message();
  auto pcr = (*nsm)->DescribePcr(1);
  ASSERT_TRUE(pcr) << pcr.error().message();
  EXPECT_TRUE(pcr->locked);
  EXPECT_EQ(pcr->value, Pcr(0xa1));
  auto locked = (*nsm)->ExtendPcr(1, Bytes{1, 2, 3});
  ASSERT_FALSE(locked);
  EXPECT_EQ(locked.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(locked.error().message(), "nsm: ReadOnlyIndex");
  auto extended = (*nsm)->ExtendPcr(16, Bytes{1, 2, 3});
  ASSERT_TRUE(extended) << extended.error().message();
  EXPECT_EQ(extended->size(), attestation::kPcrSize);
  auto bad_index = (*nsm)->DescribePcr(99);
  ASSERT_FALSE(bad_index);
  EXPECT_EQ(bad_index.error().code(), Code::kInvalidArgument);
  auto random = (*nsm)->GetRandom();
  ASSERT_TRUE(random) << random.error().message();
  EXPECT_FALSE(random->empty());
  auto description = (*nsm)->DescribeNsm();
  ASSERT_TRUE(description) << description.error().message();
  EXPECT_EQ(description->digest, "SHA384");
}

TEST_F(NsmServerTest, GarbageGetsTheErrorResponseAndTheServerGoesOn) {
  Start(/*debug=*/false);
  int fd = ConnectRaw(path_);
  const Bytes garbage = {0xff, 0x00, 0x13, 0x37};
  Bytes framed = Frame(garbage, static_cast<uint32_t>(garbage.size()));
  ASSERT_EQ(::send(fd, framed.data(), framed.size(), 0), static_cast<ssize_t>(framed.size()));
  Bytes answer = ReadFrame(fd);
  auto decoded = attestation::DecodeResponse(answer);
  ASSERT_TRUE(decoded) << decoded.error().message();
  ASSERT_TRUE(std::holds_alternative<ErrorResponse>(*decoded));
  EXPECT_EQ(std::get<ErrorResponse>(*decoded).code, NsmErrorCode::kInvalidArgument);
  // Same connection, a valid request, in two pieces.
  Bytes good = attestation::EncodeRequest(attestation::DescribeNsmRequest{});
  framed = Frame(good, static_cast<uint32_t>(good.size()));
  ASSERT_EQ(::send(fd, framed.data(), 3, 0), 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(::send(fd, framed.data() + 3, framed.size() - 3, 0),
            static_cast<ssize_t>(framed.size() - 3));
  decoded = attestation::DecodeResponse(ReadFrame(fd));
  ASSERT_TRUE(decoded) << decoded.error().message();
  EXPECT_TRUE(std::holds_alternative<attestation::NsmDescription>(*decoded));
  ::close(fd);
}

TEST_F(NsmServerTest, OversizeFrameClosesOnlyThatConnection) {
  Start(/*debug=*/false);
  int bad = ConnectRaw(path_);
  Bytes framed = Frame({}, attestation::kNsmSocketMaxRequest + 1);
  ASSERT_EQ(::send(bad, framed.data(), framed.size(), 0), 4);
  EXPECT_TRUE(ReadFrame(bad).empty()) << "the connection must be closed";
  ::close(bad);
  auto nsm = attestation::ConnectSocketNsm(path_);
  ASSERT_TRUE(nsm) << nsm.error().message();
  EXPECT_TRUE((*nsm)->GetRandom());
}

TEST(NsmServeRequestTest, ServesOneFramePerCallAndReportsEnd) {
  ASSERT_TRUE(crypto::Init());
  ServerDir dir;
  auto ca = SimulatorCa::LoadOrCreate(dir.Path() + "/ca",
                                      [] { return std::chrono::system_clock::now(); });
  ASSERT_TRUE(ca);
  auto sim = NsmSimulator::Create(std::make_shared<const SimulatorCa>(std::move(ca).value()), {});
  ASSERT_TRUE(sim);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Bytes req = attestation::EncodeRequest(attestation::GetRandomRequest{});
  Bytes framed = Frame(req, static_cast<uint32_t>(req.size()));
  ASSERT_EQ(::send(sv[1], framed.data(), framed.size(), 0), static_cast<ssize_t>(framed.size()));
  auto served = ServeNsmRequest(sv[0], **sim);
  ASSERT_TRUE(served) << served.error().message();
  EXPECT_TRUE(*served);
  auto decoded = attestation::DecodeResponse(ReadFrame(sv[1]));
  ASSERT_TRUE(decoded);
  EXPECT_TRUE(std::holds_alternative<attestation::GetRandomResponse>(*decoded));
  Bytes oversize = Frame({}, 0x10000);
  ASSERT_EQ(::send(sv[1], oversize.data(), 4, 0), 4);
  auto refused = ServeNsmRequest(sv[0], **sim);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kLimitExceeded);
  ::shutdown(sv[1], SHUT_WR);
  auto end = ServeNsmRequest(sv[0], **sim);
  ASSERT_TRUE(end);
  EXPECT_FALSE(*end);
  ::close(sv[0]);
  ::close(sv[1]);
}

}  // namespace
}  // namespace enclavia::host
