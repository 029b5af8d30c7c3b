// SPDX-License-Identifier: Apache-2.0
#include "lib/channel/handshake.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "host/nsm/simulator.h"
#include "lib/cbor/cbor.h"
#include "lib/channel/protocol.h"
#include "lib/crypto/random.h"
#include "testing/upgrade_chain.h"
#include "testing/temp_dir.h"

namespace enclavia::channel {
namespace {

Bytes Pcr(uint8_t fill) { return Bytes(48, fill); }

// Fixture: an enclave (simulator-backed AttestationSource + static key) and client policies.
class HandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    char tmpl[] = "/tmp/enclavia-channel-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ca_ = MakeCa("ca");
    other_ca_ = MakeCa("other");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::shared_ptr<const host::SimulatorCa> MakeCa(const std::string& name) {
    auto ca = host::SimulatorCa::LoadOrCreate(dir_ + "/" + name, Clock());
    ENCLAVIA_CHECK(ca.has_value());
    return std::make_shared<const host::SimulatorCa>(std::move(ca).value());
  }

  std::function<SystemTime()> Clock(std::chrono::seconds offset = {}) const {
    return [offset] { return SystemTime(std::chrono::system_clock::now() + offset); };
  }

  // Enclave is one enclave boot: its simulator, static key and document source.
  struct Enclave {
    crypto::X25519Keypair key;
    std::shared_ptr<AttestationSource> source;
  };
  Enclave Boot(std::shared_ptr<attestation::Nsm> nsm) {
    Enclave e{crypto::X25519Keypair::Generate(), nullptr};
    e.source = std::make_shared<AttestationSource>(nsm, e.key.public_key);
    return e;
  }
  std::shared_ptr<attestation::Nsm> Simulator(bool debug = false,
                                              std::chrono::seconds clock_offset = {},
                                              std::shared_ptr<const host::SimulatorCa> ca = {}) {
    host::SimulatorOptions options;
    options.boot_pcrs = {{0, Pcr(0xa0)}, {1, Pcr(0xa1)}, {2, Pcr(0xa2)}};
    options.debug = debug;
    options.clock = Clock(clock_offset);
    auto sim = host::NsmSimulator::Create(ca ? ca : ca_, std::move(options));
    ENCLAVIA_CHECK(sim.has_value());
    return std::shared_ptr<attestation::Nsm>(std::move(sim).value());
  }

  std::shared_ptr<TrustPolicy> Policy(Freshness freshness = Freshness::kCached) {
    auto policy = std::make_shared<TrustPolicy>();
    policy->verifier = std::make_shared<const attestation::Verifier>(
        attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {ca_->root()}).value());
    policy->accept = {{{0, Pcr(0xa0)}, {2, Pcr(0xa2)}}};
    policy->freshness = freshness;
    return policy;
  }

  struct Outcome {
    Result<ClientHandshake::Established> client = Error(Code::kInternal, "not run");
    Result<SecureChannel> server = Error(Code::kInternal, "not run");
    bool message3_sent = false;
  };

  // Run performs the three messages in memory; `tamper` may alter message `index` (0-based).
  Outcome Run(Enclave& enclave, std::shared_ptr<const TrustPolicy> policy,
              const std::function<void(int, Bytes&)>& tamper = nullptr) {
    Outcome out;
    auto client = ClientHandshake::Create(std::move(policy));
    if (!client) {
      out.client = client.error();
      return out;
    }
    auto server = ServerHandshake::Create(enclave.key, *enclave.source);
    ENCLAVIA_CHECK(server.has_value());
    auto m1 = client->Start();
    ENCLAVIA_CHECK(m1.has_value());
    if (tamper) tamper(0, *m1);
    auto m2 = server->ReadClientHello(*m1);
    if (!m2) {
      out.server = m2.error();
      return out;
    }
    if (tamper) tamper(1, *m2);
    auto m3 = client->ReadServerHello(*m2);
    if (!m3) {
      out.client = m3.error();
      return out;
    }
    out.message3_sent = true;
    if (tamper) tamper(2, *m3);
    out.client = std::move(*client).Finish();
    out.server = std::move(*server).ReadClientFinish(*m3);
    return out;
  }

  std::string dir_;
  std::shared_ptr<const host::SimulatorCa> ca_;
  std::shared_ptr<const host::SimulatorCa> other_ca_;
};

