// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_WITNESS_STATE_H_
#define ENCLAVIA_LIB_WITNESS_STATE_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/encoding.h"
#include "lib/crypto/keys.h"
#include "lib/upgrade/chain.h"
#include "lib/witness/protocol.h"

// The witness's side of the protocol, without I/O: the per-volume state (WitnessState) and one
// connection's state machine (WitnessSession). docs/witness.md states the rules.
namespace enclavia::witness {

inline constexpr size_t kDefaultMaxVolumes = 100000;

// ClientBinding is what a volume is bound to: the PCR0 of an enclave without an upgrade chain
// (48 bytes), or, for an enclave with one, GenesisBinding(genesis hash), so that a successor
// (another PCR0, the same genesis) continues the volume. The two never collide (their lengths
// differ).
Bytes GenesisBinding(const upgrade::Digest& genesis_hash);

// ChainVerdict is what the witness decided about a client's chain.
struct ChainVerdict {
  bool accepted = false;
  std::string reason;  // Set when refused: "superseded: …" or "fork: …".
};

// WitnessState keeps, per volume, the latest acknowledged CommitRecord, the volume key that first
// committed it and the binding (ClientBinding) of the enclave that did; and, per upgrade genesis,
// the longest chain head a client presented. Memory only, by design: a restarted witness knows
// nothing, has a new key, and says Unknown. Thread-safe.
class WitnessState {
 public:
  // WitnessState makes a fresh Ed25519 witness key. Beyond `max_volumes` volumes, commits for a
  // new volume are refused.
  explicit WitnessState(size_t max_volumes = kDefaultMaxVolumes);
  WitnessState(const WitnessState&) = delete;
  WitnessState& operator=(const WitnessState&) = delete;

  const WitnessKey& public_key() const { return public_key_; }

  // Query answers Known{latest} or Unknown. A volume bound to another binding than
  // `client_binding` (PCR0 or GenesisBinding) is Refused: only the enclave that owns a volume
  // learns its state.
  Response Query(const VolumeId& volume_id, ByteSpan client_binding) const;
  // Commit acknowledges `record` (Ack over AckStatement) when VerifyCommitRecord passes and
  //  - the volume is new (this binds its volume key and `client_binding`), or
  //  - the key and binding are the bound ones and the version is above the stored one, or equal
  //    to it with the same record (an idempotent retry).
  // Everything else is Refused with a one-line reason; a lower version says "rollback".
  Response Commit(const storage::CommitRecord& record, ByteSpan client_binding);

  // ObserveChain records the head of a verified chain for its genesis, keeping the longest:
  //  - no head known for the genesis, or the same head: accepted;
  //  - fewer steps than the known head: refused "superseded: chain head H is behind K (n of m
  //    upgrades)";
  //  - as many steps, another head: refused "fork: …";
  //  - more steps: accepted and stored if the known head is on this chain (at its step), else
  //    refused "fork: …" (two activations from one head, the other one extended).
  // Beyond max_volumes geneses, a new one is refused.
  ChainVerdict ObserveChain(const upgrade::VerifiedChain& chain);
  // IsCurrentHead says whether `head` is still the stored head of `genesis` (a session checks
  // this before every request, so a superseded client is cut off while connected).
  bool IsCurrentHead(const upgrade::Digest& genesis, const upgrade::Digest& head) const;

  size_t volume_count() const;

 private:
  struct Entry {
    storage::CommitRecord latest;
    Bytes binding;
  };
  struct ChainHead {
    size_t steps = 0;
    upgrade::Digest head{};
  };
  Ack Sign(const storage::CommitRecord& record) const;

  const size_t max_volumes_;
  crypto::PrivateKey key_;
  WitnessKey public_key_{};
  mutable std::mutex mu_;
  std::map<VolumeId, Entry> volumes_;  // Guarded by mu_.
  std::map<upgrade::Digest, ChainHead> chains_;  // Guarded by mu_; by genesis hash.
};

struct SessionOptions {
  // verifier trusts the root the witness's own NSM signs with (RunWitness takes it from the
  // cabundle of the witness's own document).
  std::shared_ptr<const attestation::Verifier> verifier;
  // allow_debug accepts clients in debug mode (all-zero PCR0); never in production.
  bool allow_debug = false;
  // A Hello's document must be at most this old.
  std::chrono::milliseconds max_age{std::chrono::minutes(5)};
  std::function<SystemTime()> clock;  // Defaults to the system clock.
};

// WitnessSession is one client connection: Start gives the Challenge, then each message in gives
// exactly one reply. A Hello with a chain is checked with upgrade::VerifyChain (the session's
// verifier and allow_debug), upgrade::CheckPresented (the document's PCRs are the chain's last and
// its user_data the head) and WitnessState::ObserveChain; the session then binds to the genesis,
// and refuses every request ("superseded: …", then closes) once another client presented a
// longer chain. Not thread-safe (one per connection); `state` must outlive it.
class WitnessSession {
 public:
  WitnessSession(WitnessState& state, SessionOptions options);

  // Start returns the Challenge message (encoded, not framed). Call once, first.
  Bytes Start();

  struct Step {
    Bytes reply;         // Encoded message to send (never empty).
    bool close = false;  // Close the connection after sending `reply`.
    std::string event;   // A log line for an accepted commit, else empty.
  };
  // OnMessage handles one decoded-from-the-wire message body. A malformed message, a request
  // before the Hello was accepted, or a refused Hello gives Refused and close.
  Step OnMessage(ByteSpan message);

  // client_binding is what the verified client's volumes are bound to: its PCR0, or
  // GenesisBinding of its chain (empty before the Hello was accepted).
  const Bytes& client_binding() const { return client_binding_; }
  // chained says the client presented an upgrade chain.
  bool chained() const { return chain_head_.has_value(); }

 private:
  Step Refuse(std::string reason, bool close);
  Step OnHello(const Hello& hello);

  WitnessState& state_;
  SessionOptions options_;
  Nonce nonce_{};
  bool started_ = false;
  bool ready_ = false;
  Bytes client_binding_;
  upgrade::Digest genesis_{};
  std::optional<upgrade::Digest> chain_head_;
};

}  // namespace enclavia::witness

#endif  // ENCLAVIA_LIB_WITNESS_STATE_H_
