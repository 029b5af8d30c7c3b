// SPDX-License-Identifier: Apache-2.0
// WitnessState, WitnessSession and WitnessSet with real NSM simulator documents; the links are
// in-process (they drive a WitnessSession directly), the socket server is tested in
// src/enclave/witness.
#include <stdlib.h>

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
            "rollback: version 4 is below the witnessed version 5 of volume abababab…");
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
  EXPECT_EQ(session.client_pcr0(), pcr0_);
  auto step = session.OnMessage(EncodeMessage(Message(Commit{volume_.Record(1)})));
  EXPECT_FALSE(step.close);
  EXPECT_EQ(step.event, "commit volume abababab… v1 acked");
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

}  // namespace
}  // namespace enclavia::witness
