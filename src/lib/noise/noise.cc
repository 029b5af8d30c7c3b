// SPDX-License-Identifier: Apache-2.0
#include "lib/noise/noise.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <string_view>

#include "lib/base/reader.h"
#include "lib/noise/internal/chachapoly.h"
#include "lib/noise/internal/symmetric_state.h"

namespace enclavia::noise {
namespace {

static_assert(internal::kChaChaPolyKeySize == kKeySize);
static_assert(internal::kChaChaPolyTagSize == kTagSize);
static_assert(crypto::kX25519KeySize == 32);

constexpr size_t kDhLen = crypto::kX25519KeySize;
// §5.1: 2^64-1 is reserved for Rekey; a CipherState that reaches it can no longer send.
constexpr uint64_t kMaxNonce = std::numeric_limits<uint64_t>::max();
constexpr std::string_view kAuthFailed = "noise: message failed authentication";

// Nonce is §12.3 ChaChaPoly's nonce: 32 bits of zeros, then the 64-bit counter little-endian.
std::array<uint8_t, internal::kChaChaPolyNonceSize> Nonce(uint64_t n) {
  std::array<uint8_t, internal::kChaChaPolyNonceSize> nonce{};
  for (size_t i = 0; i < 8; ++i) {
    nonce[4 + i] = static_cast<uint8_t>(n >> (8 * i));
  }
  return nonce;
}

// Token is one handshake token (§7.1); the PSK token is not supported.
enum class Token : uint8_t { kE, kS, kEE, kES, kSE, kSS };

struct MessagePattern {
  std::array<Token, 4> tokens;
  size_t count;
};

// PatternSpec is a handshake pattern (§7): who has a static key, the pre-messages, the messages.
struct PatternSpec {
  std::string_view name;
  bool initiator_static;
  bool responder_static;
  // responder_premessage_s is the "<- s" pre-message: the initiator knows the responder's key.
  bool responder_premessage_s;
  std::array<MessagePattern, 3> messages;
  size_t message_count;
};

using enum Token;
// §7.5: XX is  -> e  <- e, ee, s, es  -> s, se;  NX is  -> e  <- e, ee, s, es;
// IK is  <- s ...  -> e, es, s, ss  <- e, ee, se.
constexpr PatternSpec kXX = {
    "XX", true, true, false, {{{{kE}, 1}, {{kE, kEE, kS, kES}, 4}, {{kS, kSE}, 2}}}, 3};
constexpr PatternSpec kNX = {"NX", false, true, false, {{{{kE}, 1}, {{kE, kEE, kS, kES}, 4}}}, 2};
constexpr PatternSpec kIK = {
    "IK", true, true, true, {{{{kE, kES, kS, kSS}, 4}, {{kE, kEE, kSE}, 3}}}, 2};

const PatternSpec* Spec(Pattern pattern) {
  switch (pattern) {
    case Pattern::kXX:
      return &kXX;
    case Pattern::kNX:
      return &kNX;
    case Pattern::kIK:
      return &kIK;
  }
  return nullptr;
}

const char* HashName(Hash hash) {
  switch (hash) {
    case Hash::kBlake2b:
      return "BLAKE2b";
    case Hash::kBlake2s:
      return "BLAKE2s";
    case Hash::kSha256:
      return "SHA256";
    case Hash::kSha512:
      return "SHA512";
  }
  return nullptr;
}

// CopyKeypair copies a key pair without recomputing its public key.
crypto::X25519Keypair CopyKeypair(const crypto::X25519Keypair& from) {
  crypto::X25519Keypair to;
  std::copy_n(from.private_key.Expose().begin(), crypto::kX25519KeySize,
              to.private_key.MutableBytes().begin());
  to.public_key = from.public_key;
  return to;
}

Error Finished() { return {Code::kFailedPrecondition, "noise: handshake is finished or failed"}; }

}  // namespace

std::string ProtocolName(Pattern pattern, Hash hash) {
  const PatternSpec* spec = Spec(pattern);
  const char* hash_name = HashName(hash);
  ENCLAVIA_CHECK(spec != nullptr && hash_name != nullptr);
  // §8: Noise_<pattern>_<DH>_<cipher>_<hash>.
  std::string name = "Noise_";
  name += spec->name;
  name += "_25519_ChaChaPoly_";
  name += hash_name;
  return name;
}

// --- CipherState (§5.1) ---

Result<void> CipherState::EncryptWithAdTo(ByteSpan ad, ByteSpan plaintext, std::span<uint8_t> out) {
  if (out.size() != plaintext.size() + (has_key_ ? kTagSize : 0)) {
    return Error(Code::kInvalidArgument, "noise: wrong output size for encryption");
  }
  if (!has_key_) {
    // §5.1: without a key, EncryptWithAd returns the plaintext.
    if (!plaintext.empty() && out.data() != plaintext.data()) {
      std::memmove(out.data(), plaintext.data(), plaintext.size());
    }
    return Ok();
  }
  if (nonce_ == kMaxNonce) {
    return Error(Code::kLimitExceeded, "noise: nonce exhausted");
  }
  auto nonce = Nonce(nonce_);
  internal::ChaChaPolySeal(key_.Expose(), nonce, ad, plaintext, out);
  ++nonce_;
  return Ok();
}

Result<void> CipherState::DecryptWithAdTo(ByteSpan ad, ByteSpan ciphertext,
                                          std::span<uint8_t> out) {
  if (!has_key_) {
    if (out.size() != ciphertext.size()) {
      return Error(Code::kInvalidArgument, "noise: wrong output size for decryption");
    }
    if (!ciphertext.empty() && out.data() != ciphertext.data()) {
      std::memmove(out.data(), ciphertext.data(), ciphertext.size());
    }
    return Ok();
  }
  if (ciphertext.size() < kTagSize) {
    return Error(Code::kVerifyFailed, std::string(kAuthFailed));
  }
  if (out.size() != ciphertext.size() - kTagSize) {
    return Error(Code::kInvalidArgument, "noise: wrong output size for decryption");
  }
  if (nonce_ == kMaxNonce) {
    // §5.1: 2^64-1 is never used for a message; the header promises one code for every failure.
    return Error(Code::kVerifyFailed, std::string(kAuthFailed));
  }
  auto nonce = Nonce(nonce_);
  // ChaChaPolyOpen wipes `out` on failure. §5.1: on an authentication failure n is not
  // incremented, so a forged message cannot desynchronise the session.
  if (!internal::ChaChaPolyOpen(key_.Expose(), nonce, ad, ciphertext, out)) {
    return Error(Code::kVerifyFailed, std::string(kAuthFailed));
  }
  ++nonce_;
  return Ok();
}

Result<Bytes> CipherState::EncryptWithAd(ByteSpan ad, ByteSpan plaintext) {
  Bytes out(plaintext.size() + (has_key_ ? kTagSize : 0));
  RETURN_IF_ERROR(EncryptWithAdTo(ad, plaintext, out));
  return out;
}

Result<Bytes> CipherState::DecryptWithAd(ByteSpan ad, ByteSpan ciphertext) {
  if (has_key_ && ciphertext.size() < kTagSize) {
    return Error(Code::kVerifyFailed, std::string(kAuthFailed));
  }
  Bytes out(ciphertext.size() - (has_key_ ? kTagSize : 0));
  RETURN_IF_ERROR(DecryptWithAdTo(ad, ciphertext, out));
  return out;
}

void CipherState::Rekey() {
  if (!has_key_) {
    return;
  }
  // §4.2 / §12.3: REKEY(k) = the first 32 bytes of ENCRYPT(k, 2^64-1, zerolen, zeros(32)). The
  // nonce is deliberately left alone (§11.3).
  std::array<uint8_t, kKeySize> zeros{};
  std::array<uint8_t, kKeySize + kTagSize> sealed{};
  auto nonce = Nonce(kMaxNonce);
  internal::ChaChaPolySeal(key_.Expose(), nonce, {}, zeros, sealed);
  std::copy_n(sealed.begin(), kKeySize, key_.MutableBytes().begin());
  sodium_memzero(sealed.data(), sealed.size());
}

// --- TransportSession (§5.2 Split's output, §11) ---

Result<Bytes> TransportSession::Encrypt(ByteSpan plaintext, ByteSpan ad) {
  if (plaintext.size() > kMaxPlaintextSize) {
    return Error(Code::kInvalidArgument, "noise: transport plaintext longer than 65519 bytes");
  }
  if (!send_.has_key()) {
    // A keyless CipherState would pass the plaintext through (§5.1): never on the wire.
    return Error(Code::kFailedPrecondition, "noise: transport session has no sending key");
  }
  return send_.EncryptWithAd(ad, plaintext);
}

Result<Bytes> TransportSession::Decrypt(ByteSpan message, ByteSpan ad) {
  if (message.size() > kMaxMessageSize) {
    return Error(Code::kMalformed, "noise: transport message longer than 65535 bytes");
  }
  if (!receive_.has_key()) {
    return Error(Code::kFailedPrecondition, "noise: transport session has no receiving key");
  }
  return receive_.DecryptWithAd(ad, message);
}

Result<void> TransportSession::EncryptInPlace(Bytes& message) {
  if (message.size() > kMaxPlaintextSize) {
    return Error(Code::kInvalidArgument, "noise: transport plaintext longer than 65519 bytes");
  }
  if (!send_.has_key()) {
    return Error(Code::kFailedPrecondition, "noise: transport session has no sending key");
  }
  size_t plaintext_size = message.size();
  message.resize(plaintext_size + kTagSize);
  auto sealed = send_.EncryptWithAdTo({}, ByteSpan(message.data(), plaintext_size), message);
  if (!sealed) {
    message.resize(plaintext_size);
  }
  return sealed;
}

Result<void> TransportSession::DecryptInPlace(Bytes& message) {
  if (message.size() > kMaxMessageSize) {
    return Error(Code::kMalformed, "noise: transport message longer than 65535 bytes");
  }
  if (!receive_.has_key()) {
    return Error(Code::kFailedPrecondition, "noise: transport session has no receiving key");
  }
  if (message.size() < kTagSize) {
    return Error(Code::kVerifyFailed, std::string(kAuthFailed));
  }
  RETURN_IF_ERROR(receive_.DecryptWithAdTo(
      {}, message, std::span<uint8_t>(message.data(), message.size() - kTagSize)));
  message.resize(message.size() - kTagSize);
  return Ok();
}

// --- Handshake (§5.3 HandshakeState) ---

namespace {

// HandshakeState is §5.3 HandshakeState for one validated config, plus the rule that any error
// ends it. Not thread-safe.
class HandshakeState {
 public:
  HandshakeState(const PatternSpec& spec, const HandshakeConfig& config)
      : spec_(&spec),
        role_(config.role),
        symmetric_(config.hash, ProtocolName(config.pattern, config.hash)),
        rs_(config.remote_static) {
    if (config.local_static != nullptr) {
      s_ = CopyKeypair(*config.local_static);
    }
    if (config.fixed_ephemeral != nullptr) {
      fixed_e_ = CopyKeypair(*config.fixed_ephemeral);
    }
    // §5.3 Initialize: MixHash(prologue), then the pre-message public keys in order (§7.1).
    symmetric_.MixHash(config.prologue);
    if (spec.responder_premessage_s) {
      ENCLAVIA_CHECK(IsInitiator() ? rs_.has_value() : s_.has_value());
      symmetric_.MixHash(IsInitiator() ? ByteSpan(*rs_) : ByteSpan(s_->public_key));
    }
  }

