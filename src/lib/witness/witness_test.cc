// SPDX-License-Identifier: Apache-2.0
// WitnessState, WitnessSession and WitnessSet with real NSM simulator documents; the links are
// in-process (they drive a WitnessSession directly), the socket server is tested in
// src/enclave/witness.
#include <stdlib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "host/nsm/simulator.h"
#include "lib/crypto/keys.h"
#include "testing/upgrade_chain.h"
#include "lib/witness/link.h"
#include "lib/witness/state.h"
#include "lib/witness/witness_set.h"
#include "testing/temp_dir.h"

namespace enclavia::witness {
namespace {

using storage::CommitRecord;

Bytes Pcr(uint8_t fill) { return Bytes(attestation::kPcrSize, fill); }

using testing::TempDir;

// Volume signs commit records as the block store does, with the volume's Ed25519 key.
class Volume {
 public:
  explicit Volume(uint8_t id)
      : key_(crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519)) {
    volume_id_.fill(id);
  }
  CommitRecord Record(uint64_t version, uint8_t hash = 0) const {
    CommitRecord r;
    r.volume_id = volume_id_;
    r.epoch = 1;
    r.version = version;
    r.superblock_hash.fill(hash == 0 ? static_cast<uint8_t>(version) : hash);
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

// Simulators share one CA (the local root) and make one NSM per enclave.
class Simulators {
 public:
  Simulators() {
    auto ca = host::SimulatorCa::LoadOrCreate(
        dir_.path() + "/ca", [] { return SystemTime(std::chrono::system_clock::now()); });
    ENCLAVIA_CHECK(ca.has_value());
    ca_ = std::make_shared<const host::SimulatorCa>(std::move(*ca));
    auto verifier = attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {ca_->root()});
    ENCLAVIA_CHECK(verifier.has_value());
    verifier_ = std::make_shared<const attestation::Verifier>(std::move(*verifier));
  }
  std::shared_ptr<attestation::Nsm> Nsm(uint8_t pcr0_fill, bool debug = false) const {
    host::SimulatorOptions options;
    options.boot_pcrs[0] = Pcr(pcr0_fill);
    options.debug = debug;
    auto nsm = host::NsmSimulator::Create(ca_, options);
    ENCLAVIA_CHECK(nsm.has_value());
    return std::make_shared<SerializedNsm>(std::shared_ptr<attestation::Nsm>(std::move(*nsm)));
  }
  SessionOptions Options(bool allow_debug = false) const {
    SessionOptions o;
    o.verifier = verifier_;
    o.allow_debug = allow_debug;
    return o;
  }

 private:
  TempDir dir_;
  std::shared_ptr<const host::SimulatorCa> ca_;
  std::shared_ptr<const attestation::Verifier> verifier_;
};

// Handshake runs a session's Challenge/Hello with `nsm`; returns the reply to the Hello.
Message Handshake(WitnessSession& session, attestation::Nsm& nsm) {
  auto challenge = DecodeMessage(session.Start());
  ENCLAVIA_CHECK(challenge.has_value());
  auto hello = MakeHello(nsm, std::get<Challenge>(*challenge));
  ENCLAVIA_CHECK(hello.has_value());
  auto step = session.OnMessage(EncodeMessage(Message(*hello)));
  auto reply = DecodeMessage(step.reply);
  ENCLAVIA_CHECK(reply.has_value());
  return *reply;
}

// SessionLink is an in-process WitnessLink: a WitnessSession on a (replaceable) WitnessState.
class SessionLink : public WitnessLink {
 public:
  struct Control {
    std::mutex mu;
    std::shared_ptr<WitnessState> state = std::make_shared<WitnessState>();
    std::atomic<bool> down{false};
    std::atomic<bool> hang{false};
    std::atomic<bool> corrupt_ack{false};
    std::atomic<bool> aborted{false};
    std::atomic<int> calls{0};
  };

  SessionLink(std::string name, std::shared_ptr<Control> control,
              std::shared_ptr<attestation::Nsm> nsm, SessionOptions options)
      : name_(std::move(name)),
        control_(std::move(control)),
        nsm_(std::move(nsm)),
        options_(std::move(options)) {}

