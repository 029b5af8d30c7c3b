// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_NOISE_NOISE_H_
#define ENCLAVIA_LIB_NOISE_NOISE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/secret.h"
#include "lib/crypto/x25519.h"

// The Noise Protocol Framework (revision 34) with 25519 and ChaChaPoly, on libsodium, as sans-I/O
// state machines: bytes in, bytes out, no sockets, no clocks. Enclavia's channel uses
// Noise_XX_25519_ChaChaPoly_BLAKE2b; the NX and IK patterns and the BLAKE2s/SHA256/SHA512 hashes
// exist so that every published 25519/ChaChaPoly vector for XX, NX and IK checks the shared
// SymmetricState/CipherState code.
namespace enclavia::noise {

// Noise §3: every message, handshake or transport, is at most 65535 bytes.
inline constexpr size_t kMaxMessageSize = 65535;
inline constexpr size_t kKeySize = 32;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kMaxHashSize = 64;
inline constexpr size_t kMaxPlaintextSize = kMaxMessageSize - kTagSize;

// HandshakeHash is h: 64 bytes for BLAKE2b/SHA512, 32 for BLAKE2s/SHA256.
using HandshakeHash = Bytes;

enum class Pattern { kXX, kNX, kIK };
enum class Role { kInitiator, kResponder };
enum class Hash { kBlake2b, kBlake2s, kSha256, kSha512 };

// ProtocolName returns e.g. "Noise_XX_25519_ChaChaPoly_BLAKE2b".
std::string ProtocolName(Pattern pattern, Hash hash);

// CipherState is Noise §5.1: a ChaCha20-Poly1305 key and a 64-bit nonce. Move-only; the key is
// wiped on destruction. Not thread-safe.
class CipherState {
 public:
  CipherState() = default;
  explicit CipherState(crypto::Secret<kKeySize> key) : key_(std::move(key)), has_key_(true) {}

  bool has_key() const { return has_key_; }
  uint64_t nonce() const { return nonce_; }

  // EncryptWithAd returns ciphertext||tag (or `plaintext` unchanged when there is no key yet).
  // kLimitExceeded when the nonce is exhausted (2^64-1 is reserved, §5.1).
  Result<Bytes> EncryptWithAd(ByteSpan ad, ByteSpan plaintext);
  // DecryptWithAd authenticates and decrypts; any failure is kVerifyFailed with a fixed message
  // and leaves the nonce unchanged, so a forged message cannot desynchronise the session.
  Result<Bytes> DecryptWithAd(ByteSpan ad, ByteSpan ciphertext);
  // EncryptWithAdTo is EncryptWithAd writing into `out`, which must be exactly plaintext.size()
  // (+ kTagSize once there is a key) bytes (else kInvalidArgument) and may be `plaintext` itself
  // but not overlap it otherwise. The handshake builds messages in place with it.
  Result<void> EncryptWithAdTo(ByteSpan ad, ByteSpan plaintext, std::span<uint8_t> out);
  // DecryptWithAdTo is DecryptWithAd writing into `out`, which must be exactly ciphertext.size()
  // (- kTagSize once there is a key) bytes (else kInvalidArgument) and must not overlap the
  // inputs; a ciphertext shorter than the tag is kVerifyFailed. On failure `out` holds no
  // plaintext and the nonce is unchanged.
  Result<void> DecryptWithAdTo(ByteSpan ad, ByteSpan ciphertext, std::span<uint8_t> out);
  // Rekey is §4.2 REKEY: k = the first 32 bytes of ENCRYPT(k, 2^64-1, "", zeros(32)). The nonce
  // is not reset (§11.3).
  void Rekey();

 private:
  crypto::Secret<kKeySize> key_;
  bool has_key_ = false;
  uint64_t nonce_ = 0;
};

// TransportSession holds the two CipherStates from Split, oriented for one side: `Encrypt` uses
// the sending key, `Decrypt` the receiving key. Move-only. Not thread-safe, but the two
// directions share no state, so one thread may Encrypt while another Decrypts.
class TransportSession {
 public:
  TransportSession(CipherState send, CipherState receive, HandshakeHash hash,
                   std::optional<crypto::X25519PublicKey> remote_static)
      : send_(std::move(send)),
        receive_(std::move(receive)),
        hash_(std::move(hash)),
        remote_static_(remote_static) {}

