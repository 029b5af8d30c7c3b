// SPDX-License-Identifier: Apache-2.0
#include "host/nsm/simulator.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "lib/attestation/document.h"
#include "lib/attestation/verifier.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/cbor/cbor.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"

namespace enclavia::host {
namespace {

using attestation::AttestationRequest;
using attestation::AwsRoot;
using attestation::PayloadMapEncoding;
using attestation::TrustPolicy;
using attestation::Verifier;
using std::chrono::hours;
using std::chrono::minutes;

// 2025-06-01T12:00:00Z: simulator clocks in these tests start here.
constexpr std::chrono::sys_seconds kStart{std::chrono::seconds(1748779200)};

// TempDir is a fresh directory under gtest's temp dir, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "enclavia_nsm_sim_XXXXXX";
    ENCLAVIA_CHECK(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::string& Path() const { return path_; }

 private:
  std::string path_;
};

// FakeClock is a settable clock shared with the simulator.
class FakeClock {
 public:
  [[nodiscard]] SystemTime Now() const { return *now_; }
  [[nodiscard]] Clock AsClock() const {
    return [now = now_] { return *now; };
  }
  void Advance(SystemTime::duration d) const { *now_ += d; }

 private:
  std::shared_ptr<SystemTime> now_ = std::make_shared<SystemTime>(kStart);
};

constexpr size_t kMaxPemSize = size_t{64} * 1024;

Bytes Pcr(uint8_t fill) {
  Bytes pcr(attestation::kPcrSize, fill);
  return pcr;
}

constexpr uint8_t kPcr0Fill = 0xa0;

class SimulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    auto ca = SimulatorCa::LoadOrCreate(dir_.Path() + "/state", clock_.AsClock());
    ASSERT_TRUE(ca) << ca.error().message();
    ca_ = std::make_shared<const SimulatorCa>(std::move(ca).value());
  }

  // MakeSimulator creates a simulator on the test's clock. Unless the test sets PCR0, it boots with
  // PCR0 filled with kPcr0Fill, so that its documents are not debug-mode ones (PCR0 all zero).
  std::unique_ptr<NsmSimulator> MakeSimulator(SimulatorOptions options = {}) {
    options.boot_pcrs.try_emplace(0, Pcr(kPcr0Fill));
    if (!options.clock) {
      options.clock = clock_.AsClock();
    }
    auto sim = NsmSimulator::Create(ca_, std::move(options));
    ENCLAVIA_CHECK(sim.has_value());
    return std::move(sim).value();
  }

  [[nodiscard]] Verifier TrustingSimulator() const {
    return Verifier::Create(AwsRoot::kDoNotTrust, {ca_->root()}).value();
  }

  Result<attestation::VerifiedAttestation> VerifyNow(ByteSpan document,
                                                     const TrustPolicy& policy = {}) const {
    return TrustingSimulator().Verify(document, clock_.Now(), policy);
  }

  // Parts decodes a document's COSE_Sign1 array and its payload map.
  static cbor::Value::Array Parts(ByteSpan document) {
    cbor::Value msg = cbor::Decode(document).value();
    ENCLAVIA_CHECK(msg.is_array());
    return msg.as_array();
  }
  static cbor::Value Payload(ByteSpan document) {
    return cbor::Decode(Parts(document)[2].as_bytes()).value();
  }

  // NOLINTBEGIN(misc-non-private-member-variables-in-classes): gtest fixtures share state.
  TempDir dir_;
  FakeClock clock_;
  std::shared_ptr<const SimulatorCa> ca_;
  // NOLINTEND(misc-non-private-member-variables-in-classes)
};

// --- SimulatorCa ---