  Result<LinkReply> Call(const Request& request) override {
    ++control_->calls;
    std::shared_ptr<WitnessState> state;
    {
      std::lock_guard lock(control_->mu);
      if (control_->down) {
        session_.reset();
        return Error(Code::kUnavailable, "connection refused");
      }
      if (control_->hang) {
        // Wait for Abort, as a blocked socket read would.
        while (!control_->aborted) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        control_->aborted = false;
        session_.reset();
        return Error(Code::kUnavailable, "aborted");
      }
      state = control_->state;
    }
    if (!session_ || state.get() != state_.get()) {  // (Re)connect to the witness.
      state_ = state;
      session_ = std::make_unique<WitnessSession>(*state_, options_);
      auto challenge = DecodeMessage(session_->Start());
      key_ = std::get<Challenge>(*challenge).witness_key;
      Message ready = Handshake2(std::get<Challenge>(*challenge));
      if (!std::holds_alternative<Ready>(ready)) {
        session_.reset();
        return Error(Code::kPolicyViolation, "refused: " + std::get<Refused>(ready).reason);
      }
    }
    auto step = session_->OnMessage(EncodeMessage(request));
    ASSIGN_OR_RETURN(Response response, DecodeResponse(step.reply));
    if (auto* ack = std::get_if<Ack>(&response); ack != nullptr && control_->corrupt_ack) {
      ack->signature[0] ^= 1;
    }
    return LinkReply{response, key_};
  }
  void Abort() override { control_->aborted = true; }
  std::string name() const override { return name_; }

 private:
  Message Handshake2(const Challenge& challenge) {
    auto hello = MakeHello(*nsm_, challenge);
    ENCLAVIA_CHECK(hello.has_value());
    auto reply = DecodeMessage(session_->OnMessage(EncodeMessage(Message(*hello))).reply);
    ENCLAVIA_CHECK(reply.has_value());
    return *reply;
  }

