// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_TESTS_TESTING_DOCUMENT_FORGE_H_
#define ENCLAVIA_TESTS_TESTING_DOCUMENT_FORGE_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "lib/attestation/document.h"
#include "lib/base/bytes.h"
#include "lib/base/encoding.h"
#include "lib/base/result.h"
#include "lib/cbor/cbor.h"
#include "lib/cose/sign1.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/x509.h"

// DocumentForge builds Nitro attestation documents for tests: a well-formed one under its own
// P-384 PKI, and, through a few options, every way of breaking one that the verifier must catch.
//
//   DocumentForge forge = DocumentForge::Create().value();
//   Bytes good = forge.Sign(forge.DefaultDocument()).value();
//   Bytes tagged = forge.Sign(forge.DefaultDocument(), {.tag = cose::kSign1Tag}).value();
//   cbor::Value::Map fields = forge.DefaultPayloadFields();
//   RemoveField(fields, "digest");
//   Bytes no_digest = forge.SignPayload(EncodePayloadMap(fields)).value();
namespace enclavia::testing {

// kForgeTime is the default "now" of a forge: documents carry it as their timestamp and every
// certificate is valid at it. 2025-06-01T12:00:00Z.
inline constexpr std::chrono::sys_seconds kForgeTime{std::chrono::seconds(1748779200)};

// Validity places a certificate's window relative to the forge's `now`.
enum class Validity {
  kCurrent,      // now lies inside the window.
  kExpired,      // The window ended one hour before now.
  kNotYetValid,  // The window starts one hour after now.
};

// CaBit overrides whether a certificate is a CA (basic constraints CA:TRUE, keyCertSign).
enum class CaBit {
  kDefault,  // Root and intermediates are CAs, the leaf is not.
  kCa,
  kNotCa,
};

// CertOptions shapes one certificate of the forge's PKI. `not_before`/`not_after`, when set,
// override the window `validity` picks.
struct CertOptions {
  Validity validity = Validity::kCurrent;
  CaBit ca = CaBit::kDefault;
  std::optional<SystemTime> not_before;
  std::optional<SystemTime> not_after;
};

inline constexpr size_t kForgeIntermediates = 3;

// PkiOptions shapes the chain root → intermediates[0..2] → leaf, as AWS's NSM builds it.
struct PkiOptions {
  SystemTime now = kForgeTime;
  CertOptions root;
  std::array<CertOptions, kForgeIntermediates> intermediates;
  CertOptions leaf;
};

// CabundleEdit changes the cabundle of DefaultDocument (normally root, intermediates 0..2).
enum class CabundleEdit {
  kNone,
  kSwapIntermediates,  // root, intermediate 1, intermediate 0, intermediate 2.
  kDropRoot,           // intermediates 0..2 only.
  kAppendUnrelated,    // root, intermediates 0..2, then a self-signed CA from elsewhere.
};

// EnvelopeShape breaks the COSE_Sign1 structure itself.
enum class EnvelopeShape {
  kSign1,              // [protected, {}, payload, signature].
  kMap,                // The four parts as values of a map: not an array.
  kThreeElements,      // [protected, {}, payload]: the signature left out.
  kPayloadNotBytes,    // The text string "payload" in place of the payload byte string.
  kProtectedNotBytes,  // The protected header as an embedded map rather than a byte string.
};

// SigningKey picks the key that signs the COSE_Sign1.
enum class SigningKey {
  kLeaf,   // The leaf certificate's key: the signature verifies.
  kOther,  // An unrelated P-384 key: the signature does not verify.
};

// SignOptions shapes the COSE_Sign1 envelope around a payload.
struct SignOptions {
  // The protected header's alg (label 1), independent of the key that really signs.
  cose::Algorithm alg = cose::Algorithm::kEs384;
  // Adds crit (label 2) = [1] to the protected header.
  bool crit = false;
  // nullopt: untagged, as the NSM emits; kSign1Tag (18): tagged; anything else: a wrong tag.
  std::optional<uint64_t> tag = std::nullopt;
  SigningKey key = SigningKey::kLeaf;
  // Bytes added to (positive: zero bytes appended) or removed from (negative) the signature.
  int signature_size_delta = 0;
  EnvelopeShape shape = EnvelopeShape::kSign1;
  // Appended after the COSE_Sign1.
  Bytes trailing = {};
};

// DocumentForge owns a test PKI and signs documents with it. Immutable after Create; the
// certificates, keys and documents it returns are independent of it.
class DocumentForge {
 public:
  // Create generates the PKI (fresh P-384 keys every time). Errors come from crypto.
  static Result<DocumentForge> Create(const PkiOptions& options = {});

