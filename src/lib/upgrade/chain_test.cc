// SPDX-License-Identifier: Apache-2.0
#include "lib/upgrade/chain.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "lib/attestation/verifier.h"
#include "lib/cbor/cbor.h"
#include "lib/cose/sign1.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/random.h"
#include "lib/crypto/signer.h"
#include "testing/upgrade_chain.h"
#include "testing/temp_dir.h"

namespace enclavia::upgrade {
namespace {

using testing::ChainBuilder;
using testing::Pcrs;
using testing::StepSpec;

class ChainTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init()); }

  std::unique_ptr<ChainBuilder> Builder(testing::BuilderOptions options = {}) {
    auto b = ChainBuilder::Create(dir_.path() + "/ca", std::move(options));
    ENCLAVIA_CHECK(b.has_value());
    return std::move(b).value();
  }
  // Grown builds a valid chain of `steps` upgrades (images 2, 3, ...).
  std::unique_ptr<ChainBuilder> Grown(size_t steps, testing::BuilderOptions options = {}) {
    auto b = Builder(std::move(options));
    for (size_t i = 0; i < steps; ++i) {
      StepSpec spec;
      spec.new_pcrs = Pcrs(static_cast<uint8_t>(i + 2));
      spec.id = std::string("v").append(std::to_string(i + 2));
      ENCLAVIA_CHECK(b->Step(spec).has_value());
    }
    return b;
  }
  // Refused expects VerifyChain to fail with `code` and a message containing `text`.
  static void ExpectRefused(const ChainBuilder& b, const std::vector<Bytes>& chain, Code code,
                            const std::string& text) {
    auto verified = VerifyChain(chain, b.chain_options());
    ASSERT_FALSE(verified.has_value()) << "accepted a bad chain; expected: " << text;
    EXPECT_EQ(verified.error().code(), code) << verified.error().message();
    EXPECT_NE(verified.error().message().find(text), std::string::npos)
        << verified.error().message();
    EXPECT_EQ(verified.error().message().find('\n'), std::string::npos);
  }
  static std::vector<Bytes> With(const ChainBuilder& b, const testing::StepEntries& step) {
    std::vector<Bytes> chain = b.chain();
    chain.push_back(step.request);
    chain.push_back(step.staging);
    chain.push_back(step.activation);
    return chain;
  }

  enclavia::testing::TempDir dir_{"upgrade"};
};

TEST_F(ChainTest, ThreeStepChainVerifies) {
  auto b = Grown(3);
  ASSERT_EQ(b->chain().size(), 10u);
  auto verified = VerifyChain(b->chain(), b->chain_options());
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(verified->genesis.enclave_id, "web");
  EXPECT_EQ(verified->genesis_hash, GenesisHash(b->chain()[0]));
  EXPECT_EQ(verified->genesis_hash, b->genesis_hash());
  ASSERT_EQ(verified->steps.size(), 3u);
  EXPECT_EQ(verified->head, b->head());
  EXPECT_EQ(verified->head, HeadAfterActivation(b->chain()[9]));
  EXPECT_EQ(verified->steps[0].head, HeadAfterActivation(b->chain()[3]));
  EXPECT_EQ(verified->steps[1].request.previous_head, verified->steps[0].head);
  EXPECT_EQ(verified->steps[2].request.id, "v4");
  EXPECT_EQ(verified->steps[0].request_hash, RequestHash(b->chain()[1]));
  EXPECT_EQ(verified->head_pcrs, Pcrs(4));
  EXPECT_EQ(verified->PcrsAt(0), Pcrs(1));
  EXPECT_EQ(verified->PcrsAt(2), Pcrs(3));
  // A genesis alone is a chain too.
  auto genesis_only = VerifyChain({b->chain()[0]}, b->chain_options());
  ASSERT_TRUE(genesis_only) << genesis_only.error().message();
  EXPECT_EQ(genesis_only->head, genesis_only->genesis_hash);
  EXPECT_TRUE(genesis_only->steps.empty());
}