  std::string name_;
  std::shared_ptr<Control> control_;
  std::shared_ptr<attestation::Nsm> nsm_;
  SessionOptions options_;
  std::shared_ptr<WitnessState> state_;
  std::unique_ptr<WitnessSession> session_;
  WitnessKey key_{};
};

class WitnessTest : public ::testing::Test {
 protected:
  Simulators sims_;
  Volume volume_{0xAB};
  Bytes pcr0_ = Pcr(0x5A);
};

// --- WitnessState ---

TEST_F(WitnessTest, FirstCommitBindsThenVersionsMustGrow) {
  WitnessState state;
  EXPECT_TRUE(std::holds_alternative<Unknown>(state.Query(volume_.id(), pcr0_)));
  auto ack = state.Commit(volume_.Record(5), pcr0_);
  ASSERT_TRUE(std::holds_alternative<Ack>(ack));
  EXPECT_TRUE(VerifyAck(state.public_key(), volume_.Record(5), std::get<Ack>(ack).signature));
  auto known = state.Query(volume_.id(), pcr0_);
  ASSERT_TRUE(std::holds_alternative<Known>(known));
  EXPECT_EQ(std::get<Known>(known).record.version, 5u);

  auto lower = state.Commit(volume_.Record(4), pcr0_);
  ASSERT_TRUE(std::holds_alternative<Refused>(lower));
  EXPECT_EQ(std::get<Refused>(lower).reason,
            "rollback: version 4 is below the witnessed version 5 of volume abababab...");
  EXPECT_TRUE(std::holds_alternative<Ack>(state.Commit(volume_.Record(6), pcr0_)));
  EXPECT_EQ(std::get<Known>(state.Query(volume_.id(), pcr0_)).record.version, 6u);
}

TEST_F(WitnessTest, SameVersionIsIdempotentOnlyForTheSameRecord) {
  WitnessState state;
  ASSERT_TRUE(std::holds_alternative<Ack>(state.Commit(volume_.Record(7), pcr0_)));
  EXPECT_TRUE(std::holds_alternative<Ack>(state.Commit(volume_.Record(7), pcr0_)));
  auto fork = state.Commit(volume_.Record(7, 0xEE), pcr0_);
  ASSERT_TRUE(std::holds_alternative<Refused>(fork));
  EXPECT_NE(std::get<Refused>(fork).reason.find("already witnessed with another superblock"),
            std::string::npos);
}

TEST_F(WitnessTest, RefusesAnotherVolumeKeyAnotherImageAndBadSignatures) {
  WitnessState state;
  ASSERT_TRUE(std::holds_alternative<Ack>(state.Commit(volume_.Record(1), pcr0_)));

  Volume impostor(0xAB);  // Same volume id, another key.
  auto other_key = state.Commit(impostor.Record(2), pcr0_);
  ASSERT_TRUE(std::holds_alternative<Refused>(other_key));
  EXPECT_NE(std::get<Refused>(other_key).reason.find("another volume key"), std::string::npos);

  auto other_image = state.Commit(volume_.Record(2), Pcr(0x77));
  ASSERT_TRUE(std::holds_alternative<Refused>(other_image));
  EXPECT_NE(std::get<Refused>(other_image).reason.find("PCR0"), std::string::npos);
  EXPECT_TRUE(std::holds_alternative<Refused>(state.Query(volume_.id(), Pcr(0x77))));

  CommitRecord forged = volume_.Record(3);
  forged.version = 4;  // The signature covered version 3.
  auto bad = state.Commit(forged, pcr0_);
  ASSERT_TRUE(std::holds_alternative<Refused>(bad));
  EXPECT_EQ(std::get<Refused>(bad).reason, "commit record: bad signature");
  EXPECT_EQ(std::get<Known>(state.Query(volume_.id(), pcr0_)).record.version, 1u);
}

TEST_F(WitnessTest, RefusesNewVolumesBeyondItsCapacity) {
  WitnessState state(1);
  ASSERT_TRUE(std::holds_alternative<Ack>(state.Commit(volume_.Record(1), pcr0_)));
  Volume second(0xCD);
  EXPECT_TRUE(std::holds_alternative<Refused>(state.Commit(second.Record(1), pcr0_)));
  EXPECT_EQ(state.volume_count(), 1u);
}

// --- WitnessSession ---

TEST_F(WitnessTest, SessionAcceptsAFreshDocumentAndBindsItsPcr0) {
  WitnessState state;
  WitnessSession session(state, sims_.Options());
  auto nsm = sims_.Nsm(0x5A);
  EXPECT_TRUE(std::holds_alternative<Ready>(Handshake(session, *nsm)));
  EXPECT_EQ(session.client_binding(), pcr0_);
  EXPECT_FALSE(session.chained());
  auto step = session.OnMessage(EncodeMessage(Message(Commit{volume_.Record(1)})));
  EXPECT_FALSE(step.close);
  EXPECT_EQ(step.event, "commit volume abababab... v1 acked");
  EXPECT_TRUE(std::holds_alternative<Ack>(*DecodeResponse(step.reply)));
}

TEST_F(WitnessTest, SessionRefusesADocumentMadeForAnotherChallenge) {
  WitnessState state;
  auto nsm = sims_.Nsm(0x5A);
  WitnessSession first(state, sims_.Options());
  auto challenge = DecodeMessage(first.Start());
  auto replayed = MakeHello(*nsm, std::get<Challenge>(*challenge));
  ASSERT_TRUE(replayed);

  WitnessSession second(state, sims_.Options());
  (void)second.Start();
  auto step = second.OnMessage(EncodeMessage(Message(*replayed)));
  EXPECT_TRUE(step.close);
  auto reply = DecodeMessage(step.reply);
  ASSERT_TRUE(std::holds_alternative<Refused>(*reply));
  EXPECT_NE(std::get<Refused>(*reply).reason.find("nonce"), std::string::npos);
}

TEST_F(WitnessTest, SessionRefusesDebugDocumentsUnlessAllowed) {
  WitnessState state;
  auto debug_nsm = sims_.Nsm(0x5A, /*debug=*/true);
  WitnessSession strict(state, sims_.Options());
  auto refused = Handshake(strict, *debug_nsm);
  ASSERT_TRUE(std::holds_alternative<Refused>(refused));
  EXPECT_NE(std::get<Refused>(refused).reason.find("debug"), std::string::npos);

  WitnessSession lenient(state, sims_.Options(/*allow_debug=*/true));
  EXPECT_TRUE(std::holds_alternative<Ready>(Handshake(lenient, *debug_nsm)));
}

TEST_F(WitnessTest, SessionRefusesDocumentsFromAnotherRoot) {
  Simulators elsewhere;  // Another CA: another "hardware".
  WitnessState state;
  WitnessSession session(state, sims_.Options());
  auto nsm = elsewhere.Nsm(0x5A);
  auto reply = Handshake(session, *nsm);
  ASSERT_TRUE(std::holds_alternative<Refused>(reply));
}

TEST_F(WitnessTest, SessionRefusesRequestsBeforeTheHelloAndGarbage) {
  WitnessState state;
  WitnessSession session(state, sims_.Options());
  (void)session.Start();
  auto early = session.OnMessage(EncodeMessage(Message(Commit{volume_.Record(1)})));
  EXPECT_TRUE(early.close);
  EXPECT_EQ(std::get<Refused>(*DecodeMessage(early.reply)).reason, "expected hello, got commit");
  EXPECT_EQ(state.volume_count(), 0u);

  WitnessSession other(state, sims_.Options());
  (void)other.Start();
  auto garbage = other.OnMessage(Bytes{0x01, 0x02});
  EXPECT_TRUE(garbage.close);
  EXPECT_TRUE(std::holds_alternative<Refused>(*DecodeMessage(garbage.reply)));
}

// --- WitnessSet ---

struct Witnesses {
  std::vector<std::shared_ptr<SessionLink::Control>> controls;
  std::unique_ptr<WitnessSet> set;
};

Witnesses MakeSet(const Simulators& sims, size_t n, std::shared_ptr<attestation::Nsm> nsm,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  Witnesses w;
  std::vector<std::unique_ptr<WitnessLink>> links;
  for (size_t i = 0; i < n; ++i) {
    w.controls.push_back(std::make_shared<SessionLink::Control>());
    links.push_back(std::make_unique<SessionLink>("witness " + std::to_string(i), w.controls.back(),
                                                  nsm, sims.Options()));
  }
  w.set = std::make_unique<WitnessSet>(std::move(links), WitnessSetOptions{timeout});
  return w;
}

TEST_F(WitnessTest, OneWitnessCommitsAndAnswersLatest) {
  auto w = MakeSet(sims_, 1, sims_.Nsm(0x5A));
  EXPECT_EQ(w.set->count(), 1u);
  auto none = w.set->Latest(volume_.id());
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(w.set->Commit(volume_.Record(1)));
  ASSERT_TRUE(w.set->Commit(volume_.Record(2)));
  auto latest = w.set->Latest(volume_.id());
  ASSERT_TRUE(latest && latest->has_value());
  EXPECT_EQ((*latest)->version, 2u);
  auto rollback = w.set->Commit(volume_.Record(1));
  ASSERT_FALSE(rollback);
  EXPECT_EQ(rollback.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(rollback.error().message().find("rollback"), std::string::npos);
}

TEST_F(WitnessTest, ThreeWitnessesToleratesOneDownButNotTwo) {
  auto w = MakeSet(sims_, 3, sims_.Nsm(0x5A));
  ASSERT_TRUE(w.set->Commit(volume_.Record(1)));
  w.controls[2]->down = true;
  ASSERT_TRUE(w.set->Commit(volume_.Record(2)));
  auto latest = w.set->Latest(volume_.id());
  ASSERT_TRUE(latest && latest->has_value());
  EXPECT_EQ((*latest)->version, 2u);

  w.controls[1]->down = true;
  auto commit = w.set->Commit(volume_.Record(3));
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error().code(), Code::kUnavailable);
  EXPECT_NE(commit.error().message().find("of 3 witnesses acknowledged version 3 (need 2)"),
            std::string::npos)
      << commit.error().message();
  auto query = w.set->Latest(volume_.id());
  ASSERT_FALSE(query);
  EXPECT_NE(query.error().message().find("of 3 witnesses answered (need 2)"), std::string::npos);

  // The witness that was down comes back with its state (a network outage, not a restart) and
  // heals on the next call; the majority holds version 2 at least.
  w.controls[2]->down = false;
  auto back = w.set->Latest(volume_.id());
  ASSERT_TRUE(back && back->has_value());
  EXPECT_GE((*back)->version, 2u);
}

TEST_F(WitnessTest, LatestIsTheHighestVersionOfAMajority) {
  auto w = MakeSet(sims_, 3, sims_.Nsm(0x5A));
  ASSERT_TRUE(w.set->Commit(volume_.Record(1)));
  // Witness 0 alone saw version 9 (the others were down): a majority still includes it or a
  // witness with version 1; Latest never goes below what a majority acknowledged.
  w.controls[1]->down = true;
  w.controls[2]->down = true;
  EXPECT_FALSE(w.set->Commit(volume_.Record(9)));
  w.controls[1]->down = false;
  w.controls[2]->down = false;
  auto latest = w.set->Latest(volume_.id());
  ASSERT_TRUE(latest && latest->has_value());
  EXPECT_GE((*latest)->version, 1u);
}

TEST_F(WitnessTest, AcksWithABadSignatureDoNotCount) {
  auto w = MakeSet(sims_, 3, sims_.Nsm(0x5A));
  w.controls[0]->corrupt_ack = true;
  ASSERT_TRUE(w.set->Commit(volume_.Record(1)));  // Witnesses 1 and 2 are a majority.
  w.controls[1]->corrupt_ack = true;
  auto commit = w.set->Commit(volume_.Record(2));
  ASSERT_FALSE(commit);
  EXPECT_NE(commit.error().message().find("bad signature"), std::string::npos);
}

TEST_F(WitnessTest, AWitnessOfAnotherImageIsRefusedEverywhere) {
  auto w = MakeSet(sims_, 3, sims_.Nsm(0x5A));
  ASSERT_TRUE(w.set->Commit(volume_.Record(1)));
  auto other = MakeSet(sims_, 3, sims_.Nsm(0x77));
  for (size_t i = 0; i < 3; ++i) {  // Same witnesses, another client image.
    other.controls[i]->state = w.controls[i]->state;
  }
  auto commit = other.set->Commit(volume_.Record(2));
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(commit.error().message().find("of 3 witnesses refused version 2"), std::string::npos);
  EXPECT_FALSE(other.set->Latest(volume_.id()));
}

TEST_F(WitnessTest, ARestartedWitnessSaysUnknown) {
  auto w = MakeSet(sims_, 1, sims_.Nsm(0x5A));
  ASSERT_TRUE(w.set->Commit(volume_.Record(4)));
  {
    std::lock_guard lock(w.controls[0]->mu);
    w.controls[0]->state = std::make_shared<WitnessState>();  // New key, no memory.
  }
  auto latest = w.set->Latest(volume_.id());
  ASSERT_TRUE(latest);
  EXPECT_FALSE(latest->has_value());
  // The new witness acks with its new key, which the link learnt from the new Challenge.
  EXPECT_TRUE(w.set->Commit(volume_.Record(5)));
}

TEST_F(WitnessTest, AHungWitnessTimesOutAndIsAborted) {
  auto w = MakeSet(sims_, 3, sims_.Nsm(0x5A), std::chrono::milliseconds(300));
  w.controls[0]->hang = true;
  w.controls[1]->hang = true;
  auto commit = w.set->Commit(volume_.Record(1));
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error().code(), Code::kUnavailable);
  EXPECT_NE(commit.error().message().find("timed out"), std::string::npos);
  w.controls[0]->hang = false;
  w.controls[1]->hang = false;
  EXPECT_TRUE(w.set->Commit(volume_.Record(2)));
}

TEST_F(WitnessTest, NoWitnessesMeansNoProtection) {
  WitnessSet set({});
  EXPECT_EQ(set.count(), 0u);
  EXPECT_TRUE(set.Commit(volume_.Record(1)));
  auto latest = set.Latest(volume_.id());
  ASSERT_TRUE(latest);
  EXPECT_FALSE(latest->has_value());
}

// --- Upgrade chains (docs/witness.md, "Upgrades") ---

// ChainedClient is an enclave at the head of a ChainBuilder's chain (or of a chain given).
class ChainedClient {
 public:
  ChainedClient(const upgrade::testing::ChainBuilder& builder, const upgrade::PcrMap& pcrs,
                std::vector<Bytes> chain, const upgrade::Digest& head)
      : chain_(std::move(chain)), head_(head) {
    host::SimulatorOptions options;
    for (const auto& [index, value] : pcrs) {
      options.boot_pcrs[static_cast<uint16_t>(index)] = value;
    }
    auto nsm = host::NsmSimulator::Create(builder.ca(), options);
    ENCLAVIA_CHECK(nsm.has_value());
    nsm_ = std::make_shared<SerializedNsm>(std::shared_ptr<attestation::Nsm>(std::move(*nsm)));
  }
  HelloOptions Hello() const {
    return HelloOptions{chain_, Bytes(head_.begin(), head_.end())};
  }
  // Handshake runs Challenge/Hello on `session` (user_data, if set, replaces the head).
  Message Handshake(WitnessSession& session, std::optional<Bytes> user_data = {}) const {
    auto challenge = DecodeMessage(session.Start());
    ENCLAVIA_CHECK(challenge.has_value());
    HelloOptions options = Hello();
    if (user_data) {
      options.user_data = *user_data;
    }
    auto hello = MakeHello(*nsm_, std::get<Challenge>(*challenge), options);
    ENCLAVIA_CHECK(hello.has_value());
    auto reply = DecodeMessage(session.OnMessage(EncodeMessage(Message(*hello))).reply);
    ENCLAVIA_CHECK(reply.has_value());
    return *reply;
  }
  std::shared_ptr<attestation::Nsm> nsm() const { return nsm_; }

