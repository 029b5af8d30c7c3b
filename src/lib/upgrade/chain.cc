// SPDX-License-Identifier: Apache-2.0
#include "lib/upgrade/chain.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <set>
#include <string_view>
#include <utility>

#include "lib/attestation/document.h"
#include "lib/cbor/cbor.h"
#include "lib/cose/sign1.h"
#include "lib/crypto/hash.h"

namespace enclavia::upgrade {
namespace {

using cbor::Value;

// Every entry's COSE signature also covers this (RFC 9052 §4.3 external_aad), so a control key
// that signs anything else with COSE can never have that signature read as a chain entry.
constexpr std::string_view kExternalAad = "enclavia/upgrade/v1";

constexpr std::string_view kGenesisDomain = "enclavia/upgrade/genesis/v1";
constexpr std::string_view kRequestDomain = "enclavia/upgrade/request/v1";
constexpr std::string_view kStagingDomain = "enclavia/upgrade/staging/v1";
constexpr std::string_view kHeadDomain = "enclavia/upgrade/head/v1";
constexpr std::string_view kKeyCommitmentDomain = "enclavia/upgrade/key-commitment/v1";

constexpr size_t kMaxPcrs = 32;
constexpr size_t kDigestSize = 32;
constexpr size_t kEnclaveKeySize = 32;

Error Malformed(std::string_view what) {
  return Error(Code::kMalformed, std::string("upgrade: ").append(what));
}
Error Invalid(std::string_view what) {
  return Error(Code::kInvalidArgument, std::string("upgrade: ").append(what));
}
Error Policy(std::string_view what) {
  return Error(Code::kPolicyViolation, std::string("upgrade: ").append(what));
}

// Hash is H(domain, parts...) = SHA-256(LP(domain) || LP(part)...), LP(x) = u32 BE len || x.
Digest Hash(std::string_view domain, std::initializer_list<ByteSpan> parts) {
  crypto::Hasher hasher(crypto::HashAlgorithm::kSha256);
  auto add = [&hasher](ByteSpan part) {
    ENCLAVIA_CHECK(part.size() <= std::numeric_limits<uint32_t>::max());
    const auto size = static_cast<uint32_t>(part.size());
    const std::array<uint8_t, 4> prefix = {
        static_cast<uint8_t>(size >> 24), static_cast<uint8_t>(size >> 16),
        static_cast<uint8_t>(size >> 8), static_cast<uint8_t>(size)};
    hasher.Update(prefix);
    hasher.Update(part);
  };
  add(AsBytes(domain));
  for (ByteSpan part : parts) {
    add(part);
  }
  Bytes digest = hasher.Finish();
  Digest out{};
  ENCLAVIA_CHECK(digest.size() == out.size());
  std::copy(digest.begin(), digest.end(), out.begin());
  return out;
}

// SameBytes compares public bytes (hashes, encodings). Not for secrets: not constant time.
bool SameBytes(ByteSpan a, ByteSpan b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

std::string Short(const Digest& digest) { return DigestHex(digest).substr(0, 16); }

std::string EntryPrefix(size_t index) {
  return std::string("entry ").append(std::to_string(index)).append(": ");
}

// --- Limits shared by signing (kInvalidArgument) and parsing (kMalformed). ---

// Validation names what is wrong; the caller picks the code.
using Problem = std::optional<std::string>;

Problem CheckEnclaveId(const std::string& id) {
  if (id.empty() || id.size() > kMaxIdSize) {
    return "enclave id must be 1..64 characters";
  }
  for (char c : id) {
    if (c < 0x20 || c > 0x7e) {
      return "enclave id must be printable ASCII";
    }
  }
  return std::nullopt;
}

Problem CheckRequestId(const std::string& id) {
  if (id.empty() || id.size() > kMaxIdSize) {
    return "request id must be 1..64 characters";
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return "request id may only hold [A-Za-z0-9._-]";
    }
  }
  return std::nullopt;
}

Problem CheckPcrs(const PcrMap& pcrs, std::string_view what) {
  if (pcrs.empty() || pcrs.size() > kMaxPcrs) {
    return std::string(what).append(" must list 1..32 PCRs");
  }
  for (const auto& [index, value] : pcrs) {
    if (index >= kMaxPcrs || value.size() != attestation::kPcrSize) {
      return std::string(what).append(": PCR").append(std::to_string(index)).append(
          " must be 48 bytes, index < 32");
    }
  }
  return std::nullopt;
}

bool ControlAlgorithm(crypto::SignatureAlgorithm alg) {
  return alg == crypto::SignatureAlgorithm::kEd25519 ||
         alg == crypto::SignatureAlgorithm::kEcdsaP256Sha256;
}

Problem CheckGenesis(const Genesis& g) {
  if (auto p = CheckEnclaveId(g.enclave_id)) {
    return p;
  }
  if (auto p = CheckPcrs(g.first_pcrs, "first PCRs")) {
    return p;
  }
  if (g.control_keys.empty() || g.control_keys.size() > kMaxControlKeys) {
    return "a genesis names 1..8 control keys";
  }
  for (size_t i = 0; i < g.control_keys.size(); ++i) {
    const Bytes& spki = g.control_keys[i];
    auto key = crypto::PublicKey::FromSpki(spki);
    if (!key) {
      return "control key: " + key.error().message();
    }
    if (!ControlAlgorithm(key->algorithm())) {
      return "control keys must be Ed25519 or P-256";
    }
    if (key->ToSpki() != spki) {
      return "control key is not in canonical SubjectPublicKeyInfo DER";
    }
    for (size_t j = 0; j < i; ++j) {
      if (SameBytes(g.control_keys[j], spki)) {
        return "a control key is listed twice";
      }
    }
  }
  return std::nullopt;
}

Problem CheckRequest(const UpgradeRequest& r) {
  if (auto p = CheckPcrs(r.new_pcrs, "new PCRs")) {
    return p;
  }
  return CheckRequestId(r.id);
}

Problem CheckDocument(const Bytes& doc) {
  if (doc.empty() || doc.size() > attestation::kMaxDocumentSize) {
    return "receipt attestation must be 1..65536 bytes";
  }
  return std::nullopt;
}

Problem CheckActivation(const ActivationReceipt& a) {
  if (auto p = CheckPcrs(a.new_pcrs, "new PCRs")) {
    return p;
  }
  if (a.new_enclave_key.size() != kEnclaveKeySize) {
    return "new enclave key must be 32 bytes";
  }
  // No document: the staging receipt's document binds the key (one enclave boot signed both).
  return a.attestation.empty() ? std::nullopt : CheckDocument(a.attestation);
}

// --- Encoding. ---

Value Fixed(const Digest& d) { return Value::ByteString(ByteSpan(d)); }

Value EncodePcrs(const PcrMap& pcrs) {
  Value::Map map;
  for (const auto& [index, value] : pcrs) {
    map.emplace_back(Value::Uint(index), Value::ByteString(ByteSpan(value)));
  }
  return Value::MakeMap(std::move(map));
}

Value::Map Header(EntryType type) {
  return {{Value::TextString("t"), Value::TextString(EntryTypeName(type))},
          {Value::TextString("v"), Value::Uint(kFormatVersion)}};
}

Bytes EncodeGenesis(const Genesis& g) {
  Value::Map map = Header(EntryType::kGenesis);
  Value::Array keys;
  for (const Bytes& k : g.control_keys) {
    keys.push_back(Value::ByteString(ByteSpan(k)));
  }
  map.emplace_back(Value::TextString("id"), Value::TextString(g.enclave_id));
  map.emplace_back(Value::TextString("pcrs"), EncodePcrs(g.first_pcrs));
  map.emplace_back(Value::TextString("keys"), Value::MakeArray(std::move(keys)));
  map.emplace_back(Value::TextString("upgradable"), Value::Boolean(g.upgradable));
  map.emplace_back(Value::TextString("window"), Value::Uint(g.min_staging_window_s));
  map.emplace_back(Value::TextString("created"), Value::Uint(g.created_unix));
  return cbor::Encode(Value::MakeMap(std::move(map)));
}

Bytes EncodeRequest(const UpgradeRequest& r) {
  Value::Map map = Header(EntryType::kRequest);
  map.emplace_back(Value::TextString("genesis"), Fixed(r.genesis));
  map.emplace_back(Value::TextString("prev"), Fixed(r.previous_head));
  map.emplace_back(Value::TextString("pcrs"), EncodePcrs(r.new_pcrs));
  map.emplace_back(Value::TextString("not_before"), Value::Uint(r.not_before_unix));
  map.emplace_back(Value::TextString("id"), Value::TextString(r.id));
  return cbor::Encode(Value::MakeMap(std::move(map)));
}

Bytes EncodeRevocation(const Revocation& r) {
  Value::Map map = Header(EntryType::kRevocation);
  map.emplace_back(Value::TextString("request"), Fixed(r.request));
  return cbor::Encode(Value::MakeMap(std::move(map)));
}

Bytes EncodeStaging(const StagingReceipt& s) {
  Value::Map map = Header(EntryType::kStaging);
  map.emplace_back(Value::TextString("request"), Fixed(s.request));
  map.emplace_back(Value::TextString("staged_at"), Value::Uint(s.staged_at_unix));
  map.emplace_back(Value::TextString("doc"), Value::ByteString(ByteSpan(s.attestation)));
  return cbor::Encode(Value::MakeMap(std::move(map)));
}

Bytes EncodeActivation(const ActivationReceipt& a) {
  Value::Map map = Header(EntryType::kActivation);
  map.emplace_back(Value::TextString("prev"), Fixed(a.previous_head));
  map.emplace_back(Value::TextString("request"), Fixed(a.request));
  map.emplace_back(Value::TextString("staging"), Fixed(a.staging));
  map.emplace_back(Value::TextString("pcrs"), EncodePcrs(a.new_pcrs));
  map.emplace_back(Value::TextString("activated_at"), Value::Uint(a.activated_at_unix));
  map.emplace_back(Value::TextString("new_key"), Value::ByteString(ByteSpan(a.new_enclave_key)));
  if (a.key_commitment) {
    map.emplace_back(Value::TextString("key_commitment"), Fixed(*a.key_commitment));
  }
  if (!a.attestation.empty()) {
    map.emplace_back(Value::TextString("doc"), Value::ByteString(ByteSpan(a.attestation)));
  }
  return cbor::Encode(Value::MakeMap(std::move(map)));
}

enum class SignerRole { kControl, kReceipt };

Result<Bytes> SignPayload(const Bytes& payload, const crypto::Signer& signer, SignerRole role) {
  if (role == SignerRole::kControl && !ControlAlgorithm(signer.algorithm())) {
    return Invalid("control keys must be Ed25519 or P-256 (" + signer.Describe() + ")");
  }
  if (role == SignerRole::kReceipt && signer.algorithm() != crypto::SignatureAlgorithm::kEd25519) {
    return Invalid("receipt keys must be Ed25519 (" + signer.Describe() + ")");
  }
  ASSIGN_OR_RETURN(Bytes entry, cose::CreateSign1(payload, signer, cose::Tagging::kUntagged,
                                                  Value::MakeMap({}), AsBytes(kExternalAad)));
  if (entry.size() > kMaxEntrySize) {
    return Invalid(std::string("entry of ")
                       .append(std::to_string(entry.size()))
                       .append(" bytes (limit 24 KiB)"));
  }
  return entry;
}

// --- Decoding. ---

// Fields reads a map whose text keys must be exactly `required` plus any of `optional`.
class Fields {
 public:
  static Result<Fields> Of(const Value& map, std::string_view what,
                           std::initializer_list<std::string_view> required,
                           std::initializer_list<std::string_view> optional = {}) {
    size_t present = 0;
    for (const auto& [key, value] : map.as_map()) {
      if (!key.is_text()) {
        return Malformed(std::string(what).append(": a key is not text"));
      }
      std::string_view name = key.as_text();
      if (std::find(required.begin(), required.end(), name) != required.end()) {
        ++present;
      } else if (std::find(optional.begin(), optional.end(), name) == optional.end()) {
        return Malformed(std::string(what).append(": unknown field \"")
                             .append(name.substr(0, 32))
                             .append("\""));
      }
    }
    // The decoder refuses duplicate keys, so counting the required ones finds any missing.
    if (present != required.size()) {
      for (std::string_view name : required) {
        if (map.Find(name) == nullptr) {
          return Malformed(std::string(what).append(": no \"").append(name).append("\""));
        }
      }
    }
    return Fields(map, what);
  }