TEST_F(SimulatorTest, LoadOrCreateWritesRootPemAndPrivateKey) {
  TempDir dir;
  std::string state = dir.Path() + "/fresh";
  ASSERT_TRUE(SimulatorCa::LoadOrCreate(state, clock_.AsClock()));
  struct stat st {};
  ASSERT_EQ(::stat((state + "/root.pem").c_str(), &st), 0);
  ASSERT_EQ(::stat((state + "/root.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  ASSERT_EQ(::stat(state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700U);
}

TEST_F(SimulatorTest, LoadOrCreateReturnsTheSameRootTwice) {
  auto again = SimulatorCa::LoadOrCreate(dir_.Path() + "/state", clock_.AsClock());
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->root().der(), ca_->root().der());
  EXPECT_EQ(again->key().public_key().ToSpki(), ca_->key().public_key().ToSpki());
  Bytes pem = ReadFile(dir_.Path() + "/state/root.pem", kMaxPemSize).value();
  EXPECT_EQ(crypto::Certificate::FromPem(AsString(pem))->der(), ca_->root().der());
}

TEST_F(SimulatorTest, RootIsAP384CaValidAtCreation) {
  EXPECT_EQ(ca_->root().public_key()->algorithm(), crypto::SignatureAlgorithm::kEcdsaP384Sha384);
  EXPECT_LE(ca_->root().not_before(), clock_.Now());
  EXPECT_GT(ca_->root().not_after(), clock_.Now() + hours(24 * 365 * 29));
}

TEST_F(SimulatorTest, LoadOrCreateRejectsMismatchedKey) {
  TempDir other;
  ASSERT_TRUE(SimulatorCa::LoadOrCreate(other.Path() + "/state", clock_.AsClock()));
  std::filesystem::copy_file(other.Path() + "/state/root.key", dir_.Path() + "/state/root.key",
                             std::filesystem::copy_options::overwrite_existing);
  auto result = SimulatorCa::LoadOrCreate(dir_.Path() + "/state", clock_.AsClock());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(result.error().message().find("does not match"), std::string::npos);
}

TEST_F(SimulatorTest, LoadOrCreateRejectsMissingKeyFile) {
  std::filesystem::remove(dir_.Path() + "/state/root.key");
  auto result = SimulatorCa::LoadOrCreate(dir_.Path() + "/state", clock_.AsClock());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Code::kFailedPrecondition);
  // Never silently replaced: root.pem is still the old root.
  Bytes pem = ReadFile(dir_.Path() + "/state/root.pem", kMaxPemSize).value();
  EXPECT_EQ(crypto::Certificate::FromPem(AsString(pem))->der(), ca_->root().der());
}

TEST_F(SimulatorTest, LoadOrCreateRejectsMissingCertificateFile) {
  std::filesystem::remove(dir_.Path() + "/state/root.pem");
  auto result = SimulatorCa::LoadOrCreate(dir_.Path() + "/state", clock_.AsClock());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Code::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(dir_.Path() + "/state/root.pem"));
}

TEST_F(SimulatorTest, LoadOrCreateRejectsCorruptCertificate) {
  ASSERT_TRUE(WriteFileAtomic(dir_.Path() + "/state/root.pem", AsBytes("not a certificate\n")));
  EXPECT_FALSE(SimulatorCa::LoadOrCreate(dir_.Path() + "/state", clock_.AsClock()));
}

// --- Documents and trust ---

TEST_F(SimulatorTest, DocumentVerifiesUnderTheSimulatorRoot) {
  auto sim = MakeSimulator();
  Bytes document = sim->Attestation({}).value();
  auto verified = VerifyNow(document);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(verified->root_fingerprint(), ca_->root().fingerprint_sha256());
  EXPECT_EQ(verified->document().timestamp_ms, static_cast<uint64_t>(ToUnixMillis(clock_.Now())));
  EXPECT_EQ(verified->document().digest, "SHA384");
}

TEST_F(SimulatorTest, DocumentFailsUnderTheAwsRootOnly) {
  auto sim = MakeSimulator();
  Bytes document = sim->Attestation({}).value();
  Verifier aws = Verifier::Create(AwsRoot::kTrust).value();
  auto result = aws.Verify(document, clock_.Now(), {});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Code::kUntrusted) << result.error().message();
}

TEST_F(SimulatorTest, RequestFieldsAreBoundIntoTheDocument) {
  auto sim = MakeSimulator();
  AttestationRequest request;
  request.user_data = Bytes{'h', 'i'};
  request.nonce = Bytes(32, 0x42);
  request.public_key = Bytes(1024, 0x07);
  TrustPolicy policy;
  policy.expected_nonce = request.nonce;
  policy.expected_public_key = request.public_key;
  auto verified = VerifyNow(sim->Attestation(request).value(), policy);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(verified->document().user_data, request.user_data);
  EXPECT_EQ(verified->document().nonce, request.nonce);
  EXPECT_EQ(verified->document().public_key, request.public_key);
}