 private:
  std::vector<Bytes> chain_;
  upgrade::Digest head_{};
  std::shared_ptr<attestation::Nsm> nsm_;
};

std::string ReasonOf(const Message& m) {
  const auto* refused = std::get_if<Refused>(&m);
  return refused == nullptr ? "(not refused)" : refused->reason;
}

upgrade::testing::StepSpec Spec(uint8_t version, std::string id = "next") {
  upgrade::testing::StepSpec spec;
  spec.new_pcrs = upgrade::testing::Pcrs(version);
  spec.id = std::move(id);
  return spec;
}

class WitnessChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto builder = upgrade::testing::ChainBuilder::Create(dir_.path() + "/ca");
    ASSERT_TRUE(builder) << builder.error().message();
    builder_ = std::move(*builder);
  }
  SessionOptions Options() const {
    SessionOptions o;
    o.verifier = builder_->verifier();
    return o;
  }
  ChainedClient Current() const {
    return ChainedClient(*builder_, builder_->pcrs(), builder_->chain(), builder_->head());
  }
  Response CommitOn(WitnessSession& session, uint64_t version) {
    auto step = session.OnMessage(EncodeMessage(Message(witness::Commit{volume_.Record(version)})));
    return *DecodeResponse(step.reply);
  }

  TempDir dir_;
  std::unique_ptr<upgrade::testing::ChainBuilder> builder_;
  Volume volume_{0xC4};
};

