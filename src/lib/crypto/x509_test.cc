// SPDX-License-Identifier: Apache-2.0
#include "lib/crypto/x509.h"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lib/base/encoding.h"
#include "testing/fixtures.h"

namespace enclavia::crypto {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;

// A fixed instant (2030-03-17T17:46:40Z) inside every validity window of the test chain.
SystemTime T0() { return FromUnixMillis(1'900'000'000'000); }

CertificateSpec Spec(const std::string& cn, SystemTime not_before, SystemTime not_after, bool is_ca,
                     std::optional<int> path_length = std::nullopt) {
  CertificateSpec spec;
  spec.subject = {{"C", "US"}, {"O", "Enclavia"}, {"CN", cn}};
  spec.not_before = not_before;
  spec.not_after = not_after;
  spec.is_ca = is_ca;
  spec.path_length = path_length;
  return spec;
}

// Chain is root (P-384) -> intermediate 1 (P-384) -> intermediate 2 (P-256) -> leaf (P-384), so
// both ECDSA signing digests are exercised.
struct Chain {
  PrivateKey root_key;
  PrivateKey i1_key;
  PrivateKey i2_key;
  PrivateKey leaf_key;
  Certificate root;
  Certificate i1;
  Certificate i2;
  Certificate leaf;
};

std::vector<Certificate> PathOf(const Chain& chain) {
  return {chain.root, chain.i1, chain.i2, chain.leaf};
}
std::vector<Certificate> RootsOf(const Chain& chain) { return {chain.root}; }

Chain BuildChain() {
  PrivateKey root_key = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP384Sha384);
  PrivateKey i1_key = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP384Sha384);
  PrivateKey i2_key = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP256Sha256);
  PrivateKey leaf_key = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP384Sha384);
  Certificate root = IssueCertificate(Spec("test root", T0() - days(10), T0() + days(3650), true),
                                      root_key.public_key(), root_key, nullptr)
                         .value();
  Certificate i1 = IssueCertificate(Spec("intermediate 1", T0() - days(5), T0() + days(365), true),
                                    i1_key.public_key(), root_key, &root)
                       .value();
  Certificate i2 = IssueCertificate(Spec("intermediate 2", T0() - days(2), T0() + days(30), true),
                                    i2_key.public_key(), i1_key, &i1)
                       .value();
  Certificate leaf = IssueCertificate(Spec("leaf", T0() - hours(1), T0() + hours(3), false),
                                      leaf_key.public_key(), i2_key, &i2)
                         .value();
  return Chain{std::move(root_key),
               std::move(i1_key),
               std::move(i2_key),
               std::move(leaf_key),
               root,
               i1,
               i2,
               leaf};
}

void ExpectError(const Result<void>& result, Code code, std::string_view fragment) {
  ASSERT_FALSE(result.has_value()) << "expected failure containing: " << fragment;
  EXPECT_EQ(result.error().code(), code) << result.error().message();
  EXPECT_NE(result.error().message().find(fragment), std::string::npos) << result.error().message();
}

TEST(VerifyPathTest, AcceptsFourLevelChain) {
  const Chain chain = BuildChain();
  auto result = VerifyPath(PathOf(chain), RootsOf(chain), T0());
  EXPECT_TRUE(result.has_value()) << result.error().message();
}

TEST(VerifyPathTest, ValidityBoundsAreInclusive) {
  const Chain chain = BuildChain();
  const std::vector<Certificate> path = PathOf(chain);
  const SystemTime not_before = chain.leaf.not_before();
  const SystemTime not_after = chain.leaf.not_after();
  EXPECT_EQ(not_before, T0() - hours(1));
  EXPECT_EQ(not_after, T0() + hours(3));
  EXPECT_TRUE(VerifyPath(path, RootsOf(chain), not_before).has_value());
  EXPECT_TRUE(VerifyPath(path, RootsOf(chain), not_after).has_value());
  ExpectError(VerifyPath(path, RootsOf(chain), not_after + milliseconds(1)), Code::kExpired,
              "certificate 4 of 4 (CN=leaf): expired");
  ExpectError(VerifyPath(path, RootsOf(chain), not_before - milliseconds(1)), Code::kExpired,
              "certificate 4 of 4 (CN=leaf): not yet valid");
}