TEST_F(HandshakeTest, CachedDocumentEstablishesAChannelBothWays) {
  Enclave enclave = Boot(Simulator());
  auto policy = Policy();
  for (int i = 0; i < 3; ++i) {
    Outcome out = Run(enclave, policy);
    ASSERT_TRUE(out.client) << out.client.error().message();
    ASSERT_TRUE(out.server) << out.server.error().message();
    const auto& doc = out.client->attestation.document();
    ASSERT_TRUE(doc.public_key.has_value());
    EXPECT_EQ(*doc.public_key, Bytes(enclave.key.public_key.begin(), enclave.key.public_key.end()));
    EXPECT_FALSE(doc.nonce.has_value());
    EXPECT_EQ(out.client->channel.handshake_hash(), out.server->handshake_hash());
    auto sealed = out.client->channel.Seal(AsBytes("ping"));
    ASSERT_TRUE(sealed);
    auto opened = out.server->Open(*sealed);
    ASSERT_TRUE(opened);
    EXPECT_EQ(AsString(*opened), "ping");
    auto back = out.server->Seal(AsBytes("pong"));
    ASSERT_TRUE(back);
    EXPECT_EQ(AsString(*out.client->channel.Open(*back)), "pong");
  }
  // Cached: one NSM request served all three handshakes.
  EXPECT_EQ(enclave.source->nsm_requests(), 1u);
}

TEST_F(HandshakeTest, FreshDocumentCarriesTheClientEphemeralAsNonce) {
  Enclave enclave = Boot(Simulator());
  auto policy = Policy(Freshness::kFresh);
  Outcome a = Run(enclave, policy);
  Outcome b = Run(enclave, policy);
  ASSERT_TRUE(a.client) << a.client.error().message();
  ASSERT_TRUE(b.client) << b.client.error().message();
  ASSERT_TRUE(a.client->attestation.document().nonce.has_value());
  EXPECT_EQ(a.client->attestation.document().nonce->size(), 32u);
  EXPECT_NE(*a.client->attestation.document().nonce, *b.client->attestation.document().nonce);
  EXPECT_EQ(enclave.source->nsm_requests(), 2u);
}

TEST_F(HandshakeTest, PcrMismatchStopsBeforeMessage3) {
  Enclave enclave = Boot(Simulator());
  auto policy = Policy();
  policy->accept = {{{0, Pcr(0xa0)}, {2, Pcr(0xff)}}, {{1, Pcr(0x00)}}};
  Outcome out = Run(enclave, policy);
  ASSERT_FALSE(out.client);
  EXPECT_FALSE(out.message3_sent);
  EXPECT_EQ(out.client.error().code(), Code::kPolicyViolation);
  EXPECT_NE(out.client.error().message().find("match no accepted set"), std::string::npos);
}

TEST_F(HandshakeTest, SecondAcceptSetMayMatch) {
  Enclave enclave = Boot(Simulator());
  auto policy = Policy();
  policy->accept = {{{0, Pcr(0x01)}}, {{1, Pcr(0xa1)}}};
  Outcome out = Run(enclave, policy);
  ASSERT_TRUE(out.client) << out.client.error().message();
}

TEST_F(HandshakeTest, UnknownRootIsUntrusted) {
  Enclave enclave = Boot(Simulator(false, {}, other_ca_));
  Outcome out = Run(enclave, Policy());
  ASSERT_FALSE(out.client);
  EXPECT_FALSE(out.message3_sent);
  EXPECT_EQ(out.client.error().code(), Code::kUntrusted) << out.client.error().message();
}

TEST_F(HandshakeTest, TooOldAndExpiredDocumentsAreRejected) {
  {
    Enclave enclave = Boot(Simulator(false, std::chrono::hours(-2)));
    Outcome out = Run(enclave, Policy());  // max_age 1 h; the leaf is still valid.
    ASSERT_FALSE(out.client);
    EXPECT_EQ(out.client.error().code(), Code::kExpired) << out.client.error().message();
  }
  {
    Enclave enclave = Boot(Simulator(false, std::chrono::hours(-5)));
    auto policy = Policy();
    policy->max_age = std::chrono::hours(24);  // Only the 3 h certificate can fail now.
    Outcome out = Run(enclave, policy);
    ASSERT_FALSE(out.client);
    EXPECT_EQ(out.client.error().code(), Code::kExpired) << out.client.error().message();
  }
}

