// SPDX-License-Identifier: Apache-2.0
#include "testing/upgrade_chain.h"

#include <chrono>
#include <utility>

namespace enclavia::upgrade::testing {

PcrMap Pcrs(uint8_t version) {
  PcrMap pcrs;
  for (uint32_t i = 0; i < 3; ++i) {
    Bytes value(48, version);
    value[0] = static_cast<uint8_t>(0xa0 + i);  // Never all zero (a debug-mode PCR).
    pcrs[i] = std::move(value);
  }
  return pcrs;
}

Result<std::unique_ptr<ChainBuilder>> ChainBuilder::Create(const std::string& state_dir,
                                                           BuilderOptions options) {
  auto b = std::make_unique<ChainBuilder>();
  b->options_ = std::move(options);
  ASSIGN_OR_RETURN(host::SimulatorCa ca, host::SimulatorCa::LoadOrCreate(state_dir, [] {
                     return SystemTime(std::chrono::system_clock::now());
                   }));
  b->ca_ = std::make_shared<const host::SimulatorCa>(std::move(ca));
  ASSIGN_OR_RETURN(attestation::Verifier verifier,
                   attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust,
                                                 {b->ca_->root()}));
  b->verifier_ = std::make_shared<const attestation::Verifier>(std::move(verifier));
  auto alg = b->options_.control_algorithm;
  b->control_ = std::make_unique<crypto::MemorySigner>(crypto::PrivateKey::Generate(alg));
  b->other_control_ = std::make_unique<crypto::MemorySigner>(crypto::PrivateKey::Generate(alg));
  b->receipt_key_ = std::make_unique<crypto::MemorySigner>(
      crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519));
  b->other_receipt_key_ = std::make_unique<crypto::MemorySigner>(
      crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519));

  Genesis genesis;
  genesis.enclave_id = b->options_.enclave_id;
  genesis.first_pcrs = b->options_.first_pcrs;
  genesis.control_keys = {b->control_->public_key().ToSpki()};
  genesis.upgradable = b->options_.upgradable;
  genesis.min_staging_window_s = b->options_.window_s;
  genesis.created_unix = 1'700'000'000;
  ASSIGN_OR_RETURN(Bytes entry, SignGenesis(genesis, *b->control_));
  b->genesis_hash_ = GenesisHash(entry);
  b->head_ = b->genesis_hash_;
  b->pcrs_ = genesis.first_pcrs;
  b->chain_.push_back(std::move(entry));
  return b;
}

Result<Bytes> ChainBuilder::Document(const PcrMap& pcrs, std::optional<Bytes> public_key,
                                     std::optional<Bytes> user_data, std::optional<Bytes> nonce) {
  auto it = enclaves_.find(pcrs);
  if (it == enclaves_.end()) {
    host::SimulatorOptions sim;
    for (const auto& [index, value] : pcrs) {
      sim.boot_pcrs[static_cast<uint16_t>(index)] = value;
    }
    sim.debug = options_.debug;
    ASSIGN_OR_RETURN(std::unique_ptr<host::NsmSimulator> nsm,
                     host::NsmSimulator::Create(ca_, std::move(sim)));
    it = enclaves_.emplace(pcrs, std::move(nsm)).first;
  }
  attestation::AttestationRequest request;
  request.public_key = std::move(public_key);
  request.user_data = std::move(user_data);
  request.nonce = std::move(nonce);
  return it->second->Attestation(request);
}

Result<StepEntries> ChainBuilder::MakeStep(const StepSpec& spec) {
  StepEntries out;
  UpgradeRequest request;
  request.genesis = spec.genesis.value_or(genesis_hash_);
  request.previous_head = spec.previous_head.value_or(head_);
  request.new_pcrs = spec.new_pcrs;
  request.not_before_unix = spec.not_before_unix;
  request.id = spec.id;
  const crypto::Signer& control = spec.control != nullptr ? *spec.control : *control_;
  ASSIGN_OR_RETURN(out.request, SignRequest(request, control));

  const crypto::Signer& signer = *receipt_key_;
  const crypto::Signer& bound = spec.bind_other_key ? *other_receipt_key_ : *receipt_key_;
  Bytes user_data = spec.receipt_user_data.value_or(Bytes(head_.begin(), head_.end()));
  ASSIGN_OR_RETURN(Bytes doc, Document(spec.receipt_pcrs.value_or(pcrs_),
                                       bound.public_key().ToRaw(), user_data));

  StagingReceipt staging;
  staging.request = RequestHash(out.request);
  staging.staged_at_unix = spec.staged_at_unix;
  staging.attestation = doc;
  ASSIGN_OR_RETURN(out.staging, SignStaging(staging, signer));

  ActivationReceipt activation;
  activation.previous_head = head_;
  activation.request = staging.request;
  activation.staging = StagingHash(out.staging);
  activation.new_pcrs = spec.activation_pcrs.value_or(spec.new_pcrs);
  uint64_t due = std::max(spec.staged_at_unix + options_.window_s, spec.not_before_unix);
  activation.activated_at_unix = spec.activated_at_unix.value_or(due);
  activation.new_enclave_key = spec.new_enclave_key;
  activation.key_commitment = spec.key_commitment;
  if (spec.activation_document) {
    ASSIGN_OR_RETURN(activation.attestation,
                     Document(spec.receipt_pcrs.value_or(pcrs_), bound.public_key().ToRaw(),
                              user_data));
  }
  ASSIGN_OR_RETURN(out.activation,
                   SignActivation(activation, spec.activation_by_other_key ? *other_receipt_key_
                                                                             : signer));
  return out;
}

Result<void> ChainBuilder::Step(const StepSpec& spec) {
  ASSIGN_OR_RETURN(StepEntries step, MakeStep(spec));
  head_ = HeadAfterActivation(step.activation);
  pcrs_ = spec.activation_pcrs.value_or(spec.new_pcrs);
  chain_.push_back(std::move(step.request));
  chain_.push_back(std::move(step.staging));
  chain_.push_back(std::move(step.activation));
  return Ok();
}

}  // namespace enclavia::upgrade::testing