TEST_F(ChainTest, P256ControlKeySignsAWholeChain) {
  testing::BuilderOptions options;
  options.control_algorithm = crypto::SignatureAlgorithm::kEcdsaP256Sha256;
  auto b = Grown(2, options);
  auto verified = VerifyChain(b->chain(), b->chain_options());
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(verified->steps.size(), 2u);
  ASSERT_EQ(verified->genesis.control_keys.size(), 1u);
  auto key = crypto::PublicKey::FromSpki(verified->genesis.control_keys[0]);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->algorithm(), crypto::SignatureAlgorithm::kEcdsaP256Sha256);
}

TEST_F(ChainTest, EveryEntryRoundTripsThroughParseEntry) {
  auto b = Grown(1);
  auto genesis = ParseGenesis(b->chain()[0]);
  ASSERT_TRUE(genesis) << genesis.error().message();
  EXPECT_TRUE(genesis->upgradable);
  EXPECT_EQ(genesis->min_staging_window_s, 3600u);
  EXPECT_EQ(genesis->created_unix, 1'700'000'000u);
  auto request = ParseRequest(b->chain()[1]);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->genesis, b->genesis_hash());
  EXPECT_EQ(request->new_pcrs, Pcrs(2));
  auto staging = ParseEntry(b->chain()[2]);
  ASSERT_TRUE(staging);
  EXPECT_EQ(staging->type, EntryType::kStaging);
  EXPECT_EQ(std::get<StagingReceipt>(staging->body).staged_at_unix, 1'000'000u);
  auto activation = ParseEntry(b->chain()[3]);
  ASSERT_TRUE(activation);
  EXPECT_EQ(activation->type, EntryType::kActivation);
  EXPECT_EQ(activation->bytes, b->chain()[3]);
  EXPECT_FALSE(std::get<ActivationReceipt>(activation->body).key_commitment.has_value());
  // Typed helpers refuse other types.
  auto wrong = ParseGenesis(b->chain()[1]);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Code::kMalformed);

  Revocation revocation{RequestHash(b->chain()[1])};
  auto revoke = SignRevocation(revocation, b->control());
  ASSERT_TRUE(revoke);
  auto parsed = ParseRevocation(*revoke);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->request, revocation.request);
  auto genesis_value = ParseGenesis(b->chain()[0]);
  ASSERT_TRUE(genesis_value);
  EXPECT_TRUE(VerifyControlSigned(*genesis_value, *revoke));
  auto forged = SignRevocation(revocation, b->other_control());
  ASSERT_TRUE(forged);
  auto refused = VerifyControlSigned(*genesis_value, *forged);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kVerifyFailed);
}

TEST_F(ChainTest, KeyCommitmentIsSignedAndChecked) {
  auto b = Builder();
  Bytes ring(64, 0x42);
  StepSpec spec;
  spec.new_pcrs = Pcrs(2);
  spec.key_commitment = KeyCommitment(ring, spec.new_enclave_key);
  ASSERT_TRUE(b->Step(spec));
  auto verified = VerifyChain(b->chain(), b->chain_options());
  ASSERT_TRUE(verified) << verified.error().message();
  ASSERT_TRUE(verified->steps[0].activation.key_commitment.has_value());
  EXPECT_EQ(*verified->steps[0].activation.key_commitment, KeyCommitment(ring, spec.new_enclave_key));
  EXPECT_NE(KeyCommitment(ring, spec.new_enclave_key), KeyCommitment(ring, Bytes(32, 0)));
  // Length prefixes keep (a, bc) and (ab, c) apart.
  EXPECT_NE(KeyCommitment(AsBytes("ab"), AsBytes("c")), KeyCommitment(AsBytes("a"), AsBytes("bc")));
}