TEST(VerifyPathTest, RejectsExpiredLeaf) {
  const Chain chain = BuildChain();
  ExpectError(VerifyPath(PathOf(chain), RootsOf(chain), T0() + hours(4)), Code::kExpired,
              "certificate 4 of 4 (CN=leaf): expired");
}

TEST(VerifyPathTest, RejectsNotYetValidIntermediate) {
  const Chain chain = BuildChain();
  // Intermediate 2 becomes valid a minute after T0; the leaf below it is already valid at T0.
  Certificate late = IssueCertificate(Spec("late intermediate", T0() + std::chrono::minutes(1),
                                           T0() + days(30), true),
                                      chain.i2_key.public_key(), chain.i1_key, &chain.i1)
                         .value();
  Certificate leaf = IssueCertificate(Spec("leaf", T0() - hours(1), T0() + hours(3), false),
                                      chain.leaf_key.public_key(), chain.i2_key, &late)
                         .value();
  const std::vector<Certificate> path = {chain.root, chain.i1, late, leaf};
  ExpectError(VerifyPath(path, RootsOf(chain), T0()), Code::kExpired,
              "certificate 3 of 4 (CN=late intermediate): not yet valid");
  EXPECT_TRUE(VerifyPath(path, RootsOf(chain), T0() + hours(1)).has_value());
}

TEST(VerifyPathTest, RejectsOutOfOrderPath) {
  const Chain chain = BuildChain();
  const std::vector<Certificate> path = {chain.root, chain.i2, chain.i1, chain.leaf};
  ExpectError(VerifyPath(path, RootsOf(chain), T0()), Code::kPolicyViolation,
              "certificate 2 of 4 (CN=intermediate 2)");
}

TEST(VerifyPathTest, RejectsRootNotInTrustedSet) {
  const Chain chain = BuildChain();
  const Chain other = BuildChain();
  ExpectError(VerifyPath(PathOf(chain), RootsOf(other), T0()), Code::kUntrusted,
              "certificate 1 of 4 (CN=test root): not a trusted root");
  ExpectError(VerifyPath(PathOf(chain), {}, T0()), Code::kUntrusted, "certificate 1 of 4");
  // A path whose first element is not the root at all.
  const std::vector<Certificate> headless = {chain.i1, chain.i2, chain.leaf};
  ExpectError(VerifyPath(headless, RootsOf(chain), T0()), Code::kUntrusted, "certificate 1 of 3");
  // Several trusted roots: the matching one is found.
  const std::vector<Certificate> roots = {other.root, chain.root};
  EXPECT_TRUE(VerifyPath(PathOf(chain), roots, T0()).has_value());
}

TEST(VerifyPathTest, RejectsWrongIssuerSignature) {
  const Chain chain = BuildChain();
  // Names and key identifiers say "issued by intermediate 2", but another key signed it.
  PrivateKey impostor = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP256Sha256);
  Certificate forged = IssueCertificate(Spec("leaf", T0() - hours(1), T0() + hours(3), false),
                                        chain.leaf_key.public_key(), impostor, &chain.i2)
                           .value();
  const std::vector<Certificate> path = {chain.root, chain.i1, chain.i2, forged};
  ExpectError(VerifyPath(path, RootsOf(chain), T0()), Code::kVerifyFailed, "certificate 4 of 4");
}

TEST(VerifyPathTest, RejectsLeafThatIsACa) {
  const Chain chain = BuildChain();
  Certificate ca_leaf = IssueCertificate(Spec("leaf", T0() - hours(1), T0() + hours(3), true),
                                         chain.leaf_key.public_key(), chain.i2_key, &chain.i2)
                            .value();
  const std::vector<Certificate> path = {chain.root, chain.i1, chain.i2, ca_leaf};
  ExpectError(VerifyPath(path, RootsOf(chain), T0()), Code::kPolicyViolation,
              "certificate 4 of 4 (CN=leaf): end-entity certificate is a CA");
}

TEST(VerifyPathTest, RejectsIntermediateWithoutCaBasicConstraints) {
  const Chain chain = BuildChain();
  Certificate not_ca = IssueCertificate(Spec("not a ca", T0() - days(2), T0() + days(30), false),
                                        chain.i2_key.public_key(), chain.i1_key, &chain.i1)
                           .value();
  Certificate leaf = IssueCertificate(Spec("leaf", T0() - hours(1), T0() + hours(3), false),
                                      chain.leaf_key.public_key(), chain.i2_key, &not_ca)
                         .value();
  const std::vector<Certificate> path = {chain.root, chain.i1, not_ca, leaf};
  ExpectError(VerifyPath(path, RootsOf(chain), T0()), Code::kPolicyViolation,
              "certificate 3 of 4 (CN=not a ca)");
}

