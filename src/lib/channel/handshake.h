// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CHANNEL_HANDSHAKE_H_
#define ENCLAVIA_LIB_CHANNEL_HANDSHAKE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "lib/attestation/nsm.h"
#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/encoding.h"
#include "lib/base/result.h"
#include "lib/channel/trust.h"
#include "lib/crypto/x25519.h"
#include "lib/noise/noise.h"

// The attested Noise_XX handshake of channel protocol version 1, both sides, sans-I/O
// (docs/protocol.md):
//   → e                       ClientHello {fresh}
//   ← e, ee, s, es            ServerHello {attestation, chain}   (document.public_key = s)
//   → s, se                   ClientFinish {}                    (sent only after verification)
namespace enclavia::channel {

// kRekeyInterval: each direction rekeys (Noise §11.3) after this many transport messages.
inline constexpr uint64_t kRekeyInterval = uint64_t{1} << 16;

// SecureChannel is an established channel's transport: Seal/Open one Noise transport message
// each, rekeying on schedule. After Open fails the channel must be dropped (Noise gives no way
// to resynchronise, and a failed message means the path is hostile). Not thread-safe, but Seal
// and Open touch disjoint state.
class SecureChannel {
 public:
  explicit SecureChannel(noise::TransportSession session) : session_(std::move(session)) {}

  // Seal encrypts one plaintext (≤ noise::kMaxPlaintextSize).
  Result<Bytes> Seal(ByteSpan plaintext);
  // Open authenticates and decrypts one message: kVerifyFailed on any alteration, replay,
  // reordering or loss (the nonce is implicit, so each of those fails the tag).
  Result<Bytes> Open(ByteSpan message);
  // SealInPlace and OpenInPlace do the same on a buffer they take over and give back.
  Result<Bytes> SealInPlace(Bytes plaintext);
  Result<Bytes> OpenInPlace(Bytes message);

  // handshake_hash identifies this channel (Noise §11.2): equal on both ends, unique per session.
  const noise::HandshakeHash& handshake_hash() const { return session_.handshake_hash(); }

 private:
  noise::TransportSession session_;
};

// AttestationSource gives the enclave's documents for handshakes. Thread-safe.
class AttestationSource {
 public:
  struct Options {
    // A cached document is replaced once it is this old: well inside any sane client max_age
    // and the leaf certificate's 3 h life.
    std::chrono::milliseconds refresh_after{std::chrono::minutes(5)};
    std::function<SystemTime()> clock;  // Defaults to the system clock.
  };

  // `nsm` is shared with nothing that calls it concurrently without this object's lock.
  AttestationSource(std::shared_ptr<attestation::Nsm> nsm, crypto::X25519PublicKey static_key,
                    Options options);
  AttestationSource(std::shared_ptr<attestation::Nsm> nsm, crypto::X25519PublicKey static_key)
      : AttestationSource(std::move(nsm), static_key, Options()) {}

  // Fresh asks the NSM for a document with public_key = the static key and `nonce` (and
  // user_data = the chain head, once SetChain gave one).
  Result<Bytes> Fresh(ByteSpan nonce);
  // Cached returns the cached document (public_key, and user_data = the head when set),
  // fetching a new one when absent or older than refresh_after.
  Result<Bytes> Cached();

  // Presented is a document together with the upgrade chain it goes with.
  struct Presented {
    Bytes attestation;
    std::vector<Bytes> chain;
  };
  // Present returns Fresh(*nonce) (or Cached() without a nonce) and the chain, taken under one
  // lock so that a concurrent SetChain never pairs a document with another chain.
  Result<Presented> Present(std::optional<ByteSpan> nonce);

  // SetChain makes every later document (fresh and cached: the cached one is dropped) carry
  // user_data = `head` (none when `head` is empty: a successor awaiting its handover), and
  // every ServerHello and audit response carry `chain` (docs/formats/upgrade-chain.md).
  void SetChain(std::vector<Bytes> chain, Bytes head);
  std::vector<Bytes> chain() const;
  Bytes head() const;

  // ForKey asks the NSM for a document with public_key = `public_key` (another key this
  // enclave holds, e.g. its upgrade receipt key), user_data = the current head and `nonce`
  // (may be empty). Not cached.
  Result<Bytes> ForKey(ByteSpan public_key, ByteSpan nonce);

  uint64_t nsm_requests() const;

 private:
  SystemTime Now() const;
  Result<Bytes> FreshLocked(ByteSpan nonce);
  Result<Bytes> CachedLocked();
  std::shared_ptr<attestation::Nsm> nsm_;
  crypto::X25519PublicKey static_key_;
  Options options_;
  mutable std::mutex mu_;
  Bytes cached_;
  SystemTime cached_at_{};
  uint64_t requests_ = 0;
  std::vector<Bytes> chain_;  // Guarded by mu_.
  Bytes head_;                // Guarded by mu_; empty: no user_data.
};

// ClientHandshake is the initiator. Usage: Start → send; ReadServerHello(reply) → send the
// returned message 3 → Finish.
class ClientHandshake {
 public:
  // Create checks the policy (CheckPolicy) and generates this connection's keys.
  static Result<ClientHandshake> Create(std::shared_ptr<const TrustPolicy> policy);
  // CreateWithEphemeral uses `ephemeral` instead of a random ephemeral key. For replaying
  // recorded handshakes (conformance vectors) only: a fixed ephemeral key forfeits forward
  // secrecy. `ephemeral` is copied.
  static Result<ClientHandshake> CreateWithEphemeral(std::shared_ptr<const TrustPolicy> policy,
                                                     const crypto::X25519Keypair& ephemeral);

  // Start returns message 1.
  Result<Bytes> Start();
  // ReadServerHello decrypts message 2, verifies the attestation against the policy and the
  // handshake's keys (VerifyEnclave) and only then returns message 3. Any failure is final.
  Result<Bytes> ReadServerHello(ByteSpan message2);

  struct Established {
    SecureChannel channel;
    attestation::VerifiedAttestation attestation;
    // chain is the enclave's verified upgrade chain; nullopt for an unchained enclave.
    std::optional<upgrade::VerifiedChain> chain;
  };
  // Finish hands over the transport; kFailedPrecondition before ReadServerHello succeeded.
  Result<Established> Finish() &&;

 private:
  ClientHandshake(std::shared_ptr<const TrustPolicy> policy, noise::Handshake handshake)
      : policy_(std::move(policy)), handshake_(std::move(handshake)) {}
  std::shared_ptr<const TrustPolicy> policy_;
  noise::Handshake handshake_;
  std::optional<attestation::VerifiedAttestation> verified_;
  std::optional<upgrade::VerifiedChain> chain_;
};

// ServerHandshake is the enclave's responder.
class ServerHandshake {
 public:
  // `static_key` is copied; `source` must outlive the handshake.
  static Result<ServerHandshake> Create(const crypto::X25519Keypair& static_key,
                                        AttestationSource& source);

  // ReadClientHello processes message 1 and returns message 2 (with a fresh or cached document).
  Result<Bytes> ReadClientHello(ByteSpan message1);
  // ReadClientFinish processes message 3 and returns the established transport.
  Result<SecureChannel> ReadClientFinish(ByteSpan message3) &&;

  bool fresh_requested() const { return fresh_; }

 private:
  ServerHandshake(noise::Handshake handshake, AttestationSource& source)
      : handshake_(std::move(handshake)), source_(&source) {}
  noise::Handshake handshake_;
  AttestationSource* source_;
  bool fresh_ = false;
};

}  // namespace enclavia::channel

#endif  // ENCLAVIA_LIB_CHANNEL_HANDSHAKE_H_