TEST_F(HandshakeTest, DebugEnclaveNeedsAllowDebug) {
  Enclave enclave = Boot(Simulator(/*debug=*/true));
  auto policy = Policy();
  policy->accept = {{{0, Bytes(48, 0)}}};
  Outcome refused = Run(enclave, policy);
  ASSERT_FALSE(refused.client);
  EXPECT_EQ(refused.client.error().code(), Code::kPolicyViolation);
  policy->allow_debug = true;
  Outcome allowed = Run(enclave, policy);
  ASSERT_TRUE(allowed.client) << allowed.client.error().message();
  EXPECT_TRUE(allowed.client->attestation.debug());
}

// WrongKeyNsm binds documents to a key other than the Noise static key.
class WrongKeyNsm : public attestation::Nsm {
 public:
  explicit WrongKeyNsm(std::shared_ptr<attestation::Nsm> inner) : inner_(std::move(inner)) {}
  Result<Bytes> Attestation(const attestation::AttestationRequest& request) override {
    auto changed = request;
    changed.public_key = Bytes(32, 0x42);
    return inner_->Attestation(changed);
  }
  Result<attestation::PcrDescription> DescribePcr(uint16_t i) override {
    return inner_->DescribePcr(i);
  }
  Result<Bytes> ExtendPcr(uint16_t i, ByteSpan d) override { return inner_->ExtendPcr(i, d); }
  Result<void> LockPcr(uint16_t i) override { return inner_->LockPcr(i); }
  Result<void> LockPcrs(uint16_t r) override { return inner_->LockPcrs(r); }
  Result<attestation::NsmDescription> DescribeNsm() override { return inner_->DescribeNsm(); }
  Result<Bytes> GetRandom() override { return inner_->GetRandom(); }

 private:
  std::shared_ptr<attestation::Nsm> inner_;
};

TEST_F(HandshakeTest, DocumentForAnotherKeyIsRejected) {
  Enclave enclave = Boot(std::make_shared<WrongKeyNsm>(Simulator()));
  Outcome out = Run(enclave, Policy());
  ASSERT_FALSE(out.client);
  EXPECT_FALSE(out.message3_sent);
  EXPECT_EQ(out.client.error().code(), Code::kPolicyViolation) << out.client.error().message();
}

TEST_F(HandshakeTest, AnotherEnclavesGenuineDocumentIsRejected) {
  // A man in the middle with its own Noise key serves a real enclave's (cached) document.
  Enclave genuine = Boot(Simulator());
  auto genuine_doc = genuine.source->Cached();
  ASSERT_TRUE(genuine_doc);
  Enclave impostor = Boot(Simulator());
  struct Replay : attestation::Nsm {
    Bytes doc;
    Result<Bytes> Attestation(const attestation::AttestationRequest&) override { return doc; }
    Result<attestation::PcrDescription> DescribePcr(uint16_t) override {
      return Error(Code::kUnsupported, "");
    }
    Result<Bytes> ExtendPcr(uint16_t, ByteSpan) override { return Error(Code::kUnsupported, ""); }
    Result<void> LockPcr(uint16_t) override { return Error(Code::kUnsupported, ""); }
    Result<void> LockPcrs(uint16_t) override { return Error(Code::kUnsupported, ""); }
    Result<attestation::NsmDescription> DescribeNsm() override {
      return Error(Code::kUnsupported, "");
    }
    Result<Bytes> GetRandom() override { return Error(Code::kUnsupported, ""); }
  };
  auto replay = std::make_shared<Replay>();
  replay->doc = *genuine_doc;
  impostor.source = std::make_shared<AttestationSource>(replay, impostor.key.public_key);
  Outcome out = Run(impostor, Policy());
  ASSERT_FALSE(out.client);
  EXPECT_FALSE(out.message3_sent);
  EXPECT_NE(out.client.error().message().find("public_key"), std::string::npos)
      << out.client.error().message();

  // With freshness asked, replaying the same enclave's document from another session fails on
  // the nonce even though the key matches.
  auto fresh_doc = genuine.source->Fresh(Bytes(32, 7));
  ASSERT_TRUE(fresh_doc);
  replay->doc = *fresh_doc;
  genuine.source = std::make_shared<AttestationSource>(replay, genuine.key.public_key);
  Outcome fresh = Run(genuine, Policy(Freshness::kFresh));
  ASSERT_FALSE(fresh.client);
  EXPECT_FALSE(fresh.message3_sent);
  EXPECT_NE(fresh.client.error().message().find("nonce"), std::string::npos)
      << fresh.client.error().message();
}

