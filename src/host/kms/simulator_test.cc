// SPDX-License-Identifier: Apache-2.0
// The KMS simulator and its server with LocalKmsClient and NSM simulator documents.
#include "host/kms/simulator.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "host/nsm/simulator.h"
#include "lib/crypto/random.h"
#include "lib/kms/local_kms.h"
#include "testing/temp_dir.h"

namespace enclavia::host {
namespace {

Bytes Pcr(uint8_t fill) { return Bytes(attestation::kPcrSize, fill); }

using testing::TempDir;

class KmsSimulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    auto ca = SimulatorCa::LoadOrCreate(
        dir_.path() + "/nsm", [] { return SystemTime(std::chrono::system_clock::now()); });
    ASSERT_TRUE(ca);
    ca_ = std::make_shared<const SimulatorCa>(std::move(*ca));
    auto sim = KmsSimulator::Open(dir_.path() + "/kms", ca_->root());
    ASSERT_TRUE(sim) << sim.error().message();
    sim_ = std::move(*sim);
    address_ = *net::ParseAddress("unix:" + dir_.path() + "/kms.sock");
    auto server = KmsServer::Start(*sim_, address_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
    policy_.pcrs[0] = Pcr(0x10);
    policy_.pcrs[3] = Pcr(0x33);
    ASSERT_TRUE(sim_->CreateKey("volume", policy_));
  }

  std::shared_ptr<attestation::Nsm> Nsm(uint8_t pcr3_fill = 0x33, bool debug = false) {
    SimulatorOptions options;
    options.boot_pcrs[0] = Pcr(0x10);
    options.boot_pcrs[3] = Pcr(pcr3_fill);
    options.debug = debug;
    auto nsm = NsmSimulator::Create(ca_, options);
    ENCLAVIA_CHECK(nsm.has_value());
    return std::shared_ptr<attestation::Nsm>(std::move(*nsm));
  }
  std::unique_ptr<kms::LocalKmsClient> Client(std::shared_ptr<attestation::Nsm> nsm) {
    return std::make_unique<kms::LocalKmsClient>(std::move(nsm), address_);
  }