TEST(VerifyPathTest, RejectsExtraCertificateAppended) {
  const Chain chain = BuildChain();
  // Another leaf from the same issuer appended: OpenSSL would happily verify it on its own.
  Certificate sibling = IssueCertificate(Spec("sibling", T0() - hours(1), T0() + hours(3), false),
                                         chain.leaf_key.public_key(), chain.i2_key, &chain.i2)
                            .value();
  std::vector<Certificate> path = PathOf(chain);
  path.push_back(sibling);
  ExpectError(VerifyPath(path, RootsOf(chain), T0()), Code::kPolicyViolation, "of 5");
  // The leaf repeated.
  path = PathOf(chain);
  path.push_back(chain.leaf);
  ExpectError(VerifyPath(path, RootsOf(chain), T0()), Code::kPolicyViolation, "of 5");
}

TEST(VerifyPathTest, RejectsPaddedPath) {
  const Chain chain = BuildChain();
  const Chain other = BuildChain();
  const std::vector<Certificate> path = {chain.root, chain.i1, other.i1, chain.i2, chain.leaf};
  ExpectError(VerifyPath(path, RootsOf(chain), T0()), Code::kPolicyViolation,
              "certificate 3 of 5 (CN=intermediate 1)");
  const std::vector<Certificate> duplicated = {chain.root, chain.i1, chain.i1, chain.i2,
                                               chain.leaf};
  ExpectError(VerifyPath(duplicated, RootsOf(chain), T0()), Code::kPolicyViolation,
              "certificate 3 of 5");
}

TEST(VerifyPathTest, RejectsMissingIntermediate) {
  const Chain chain = BuildChain();
  const std::vector<Certificate> path = {chain.root, chain.i2, chain.leaf};
  auto result = VerifyPath(path, RootsOf(chain), T0());
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), Code::kUntrusted) << result.error().message();
}

TEST(VerifyPathTest, EnforcesPathLengthConstraint) {
  PrivateKey root_key = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP384Sha384);
  PrivateKey mid_key = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP384Sha384);
  PrivateKey low_key = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP384Sha384);
  PrivateKey leaf_key = PrivateKey::Generate(SignatureAlgorithm::kEd25519);
  Certificate root = IssueCertificate(Spec("root", T0() - days(1), T0() + days(1), true, 1),
                                      root_key.public_key(), root_key, nullptr)
                         .value();
  Certificate mid = IssueCertificate(Spec("mid", T0() - days(1), T0() + days(1), true, 0),
                                     mid_key.public_key(), root_key, &root)
                        .value();
  Certificate low = IssueCertificate(Spec("low", T0() - days(1), T0() + days(1), true),
                                     low_key.public_key(), mid_key, &mid)
                        .value();
  Certificate leaf = IssueCertificate(Spec("leaf", T0() - days(1), T0() + days(1), false),
                                      leaf_key.public_key(), low_key, &low)
                         .value();
  const std::vector<Certificate> roots = {root};
  Certificate short_leaf = IssueCertificate(Spec("leaf", T0() - days(1), T0() + days(1), false),
                                            leaf_key.public_key(), mid_key, &mid)
                               .value();
  const std::vector<Certificate> ok_path = {root, mid, short_leaf};
  EXPECT_TRUE(VerifyPath(ok_path, roots, T0()).has_value());
  const std::vector<Certificate> long_path = {root, mid, low, leaf};
  auto result = VerifyPath(long_path, roots, T0());
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), Code::kPolicyViolation) << result.error().message();
}

TEST(VerifyPathTest, RejectsDegeneratePaths) {
  const Chain chain = BuildChain();
  EXPECT_EQ(VerifyPath({}, RootsOf(chain), T0()).error().code(), Code::kInvalidArgument);
  // The root alone: the end entity would be a CA.
  const std::vector<Certificate> root_only = {chain.root};
  EXPECT_EQ(VerifyPath(root_only, RootsOf(chain), T0()).error().code(), Code::kPolicyViolation);
}

