// SPDX-License-Identifier: Apache-2.0
// enclavia-witness's server in-process, over real sockets, with NSM simulator documents:
// WitnessSets of 1 and 3 witnesses through StreamWitnessLink.
#include "enclave/witness/server.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "host/nsm/simulator.h"
#include "lib/crypto/keys.h"
#include "lib/witness/link.h"
#include "lib/witness/witness_set.h"
#include "testing/temp_dir.h"

namespace enclavia::enclave {
namespace {

using storage::CommitRecord;
using witness::VolumeId;

Bytes Pcr(uint8_t fill) { return Bytes(attestation::kPcrSize, fill); }

using testing::TempDir;

class Volume {
 public:
  Volume() : key_(crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519)) {
    volume_id_.fill(0xC3);
  }
  CommitRecord Record(uint64_t version) const {
    CommitRecord r;
    r.volume_id = volume_id_;
    r.version = version;
    r.superblock_hash.fill(static_cast<uint8_t>(version));
    Bytes raw = key_.public_key().ToRaw();
    std::copy(raw.begin(), raw.end(), r.volume_public_key.begin());
    auto sig = key_.Sign(storage::CommitStatement(r));
    ENCLAVIA_CHECK(sig.has_value());
    std::copy(sig->begin(), sig->end(), r.signature.begin());
    return r;
  }
  const VolumeId& id() const { return volume_id_; }

 private:
  crypto::PrivateKey key_;
  VolumeId volume_id_{};
};

// Witness is one enclavia-witness in-process: its own NSM simulator (the witness image's
// PCRs), the verifier from its own document, its state and its server on 127.0.0.1:0.
class Witness {
 public:
  Witness(std::shared_ptr<const host::SimulatorCa> ca, bool allow_debug = false)
      : ca_(std::move(ca)), allow_debug_(allow_debug) {
    Start();
  }
  void Start() {
    host::SimulatorOptions options;
    options.boot_pcrs[0] = Pcr(0xEE);
    auto nsm = host::NsmSimulator::Create(ca_, options);
    ENCLAVIA_CHECK(nsm.has_value());
    auto verifier = VerifierFromOwnNsm(**nsm);
    ENCLAVIA_CHECK(verifier.has_value());
    state_ = std::make_unique<witness::WitnessState>();
    WitnessServerOptions server_options;
    server_options.listen = *net::ParseAddress(
        port_ == 0 ? std::string("tcp:127.0.0.1:0") : "tcp:127.0.0.1:" + std::to_string(port_));
    server_options.session.verifier = *verifier;
    server_options.session.allow_debug = allow_debug_;
    server_options.log = [this](std::string_view line) {
      std::lock_guard lock(mu_);
      log_.emplace_back(line);
    };
    auto server = WitnessServer::Start(*state_, server_options);
    ENCLAVIA_CHECK(server.has_value());
    server_ = std::move(*server);
    port_ = static_cast<uint16_t>(server_->local_address().port);
  }
  void Stop() {
    server_.reset();
    state_.reset();
  }
  // Restart loses the state, as a restarted enclave does, and comes back on the same port.
  void Restart() {
    Stop();
    Start();
  }
  net::Address address() const {
    return *net::ParseAddress("tcp:127.0.0.1:" + std::to_string(port_));
  }
  std::vector<std::string> log() {
    std::lock_guard lock(mu_);
    return log_;
  }

 private:
  std::shared_ptr<const host::SimulatorCa> ca_;
  bool allow_debug_;
  uint16_t port_ = 0;
  std::unique_ptr<witness::WitnessState> state_;
  std::unique_ptr<WitnessServer> server_;
  std::mutex mu_;
  std::vector<std::string> log_;
};

class WitnessServerTest : public ::testing::Test {
 protected:
  WitnessServerTest() {
    auto ca = host::SimulatorCa::LoadOrCreate(
        dir_.path() + "/ca", [] { return SystemTime(std::chrono::system_clock::now()); });
    ENCLAVIA_CHECK(ca.has_value());
    ca_ = std::make_shared<const host::SimulatorCa>(std::move(*ca));
  }
  std::shared_ptr<attestation::Nsm> ClientNsm(uint8_t pcr0_fill, bool debug = false) {
    host::SimulatorOptions options;
    options.boot_pcrs[0] = Pcr(pcr0_fill);
    options.debug = debug;
    auto nsm = host::NsmSimulator::Create(ca_, options);
    ENCLAVIA_CHECK(nsm.has_value());
    return std::make_shared<witness::SerializedNsm>(
        std::shared_ptr<attestation::Nsm>(std::move(*nsm)));
  }
  std::unique_ptr<witness::WitnessSet> Set(const std::vector<std::unique_ptr<Witness>>& witnesses,
                                           std::shared_ptr<attestation::Nsm> nsm) {
    std::vector<std::unique_ptr<witness::WitnessLink>> links;
    for (size_t i = 0; i < witnesses.size(); ++i) {
      net::Address address = witnesses[i]->address();
      links.push_back(std::make_unique<witness::StreamWitnessLink>(
          "witness " + std::to_string(i), [address] { return witness::ConnectStream(address); },
          nsm));
    }
    return std::make_unique<witness::WitnessSet>(std::move(links));
  }
  std::vector<std::unique_ptr<Witness>> Witnesses(size_t n, bool allow_debug = false) {
    std::vector<std::unique_ptr<Witness>> out;
    for (size_t i = 0; i < n; ++i) {
      out.push_back(std::make_unique<Witness>(ca_, allow_debug));
    }
    return out;
  }