  [[nodiscard]] bool IsInitiator() const { return role_ == Role::kInitiator; }
  [[nodiscard]] bool Dead() const { return dead_; }
  [[nodiscard]] bool Complete() const { return !dead_ && next_ == spec_->message_count; }
  [[nodiscard]] bool MyTurn() const {
    return !dead_ && next_ < spec_->message_count && ((next_ % 2 == 0) == IsInitiator());
  }
  void Kill() { dead_ = true; }

  [[nodiscard]] HandshakeHash CurrentHash() const { return ToBytes(symmetric_.h()); }
  [[nodiscard]] std::optional<crypto::X25519PublicKey> LocalEphemeral() const {
    return e_ ? std::optional(e_->public_key) : std::nullopt;
  }
  [[nodiscard]] const std::optional<crypto::X25519PublicKey>& RemoteEphemeral() const {
    return re_;
  }
  [[nodiscard]] const std::optional<crypto::X25519PublicKey>& RemoteStatic() const { return rs_; }

  // Write is §5.3 WriteMessage, building the message in one buffer. The caller checked MyTurn.
  Result<Bytes> Write(ByteSpan payload) {
    if (payload.size() > kMaxMessageSize || MessageSize(payload.size()) > kMaxMessageSize) {
      return Error(Code::kLimitExceeded, "noise: handshake message longer than 65535 bytes");
    }
    Bytes message(MessageSize(payload.size()));
    std::span<uint8_t> out(message);
    for (Token token : Tokens()) {
      if (token == kE) {
        e_ = fixed_e_ ? CopyKeypair(*fixed_e_) : crypto::X25519Keypair::Generate();
        std::copy(e_->public_key.begin(), e_->public_key.end(), out.begin());
        symmetric_.MixHash(e_->public_key);
        out = out.subspan(kDhLen);
      } else if (token == kS) {
        ENCLAVIA_CHECK(s_.has_value());
        size_t n = kDhLen + (symmetric_.has_key() ? kTagSize : 0);
        RETURN_IF_ERROR(symmetric_.EncryptAndHash(s_->public_key, out.first(n)));
        out = out.subspan(n);
      } else {
        RETURN_IF_ERROR(Dh(token));
      }
    }
    RETURN_IF_ERROR(symmetric_.EncryptAndHash(payload, out));
    ++next_;
    return message;
  }