TEST(IssueCertificateTest, SetsProfileExtensionsAndDigests) {
  const Chain chain = BuildChain();
  EXPECT_EQ(chain.root.subject(), "CN=test root,O=Enclavia,C=US");
  EXPECT_EQ(chain.root.issuer(), chain.root.subject());
  EXPECT_EQ(chain.i1.issuer(), chain.root.subject());
  EXPECT_EQ(chain.leaf.issuer(), "CN=intermediate 2,O=Enclavia,C=US");

  EXPECT_EQ(X509_get_version(chain.leaf.raw()), X509_VERSION_3);
  EXPECT_EQ(X509_get_signature_nid(chain.i1.raw()), NID_ecdsa_with_SHA384);    // Root is P-384.
  EXPECT_EQ(X509_get_signature_nid(chain.leaf.raw()), NID_ecdsa_with_SHA256);  // i2 is P-256.

  const uint32_t ca_flags = X509_get_extension_flags(chain.i1.raw());
  EXPECT_NE(ca_flags & EXFLAG_CA, 0U);
  EXPECT_NE(ca_flags & EXFLAG_BCONS_CRITICAL, 0U);
  EXPECT_EQ(X509_get_key_usage(chain.i1.raw()),
            static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  const uint32_t leaf_flags = X509_get_extension_flags(chain.leaf.raw());
  EXPECT_EQ(leaf_flags & EXFLAG_CA, 0U);
  EXPECT_NE(leaf_flags & EXFLAG_BCONS, 0U);
  EXPECT_EQ(X509_get_key_usage(chain.leaf.raw()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));

  // AKI of each certificate is its issuer's SKI; the root's AKI is its own SKI.
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(chain.leaf.raw()),
                                  X509_get0_subject_key_id(chain.i2.raw())),
            0);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(chain.root.raw()),
                                  X509_get0_subject_key_id(chain.root.raw())),
            0);

  // Random serial: positive, at most 16 bytes.
  const ASN1_INTEGER* serial = X509_get0_serialNumber(chain.leaf.raw());
  ossl::Ptr<BIGNUM> bn(ASN1_INTEGER_to_BN(serial, nullptr));
  ASSERT_NE(bn, nullptr);
  EXPECT_FALSE(BN_is_negative(bn.get()));
  EXPECT_LE(BN_num_bytes(bn.get()), 16);
  EXPECT_NE(HexEncode(chain.leaf.fingerprint_sha256()), HexEncode(chain.i2.fingerprint_sha256()));

  auto leaf_key = chain.leaf.public_key();
  ASSERT_TRUE(leaf_key.has_value());
  EXPECT_EQ(leaf_key->ToSpki(), chain.leaf_key.public_key().ToSpki());
}

TEST(IssueCertificateTest, SupportsEd25519IssuerAndExplicitSerial) {
  PrivateKey key = PrivateKey::Generate(SignatureAlgorithm::kEd25519);
  CertificateSpec spec = Spec("ed root", T0() - days(1), T0() + days(1), true);
  spec.serial = {0x01, 0x02, 0x03};
  Certificate root = IssueCertificate(spec, key.public_key(), key, nullptr).value();
  EXPECT_EQ(X509_get_signature_nid(root.raw()), NID_ED25519);
  ossl::Ptr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(root.raw()), nullptr));
  EXPECT_EQ(BN_get_word(bn.get()), 0x010203U);
  PrivateKey leaf_key = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP256Sha256);
  Certificate leaf = IssueCertificate(Spec("ed leaf", T0() - days(1), T0() + days(1), false),
                                      leaf_key.public_key(), key, &root)
                         .value();
  const std::vector<Certificate> path = {root, leaf};
  const std::vector<Certificate> roots = {root};
  EXPECT_TRUE(VerifyPath(path, roots, T0()).has_value());
}