  TempDir dir_;
  std::shared_ptr<const SimulatorCa> ca_;
  std::unique_ptr<KmsSimulator> sim_;
  net::Address address_;
  std::unique_ptr<KmsServer> server_;
  KeyPolicy policy_;
};

TEST_F(KmsSimulatorTest, GeneratedKeysDecryptAgainForTheSameImage) {
  auto client = Client(Nsm());
  auto key = client->GenerateDataKey("volume");
  ASSERT_TRUE(key) << key.error().message();
  EXPECT_EQ(key->plaintext.size(), kms::kDataKeySize);
  EXPECT_FALSE(key->ciphertext_blob.empty());

  // Another enclave of the same image (another NSM, same PCRs) after a restart.
  auto again = Client(Nsm())->Decrypt(key->ciphertext_blob);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_TRUE(crypto::ConstantTimeEqual(again->Expose(), key->plaintext.Expose()));

  auto second = client->GenerateDataKey("volume");
  ASSERT_TRUE(second);
  EXPECT_FALSE(crypto::ConstantTimeEqual(second->plaintext.Expose(), key->plaintext.Expose()));
}

TEST_F(KmsSimulatorTest, EncryptedPlaintextDecryptsForTheSameImage) {
  auto client = Client(Nsm());
  Bytes ring(2581);  // The size of a 64-entry key ring.
  crypto::RandomFill(ring);
  auto blob = client->Encrypt("volume", ring);
  ASSERT_TRUE(blob) << blob.error().message();
  EXPECT_GT(blob->size(), ring.size());
  auto opened = Client(Nsm())->Decrypt(*blob);
  ASSERT_TRUE(opened) << opened.error().message();
  EXPECT_TRUE(crypto::ConstantTimeEqual(opened->Expose(), ring));

  // A one-byte flip anywhere fails; sizes out of range are refused before anything is sent.
  Bytes tampered = *blob;
  tampered.back() ^= 1;
  EXPECT_EQ(client->Decrypt(tampered).error().code(), Code::kVerifyFailed);
  EXPECT_EQ(client->Encrypt("volume", {}).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(client->Encrypt("volume", Bytes(kms::kMaxPlaintextSize + 1)).error().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(client->Encrypt("../x", ring).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(client->Encrypt("nokey", ring).error().code(), Code::kNotFound);
}

TEST_F(KmsSimulatorTest, EncryptUnderAKeyOfAnotherImageIsRefused) {
  auto refused = Client(Nsm(0x34))->Encrypt("volume", Bytes(32, 7));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kPolicyViolation);
  EXPECT_NE(refused.error().message().find("PCR3"), std::string::npos)
      << refused.error().message();
}

TEST_F(KmsSimulatorTest, ASuccessorRewrapsUnderTheKeyOfItsOwnImage) {
  // The upgrade: the old image opens the ring, the new image (another PCR0) gets a key of its
  // own and re-wraps; the old image cannot open the new blob, the new one cannot open the old.
  Bytes new_pcr0 = Pcr(0x20);
  auto policy = ImagePolicy(new_pcr0, /*debug=*/false);
  ASSERT_TRUE(policy);
  EXPECT_EQ(policy->pcrs.at(0), new_pcr0);
  EXPECT_FALSE(ImagePolicy(Bytes(47), false));
  EXPECT_EQ(ImagePolicy(new_pcr0, /*debug=*/true)->pcrs.at(0), Bytes(attestation::kPcrSize, 0));
  const std::string id = ImageKeyId("my app", new_pcr0);
  EXPECT_EQ(id, "my_app-2020202020202020");
  EXPECT_TRUE(kms::ValidKeyId(id));
  EXPECT_TRUE(kms::ValidKeyId(ImageKeyId(std::string(200, 'x'), new_pcr0)));
  EXPECT_TRUE(kms::ValidKeyId(ImageKeyId(".", new_pcr0)));
  ASSERT_TRUE(sim_->EnsureKey(id, *policy));

  SimulatorOptions options;
  options.boot_pcrs[0] = new_pcr0;
  auto successor_nsm = NsmSimulator::Create(ca_, options);
  ASSERT_TRUE(successor_nsm);
  auto successor = Client(std::shared_ptr<attestation::Nsm>(std::move(*successor_nsm)));
  auto old_blob = Client(Nsm())->Encrypt("volume", Bytes(32, 1));
  ASSERT_TRUE(old_blob);
  EXPECT_EQ(successor->Decrypt(*old_blob).error().code(), Code::kPolicyViolation);
  auto new_blob = successor->Encrypt(id, Bytes(72, 2));
  ASSERT_TRUE(new_blob) << new_blob.error().message();
  auto opened = successor->Decrypt(*new_blob);
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened->size(), 72u);
  EXPECT_EQ(Client(Nsm())->Decrypt(*new_blob).error().code(), Code::kPolicyViolation);
}

TEST_F(KmsSimulatorTest, AnotherImageIsRefusedNamingThePcr) {
  auto key = Client(Nsm())->GenerateDataKey("volume");
  ASSERT_TRUE(key);
  auto other = Client(Nsm(0x34));
  auto refused = other->Decrypt(key->ciphertext_blob);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kPolicyViolation);
  EXPECT_NE(refused.error().message().find("PCR3 is 343434"), std::string::npos)
      << refused.error().message();
  auto generate = other->GenerateDataKey("volume");
  ASSERT_FALSE(generate);
  EXPECT_EQ(generate.error().code(), Code::kPolicyViolation);
}

TEST_F(KmsSimulatorTest, DebugEnclavesNeedAPolicyThatAllowsThem) {
  auto debug = Client(Nsm(0x33, /*debug=*/true));
  auto refused = debug->GenerateDataKey("volume");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kPolicyViolation);
  EXPECT_NE(refused.error().message().find("debug"), std::string::npos);

  KeyPolicy lenient;
  lenient.pcrs[3] = Pcr(0x33);  // Debug mode zeroes PCR0, 1, 2 and 8 only.
  lenient.allow_debug = true;
  ASSERT_TRUE(sim_->CreateKey("debug-key", lenient));
  EXPECT_TRUE(debug->GenerateDataKey("debug-key"));
}

TEST_F(KmsSimulatorTest, TamperedBlobsFailVerification) {
  auto client = Client(Nsm());
  auto key = client->GenerateDataKey("volume");
  ASSERT_TRUE(key);
  for (size_t i : {size_t{0}, size_t{9}, key->ciphertext_blob.size() - 1}) {
    Bytes tampered = key->ciphertext_blob;
    tampered[i] ^= 0x01;
    auto result = client->Decrypt(tampered);
    ASSERT_FALSE(result) << "byte " << i;
    EXPECT_EQ(result.error().code(), Code::kVerifyFailed) << "byte " << i;
  }
  Bytes truncated(key->ciphertext_blob.begin(), key->ciphertext_blob.end() - 1);
  EXPECT_EQ(client->Decrypt(truncated).error().code(), Code::kVerifyFailed);
}