TEST_F(WitnessChainTest, ASuccessorContinuesTheVolumeAndTheOldImageIsSuperseded) {
  WitnessState state;
  ChainedClient first = Current();
  WitnessSession old_session(state, Options());
  ASSERT_TRUE(std::holds_alternative<Ready>(first.Handshake(old_session)));
  EXPECT_TRUE(old_session.chained());
  EXPECT_EQ(old_session.client_binding(), GenesisBinding(builder_->genesis_hash()));
  ASSERT_TRUE(std::holds_alternative<Ack>(CommitOn(old_session, 1)));

  // The upgrade: another PCR0, the same genesis. The successor reads and continues the volume.
  ASSERT_TRUE(builder_->Step(Spec(2)));
  ChainedClient second = Current();
  WitnessSession new_session(state, Options());
  ASSERT_TRUE(std::holds_alternative<Ready>(second.Handshake(new_session)));
  auto queried =
      DecodeResponse(new_session.OnMessage(EncodeMessage(Message(Query{volume_.id()}))).reply);
  ASSERT_TRUE(queried);
  const auto* known = std::get_if<Known>(&*queried);
  ASSERT_NE(known, nullptr);
  EXPECT_EQ(known->record.version, 1u);
  EXPECT_TRUE(std::holds_alternative<Ack>(CommitOn(new_session, 2)));

  // The old enclave, still connected, is cut off; relaunched, it is refused at the Hello.
  auto step = old_session.OnMessage(EncodeMessage(Message(Commit{volume_.Record(3)})));
  EXPECT_TRUE(step.close);
  EXPECT_TRUE(IsSuperseded(ReasonOf(*DecodeMessage(step.reply)))) << ReasonOf(*DecodeMessage(step.reply));
  WitnessSession relaunched(state, Options());
  std::string reason = ReasonOf(first.Handshake(relaunched));
  EXPECT_TRUE(IsSuperseded(reason)) << reason;
  EXPECT_NE(reason.find("is behind"), std::string::npos) << reason;
  EXPECT_NE(reason.find("(0 of 1 upgrades)"), std::string::npos) << reason;

  // An unchained enclave cannot touch a volume bound to a genesis, even with the same PCR0.
  host::SimulatorOptions options;
  options.boot_pcrs[0] = upgrade::testing::Pcrs(2).at(0);
  auto plain_nsm = host::NsmSimulator::Create(builder_->ca(), options);
  ASSERT_TRUE(plain_nsm);
  WitnessSession unchained(state, Options());
  ASSERT_TRUE(std::holds_alternative<Ready>(Handshake(unchained, **plain_nsm)));
  EXPECT_TRUE(std::holds_alternative<Refused>(*DecodeResponse(
      unchained.OnMessage(EncodeMessage(Message(Query{volume_.id()}))).reply)));
}