TEST_F(SimulatorTest, AbsentRequestFieldsStayAbsent) {
  auto sim = MakeSimulator();
  auto verified = VerifyNow(sim->Attestation({}).value());
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_FALSE(verified->document().user_data.has_value());
  EXPECT_FALSE(verified->document().nonce.has_value());
  EXPECT_FALSE(verified->document().public_key.has_value());
}

TEST_F(SimulatorTest, RejectsRequestFieldsOver1024Bytes) {
  auto sim = MakeSimulator();
  for (int field = 0; field < 3; ++field) {
    AttestationRequest request;
    Bytes big(attestation::kNsmMaxOptionalFieldSize + 1, 0x01);
    (field == 0 ? request.user_data : field == 1 ? request.nonce : request.public_key) = big;
    auto result = sim->Attestation(request);
    ASSERT_FALSE(result) << "field " << field;
    EXPECT_EQ(result.error().code(), Code::kInvalidArgument);
    EXPECT_EQ(result.error().message(), "nsm: InputTooLarge");
  }
}

// --- PCR semantics ---

TEST_F(SimulatorTest, BootPcrsAreLocked) {
  auto sim = MakeSimulator();
  for (uint16_t i = 0; i < 32; ++i) {
    auto pcr = sim->DescribePcr(i);
    ASSERT_TRUE(pcr);
    EXPECT_EQ(pcr->locked, i < 16) << "PCR" << i;
    EXPECT_EQ(pcr->value, Pcr(i == 0 ? kPcr0Fill : 0)) << "PCR" << i;
  }
  auto result = sim->ExtendPcr(3, AsBytes("data"));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(result.error().message(), "nsm: ReadOnlyIndex");
}

TEST_F(SimulatorTest, ExtendPcrIsSha384OfOldValueAndData) {
  auto sim = MakeSimulator();
  Bytes data = ToBytes("measurement");
  crypto::Sha384Digest first = crypto::Sha384(Concat({Pcr(0), data}));
  auto extended = sim->ExtendPcr(16, data);
  ASSERT_TRUE(extended) << extended.error().message();
  EXPECT_EQ(*extended, Bytes(first.begin(), first.end()));
  EXPECT_EQ(sim->DescribePcr(16)->value, *extended);

  crypto::Sha384Digest second = crypto::Sha384(Concat({*extended, data}));
  EXPECT_EQ(sim->ExtendPcr(16, data).value(), Bytes(second.begin(), second.end()));
  EXPECT_EQ(sim->DescribePcr(16)->value, Bytes(second.begin(), second.end()));
  EXPECT_EQ(sim->DescribePcr(17)->value, Pcr(0));
}

TEST_F(SimulatorTest, LockedPcrCannotBeExtended) {
  auto sim = MakeSimulator();
  ASSERT_TRUE(sim->ExtendPcr(20, AsBytes("a")));
  Bytes before = sim->DescribePcr(20)->value;
  ASSERT_TRUE(sim->LockPcr(20));
  EXPECT_TRUE(sim->DescribePcr(20)->locked);
  auto result = sim->ExtendPcr(20, AsBytes("b"));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(sim->DescribePcr(20)->value, before);
}

TEST_F(SimulatorTest, LockPcrsLocksTheRange) {
  auto sim = MakeSimulator();
  ASSERT_TRUE(sim->LockPcrs(24));
  for (uint16_t i = 0; i < 32; ++i) {
    EXPECT_EQ(sim->DescribePcr(i)->locked, i < 24) << "PCR" << i;
  }
  EXPECT_FALSE(sim->ExtendPcr(23, AsBytes("x")));
  EXPECT_TRUE(sim->ExtendPcr(24, AsBytes("x")));
}

TEST_F(SimulatorTest, PcrIndex32IsInvalid) {
  auto sim = MakeSimulator();
  auto describe = sim->DescribePcr(32);
  ASSERT_FALSE(describe);
  EXPECT_EQ(describe.error().code(), Code::kInvalidArgument);
  auto extend = sim->ExtendPcr(32, AsBytes("x"));
  ASSERT_FALSE(extend);
  EXPECT_EQ(extend.error().code(), Code::kInvalidArgument);
  auto lock = sim->LockPcr(32);
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code(), Code::kInvalidArgument);
  auto lock_range = sim->LockPcrs(33);
  ASSERT_FALSE(lock_range);
  EXPECT_EQ(lock_range.error().code(), Code::kInvalidArgument);
}

