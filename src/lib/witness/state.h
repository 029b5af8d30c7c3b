// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_WITNESS_STATE_H_
#define ENCLAVIA_LIB_WITNESS_STATE_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/encoding.h"
#include "lib/crypto/keys.h"
#include "lib/witness/protocol.h"

// The witness's side of the protocol, without I/O: the per-volume state (WitnessState) and one
// connection's state machine (WitnessSession). docs/witness.md states the rules.
namespace enclavia::witness {

inline constexpr size_t kDefaultMaxVolumes = 100000;

// WitnessState keeps, per volume, the latest acknowledged CommitRecord, the volume key that first
// committed it and the PCR0 of the enclave that did. Memory only, by design: a restarted witness
// knows nothing, has a new key, and says Unknown. Thread-safe.
class WitnessState {
 public:
  // WitnessState makes a fresh Ed25519 witness key. Beyond `max_volumes` volumes, commits for a
  // new volume are refused.
  explicit WitnessState(size_t max_volumes = kDefaultMaxVolumes);
  WitnessState(const WitnessState&) = delete;
  WitnessState& operator=(const WitnessState&) = delete;

  const WitnessKey& public_key() const { return public_key_; }

  // Query answers Known{latest} or Unknown. A volume bound to another PCR0 than `client_pcr0` is
  // Refused: only the image that owns a volume learns its state.
  Response Query(const VolumeId& volume_id, ByteSpan client_pcr0) const;
  // Commit acknowledges `record` (Ack over AckStatement) when VerifyCommitRecord passes and
  //  - the volume is new (this binds its volume key and `client_pcr0`), or
  //  - the key and PCR0 are the bound ones and the version is above the stored one, or equal to
  //    it with the same record (an idempotent retry).
  // Everything else is Refused with a one-line reason; a lower version says "rollback".
  Response Commit(const storage::CommitRecord& record, ByteSpan client_pcr0);

  size_t volume_count() const;

 private:
  struct Entry {
    storage::CommitRecord latest;
    Bytes pcr0;
  };
  Ack Sign(const storage::CommitRecord& record) const;

  const size_t max_volumes_;
  crypto::PrivateKey key_;
  WitnessKey public_key_{};
  mutable std::mutex mu_;
  std::map<VolumeId, Entry> volumes_;  // Guarded by mu_.
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
// exactly one reply. Not thread-safe (one per connection); `state` must outlive it.
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

  // client_pcr0 is the verified client's PCR0 (empty before the Hello was accepted).
  const Bytes& client_pcr0() const { return client_pcr0_; }

 private:
  Step Refuse(std::string reason, bool close);
  Step OnHello(const Hello& hello);

  WitnessState& state_;
  SessionOptions options_;
  Nonce nonce_{};
  bool started_ = false;
  bool ready_ = false;
  Bytes client_pcr0_;
};

}  // namespace enclavia::witness

#endif  // ENCLAVIA_LIB_WITNESS_STATE_H_
