// SPDX-License-Identifier: Apache-2.0
// Negative tests of the attestation verifier: one broken document per check, built by the
// DocumentForge under its own PKI, each rejected with the documented Code and a message that
// names the check. The forge's well-formed document comes first, so that every rejection below is
// known to be caused by the one thing each test breaks.
#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "lib/attestation/document.h"
#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/cbor/cbor.h"
#include "lib/cose/sign1.h"
#include "testing/document_forge.h"

namespace enclavia::attestation {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using testing::CaBit;
using testing::CabundleEdit;
using testing::DocumentForge;
using testing::EnvelopeShape;
using testing::PkiOptions;
using testing::SigningKey;
using testing::SignOptions;
using testing::Validity;

DocumentForge MakeForge(const PkiOptions& options = {}) {
  return DocumentForge::Create(options).value();
}

Verifier TrustingForge(const DocumentForge& forge) {
  return Verifier::Create(AwsRoot::kDoNotTrust, {forge.root()}).value();
}

// VerifyAtNow verifies under a Verifier that trusts only the forge's root, at the forge's time.
Result<VerifiedAttestation> VerifyAtNow(const DocumentForge& forge, ByteSpan document,
                                        const TrustPolicy& policy = {}) {
  return TrustingForge(forge).Verify(document, forge.now(), policy);
}

// SignFields encodes payload map entries (possibly broken) and signs them with the leaf key.
Bytes SignFields(const DocumentForge& forge, const cbor::Value::Map& fields,
                 testing::MapHead head = testing::MapHead::kDefinite) {
  return forge.SignPayload(testing::EncodePayloadMap(fields, head)).value();
}

Bytes SignDefault(const DocumentForge& forge, const SignOptions& options = {}) {
  return forge.Sign(forge.DefaultDocument(), options).value();
}

// Rejected checks that verification failed with `code` and a message containing `needle`.
::testing::AssertionResult Rejected(const Result<VerifiedAttestation>& result, Code code,
                                    std::string_view needle) {
  if (result.has_value()) {
    return ::testing::AssertionFailure()
           << "verified; want " << CodeName(code) << " (" << needle << ")";
  }
  const Error& error = result.error();
  if (error.code() != code) {
    return ::testing::AssertionFailure() << "code " << CodeName(error.code()) << " (\""
                                         << error.message() << "\"); want " << CodeName(code);
  }
  if (error.message().find(needle) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "message \"" << error.message() << "\" does not mention \"" << needle << "\"";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult Verified(const Result<VerifiedAttestation>& result) {
  if (!result.has_value()) {
    return ::testing::AssertionFailure()
           << CodeName(result.error().code()) << ": " << result.error().message();
  }
  return ::testing::AssertionSuccess();
}

// Fields returns the default payload entries with `name` set to `value`.
cbor::Value::Map FieldsWith(const DocumentForge& forge, std::string_view name, cbor::Value value) {
  cbor::Value::Map fields = forge.DefaultPayloadFields();
  testing::SetField(fields, name, std::move(value));
  return fields;
}

cbor::Value::Map FieldsWithout(const DocumentForge& forge, std::string_view name) {
  cbor::Value::Map fields = forge.DefaultPayloadFields();
  testing::RemoveField(fields, name);
  return fields;
}

cbor::Value Filled(size_t size, uint8_t byte = 0x5a) {
  return cbor::Value::ByteString(Bytes(size, byte));
}

// PcrsWith returns the default 16 PCRs plus (or replacing) one entry.
cbor::Value PcrsWith(cbor::Value key, cbor::Value value) {
  cbor::Value::Map pcrs;
  for (uint64_t i = 0; i < 16; ++i) {
    pcrs.emplace_back(cbor::Value::Uint(i), Filled(kPcrSize, static_cast<uint8_t>(i + 1)));
  }
  pcrs.emplace_back(std::move(key), std::move(value));
  return cbor::Value::MakeMap(std::move(pcrs));
}

// --- The well-formed document verifies, in each accepted encoding. ---

TEST(VerifierTest, AcceptsForgedWellFormedDocument) {
  DocumentForge forge = MakeForge();
  auto verified = VerifyAtNow(forge, SignDefault(forge));
  ASSERT_TRUE(Verified(verified));
  EXPECT_EQ(verified->document(), forge.DefaultDocument());
  EXPECT_EQ(verified->root_fingerprint(), forge.root().fingerprint_sha256());
  EXPECT_FALSE(verified->debug());
}

TEST(VerifierTest, AcceptsTaggedDocument) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Verified(VerifyAtNow(forge, SignDefault(forge, {.tag = cose::kSign1Tag}))));
}

TEST(VerifierTest, AcceptsNullOptionalFields) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = forge.DefaultPayloadFields();
  for (const char* name : {"public_key", "user_data", "nonce"}) {
    testing::SetField(fields, name, cbor::Value::Null());
  }
  auto verified = VerifyAtNow(forge, SignFields(forge, fields));
  ASSERT_TRUE(Verified(verified));
  EXPECT_FALSE(verified->document().public_key.has_value());
  EXPECT_FALSE(verified->document().user_data.has_value());
  EXPECT_FALSE(verified->document().nonce.has_value());
}