TEST_F(SimulatorTest, DescribeNsmListsLockedPcrs) {
  SimulatorOptions options;
  options.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  auto sim = MakeSimulator(std::move(options));
  ASSERT_TRUE(sim->LockPcr(18));
  auto description = sim->DescribeNsm();
  ASSERT_TRUE(description);
  std::vector<uint16_t> want = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18};
  EXPECT_EQ(description->locked_pcrs, want);
  EXPECT_EQ(description->max_pcrs, 32);
  EXPECT_EQ(description->digest, "SHA384");
  EXPECT_EQ(description->module_id, "i-0123456789abcdef0-enc0123456789abcdef");
}

TEST_F(SimulatorTest, RandomModuleIdLooksLikeAws) {
  auto sim = MakeSimulator();
  std::string id = sim->DescribeNsm()->module_id;
  ASSERT_EQ(id.size(), 2 + 17 + 4 + 16) << id;
  EXPECT_EQ(id.substr(0, 2), "i-");
  EXPECT_EQ(id.substr(19, 4), "-enc");
}

TEST_F(SimulatorTest, GetRandomReturnsFreshBytes) {
  auto sim = MakeSimulator();
  Bytes a = sim->GetRandom().value();
  Bytes b = sim->GetRandom().value();
  EXPECT_FALSE(a.empty());
  EXPECT_NE(a, b);
}

TEST_F(SimulatorTest, BootPcrsAppearInDocuments) {
  SimulatorOptions options;
  options.boot_pcrs = {
      {0, Pcr(0xb0)}, {1, Pcr(0xa1)}, {2, Pcr(0xa2)}, {4, Pcr(0xa4)}, {8, Pcr(0xa8)}};
  auto sim = MakeSimulator(std::move(options));
  TrustPolicy policy;
  policy.expected_pcrs = {{0, Pcr(0xb0)}, {1, Pcr(0xa1)}, {2, Pcr(0xa2)},
                          {3, Pcr(0)},    {4, Pcr(0xa4)}, {8, Pcr(0xa8)}};
  auto verified = VerifyNow(sim->Attestation({}).value(), policy);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_FALSE(verified->debug());
  EXPECT_EQ(sim->DescribePcr(4)->value, Pcr(0xa4));
}

TEST_F(SimulatorTest, RejectsBootPcrOfWrongSize) {
  SimulatorOptions options;
  options.boot_pcrs = {{0, Bytes(32, 0x01)}};
  auto sim = NsmSimulator::Create(ca_, std::move(options));
  ASSERT_FALSE(sim);
  EXPECT_EQ(sim.error().code(), Code::kInvalidArgument);
}

TEST_F(SimulatorTest, DebugZeroesPcrs0128) {
  SimulatorOptions options;
  options.debug = true;
  options.boot_pcrs = {
      {0, Pcr(0xa0)}, {1, Pcr(0xa1)}, {2, Pcr(0xa2)}, {3, Pcr(0xa3)}, {8, Pcr(0xa8)}};
  auto sim = MakeSimulator(std::move(options));
  for (uint16_t i : {0, 1, 2, 8}) {
    EXPECT_EQ(sim->DescribePcr(i)->value, Pcr(0)) << "PCR" << i;
  }
  EXPECT_EQ(sim->DescribePcr(3)->value, Pcr(0xa3));
  Bytes document = sim->Attestation({}).value();

  auto rejected = VerifyNow(document);
  ASSERT_FALSE(rejected);
  EXPECT_EQ(rejected.error().code(), Code::kPolicyViolation);

  TrustPolicy allow_debug;
  allow_debug.allow_debug = true;
  auto verified = VerifyNow(document, allow_debug);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_TRUE(verified->debug());
  for (uint32_t i : {0U, 1U, 2U, 8U}) {
    EXPECT_EQ(verified->document().pcrs.at(i), Pcr(0)) << "PCR" << i;
  }
  EXPECT_EQ(verified->document().pcrs.at(3), Pcr(0xa3));
}