TEST_F(ChainTest, HashesAreDomainSeparated) {
  auto b = Builder();
  const Bytes& g = b->chain()[0];
  EXPECT_NE(GenesisHash(g), RequestHash(g));
  EXPECT_NE(RequestHash(g), StagingHash(g));
  EXPECT_NE(StagingHash(g), HeadAfterActivation(g));
  EXPECT_EQ(DigestHex(GenesisHash(g)).size(), 64u);
}

// --- Control signatures. ---

TEST_F(ChainTest, RefusesAForgedGenesisSignature) {
  auto b = Builder();
  std::vector<Bytes> chain = b->chain();
  chain[0].back() ^= 1;  // The signature is the entry's last byte string.
  ExpectRefused(*b, chain, Code::kVerifyFailed, "entry 0: genesis is not signed by a control key");
}

TEST_F(ChainTest, SignGenesisRefusesAKeyItDoesNotName) {
  auto b = Builder();
  Genesis g;
  g.enclave_id = "web";
  g.first_pcrs = Pcrs(1);
  g.control_keys = {b->control().public_key().ToSpki()};
  g.upgradable = true;
  auto entry = SignGenesis(g, b->other_control());
  ASSERT_FALSE(entry);
  EXPECT_EQ(entry.error().code(), Code::kInvalidArgument);
  // P-384 is not a control key type.
  crypto::MemorySigner p384(crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEcdsaP384Sha384));
  g.control_keys = {p384.public_key().ToSpki()};
  auto refused = SignGenesis(g, p384);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kInvalidArgument);
  // An upgradable genesis must name a key; an immutable one names its signer by default.
  g.control_keys.clear();
  EXPECT_FALSE(SignGenesis(g, b->control()));
  g.upgradable = false;
  auto immutable = SignGenesis(g, b->control());
  ASSERT_TRUE(immutable) << immutable.error().message();
  auto parsed = ParseGenesis(*immutable);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->control_keys, std::vector<Bytes>{b->control().public_key().ToSpki()});
}

TEST_F(ChainTest, RefusesARequestSignedByAnotherKey) {
  auto b = Builder();
  StepSpec spec;
  spec.new_pcrs = Pcrs(2);
  spec.control = &b->other_control();
  auto step = b->MakeStep(spec);
  ASSERT_TRUE(step);
  ExpectRefused(*b, With(*b, *step), Code::kVerifyFailed,
                "entry 1: request is not signed by a control key of this genesis");
}

TEST_F(ChainTest, RefusesARequestForAnotherGenesis) {
  auto b = Builder();
  auto other = Builder();  // Another enclave, same owner key type.
  StepSpec spec;
  spec.new_pcrs = Pcrs(2);
  spec.genesis = other->genesis_hash();
  auto step = b->MakeStep(spec);
  ASSERT_TRUE(step);
  ExpectRefused(*b, With(*b, *step), Code::kPolicyViolation, "request is for another enclave");
}

TEST_F(ChainTest, RefusesAReplayedOldRequest) {
  auto b = Grown(1);
  // A request written against the genesis head, after the chain has moved on.
  StepSpec spec;
  spec.new_pcrs = Pcrs(9);
  spec.id = "stale";
  spec.previous_head = b->genesis_hash();
  auto step = b->MakeStep(spec);
  ASSERT_TRUE(step);
  ExpectRefused(*b, With(*b, *step), Code::kPolicyViolation, "entry 4: request extends head");
  ExpectRefused(*b, With(*b, *step), Code::kPolicyViolation, "replayed or forked");
}

TEST_F(ChainTest, RefusesADuplicatedStep) {
  auto b = Grown(1);
  std::vector<Bytes> chain = b->chain();
  chain.push_back(chain[1]);
  chain.push_back(chain[2]);
  chain.push_back(chain[3]);
  ExpectRefused(*b, chain, Code::kMalformed, "entry 4: duplicate: request");
}