TEST(VerifierTest, AcceptsAbsentOptionalFields) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = forge.DefaultPayloadFields();
  for (const char* name : {"public_key", "user_data", "nonce"}) {
    testing::RemoveField(fields, name);
  }
  EXPECT_TRUE(Verified(VerifyAtNow(forge, SignFields(forge, fields))));
}

TEST(VerifierTest, AcceptsOptionalFieldsOf1024Bytes) {
  DocumentForge forge = MakeForge();
  AttestationDocument doc = forge.DefaultDocument();
  doc.public_key = Bytes(kMaxOptionalFieldSize, 0x01);
  doc.user_data = Bytes(kMaxOptionalFieldSize, 0x02);
  doc.nonce = Bytes(kMaxOptionalFieldSize, 0x03);
  auto verified = VerifyAtNow(forge, forge.Sign(doc).value());
  ASSERT_TRUE(Verified(verified));
  EXPECT_EQ(verified->document(), doc);
}

TEST(VerifierTest, AcceptsIndefiniteLengthPayloadMap) {
  DocumentForge forge = MakeForge();
  Bytes document = forge.Sign(forge.DefaultDocument(), {}, PayloadMapEncoding::kIndefinite).value();
  auto verified = VerifyAtNow(forge, document);
  ASSERT_TRUE(Verified(verified));
  EXPECT_EQ(verified->document(), forge.DefaultDocument());
}

TEST(VerifierTest, AcceptsIndefiniteLengthPayloadMapFromForgeEncoder) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Verified(VerifyAtNow(
      forge, SignFields(forge, forge.DefaultPayloadFields(), testing::MapHead::kIndefinite))));
}

// --- 1. Size. ---

TEST(VerifierTest, RejectsDocumentOver64KiB) {
  DocumentForge forge = MakeForge();
  // A well-formed, correctly signed document, only too large.
  Bytes document = SignFields(forge, FieldsWith(forge, "user_data", Filled(size_t{70} * 1024)));
  ASSERT_GT(document.size(), kMaxDocumentSize);
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, document), Code::kLimitExceeded, "64 KiB"));
}

// --- 2. COSE_Sign1 envelope. ---

TEST(VerifierTest, RejectsAlgorithmEs256) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge, {.alg = cose::Algorithm::kEs256})),
                       Code::kUnsupported, "algorithm ES256 is not ES384"));
}

TEST(VerifierTest, RejectsAlgorithmEdDsa) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge, {.alg = cose::Algorithm::kEdDsa})),
                       Code::kUnsupported, "algorithm EdDSA is not ES384"));
}

TEST(VerifierTest, RejectsCritHeader) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge, {.crit = true})), Code::kUnsupported,
                       "critical header parameters"));
}

TEST(VerifierTest, RejectsWrongTag) {
  DocumentForge forge = MakeForge();
  // Tag 98 is COSE_Sign (multiple signers), not COSE_Sign1.
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge, {.tag = 98})), Code::kMalformed,
                       "unexpected tag 98"));
}