TEST_F(HandshakeTest, EveryFlippedByteOfEveryMessageFails) {
  Enclave enclave = Boot(Simulator());
  auto policy = Policy();
  for (int index = 0; index < 3; ++index) {
    // Message 1 is short; messages 2 and 3 are sampled at 64 positions including both ends.
    for (size_t position : {size_t{0}, size_t{1}, size_t{31}, size_t{32}, size_t{40}, SIZE_MAX}) {
      bool flipped = false;
      Outcome out = Run(enclave, policy, [&](int i, Bytes& m) {
        if (i == index) {
          m[std::min(position, m.size() - 1)] ^= 0x01;
          flipped = true;
        }
      });
      ASSERT_TRUE(flipped);
      bool client_ok = out.client.has_value();
      bool server_ok = out.server.has_value();
      EXPECT_FALSE(client_ok && server_ok) << "message " << index << " byte " << position;
    }
  }
}

TEST_F(HandshakeTest, TransportDetectsTamperReplayReorderAndLoss) {
  Enclave enclave = Boot(Simulator());
  auto fresh = [&] {
    Outcome out = Run(enclave, Policy());
    ENCLAVIA_CHECK(out.client.has_value() && out.server.has_value());
    return out;
  };
  {
    Outcome o = fresh();
    auto m = *o.client->channel.Seal(AsBytes("hello"));
    m[3] ^= 0x80;
    EXPECT_EQ(o.server->Open(m).error().code(), Code::kVerifyFailed);
  }
  {
    Outcome o = fresh();
    auto m = *o.client->channel.Seal(AsBytes("once"));
    ASSERT_TRUE(o.server->Open(m));
    EXPECT_FALSE(o.server->Open(m));  // Replay.
  }
  {
    Outcome o = fresh();
    auto a = *o.client->channel.Seal(AsBytes("a"));
    auto b = *o.client->channel.Seal(AsBytes("b"));
    EXPECT_FALSE(o.server->Open(b));  // Reordered (or a dropped): b needs nonce 1.
    ASSERT_TRUE(o.server->Open(a));   // Nonce did not move on the failure.
    ASSERT_TRUE(o.server->Open(b));
  }
  {
    Outcome o = fresh();
    auto m = *o.client->channel.Seal(AsBytes("truncated"));
    m.resize(m.size() - 1);
    EXPECT_FALSE(o.server->Open(m));
    EXPECT_FALSE(o.server->Open(Bytes{}));
  }
}

TEST_F(HandshakeTest, RekeysOnScheduleWithoutLosingSync) {
  Enclave enclave = Boot(Simulator());
  Outcome o = Run(enclave, Policy());
  ASSERT_TRUE(o.client && o.server);
  Bytes first_after_rekey;
  for (uint64_t i = 0; i < kRekeyInterval + 3; ++i) {
    auto m = o.client->channel.Seal(AsBytes("x"));
    ASSERT_TRUE(m);
    auto p = o.server->Open(*m);
    ASSERT_TRUE(p) << "message " << i;
  }
}

TEST(ProtocolTest, PayloadsRoundTripAndRejectNonCanonicalForms) {
  auto hello = DecodeClientHello(EncodeClientHello({.fresh = true}));
  ASSERT_TRUE(hello);
  EXPECT_TRUE(hello->fresh);
  ServerHello sh{Bytes{1, 2, 3}, {Bytes{9}}};
  auto decoded = DecodeServerHello(EncodeServerHello(sh));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->attestation, sh.attestation);
  EXPECT_EQ(decoded->chain.size(), 1u);
  EXPECT_TRUE(DecodeClientFinish(EncodeClientFinish()));

  using cbor::Value;
  auto bad = [](const Value& v) { return cbor::Encode(v, cbor::MapOrder::kAsGiven); };
  // Keys out of deterministic order.
  Bytes unordered = bad(Value::MakeMap({{Value::TextString("fresh"), Value::Boolean(false)},
                                        {Value::TextString("v"), Value::Uint(1)}}));
  EXPECT_EQ(DecodeClientHello(unordered).error().code(), Code::kMalformed);
  // Unknown key, wrong version, wrong types, trailing bytes.
  EXPECT_FALSE(DecodeClientHello(cbor::Encode(Value::MakeMap(
      {{Value::TextString("v"), Value::Uint(1)}, {Value::TextString("x"), Value::Uint(1)},
       {Value::TextString("fresh"), Value::Boolean(false)}}))));
  auto v2 = DecodeClientHello(cbor::Encode(Value::MakeMap(
      {{Value::TextString("v"), Value::Uint(2)}, {Value::TextString("fresh"), Value::Boolean(false)}})));
  EXPECT_EQ(v2.error().code(), Code::kUnsupported);
  EXPECT_FALSE(DecodeClientHello(cbor::Encode(Value::MakeMap(
      {{Value::TextString("v"), Value::Uint(1)}, {Value::TextString("fresh"), Value::Uint(1)}}))));
  Bytes trailing = EncodeClientFinish();
  trailing.push_back(0);
  EXPECT_FALSE(DecodeClientFinish(trailing));
  EXPECT_FALSE(DecodeServerHello(EncodeServerHello(ServerHello{Bytes{}, {}})));
  EXPECT_EQ(DecodeServerHello(EncodeServerHello(ServerHello{Bytes(kMaxAttestationSize + 1, 1), {}}))
                .error()
                .code(),
            Code::kLimitExceeded);
}

