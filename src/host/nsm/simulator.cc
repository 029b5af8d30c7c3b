// SPDX-License-Identifier: Apache-2.0
#include "host/nsm/simulator.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "lib/base/file.h"
#include "lib/cose/sign1.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"

namespace enclavia::host {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

constexpr uint16_t kBootLockedPcrs = 16;  // Nitro locks PCR0..15 at boot.
constexpr size_t kRandomSize = 256;
constexpr auto kLeafLifetime = hours(3);
constexpr auto kLeafRenewBefore = hours(1);
constexpr auto kIntermediateLifetime = hours(24 * 30);
constexpr auto kIntermediateRenewBefore = hours(24);
// Certificates start a little before "now" so that a verifier whose clock lags still accepts them.
constexpr auto kBackdate = minutes(1);

Error NsmError(Code code, const char* aws_code) {
  return Error(code, std::string("nsm: ") + aws_code);
}

Result<void> CheckIndex(uint16_t index) {
  if (index >= attestation::kNsmMaxPcrs) {
    return NsmError(Code::kInvalidArgument, "InvalidIndex");
  }
  return Ok();
}

std::string RandomHex(size_t bytes) { return HexEncode(crypto::RandomBytes(bytes)); }

std::string RandomModuleId() {
  // AWS: "i-" + 17 hex digits of the instance id + "-enc" + 16 hex digits of the enclave id.
  return "i-" + RandomHex(9).substr(0, 17) + "-enc" + RandomHex(8);
}

Result<crypto::Certificate> Issue(const std::string& cn, bool ca, const crypto::PublicKey& key,
                                  const crypto::PrivateKey& issuer_key,
                                  const crypto::Certificate& issuer, SystemTime from,
                                  SystemTime until) {
  crypto::CertificateSpec spec;
  spec.subject = {{"C", "US"}, {"O", "Enclavia"}, {"OU", "Local Nitro simulator"}, {"CN", cn}};
  spec.not_before = from;
  spec.not_after = until;
  spec.is_ca = ca;
  return crypto::IssueCertificate(spec, key, issuer_key, &issuer);
}

}  // namespace

Result<SimulatorCa> SimulatorCa::LoadOrCreate(const std::string& state_dir, const Clock& clock) {
  namespace fs = std::filesystem;
  const std::string cert_path = state_dir + "/root.pem";
  const std::string key_path = state_dir + "/root.key";
  std::error_code ec;
  bool have_cert = fs::exists(cert_path, ec);
  bool have_key = fs::exists(key_path, ec);
  if (have_cert != have_key) {
    return Error(Code::kFailedPrecondition,
                 "simulator: " + state_dir + " holds only one of root.pem and root.key");
  }
  if (have_cert) {
    ASSIGN_OR_RETURN(Bytes pem, ReadFile(cert_path, 64 * 1024));
    ASSIGN_OR_RETURN(Bytes key_pem, ReadFile(key_path, 64 * 1024));
    auto cert = crypto::Certificate::FromPem(AsString(pem));
    if (!cert) {
      return std::move(cert).error().WithContext("simulator: " + cert_path);
    }
    crypto::SecretBytes key_secret(key_pem);
    crypto::Cleanse(key_pem.data(), key_pem.size());
    auto key = crypto::PrivateKey::FromPem(AsString(key_secret.Expose()));
    if (!key) {
      return std::move(key).error().WithContext("simulator: " + key_path);
    }
    ASSIGN_OR_RETURN(crypto::PublicKey cert_key, cert->public_key());
    if (cert_key.ToSpki() != key->public_key().ToSpki()) {
      return Error(Code::kFailedPrecondition, "simulator: root.key does not match root.pem");
    }
    return SimulatorCa(std::move(cert).value(), std::move(key).value());
  }

  fs::create_directories(state_dir, ec);
  if (ec) {
    return Error(Code::kIo, "simulator: cannot create " + state_dir + ": " + ec.message());
  }
  ::chmod(state_dir.c_str(), 0700);
  SystemTime now = clock ? clock() : std::chrono::system_clock::now();
  crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEcdsaP384Sha384);
  crypto::CertificateSpec spec;
  spec.subject = {{"C", "US"},
                  {"O", "Enclavia"},
                  {"OU", "Local Nitro simulator"},
                  {"CN", "enclavia-nsm-simulator-root-" + RandomHex(4)}};
  spec.not_before = now - kBackdate;
  spec.not_after = now + hours(24 * 365 * 30);
  spec.is_ca = true;
  ASSIGN_OR_RETURN(crypto::Certificate root,
                   crypto::IssueCertificate(spec, key.public_key(), key, nullptr));
  ASSIGN_OR_RETURN(crypto::SecretBytes key_pem, key.ToPem());
  RETURN_IF_ERROR(WriteFileAtomic(key_path, key_pem.Expose(), 0600));
  std::string cert_pem = root.ToPem();
  RETURN_IF_ERROR(WriteFileAtomic(cert_path, AsBytes(cert_pem), 0644));
  return SimulatorCa(std::move(root), std::move(key));
}