TEST(VerifierTest, RejectsEnvelopeThatIsNotAnArray) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge, {.shape = EnvelopeShape::kMap})),
                       Code::kMalformed, "not an array of 4"));
}

TEST(VerifierTest, RejectsEnvelopeArrayOfThree) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(
      Rejected(VerifyAtNow(forge, SignDefault(forge, {.shape = EnvelopeShape::kThreeElements})),
               Code::kMalformed, "not an array of 4"));
}

TEST(VerifierTest, RejectsPayloadThatIsNotAByteString) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(
      Rejected(VerifyAtNow(forge, SignDefault(forge, {.shape = EnvelopeShape::kPayloadNotBytes})),
               Code::kMalformed, "payload is not a byte string"));
}

TEST(VerifierTest, RejectsProtectedHeaderThatIsNotAByteString) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(
      Rejected(VerifyAtNow(forge, SignDefault(forge, {.shape = EnvelopeShape::kProtectedNotBytes})),
               Code::kMalformed, "protected header is not a byte string"));
}

TEST(VerifierTest, RejectsSignatureOf95Bytes) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge, {.signature_size_delta = -1})),
                       Code::kMalformed, "signature length 95"));
}

TEST(VerifierTest, RejectsSignatureOf97Bytes) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge, {.signature_size_delta = 1})),
                       Code::kMalformed, "signature length 97"));
}

TEST(VerifierTest, RejectsTrailingBytes) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge, {.trailing = {0x00}})),
                       Code::kMalformed, "trailing bytes"));
}

TEST(VerifierTest, RejectsEveryTruncation) {
  DocumentForge forge = MakeForge();
  Bytes document = SignDefault(forge);
  Verifier verifier = TrustingForge(forge);
  for (size_t n = 0; n < document.size(); ++n) {
    auto result = verifier.Verify(ByteSpan(document).first(n), forge.now(), {});
    ASSERT_FALSE(result.has_value()) << "truncated to " << n << " of " << document.size();
    EXPECT_EQ(result.error().code(), Code::kMalformed) << n << ": " << result.error().message();
  }
}

// --- 3. Payload. ---

TEST(VerifierTest, RejectsPayloadThatIsNotAMap) {
  DocumentForge forge = MakeForge();
  Bytes payload = cbor::Encode(cbor::Value::MakeArray({cbor::Value::TextString("module_id")}));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, forge.SignPayload(payload).value()), Code::kMalformed,
                       "payload is not a map"));
}

TEST(VerifierTest, RejectsMissingModuleId) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, FieldsWithout(forge, "module_id"))),
                       Code::kMalformed, "missing field module_id"));
}

TEST(VerifierTest, RejectsMissingDigest) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, FieldsWithout(forge, "digest"))),
                       Code::kMalformed, "missing field digest"));
}

TEST(VerifierTest, RejectsMissingTimestamp) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, FieldsWithout(forge, "timestamp"))),
                       Code::kMalformed, "missing field timestamp"));
}

TEST(VerifierTest, RejectsMissingPcrs) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, FieldsWithout(forge, "pcrs"))),
                       Code::kMalformed, "missing field pcrs"));
}

TEST(VerifierTest, RejectsMissingCertificate) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, FieldsWithout(forge, "certificate"))),
                       Code::kMalformed, "missing field certificate"));
}

TEST(VerifierTest, RejectsMissingCabundle) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, FieldsWithout(forge, "cabundle"))),
                       Code::kMalformed, "missing field cabundle"));
}

TEST(VerifierTest, RejectsUnknownField) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "module_name", cbor::Value::TextString("x"));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "unknown field \"module_name\""));
}

TEST(VerifierTest, RejectsUnknownFieldWithAOneLineMessage) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "x\n\x1b[31mfake: ok", cbor::Value::TextString("x"));
  auto result = VerifyAtNow(forge, SignFields(forge, fields));
  ASSERT_TRUE(Rejected(result, Code::kMalformed, "unknown field"));
  // Attacker-chosen text must not break the one-line reason or reach a terminal raw.
  EXPECT_EQ(result.error().message(), "attestation: unknown field \"x??[31mfake: ok\"");
}

