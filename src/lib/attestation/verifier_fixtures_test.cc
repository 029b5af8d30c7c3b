// SPDX-License-Identifier: Apache-2.0
// The verifier against the six real AWS Nitro documents in the shared fixtures: each verifies at
// its own timestamp with exactly the fields expected.json lists, fails as expired now, and fails
// after any single-byte change.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "lib/attestation/aws_root.h"
#include "lib/attestation/verifier.h"
#include "lib/base/encoding.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/x509.h"
#include "testing/fixtures.h"

namespace enclavia::attestation {
namespace {

struct Fixture {
  std::string file;
  Bytes bytes;
  nlohmann::json expected;
};

std::vector<Fixture> LoadFixtures() {
  Bytes json = testing::ReadFixture("nitro/expected.json");
  auto expected = nlohmann::json::parse(AsString(json));
  std::vector<Fixture> out;
  for (const auto& doc : expected["documents"]) {
    std::string file = doc["file"];
    Bytes raw = testing::ReadFixture("nitro/" + file);
    if (file.ends_with(".b64")) {
      auto decoded = Base64Decode(AsString(raw));
      EXPECT_TRUE(decoded) << file;
      raw = std::move(decoded).value();
    }
    out.push_back({file, std::move(raw), doc});
  }
  return out;
}

std::optional<Bytes> OptionalHex(const nlohmann::json& j) {
  if (j.is_null()) {
    return std::nullopt;
  }
  return *HexDecode(j.get<std::string>());
}

TrustPolicy Permissive() {
  TrustPolicy p;
  p.allow_debug = true;
  return p;
}

SystemTime VerifyAt(const Fixture& f) { return FromUnixMillis(f.expected["verify_at_ms"]); }

TEST(AwsRootTest, BuiltInRootHasThePublishedFingerprint) {
  auto root = crypto::Certificate::FromPem(kAwsNitroRootG1Pem);
  ASSERT_TRUE(root);
  EXPECT_EQ(HexEncode(root->fingerprint_sha256()), kAwsNitroRootG1Sha256Hex);
  EXPECT_EQ(root->subject(), "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US");
}

TEST(AwsRootTest, BuiltInRootEqualsTheFixtureRoot) {
  SKIP_WITHOUT_FIXTURES();
  Bytes pem = testing::ReadFixture("nitro/AWS_NitroEnclaves_Root-G1.pem");
  auto fixture = crypto::Certificate::FromPem(AsString(pem));
  auto built_in = crypto::Certificate::FromPem(kAwsNitroRootG1Pem);
  ASSERT_TRUE(fixture && built_in);
  EXPECT_EQ(fixture->der(), built_in->der());
}

TEST(RealDocumentTest, EveryDocumentVerifiesAtItsOwnTimestamp) {
  SKIP_WITHOUT_FIXTURES();
  auto fixtures = LoadFixtures();
  ASSERT_EQ(fixtures.size(), 6u);
  auto verifier = Verifier::Create(AwsRoot::kTrust);
  ASSERT_TRUE(verifier);
  for (const Fixture& f : fixtures) {
    SCOPED_TRACE(f.file);
    EXPECT_EQ(HexEncode(crypto::Sha256(f.bytes)), f.expected["cose_sha256"]);
    auto v = verifier->Verify(f.bytes, VerifyAt(f), Permissive());
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ(HexEncode(v->root_fingerprint()), kAwsNitroRootG1Sha256Hex);
  }
}

TEST(RealDocumentTest, ParsedFieldsMatchExpectedJson) {
  SKIP_WITHOUT_FIXTURES();
  auto verifier = Verifier::Create(AwsRoot::kTrust);
  ASSERT_TRUE(verifier);
  for (const Fixture& f : LoadFixtures()) {
    SCOPED_TRACE(f.file);
    auto v = verifier->Verify(f.bytes, VerifyAt(f), Permissive());
    ASSERT_TRUE(v) << v.error().message();
    const AttestationDocument& doc = v->document();
    EXPECT_EQ(doc.module_id, f.expected["module_id"]);
    EXPECT_EQ(doc.digest, f.expected["digest"]);
    EXPECT_EQ(doc.timestamp_ms, f.expected["timestamp_ms"].get<uint64_t>());
    ASSERT_EQ(doc.pcrs.size(), f.expected["pcrs"].size());
    for (const auto& [index, hex] : f.expected["pcrs"].items()) {
      auto it = doc.pcrs.find(static_cast<uint32_t>(std::stoul(index)));
      ASSERT_NE(it, doc.pcrs.end()) << "PCR" << index;
      EXPECT_EQ(HexEncode(it->second), hex.get<std::string>()) << "PCR" << index;
    }
    EXPECT_EQ(doc.public_key, OptionalHex(f.expected["public_key_hex"]));
    EXPECT_EQ(doc.user_data, OptionalHex(f.expected["user_data_hex"]));
    EXPECT_EQ(doc.nonce, OptionalHex(f.expected["nonce_hex"]));
    const auto& subjects = f.expected["cabundle_subjects_root_first"];
    ASSERT_EQ(doc.cabundle.size(), subjects.size());
    for (size_t i = 0; i < subjects.size(); ++i) {
      auto cert = crypto::Certificate::FromDer(doc.cabundle[i]);
      ASSERT_TRUE(cert);
      EXPECT_EQ(cert->subject(), subjects[i].get<std::string>());
    }
    auto leaf = crypto::Certificate::FromDer(doc.certificate);
    ASSERT_TRUE(leaf);
    EXPECT_EQ(leaf->subject(), f.expected["leaf_subject"].get<std::string>());
    EXPECT_EQ(v->debug(), IsDebugMode(doc));
    auto parsed = ParseUnverified(f.bytes);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->tagged, f.expected["cose_tagged"].get<bool>());
  }
}

TEST(RealDocumentTest, EveryDocumentFailsAsExpiredNow) {
  SKIP_WITHOUT_FIXTURES();
  auto verifier = Verifier::Create(AwsRoot::kTrust);
  ASSERT_TRUE(verifier);
  for (const Fixture& f : LoadFixtures()) {
    SCOPED_TRACE(f.file);
    auto v = verifier->Verify(f.bytes, std::chrono::system_clock::now(), Permissive());
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code(), Code::kExpired) << v.error().message();
    EXPECT_NE(v.error().message().find("expired"), std::string::npos) << v.error().message();
  }
}

