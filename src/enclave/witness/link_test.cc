// SPDX-License-Identifier: Apache-2.0
// ChannelWitnessLink end to end, in-process: the witness enclave is an ingress Daemon (channel
// terminator) in front of a WitnessServer, reached through a host Relay; the storage enclave
// dials the relay through DialOptions::via, so the URL's host is never resolved.
#include "enclave/witness/link.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "enclave/ingress/daemon.h"
#include "enclave/witness/server.h"
#include "host/nsm/simulator.h"
#include "host/relay/relay.h"
#include "lib/crypto/keys.h"
#include "lib/witness/witness_set.h"
#include "testing/temp_dir.h"

namespace enclavia::enclave {
namespace {

namespace asio = boost::asio;

Bytes Pcr(uint8_t fill) { return Bytes(attestation::kPcrSize, fill); }

using testing::TempDir;

storage::CommitRecord SignedRecord(const crypto::PrivateKey& key, uint64_t version) {
  storage::CommitRecord r;
  r.volume_id.fill(0x42);
  r.version = version;
  r.superblock_hash.fill(static_cast<uint8_t>(version));
  Bytes raw = key.public_key().ToRaw();
  std::copy(raw.begin(), raw.end(), r.volume_public_key.begin());
  auto sig = key.Sign(storage::CommitStatement(r));
  ENCLAVIA_CHECK(sig.has_value());
  std::copy(sig->begin(), sig->end(), r.signature.begin());
  return r;
}

class ChannelWitnessLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = host::SimulatorCa::LoadOrCreate(
        dir_.path() + "/ca", [] { return SystemTime(std::chrono::system_clock::now()); });
    ASSERT_TRUE(ca);
    ca_ = std::make_shared<const host::SimulatorCa>(std::move(*ca));

    // The witness enclave: its NSM, its app (the witness server) and its ingress.
    std::shared_ptr<attestation::Nsm> witness_nsm = Nsm(0xEE);
    auto verifier = VerifierFromOwnNsm(*witness_nsm);
    ASSERT_TRUE(verifier);
    WitnessServerOptions server_options;
    server_options.listen = *net::ParseAddress("tcp:127.0.0.1:0");
    server_options.session.verifier = *verifier;
    auto server = WitnessServer::Start(state_, server_options);
    ASSERT_TRUE(server);
    server_ = std::move(*server);
    witness_port_ = static_cast<uint16_t>(server_->local_address().port);

    DaemonOptions daemon_options;
    daemon_options.ingress_listen = *net::ParseAddress("unix:" + dir_.path() + "/5000.sock");
    daemon_options.attestation_listen = *net::ParseAddress("unix:" + dir_.path() + "/5001.sock");
    daemon_options.allowed_ports = {witness_port_};
    auto daemon = Daemon::Create(io_, witness_nsm, daemon_options);
    ASSERT_TRUE(daemon) << daemon.error().message();
    daemon_ = std::move(*daemon);

    // The witness host's relay, which the storage enclave's parent forwards to.
    host::RelayOptions relay_options;
    relay_options.listen = *net::ParseAddress("tcp:127.0.0.1:0");
    relay_options.enclave = daemon_->ingress_address();
    auto relay = host::Relay::Create(io_, relay_options);
    ASSERT_TRUE(relay) << relay.error().message();
    relay_ = std::move(*relay);
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (relay_) {
      relay_->Stop();
    }
    if (daemon_) {
      daemon_->Stop();
    }
    work_.reset();
    io_.stop();
    if (thread_.joinable()) {
      thread_.join();
    }
    relay_.reset();
    daemon_.reset();
    server_.reset();
  }

  std::shared_ptr<attestation::Nsm> Nsm(uint8_t pcr0_fill) {
    host::SimulatorOptions options;
    options.boot_pcrs[0] = Pcr(pcr0_fill);
    auto nsm = host::NsmSimulator::Create(ca_, options);
    ENCLAVIA_CHECK(nsm.has_value());
    return std::make_shared<witness::SerializedNsm>(
        std::shared_ptr<attestation::Nsm>(std::move(*nsm)));
  }

  ChannelWitnessLinkOptions LinkOptions(uint8_t expected_witness_pcr0) {
    auto verifier = attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {ca_->root()});
    ENCLAVIA_CHECK(verifier.has_value());
    ChannelWitnessLinkOptions options;
    options.url = "ws://witness-0.invalid/";
    options.via = relay_->local_address();
    options.policy.verifier = std::make_shared<const attestation::Verifier>(std::move(*verifier));
    options.policy.accept = {{{0, Pcr(expected_witness_pcr0)}}};
    options.port = witness_port_;
    return options;
  }

  TempDir dir_;
  std::shared_ptr<const host::SimulatorCa> ca_;
  witness::WitnessState state_;
  std::unique_ptr<WitnessServer> server_;
  uint16_t witness_port_ = 0;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<host::Relay> relay_;
  std::thread thread_;
};

TEST_F(ChannelWitnessLinkTest, CommitsAndQueriesOverTheAttestedChannel) {
  std::vector<std::unique_ptr<witness::WitnessLink>> links;
  links.push_back(std::make_unique<ChannelWitnessLink>("witness 0", LinkOptions(0xEE), Nsm(0x5A)));
  witness::WitnessSet set(std::move(links));
  auto key = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519);
  auto commit = set.Commit(SignedRecord(key, 1));
  ASSERT_TRUE(commit) << commit.error().message();
  ASSERT_TRUE(set.Commit(SignedRecord(key, 2)));
  auto latest = set.Latest(SignedRecord(key, 2).volume_id);
  ASSERT_TRUE(latest && latest->has_value());
  EXPECT_EQ((*latest)->version, 2u);
  EXPECT_EQ(state_.volume_count(), 1u);
}

TEST_F(ChannelWitnessLinkTest, AWitnessWithOtherPcrsGetsNoRequest) {
  ChannelWitnessLink link("witness 0", LinkOptions(0xEF), Nsm(0x5A));
  auto key = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519);
  auto reply = link.Call(witness::Commit{SignedRecord(key, 1)});
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), Code::kPolicyViolation) << reply.error().message();
  EXPECT_EQ(state_.volume_count(), 0u);
}

}  // namespace
}  // namespace enclavia::enclave