TEST(VerifierTest, RejectsDigestWithAOneLineMessage) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "digest", cbor::Value::TextString("SHA\r\n384"));
  auto result = VerifyAtNow(forge, SignFields(forge, fields));
  ASSERT_TRUE(Rejected(result, Code::kMalformed, "digest"));
  EXPECT_EQ(result.error().message(), "attestation: digest: \"SHA??384\" is not SHA384");
}

TEST(VerifierTest, RejectsDuplicateField) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = forge.DefaultPayloadFields();
  testing::AppendField(fields, "module_id", cbor::Value::TextString("i-other-enc0"));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "duplicate map key"));
}

TEST(VerifierTest, RejectsDuplicateFieldInIndefiniteMap) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = forge.DefaultPayloadFields();
  testing::AppendField(fields, "digest", cbor::Value::TextString("SHA384"));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields, testing::MapHead::kIndefinite)),
                       Code::kMalformed, "duplicate map key"));
}

TEST(VerifierTest, RejectsEmptyModuleId) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "module_id", cbor::Value::TextString(""));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "module_id: not a non-empty text string"));
}

TEST(VerifierTest, RejectsDigestSha256) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "digest", cbor::Value::TextString("SHA256"));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "digest: \"SHA256\" is not SHA384"));
}

TEST(VerifierTest, RejectsTimestampZero) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "timestamp", cbor::Value::Uint(0));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "timestamp: not a positive integer"));
}

TEST(VerifierTest, RejectsTimestampOfWrongType) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields =
      FieldsWith(forge, "timestamp", cbor::Value::TextString("2025-06-01T12:00:00Z"));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "timestamp: not a positive integer"));
}

TEST(VerifierTest, RejectsNegativeTimestamp) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "timestamp", cbor::Value::Int(-1));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "timestamp: not a positive integer"));
}

TEST(VerifierTest, RejectsPcrsThatAreNotAMap) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "pcrs", cbor::Value::MakeArray({Filled(kPcrSize)}));
  EXPECT_TRUE(
      Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed, "pcrs: not a map"));
}

TEST(VerifierTest, RejectsEmptyPcrs) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "pcrs", cbor::Value::MakeMap({}));
  EXPECT_TRUE(
      Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed, "pcrs: 0 entries"));
}

TEST(VerifierTest, RejectsPcrIndex32) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields =
      FieldsWith(forge, "pcrs", PcrsWith(cbor::Value::Uint(32), Filled(kPcrSize)));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "pcrs: index 32 out of range"));
}

TEST(VerifierTest, RejectsPcrValueOf47Bytes) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "pcrs", PcrsWith(cbor::Value::Uint(20), Filled(47)));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "PCR20 has length 47"));
}

TEST(VerifierTest, RejectsNonIntegerPcrIndex) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields =
      FieldsWith(forge, "pcrs", PcrsWith(cbor::Value::TextString("20"), Filled(kPcrSize)));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "pcrs: index is not an unsigned integer"));
}

TEST(VerifierTest, RejectsEmptyCertificate) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "certificate", Filled(0));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "certificate: length 0"));
}

TEST(VerifierTest, RejectsCertificateOf1025Bytes) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "certificate", Filled(kMaxCertificateSize + 1));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "certificate: length 1025"));
}

TEST(VerifierTest, RejectsEmptyCabundle) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "cabundle", cbor::Value::MakeArray({}));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "cabundle: not a non-empty array"));
}

TEST(VerifierTest, RejectsEmptyCabundleEntry) {
  DocumentForge forge = MakeForge();
  cbor::Value::Array cabundle;
  for (const Bytes& der : forge.DefaultDocument().cabundle) {
    cabundle.push_back(cbor::Value::ByteString(der));
  }
  cabundle.push_back(Filled(0));
  cbor::Value::Map fields =
      FieldsWith(forge, "cabundle", cbor::Value::MakeArray(std::move(cabundle)));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "cabundle entry: length 0"));
}