TEST(RealDocumentTest, EveryDocumentFailsOneMinuteBeforeTheChainIsValid) {
  SKIP_WITHOUT_FIXTURES();
  auto verifier = Verifier::Create(AwsRoot::kTrust);
  ASSERT_TRUE(verifier);
  for (const Fixture& f : LoadFixtures()) {
    SCOPED_TRACE(f.file);
    auto from = ParseRfc3339(f.expected["chain_valid_from_utc"].get<std::string>());
    ASSERT_TRUE(from);
    auto v = verifier->Verify(f.bytes, *from - std::chrono::minutes(1), Permissive());
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code(), Code::kExpired) << v.error().message();
  }
}

TEST(RealDocumentTest, DebugDocumentsNeedAllowDebug) {
  SKIP_WITHOUT_FIXTURES();
  auto verifier = Verifier::Create(AwsRoot::kTrust);
  ASSERT_TRUE(verifier);
  int debug_docs = 0;
  for (const Fixture& f : LoadFixtures()) {
    SCOPED_TRACE(f.file);
    auto v = verifier->Verify(f.bytes, VerifyAt(f), TrustPolicy{});
    bool debug = f.expected["pcrs"]["0"].get<std::string>() == std::string(96, '0');
    if (debug) {
      ++debug_docs;
      ASSERT_FALSE(v);
      EXPECT_EQ(v.error().code(), Code::kPolicyViolation);
    } else {
      EXPECT_TRUE(v) << v.error().message();
    }
  }
  EXPECT_EQ(debug_docs, 2);
}