TEST_F(SimulatorTest, ExtendedPcrsAboveFifteenAreNotInDocuments) {
  auto sim = MakeSimulator();
  ASSERT_TRUE(sim->ExtendPcr(16, AsBytes("x")));
  auto verified = VerifyNow(sim->Attestation({}).value());
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(verified->document().pcrs.size(), 16U);
}

// --- Byte compatibility with AWS's NSM ---

TEST_F(SimulatorTest, DocumentIsUntagged) {
  auto sim = MakeSimulator();
  Bytes document = sim->Attestation({}).value();
  // An untagged definite array of four: major type 4, count 4.
  ASSERT_FALSE(document.empty());
  EXPECT_EQ(document[0], 0x84);
}

TEST_F(SimulatorTest, ProtectedHeaderIsExactlyEs384) {
  auto sim = MakeSimulator();
  cbor::Value::Array parts = Parts(sim->Attestation({}).value());
  ASSERT_EQ(parts.size(), 4U);
  EXPECT_EQ(parts[0].as_bytes(), (Bytes{0xa1, 0x01, 0x38, 0x22}));  // {1: -35}.
}

TEST_F(SimulatorTest, UnprotectedHeaderIsEmptyMap) {
  auto sim = MakeSimulator();
  cbor::Value::Array parts = Parts(sim->Attestation({}).value());
  ASSERT_TRUE(parts[1].is_map());
  EXPECT_TRUE(parts[1].as_map().empty());
}

TEST_F(SimulatorTest, SignatureIs96Bytes) {
  auto sim = MakeSimulator();
  cbor::Value::Array parts = Parts(sim->Attestation({}).value());
  ASSERT_TRUE(parts[3].is_bytes());
  EXPECT_EQ(parts[3].as_bytes().size(), 96U);
}

TEST_F(SimulatorTest, PayloadKeysAreInAwsOrder) {
  auto sim = MakeSimulator();
  cbor::Value payload = Payload(sim->Attestation({}).value());
  ASSERT_TRUE(payload.is_map());
  std::vector<std::string> keys;
  for (const auto& [key, value] : payload.as_map()) {
    ASSERT_TRUE(key.is_text());
    keys.push_back(key.as_text());
  }
  std::vector<std::string> want = {"module_id", "digest",     "timestamp", "pcrs", "certificate",
                                   "cabundle",  "public_key", "user_data", "nonce"};
  EXPECT_EQ(keys, want);
}

TEST_F(SimulatorTest, PayloadHasSixteenPcrsOf48Bytes) {
  auto sim = MakeSimulator();
  cbor::Value payload = Payload(sim->Attestation({}).value());
  const cbor::Value* pcrs = payload.Find("pcrs");
  ASSERT_NE(pcrs, nullptr);
  ASSERT_TRUE(pcrs->is_map());
  ASSERT_EQ(pcrs->as_map().size(), 16U);
  uint64_t want_index = 0;
  for (const auto& [index, value] : pcrs->as_map()) {
    EXPECT_EQ(index.as_uint(), want_index++);
    EXPECT_EQ(value.as_bytes().size(), 48U);
  }
}

TEST_F(SimulatorTest, CabundleHasFourCertificatesRootFirst) {
  auto sim = MakeSimulator();
  Bytes document = sim->Attestation({}).value();
  cbor::Value payload = Payload(document);
  const cbor::Value* cabundle = payload.Find("cabundle");
  ASSERT_NE(cabundle, nullptr);
  ASSERT_EQ(cabundle->as_array().size(), 4U);
  EXPECT_EQ(cabundle->as_array()[0].as_bytes(), ca_->root().der());
  // Every certificate in the chain, the leaf too, is P-384.
  std::vector<Bytes> ders;
  for (const cbor::Value& der : cabundle->as_array()) {
    ders.push_back(der.as_bytes());
  }
  ders.push_back(payload.Find("certificate")->as_bytes());
  for (const Bytes& der : ders) {
    auto cert = crypto::Certificate::FromDer(der);
    ASSERT_TRUE(cert);
    EXPECT_EQ(cert->public_key()->algorithm(), crypto::SignatureAlgorithm::kEcdsaP384Sha384);
  }
}