TEST_F(WitnessChainTest, TwoActivationsFromOneHeadAreAFork) {
  WitnessState state;
  auto branch_a = builder_->MakeStep(Spec(2, "a"));
  ASSERT_TRUE(branch_a);
  std::vector<Bytes> chain_a = builder_->chain();
  chain_a.insert(chain_a.end(), {branch_a->request, branch_a->staging, branch_a->activation});
  ChainedClient a(*builder_, upgrade::testing::Pcrs(2), chain_a,
                  upgrade::HeadAfterActivation(branch_a->activation));
  WitnessSession session_a(state, Options());
  ASSERT_TRUE(std::holds_alternative<Ready>(a.Handshake(session_a))) << ReasonOf(a.Handshake(session_a));

  ASSERT_TRUE(builder_->Step(Spec(3, "b")));
  WitnessSession session_b(state, Options());
  std::string reason = ReasonOf(Current().Handshake(session_b));
  EXPECT_EQ(reason.rfind("fork: ", 0), 0u) << reason;

  // A longer chain that does not pass through the known head is a fork too, not an upgrade.
  ASSERT_TRUE(builder_->Step(Spec(4, "c")));
  WitnessSession session_c(state, Options());
  reason = ReasonOf(Current().Handshake(session_c));
  EXPECT_NE(reason.find("fork: the chain does not pass through"), std::string::npos) << reason;
  // The first branch stays current.
  EXPECT_TRUE(state.IsCurrentHead(builder_->genesis_hash(),
                                  upgrade::HeadAfterActivation(branch_a->activation)));
}