TEST(IssueCertificateTest, RejectsBadSpecs) {
  PrivateKey key = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP256Sha256);
  PrivateKey other = PrivateKey::Generate(SignatureAlgorithm::kEcdsaP256Sha256);
  const CertificateSpec good = Spec("x", T0(), T0() + days(1), true);
  // Self-signed with a key that is not the subject's.
  EXPECT_EQ(IssueCertificate(good, key.public_key(), other, nullptr).error().code(),
            Code::kInvalidArgument);
  CertificateSpec backwards = good;
  backwards.not_after = T0() - days(1);
  EXPECT_EQ(IssueCertificate(backwards, key.public_key(), key, nullptr).error().code(),
            Code::kInvalidArgument);
  CertificateSpec pathlen_leaf = Spec("x", T0(), T0() + days(1), false, 0);
  EXPECT_EQ(IssueCertificate(pathlen_leaf, key.public_key(), key, nullptr).error().code(),
            Code::kInvalidArgument);
  CertificateSpec zero_serial = good;
  zero_serial.serial = {0, 0};
  EXPECT_EQ(IssueCertificate(zero_serial, key.public_key(), key, nullptr).error().code(),
            Code::kInvalidArgument);
  CertificateSpec bad_attribute = good;
  bad_attribute.subject = {{"NotAnAttribute", "x"}};
  EXPECT_EQ(IssueCertificate(bad_attribute, key.public_key(), key, nullptr).error().code(),
            Code::kInvalidArgument);
}

TEST(CertificateTest, PemAndDerRoundTrip) {
  const Chain chain = BuildChain();
  const std::string pem = chain.leaf.ToPem();
  auto parsed = Certificate::FromPem(pem);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->der(), chain.leaf.der());

  auto all = Certificate::AllFromPem("junk before\n" + chain.root.ToPem() + chain.i1.ToPem() +
                                     chain.leaf.ToPem());
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 3U);
  EXPECT_EQ((*all)[0].der(), chain.root.der());
  EXPECT_EQ((*all)[2].der(), chain.leaf.der());

  Certificate copy = chain.leaf;
  copy = chain.root;
  EXPECT_EQ(copy.der(), chain.root.der());
}