  Result<Digest> Hash(std::string_view key) const {
    const Value* v = map_->Find(key);
    if (v == nullptr || !v->is_bytes() || v->as_bytes().size() != kDigestSize) {
      return Bad(key, "must be 32 bytes");
    }
    Digest out{};
    std::copy(v->as_bytes().begin(), v->as_bytes().end(), out.begin());
    return out;
  }
  Result<std::optional<Digest>> OptionalHash(std::string_view key) const {
    if (map_->Find(key) == nullptr) {
      return std::optional<Digest>();
    }
    ASSIGN_OR_RETURN(Digest d, Hash(key));
    return std::optional<Digest>(d);
  }
  Result<uint64_t> Uint(std::string_view key) const {
    const Value* v = map_->Find(key);
    if (v == nullptr || !v->is_unsigned()) {
      return Bad(key, "must be an unsigned integer");
    }
    return v->as_uint();
  }
  Result<bool> Bool(std::string_view key) const {
    const Value* v = map_->Find(key);
    if (v == nullptr || !v->is_bool()) {
      return Bad(key, "must be a boolean");
    }
    return v->as_bool();
  }
  Result<std::string> Text(std::string_view key) const {
    const Value* v = map_->Find(key);
    if (v == nullptr || !v->is_text()) {
      return Bad(key, "must be text");
    }
    return v->as_text();
  }
  Result<Bytes> ByteString(std::string_view key) const {
    const Value* v = map_->Find(key);
    if (v == nullptr || !v->is_bytes()) {
      return Bad(key, "must be a byte string");
    }
    return v->as_bytes();
  }
  Result<std::vector<Bytes>> ByteStrings(std::string_view key, size_t max) const {
    const Value* v = map_->Find(key);
    if (v == nullptr || !v->is_array() || v->as_array().size() > max) {
      return Bad(key, std::string("must be an array of at most ")
                           .append(std::to_string(max))
                           .append(" byte strings"));
    }
    std::vector<Bytes> out;
    for (const Value& item : v->as_array()) {
      if (!item.is_bytes()) {
        return Bad(key, "must hold byte strings");
      }
      out.push_back(item.as_bytes());
    }
    return out;
  }
  Result<PcrMap> Pcrs(std::string_view key) const {
    const Value* v = map_->Find(key);
    if (v == nullptr || !v->is_map() || v->as_map().size() > kMaxPcrs) {
      return Bad(key, "must be a map of at most 32 PCRs");
    }
    PcrMap out;
    for (const auto& [index, value] : v->as_map()) {
      if (!index.is_unsigned() || index.as_uint() >= kMaxPcrs || !value.is_bytes()) {
        return Bad(key, "must map PCR indices 0..31 to byte strings");
      }
      out[static_cast<uint32_t>(index.as_uint())] = value.as_bytes();
    }
    return out;
  }