TEST_F(WitnessChainTest, AChainThatDoesNotVerifyOrDoesNotBindTheDocumentIsRefused) {
  WitnessState state;
  ASSERT_TRUE(builder_->Step(Spec(2)));

  // A receipt altered in transit.
  std::vector<Bytes> tampered = builder_->chain();
  tampered[2].back() ^= 1;
  WitnessSession s1(state, Options());
  std::string reason =
      ReasonOf(ChainedClient(*builder_, builder_->pcrs(), tampered, builder_->head()).Handshake(s1));
  EXPECT_EQ(reason.rfind("upgrade: ", 0), 0u) << reason;

  // A document that does not bind the head (user_data of another value).
  WitnessSession s2(state, Options());
  reason = ReasonOf(Current().Handshake(s2, Bytes(32, 0)));
  EXPECT_NE(reason.find("upgrade:"), std::string::npos) << reason;

  // The old image presenting the new chain: its PCRs are not the chain's last.
  WitnessSession s3(state, Options());
  reason = ReasonOf(ChainedClient(*builder_, upgrade::testing::Pcrs(1), builder_->chain(),
                                  builder_->head())
                        .Handshake(s3));
  EXPECT_NE(reason.find("upgrade:"), std::string::npos) << reason;

  // A chain from another root (another "hardware") does not verify either.
  TempDir elsewhere;
  auto other = upgrade::testing::ChainBuilder::Create(elsewhere.path());
  ASSERT_TRUE(other);
  WitnessSession s4(state, Options());
  reason = ReasonOf(ChainedClient(**other, (*other)->pcrs(), (*other)->chain(), (*other)->head())
                        .Handshake(s4));
  EXPECT_NE(reason, "(not refused)");
  // Nothing was recorded for a refused chain.
  EXPECT_FALSE(state.IsCurrentHead(builder_->genesis_hash(), builder_->head()));
}