TEST(TrustPolicyTest, RefusesPoliciesThatProtectNobody) {
  TrustPolicy policy;
  EXPECT_FALSE(CheckPolicy(policy));
  policy.verifier = std::make_shared<const attestation::Verifier>(
      attestation::Verifier::Create(attestation::AwsRoot::kTrust).value());
  EXPECT_FALSE(CheckPolicy(policy));  // No accept set.
  policy.accept = {{}};
  EXPECT_FALSE(CheckPolicy(policy));  // An empty set.
  policy.accept = {{{0, Bytes(47, 1)}}};
  EXPECT_FALSE(CheckPolicy(policy));  // Short PCR.
  policy.accept = {{{0, Bytes(48, 1)}}};
  EXPECT_TRUE(CheckPolicy(policy));
  EXPECT_FALSE(ClientHandshake::Create(nullptr));
}


// Upgrade chains in the handshake: an enclave whose chain has grown from a genesis the client
// trusts, presenting documents that bind the chain head (docs/formats/upgrade-chain.md).
class ChainHandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    auto b = upgrade::testing::ChainBuilder::Create(dir_.path() + "/ca");
    ASSERT_TRUE(b) << b.error().message();
    builder_ = std::move(b).value();
    for (uint8_t version = 2; version <= 4; ++version) {
      upgrade::testing::StepSpec spec;
      spec.new_pcrs = upgrade::testing::Pcrs(version);
      ASSERT_TRUE(builder_->Step(spec));
    }
  }

  // Serve runs one handshake against an enclave running `pcrs` that presents `chain` and binds
  // `head` in its documents.
  Result<ClientHandshake::Established> Serve(const upgrade::PcrMap& pcrs,
                                             const std::vector<Bytes>& chain, ByteSpan head,
                                             std::shared_ptr<const TrustPolicy> policy) {
    host::SimulatorOptions options;
    for (const auto& [index, value] : pcrs) {
      options.boot_pcrs[static_cast<uint16_t>(index)] = value;
    }
    auto sim = host::NsmSimulator::Create(builder_->ca(), std::move(options));
    ENCLAVIA_CHECK(sim.has_value());
    std::shared_ptr<attestation::Nsm> nsm(std::move(sim).value());
    crypto::X25519Keypair key = crypto::X25519Keypair::Generate();
    AttestationSource source(nsm, key.public_key);
    source.SetChain(chain, Bytes(head.begin(), head.end()));
    auto client = ClientHandshake::Create(std::move(policy));
    if (!client) {
      return client.error();
    }
    auto server = ServerHandshake::Create(key, source);
    ENCLAVIA_CHECK(server.has_value());
    auto m1 = client->Start();
    ENCLAVIA_CHECK(m1.has_value());
    auto m2 = server->ReadClientHello(*m1);
    ENCLAVIA_CHECK(m2.has_value());
    auto m3 = client->ReadServerHello(*m2);
    if (!m3) {
      return m3.error();
    }
    return std::move(*client).Finish();
  }

  std::shared_ptr<TrustPolicy> GenesisOnly(const upgrade::Digest& genesis) {
    auto policy = std::make_shared<TrustPolicy>();
    policy->verifier = builder_->verifier();
    policy->chain_trust.genesis = {genesis};
    return policy;
  }

  enclavia::testing::TempDir dir_{"channel-chain"};
  std::unique_ptr<upgrade::testing::ChainBuilder> builder_;
};