TEST_F(ChainTest, RefusesAnyRequestOnAnImmutableGenesis) {
  testing::BuilderOptions options;
  options.upgradable = false;
  auto b = Builder(options);
  ASSERT_TRUE(VerifyChain(b->chain(), b->chain_options()));
  StepSpec spec;
  spec.new_pcrs = Pcrs(2);
  ASSERT_TRUE(b->Step(spec));
  ExpectRefused(*b, b->chain(), Code::kPolicyViolation, "entry 1: the genesis is immutable");
  auto verified = VerifyChain({b->chain()[0]}, b->chain_options());
  ASSERT_TRUE(verified);
  auto staged = CheckStage(*verified, b->chain()[1]);
  ASSERT_FALSE(staged);
  EXPECT_EQ(staged.error().code(), Code::kPolicyViolation);
  EXPECT_NE(staged.error().message().find("immutable"), std::string::npos);
}

// --- The window. ---

TEST_F(ChainTest, RefusesActivationBeforeTheWindowEnds) {
  auto b = Builder();  // Window: 3600 s.
  StepSpec spec;
  spec.new_pcrs = Pcrs(2);
  spec.staged_at_unix = 1'000'000;
  spec.activated_at_unix = 1'000'000 + 3599;
  auto early = b->MakeStep(spec);
  ASSERT_TRUE(early);
  ExpectRefused(*b, With(*b, *early), Code::kPolicyViolation,
                "entry 3: activated before its window ended");
  spec.activated_at_unix = 1'000'000 + 3600;
  auto on_time = b->MakeStep(spec);
  ASSERT_TRUE(on_time);
  EXPECT_TRUE(VerifyChain(With(*b, *on_time), b->chain_options()));
}

TEST_F(ChainTest, RefusesActivationBeforeNotBefore) {
  auto b = Builder();
  StepSpec spec;
  spec.new_pcrs = Pcrs(2);
  spec.staged_at_unix = 1'000'000;
  spec.not_before_unix = 2'000'000;
  spec.activated_at_unix = 1'000'000 + 7200;  // After the window, before not_before.
  auto early = b->MakeStep(spec);
  ASSERT_TRUE(early);
  ExpectRefused(*b, With(*b, *early), Code::kPolicyViolation, "activated before its window ended");
}

TEST_F(ChainTest, DueAtIsTheLaterOfWindowAndNotBefore) {
  auto b = Builder();
  auto verified = VerifyChain(b->chain(), b->chain_options());
  ASSERT_TRUE(verified);
  UpgradeRequest r;
  r.not_before_unix = 0;
  EXPECT_EQ(DueAt(*verified, r, 1000), 1000u + 3600u);
  r.not_before_unix = 9000;
  EXPECT_EQ(DueAt(*verified, r, 1000), 9000u);
  EXPECT_EQ(DueAt(*verified, r, UINT64_MAX - 10), UINT64_MAX);  // Saturates.
}

// --- Receipts. ---

TEST_F(ChainTest, RefusesActivationPcrsOtherThanTheRequests) {
  auto b = Builder();
  StepSpec spec;
  spec.new_pcrs = Pcrs(2);
  spec.activation_pcrs = Pcrs(7);
  auto step = b->MakeStep(spec);
  ASSERT_TRUE(step);
  ExpectRefused(*b, With(*b, *step), Code::kPolicyViolation,
                "activation receipt PCRs differ from the staged request's");
}

TEST_F(ChainTest, RefusesReceiptsFromAnEnclaveWithOtherPcrs) {
  auto b = Builder();
  StepSpec spec;
  spec.new_pcrs = Pcrs(2);
  spec.receipt_pcrs = Pcrs(2);  // The new image vouching for itself.
  auto step = b->MakeStep(spec);
  ASSERT_TRUE(step);
  ExpectRefused(*b, With(*b, *step), Code::kPolicyViolation,
                "entry 2: receipt attestation PCRs are not the PCRs in force before this step");
}

