// SPDX-License-Identifier: Apache-2.0
#include "lib/attestation/verifier.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>

#include "lib/attestation/aws_root.h"
#include "lib/cose/sign1.h"
#include "lib/crypto/secret.h"

namespace enclavia::attestation {

// CertificateCache maps the SHA-256 of a certificate's DER to the parsed certificate. A hit is
// confirmed by comparing the DER, so even a hash collision could not substitute a certificate.
// When full it is cleared (documents of one enclave reuse a handful of certificates, so a simple
// policy is enough). Thread-safe.
class CertificateCache {
 public:
  explicit CertificateCache(size_t capacity) : capacity_(capacity) {}

  Result<crypto::Certificate> Parse(ByteSpan der) {
    if (capacity_ == 0) {
      return crypto::Certificate::FromDer(der);
    }
    crypto::Sha256Digest key = crypto::Sha256(der);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second.der().size() == der.size() &&
          std::equal(der.begin(), der.end(), it->second.der().begin())) {
        return it->second;
      }
    }
    ASSIGN_OR_RETURN(crypto::Certificate cert, crypto::Certificate::FromDer(der));
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.size() >= capacity_) {
      entries_.clear();
    }
    entries_.insert_or_assign(key, cert);
    return cert;
  }

 private:
  struct DigestHash {
    size_t operator()(const crypto::Sha256Digest& d) const {
      size_t h = 0;
      for (size_t i = 0; i < sizeof(size_t); ++i) {
        h = (h << 8) | d[i];
      }
      return h;
    }
  };
  const size_t capacity_;
  std::mutex mu_;
  std::unordered_map<crypto::Sha256Digest, crypto::Certificate, DigestHash> entries_;
};

namespace {

cbor::DecodeOptions EnvelopeOptions() {
  cbor::DecodeOptions options;
  options.max_input_size = kMaxDocumentSize;
  options.max_depth = 4;
  options.max_items = 64;
  return options;
}

Result<cose::Sign1> ParseEnvelope(ByteSpan document) {
  if (document.size() > kMaxDocumentSize) {
    return Error(Code::kLimitExceeded, "attestation: document of " +
                                           std::to_string(document.size()) +
                                           " bytes exceeds the 64 KiB limit");
  }
  auto msg = cose::ParseSign1(document, EnvelopeOptions());
  if (!msg) {
    return std::move(msg).error().WithContext("attestation");
  }
  if (msg->algorithm != cose::Algorithm::kEs384) {
    return Error(Code::kUnsupported, std::string("attestation: algorithm ") +
                                         cose::AlgorithmName(msg->algorithm) +
                                         " is not ES384");
  }
  if (msg->signature.size() != 96) {
    return Error(Code::kMalformed, "attestation: signature length " +
                                       std::to_string(msg->signature.size()) +
                                       " is not 96 (ES384 r||s)");
  }
  return msg;
}

Error PolicyError(const std::string& what) {
  return Error(Code::kPolicyViolation, "attestation: policy: " + what);
}

Result<void> CheckPolicy(const AttestationDocument& doc, bool debug, SystemTime at,
                         const TrustPolicy& policy) {
  if (debug && !policy.allow_debug) {
    return PolicyError("debug-mode enclave (PCR0 is all zero) not allowed");
  }
  for (const auto& [index, want] : policy.expected_pcrs) {
    auto it = doc.pcrs.find(index);
    if (it == doc.pcrs.end()) {
      return PolicyError("PCR" + std::to_string(index) + " missing");
    }
    if (!crypto::ConstantTimeEqual(it->second, want)) {
      return PolicyError("PCR" + std::to_string(index) + " mismatch");
    }
  }
  if (policy.expected_nonce &&
      (!doc.nonce || !crypto::ConstantTimeEqual(*doc.nonce, *policy.expected_nonce))) {
    return PolicyError(doc.nonce ? "nonce mismatch" : "nonce missing");
  }
  if (policy.expected_public_key &&
      (!doc.public_key ||
       !crypto::ConstantTimeEqual(*doc.public_key, *policy.expected_public_key))) {
    return PolicyError(doc.public_key ? "public_key mismatch" : "public_key missing");
  }
  int64_t at_ms = ToUnixMillis(at);
  auto ts = static_cast<int64_t>(std::min<uint64_t>(doc.timestamp_ms, INT64_MAX));
  if (ts > at_ms + policy.max_future_skew.count()) {
    return Error(Code::kExpired, "attestation: timestamp " +
                                     FormatRfc3339(FromUnixMillis(doc.timestamp_ms)) +
                                     " is in the future");
  }
  if (policy.max_age && at_ms - ts > policy.max_age->count()) {
    return Error(Code::kExpired, "attestation: document is " + std::to_string((at_ms - ts) / 1000) +
                                     " s old, more than the maximum age of " +
                                     std::to_string(policy.max_age->count() / 1000) + " s");
  }
  return Ok();
}

}  // namespace