NsmSimulator::NsmSimulator(Passkey /*unused*/, std::shared_ptr<const SimulatorCa> ca,
                           SimulatorOptions options)
    : ca_(std::move(ca)), options_(std::move(options)) {
  for (auto& pcr : pcrs_) {
    pcr.assign(attestation::kPcrSize, 0);
  }
}

Result<std::unique_ptr<NsmSimulator>> NsmSimulator::Create(std::shared_ptr<const SimulatorCa> ca,
                                                           SimulatorOptions options) {
  if (ca == nullptr) {
    return Error(Code::kInvalidArgument, "simulator: no CA");
  }
  for (const auto& [index, value] : options.boot_pcrs) {
    if (index >= attestation::kNsmMaxPcrs) {
      return Error(Code::kInvalidArgument, "simulator: PCR index " + std::to_string(index) +
                                               " out of range");
    }
    if (value.size() != attestation::kPcrSize) {
      return Error(Code::kInvalidArgument, "simulator: PCR" + std::to_string(index) +
                                               " must be 48 bytes");
    }
  }
  if (options.module_id.empty()) {
    options.module_id = RandomModuleId();
  }
  if (!options.clock) {
    options.clock = [] { return std::chrono::system_clock::now(); };
  }
  auto sim = std::make_unique<NsmSimulator>(Passkey(), std::move(ca), std::move(options));
  for (const auto& [index, value] : sim->options_.boot_pcrs) {
    sim->pcrs_[index] = value;
  }
  if (sim->options_.debug) {
    for (uint16_t index : {uint16_t{0}, uint16_t{1}, uint16_t{2}, uint16_t{8}}) {
      sim->pcrs_[index].assign(attestation::kPcrSize, 0);
    }
  }
  for (uint16_t i = 0; i < kBootLockedPcrs; ++i) {
    sim->locked_[i] = true;
  }
  return sim;
}

Result<void> NsmSimulator::EnsureChain(SystemTime now) {
  bool renew_intermediates =
      intermediates_.empty() ||
      intermediates_.back().cert.not_after() - kIntermediateRenewBefore < now ||
      intermediates_.front().cert.not_before() > now;
  if (renew_intermediates) {
    intermediates_.clear();
    leaf_.reset();
    // Three levels like AWS's regional, zonal and instance CAs.
    const char* names[] = {"regional", "zonal", "instance"};
    const crypto::Certificate* issuer_cert = &ca_->root();
    const crypto::PrivateKey* issuer_key = &ca_->key();
    for (const char* name : names) {
      auto key = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEcdsaP384Sha384);
      ASSIGN_OR_RETURN(crypto::Certificate cert,
                       Issue(std::string(name) + "." + RandomHex(8) + ".simulator", true,
                             key.public_key(), *issuer_key, *issuer_cert, now - kBackdate,
                             now + kIntermediateLifetime));
      intermediates_.push_back(Issuer{std::move(cert), std::move(key)});
      issuer_cert = &intermediates_.back().cert;
      issuer_key = &intermediates_.back().key;
    }
  }
  if (!leaf_ || leaf_->cert.not_after() - kLeafRenewBefore < now || leaf_->cert.not_before() > now) {
    const Issuer& issuer = intermediates_.back();
    auto key = crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEcdsaP384Sha384);
    ASSIGN_OR_RETURN(crypto::Certificate cert,
                     Issue(options_.module_id + ".simulator", false, key.public_key(), issuer.key,
                           issuer.cert, now - kBackdate, now + kLeafLifetime));
    leaf_ = Issuer{std::move(cert), std::move(key)};
  }
  return Ok();
}