TEST_F(SimulatorTest, AbsentOptionalFieldsAreNull) {
  auto sim = MakeSimulator();
  cbor::Value payload = Payload(sim->Attestation({}).value());
  for (const char* name : {"public_key", "user_data", "nonce"}) {
    const cbor::Value* value = payload.Find(name);
    ASSERT_NE(value, nullptr) << name;
    EXPECT_TRUE(value->is_null()) << name;
  }
}

TEST_F(SimulatorTest, IndefinitePayloadMapVerifies) {
  SimulatorOptions options;
  options.encoding = PayloadMapEncoding::kIndefinite;
  auto sim = MakeSimulator(std::move(options));
  Bytes document = sim->Attestation({}).value();
  cbor::Value::Array parts = Parts(document);
  ASSERT_FALSE(parts[2].as_bytes().empty());
  EXPECT_EQ(parts[2].as_bytes().front(), 0xbf);
  EXPECT_EQ(parts[2].as_bytes().back(), 0xff);
  auto verified = VerifyNow(document);
  EXPECT_TRUE(verified) << verified.error().message();
}

TEST_F(SimulatorTest, DefinitePayloadMapVerifies) {
  SimulatorOptions options;
  options.encoding = PayloadMapEncoding::kDefinite;
  auto sim = MakeSimulator(std::move(options));
  Bytes document = sim->Attestation({}).value();
  EXPECT_EQ(Parts(document)[2].as_bytes().front(), 0xa9);
  auto verified = VerifyNow(document);
  EXPECT_TRUE(verified) << verified.error().message();
}

TEST_F(SimulatorTest, DefaultEncodingIsIndefinite) {
  auto sim = MakeSimulator();
  EXPECT_EQ(Parts(sim->Attestation({}).value())[2].as_bytes().front(), 0xbf);
}

// --- Clock and certificate lifetimes ---

TEST_F(SimulatorTest, DocumentVerifiesAtItsTimestamp) {
  auto sim = MakeSimulator();
  Bytes document = sim->Attestation({}).value();
  clock_.Advance(hours(1));
  auto parsed = attestation::ParseUnverified(document).value();
  auto verified =
      TrustingSimulator().Verify(document, FromUnixMillis(parsed.document.timestamp_ms), {});
  EXPECT_TRUE(verified) << verified.error().message();
}

TEST_F(SimulatorTest, DocumentFailsAsExpiredFourHoursLater) {
  auto sim = MakeSimulator();
  Bytes document = sim->Attestation({}).value();
  auto result = TrustingSimulator().Verify(document, clock_.Now() + hours(4), {});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), Code::kExpired) << result.error().message();
}

TEST_F(SimulatorTest, LeafIsRenewedBeforeItExpires) {
  auto sim = MakeSimulator();
  Bytes first = sim->Attestation({}).value();
  clock_.Advance(hours(2) + minutes(30));
  Bytes second = sim->Attestation({}).value();
  auto verified = VerifyNow(second);
  ASSERT_TRUE(verified) << verified.error().message();
  auto first_doc = attestation::ParseUnverified(first).value();
  EXPECT_NE(verified->document().certificate, first_doc.document.certificate);
  auto leaf = crypto::Certificate::FromDer(verified->document().certificate).value();
  EXPECT_GE(leaf.not_after(), clock_.Now() + hours(2));
  // The intermediates, 30 days long, are kept.
  EXPECT_EQ(verified->document().cabundle, first_doc.document.cabundle);
}

TEST_F(SimulatorTest, LeafIsKeptWhileFresh) {
  auto sim = MakeSimulator();
  Bytes first = sim->Attestation({}).value();
  clock_.Advance(minutes(30));
  Bytes second = sim->Attestation({}).value();
  EXPECT_EQ(attestation::ParseUnverified(first)->document.certificate,
            attestation::ParseUnverified(second)->document.certificate);
}

TEST_F(SimulatorTest, IntermediatesAreRenewedBeforeTheyExpire) {
  auto sim = MakeSimulator();
  Bytes first = sim->Attestation({}).value();
  clock_.Advance(hours(24 * 29 + 12));
  Bytes second = sim->Attestation({}).value();
  auto verified = VerifyNow(second);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_NE(verified->document().cabundle[1],
            attestation::ParseUnverified(first)->document.cabundle[1]);
}

}  // namespace
}  // namespace enclavia::host