TEST_F(ChainTest, RefusesAReceiptSignedByAKeyNoAttestationBinds) {
  auto b = Builder();
  StepSpec spec;
  spec.new_pcrs = Pcrs(2);
  spec.bind_other_key = true;
  auto step = b->MakeStep(spec);
  ASSERT_TRUE(step);
  ExpectRefused(*b, With(*b, *step), Code::kVerifyFailed,
                "entry 2: receipt is signed by a key no attestation binds");
}

TEST_F(ChainTest, ActivationWithItsOwnDocumentVerifies) {
  auto b = Builder();
  StepSpec spec;
  spec.new_pcrs = Pcrs(2);
  spec.activation_document = true;
  auto step = b->MakeStep(spec);
  ASSERT_TRUE(step);
  auto verified = VerifyChain(With(*b, *step), b->chain_options());
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_FALSE(verified->steps[0].activation.attestation.empty());
  EXPECT_GT(step->activation.size(), 4000u);
}

TEST_F(ChainTest, RefusesAnActivationSignedByAKeyTheStagingDocumentDoesNotBind) {
  auto b = Builder();
  StepSpec spec;
  spec.new_pcrs = Pcrs(2);
  spec.activation_by_other_key = true;
  auto step = b->MakeStep(spec);
  ASSERT_TRUE(step);
  ExpectRefused(*b, With(*b, *step), Code::kVerifyFailed,
                "entry 3: receipt is signed by a key no attestation binds");
}

TEST_F(ChainTest, RefusesAReceiptWhoseDocumentBindsAnotherHead) {
  auto b = Grown(1);
  StepSpec spec;
  spec.new_pcrs = Pcrs(3);
  spec.receipt_user_data = Bytes(b->genesis_hash().begin(), b->genesis_hash().end());
  auto step = b->MakeStep(spec);
  ASSERT_TRUE(step);
  ExpectRefused(*b, With(*b, *step), Code::kPolicyViolation,
                "entry 5: receipt attestation does not bind the chain head before this step");
}

TEST_F(ChainTest, RefusesReceiptsFromAnUntrustedRoot) {
  auto b = Grown(1);
  enclavia::testing::TempDir other_dir("upgrade-other");
  auto other = ChainBuilder::Create(other_dir.path() + "/ca");
  ASSERT_TRUE(other);
  ChainOptions options{(*other)->verifier(), false};
  auto verified = VerifyChain(b->chain(), options);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code(), Code::kUntrusted) << verified.error().message();
  EXPECT_NE(verified.error().message().find("entry 2: receipt attestation"), std::string::npos);
}

TEST_F(ChainTest, DebugReceiptsNeedAllowDebug) {
  testing::BuilderOptions options;
  options.debug = true;
  auto b = Grown(1, options);
  auto allowed = VerifyChain(b->chain(), b->chain_options());
  ASSERT_TRUE(allowed) << allowed.error().message();
  EXPECT_TRUE(allowed->allow_debug);
  auto refused = VerifyChain(b->chain(), ChainOptions{b->verifier(), false});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kPolicyViolation) << refused.error().message();
}

// --- Shape. ---

TEST_F(ChainTest, RefusesAGap) {
  auto b = Grown(2);
  std::vector<Bytes> chain = b->chain();
  chain.erase(chain.begin() + 2);  // Step 1's staging receipt.
  ExpectRefused(*b, chain, Code::kMalformed, "entry 2: gap: expected a staging receipt");
  std::vector<Bytes> cut(b->chain().begin(), b->chain().end() - 1);
  ExpectRefused(*b, cut, Code::kMalformed, "gap: the chain ends without an activation receipt");
}

