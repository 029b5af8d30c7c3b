// SPDX-License-Identifier: Apache-2.0
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "host/upgrade/service.h"
#include "host/upgrade/state.h"
#include "lib/base/encoding.h"
#include "lib/crypto/random.h"
#include "lib/crypto/signer.h"
#include "lib/net/socket.h"
#include "lib/upgrade/chain.h"
#include "testing/temp_dir.h"

namespace enclavia::host {
namespace {

using std::chrono::milliseconds;

net::Address UnixAddress(const std::string& path) {
  net::Address address;
  address.family = net::Family::kUnix;
  address.host = path;
  return address;
}

class UpgradeHostServiceTest : public ::testing::Test {
 protected:
  testing::TempDir dir_{"upgrade_service"};
  net::Address address_ = UnixAddress(dir_.path() + "/5006.sock");
};

TEST_F(UpgradeHostServiceTest, AnswersChainWithStagedAndPending) {
  UpgradeHostService::Handlers handlers;
  handlers.chain = [] {
    upgrade::HostChain chain;
    chain.chain = {Bytes{1, 2, 3}};
    chain.staged = {Bytes{4}};
    chain.pending = Bytes{5, 6};
    return chain;
  };
  auto service = UpgradeHostService::Start(address_, handlers);
  ASSERT_TRUE(service) << service.error().message();
  auto fetched = upgrade::FetchChain(address_, milliseconds(2000));
  ASSERT_TRUE(fetched) << fetched.error().message();
  EXPECT_EQ(fetched->chain, std::vector<Bytes>{Bytes({1, 2, 3})});
  EXPECT_EQ(fetched->staged, std::vector<Bytes>{Bytes({4})});
  ASSERT_TRUE(fetched->pending.has_value());
  EXPECT_EQ(*fetched->pending, Bytes({5, 6}));
  EXPECT_EQ((*service)->requests(), 1u);
}

TEST_F(UpgradeHostServiceTest, RefusesSuccessorWhenNoActivationRuns) {
  UpgradeHostService::Handlers handlers;
  handlers.successor = [] { return std::optional<net::Address>(); };
  auto service = UpgradeHostService::Start(address_, handlers);
  ASSERT_TRUE(service) << service.error().message();
  upgrade::Message request;
  request.type = upgrade::MessageType::kSuccessor;
  auto answer = upgrade::Call(address_, request, milliseconds(2000));
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(answer.error().message().find("no activation"), std::string::npos);
}

TEST_F(UpgradeHostServiceTest, RefusesOtherRequests) {
  auto service = UpgradeHostService::Start(address_, {});
  ASSERT_TRUE(service) << service.error().message();
  upgrade::Message request;
  request.type = upgrade::MessageType::kStage;
  request.entry = Bytes{1};
  auto answer = upgrade::Call(address_, request, milliseconds(2000));
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code(), Code::kInvalidArgument);
}

TEST_F(UpgradeHostServiceTest, PipesBytesToTheSuccessor) {
  // The "successor": echoes what it reads, upper-cased by one bit flip so that a test of the
  // pipe cannot pass by reading its own writes.
  net::Address successor = UnixAddress(dir_.path() + "/ingress.sock");
  auto listener = net::ListenOn(successor);
  ASSERT_TRUE(listener) << listener.error().message();
  std::thread echo([fd = listener->get()] {
    int conn = ::accept(fd, nullptr, nullptr);
    if (conn < 0) {
      return;
    }
    char buf[64];
    ssize_t n = ::read(conn, buf, sizeof(buf));
    for (ssize_t i = 0; i < n; ++i) {
      buf[i] = static_cast<char>(buf[i] ^ 0x20);
    }
    if (n > 0) {
      (void)!::write(conn, buf, static_cast<size_t>(n));
    }
    ::close(conn);
  });
  UpgradeHostService::Handlers handlers;
  handlers.successor = [successor] { return std::optional<net::Address>(successor); };
  auto service = UpgradeHostService::Start(address_, handlers);
  ASSERT_TRUE(service) << service.error().message();

  auto fd = net::Connect(address_);
  ASSERT_TRUE(fd) << fd.error().message();
  upgrade::Message request;
  request.type = upgrade::MessageType::kSuccessor;
  ASSERT_TRUE(upgrade::WriteMessage(fd->get(), request));
  auto ok = upgrade::ReadMessage(fd->get(), milliseconds(2000));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->type, upgrade::MessageType::kOk);
  ASSERT_EQ(::write(fd->get(), "hello", 5), 5);
  std::string got;
  char buf[16];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof(buf));
    if (n <= 0) {
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  echo.join();
  EXPECT_EQ(got, "HELLO");
  EXPECT_GE((*service)->piped_bytes(), 10u);
}

TEST_F(UpgradeHostServiceTest, StopsWhileAConnectionWaits) {
  auto service = UpgradeHostService::Start(address_, {});
  ASSERT_TRUE(service) << service.error().message();
  auto fd = net::Connect(address_);
  ASSERT_TRUE(fd) << fd.error().message();
  std::this_thread::sleep_for(milliseconds(50));  // Accepted; its request never comes.
  service->reset();                              // Must not wait for kRequestTimeout.
  char c;
  EXPECT_LE(::read(fd->get(), &c, 1), 0);
}

