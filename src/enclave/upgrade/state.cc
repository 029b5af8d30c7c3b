// SPDX-License-Identifier: Apache-2.0
#include "enclave/upgrade/state.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "lib/attestation/document.h"
#include "lib/cose/sign1.h"
#include "lib/crypto/secret.h"

namespace enclavia::enclave {
namespace {

// The COSE external_aad every upgrade entry is signed with (lib/upgrade/chain.cc).
constexpr std::string_view kEntryAad = "enclavia/upgrade/v1";
// kMaxStaged bounds the requests staged at once (the host returns them with their receipts in
// at most 16 "staged" entries).
constexpr size_t kMaxStaged = 8;

Error Refused(Code code, std::string_view what) {
  return Error(code, "upgrade: " + std::string(what));
}

bool DigestEquals(ByteSpan a, ByteSpan b) {
  return a.size() == b.size() && crypto::ConstantTimeEqual(a, b);
}

}  // namespace

const char* UpgradePhaseName(UpgradePhase phase) {
  switch (phase) {
    case UpgradePhase::kUnchained:
      return "unchained";
    case UpgradePhase::kServing:
      return "serving";
    case UpgradePhase::kAwaitingHandover:
      return "awaiting handover";
    case UpgradePhase::kSuperseded:
      return "superseded";
  }
  return "unknown";
}

bool PcrsMatch(const upgrade::PcrMap& want, const std::map<uint32_t, Bytes>& have) {
  return std::all_of(want.begin(), want.end(), [&](const auto& entry) {
    auto it = have.find(entry.first);
    return it != have.end() && it->second == entry.second;
  });
}

uint64_t UpgradeState::Now() const {
  if (options_.now_unix) {
    return options_.now_unix();
  }
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Result<Bytes> UpgradeState::ReceiptDocument() {
  Bytes raw = receipt_key_.public_key().ToRaw();
  return options_.source->ForKey(raw, {});
}

Result<std::unique_ptr<UpgradeState>> UpgradeState::Boot(const upgrade::HostChain& host,
                                                         UpgradeOptions options) {
  if (options.source == nullptr || options.verifier == nullptr) {
    return Error(Code::kInvalidArgument, "upgrade: no attestation source or verifier");
  }
  crypto::MemorySigner receipt_key(
      crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519), "receipt key");
  std::unique_ptr<UpgradeState> state(new UpgradeState(std::move(options), std::move(receipt_key)));
  // Our own PCRs, from a document our NSM makes now (our own NSM: no need to verify it).
  ASSIGN_OR_RETURN(Bytes own, state->ReceiptDocument());
  ASSIGN_OR_RETURN(attestation::ParsedDocument parsed, attestation::ParseUnverified(own));
  state->own_pcrs_ = parsed.document.pcrs;

  if (host.chain.empty()) {
    if (host.pending.has_value()) {
      return Refused(Code::kMalformed, "the host names a pending request but no chain");
    }
    if (!state->options_.pinned_control_keys.empty()) {
      return Refused(Code::kPolicyViolation,
                     "this image pins control keys but the host gave no chain");
    }
    return state;  // Unchained: today's behaviour.
  }
  RETURN_IF_ERROR(state->LoadChained(host));
  return state;
}

Result<void> UpgradeState::LoadChained(const upgrade::HostChain& host) {
  upgrade::ChainOptions chain_options{options_.verifier, options_.allow_debug};
  ASSIGN_OR_RETURN(upgrade::VerifiedChain verified, upgrade::VerifyChain(host.chain, chain_options));
  if (!options_.pinned_control_keys.empty()) {
    for (const Bytes& key : verified.genesis.control_keys) {
      if (std::find(options_.pinned_control_keys.begin(), options_.pinned_control_keys.end(),
                    key) == options_.pinned_control_keys.end()) {
        return Refused(Code::kPolicyViolation,
                       "the genesis names a control key this image does not pin");
      }
    }
  }
  // Debug-mode documents show PCR0/1/2/8 as zero: nothing of ours to compare.
  const bool compare = !options_.allow_debug;
  verified_ = std::move(verified);
  chain_ = host.chain;

  // The host's staged list: request entries and staging receipts, matched by request hash.
  std::map<upgrade::Digest, Bytes> requests;
  std::multimap<upgrade::Digest, Bytes> receipts;  // The host may offer several: any may check.
  for (const Bytes& entry : host.staged) {
    auto parsed = upgrade::ParseEntry(entry);
    if (!parsed) {
      continue;  // Untrusted and optional: a bad entry is dropped.
    }
    if (parsed->type == upgrade::EntryType::kRequest) {
      requests[upgrade::RequestHash(entry)] = entry;
    } else if (parsed->type == upgrade::EntryType::kStaging) {
      receipts.emplace(std::get<upgrade::StagingReceipt>(parsed->body).request, entry);
    }
  }

  if (host.pending.has_value()) {
    ASSIGN_OR_RETURN(upgrade::UpgradeRequest request,
                     upgrade::CheckStage(*verified_, *host.pending));
    if (compare && !PcrsMatch(request.new_pcrs, own_pcrs_)) {
      return Refused(Code::kPolicyViolation,
                     "the pending request's PCRs are not this enclave's PCRs");
    }
    upgrade::Digest hash = upgrade::RequestHash(*host.pending);
    std::optional<Error> why;
    auto [first, last] = receipts.equal_range(hash);
    for (auto it = first; it != last && !pending_.has_value(); ++it) {
      auto staged = CheckOwnReceipt(*host.pending, it->second);
      if (staged) {
        pending_ = std::move(*staged);
      } else {
        why = staged.error();
      }
    }
    if (!pending_.has_value()) {
      if (why.has_value()) {
        return why->WithContext("the pending request's staging receipt");
      }
      return Refused(Code::kFailedPrecondition, "the pending request has no staging receipt");
    }
    phase_ = UpgradePhase::kAwaitingHandover;
    // Until handed over this enclave is not at any chain's head: it presents itself like an
    // unchained enclave (no chain, no user_data), which the old enclave checks against the
    // staged PCRs, and which no client that follows the chain accepts.
    options_.source->SetChain({}, {});
    return Ok();
  }

  if (compare && !PcrsMatch(verified_->head_pcrs, own_pcrs_)) {
    return Refused(Code::kPolicyViolation,
                   "this enclave's PCRs are not its chain's last (a superseded image?)");
  }
  for (const auto& [hash, request_entry] : requests) {
    auto [first, last] = receipts.equal_range(hash);
    for (auto it = first; it != last && staged_.size() < kMaxStaged; ++it) {
      auto staged = CheckOwnReceipt(request_entry, it->second);
      if (staged) {
        // A restart forgets revocations (they live in this process's memory), so a re-learnt
        // request waits a whole window again from this boot, in public, before it can
        // activate: the owner can revoke it again (docs/upgrade.md, "Revocation").
        staged->staged_at = std::max(staged->staged_at, Now());
        staged_.emplace(hash, std::move(*staged));
        break;
      }
    }
  }
  phase_ = UpgradePhase::kServing;
  options_.source->SetChain(chain_, Bytes(verified_->head.begin(), verified_->head.end()));
  return Ok();
}

Result<UpgradeState::Staged> UpgradeState::CheckOwnReceipt(ByteSpan request_entry,
                                                           ByteSpan staging_entry) const {
  ASSIGN_OR_RETURN(upgrade::UpgradeRequest request,
                   upgrade::CheckStage(*verified_, request_entry));
  ASSIGN_OR_RETURN(upgrade::Entry entry, upgrade::ParseEntry(staging_entry));
  if (entry.type != upgrade::EntryType::kStaging) {
    return Refused(Code::kMalformed, "not a staging receipt");
  }
  const auto& receipt = std::get<upgrade::StagingReceipt>(entry.body);
  upgrade::Digest hash = upgrade::RequestHash(request_entry);
  if (!DigestEquals(receipt.request, hash)) {
    return Refused(Code::kPolicyViolation, "the staging receipt names another request");
  }
  // The document: verified at its own time, binding the key that signed the receipt, made by
  // an enclave with the head's PCRs for the head.
  ASSIGN_OR_RETURN(attestation::ParsedDocument unverified,
                   attestation::ParseUnverified(receipt.attestation));
  attestation::TrustPolicy policy;
  policy.allow_debug = options_.allow_debug;
  auto at = SystemTime(std::chrono::milliseconds(unverified.document.timestamp_ms));
  ASSIGN_OR_RETURN(attestation::VerifiedAttestation verified,
                   options_.verifier->Verify(receipt.attestation, at, policy));
  const auto& doc = verified.document();
  if (!doc.user_data.has_value() || !DigestEquals(*doc.user_data, verified_->head)) {
    return Refused(Code::kPolicyViolation, "the staging receipt's document is for another head");
  }
  if (!verified.debug() && !PcrsMatch(verified_->head_pcrs, doc.pcrs)) {
    return Refused(Code::kPolicyViolation, "the staging receipt's document has other PCRs");
  }
  if (!doc.public_key.has_value()) {
    return Refused(Code::kVerifyFailed, "staging receipt signed by a key no attestation binds");
  }
  auto key = crypto::PublicKey::FromRaw(crypto::SignatureAlgorithm::kEd25519, *doc.public_key);
  ASSIGN_OR_RETURN(cose::Sign1 sign1, cose::ParseSign1(staging_entry));
  if (!key || !cose::VerifySign1(sign1, *key, AsBytes(kEntryAad))) {
    return Refused(Code::kVerifyFailed, "staging receipt signed by a key no attestation binds");
  }
  return Staged{Bytes(request_entry.begin(), request_entry.end()),
                Bytes(staging_entry.begin(), staging_entry.end()), std::move(request),
                receipt.staged_at_unix};
}

UpgradePhase UpgradeState::phase() const {
  std::lock_guard lock(mu_);
  return phase_;
}

upgrade::Message UpgradeState::ChainView() const {
  std::lock_guard lock(mu_);
  upgrade::Message view;
  view.type = upgrade::MessageType::kChain;
  view.chain = chain_;
  for (const auto& [hash, staged] : staged_) {
    view.staged.push_back(staged.request_entry);
  }
  for (const auto& [hash, staged] : staged_) {
    view.staged.push_back(staged.staging_entry);
  }
  return view;
}

std::vector<Bytes> UpgradeState::chain() const {
  std::lock_guard lock(mu_);
  return chain_;
}

std::optional<upgrade::Digest> UpgradeState::head() const {
  std::lock_guard lock(mu_);
  if (!verified_.has_value()) {
    return std::nullopt;
  }
  return verified_->head;
}

Result<Bytes> UpgradeState::Stage(ByteSpan request_entry) {
  std::lock_guard lock(mu_);
  switch (phase_) {
    case UpgradePhase::kUnchained:
      return Refused(Code::kFailedPrecondition, "this enclave has no genesis");
    case UpgradePhase::kAwaitingHandover:
      return Refused(Code::kFailedPrecondition, "this enclave awaits its handover");
    case UpgradePhase::kSuperseded:
      return Refused(Code::kFailedPrecondition, "this enclave is superseded");
    case UpgradePhase::kServing:
      break;
  }
  ASSIGN_OR_RETURN(upgrade::UpgradeRequest request, upgrade::CheckStage(*verified_, request_entry));
  upgrade::Digest hash = upgrade::RequestHash(request_entry);
  if (revoked_.contains(hash)) {
    return Refused(Code::kPolicyViolation, "request " + upgrade::DigestHex(hash).substr(0, 16) +
                                               " was revoked");
  }
  if (staged_.contains(hash)) {
    return Refused(Code::kAlreadyExists, "request " + upgrade::DigestHex(hash).substr(0, 16) +
                                             " is already staged");
  }
  if (staged_.size() >= kMaxStaged) {
    return Refused(Code::kLimitExceeded, "8 requests are staged already");
  }
  upgrade::StagingReceipt receipt;
  receipt.request = hash;
  receipt.staged_at_unix = Now();
  ASSIGN_OR_RETURN(receipt.attestation, ReceiptDocument());
  ASSIGN_OR_RETURN(Bytes signed_receipt, upgrade::SignStaging(receipt, receipt_key_));
  staged_.emplace(hash, Staged{Bytes(request_entry.begin(), request_entry.end()), signed_receipt,
                               std::move(request), receipt.staged_at_unix});
  return signed_receipt;
}

Result<void> UpgradeState::Revoke(ByteSpan revocation_entry) {
  std::lock_guard lock(mu_);
  if (phase_ == UpgradePhase::kUnchained) {
    return Refused(Code::kFailedPrecondition, "this enclave has no genesis");
  }
  if (phase_ == UpgradePhase::kSuperseded) {
    return Refused(Code::kFailedPrecondition, "this enclave is superseded");
  }
  ASSIGN_OR_RETURN(upgrade::Revocation revocation, upgrade::ParseRevocation(revocation_entry));
  RETURN_IF_ERROR(upgrade::VerifyControlSigned(verified_->genesis, revocation_entry));
  if (!staged_.contains(revocation.request)) {
    return Refused(Code::kNotFound, "request " + upgrade::DigestHex(revocation.request).substr(0, 16) +
                                        " is not staged here");
  }
  revoked_.insert(revocation.request);
  return Ok();
}

Result<UpgradeState::Activation> UpgradeState::BeginActivation(ByteSpan request_hash) {
  std::lock_guard lock(mu_);
  if (phase_ == UpgradePhase::kSuperseded) {
    return Refused(Code::kFailedPrecondition, "this enclave is superseded");
  }
  if (phase_ != UpgradePhase::kServing) {
    return Refused(Code::kFailedPrecondition, "this enclave has nothing staged to activate");
  }
  if (request_hash.size() != upgrade::Digest{}.size()) {
    return Refused(Code::kInvalidArgument, "a request hash is 32 bytes");
  }
  upgrade::Digest hash{};
  std::copy(request_hash.begin(), request_hash.end(), hash.begin());
  if (activating_) {
    return Refused(Code::kFailedPrecondition, "an activation is already running");
  }
  auto it = staged_.find(hash);
  if (it == staged_.end()) {
    return Refused(Code::kNotFound, "request " + upgrade::DigestHex(hash).substr(0, 16) +
                                        " is not staged here");
  }
  if (revoked_.contains(hash)) {
    return Refused(Code::kPolicyViolation, "request " + upgrade::DigestHex(hash).substr(0, 16) +
                                               " was revoked");
  }
  uint64_t due = upgrade::DueAt(*verified_, it->second.request, it->second.staged_at);
  uint64_t now = Now();
  if (now < due) {
    return Refused(Code::kFailedPrecondition,
                   "request " + upgrade::DigestHex(hash).substr(0, 16) + " is not due for " +
                       std::to_string(due - now) + " s (its staging window has not ended)");
  }
  activating_ = true;
  const Staged& staged = it->second;
  return Activation{staged.request_entry, staged.staging_entry, staged.request, hash,
                    upgrade::StagingHash(staged.staging_entry)};
}

Result<Bytes> UpgradeState::SignActivation(const Activation& activation, ByteSpan new_enclave_key,
                                           std::optional<upgrade::Digest> key_commitment) {
  upgrade::ActivationReceipt receipt;
  {
    std::lock_guard lock(mu_);
    if (!activating_ || !verified_.has_value()) {
      return Refused(Code::kFailedPrecondition, "no activation is running");
    }
    receipt.previous_head = verified_->head;
  }
  receipt.request = activation.request_hash;
  receipt.staging = activation.staging_hash;
  receipt.new_pcrs = activation.request.new_pcrs;
  receipt.activated_at_unix = Now();
  receipt.new_enclave_key = Bytes(new_enclave_key.begin(), new_enclave_key.end());
  receipt.key_commitment = key_commitment;
  ASSIGN_OR_RETURN(receipt.attestation, ReceiptDocument());
  return upgrade::SignActivation(receipt, receipt_key_);
}

void UpgradeState::FinishActivation(bool handed_over) {
  std::lock_guard lock(mu_);
  activating_ = false;
  if (handed_over) {
    phase_ = UpgradePhase::kSuperseded;
  }
}

Result<UpgradeState::Handover> UpgradeState::CheckHandover(
    ByteSpan activation_entry, const crypto::SecretBytes* ring,
    const crypto::X25519PublicKey& our_static_key) const {
  std::vector<Bytes> chain;
  {
    std::lock_guard lock(mu_);
    if (phase_ != UpgradePhase::kAwaitingHandover || !pending_.has_value()) {
      return Refused(Code::kFailedPrecondition, "this enclave awaits no handover");
    }
    chain = chain_;
    chain.push_back(pending_->request_entry);
    chain.push_back(pending_->staging_entry);
  }
  chain.emplace_back(activation_entry.begin(), activation_entry.end());
  upgrade::ChainOptions chain_options{options_.verifier, options_.allow_debug};
  ASSIGN_OR_RETURN(upgrade::VerifiedChain verified, upgrade::VerifyChain(chain, chain_options));
  if (verified.steps.empty()) {
    return Refused(Code::kInternal, "the extended chain has no step");
  }
  const upgrade::ActivationReceipt& activation = verified.steps.back().activation;
  if (!DigestEquals(activation.new_enclave_key, our_static_key)) {
    return Refused(Code::kPolicyViolation, "the activation receipt names another enclave's key");
  }
  if (activation.key_commitment.has_value() != (ring != nullptr)) {
    return Refused(Code::kPolicyViolation,
                   "the volume key handed over does not match the activation receipt");
  }
  if (ring != nullptr) {
    upgrade::Digest commitment = upgrade::KeyCommitment(ring->Expose(), our_static_key);
    if (!DigestEquals(commitment, *activation.key_commitment)) {
      return Refused(Code::kPolicyViolation,
                     "the volume key handed over does not match the activation receipt");
    }
  }
  return Handover{std::move(chain), std::move(verified)};
}

Result<void> UpgradeState::CompleteHandover(Handover handover) {
  std::lock_guard lock(mu_);
  if (phase_ != UpgradePhase::kAwaitingHandover) {
    return Refused(Code::kFailedPrecondition, "this enclave awaits no handover");
  }
  chain_ = std::move(handover.chain);
  verified_ = std::move(handover.verified);
  pending_.reset();
  staged_.clear();
  revoked_.clear();
  phase_ = UpgradePhase::kServing;
  options_.source->SetChain(chain_, Bytes(verified_->head.begin(), verified_->head.end()));
  return Ok();
}

}  // namespace enclavia::enclave