TEST_F(ChainTest, RefusesReorderedEntries) {
  auto b = Grown(2);
  std::vector<Bytes> swapped = b->chain();
  std::swap(swapped[2], swapped[3]);  // Activation before staging.
  ExpectRefused(*b, swapped, Code::kMalformed, "entry 2: reordered or duplicate entry");
  std::vector<Bytes> steps_swapped = {b->chain()[0], b->chain()[4], b->chain()[5], b->chain()[6],
                                      b->chain()[1], b->chain()[2], b->chain()[3]};
  ExpectRefused(*b, steps_swapped, Code::kPolicyViolation, "entry 1: request extends head");
  std::vector<Bytes> second_genesis = b->chain();
  second_genesis.insert(second_genesis.begin() + 1, b->chain()[0]);
  ExpectRefused(*b, second_genesis, Code::kMalformed, "entry 1: expected an upgrade request, found a genesis");
  std::vector<Bytes> receipt_first = {b->chain()[2]};
  ExpectRefused(*b, receipt_first, Code::kMalformed, "entry 0: the chain must start with a genesis");
}

TEST_F(ChainTest, RefusesADuplicatedReceipt) {
  auto b = Grown(1);
  std::vector<Bytes> chain = b->chain();
  chain.insert(chain.begin() + 3, chain[2]);  // Staging twice.
  ExpectRefused(*b, chain, Code::kMalformed, "entry 3: reordered or duplicate entry");
}

TEST_F(ChainTest, RefusesTruncatedOrGarbledEntries) {
  auto b = Grown(1);
  for (size_t index : {0u, 1u, 2u, 3u}) {
    std::vector<Bytes> chain = b->chain();
    chain[index].resize(chain[index].size() / 2);
    ExpectRefused(*b, chain, Code::kMalformed,
                  std::string("entry ").append(std::to_string(index)).append(": "));
  }
  {
    std::vector<Bytes> chain = b->chain();
    chain[1].insert(chain[1].begin(), {0xd2});  // Tag 18: a second byte form.
    ExpectRefused(*b, chain, Code::kMalformed, "entry 1: entry: COSE_Sign1 must be untagged");
  }
  {
    std::vector<Bytes> chain = b->chain();
    chain[1].push_back(0x00);
    ExpectRefused(*b, chain, Code::kMalformed, "entry 1: ");
  }
  {
    // A garbled payload byte: still CBOR, but no longer the entry (or no longer signed).
    std::vector<Bytes> chain = b->chain();
    auto parsed = cose::ParseSign1(chain[1]);
    ASSERT_TRUE(parsed);
    Bytes payload = parsed->payload;
    payload[payload.size() / 2] ^= 0x01;
    auto garbled = ParseEntry(chain[1]);
    ASSERT_TRUE(garbled);
    std::vector<Bytes> broken = chain;
    // Replace the payload in place (same length): the signature no longer matches.
    auto pos = std::search(broken[1].begin(), broken[1].end(), parsed->payload.begin(),
                           parsed->payload.end());
    ASSERT_NE(pos, broken[1].end());
    std::copy(payload.begin(), payload.end(), pos);
    auto verified = VerifyChain(broken, b->chain_options());
    ASSERT_FALSE(verified);
    EXPECT_TRUE(verified.error().code() == Code::kMalformed ||
                verified.error().code() == Code::kVerifyFailed)
        << verified.error().message();
  }
  ExpectRefused(*b, {}, Code::kMalformed, "empty chain");
  std::vector<Bytes> junk = {Bytes{0xa0}};
  ExpectRefused(*b, junk, Code::kMalformed, "entry 0: ");
}

TEST_F(ChainTest, RefusesAChainThatIsTooLong) {
  auto b = Builder();
  std::vector<Bytes> chain(kMaxChainLength + 1, b->chain()[0]);
  ExpectRefused(*b, chain, Code::kLimitExceeded, "chain of 32 entries (limit 31)");
}

TEST_F(ChainTest, RefusesAnEntryOverTheSizeLimit) {
  auto b = Builder();
  auto too_big = ParseEntry(Bytes(kMaxEntrySize + 1, 0x40));
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code(), Code::kLimitExceeded);
}