TEST(RealDocumentTest, PolicyChecksUseTheRealValues) {
  SKIP_WITHOUT_FIXTURES();
  auto verifier = Verifier::Create(AwsRoot::kTrust);
  ASSERT_TRUE(verifier);
  for (const Fixture& f : LoadFixtures()) {
    SCOPED_TRACE(f.file);
    TrustPolicy policy = Permissive();
    for (uint32_t i : {0u, 1u, 2u}) {
      policy.expected_pcrs[i] = *HexDecode(f.expected["pcrs"][std::to_string(i)].get<std::string>());
    }
    policy.expected_nonce = OptionalHex(f.expected["nonce_hex"]);
    policy.expected_public_key = OptionalHex(f.expected["public_key_hex"]);
    policy.max_age = std::chrono::minutes(5);
    EXPECT_TRUE(verifier->Verify(f.bytes, VerifyAt(f), policy));

    TrustPolicy wrong_pcr = policy;
    wrong_pcr.expected_pcrs[1][0] ^= 1;
    auto v = verifier->Verify(f.bytes, VerifyAt(f), wrong_pcr);
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().message(), "attestation: policy: PCR1 mismatch");

    TrustPolicy too_old = policy;
    auto late = VerifyAt(f) + std::chrono::minutes(6);
    v = verifier->Verify(f.bytes, late, too_old);
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code(), Code::kExpired);
  }
}

TEST(RealDocumentTest, FailsUnderAForeignRootOnly) {
  SKIP_WITHOUT_FIXTURES();
  auto key = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEcdsaP384Sha384);
  crypto::CertificateSpec spec;
  spec.subject = {{"CN", "not aws"}};
  spec.not_before = FromUnixMillis(0);
  spec.not_after = std::chrono::system_clock::now() + std::chrono::hours(24);
  spec.is_ca = true;
  auto other_root = crypto::IssueCertificate(spec, key.public_key(), key, nullptr);
  ASSERT_TRUE(other_root);
  auto verifier = Verifier::Create(AwsRoot::kDoNotTrust, {*other_root});
  ASSERT_TRUE(verifier);
  for (const Fixture& f : LoadFixtures()) {
    auto v = verifier->Verify(f.bytes, VerifyAt(f), Permissive());
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code(), Code::kUntrusted) << v.error().message();
  }
}

TEST(RealDocumentTest, CachedCertificatesNeverChangeAVerdict) {
  SKIP_WITHOUT_FIXTURES();
  auto fixtures = LoadFixtures();
  for (size_t entries : {size_t{0}, size_t{1}, size_t{64}}) {
    SCOPED_TRACE("cache entries " + std::to_string(entries));
    auto verifier = Verifier::Create(AwsRoot::kTrust, {}, VerifierOptions{entries});
    ASSERT_TRUE(verifier);
    for (int round = 0; round < 2; ++round) {
      for (const Fixture& f : fixtures) {
        SCOPED_TRACE(f.file);
        EXPECT_TRUE(verifier->Verify(f.bytes, VerifyAt(f), Permissive()));
        // A cached certificate is still checked against the time and its issuer every time.
        auto late = verifier->Verify(f.bytes, std::chrono::system_clock::now(), Permissive());
        ASSERT_FALSE(late);
        EXPECT_EQ(late.error().code(), Code::kExpired);
        Bytes flipped = f.bytes;
        flipped[flipped.size() - 10] ^= 1;
        EXPECT_FALSE(verifier->Verify(flipped, VerifyAt(f), Permissive()));
      }
    }
  }
}

// Regions of a document that single-byte flips must cover: the envelope, every payload field,
// the certificates and the signature. Each is located by searching for its bytes.
struct Region {
  std::string name;
  size_t begin;
  size_t end;
};