  SystemTime now() const { return now_; }
  const crypto::Certificate& root() const { return root_; }
  const std::vector<crypto::Certificate>& intermediates() const { return intermediates_; }
  const crypto::Certificate& leaf() const { return leaf_; }
  // unrelated is a self-signed P-384 CA that no chain of this forge reaches.
  const crypto::Certificate& unrelated() const { return unrelated_; }

  // DefaultDocument is a well-formed document: module_id, digest "SHA384", timestamp now, PCRs
  // 0..15 of 48 bytes (PCR0 non-zero, so not debug mode), the leaf, the cabundle root first
  // (changed by `edit`), and no optional fields.
  attestation::AttestationDocument DefaultDocument(CabundleEdit edit = CabundleEdit::kNone) const;

  // DefaultPayloadFields is DefaultDocument as the NSM's map entries (absent optional fields as
  // null), to edit with SetField/RemoveField/AppendField and encode with EncodePayloadMap.
  cbor::Value::Map DefaultPayloadFields() const;

  // Sign encodes `doc` with attestation::EncodePayload and wraps it per `options`.
  Result<Bytes> Sign(
      const attestation::AttestationDocument& doc, const SignOptions& options = {},
      attestation::PayloadMapEncoding encoding = attestation::PayloadMapEncoding::kDefinite) const;
  // SignPayload wraps arbitrary payload bytes per `options`.
  Result<Bytes> SignPayload(ByteSpan payload, const SignOptions& options = {}) const;

 private:
  DocumentForge(SystemTime now, crypto::Certificate root,
                std::vector<crypto::Certificate> intermediates, crypto::Certificate leaf,
                crypto::PrivateKey leaf_key, crypto::Certificate unrelated,
                crypto::PrivateKey other_key)
      : now_(now),
        root_(std::move(root)),
        intermediates_(std::move(intermediates)),
        leaf_(std::move(leaf)),
        leaf_key_(std::move(leaf_key)),
        unrelated_(std::move(unrelated)),
        other_key_(std::move(other_key)) {}

  SystemTime now_;
  crypto::Certificate root_;
  std::vector<crypto::Certificate> intermediates_;
  crypto::Certificate leaf_;
  crypto::PrivateKey leaf_key_;
  crypto::Certificate unrelated_;
  crypto::PrivateKey other_key_;
};

// MapHead selects how EncodePayloadMap writes the map's head.
enum class MapHead { kDefinite, kIndefinite };

// EncodePayloadMap writes `fields` in the given order, each key and value encoded on its own, so
// that unlike cbor::Encode it can emit duplicate keys.
Bytes EncodePayloadMap(const cbor::Value::Map& fields, MapHead head = MapHead::kDefinite);

// SetField replaces the value of text key `name` (the first entry with it), or appends the entry.
void SetField(cbor::Value::Map& fields, std::string_view name, cbor::Value value);
// RemoveField drops every entry with text key `name`.
void RemoveField(cbor::Value::Map& fields, std::string_view name);
// AppendField adds an entry at the end even when `name` is already there (a duplicate).
void AppendField(cbor::Value::Map& fields, std::string_view name, cbor::Value value);

}  // namespace enclavia::testing

#endif  // ENCLAVIA_TESTS_TESTING_DOCUMENT_FORGE_H_