TEST_F(ChainTest, MaximumLengthChainVerifies) {
  auto b = Grown((kMaxChainLength - 1) / 3);
  ASSERT_EQ(b->chain().size(), kMaxChainLength);
  size_t total = 0;
  size_t largest = 0;
  for (const Bytes& entry : b->chain()) {
    total += entry.size();
    largest = std::max(largest, entry.size());
  }
  auto start = std::chrono::steady_clock::now();
  auto verified = VerifyChain(b->chain(), b->chain_options());
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(verified->steps.size(), 10u);
  EXPECT_LE(largest, kMaxEntrySize);
  std::cout << "[ figures ] 10-step chain: " << total << " bytes, largest entry " << largest
            << " bytes, genesis " << b->chain()[0].size() << " bytes, request "
            << b->chain()[1].size() << " bytes, staging " << b->chain()[2].size()
            << " bytes, activation " << b->chain()[3].size() << " bytes; VerifyChain "
            << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms\n";
}

// --- What clients and the old enclave decide. ---

TEST_F(ChainTest, AcceptChainByGenesisOrAnyPcrSetOnTheChain) {
  auto b = Grown(3);
  auto verified = VerifyChain(b->chain(), b->chain_options());
  ASSERT_TRUE(verified);
  ChainTrust by_genesis;
  by_genesis.genesis = {b->genesis_hash()};
  auto accepted = AcceptChain(*verified, by_genesis);
  ASSERT_TRUE(accepted);
  EXPECT_EQ(*accepted, 0u);

  ChainTrust by_pcrs;
  by_pcrs.pcrs = {Pcrs(9), Pcrs(3)};
  accepted = AcceptChain(*verified, by_pcrs);
  ASSERT_TRUE(accepted) << accepted.error().message();
  EXPECT_EQ(*accepted, 2u);
  ChainTrust by_pcr0;  // A set that lists only PCR0 of the first image.
  by_pcr0.pcrs = {{{0, Pcrs(1).at(0)}}};
  accepted = AcceptChain(*verified, by_pcr0);
  ASSERT_TRUE(accepted);
  EXPECT_EQ(*accepted, 0u);

  ChainTrust unknown;
  unknown.genesis = {Digest{}};
  unknown.pcrs = {Pcrs(9), {}};
  auto refused = AcceptChain(*verified, unknown);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kPolicyViolation);
  EXPECT_NE(refused.error().message().find("descends from no trusted genesis"), std::string::npos);
  EXPECT_FALSE(AcceptChain(*verified, ChainTrust{}));
}

TEST_F(ChainTest, CheckPresentedAcceptsOnlyTheHeadsDocument) {
  auto b = Grown(3);
  auto verified = VerifyChain(b->chain(), b->chain_options());
  ASSERT_TRUE(verified);
  auto doc_of = [&](const PcrMap& pcrs, std::optional<Bytes> user_data) {
    auto doc = b->Document(pcrs, Bytes(32, 7), std::move(user_data));
    ENCLAVIA_CHECK(doc.has_value());
    auto checked = b->verifier()->Verify(*doc, std::chrono::system_clock::now(), {});
    ENCLAVIA_CHECK(checked.has_value());
    return checked->document();
  };
  Bytes head(b->head().begin(), b->head().end());
  EXPECT_TRUE(CheckPresented(*verified, doc_of(Pcrs(4), head)));

  // Step 1's enclave, binding step 1's head: a superseded image.
  const Digest& step1 = verified->steps[0].head;
  auto old = CheckPresented(*verified, doc_of(Pcrs(2), Bytes(step1.begin(), step1.end())));
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code(), Code::kPolicyViolation);
  EXPECT_NE(old.error().message().find("not the chain's last"), std::string::npos);
  // The head's PCRs binding an older head, or nothing.
  auto stale = CheckPresented(*verified, doc_of(Pcrs(4), Bytes(step1.begin(), step1.end())));
  ASSERT_FALSE(stale);
  EXPECT_NE(stale.error().message().find("does not bind the chain head"), std::string::npos);
  auto unbound = CheckPresented(*verified, doc_of(Pcrs(4), std::nullopt));
  ASSERT_FALSE(unbound);
  EXPECT_EQ(unbound.error().code(), Code::kPolicyViolation);
}