std::vector<Region> FindRegions(const Bytes& doc, const AttestationDocument& parsed) {
  std::vector<Region> regions;
  auto find = [&](const std::string& name, ByteSpan needle) {
    auto it = std::search(doc.begin(), doc.end(), needle.begin(), needle.end());
    if (it != doc.end() && !needle.empty()) {
      auto begin = static_cast<size_t>(it - doc.begin());
      regions.push_back({name, begin, begin + needle.size()});
    }
  };
  regions.push_back({"cose header", 0, 8});
  for (const char* key : {"module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle",
                          "public_key", "user_data", "nonce"}) {
    find(std::string("key ") + key, AsBytes(key));
  }
  find("module_id value", AsBytes(parsed.module_id));
  for (const auto& [index, value] : parsed.pcrs) {
    if (index <= 4) {
      find("PCR" + std::to_string(index), value);
    }
  }
  find("certificate", parsed.certificate);
  for (size_t i = 0; i < parsed.cabundle.size(); ++i) {
    find("cabundle[" + std::to_string(i) + "]", parsed.cabundle[i]);
  }
  for (const auto* field : {&parsed.public_key, &parsed.user_data, &parsed.nonce}) {
    if (*field && !(*field)->empty()) {
      find("optional field", **field);
    }
  }
  regions.push_back({"signature", doc.size() - 96, doc.size()});
  return regions;
}

TEST(RealDocumentTest, EverySingleByteFlipFails) {
  SKIP_WITHOUT_FIXTURES();
  auto verifier = Verifier::Create(AwsRoot::kTrust);
  ASSERT_TRUE(verifier);
  for (const Fixture& f : LoadFixtures()) {
    SCOPED_TRACE(f.file);
    auto parsed = ParseUnverified(f.bytes);
    ASSERT_TRUE(parsed);
    std::vector<Region> regions = FindRegions(f.bytes, parsed->document);
    // Positions: evenly spread over the whole document (at least 1,000), plus the first and last
    // byte and the middle of every region.
    std::vector<size_t> positions;
    size_t n = f.bytes.size();
    size_t count = std::max<size_t>(1000, n / 4);
    for (size_t k = 0; k < count; ++k) {
      positions.push_back(k * n / count);
    }
    for (const Region& r : regions) {
      positions.push_back(r.begin);
      positions.push_back((r.begin + r.end) / 2);
      positions.push_back(r.end - 1);
    }
    std::sort(positions.begin(), positions.end());
    positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
    ASSERT_GE(positions.size(), 1000u);
    std::vector<int> hits(regions.size(), 0);
    for (size_t pos : positions) {
      Bytes mutated = f.bytes;
      // Vary which bit flips so that low and high bits of every byte kind are exercised.
      mutated[pos] ^= static_cast<uint8_t>(1u << (pos % 8));
      auto v = verifier->Verify(mutated, VerifyAt(f), Permissive());
      ASSERT_FALSE(v) << "flip at " << pos << " still verifies";
      EXPECT_FALSE(v.error().message().empty());
      for (size_t r = 0; r < regions.size(); ++r) {
        if (pos >= regions[r].begin && pos < regions[r].end) {
          ++hits[r];
        }
      }
    }
    for (size_t r = 0; r < regions.size(); ++r) {
      EXPECT_GT(hits[r], 0) << "no flip in " << regions[r].name;
    }
  }
}

TEST(RealDocumentTest, EveryTruncationFails) {
  SKIP_WITHOUT_FIXTURES();
  auto verifier = Verifier::Create(AwsRoot::kTrust);
  ASSERT_TRUE(verifier);
  for (const Fixture& f : LoadFixtures()) {
    SCOPED_TRACE(f.file);
    for (size_t len = 0; len < f.bytes.size(); len += 7) {
      auto v = verifier->Verify(ByteSpan(f.bytes).first(len), VerifyAt(f), Permissive());
      ASSERT_FALSE(v) << "truncated to " << len;
    }
    Bytes longer = f.bytes;
    longer.push_back(0);
    auto v = verifier->Verify(longer, VerifyAt(f), Permissive());
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code(), Code::kMalformed);
  }
}

}  // namespace
}  // namespace enclavia::attestation