// Entries signed by lib/upgrade: what the agent stores per enclave.
class UpgradeStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    upgrade::Genesis genesis;
    genesis.enclave_id = "app";
    genesis.first_pcrs = {{0, Bytes(48, 1)}, {1, Bytes(48, 2)}, {2, Bytes(48, 3)}};
    genesis.control_keys = {control_.public_key().ToSpki()};
    genesis.upgradable = true;
    genesis.min_staging_window_s = 60;
    genesis.created_unix = 1000;
    auto signed_genesis = upgrade::SignGenesis(genesis, control_);
    ASSERT_TRUE(signed_genesis) << signed_genesis.error().message();
    genesis_ = *signed_genesis;

    upgrade::UpgradeRequest request;
    request.genesis = upgrade::GenesisHash(genesis_);
    request.previous_head = request.genesis;
    request.new_pcrs = {{0, Bytes(48, 9)}, {1, Bytes(48, 2)}, {2, Bytes(48, 3)}};
    request.not_before_unix = 5000;
    request.id = "v2";
    auto signed_request = upgrade::SignRequest(request, control_);
    ASSERT_TRUE(signed_request) << signed_request.error().message();
    request_ = *signed_request;

    upgrade::StagingReceipt receipt;
    receipt.request = upgrade::RequestHash(request_);
    receipt.staged_at_unix = 2000;
    receipt.attestation = Bytes(100, 7);
    auto signed_receipt = upgrade::SignStaging(receipt, receipt_key_);
    ASSERT_TRUE(signed_receipt) << signed_receipt.error().message();
    receipt_ = *signed_receipt;
  }

  crypto::MemorySigner control_{crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519)};
  crypto::MemorySigner receipt_key_{
      crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519)};
  Bytes genesis_, request_, receipt_;
};

TEST_F(UpgradeStateTest, DescribesAStagedRequestFromItsEntries) {
  auto staged = DescribeStaged({genesis_}, request_, receipt_, "/images/v2.eif");
  ASSERT_TRUE(staged) << staged.error().message();
  EXPECT_EQ(staged->id, "v2");
  EXPECT_EQ(staged->staged_at, 2000u);
  EXPECT_EQ(staged->due_at, 5000u);  // not_before beats staged_at + 60.
  EXPECT_EQ(staged->new_pcrs.at(0), HexEncode(Bytes(48, 9)));
  EXPECT_EQ(staged->request_hash, upgrade::DigestHex(upgrade::RequestHash(request_)));
}

TEST_F(UpgradeStateTest, StatusShowsGenesisHeadAndTimeLeft) {
  UpgradeState state;
  state.chain = {genesis_};
  auto staged = DescribeStaged(state.chain, request_, receipt_, "/images/v2.eif");
  ASSERT_TRUE(staged);
  state.staged.push_back(*staged);
  nlohmann::json status = StatusJson(state, 4000);
  EXPECT_EQ(status["genesis"], upgrade::DigestHex(upgrade::GenesisHash(genesis_)));
  EXPECT_EQ(status["head"], status["genesis"]);
  EXPECT_EQ(status["length"], 1);
  EXPECT_EQ(status["upgradable"], true);
  ASSERT_EQ(status["staged"].size(), 1u);
  EXPECT_EQ(status["staged"][0]["seconds_left"], 1000);
  EXPECT_EQ(status["staged"][0]["due"], false);
  EXPECT_EQ(StatusJson(state, 6000)["staged"][0]["due"], true);
}

TEST_F(UpgradeStateTest, StateRoundTripsThroughJson) {
  UpgradeState state;
  state.chain = {genesis_};
  auto staged = DescribeStaged(state.chain, request_, receipt_, "/images/v2.eif");
  ASSERT_TRUE(staged);
  staged->revoked = true;
  state.staged.push_back(*staged);
  state.pending = request_;
  auto parsed = ParseUpgradeState(UpgradeStateJson(state));
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->chain, state.chain);
  ASSERT_EQ(parsed->staged.size(), 1u);
  EXPECT_TRUE(parsed->staged[0].revoked);
  EXPECT_EQ(parsed->staged[0].eif_path, "/images/v2.eif");
  EXPECT_EQ(parsed->pending, state.pending);
  // A revoked request's receipt is not offered to a restarted enclave.
  EXPECT_TRUE(parsed->ToHostChain().staged.empty());
  // An unrevoked one is offered as its request entry followed by its staging receipt.
  parsed->staged[0].revoked = false;
  EXPECT_EQ(parsed->ToHostChain().staged, (std::vector<Bytes>{request_, receipt_}));
  EXPECT_NE(parsed->Find("v2"), nullptr);
  EXPECT_EQ(parsed->Find("v3"), nullptr);
}

TEST_F(UpgradeStateTest, RefusesMalformedState) {
  EXPECT_FALSE(ParseUpgradeState(nlohmann::json::array()));
  EXPECT_FALSE(ParseUpgradeState({{"chain", {"!!"}}}));
  EXPECT_FALSE(ParseUpgradeState({{"chain", {42}}}));
  nlohmann::json bad_staged = UpgradeStateJson(UpgradeState{{genesis_}, {}, std::nullopt});
  bad_staged["staged"] = {{{"request", "AAAA"}, {"receipt", "AAAA"}}};
  EXPECT_FALSE(ParseUpgradeState(bad_staged));
}

TEST_F(UpgradeStateTest, AppendActivationAddsTheTriple) {
  auto staged = DescribeStaged({genesis_}, request_, receipt_, "");
  ASSERT_TRUE(staged);
  std::vector<Bytes> chain = AppendActivation({genesis_}, *staged, Bytes{8});
  ASSERT_EQ(chain.size(), 4u);
  EXPECT_EQ(chain[1], request_);
  EXPECT_EQ(chain[2], receipt_);
  EXPECT_EQ(chain[3], Bytes{8});
}

}  // namespace
}  // namespace enclavia::host