TEST(VerifierTest, RejectsCabundleThatIsNotAnArray) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields =
      FieldsWith(forge, "cabundle", cbor::Value::ByteString(forge.root().der()));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "cabundle: not a non-empty array"));
}

TEST(VerifierTest, RejectsPublicKeyOf1025Bytes) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "public_key", Filled(kMaxOptionalFieldSize + 1));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "public_key: length 1025"));
}

TEST(VerifierTest, RejectsUserDataOf1025Bytes) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "user_data", Filled(kMaxOptionalFieldSize + 1));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "user_data: length 1025"));
}

TEST(VerifierTest, RejectsNonceOf1025Bytes) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "nonce", Filled(kMaxOptionalFieldSize + 1));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "nonce: length 1025"));
}

TEST(VerifierTest, RejectsOptionalFieldOfWrongType) {
  DocumentForge forge = MakeForge();
  cbor::Value::Map fields = FieldsWith(forge, "nonce", cbor::Value::TextString("nonce"));
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignFields(forge, fields)), Code::kMalformed,
                       "nonce: not a byte string"));
}

// --- 4. Certificate path. ---

TEST(VerifierTest, RejectsChainOutOfOrder) {
  DocumentForge forge = MakeForge();
  Bytes document = forge.Sign(forge.DefaultDocument(CabundleEdit::kSwapIntermediates)).value();
  // cabundle[1] is now intermediate 1, which the root did not issue.
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, document), Code::kPolicyViolation,
                       "certificate 2 of 5 (CN=forge intermediate 1): not issued by the previous"));
}

TEST(VerifierTest, RejectsCabundleWithoutRoot) {
  DocumentForge forge = MakeForge();
  Bytes document = forge.Sign(forge.DefaultDocument(CabundleEdit::kDropRoot)).value();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, document), Code::kUntrusted,
                       "certificate 1 of 4 (CN=forge intermediate 0): not a trusted root"));
}

TEST(VerifierTest, RejectsUnrelatedCertificateAppendedToCabundle) {
  DocumentForge forge = MakeForge();
  Bytes document = forge.Sign(forge.DefaultDocument(CabundleEdit::kAppendUnrelated)).value();
  // The unrelated CA sits between intermediate 2 and the leaf: it did not issue the leaf.
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, document), Code::kPolicyViolation,
                       "certificate 5 of 6 (CN=unrelated root): not issued by the previous"));
}

TEST(VerifierTest, RejectsUntrustedRoot) {
  DocumentForge forge = MakeForge();
  Verifier aws_only = Verifier::Create(AwsRoot::kTrust).value();
  EXPECT_TRUE(Rejected(aws_only.Verify(SignDefault(forge), forge.now(), {}), Code::kUntrusted,
                       "certificate chain"));
}

TEST(VerifierTest, RejectsRootOfAnotherForge) {
  DocumentForge forge = MakeForge();
  DocumentForge other = MakeForge();
  EXPECT_TRUE(Rejected(TrustingForge(other).Verify(SignDefault(forge), forge.now(), {}),
                       Code::kUntrusted, "certificate chain"));
}

TEST(VerifierTest, RejectsExpiredLeaf) {
  PkiOptions options;
  options.leaf.validity = Validity::kExpired;
  DocumentForge forge = MakeForge(options);
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge)), Code::kExpired,
                       "certificate 5 of 5 (CN=i-0123456789abcdef0-enc0123456789abcdef.forge): "
                       "expired"));
}

TEST(VerifierTest, RejectsLeafNotYetValid) {
  PkiOptions options;
  options.leaf.validity = Validity::kNotYetValid;
  DocumentForge forge = MakeForge(options);
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge)), Code::kExpired,
                       "certificate 5 of 5 (CN=i-0123456789abcdef0-enc0123456789abcdef.forge): "
                       "not yet valid"));
}

TEST(VerifierTest, RejectsExpiredIntermediate) {
  PkiOptions options;
  options.intermediates[1].validity = Validity::kExpired;
  DocumentForge forge = MakeForge(options);
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge)), Code::kExpired,
                       "certificate 3 of 5 (CN=forge intermediate 1): expired"));
}