TEST_F(KmsSimulatorTest, ABlobMovedToAnotherKeyIdFails) {
  ASSERT_TRUE(sim_->CreateKey("volumf", policy_));  // Same length, same policy, another key.
  auto client = Client(Nsm());
  auto key = client->GenerateDataKey("volume");
  ASSERT_TRUE(key);
  Bytes moved = key->ciphertext_blob;
  ASSERT_EQ(moved[2 + 5], 'e');
  moved[2 + 5] = 'f';
  auto result = client->Decrypt(moved);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Code::kVerifyFailed);

  moved[2 + 5] = 'x';  // "volumx": no such key.
  EXPECT_EQ(client->Decrypt(moved).error().code(), Code::kNotFound);
  EXPECT_EQ(client->GenerateDataKey("nokey").error().code(), Code::kNotFound);
}

TEST_F(KmsSimulatorTest, AResponseIsUselessToAnyOtherKeyPair) {
  // What the host sees: a request (with a document naming the enclave's per-call key) and the
  // response. Replaying the request gets a response sealed to that same key, which only the
  // enclave held, for that call only.
  auto nsm = Nsm();
  auto recipient = crypto::X25519Keypair::Generate();
  attestation::AttestationRequest attest;
  attest.public_key = Bytes(recipient.public_key.begin(), recipient.public_key.end());
  auto document = nsm->Attestation(attest);
  ASSERT_TRUE(document);
  kms::KmsRequest request{kms::Operation::kGenerateDataKey, "volume", {}, *document, {}};
  auto response = sim_->Handle(request);
  ASSERT_TRUE(response);
  EXPECT_TRUE(kms::OpenSealed(response->sealed_key, recipient));
  auto attacker = crypto::X25519Keypair::Generate();
  auto stolen = kms::OpenSealed(response->sealed_key, attacker);
  ASSERT_FALSE(stolen);
  EXPECT_EQ(stolen.error().code(), Code::kVerifyFailed);

  // A document without a public key, or from another root, gets nothing.
  auto bare = nsm->Attestation({});
  ASSERT_TRUE(bare);
  EXPECT_EQ(sim_->Handle({kms::Operation::kGenerateDataKey, "volume", {}, *bare, {}}).error().code(),
            Code::kInvalidArgument);
  TempDir elsewhere;
  auto other_ca = SimulatorCa::LoadOrCreate(
      elsewhere.path(), [] { return SystemTime(std::chrono::system_clock::now()); });
  ASSERT_TRUE(other_ca);
  SimulatorOptions options;
  options.boot_pcrs[0] = Pcr(0x10);
  options.boot_pcrs[3] = Pcr(0x33);
  auto forged_nsm =
      NsmSimulator::Create(std::make_shared<const SimulatorCa>(std::move(*other_ca)), options);
  ASSERT_TRUE(forged_nsm);
  auto forged = (*forged_nsm)->Attestation(attest);
  ASSERT_TRUE(forged);
  EXPECT_FALSE(sim_->Handle({kms::Operation::kGenerateDataKey, "volume", {}, *forged, {}}));
}

TEST_F(KmsSimulatorTest, KeysAreFilesOfMode0600AndEnsureKeyComparesPolicies) {
  struct stat st {};
  ASSERT_EQ(::stat((dir_.path() + "/kms/volume.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(sim_->CreateKey("volume", policy_).error().code(), Code::kAlreadyExists);
  EXPECT_TRUE(sim_->EnsureKey("volume", policy_));
  KeyPolicy other = policy_;
  other.pcrs[3] = Pcr(0x99);
  EXPECT_EQ(sim_->EnsureKey("volume", other).error().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(sim_->EnsureKey("fresh", other));
  EXPECT_FALSE(sim_->CreateKey("../x", policy_));
  EXPECT_FALSE(sim_->CreateKey("nopcr", KeyPolicy{}));

  // A simulator reopened on the same directory still decrypts old blobs.
  auto key = Client(Nsm())->GenerateDataKey("volume");
  ASSERT_TRUE(key);
  server_.reset();
  auto reopened = KmsSimulator::Open(dir_.path() + "/kms", ca_->root());
  ASSERT_TRUE(reopened);
  auto server = KmsServer::Start(**reopened, address_);
  ASSERT_TRUE(server);
  auto again = Client(Nsm())->Decrypt(key->ciphertext_blob);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_TRUE(crypto::ConstantTimeEqual(again->Expose(), key->plaintext.Expose()));
}

TEST_F(KmsSimulatorTest, MalformedFramesGetAnErrorAndTheServerKeepsServing) {
  auto fd = kms::ConnectTo(address_);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(kms::WriteMessage(fd->get(), Bytes{0xa1, 0x00}));
  auto reply = kms::ReadMessage(fd->get());
  ASSERT_TRUE(reply);
  auto decoded = kms::DecodeResponse(*reply);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code(), Code::kMalformed);
  EXPECT_TRUE(Client(Nsm())->GenerateDataKey("volume"));
}

TEST_F(KmsSimulatorTest, AnUnreachableServiceIsUnavailable) {
  server_->Stop();
  auto result = Client(Nsm())->GenerateDataKey("volume");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace enclavia::host
