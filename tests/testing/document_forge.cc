// SPDX-License-Identifier: Apache-2.0
// Same-directory include: the enclavia_testing_forge target does not put tests/ on its own
// include path (its consumers get it from enclavia::testing).
#include "testing/document_forge.h"

#include <algorithm>
#include <string>
#include <utility>

#include "lib/base/reader.h"
#include "lib/crypto/random.h"

namespace enclavia::testing {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

constexpr auto kSkew = hours(1);
constexpr auto kRootLifetime = hours(24 * 365 * 30);
constexpr auto kIntermediateLifetime = hours(24 * 30);
constexpr auto kLeafLifetime = hours(3);
constexpr int64_t kHeaderAlg = 1;  // RFC 9052 §3.1.
constexpr int64_t kHeaderCrit = 2;

struct Window {
  SystemTime not_before;
  SystemTime not_after;
};

Window PickWindow(const CertOptions& options, SystemTime now, SystemTime::duration lifetime) {
  Window w{now - minutes(1), now + lifetime};
  switch (options.validity) {
    case Validity::kCurrent:
      break;
    case Validity::kExpired:
      w = {now - lifetime - kSkew, now - kSkew};
      break;
    case Validity::kNotYetValid:
      w = {now + kSkew, now + kSkew + lifetime};
      break;
  }
  if (options.not_before) {
    w.not_before = *options.not_before;
  }
  if (options.not_after) {
    w.not_after = *options.not_after;
  }
  return w;
}

crypto::PrivateKey NewKey() {
  return crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEcdsaP384Sha384);
}

// Issue makes one certificate of the chain; `issuer` null means self-signed by `subject_key`.
Result<crypto::Certificate> Issue(const std::string& cn, bool default_ca,
                                  const CertOptions& options, SystemTime now,
                                  SystemTime::duration lifetime,
                                  const crypto::PrivateKey& subject_key,
                                  const crypto::PrivateKey& issuer_key,
                                  const crypto::Certificate* issuer) {
  Window w = PickWindow(options, now, lifetime);
  crypto::CertificateSpec spec;
  spec.subject = {{"C", "US"}, {"O", "Enclavia"}, {"OU", "DocumentForge"}, {"CN", cn}};
  spec.not_before = w.not_before;
  spec.not_after = w.not_after;
  spec.is_ca = options.ca == CaBit::kDefault ? default_ca : options.ca == CaBit::kCa;
  return crypto::IssueCertificate(spec, subject_key.public_key(), issuer_key, issuer);
}

void WriteHead(Writer& w, uint8_t major, uint64_t n) {
  auto mt = static_cast<uint8_t>(major << 5);
  if (n < 24) {
    w.WriteU8(static_cast<uint8_t>(mt | n));
  } else if (n <= 0xff) {
    w.WriteU8(mt | 24);
    w.WriteU8(static_cast<uint8_t>(n));
  } else if (n <= 0xffff) {
    w.WriteU8(mt | 25);
    w.WriteU16Be(static_cast<uint16_t>(n));
  } else if (n <= 0xffffffff) {
    w.WriteU8(mt | 26);
    w.WriteU32Be(static_cast<uint32_t>(n));
  } else {
    w.WriteU8(mt | 27);
    w.WriteU64Be(n);
  }
}

bool HasTextKey(const std::pair<cbor::Value, cbor::Value>& entry, std::string_view name) {
  return entry.first.is_text() && entry.first.as_text() == name;
}

}  // namespace

Result<DocumentForge> DocumentForge::Create(const PkiOptions& options) {
  RETURN_IF_ERROR(crypto::Init());
  const SystemTime now = options.now;

  crypto::PrivateKey root_key = NewKey();
  ASSIGN_OR_RETURN(crypto::Certificate root, Issue("forge root", true, options.root, now,
                                                   kRootLifetime, root_key, root_key, nullptr));

  std::vector<crypto::Certificate> intermediates;
  std::vector<crypto::PrivateKey> keys;
  // Reserved so that `issuer` and `issuer_key`, which point into them, survive push_back.
  intermediates.reserve(kForgeIntermediates);
  keys.reserve(kForgeIntermediates);
  const crypto::Certificate* issuer = &root;
  const crypto::PrivateKey* issuer_key = &root_key;
  for (size_t i = 0; i < kForgeIntermediates; ++i) {
    keys.push_back(NewKey());
    ASSIGN_OR_RETURN(
        crypto::Certificate cert,
        Issue("forge intermediate " + std::to_string(i), true, options.intermediates[i], now,
              kIntermediateLifetime, keys.back(), *issuer_key, issuer));
    intermediates.push_back(std::move(cert));
    issuer = &intermediates.back();
    issuer_key = &keys.back();
  }
  crypto::PrivateKey leaf_key = NewKey();
  ASSIGN_OR_RETURN(crypto::Certificate leaf,
                   Issue("i-0123456789abcdef0-enc0123456789abcdef.forge", false, options.leaf, now,
                         kLeafLifetime, leaf_key, *issuer_key, issuer));

  crypto::PrivateKey unrelated_key = NewKey();
  ASSIGN_OR_RETURN(crypto::Certificate unrelated,
                   Issue("unrelated root", true, CertOptions{}, now, kRootLifetime, unrelated_key,
                         unrelated_key, nullptr));

  return DocumentForge(now, std::move(root), std::move(intermediates), std::move(leaf),
                       std::move(leaf_key), std::move(unrelated), NewKey());
}

