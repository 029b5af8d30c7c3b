// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_TESTS_TESTING_UPGRADE_CHAIN_H_
#define ENCLAVIA_TESTS_TESTING_UPGRADE_CHAIN_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/nsm/simulator.h"
#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/signer.h"
#include "lib/upgrade/chain.h"

// Test support (library enclavia::upgrade_testing, tests only): builds real upgrade chains whose
// receipts carry documents signed by the NSM simulator, valid or broken on purpose.
namespace enclavia::upgrade::testing {

// Pcrs returns a measurement for image `version`: PCR0, 1 and 2 filled with distinct bytes.
PcrMap Pcrs(uint8_t version);

// StepSpec describes one upgrade (request, staging receipt, activation receipt). Unset fields
// take the values of a valid step.
struct StepSpec {
  PcrMap new_pcrs;                       // Required.
  std::string id = "next";
  const crypto::Signer* control = nullptr;  // Default: the builder's first control key.
  std::optional<Digest> genesis;            // Default: the chain's.
  std::optional<Digest> previous_head;      // Default: the current head.
  uint64_t not_before_unix = 0;
  uint64_t staged_at_unix = 1'000'000;
  std::optional<uint64_t> activated_at_unix;  // Default: DueAt.
  std::optional<PcrMap> activation_pcrs;      // Default: new_pcrs.
  // The receipts' documents: made by an enclave with these PCRs (default: the current ones),
  // binding this user_data (default: the current head), and binding the receipt key unless
  // bind_other_key.
  std::optional<PcrMap> receipt_pcrs;
  std::optional<Bytes> receipt_user_data;
  bool bind_other_key = false;
  // The activation receipt carries its own document (another boot of the old enclave) instead
  // of relying on the staging receipt's; activation_by_other_key signs it with a key that
  // document does not bind.
  bool activation_document = false;
  bool activation_by_other_key = false;
  Bytes new_enclave_key = Bytes(32, 0x5e);
  std::optional<Digest> key_commitment;
};

struct StepEntries {
  Bytes request;
  Bytes staging;
  Bytes activation;
};

struct BuilderOptions {
  crypto::SignatureAlgorithm control_algorithm = crypto::SignatureAlgorithm::kEd25519;
  bool upgradable = true;
  uint64_t window_s = 3600;
  PcrMap first_pcrs = Pcrs(1);
  std::string enclave_id = "web";
  bool debug = false;  // Receipt documents come from debug-mode enclaves (PCR0, 1, 2, 8 zero).
};

// ChainBuilder holds a simulator CA, a verifier trusting it, control keys, and a chain it grows.
// Not thread-safe.
class ChainBuilder {
 public:
  ChainBuilder() = default;  // Use Create.
  // Create makes (or loads) a simulator CA in `state_dir` and signs a genesis.
  static Result<std::unique_ptr<ChainBuilder>> Create(const std::string& state_dir,
                                                      BuilderOptions options = {});

  // MakeStep signs the three entries of one step on top of the current chain, without adding
  // them. Step adds them and moves the head (computed, not verified: broken steps move it too).
  Result<StepEntries> MakeStep(const StepSpec& spec);
  Result<void> Step(const StepSpec& spec);

  // Document asks a simulated enclave running `pcrs` for a document.
  Result<Bytes> Document(const PcrMap& pcrs, std::optional<Bytes> public_key,
                         std::optional<Bytes> user_data, std::optional<Bytes> nonce = {});

  const std::vector<Bytes>& chain() const { return chain_; }
  std::vector<Bytes>& mutable_chain() { return chain_; }
  const Digest& genesis_hash() const { return genesis_hash_; }
  const Digest& head() const { return head_; }
  const PcrMap& pcrs() const { return pcrs_; }
  const crypto::Signer& control() const { return *control_; }
  // other_control is a key of the same type that the genesis does not name.
  const crypto::Signer& other_control() const { return *other_control_; }
  const crypto::Signer& receipt_key() const { return *receipt_key_; }
  std::shared_ptr<const attestation::Verifier> verifier() const { return verifier_; }
  std::shared_ptr<const host::SimulatorCa> ca() const { return ca_; }
  ChainOptions chain_options() const { return {verifier_, options_.debug}; }
  const BuilderOptions& options() const { return options_; }

 private:
  BuilderOptions options_;
  std::shared_ptr<const host::SimulatorCa> ca_;
  std::shared_ptr<const attestation::Verifier> verifier_;
  std::unique_ptr<crypto::MemorySigner> control_;
  std::unique_ptr<crypto::MemorySigner> other_control_;
  std::unique_ptr<crypto::MemorySigner> receipt_key_;
  std::unique_ptr<crypto::MemorySigner> other_receipt_key_;
  std::map<PcrMap, std::unique_ptr<host::NsmSimulator>> enclaves_;
  std::vector<Bytes> chain_;
  Digest genesis_hash_{};
  Digest head_{};
  PcrMap pcrs_;
};

}  // namespace enclavia::upgrade::testing

#endif  // ENCLAVIA_TESTS_TESTING_UPGRADE_CHAIN_H_