bool IsDebugMode(const AttestationDocument& doc) {
  auto it = doc.pcrs.find(0);
  if (it == doc.pcrs.end()) {
    return false;
  }
  return std::all_of(it->second.begin(), it->second.end(), [](uint8_t b) { return b == 0; });
}

Result<Verifier> Verifier::Create(AwsRoot aws_root, std::vector<crypto::Certificate> extra_roots,
                                  VerifierOptions options) {
  std::vector<crypto::Certificate> roots;
  if (aws_root == AwsRoot::kTrust) {
    auto aws = crypto::Certificate::FromPem(kAwsNitroRootG1Pem);
    ENCLAVIA_CHECK(aws.has_value());  // A built-in constant; a unit test checks its hash.
    roots.push_back(std::move(aws).value());
  }
  for (auto& root : extra_roots) {
    roots.push_back(std::move(root));
  }
  if (roots.empty()) {
    return Error(Code::kInvalidArgument, "attestation: no trusted root");
  }
  return Verifier(std::move(roots),
                  std::make_shared<CertificateCache>(options.certificate_cache_entries));
}

Result<ParsedDocument> ParseUnverified(ByteSpan document) {
  ASSIGN_OR_RETURN(cose::Sign1 msg, ParseEnvelope(document));
  ASSIGN_OR_RETURN(AttestationDocument doc, ParsePayload(msg.payload));
  return ParsedDocument{std::move(doc), msg.tagged};
}

Result<VerifiedAttestation> Verifier::Verify(ByteSpan document, SystemTime at,
                                             const TrustPolicy& policy) const {
  ASSIGN_OR_RETURN(cose::Sign1 msg, ParseEnvelope(document));
  ASSIGN_OR_RETURN(AttestationDocument doc, ParsePayload(msg.payload));

  std::vector<crypto::Certificate> path;
  path.reserve(doc.cabundle.size() + 1);
  for (size_t i = 0; i < doc.cabundle.size(); ++i) {
    // cabundle[0] must be byte-identical to a trusted root, which is already parsed: reuse it
    // rather than decode it again (VerifyPath still checks the identity).
    if (i == 0) {
      auto root = std::find_if(roots_.begin(), roots_.end(), [&](const crypto::Certificate& r) {
        return r.der() == doc.cabundle[0];
      });
      if (root != roots_.end()) {
        path.push_back(*root);
        continue;
      }
    }
    auto cert = cache_->Parse(doc.cabundle[i]);
    if (!cert) {
      return std::move(cert).error().WithContext("attestation: cabundle[" + std::to_string(i) +
                                                 "]");
    }
    path.push_back(std::move(cert).value());
  }
  auto leaf = cache_->Parse(doc.certificate);
  if (!leaf) {
    return std::move(leaf).error().WithContext("attestation: certificate");
  }
  path.push_back(std::move(leaf).value());

  auto chain = crypto::VerifyPath(path, roots_, at);
  if (!chain) {
    return std::move(chain).error().WithContext("attestation: certificate chain");
  }
  auto leaf_key = path.back().public_key();
  if (!leaf_key || leaf_key->algorithm() != crypto::SignatureAlgorithm::kEcdsaP384Sha384) {
    return Error(Code::kVerifyFailed, "attestation: signing certificate key is not P-384");
  }
  if (!cose::VerifySign1(msg, *leaf_key)) {
    return Error(Code::kVerifyFailed, "attestation: document signature does not verify");
  }
  const bool debug = IsDebugMode(doc);
  RETURN_IF_ERROR(CheckPolicy(doc, debug, at, policy));
  return VerifiedAttestation(std::move(doc), path.front().fingerprint_sha256(), debug);
}

}  // namespace enclavia::attestation
