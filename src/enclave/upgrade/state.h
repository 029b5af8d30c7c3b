// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_UPGRADE_STATE_H_
#define ENCLAVIA_ENCLAVE_UPGRADE_STATE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/channel/handshake.h"
#include "lib/crypto/signer.h"
#include "lib/crypto/x25519.h"
#include "lib/upgrade/chain.h"
#include "lib/upgrade/wire.h"

// The enclave's side of upgrades (docs/upgrade.md): what a running enclave knows about its own
// chain and the decisions it takes on its own clock. Sans-I/O apart from the NSM documents it asks
// its AttestationSource for; the upgrade service (service.h) and the handover (handover.h) do
// the talking.
namespace enclavia::enclave {

enum class UpgradePhase {
  kUnchained,          // The host gave no chain: no user_data, no chain, nothing to stage.
  kServing,            // Chained: documents bind the head; requests can be staged.
  kAwaitingHandover,   // A successor launched to be activated: no app stream until handed over.
  kSuperseded,         // Handed over to a successor: refuses everything.
};
const char* UpgradePhaseName(UpgradePhase phase);

struct UpgradeOptions {
  // source attests (receipt documents, own PCRs) and gets SetChain on every head change.
  std::shared_ptr<channel::AttestationSource> source;
  // verifier checks receipt documents (the NSM's root: VerifierFromOwnNsm).
  std::shared_ptr<const attestation::Verifier> verifier;
  // allow_debug: this enclave runs in debug mode, so receipts and successors in debug mode are
  // accepted (and our own all-zero PCRs are not compared with the chain's).
  bool allow_debug = false;
  // pinned_control_keys (SPKI DER) from the measured configuration: when non-empty, a genesis
  // must name only keys from it. Empty: any genesis whose head PCRs are ours.
  std::vector<Bytes> pinned_control_keys;
  // now_unix is this enclave's clock (seconds); defaults to the system clock.
  std::function<uint64_t()> now_unix;
};

// UpgradeState holds the verified chain, this enclave's PCRs, its receipt key (Ed25519, made at
// boot, never leaves this process), the staged requests, revocations, and the phase.
// Thread-safe: every method takes one lock (none blocks on I/O except the NSM).
class UpgradeState {
 public:
  // Boot decides from the host's (untrusted) answer to "chain":
  //  - empty chain (and no pending): kUnchained, nothing changes;
  //  - a chain: VerifyChain, head PCRs == ours, pinned keys; previously staged requests in
  //    `host.staged` (request entries and their staging receipts, matched by hash) are re-learnt
  //    when each receipt checks out (others are dropped); kServing, source->SetChain(chain, head);
  //  - with `pending`: the chain verifies, the pending request is for its head, signed by a
  //    control key, its new PCRs are ours and its staging receipt is in `staged`:
  //    kAwaitingHandover, source->SetChain({}, {}) (no chain and no user_data until handed
  //    over: the old enclave's client policy accepts the staged PCRs of an unchained enclave).
  // Errors name the problem in one line ("upgrade: ..."): the enclave must not serve.
  static Result<std::unique_ptr<UpgradeState>> Boot(const upgrade::HostChain& host,
                                                    UpgradeOptions options);

  UpgradePhase phase() const;
  // chain_view is the enclave service's "chain" answer: the chain and the staged requests
  // followed by their staging receipts.
  upgrade::Message ChainView() const;
  std::vector<Bytes> chain() const;
  std::optional<upgrade::Digest> head() const;  // nullopt when unchained.
  bool allow_debug() const { return options_.allow_debug; }
  const std::shared_ptr<const attestation::Verifier>& verifier() const { return options_.verifier; }

  // Stage checks `request_entry` (CheckStage; not staged or revoked before) and returns a
  // staging receipt signed by the receipt key with a document binding that key and the head.
  // kFailedPrecondition when unchained ("this enclave has no genesis") or not serving.
  Result<Bytes> Stage(ByteSpan request_entry);
  // Revoke checks a control-signed revocation that names a staged request and records it.
  Result<void> Revoke(ByteSpan revocation_entry);

  // Activation is a staged request on its way to a successor.
  struct Activation {
    Bytes request_entry;
    Bytes staging_entry;
    upgrade::UpgradeRequest request;
    upgrade::Digest request_hash{};
    upgrade::Digest staging_hash{};
  };
  // BeginActivation refuses unless `request_hash` is staged, not revoked, due on our clock
  // (DueAt), we serve, and no other activation runs. Until FinishActivation, further
  // activations are refused.
  Result<Activation> BeginActivation(ByteSpan request_hash);
  // SignActivation signs the activation receipt for a successor whose attested static key is
  // `new_enclave_key`, with `key_commitment` when a volume key ring is handed over.
  Result<Bytes> SignActivation(const Activation& activation, ByteSpan new_enclave_key,
                               std::optional<upgrade::Digest> key_commitment);
  // FinishActivation ends an activation: superseded after a handover the successor
  // acknowledged, else back to serving.
  void FinishActivation(bool handed_over);

  // Successor side. CheckHandover verifies the old enclave's activation receipt: the chain
  // extended by [pending request, its staging receipt, `activation_entry`] verifies, the receipt
  // names `our_static_key`, and its key commitment matches `ring` (both absent, or equal).
  // Returns the new chain; kFailedPrecondition unless awaiting a handover.
  struct Handover {
    std::vector<Bytes> chain;
    upgrade::VerifiedChain verified;
  };
  Result<Handover> CheckHandover(ByteSpan activation_entry, const crypto::SecretBytes* ring,
                                 const crypto::X25519PublicKey& our_static_key) const;
  // CompleteHandover adopts the new chain: serving, source->SetChain(chain, head).
  Result<void> CompleteHandover(Handover handover);

 private:
  struct Staged {
    Bytes request_entry;
    Bytes staging_entry;
    upgrade::UpgradeRequest request;
    uint64_t staged_at = 0;
  };
  explicit UpgradeState(UpgradeOptions options, crypto::MemorySigner receipt_key)
      : options_(std::move(options)), receipt_key_(std::move(receipt_key)) {}
  uint64_t Now() const;
  Result<void> LoadChained(const upgrade::HostChain& host);
  // CheckOwnReceipt checks a staging receipt of an earlier incarnation of this enclave (same
  // PCRs, same head) for `request_entry`.
  Result<Staged> CheckOwnReceipt(ByteSpan request_entry, ByteSpan staging_entry) const;
  Result<Bytes> ReceiptDocument();

  UpgradeOptions options_;
  crypto::MemorySigner receipt_key_;
  mutable std::mutex mu_;
  UpgradePhase phase_ = UpgradePhase::kUnchained;        // Guarded by mu_.
  std::optional<upgrade::VerifiedChain> verified_;       // Guarded by mu_.
  std::vector<Bytes> chain_;                             // Guarded by mu_.
  std::map<upgrade::Digest, Staged> staged_;             // Guarded by mu_; by request hash.
  std::set<upgrade::Digest> revoked_;                    // Guarded by mu_.
  bool activating_ = false;                              // Guarded by mu_.
  std::map<uint32_t, Bytes> own_pcrs_;                   // Set at boot.
  std::optional<Staged> pending_;                        // Awaiting handover: our request.
};

// PcrsMatch: every PCR in `want` is in `have` with the same value.
bool PcrsMatch(const upgrade::PcrMap& want, const std::map<uint32_t, Bytes>& have);

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_UPGRADE_STATE_H_