  // Read is §5.3 ReadMessage. The caller checked it is the peer's turn.
  Result<Bytes> Read(ByteSpan message) {
    if (message.size() > kMaxMessageSize) {
      return Error(Code::kMalformed, "noise: handshake message longer than 65535 bytes");
    }
    // Checking the length up front keeps junk from costing any DH.
    if (message.size() < MessageSize(0)) {
      return Error(Code::kMalformed, "noise: handshake message too short");
    }
    Reader reader(message);
    for (Token token : Tokens()) {
      if (token == kE) {
        ASSIGN_OR_RETURN(ByteSpan key, reader.ReadBytes(kDhLen));
        re_.emplace();
        std::copy(key.begin(), key.end(), re_->begin());
        symmetric_.MixHash(key);
      } else if (token == kS) {
        ASSIGN_OR_RETURN(ByteSpan sealed,
                         reader.ReadBytes(kDhLen + (symmetric_.has_key() ? kTagSize : 0)));
        crypto::X25519PublicKey key{};
        RETURN_IF_ERROR(symmetric_.DecryptAndHash(sealed, key));
        rs_ = key;
      } else {
        RETURN_IF_ERROR(Dh(token));
      }
    }
    ByteSpan sealed = reader.rest();
    Bytes payload(sealed.size() - (symmetric_.has_key() ? kTagSize : 0));
    RETURN_IF_ERROR(symmetric_.DecryptAndHash(sealed, payload));
    ++next_;
    return payload;
  }

