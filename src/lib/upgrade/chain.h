// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_UPGRADE_CHAIN_H_
#define ENCLAVIA_LIB_UPGRADE_CHAIN_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/encoding.h"
#include "lib/base/result.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/signer.h"

// The upgrade chain (docs/formats/upgrade-chain.md, docs/upgrade.md): an enclave's history from
// its genesis, as a list of COSE_Sign1 entries whose payloads are deterministic CBOR maps, each
// with a type tag "t" and a version "v" = 1.
//
//   chain = [genesis, (request, staging receipt, activation receipt)*]
//
// Genesis and requests are signed by a control key the genesis names; receipts by the old
// enclave's receipt key (Ed25519, made at boot, never leaves the enclave), with the attestation
// document that binds that key (document.public_key) to the old PCRs and the old chain head
// (document.user_data). Revocations are signed by a control key and never enter the chain.
//
// Every hash is SHA-256 over length-prefixed, domain-separated input:
//   H(domain, parts...) = SHA-256(LP(domain) || LP(part1) || ...), LP(x) = u32 BE len || x.
//   genesis hash      = H("enclavia/upgrade/genesis/v1", genesis entry bytes)   (the identity)
//   request hash      = H("enclavia/upgrade/request/v1", request entry bytes)
//   staging hash      = H("enclavia/upgrade/staging/v1", staging entry bytes)
//   head after genesis    = genesis hash
//   head after activation = H("enclavia/upgrade/head/v1", activation entry bytes)
// (the activation receipt names the previous head, so heads form a hash chain).
namespace enclavia::upgrade {

using Digest = std::array<uint8_t, 32>;
// PcrMap is a measurement: every listed PCR (48 bytes each). Chains carry PCRs 0, 1, 2 (and 8
// when the image is signed).
using PcrMap = std::map<uint32_t, Bytes>;

inline constexpr uint64_t kFormatVersion = 1;
inline constexpr size_t kMaxEntrySize = 24 * 1024;   // An entry with an attestation document.
// Genesis and 10 upgrades: what fits, with the presented document, in one Noise message (the
// ServerHello, 65,519 bytes) and one audit response record when each step is about 5.3 KB
// (docs/upgrade.md, "Limits").
inline constexpr size_t kMaxChainLength = 1 + 3 * 10;
inline constexpr size_t kMaxControlKeys = 8;
inline constexpr size_t kMaxIdSize = 64;

struct Genesis {
  std::string enclave_id;            // 1..kMaxIdSize printable ASCII (the deployment's name).
  PcrMap first_pcrs;                 // 1..32 PCRs of 48 bytes.
  // control_keys are SubjectPublicKeyInfo DER (Ed25519 or P-256), 1..kMaxControlKeys, distinct.
  // The genesis is self-signed by one of them; an immutable genesis still names the key that
  // declared it (SignGenesis adds the signer's key when the list is empty and !upgradable).
  std::vector<Bytes> control_keys;
  bool upgradable = false;
  uint64_t min_staging_window_s = 0;  // Seconds; requests become due no earlier than this after staging.
  uint64_t created_unix = 0;          // Seconds since the epoch (the signer's clock; informative).
};

struct UpgradeRequest {
  Digest genesis{};        // The enclave this request is for.
  Digest previous_head{};  // The chain head it extends (so an old request cannot be replayed).
  PcrMap new_pcrs;
  uint64_t not_before_unix = 0;  // The owner's earliest activation time (enclave clock).
  std::string id;                // 1..kMaxIdSize of [A-Za-z0-9._-]; names it in the CLI.
};

struct Revocation {
  Digest request{};  // The request hash it revokes.
};

struct StagingReceipt {
  Digest request{};           // The request hash.
  uint64_t staged_at_unix = 0;  // The old enclave's clock.
  Bytes attestation;          // COSE_Sign1 NSM document: public_key = the receipt key
                              // (Ed25519 raw, 32 bytes), user_data = previous head.
};

struct ActivationReceipt {
  Digest previous_head{};
  Digest request{};
  Digest staging{};              // The staging receipt's hash.
  PcrMap new_pcrs;
  uint64_t activated_at_unix = 0;  // The old enclave's clock.
  // The new enclave's Noise static key (X25519, 32 bytes) as its fresh attestation showed it: the
  // handover went to exactly that key.
  Bytes new_enclave_key;
  // key_commitment = H("enclavia/upgrade/key-commitment/v1", volume key, new_enclave_key) when a
  // volume key was handed over; absent otherwise. Lets the new enclave check the key it received
  // is the one the old enclave vouched for.
  std::optional<Digest> key_commitment;
  // attestation: as in StagingReceipt (user_data = previous head), or empty when the staging
  // receipt's document binds the key that signs this receipt too (same enclave boot): that
  // halves a step's size (~4.4 KiB per document), and chains travel in one ServerHello.
  Bytes attestation;
};

enum class EntryType { kGenesis, kRequest, kRevocation, kStaging, kActivation };
const char* EntryTypeName(EntryType type);  // "genesis", "request", …: the payload's "t".

// Encoding and signing. Sign* make COSE_Sign1 (untagged, protected {1: alg}, unprotected {},
// external_aad "enclavia/upgrade/v1") entries whose payload is the deterministic CBOR map of the
// struct with "t" and "v". Receipts are signed by the enclave's receipt key (Ed25519 only), the
// rest by a control key (Ed25519 or P-256). kInvalidArgument for a struct that breaks the limits
// above, a signer of another algorithm, or a genesis whose control_keys do not name its signer;
// the signer's own errors pass through.
Result<Bytes> SignGenesis(const Genesis& genesis, const crypto::Signer& control_key);
Result<Bytes> SignRequest(const UpgradeRequest& request, const crypto::Signer& control_key);
Result<Bytes> SignRevocation(const Revocation& revocation, const crypto::Signer& control_key);
Result<Bytes> SignStaging(const StagingReceipt& receipt, const crypto::Signer& receipt_key);
Result<Bytes> SignActivation(const ActivationReceipt& receipt, const crypto::Signer& receipt_key);

// Parsing untrusted bytes, without checking signatures: COSE_Sign1 structure in its one byte form
// (untagged, empty unprotected header, canonical CBOR throughout), the algorithm allowed for the
// entry's signer, canonical payload, exact fields, sizes. kMalformed / kUnsupported /
// kLimitExceeded (over kMaxEntrySize), one line starting "upgrade: ".
struct Entry {
  EntryType type = EntryType::kGenesis;
  Bytes bytes;  // The whole entry as received.
  std::variant<Genesis, UpgradeRequest, Revocation, StagingReceipt, ActivationReceipt> body;
};
Result<Entry> ParseEntry(ByteSpan bytes);
// Typed helpers: kMalformed when the entry is of another type.
Result<Genesis> ParseGenesis(ByteSpan bytes);
Result<UpgradeRequest> ParseRequest(ByteSpan bytes);
Result<Revocation> ParseRevocation(ByteSpan bytes);

Digest GenesisHash(ByteSpan genesis_entry);
Digest RequestHash(ByteSpan request_entry);
Digest StagingHash(ByteSpan staging_entry);
Digest HeadAfterActivation(ByteSpan activation_entry);
Digest KeyCommitment(ByteSpan volume_key, ByteSpan new_enclave_key);
std::string DigestHex(const Digest& digest);

// VerifyControlSigned checks a genesis, request or revocation signature: the genesis against a
// key it names itself (self-signed), the others against one of `genesis.control_keys`.
// kVerifyFailed ("upgrade: request is not signed by a control key of this genesis").
Result<void> VerifyControlSigned(const Genesis& genesis, ByteSpan entry);

// Verifying a chain.
struct ChainOptions {
  std::shared_ptr<const attestation::Verifier> verifier;  // Roots for receipt documents.
  bool allow_debug = false;  // Accept receipts from debug-mode enclaves (PCR0 zero).
};

struct Step {
  UpgradeRequest request;
  StagingReceipt staging;
  ActivationReceipt activation;
  Digest request_hash{};
  Digest head{};  // The head after this step.
};

struct VerifiedChain {
  Genesis genesis;
  Digest genesis_hash{};
  std::vector<Step> steps;
  Digest head{};      // The last head (genesis_hash when there are no steps).
  PcrMap head_pcrs;   // first_pcrs, or the last step's new_pcrs.
  // allow_debug is ChainOptions::allow_debug: documents of debug-mode enclaves (PCR0, 1, 2, 8
  // zero) were accepted for the receipts and are for CheckPresented.
  bool allow_debug = false;
  // PcrsAt returns the PCRs in force after `n` steps (0: genesis).
  const PcrMap& PcrsAt(size_t n) const;
};

// VerifyChain checks a whole chain and returns it, or names the first problem in one line
// ("upgrade: entry 4: ...") with the code of what failed:
//  - 1..kMaxChainLength entries (kLimitExceeded), each parses (ParseEntry);
//  - entry 0 is a genesis, self-signed by one of its control keys (kVerifyFailed);
//  - then triples (request, staging, activation), nothing else, nothing missing (kMalformed:
//    "gap", "reordered", "duplicate");
//  - each request: the genesis upgradable (kPolicyViolation: "immutable"), signed by a genesis
//    control key (kVerifyFailed), not seen before in the chain (kMalformed: "duplicate"),
//    genesis == this chain's (kPolicyViolation), previous_head == the head before it
//    (kPolicyViolation: replayed or forked);
//  - each receipt: its document verifies against `options.verifier` at the document's own time,
//    document.public_key is the key that signed the receipt (kVerifyFailed: "signed by a key no
//    attestation binds"), document PCRs equal the PCRs in force before the step
//    (kPolicyViolation), document.user_data == the head before the step, request/staging hashes
//    match (kPolicyViolation);
//  - activation.new_pcrs == request.new_pcrs; activated_at >= staged_at + the genesis window and
//    >= request.not_before (kPolicyViolation: "activated before its window ended").
Result<VerifiedChain> VerifyChain(const std::vector<Bytes>& chain, const ChainOptions& options);

// What a client trusts (channel::TrustPolicy carries one): genesis hashes, or PCR sets, either of
// which is enough to follow the chain from there.
struct ChainTrust {
  std::vector<Digest> genesis;
  std::vector<PcrMap> pcrs;  // A set matches a step when every PCR it lists is equal.
};

// AcceptChain decides whether a verified chain descends from something trusted: its genesis
// hash is trusted, or a trusted PCR set equals the PCRs of the genesis or of any step. Returns
// the index (0 = genesis) of the first trusted point, or kPolicyViolation naming the head PCR0.
Result<size_t> AcceptChain(const VerifiedChain& chain, const ChainTrust& trust);

// CheckPresented checks that a verified attestation document belongs at the chain's head:
// PCRs equal head_pcrs and user_data == head. `doc` must come from a Verifier::Verify whose
// policy's allow_debug was no looser than chain.allow_debug. kPolicyViolation otherwise ("upgrade: the enclave's
// attestation does not bind the chain head"; "...PCRs are not the chain's last").
Result<void> CheckPresented(const VerifiedChain& chain, const attestation::AttestationDocument& doc);

// The old enclave's decisions (src/enclave/upgrade), on its own chain and clock:
// CheckStage: the genesis upgradable, request signed by a control key, for this genesis,
// previous_head == our head (codes as in VerifyChain). Not already staged/revoked: the caller
// keeps that state.
Result<UpgradeRequest> CheckStage(const VerifiedChain& ours, ByteSpan request_entry);
// DueAt: when a staged request may activate: max(staged_at + genesis window, not_before).
uint64_t DueAt(const VerifiedChain& ours, const UpgradeRequest& request, uint64_t staged_at_unix);

}  // namespace enclavia::upgrade

#endif  // ENCLAVIA_LIB_UPGRADE_CHAIN_H_