TEST(CertificateTest, RejectsMalformedInput) {
  const Chain chain = BuildChain();
  const Bytes& der = chain.leaf.der();
  const Bytes trailing = Concat({der, Bytes{0}});
  EXPECT_EQ(Certificate::FromDer(trailing).error().code(), Code::kMalformed);
  const ByteSpan truncated = ByteSpan(der).first(der.size() - 10);
  EXPECT_EQ(Certificate::FromDer(truncated).error().code(), Code::kMalformed);
  EXPECT_EQ(Certificate::FromDer({}).error().code(), Code::kMalformed);
  EXPECT_EQ(Certificate::FromPem("no pem here").error().code(), Code::kMalformed);
  EXPECT_EQ(Certificate::AllFromPem("").error().code(), Code::kMalformed);
  EXPECT_EQ(
      Certificate::AllFromPem(chain.root.ToPem() +
                              "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
          .error()
          .code(),
      Code::kMalformed);
}

// Real AWS Nitro chains. The documents are COSE_Sign1/CBOR, which this module does not decode:
// every certificate in them is a CBOR byte string with a two-byte length (0x59 hi lo) holding a
// DER SEQUENCE with a two-byte length (0x30 0x82 hi lo), so a scan finds them. The leaf
// ("certificate") comes first, then "cabundle" root first.
std::vector<Certificate> ScanCertificates(ByteSpan doc) {
  std::vector<Certificate> out;
  size_t i = 0;
  while (i + 7 <= doc.size()) {
    if (doc[i] == 0x59 && doc[i + 3] == 0x30 && doc[i + 4] == 0x82) {
      const size_t cbor_len = static_cast<size_t>(doc[i + 1]) << 8 | doc[i + 2];
      const size_t der_len = 4 + (static_cast<size_t>(doc[i + 5]) << 8 | doc[i + 6]);
      if (cbor_len == der_len && i + 3 + cbor_len <= doc.size()) {
        auto cert = Certificate::FromDer(doc.subspan(i + 3, cbor_len));
        if (cert.has_value()) {
          out.push_back(*cert);
          i += 3 + cbor_len;
          continue;
        }
      }
    }
    ++i;
  }
  return out;
}

struct NitroDocument {
  std::string file;
  std::vector<Certificate> path;  // Root first, leaf last.
  SystemTime verify_at;
  nlohmann::json expected;
};

std::vector<NitroDocument> LoadNitroDocuments() {
  const nlohmann::json expected =
      nlohmann::json::parse(AsString(testing::ReadFixture("nitro/expected.json")));
  std::vector<NitroDocument> docs;
  for (const auto& doc : expected["documents"]) {
    const std::string file = doc["file"].get<std::string>();
    Bytes raw = testing::ReadFixture("nitro/" + file);
    if (file.ends_with(".b64")) {
      raw = Base64Decode(AsString(raw)).value();
    }
    std::vector<Certificate> found = ScanCertificates(raw);
    if (found.size() < 2) {
      ADD_FAILURE() << file << ": found " << found.size() << " certificates";
      continue;
    }
    std::vector<Certificate> path(found.begin() + 1, found.end());
    path.push_back(found[0]);
    docs.push_back(
        {file, std::move(path), FromUnixMillis(doc["verify_at_ms"].get<uint64_t>()), doc});
  }
  return docs;
}

Certificate AwsRoot() {
  return Certificate::FromPem(AsString(testing::ReadFixture("nitro/AWS_NitroEnclaves_Root-G1.pem")))
      .value();
}

// With X509_V_FLAG_X509_STRICT these chains fail ("Missing Authority Key Identifier": the last
// intermediate and the leaf have no AKI), which is why VerifyPath leaves STRICT off.
TEST(NitroChainTest, RealAwsChainsVerifyAtDocumentTime) {
  SKIP_WITHOUT_FIXTURES();
  const Certificate aws_root = AwsRoot();
  EXPECT_EQ(HexEncode(aws_root.fingerprint_sha256()),
            "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b");
  EXPECT_EQ(aws_root.subject(), "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US");
  const std::vector<Certificate> roots = {aws_root};
  const std::vector<NitroDocument> docs = LoadNitroDocuments();
  ASSERT_EQ(docs.size(), 6U);
  for (const NitroDocument& doc : docs) {
    SCOPED_TRACE(doc.file);
    ASSERT_EQ(doc.path.size(), 5U);
    EXPECT_EQ(doc.path[0].der(), aws_root.der());
    EXPECT_EQ(doc.path.back().subject(), doc.expected["leaf_subject"].get<std::string>());
    const auto& subjects = doc.expected["cabundle_subjects_root_first"];
    ASSERT_EQ(subjects.size(), doc.path.size() - 1);
    for (size_t i = 0; i < subjects.size(); ++i) {
      EXPECT_EQ(doc.path[i].subject(), subjects[i].get<std::string>());
    }
    EXPECT_TRUE(doc.path.back().public_key().has_value());
    EXPECT_EQ(doc.path.back().public_key()->algorithm(), SignatureAlgorithm::kEcdsaP384Sha384);

    auto at_document_time = VerifyPath(doc.path, roots, doc.verify_at);
    EXPECT_TRUE(at_document_time.has_value()) << at_document_time.error().message();
    auto now = VerifyPath(doc.path, roots, std::chrono::system_clock::now());
    ASSERT_FALSE(now.has_value());
    EXPECT_EQ(now.error().code(), Code::kExpired) << now.error().message();
    EXPECT_NE(now.error().message().find("of 5"), std::string::npos);
  }
}

TEST(NitroChainTest, RealAwsChainsRejectTampering) {
  SKIP_WITHOUT_FIXTURES();
  const std::vector<Certificate> roots = {AwsRoot()};
  const std::vector<NitroDocument> docs = LoadNitroDocuments();
  ASSERT_FALSE(docs.empty());
  const NitroDocument& doc = docs[0];
  ASSERT_EQ(doc.path.size(), 5U);

  std::vector<Certificate> swapped = doc.path;
  std::swap(swapped[1], swapped[2]);
  EXPECT_FALSE(VerifyPath(swapped, roots, doc.verify_at).has_value());

  std::vector<Certificate> missing = doc.path;
  missing.erase(missing.begin() + 2);
  EXPECT_FALSE(VerifyPath(missing, roots, doc.verify_at).has_value());

  // A leaf from another document does not chain to this document's intermediates.
  std::vector<Certificate> mixed = doc.path;
  mixed.back() = docs[1].path.back();
  EXPECT_FALSE(VerifyPath(mixed, roots, doc.verify_at).has_value());

  const Chain local = BuildChain();
  auto untrusted = VerifyPath(doc.path, RootsOf(local), doc.verify_at);
  ASSERT_FALSE(untrusted.has_value());
  EXPECT_EQ(untrusted.error().code(), Code::kUntrusted);
}

}  // namespace
}  // namespace enclavia::crypto