  // Split is §5.2 Split, oriented for this side: {send, receive}.
  std::pair<CipherState, CipherState> Split() {
    auto [c1, c2] = symmetric_.Split();
    // §5.2: c1 carries initiator → responder traffic, c2 the reverse.
    if (IsInitiator()) {
      return {std::move(c1), std::move(c2)};
    }
    return {std::move(c2), std::move(c1)};
  }

 private:
  [[nodiscard]] std::span<const Token> Tokens() const {
    const MessagePattern& pattern = spec_->messages[next_];
    return std::span<const Token>(pattern.tokens).first(pattern.count);
  }

  // MessageSize is the length of the next message with a `payload_size`-byte payload: the
  // public keys (encrypted ones carry a tag) and the payload (with a tag once a DH has run).
  [[nodiscard]] size_t MessageSize(size_t payload_size) const {
    bool key = symmetric_.has_key();
    size_t size = 0;
    for (Token token : Tokens()) {
      if (token == kE) {
        size += kDhLen;
      } else if (token == kS) {
        size += kDhLen + (key ? kTagSize : 0);
      } else {
        key = true;
      }
    }
    return size + payload_size + (key ? kTagSize : 0);
  }

  // MixDh is MixKey(DH(local, remote)); kVerifyFailed for a low-order `remote`.
  Result<void> MixDh(const std::optional<crypto::X25519Keypair>& local,
                     const std::optional<crypto::X25519PublicKey>& remote) {
    // The pattern tables guarantee both keys exist by the time a DH token names them.
    ENCLAVIA_CHECK(local.has_value() && remote.has_value());
    ASSIGN_OR_RETURN(crypto::Secret<crypto::kX25519KeySize> shared,
                     crypto::X25519(local->private_key, *remote));
    symmetric_.MixKey(shared.Expose());
    return Ok();
  }

  // Dh runs one DH token (§5.3): which keys "es" and "se" name depends on the role.
  Result<void> Dh(Token token) {
    switch (token) {
      case kEE:
        return MixDh(e_, re_);
      case kES:
        return IsInitiator() ? MixDh(e_, rs_) : MixDh(s_, re_);
      case kSE:
        return IsInitiator() ? MixDh(s_, re_) : MixDh(e_, rs_);
      case kSS:
        return MixDh(s_, rs_);
      case kE:
      case kS:
        break;
    }
    ENCLAVIA_CHECK(false);
    return Ok();
  }