 private:
  Fields(const Value& map, std::string_view what) : map_(&map), what_(what) {}
  Error Bad(std::string_view key, std::string_view problem) const {
    return Malformed(std::string(what_).append(": ").append(key).append(" ").append(problem));
  }
  const Value* map_;
  std::string what_;
};

Result<Genesis> DecodeGenesis(const Value& root) {
  ASSIGN_OR_RETURN(Fields f, Fields::Of(root, "genesis", {"t", "v", "id", "pcrs", "keys",
                                                           "upgradable", "window", "created"}));
  Genesis g;
  ASSIGN_OR_RETURN(g.enclave_id, f.Text("id"));
  ASSIGN_OR_RETURN(g.first_pcrs, f.Pcrs("pcrs"));
  ASSIGN_OR_RETURN(g.control_keys, f.ByteStrings("keys", kMaxControlKeys));
  ASSIGN_OR_RETURN(g.upgradable, f.Bool("upgradable"));
  ASSIGN_OR_RETURN(g.min_staging_window_s, f.Uint("window"));
  ASSIGN_OR_RETURN(g.created_unix, f.Uint("created"));
  if (auto p = CheckGenesis(g)) {
    return Malformed("genesis: " + *p);
  }
  return g;
}

Result<UpgradeRequest> DecodeRequest(const Value& root) {
  ASSIGN_OR_RETURN(Fields f, Fields::Of(root, "request",
                                        {"t", "v", "genesis", "prev", "pcrs", "not_before", "id"}));
  UpgradeRequest r;
  ASSIGN_OR_RETURN(r.genesis, f.Hash("genesis"));
  ASSIGN_OR_RETURN(r.previous_head, f.Hash("prev"));
  ASSIGN_OR_RETURN(r.new_pcrs, f.Pcrs("pcrs"));
  ASSIGN_OR_RETURN(r.not_before_unix, f.Uint("not_before"));
  ASSIGN_OR_RETURN(r.id, f.Text("id"));
  if (auto p = CheckRequest(r)) {
    return Malformed("request: " + *p);
  }
  return r;
}

Result<Revocation> DecodeRevocation(const Value& root) {
  ASSIGN_OR_RETURN(Fields f, Fields::Of(root, "revocation", {"t", "v", "request"}));
  Revocation r;
  ASSIGN_OR_RETURN(r.request, f.Hash("request"));
  return r;
}

Result<StagingReceipt> DecodeStaging(const Value& root) {
  ASSIGN_OR_RETURN(Fields f,
                   Fields::Of(root, "staging receipt", {"t", "v", "request", "staged_at", "doc"}));
  StagingReceipt s;
  ASSIGN_OR_RETURN(s.request, f.Hash("request"));
  ASSIGN_OR_RETURN(s.staged_at_unix, f.Uint("staged_at"));
  ASSIGN_OR_RETURN(s.attestation, f.ByteString("doc"));
  if (auto p = CheckDocument(s.attestation)) {
    return Malformed("staging receipt: " + *p);
  }
  return s;
}

Result<ActivationReceipt> DecodeActivation(const Value& root) {
  ASSIGN_OR_RETURN(Fields f, Fields::Of(root, "activation receipt",
                                        {"t", "v", "prev", "request", "staging", "pcrs",
                                         "activated_at", "new_key"},
                                        {"key_commitment", "doc"}));
  ActivationReceipt a;
  ASSIGN_OR_RETURN(a.previous_head, f.Hash("prev"));
  ASSIGN_OR_RETURN(a.request, f.Hash("request"));
  ASSIGN_OR_RETURN(a.staging, f.Hash("staging"));
  ASSIGN_OR_RETURN(a.new_pcrs, f.Pcrs("pcrs"));
  ASSIGN_OR_RETURN(a.activated_at_unix, f.Uint("activated_at"));
  ASSIGN_OR_RETURN(a.new_enclave_key, f.ByteString("new_key"));
  ASSIGN_OR_RETURN(a.key_commitment, f.OptionalHash("key_commitment"));
  if (root.Find("doc") != nullptr) {
    ASSIGN_OR_RETURN(a.attestation, f.ByteString("doc"));
    if (a.attestation.empty()) {
      return Malformed("activation receipt: doc must not be empty (leave it out instead)");
    }
  }
  if (auto p = CheckActivation(a)) {
    return Malformed("activation receipt: " + *p);
  }
  return a;
}

// ParseEnvelope parses the COSE_Sign1 and insists on the one byte form Sign* produce, so an
// entry's hash (its identity, or the next head) cannot be changed without its signer.
Result<cose::Sign1> ParseEnvelope(ByteSpan bytes) {
  if (bytes.size() > kMaxEntrySize) {
    return Error(Code::kLimitExceeded, std::string("upgrade: entry of ")
                                           .append(std::to_string(bytes.size()))
                                           .append(" bytes (limit 24 KiB)"));
  }
  cbor::DecodeOptions options;
  options.max_input_size = kMaxEntrySize;
  options.max_depth = 4;
  options.max_items = 32;
  options.allow_indefinite = false;
  options.allow_undefined = false;
  auto sign1 = cose::ParseSign1(bytes, options);
  if (!sign1) {
    return Error(sign1.error().code(), "upgrade: entry: " + sign1.error().message());
  }
  if (sign1->tagged) {
    return Malformed("entry: COSE_Sign1 must be untagged");
  }
  if (!sign1->unprotected.is_map() || !sign1->unprotected.as_map().empty()) {
    return Malformed("entry: the unprotected header must be empty");
  }
  Value::Map header;
  header.emplace_back(Value::Int(1), Value::Int(static_cast<int64_t>(sign1->algorithm)));
  if (sign1->protected_header != cbor::Encode(Value::MakeMap(std::move(header)))) {
    return Malformed("entry: the protected header must be exactly {1: alg}");
  }
  Value::Array parts;
  parts.push_back(Value::ByteString(ByteSpan(sign1->protected_header)));
  parts.push_back(Value::MakeMap({}));
  parts.push_back(Value::ByteString(ByteSpan(sign1->payload)));
  parts.push_back(Value::ByteString(ByteSpan(sign1->signature)));
  Bytes canonical = cbor::Encode(Value::MakeArray(std::move(parts)));
  if (!SameBytes(canonical, bytes)) {
    return Malformed("entry: COSE_Sign1 is not in deterministic encoding");
  }
  return sign1;
}

bool PcrsEqual(const PcrMap& expected, const std::map<uint32_t, Bytes>& actual, bool debug_ok) {
  for (const auto& [index, value] : expected) {
    auto it = actual.find(index);
    if (it == actual.end()) {
      return false;
    }
    if (it->second == value) {
      continue;
    }
    // A debug-mode enclave reports PCR0, 1, 2 and 8 as zero (Nitro); only allow_debug accepts it.
    bool zeroed = index == 0 || index == 1 || index == 2 || index == 8;
    bool zero = std::all_of(it->second.begin(), it->second.end(), [](uint8_t b) { return b == 0; });
    if (!(debug_ok && zeroed && zero)) {
      return false;
    }
  }
  return true;
}

const char* Article(EntryType type) {
  switch (type) {
    case EntryType::kGenesis:
      return "a genesis";
    case EntryType::kRequest:
      return "an upgrade request";
    case EntryType::kRevocation:
      return "a revocation";
    case EntryType::kStaging:
      return "a staging receipt";
    case EntryType::kActivation:
      return "an activation receipt";
  }
  return "an entry";
}

// VerifyReceipt checks a receipt's own document and that the document's key signed the entry:
// the document verifies at its own time, binds (public_key) the Ed25519 key that signed the
// receipt, and was made by the enclave in force before this step (PCRs, user_data = head).
// VerifiedDocuments remembers, within one VerifyChain, the receipt documents that verified (by
// their exact bytes): an activation receipt without a document of its own relies on its staging
// receipt's, which is then checked once, not twice.
using VerifiedDocuments = std::map<std::string, attestation::AttestationDocument>;

Result<void> VerifyReceipt(ByteSpan entry, const Bytes& document, const Digest& head_before,
                           const PcrMap& pcrs_before, const ChainOptions& options,
                           VerifiedDocuments& verified_documents) {
  std::string document_bytes(document.begin(), document.end());
  auto known = verified_documents.find(document_bytes);
  if (known == verified_documents.end()) {
    auto parsed = attestation::ParseUnverified(document);
    if (!parsed) {
      return std::move(parsed).error().WithContext("receipt attestation");
    }
    attestation::TrustPolicy policy;
    policy.allow_debug = options.allow_debug;
    auto verified = options.verifier->Verify(
        document, FromUnixMillis(parsed->document.timestamp_ms), policy);
    if (!verified) {
      return std::move(verified).error().WithContext("receipt attestation");
    }
    known = verified_documents.emplace(std::move(document_bytes), verified->document()).first;
  }
  const attestation::AttestationDocument& doc = known->second;
  Error unbound(Code::kVerifyFailed, "receipt is signed by a key no attestation binds");
  if (!doc.public_key || doc.public_key->size() != 32) {
    return unbound;
  }
  auto key = crypto::PublicKey::FromRaw(crypto::SignatureAlgorithm::kEd25519, *doc.public_key);
  if (!key) {
    return unbound;
  }
  ASSIGN_OR_RETURN(cose::Sign1 sign1, ParseEnvelope(entry));
  if (!cose::VerifySign1(sign1, *key, AsBytes(kExternalAad))) {
    return unbound;
  }
  if (!PcrsEqual(pcrs_before, doc.pcrs, options.allow_debug)) {
    return Error(Code::kPolicyViolation,
                 "receipt attestation PCRs are not the PCRs in force before this step");
  }
  if (!doc.user_data || !SameBytes(*doc.user_data, head_before)) {
    return Error(Code::kPolicyViolation,
                 "receipt attestation does not bind the chain head before this step");
  }
  return Ok();
}

// At prefixes "upgrade: entry N: " to an error from a helper that has no prefix of its own.
Error At(size_t index, const Error& error) {
  std::string_view message = error.message();
  constexpr std::string_view kPrefix = "upgrade: ";
  if (message.substr(0, kPrefix.size()) == kPrefix) {
    message.remove_prefix(kPrefix.size());
  }
  return Error(error.code(), std::string("upgrade: ").append(EntryPrefix(index)).append(message));
}

// CheckPosition checks that a request extends exactly this chain's head.
Result<void> CheckPosition(const VerifiedChain& ours, const UpgradeRequest& request) {
  if (request.genesis != ours.genesis_hash) {
    return Policy("request is for another enclave (genesis " + Short(request.genesis) +
                  "..., this chain's is " + Short(ours.genesis_hash) + "...)");
  }
  if (request.previous_head != ours.head) {
    return Policy("request extends head " + Short(request.previous_head) + "..., not the current " +
                  Short(ours.head) + "...: replayed or forked");
  }
  return Ok();
}

Result<void> CheckUpgradable(const Genesis& genesis) {
  if (!genesis.upgradable) {
    return Policy("the genesis is immutable: it accepts no upgrade");
  }
  return Ok();
}

}  // namespace

const char* EntryTypeName(EntryType type) {
  switch (type) {
    case EntryType::kGenesis:
      return "genesis";
    case EntryType::kRequest:
      return "request";
    case EntryType::kRevocation:
      return "revocation";
    case EntryType::kStaging:
      return "staging";
    case EntryType::kActivation:
      return "activation";
  }
  return "unknown";
}

Result<Bytes> SignGenesis(const Genesis& genesis, const crypto::Signer& control_key) {
  Genesis g = genesis;
  Bytes signer_spki = control_key.public_key().ToSpki();
  if (g.control_keys.empty() && !g.upgradable) {
    g.control_keys.push_back(signer_spki);
  }
  if (auto p = CheckGenesis(g)) {
    return Invalid("genesis: " + *p);
  }
  if (std::find(g.control_keys.begin(), g.control_keys.end(), signer_spki) ==
      g.control_keys.end()) {
    return Invalid("genesis: its control keys must name the key that signs it (" +
                   control_key.Describe() + ")");
  }
  return SignPayload(EncodeGenesis(g), control_key, SignerRole::kControl);
}

Result<Bytes> SignRequest(const UpgradeRequest& request, const crypto::Signer& control_key) {
  if (auto p = CheckRequest(request)) {
    return Invalid("request: " + *p);
  }
  return SignPayload(EncodeRequest(request), control_key, SignerRole::kControl);
}

Result<Bytes> SignRevocation(const Revocation& revocation, const crypto::Signer& control_key) {
  return SignPayload(EncodeRevocation(revocation), control_key, SignerRole::kControl);
}

Result<Bytes> SignStaging(const StagingReceipt& receipt, const crypto::Signer& receipt_key) {
  if (auto p = CheckDocument(receipt.attestation)) {
    return Invalid("staging receipt: " + *p);
  }
  return SignPayload(EncodeStaging(receipt), receipt_key, SignerRole::kReceipt);
}

Result<Bytes> SignActivation(const ActivationReceipt& receipt, const crypto::Signer& receipt_key) {
  if (auto p = CheckActivation(receipt)) {
    return Invalid("activation receipt: " + *p);
  }
  return SignPayload(EncodeActivation(receipt), receipt_key, SignerRole::kReceipt);
}

Result<Entry> ParseEntry(ByteSpan bytes) {
  ASSIGN_OR_RETURN(cose::Sign1 sign1, ParseEnvelope(bytes));
  cbor::DecodeOptions limits;
  limits.max_input_size = kMaxEntrySize;
  limits.max_depth = 4;
  limits.max_items = 256;
  auto root = cbor::DecodeDeterministicMap(sign1.payload, limits);
  if (!root) {
    return Error(root.error().code(), "upgrade: entry payload " + root.error().message());
  }
  const Value* version = root->Find("v");
  if (version == nullptr || !version->is_unsigned()) {
    return Malformed("entry has no format version");
  }
  if (version->as_uint() != kFormatVersion) {
    return Error(Code::kUnsupported,
                 std::string("upgrade: entry format version ")
                     .append(std::to_string(version->as_uint())));
  }
  const Value* tag = root->Find("t");
  if (tag == nullptr || !tag->is_text()) {
    return Malformed("entry has no type");
  }
  Entry entry;
  entry.bytes = ToBytes(bytes);
  const std::string& t = tag->as_text();
  if (t == "genesis") {
    entry.type = EntryType::kGenesis;
    ASSIGN_OR_RETURN(entry.body, DecodeGenesis(*root));
  } else if (t == "request") {
    entry.type = EntryType::kRequest;
    ASSIGN_OR_RETURN(entry.body, DecodeRequest(*root));
  } else if (t == "revocation") {
    entry.type = EntryType::kRevocation;
    ASSIGN_OR_RETURN(entry.body, DecodeRevocation(*root));
  } else if (t == "staging") {
    entry.type = EntryType::kStaging;
    ASSIGN_OR_RETURN(entry.body, DecodeStaging(*root));
  } else if (t == "activation") {
    entry.type = EntryType::kActivation;
    ASSIGN_OR_RETURN(entry.body, DecodeActivation(*root));
  } else {
    return Error(Code::kUnsupported, "upgrade: unknown entry type");
  }
  bool receipt = entry.type == EntryType::kStaging || entry.type == EntryType::kActivation;
  if (receipt && sign1.algorithm != cose::Algorithm::kEdDsa) {
    return Error(Code::kUnsupported, "upgrade: receipts must be signed with EdDSA");
  }
  if (!receipt && sign1.algorithm == cose::Algorithm::kEs384) {
    return Error(Code::kUnsupported, "upgrade: control keys must be Ed25519 or P-256");
  }
  return entry;
}

Result<Genesis> ParseGenesis(ByteSpan bytes) {
  ASSIGN_OR_RETURN(Entry entry, ParseEntry(bytes));
  if (entry.type != EntryType::kGenesis) {
    return Malformed(std::string("expected a genesis, found ").append(Article(entry.type)));
  }
  return std::get<Genesis>(std::move(entry.body));
}

Result<UpgradeRequest> ParseRequest(ByteSpan bytes) {
  ASSIGN_OR_RETURN(Entry entry, ParseEntry(bytes));
  if (entry.type != EntryType::kRequest) {
    return Malformed(std::string("expected an upgrade request, found ").append(Article(entry.type)));
  }
  return std::get<UpgradeRequest>(std::move(entry.body));
}

Result<Revocation> ParseRevocation(ByteSpan bytes) {
  ASSIGN_OR_RETURN(Entry entry, ParseEntry(bytes));
  if (entry.type != EntryType::kRevocation) {
    return Malformed(std::string("expected a revocation, found ").append(Article(entry.type)));
  }
  return std::get<Revocation>(std::move(entry.body));
}

Digest GenesisHash(ByteSpan genesis_entry) { return Hash(kGenesisDomain, {genesis_entry}); }
Digest RequestHash(ByteSpan request_entry) { return Hash(kRequestDomain, {request_entry}); }
Digest StagingHash(ByteSpan staging_entry) { return Hash(kStagingDomain, {staging_entry}); }
Digest HeadAfterActivation(ByteSpan activation_entry) {
  return Hash(kHeadDomain, {activation_entry});
}
Digest KeyCommitment(ByteSpan volume_key, ByteSpan new_enclave_key) {
  return Hash(kKeyCommitmentDomain, {volume_key, new_enclave_key});
}
std::string DigestHex(const Digest& digest) { return HexEncode(ByteSpan(digest)); }

Result<void> VerifyControlSigned(const Genesis& genesis, ByteSpan entry) {
  ASSIGN_OR_RETURN(Entry parsed, ParseEntry(entry));
  ASSIGN_OR_RETURN(cose::Sign1 sign1, ParseEnvelope(entry));
  if (parsed.type == EntryType::kStaging || parsed.type == EntryType::kActivation) {
    return Invalid("receipts are signed by an enclave, not a control key");
  }
  for (const Bytes& spki : genesis.control_keys) {
    auto key = crypto::PublicKey::FromSpki(spki);
    if (key && cose::VerifySign1(sign1, *key, AsBytes(kExternalAad))) {
      return Ok();
    }
  }
  if (parsed.type == EntryType::kGenesis) {
    return Error(Code::kVerifyFailed,
                 "upgrade: genesis is not signed by a control key it names");
  }
  return Error(Code::kVerifyFailed, std::string("upgrade: ")
                                        .append(EntryTypeName(parsed.type))
                                        .append(" is not signed by a control key of this genesis"));
}

const PcrMap& VerifiedChain::PcrsAt(size_t n) const {
  ENCLAVIA_CHECK(n <= steps.size());
  return n == 0 ? genesis.first_pcrs : steps[n - 1].activation.new_pcrs;
}

Result<VerifiedChain> VerifyChain(const std::vector<Bytes>& chain, const ChainOptions& options) {
  if (options.verifier == nullptr) {
    return Invalid("no verifier for receipt attestations");
  }
  if (chain.empty()) {
    return Malformed("empty chain: no genesis");
  }
  if (chain.size() > kMaxChainLength) {
    return Error(Code::kLimitExceeded, std::string("upgrade: chain of ")
                                           .append(std::to_string(chain.size()))
                                           .append(" entries (limit ")
                                           .append(std::to_string(kMaxChainLength))
                                           .append(")"));
  }
  std::vector<Entry> entries;
  entries.reserve(chain.size());
  for (size_t i = 0; i < chain.size(); ++i) {
    auto entry = ParseEntry(chain[i]);
    if (!entry) {
      return At(i, entry.error());
    }
    entries.push_back(std::move(entry).value());
  }

  // Shape first: a genesis, then whole (request, staging, activation) triples.
  if (entries[0].type != EntryType::kGenesis) {
    return At(0, Malformed(std::string("the chain must start with a genesis, found ")
                               .append(Article(entries[0].type))));
  }
  static constexpr std::array<EntryType, 3> kTriple = {EntryType::kRequest, EntryType::kStaging,
                                                       EntryType::kActivation};
  for (size_t i = 1; i < entries.size(); ++i) {
    size_t slot = (i - 1) % 3;
    EntryType want = kTriple[slot];
    EntryType got = entries[i].type;
    if (got == want) {
      continue;
    }
    std::string found = std::string("expected ").append(Article(want)).append(", found ").append(
        Article(got));
    if (got == EntryType::kGenesis || got == EntryType::kRevocation) {
      return At(i, Malformed(found + ": only a chain's first entry is a genesis, and revocations "
                                     "never enter a chain"));
    }
    // A later entry of the triple where `want` belongs: `want` is missing (a gap) unless it
    // turns up just after (swapped entries).
    auto pos = std::find(kTriple.begin(), kTriple.end(), got);
    bool later = static_cast<size_t>(pos - kTriple.begin()) > slot;
    bool turns_up = false;
    if (i + 1 < entries.size()) {
      turns_up = entries[i + 1].type == want;
    }
    if (later && !turns_up) {
      return At(i, Malformed("gap: " + found));
    }
    return At(i, Malformed("reordered or duplicate entry: " + found));
  }
  if ((entries.size() - 1) % 3 != 0) {
    EntryType missing = kTriple[(entries.size() - 1) % 3];
    return At(entries.size(), Malformed(std::string("gap: the chain ends without ")
                                            .append(Article(missing))));
  }

  VerifiedChain out;
  out.allow_debug = options.allow_debug;
  out.genesis = std::get<Genesis>(entries[0].body);
  {
    auto signed_ok = VerifyControlSigned(out.genesis, chain[0]);
    if (!signed_ok) {
      return At(0, signed_ok.error());
    }
  }
  out.genesis_hash = GenesisHash(chain[0]);
  out.head = out.genesis_hash;
  out.head_pcrs = out.genesis.first_pcrs;
  std::set<Digest> seen_requests;

  VerifiedDocuments verified_documents;
  for (size_t i = 1; i < entries.size(); i += 3) {
    Step step;
    step.request = std::get<UpgradeRequest>(entries[i].body);
    step.staging = std::get<StagingReceipt>(entries[i + 1].body);
    step.activation = std::get<ActivationReceipt>(entries[i + 2].body);
    step.request_hash = RequestHash(chain[i]);

    // The request.
    if (auto upgradable = CheckUpgradable(out.genesis); !upgradable) {
      return At(i, upgradable.error());
    }
    if (auto signed_ok = VerifyControlSigned(out.genesis, chain[i]); !signed_ok) {
      return At(i, signed_ok.error());
    }
    if (!seen_requests.insert(step.request_hash).second) {
      return At(i, Malformed("duplicate: request " + Short(step.request_hash) +
                             "... already appears in this chain"));
    }
    if (auto fits = CheckPosition(out, step.request); !fits) {
      return At(i, fits.error());
    }

    // The staging receipt: the old enclave saw this request at staged_at.
    if (step.staging.request != step.request_hash) {
      return At(i + 1, Policy("staging receipt names another request"));
    }
    if (auto ok = VerifyReceipt(chain[i + 1], step.staging.attestation, out.head, out.head_pcrs,
                                options, verified_documents);
        !ok) {
      return At(i + 1, ok.error());
    }

    // The activation receipt: the old enclave handed over to exactly the staged PCRs, in time.
    const ActivationReceipt& a = step.activation;
    if (a.previous_head != out.head) {
      return At(i + 2, Policy("activation receipt extends head " + Short(a.previous_head) +
                              "..., not " + Short(out.head) + "..."));
    }
    if (a.request != step.request_hash) {
      return At(i + 2, Policy("activation receipt names another request"));
    }
    if (a.staging != StagingHash(chain[i + 1])) {
      return At(i + 2, Policy("activation receipt names another staging receipt"));
    }
    if (a.new_pcrs != step.request.new_pcrs) {
      return At(i + 2, Policy("activation receipt PCRs differ from the staged request's"));
    }
    const Bytes& activation_doc = a.attestation.empty() ? step.staging.attestation : a.attestation;
    if (auto ok = VerifyReceipt(chain[i + 2], activation_doc, out.head, out.head_pcrs, options,
                                verified_documents);
        !ok) {
      return At(i + 2, ok.error());
    }
    uint64_t due = DueAt(out, step.request, step.staging.staged_at_unix);
    if (a.activated_at_unix < due) {
      return At(i + 2, Policy(std::string("activated before its window ended (activated at ")
                                  .append(std::to_string(a.activated_at_unix))
                                  .append(", due at ")
                                  .append(std::to_string(due))
                                  .append(")")));
    }

    step.head = HeadAfterActivation(chain[i + 2]);
    out.head = step.head;
    out.head_pcrs = a.new_pcrs;
    out.steps.push_back(std::move(step));
  }
  return out;
}

Result<size_t> AcceptChain(const VerifiedChain& chain, const ChainTrust& trust) {
  if (std::find(trust.genesis.begin(), trust.genesis.end(), chain.genesis_hash) !=
      trust.genesis.end()) {
    return size_t{0};
  }
  for (size_t n = 0; n <= chain.steps.size(); ++n) {
    const PcrMap& pcrs = chain.PcrsAt(n);
    for (const PcrMap& set : trust.pcrs) {
      if (!set.empty() && PcrsEqual(set, pcrs, /*debug_ok=*/false)) {
        return n;
      }
    }
  }
  std::string pcr0 = "none";
  if (auto it = chain.head_pcrs.find(0); it != chain.head_pcrs.end()) {
    pcr0 = HexEncode(it->second).substr(0, 16) + "...";
  }
  return Policy("the chain (genesis " + Short(chain.genesis_hash) + "..., head PCR0 " + pcr0 +
                ") descends from no trusted genesis or PCR set");
}

Result<void> CheckPresented(const VerifiedChain& chain,
                            const attestation::AttestationDocument& doc) {
  if (!PcrsEqual(chain.head_pcrs, doc.pcrs, chain.allow_debug && attestation::IsDebugMode(doc))) {
    return Policy("the enclave's attestation PCRs are not the chain's last");
  }
  if (!doc.user_data || !SameBytes(*doc.user_data, chain.head)) {
    return Policy("the enclave's attestation does not bind the chain head");
  }
  return Ok();
}

Result<UpgradeRequest> CheckStage(const VerifiedChain& ours, ByteSpan request_entry) {
  ASSIGN_OR_RETURN(UpgradeRequest request, ParseRequest(request_entry));
  RETURN_IF_ERROR(CheckUpgradable(ours.genesis));
  RETURN_IF_ERROR(VerifyControlSigned(ours.genesis, request_entry));
  RETURN_IF_ERROR(CheckPosition(ours, request));
  return request;
}

uint64_t DueAt(const VerifiedChain& ours, const UpgradeRequest& request, uint64_t staged_at_unix) {
  uint64_t window_end = CheckedAdd(staged_at_unix, ours.genesis.min_staging_window_s)
                            .value_or(std::numeric_limits<uint64_t>::max());
  return std::max(window_end, request.not_before_unix);
}

}  // namespace enclavia::upgrade