  // Encrypt returns one transport message (plaintext + 16-byte tag, empty AD). `plaintext` longer
  // than kMaxPlaintextSize is kInvalidArgument.
  Result<Bytes> Encrypt(ByteSpan plaintext) { return Encrypt(plaintext, {}); }
  Result<Bytes> Encrypt(ByteSpan plaintext, ByteSpan ad);
  // Decrypt authenticates one transport message; kVerifyFailed on any tampering, after which
  // the caller must drop the session (the nonce did not advance).
  Result<Bytes> Decrypt(ByteSpan message) { return Decrypt(message, {}); }
  Result<Bytes> Decrypt(ByteSpan message, ByteSpan ad);

  // EncryptInPlace turns `message` (a plaintext) into its transport message, appending the tag;
  // DecryptInPlace does the reverse (on failure `message` is wiped, the nonce unchanged). They
  // save the data path a buffer and a copy per message; errors as Encrypt and Decrypt.
  Result<void> EncryptInPlace(Bytes& message);
  Result<void> DecryptInPlace(Bytes& message);

  void RekeySend() { send_.Rekey(); }
  void RekeyReceive() { receive_.Rekey(); }

  uint64_t send_nonce() const { return send_.nonce(); }
  uint64_t receive_nonce() const { return receive_.nonce(); }
  // handshake_hash is the final h of the handshake (§11.2 channel binding).
  const HandshakeHash& handshake_hash() const { return hash_; }
  const std::optional<crypto::X25519PublicKey>& remote_static() const { return remote_static_; }

 private:
  CipherState send_;
  CipherState receive_;
  HandshakeHash hash_;
  std::optional<crypto::X25519PublicKey> remote_static_;
};

// HandshakeConfig selects the pattern, role and keys. Keys are copied in; the config need not
// outlive Handshake::Create.
struct HandshakeConfig {
  Pattern pattern = Pattern::kXX;
  Hash hash = Hash::kBlake2b;
  Role role = Role::kInitiator;
  ByteSpan prologue;
  // local_static is required when the pattern gives this side a static key (XX: both; NX: the
  // responder; IK: both) and must be absent otherwise.
  const crypto::X25519Keypair* local_static = nullptr;
  // remote_static is the pre-message key (IK initiator: the responder's static public key).
  std::optional<crypto::X25519PublicKey> remote_static;
  // fixed_ephemeral replaces the random ephemeral key. For published test vectors (and the fuzz
  // target) only: a fixed ephemeral key forfeits forward secrecy.
  const crypto::X25519Keypair* fixed_ephemeral = nullptr;
};

// Handshake runs one side of a Noise handshake (§5.3 HandshakeState). No I/O; not thread-safe.
// Messages alternate initiator → responder → …; calling the wrong direction is
// kFailedPrecondition. After any error the handshake is dead: every later call fails.
class Handshake {
 public:
  // Create validates the config (kInvalidArgument for a missing or superfluous key).
  static Result<Handshake> Create(const HandshakeConfig& config);

  Handshake(Handshake&&) noexcept;
  Handshake& operator=(Handshake&&) noexcept;
  ~Handshake();

  // WriteMessage returns the next message carrying `payload` (encrypted once a key exists).
  // kLimitExceeded when the message would exceed kMaxMessageSize; kVerifyFailed when a DH with
  // a key the peer sent gives the all-zero output (a low-order point).
  Result<Bytes> WriteMessage(ByteSpan payload);
  // ReadMessage processes the peer's next message and returns its payload. kMalformed for a
  // short message, kVerifyFailed for a bad tag or a low-order public key.
  Result<Bytes> ReadMessage(ByteSpan message);

  // is_my_turn: the next operation is WriteMessage. complete: every message pattern is done.
  bool is_my_turn() const;
  bool complete() const;
  // handshake_hash is the current h; final once complete.
  HandshakeHash handshake_hash() const;
  // local_ephemeral is our ephemeral public key once generated (after our first `e` token).
  std::optional<crypto::X25519PublicKey> local_ephemeral() const;
  // remote_ephemeral and remote_static are the peer's keys once received (or pre-known).
  std::optional<crypto::X25519PublicKey> remote_ephemeral() const;
  std::optional<crypto::X25519PublicKey> remote_static() const;

  // Split is §5.2 SPLIT; kFailedPrecondition unless complete. Consumes the handshake; its
  // ephemeral keys and chaining key are wiped.
  Result<TransportSession> Split() &&;

 private:
  struct State;
  explicit Handshake(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace enclavia::noise

#endif  // ENCLAVIA_LIB_NOISE_NOISE_H_