  TempDir dir_;
  std::shared_ptr<const host::SimulatorCa> ca_;
  Volume volume_;
};

TEST_F(WitnessServerTest, OneWitnessCommitsLogsAndForgetsOnRestart) {
  auto witnesses = Witnesses(1);
  auto set = Set(witnesses, ClientNsm(0x5A));
  auto none = set->Latest(volume_.id());
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(set->Commit(volume_.Record(1)));
  auto second = set->Commit(volume_.Record(2));
  ASSERT_TRUE(second) << second.error().message();
  auto latest = set->Latest(volume_.id());
  ASSERT_TRUE(latest && latest->has_value());
  EXPECT_EQ((*latest)->version, 2u);
  auto log = witnesses[0]->log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1], "commit volume c3c3c3c3... v2 acked");

  auto lower = set->Commit(volume_.Record(1));
  ASSERT_FALSE(lower);
  EXPECT_NE(lower.error().message().find("rollback"), std::string::npos);

  witnesses[0]->Restart();  // State lost: the link reconnects and sees Unknown.
  auto after = set->Latest(volume_.id());
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_FALSE(after->has_value());
}

TEST_F(WitnessServerTest, ThreeWitnessesWorkWithOneDown) {
  auto witnesses = Witnesses(3);
  auto set = Set(witnesses, ClientNsm(0x5A));
  ASSERT_TRUE(set->Commit(volume_.Record(1)));
  witnesses[1]->Stop();
  auto commit = set->Commit(volume_.Record(2));
  ASSERT_TRUE(commit) << commit.error().message();
  auto latest = set->Latest(volume_.id());
  ASSERT_TRUE(latest && latest->has_value());
  EXPECT_EQ((*latest)->version, 2u);
  witnesses[2]->Stop();
  auto lost = set->Commit(volume_.Record(3));
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code(), Code::kUnavailable);
}

TEST_F(WitnessServerTest, RefusesAnotherImageAndDebugClients) {
  auto witnesses = Witnesses(1);
  auto owner = Set(witnesses, ClientNsm(0x5A));
  ASSERT_TRUE(owner->Commit(volume_.Record(1)));

  auto intruder = Set(witnesses, ClientNsm(0x77));
  auto commit = intruder->Commit(volume_.Record(2));
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(commit.error().message().find("PCR0"), std::string::npos);

  auto debug = Set(witnesses, ClientNsm(0x5A, /*debug=*/true));
  auto refused = debug->Latest(volume_.id());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("debug"), std::string::npos)
      << refused.error().message();

  auto lenient_witnesses = Witnesses(1, /*allow_debug=*/true);
  auto lenient = Set(lenient_witnesses, ClientNsm(0x5A, /*debug=*/true));
  EXPECT_TRUE(lenient->Commit(volume_.Record(1)));
}

TEST_F(WitnessServerTest, OversizedFramesAndGarbageEndOnlyThatConnection) {
  auto witnesses = Witnesses(1);
  {
    auto stream = witness::ConnectStream(witnesses[0]->address());
    ASSERT_TRUE(stream);
    auto challenge = witness::ReadFrame(**stream);
    ASSERT_TRUE(challenge);
    ASSERT_TRUE((*stream)->Write(Bytes{0x7f, 0xff, 0xff, 0xff}));
    auto refused = witness::ReadFrame(**stream);
    ASSERT_TRUE(refused);
    auto message = witness::DecodeMessage(*refused);
    ASSERT_TRUE(message);
    EXPECT_TRUE(std::holds_alternative<witness::Refused>(*message));
  }
  auto set = Set(witnesses, ClientNsm(0x5A));
  EXPECT_TRUE(set->Commit(volume_.Record(1)));
}

TEST(WitnessFlagsTest, ParsesTheFlags) {
  auto flags =
      ParseWitnessFlags({"--listen", "tcp:127.0.0.1:7100", "--nsm=/tmp/nsm.sock", "--allow-debug"});
  ASSERT_TRUE(flags);
  EXPECT_EQ(flags->listen, "tcp:127.0.0.1:7100");
  EXPECT_EQ(flags->nsm_path, "/tmp/nsm.sock");
  EXPECT_TRUE(flags->allow_debug);
  EXPECT_FALSE(ParseWitnessFlags({"--listen"}));
  EXPECT_FALSE(ParseWitnessFlags({"--listen", "nowhere"}));
  EXPECT_FALSE(ParseWitnessFlags({"--bogus", "1"}));
  EXPECT_EQ(ParseWitnessFlags({}).value().listen, "tcp:127.0.0.1:7000");
}

}  // namespace
}  // namespace enclavia::enclave