attestation::AttestationDocument DocumentForge::DefaultDocument(CabundleEdit edit) const {
  attestation::AttestationDocument doc;
  doc.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  doc.digest = "SHA384";
  doc.timestamp_ms = static_cast<uint64_t>(ToUnixMillis(now_));
  for (uint32_t i = 0; i < 16; ++i) {
    // PCR i is filled with the byte i+1, so PCR0 is not all zero (not debug mode).
    doc.pcrs[i] = Bytes(attestation::kPcrSize, static_cast<uint8_t>(i + 1));
  }
  doc.certificate = leaf_.der();
  doc.cabundle.push_back(root_.der());
  for (const crypto::Certificate& cert : intermediates_) {
    doc.cabundle.push_back(cert.der());
  }
  switch (edit) {
    case CabundleEdit::kNone:
      break;
    case CabundleEdit::kSwapIntermediates:
      std::swap(doc.cabundle[1], doc.cabundle[2]);
      break;
    case CabundleEdit::kDropRoot:
      doc.cabundle.erase(doc.cabundle.begin());
      break;
    case CabundleEdit::kAppendUnrelated:
      doc.cabundle.push_back(unrelated_.der());
      break;
  }
  return doc;
}

cbor::Value::Map DocumentForge::DefaultPayloadFields() const {
  return attestation::PayloadFields(DefaultDocument());
}

Result<Bytes> DocumentForge::Sign(const attestation::AttestationDocument& doc,
                                  const SignOptions& options,
                                  attestation::PayloadMapEncoding encoding) const {
  return SignPayload(attestation::EncodePayload(doc, encoding), options);
}

Result<Bytes> DocumentForge::SignPayload(ByteSpan payload, const SignOptions& options) const {
  cbor::Value::Map header;
  header.emplace_back(cbor::Value::Int(kHeaderAlg),
                      cbor::Value::Int(static_cast<int64_t>(options.alg)));
  if (options.crit) {
    header.emplace_back(cbor::Value::Int(kHeaderCrit),
                        cbor::Value::MakeArray({cbor::Value::Int(kHeaderAlg)}));
  }
  cbor::Value header_map = cbor::Value::MakeMap(std::move(header));
  Bytes protected_header = cbor::Encode(header_map);

  const crypto::PrivateKey& key = options.key == SigningKey::kLeaf ? leaf_key_ : other_key_;
  ASSIGN_OR_RETURN(Bytes signature, key.Sign(cose::SigStructure(protected_header, {}, payload)));
  if (options.signature_size_delta < 0) {
    auto drop = static_cast<size_t>(-options.signature_size_delta);
    signature.resize(signature.size() - std::min(drop, signature.size()));
  } else {
    signature.resize(signature.size() + static_cast<size_t>(options.signature_size_delta), 0);
  }

  cbor::Value protected_value = options.shape == EnvelopeShape::kProtectedNotBytes
                                    ? header_map
                                    : cbor::Value::ByteString(protected_header);
  cbor::Value payload_value = options.shape == EnvelopeShape::kPayloadNotBytes
                                  ? cbor::Value::TextString("payload")
                                  : cbor::Value::ByteString(payload);
  cbor::Value::Array parts;
  parts.push_back(std::move(protected_value));
  parts.push_back(cbor::Value::MakeMap({}));
  parts.push_back(std::move(payload_value));
  if (options.shape != EnvelopeShape::kThreeElements) {
    parts.push_back(cbor::Value::ByteString(std::move(signature)));
  }

  cbor::Value msg;
  if (options.shape == EnvelopeShape::kMap) {
    cbor::Value::Map as_map;
    for (size_t i = 0; i < parts.size(); ++i) {
      as_map.emplace_back(cbor::Value::Uint(i), std::move(parts[i]));
    }
    msg = cbor::Value::MakeMap(std::move(as_map));
  } else {
    msg = cbor::Value::MakeArray(std::move(parts));
  }
  if (options.tag) {
    msg = cbor::Value::Tagged(*options.tag, std::move(msg));
  }
  Bytes out = cbor::Encode(msg, cbor::MapOrder::kAsGiven);
  out.insert(out.end(), options.trailing.begin(), options.trailing.end());
  return out;
}

Bytes EncodePayloadMap(const cbor::Value::Map& fields, MapHead head) {
  Writer w;
  constexpr uint8_t kMajorMap = 5;
  if (head == MapHead::kDefinite) {
    WriteHead(w, kMajorMap, fields.size());
  } else {
    w.WriteU8(0xbf);  // RFC 8949 §3.2.2: indefinite-length map, ended by a break.
  }
  for (const auto& [key, value] : fields) {
    w.WriteBytes(cbor::Encode(key, cbor::MapOrder::kAsGiven));
    w.WriteBytes(cbor::Encode(value, cbor::MapOrder::kAsGiven));
  }
  if (head == MapHead::kIndefinite) {
    w.WriteU8(0xff);
  }
  return w.Finish();
}

void SetField(cbor::Value::Map& fields, std::string_view name, cbor::Value value) {
  auto it = std::find_if(fields.begin(), fields.end(),
                         [name](const auto& entry) { return HasTextKey(entry, name); });
  if (it != fields.end()) {
    it->second = std::move(value);
  } else {
    AppendField(fields, name, std::move(value));
  }
}

void RemoveField(cbor::Value::Map& fields, std::string_view name) {
  std::erase_if(fields, [name](const auto& entry) { return HasTextKey(entry, name); });
}

void AppendField(cbor::Value::Map& fields, std::string_view name, cbor::Value value) {
  fields.emplace_back(cbor::Value::TextString(name), std::move(value));
}

}  // namespace enclavia::testing