TEST_F(ChainTest, CheckStageAcceptsOnlyARequestOnTheCurrentHead) {
  auto b = Grown(1);
  auto verified = VerifyChain(b->chain(), b->chain_options());
  ASSERT_TRUE(verified);
  StepSpec spec;
  spec.new_pcrs = Pcrs(3);
  auto next = b->MakeStep(spec);
  ASSERT_TRUE(next);
  auto staged = CheckStage(*verified, next->request);
  ASSERT_TRUE(staged) << staged.error().message();
  EXPECT_EQ(staged->new_pcrs, Pcrs(3));

  // The request step 1 was staged with: replayed.
  auto replayed = CheckStage(*verified, b->chain()[1]);
  ASSERT_FALSE(replayed);
  EXPECT_EQ(replayed.error().code(), Code::kPolicyViolation);
  EXPECT_NE(replayed.error().message().find("replayed"), std::string::npos);

  spec.control = &b->other_control();
  auto forged = b->MakeStep(spec);
  ASSERT_TRUE(forged);
  auto refused = CheckStage(*verified, forged->request);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kVerifyFailed);

  spec.control = nullptr;
  auto other = Builder();
  spec.genesis = other->genesis_hash();
  auto elsewhere = b->MakeStep(spec);
  ASSERT_TRUE(elsewhere);
  auto wrong = CheckStage(*verified, elsewhere->request);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("another enclave"), std::string::npos);

  auto receipt = CheckStage(*verified, b->chain()[2]);
  ASSERT_FALSE(receipt);
  EXPECT_EQ(receipt.error().code(), Code::kMalformed);
}

// WriteFuzzCorpus regenerates fuzz/corpus/upgrade_entry (run by hand with
// --gtest_also_run_disabled_tests and ENCLAVIA_UPGRADE_CORPUS=<dir>). Each file is a fuzz input:
// entries, each prefixed by its u16 BE length (fuzz/upgrade_entry.cc).
TEST_F(ChainTest, DISABLED_WriteFuzzCorpus) {
  const char* dir = std::getenv("ENCLAVIA_UPGRADE_CORPUS");
  ASSERT_NE(dir, nullptr) << "set ENCLAVIA_UPGRADE_CORPUS";
  auto b = Grown(1);
  auto write = [&](const std::string& name, std::initializer_list<size_t> indices) {
    Bytes out;
    for (size_t i : indices) {
      const Bytes& e = b->chain()[i];
      out.push_back(static_cast<uint8_t>(e.size() >> 8));
      out.push_back(static_cast<uint8_t>(e.size()));
      out.insert(out.end(), e.begin(), e.end());
    }
    std::ofstream(std::string(dir) + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
  };
  write("genesis", {0});
  write("genesis_request", {0, 1});
  write("genesis_request_staging", {0, 1, 2});
  write("one_step", {0, 1, 2, 3});
  write("activation", {3});
  auto revoke = SignRevocation(Revocation{RequestHash(b->chain()[1])}, b->control());
  ASSERT_TRUE(revoke);
  Bytes out = {static_cast<uint8_t>(revoke->size() >> 8), static_cast<uint8_t>(revoke->size())};
  out.insert(out.end(), revoke->begin(), revoke->end());
  std::ofstream(std::string(dir) + "/revocation", std::ios::binary)
      .write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
}

}  // namespace
}  // namespace enclavia::upgrade