TEST_F(ChainHandshakeTest, GenesisOnlyClientAcceptsAThreeStepChain) {
  const upgrade::Digest& head = builder_->head();
  auto out = Serve(upgrade::testing::Pcrs(4), builder_->chain(), head,
                   GenesisOnly(builder_->genesis_hash()));
  ASSERT_TRUE(out) << out.error().message();
  ASSERT_TRUE(out->chain.has_value());
  EXPECT_EQ(out->chain->steps.size(), 3u);
  EXPECT_EQ(out->chain->genesis_hash, builder_->genesis_hash());
  EXPECT_EQ(out->attestation.document().user_data, Bytes(head.begin(), head.end()));
}

TEST_F(ChainHandshakeTest, ClientPinningTheFirstPcrsFollowsTheChain) {
  auto policy = std::make_shared<TrustPolicy>();
  policy->verifier = builder_->verifier();
  policy->accept = {upgrade::testing::Pcrs(1)};
  const upgrade::Digest& head = builder_->head();
  auto out = Serve(upgrade::testing::Pcrs(4), builder_->chain(), head, policy);
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_TRUE(out->chain.has_value());
  // Without the chain, the same enclave is refused: PCRs 4 are not pinned.
  auto unchained = Serve(upgrade::testing::Pcrs(4), {}, {}, policy);
  ASSERT_FALSE(unchained);
  EXPECT_EQ(unchained.error().code(), Code::kPolicyViolation);
}

TEST_F(ChainHandshakeTest, RefusesADocumentThatDoesNotBindTheHead) {
  // The head's image, binding step 2's head: a chain cut short by the host would look so.
  std::vector<Bytes> chain = builder_->chain();
  upgrade::Digest stale = upgrade::HeadAfterActivation(chain[6]);
  auto out = Serve(upgrade::testing::Pcrs(4), chain, stale, GenesisOnly(builder_->genesis_hash()));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code(), Code::kPolicyViolation);
  EXPECT_NE(out.error().message().find("does not bind the chain head"), std::string::npos)
      << out.error().message();
  // A superseded image (step 2's PCRs) presenting the full chain.
  const upgrade::Digest& head = builder_->head();
  auto old = Serve(upgrade::testing::Pcrs(3), chain, head, GenesisOnly(builder_->genesis_hash()));
  ASSERT_FALSE(old);
  EXPECT_NE(old.error().message().find("not the chain's last"), std::string::npos);
}

TEST_F(ChainHandshakeTest, RefusesAChainFromAnotherGenesis) {
  const upgrade::Digest& head = builder_->head();
  upgrade::Digest other{};
  other[0] = 1;
  auto out = Serve(upgrade::testing::Pcrs(4), builder_->chain(), head, GenesisOnly(other));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code(), Code::kPolicyViolation);
  EXPECT_NE(out.error().message().find("descends from no trusted genesis"), std::string::npos)
      << out.error().message();
}

TEST_F(ChainHandshakeTest, RefusesABrokenChain) {
  std::vector<Bytes> chain = builder_->chain();
  chain.erase(chain.begin() + 5);  // Step 2's staging receipt.
  const upgrade::Digest& head = builder_->head();
  auto out = Serve(upgrade::testing::Pcrs(4), chain, head, GenesisOnly(builder_->genesis_hash()));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code(), Code::kMalformed);
  EXPECT_NE(out.error().message().find("enclave upgrade chain: upgrade: entry 5: gap"),
            std::string::npos)
      << out.error().message();
}

TEST_F(ChainHandshakeTest, GenesisOnlyClientRefusesAnUnchainedEnclave) {
  auto out = Serve(upgrade::testing::Pcrs(1), {}, {}, GenesisOnly(builder_->genesis_hash()));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code(), Code::kPolicyViolation);
  EXPECT_NE(out.error().message().find("no upgrade chain"), std::string::npos);
}

TEST(TrustPolicyTest, AGenesisAloneIsEnoughToProtectSomeone) {
  TrustPolicy policy;
  policy.verifier = std::make_shared<const attestation::Verifier>(
      attestation::Verifier::Create(attestation::AwsRoot::kTrust).value());
  EXPECT_FALSE(CheckPolicy(policy));
  policy.chain_trust.genesis = {upgrade::Digest{}};
  EXPECT_TRUE(CheckPolicy(policy));
  policy.chain_trust.pcrs = {{{0, Bytes(47, 1)}}};
  EXPECT_FALSE(CheckPolicy(policy));  // Further PCR sets are checked like accept sets.
}

}  // namespace
}  // namespace enclavia::channel
