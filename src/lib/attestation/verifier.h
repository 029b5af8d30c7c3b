// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_ATTESTATION_VERIFIER_H_
#define ENCLAVIA_LIB_ATTESTATION_VERIFIER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "lib/attestation/document.h"
#include "lib/base/bytes.h"
#include "lib/base/encoding.h"
#include "lib/base/result.h"
#include "lib/crypto/x509.h"

namespace enclavia::attestation {

// TrustPolicy is what a verified document must also satisfy.
struct TrustPolicy {
  // Every listed PCR must be present with exactly this value.
  std::map<uint32_t, Bytes> expected_pcrs;
  // Debug-mode enclaves (PCR0 all zero, as Nitro reports them) are rejected unless allowed.
  bool allow_debug = false;
  std::optional<Bytes> expected_nonce;
  std::optional<Bytes> expected_public_key;
  // The document's timestamp may be at most this old at verification time.
  std::optional<std::chrono::milliseconds> max_age;
  // How far in the future a timestamp may be (clock skew) before it is rejected.
  std::chrono::milliseconds max_future_skew{std::chrono::minutes(5)};
};

class Verifier;

// VerifiedAttestation is a document whose signature, chain and policy checks passed. Only
// Verifier::Verify builds one, so a function that takes it by type needs no further checks.
class VerifiedAttestation {
 public:
  const AttestationDocument& document() const { return doc_; }
  // root_fingerprint is the SHA-256 of the DER of the trusted root the chain ended at.
  const crypto::Sha256Digest& root_fingerprint() const { return root_fingerprint_; }
  // debug reports whether PCR0 is all zero (a debug-mode enclave).
  bool debug() const { return debug_; }

 private:
  friend class Verifier;
  VerifiedAttestation(AttestationDocument doc, crypto::Sha256Digest root, bool debug)
      : doc_(std::move(doc)), root_fingerprint_(root), debug_(debug) {}
  AttestationDocument doc_;
  crypto::Sha256Digest root_fingerprint_;
  bool debug_;
};

enum class AwsRoot { kTrust, kDoNotTrust };

struct VerifierOptions {
  // Parsed certificates are kept, keyed by the SHA-256 of their DER and checked byte for byte on
  // a hit, so that the intermediates and the leaf, which repeat across an enclave's documents for
  // hours, are decoded once. Only parsing is cached: every Verify checks the whole path, times and
  // signatures again. 0 turns the cache off.
  size_t certificate_cache_entries = 64;
};

class CertificateCache;

// Verifier checks Nitro attestation documents against a fixed set of trusted roots. Immutable
// (apart from its internal parse cache) and thread-safe once created.
class Verifier {
 public:
  // Create trusts the built-in AWS Nitro root G1 (unless kDoNotTrust) and `extra_roots`. Roots are
  // only ever added explicitly. kInvalidArgument when that leaves no root at all.
  static Result<Verifier> Create(AwsRoot aws_root,
                                 std::vector<crypto::Certificate> extra_roots = {},
                                 VerifierOptions options = {});

  // Verify checks, in order, and fails on the first problem with a one-line message:
  //  1. size at most kMaxDocumentSize (kLimitExceeded);
  //  2. COSE_Sign1 structure, untagged or tag 18, protected header alg ES384 only;
  //  3. the payload (ParsePayload);
  //  4. the certificate path cabundle[0] (a trusted root) → … → certificate, each valid at `at`,
  //     CA constraints (crypto::VerifyPath);
  //  5. the COSE signature by the leaf certificate's P-384 key;
  //  6. the policy: debug mode, expected PCRs, nonce, public key, maximum age.
  Result<VerifiedAttestation> Verify(ByteSpan document, SystemTime at,
                                     const TrustPolicy& policy) const;

  const std::vector<crypto::Certificate>& roots() const { return roots_; }

 private:
  Verifier(std::vector<crypto::Certificate> roots, std::shared_ptr<CertificateCache> cache)
      : roots_(std::move(roots)), cache_(std::move(cache)) {}
  std::vector<crypto::Certificate> roots_;
  std::shared_ptr<CertificateCache> cache_;  // Shared by copies of this Verifier.
};

// ParsedDocument is a document decoded without any verification, for inspection (`describe`).
struct ParsedDocument {
  AttestationDocument document;
  bool tagged = false;
};

// ParseUnverified decodes the COSE_Sign1 envelope and payload with the same strictness as Verify
// but checks no signature, chain or policy. Never use its result for a trust decision.
Result<ParsedDocument> ParseUnverified(ByteSpan document);

// IsDebugPcr0 reports whether the document's PCR0 is present and all zero.
bool IsDebugMode(const AttestationDocument& doc);

}  // namespace enclavia::attestation

#endif  // ENCLAVIA_LIB_ATTESTATION_VERIFIER_H_