Result<Bytes> NsmSimulator::Attestation(const attestation::AttestationRequest& request) {
  for (const auto* field : {&request.user_data, &request.nonce, &request.public_key}) {
    if (*field && (*field)->size() > attestation::kNsmMaxOptionalFieldSize) {
      return NsmError(Code::kInvalidArgument, "InputTooLarge");
    }
  }
  SystemTime now = options_.clock();
  RETURN_IF_ERROR(EnsureChain(now));

  attestation::AttestationDocument doc;
  doc.module_id = options_.module_id;
  doc.digest = "SHA384";
  doc.timestamp_ms = static_cast<uint64_t>(ToUnixMillis(now));
  for (uint16_t i = 0; i < kBootLockedPcrs; ++i) {
    doc.pcrs[i] = pcrs_[i];
  }
  doc.certificate = leaf_->cert.der();
  doc.cabundle.push_back(ca_->root().der());
  for (const Issuer& issuer : intermediates_) {
    doc.cabundle.push_back(issuer.cert.der());
  }
  doc.public_key = request.public_key;
  doc.user_data = request.user_data;
  doc.nonce = request.nonce;
  Bytes payload = attestation::EncodePayload(doc, options_.encoding);
  return cose::CreateSign1(payload, leaf_->key, cose::Tagging::kUntagged);
}

Result<attestation::PcrDescription> NsmSimulator::DescribePcr(uint16_t index) {
  RETURN_IF_ERROR(CheckIndex(index));
  return attestation::PcrDescription{locked_[index], pcrs_[index]};
}

Result<Bytes> NsmSimulator::ExtendPcr(uint16_t index, ByteSpan data) {
  RETURN_IF_ERROR(CheckIndex(index));
  if (locked_[index]) {
    return NsmError(Code::kFailedPrecondition, "ReadOnlyIndex");
  }
  if (data.size() > 1024) {
    return NsmError(Code::kInvalidArgument, "InputTooLarge");
  }
  crypto::Sha384Digest next = crypto::Sha384(Concat({pcrs_[index], data}));
  pcrs_[index].assign(next.begin(), next.end());
  return pcrs_[index];
}

Result<void> NsmSimulator::LockPcr(uint16_t index) {
  RETURN_IF_ERROR(CheckIndex(index));
  locked_[index] = true;
  return Ok();
}

Result<void> NsmSimulator::LockPcrs(uint16_t range) {
  if (range > attestation::kNsmMaxPcrs) {
    return NsmError(Code::kInvalidArgument, "InvalidIndex");
  }
  for (uint16_t i = 0; i < range; ++i) {
    locked_[i] = true;
  }
  return Ok();
}

Result<attestation::NsmDescription> NsmSimulator::DescribeNsm() {
  attestation::NsmDescription d;
  d.version_major = 1;
  d.version_minor = 0;
  d.version_patch = 0;
  d.module_id = options_.module_id;
  d.max_pcrs = attestation::kNsmMaxPcrs;
  for (uint16_t i = 0; i < attestation::kNsmMaxPcrs; ++i) {
    if (locked_[i]) {
      d.locked_pcrs.push_back(i);
    }
  }
  d.digest = "SHA384";
  return d;
}

Result<Bytes> NsmSimulator::GetRandom() { return crypto::RandomBytes(kRandomSize); }

}  // namespace enclavia::host