TEST(VerifierTest, RejectsDocumentVerifiedAfterLeafExpiry) {
  DocumentForge forge = MakeForge();
  auto result = TrustingForge(forge).Verify(SignDefault(forge), forge.now() + hours(4), {});
  EXPECT_TRUE(Rejected(result, Code::kExpired, "certificate 5 of 5"));
}

TEST(VerifierTest, AcceptsDocumentAtLeafNotAfterInclusive) {
  DocumentForge forge = MakeForge();
  // The leaf expires at now + 3 h; the timestamp check allows any age without max_age.
  auto result = TrustingForge(forge).Verify(SignDefault(forge), forge.leaf().not_after(), {});
  EXPECT_TRUE(Verified(result));
}

TEST(VerifierTest, RejectsIntermediateThatIsNotACa) {
  PkiOptions options;
  options.intermediates[1].ca = CaBit::kNotCa;
  DocumentForge forge = MakeForge(options);
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge)), Code::kPolicyViolation,
                       "certificate 3 of 5 (CN=forge intermediate 1): issuer is not a CA"));
}

TEST(VerifierTest, RejectsLeafThatIsACa) {
  PkiOptions options;
  options.leaf.ca = CaBit::kCa;
  DocumentForge forge = MakeForge(options);
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge)), Code::kPolicyViolation,
                       "certificate 5 of 5 (CN=i-0123456789abcdef0-enc0123456789abcdef.forge): "
                       "end-entity certificate is a CA"));
}

// --- 5. Signature. ---

TEST(VerifierTest, RejectsDocumentSignedByAnotherKey) {
  DocumentForge forge = MakeForge();
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge, {.key = SigningKey::kOther})),
                       Code::kVerifyFailed, "signature does not verify"));
}

TEST(VerifierTest, RejectsPayloadChangedAfterSigning) {
  DocumentForge forge = MakeForge();
  Bytes document = SignDefault(forge);
  // PCR0 is 48 bytes of 0x01; changing one keeps the payload well-formed, so only the signature
  // check can notice.
  Bytes pcr0(kPcrSize, 0x01);
  auto it = std::search(document.begin(), document.end(), pcr0.begin(), pcr0.end());
  ASSERT_NE(it, document.end());
  *it = 0x02;
  EXPECT_TRUE(
      Rejected(VerifyAtNow(forge, document), Code::kVerifyFailed, "signature does not verify"));
}

// --- 6. Policy. ---

TEST(VerifierTest, RejectsDebugModeDocument) {
  DocumentForge forge = MakeForge();
  AttestationDocument doc = forge.DefaultDocument();
  doc.pcrs[0] = Bytes(kPcrSize, 0);
  EXPECT_TRUE(
      Rejected(VerifyAtNow(forge, forge.Sign(doc).value()), Code::kPolicyViolation, "debug"));
}

TEST(VerifierTest, AcceptsDebugModeDocumentWhenAllowed) {
  DocumentForge forge = MakeForge();
  AttestationDocument doc = forge.DefaultDocument();
  doc.pcrs[0] = Bytes(kPcrSize, 0);
  TrustPolicy policy;
  policy.allow_debug = true;
  auto verified = VerifyAtNow(forge, forge.Sign(doc).value(), policy);
  ASSERT_TRUE(Verified(verified));
  EXPECT_TRUE(verified->debug());
}

TEST(VerifierTest, AcceptsExpectedPcrs) {
  DocumentForge forge = MakeForge();
  TrustPolicy policy;
  policy.expected_pcrs = {{0, Bytes(kPcrSize, 0x01)}, {8, Bytes(kPcrSize, 0x09)}};
  EXPECT_TRUE(Verified(VerifyAtNow(forge, SignDefault(forge), policy)));
}

TEST(VerifierTest, RejectsPcrMismatch) {
  DocumentForge forge = MakeForge();
  TrustPolicy policy;
  policy.expected_pcrs = {{0, Bytes(kPcrSize, 0x01)}, {3, Bytes(kPcrSize, 0xee)}};
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge), policy), Code::kPolicyViolation,
                       "PCR3 mismatch"));
}