// SocketWitness serves a WitnessSession per connection on socketpairs, so the real
// StreamWitnessLink and WitnessSet run against it.
class SocketWitness {
 public:
  SocketWitness(WitnessState& state, SessionOptions options)
      : state_(state), options_(std::move(options)) {}
  ~SocketWitness() {
    for (auto& t : threads_) {
      t.join();
    }
  }
  Dialer dialer() {
    return [this]() -> Result<std::unique_ptr<ByteStream>> {
      int fds[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        return Error(Code::kIo, "socketpair");
      }
      auto server = std::make_shared<FdByteStream>(sys::UniqueFd(fds[1]));
      threads_.emplace_back([this, server] {
        WitnessSession session(state_, options_);
        if (!WriteFrame(*server, session.Start())) {
          return;
        }
        while (true) {
          auto message = ReadFrame(*server);
          if (!message) {
            return;
          }
          auto step = session.OnMessage(*message);
          (void)WriteFrame(*server, step.reply);
          if (step.close) {
            server->Close();
            return;
          }
        }
      });
      return std::unique_ptr<ByteStream>(std::make_unique<FdByteStream>(sys::UniqueFd(fds[0])));
    };
  }

 private:
  WitnessState& state_;
  SessionOptions options_;
  std::vector<std::thread> threads_;
};

TEST_F(WitnessChainTest, AWitnessSetOfASupersededEnclaveFailsWithTheReason) {
  WitnessState state;
  SocketWitness witness(state, Options());
  ChainedClient first = Current();
  {
    std::vector<std::unique_ptr<WitnessLink>> links;
    links.push_back(std::make_unique<StreamWitnessLink>("witness 1", witness.dialer(),
                                                        first.nsm(), first.Hello()));
    WitnessSet set(std::move(links));
    ASSERT_TRUE(set.Commit(volume_.Record(1)));
    auto latest = set.Latest(volume_.id());
    ASSERT_TRUE(latest && latest->has_value()) << (latest ? "" : latest.error().message());
  }
  ASSERT_TRUE(builder_->Step(Spec(2)));
  ChainedClient second = Current();
  std::vector<std::unique_ptr<WitnessLink>> links;
  links.push_back(std::make_unique<StreamWitnessLink>("witness 1", witness.dialer(),
                                                      second.nsm(), second.Hello()));
  WitnessSet successor(std::move(links));
  ASSERT_TRUE(successor.Commit(volume_.Record(2)));

  // The old image again, as a relaunched enclave would be.
  std::vector<std::unique_ptr<WitnessLink>> old_links;
  old_links.push_back(std::make_unique<StreamWitnessLink>("witness 1", witness.dialer(),
                                                          first.nsm(), first.Hello()));
  WitnessSet old_set(std::move(old_links));
  auto refused = old_set.Latest(volume_.id());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kPolicyViolation);
  EXPECT_EQ(refused.error().message().rfind("superseded: chain head ", 0), 0u)
      << refused.error().message();
  auto commit = old_set.Commit(volume_.Record(3));
  ASSERT_FALSE(commit);
  EXPECT_TRUE(IsSuperseded(commit.error().message())) << commit.error().message();
}

}  // namespace
}  // namespace enclavia::witness