  const PatternSpec* spec_;
  Role role_;
  internal::SymmetricState symmetric_;
  std::optional<crypto::X25519Keypair> s_;
  std::optional<crypto::X25519Keypair> e_;
  std::optional<crypto::X25519Keypair> fixed_e_;
  std::optional<crypto::X25519PublicKey> rs_;
  std::optional<crypto::X25519PublicKey> re_;
  size_t next_ = 0;  // Index of the next message pattern.
  bool dead_ = false;
};

}  // namespace

// State is the pimpl behind Handshake; Split destroys it, which wipes every private key (Secret).
struct Handshake::State : HandshakeState {
  using HandshakeState::HandshakeState;
};

Result<Handshake> Handshake::Create(const HandshakeConfig& config) {
  const PatternSpec* spec = Spec(config.pattern);
  if (spec == nullptr || HashName(config.hash) == nullptr ||
      (config.role != Role::kInitiator && config.role != Role::kResponder)) {
    return Error(Code::kInvalidArgument, "noise: unknown pattern, hash or role");
  }
  const bool initiator = config.role == Role::kInitiator;
  const bool wants_static = initiator ? spec->initiator_static : spec->responder_static;
  if (wants_static != (config.local_static != nullptr)) {
    return Error(Code::kInvalidArgument, wants_static
                                             ? "noise: the pattern needs a local static key"
                                             : "noise: the pattern has no local static key");
  }
  const bool wants_remote = initiator && spec->responder_premessage_s;
  if (wants_remote != config.remote_static.has_value()) {
    return Error(Code::kInvalidArgument, wants_remote
                                             ? "noise: the pattern needs the remote static key"
                                             : "noise: the pattern takes no remote static key");
  }
  return Handshake(std::make_unique<State>(*spec, config));
}

Handshake::Handshake(std::unique_ptr<State> state) : state_(std::move(state)) {}
Handshake::Handshake(Handshake&&) noexcept = default;
Handshake& Handshake::operator=(Handshake&&) noexcept = default;
Handshake::~Handshake() = default;

Result<Bytes> Handshake::WriteMessage(ByteSpan payload) {
  if (state_ == nullptr || state_->Dead() || state_->Complete()) {
    return Finished();
  }
  if (!state_->MyTurn()) {
    state_->Kill();
    return Error(Code::kFailedPrecondition, "noise: it is the peer's turn to write");
  }
  auto message = state_->Write(payload);
  if (!message) {
    state_->Kill();
  }
  return message;
}

Result<Bytes> Handshake::ReadMessage(ByteSpan message) {
  if (state_ == nullptr || state_->Dead() || state_->Complete()) {
    return Finished();
  }
  if (state_->MyTurn()) {
    state_->Kill();
    return Error(Code::kFailedPrecondition, "noise: it is this side's turn to write");
  }
  auto payload = state_->Read(message);
  if (!payload) {
    state_->Kill();
  }
  return payload;
}

bool Handshake::is_my_turn() const { return state_ != nullptr && state_->MyTurn(); }

bool Handshake::complete() const { return state_ != nullptr && state_->Complete(); }

HandshakeHash Handshake::handshake_hash() const {
  return state_ != nullptr ? state_->CurrentHash() : HandshakeHash();
}

std::optional<crypto::X25519PublicKey> Handshake::local_ephemeral() const {
  return state_ != nullptr ? state_->LocalEphemeral() : std::nullopt;
}

std::optional<crypto::X25519PublicKey> Handshake::remote_ephemeral() const {
  return state_ != nullptr ? state_->RemoteEphemeral() : std::nullopt;
}

std::optional<crypto::X25519PublicKey> Handshake::remote_static() const {
  return state_ != nullptr ? state_->RemoteStatic() : std::nullopt;
}

Result<TransportSession> Handshake::Split() && {
  if (!complete()) {
    if (state_ != nullptr) {
      state_->Kill();
    }
    return Error(Code::kFailedPrecondition, "noise: Split before the handshake completed");
  }
  auto [send, receive] = state_->Split();
  HandshakeHash hash = state_->CurrentHash();
  std::optional<crypto::X25519PublicKey> remote = state_->RemoteStatic();
  // Destroying the state wipes the ephemeral and static private keys and the chaining key.
  state_.reset();
  return TransportSession(std::move(send), std::move(receive), std::move(hash), remote);
}

}  // namespace enclavia::noise