TEST(VerifierTest, RejectsMissingExpectedPcr) {
  DocumentForge forge = MakeForge();
  TrustPolicy policy;
  policy.expected_pcrs = {{20, Bytes(kPcrSize, 0x00)}};
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge), policy), Code::kPolicyViolation,
                       "PCR20 missing"));
}

TEST(VerifierTest, RejectsNonceMismatch) {
  DocumentForge forge = MakeForge();
  AttestationDocument doc = forge.DefaultDocument();
  doc.nonce = Bytes{1, 2, 3, 4};
  TrustPolicy policy;
  policy.expected_nonce = Bytes{1, 2, 3, 5};
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, forge.Sign(doc).value(), policy), Code::kPolicyViolation,
                       "nonce mismatch"));
}

TEST(VerifierTest, RejectsMissingNonce) {
  DocumentForge forge = MakeForge();
  TrustPolicy policy;
  policy.expected_nonce = Bytes{1, 2, 3, 4};
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge), policy), Code::kPolicyViolation,
                       "nonce missing"));
}

TEST(VerifierTest, AcceptsExpectedNonceAndPublicKey) {
  DocumentForge forge = MakeForge();
  AttestationDocument doc = forge.DefaultDocument();
  doc.nonce = Bytes{1, 2, 3, 4};
  doc.public_key = Bytes(32, 0x77);
  TrustPolicy policy;
  policy.expected_nonce = doc.nonce;
  policy.expected_public_key = doc.public_key;
  EXPECT_TRUE(Verified(VerifyAtNow(forge, forge.Sign(doc).value(), policy)));
}

TEST(VerifierTest, RejectsPublicKeyMismatch) {
  DocumentForge forge = MakeForge();
  AttestationDocument doc = forge.DefaultDocument();
  doc.public_key = Bytes(32, 0x77);
  TrustPolicy policy;
  policy.expected_public_key = Bytes(32, 0x78);
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, forge.Sign(doc).value(), policy), Code::kPolicyViolation,
                       "public_key mismatch"));
}

TEST(VerifierTest, RejectsMissingPublicKey) {
  DocumentForge forge = MakeForge();
  TrustPolicy policy;
  policy.expected_public_key = Bytes(32, 0x77);
  EXPECT_TRUE(Rejected(VerifyAtNow(forge, SignDefault(forge), policy), Code::kPolicyViolation,
                       "public_key missing"));
}

TEST(VerifierTest, RejectsDocumentOlderThanMaxAge) {
  DocumentForge forge = MakeForge();
  TrustPolicy policy;
  policy.max_age = minutes(5);
  auto result = TrustingForge(forge).Verify(SignDefault(forge), forge.now() + minutes(10), policy);
  EXPECT_TRUE(Rejected(result, Code::kExpired, "maximum age"));
}

TEST(VerifierTest, AcceptsDocumentWithinMaxAge) {
  DocumentForge forge = MakeForge();
  TrustPolicy policy;
  policy.max_age = minutes(5);
  auto result = TrustingForge(forge).Verify(SignDefault(forge), forge.now() + minutes(4), policy);
  EXPECT_TRUE(Verified(result));
}

TEST(VerifierTest, RejectsTimestampInTheFuture) {
  DocumentForge forge = MakeForge();
  AttestationDocument doc = forge.DefaultDocument();
  doc.timestamp_ms += uint64_t{10} * 60 * 1000;  // Ten minutes ahead; the allowed skew is five.
  EXPECT_TRUE(
      Rejected(VerifyAtNow(forge, forge.Sign(doc).value()), Code::kExpired, "in the future"));
}

TEST(VerifierTest, AcceptsTimestampWithinFutureSkew) {
  DocumentForge forge = MakeForge();
  AttestationDocument doc = forge.DefaultDocument();
  doc.timestamp_ms += uint64_t{4} * 60 * 1000;
  EXPECT_TRUE(Verified(VerifyAtNow(forge, forge.Sign(doc).value())));
}

}  // namespace
}  // namespace enclavia::attestation
