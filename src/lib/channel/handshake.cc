// SPDX-License-Identifier: Apache-2.0
#include "lib/channel/handshake.h"

#include <utility>

#include "lib/channel/protocol.h"

namespace enclavia::channel {
namespace {

// Config is Noise_XX_25519_ChaChaPoly_BLAKE2b with the version-1 prologue, for either side.
noise::HandshakeConfig Config(noise::Role role, const crypto::X25519Keypair& local_static) {
  noise::HandshakeConfig config;
  config.pattern = noise::Pattern::kXX;
  config.hash = noise::Hash::kBlake2b;
  config.role = role;
  config.prologue = AsBytes(kPrologue);
  config.local_static = &local_static;
  return config;
}

}  // namespace

Result<Bytes> SecureChannel::Seal(ByteSpan plaintext) {
  ASSIGN_OR_RETURN(Bytes message, session_.Encrypt(plaintext));
  if (session_.send_nonce() % kRekeyInterval == 0) {
    session_.RekeySend();
  }
  return message;
}

Result<Bytes> SecureChannel::Open(ByteSpan message) {
  ASSIGN_OR_RETURN(Bytes plaintext, session_.Decrypt(message));
  if (session_.receive_nonce() % kRekeyInterval == 0) {
    session_.RekeyReceive();
  }
  return plaintext;
}

Result<Bytes> SecureChannel::SealInPlace(Bytes plaintext) {
  RETURN_IF_ERROR(session_.EncryptInPlace(plaintext));
  if (session_.send_nonce() % kRekeyInterval == 0) {
    session_.RekeySend();
  }
  return plaintext;
}

Result<Bytes> SecureChannel::OpenInPlace(Bytes message) {
  RETURN_IF_ERROR(session_.DecryptInPlace(message));
  if (session_.receive_nonce() % kRekeyInterval == 0) {
    session_.RekeyReceive();
  }
  return message;
}

AttestationSource::AttestationSource(std::shared_ptr<attestation::Nsm> nsm,
                                     crypto::X25519PublicKey static_key, Options options)
    : nsm_(std::move(nsm)), static_key_(static_key), options_(std::move(options)) {}

SystemTime AttestationSource::Now() const {
  return options_.clock ? options_.clock() : SystemTime(std::chrono::system_clock::now());
}

Result<Bytes> AttestationSource::Fresh(ByteSpan nonce) {
  std::lock_guard lock(mu_);
  return FreshLocked(nonce);
}

Result<Bytes> AttestationSource::FreshLocked(ByteSpan nonce) {
  attestation::AttestationRequest request;
  request.public_key = Bytes(static_key_.begin(), static_key_.end());
  request.nonce = Bytes(nonce.begin(), nonce.end());
  if (!head_.empty()) {
    request.user_data = head_;
  }
  ++requests_;
  return nsm_->Attestation(request);
}

Result<Bytes> AttestationSource::Cached() {
  std::lock_guard lock(mu_);
  return CachedLocked();
}

Result<Bytes> AttestationSource::CachedLocked() {
  SystemTime now = Now();
  if (cached_.empty() || now - cached_at_ >= options_.refresh_after || now < cached_at_) {
    attestation::AttestationRequest request;
    request.public_key = Bytes(static_key_.begin(), static_key_.end());
    if (!head_.empty()) {
      request.user_data = head_;
    }
    ++requests_;
    ASSIGN_OR_RETURN(cached_, nsm_->Attestation(request));
    cached_at_ = now;
  }
  return cached_;
}

Result<AttestationSource::Presented> AttestationSource::Present(std::optional<ByteSpan> nonce) {
  std::lock_guard lock(mu_);
  Presented presented;
  if (nonce.has_value()) {
    ASSIGN_OR_RETURN(presented.attestation, FreshLocked(*nonce));
  } else {
    ASSIGN_OR_RETURN(presented.attestation, CachedLocked());
  }
  presented.chain = chain_;
  return presented;
}

void AttestationSource::SetChain(std::vector<Bytes> chain, Bytes head) {
  std::lock_guard lock(mu_);
  chain_ = std::move(chain);
  head_ = std::move(head);
  cached_.clear();  // It binds the old head.
}

std::vector<Bytes> AttestationSource::chain() const {
  std::lock_guard lock(mu_);
  return chain_;
}

Bytes AttestationSource::head() const {
  std::lock_guard lock(mu_);
  return head_;
}

Result<Bytes> AttestationSource::ForKey(ByteSpan public_key, ByteSpan nonce) {
  attestation::AttestationRequest request;
  request.public_key = Bytes(public_key.begin(), public_key.end());
  if (!nonce.empty()) {
    request.nonce = Bytes(nonce.begin(), nonce.end());
  }
  std::lock_guard lock(mu_);
  if (!head_.empty()) {
    request.user_data = head_;
  }
  ++requests_;
  return nsm_->Attestation(request);
}

uint64_t AttestationSource::nsm_requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

Result<ClientHandshake> ClientHandshake::Create(std::shared_ptr<const TrustPolicy> policy) {
  if (policy == nullptr) {
    return Error(Code::kInvalidArgument, "channel: no trust policy");
  }
  RETURN_IF_ERROR(CheckPolicy(*policy));
  // The client's static key only completes XX; nothing identifies clients in version 1, so a
  // new one per connection keeps connections unlinkable.
  crypto::X25519Keypair client_static = crypto::X25519Keypair::Generate();
  ASSIGN_OR_RETURN(noise::Handshake handshake,
                   noise::Handshake::Create(Config(noise::Role::kInitiator, client_static)));
  return ClientHandshake(std::move(policy), std::move(handshake));
}

Result<ClientHandshake> ClientHandshake::CreateWithEphemeral(
    std::shared_ptr<const TrustPolicy> policy, const crypto::X25519Keypair& ephemeral) {
  if (policy == nullptr) {
    return Error(Code::kInvalidArgument, "channel: no trust policy");
  }
  RETURN_IF_ERROR(CheckPolicy(*policy));
  crypto::X25519Keypair client_static = crypto::X25519Keypair::Generate();
  noise::HandshakeConfig config = Config(noise::Role::kInitiator, client_static);
  config.fixed_ephemeral = &ephemeral;
  ASSIGN_OR_RETURN(noise::Handshake handshake, noise::Handshake::Create(config));
  return ClientHandshake(std::move(policy), std::move(handshake));
}

Result<Bytes> ClientHandshake::Start() {
  ClientHello hello{.fresh = policy_->freshness == Freshness::kFresh};
  return handshake_.WriteMessage(EncodeClientHello(hello));
}

Result<Bytes> ClientHandshake::ReadServerHello(ByteSpan message2) {
  auto payload = handshake_.ReadMessage(message2);
  if (!payload) {
    return payload.error().WithContext("channel: server hello");
  }
  ASSIGN_OR_RETURN(ServerHello hello, DecodeServerHello(*payload));
  std::optional<crypto::X25519PublicKey> server_static = handshake_.remote_static();
  std::optional<crypto::X25519PublicKey> ephemeral = handshake_.local_ephemeral();
  if (!server_static || !ephemeral) {
    return Error(Code::kInternal, "channel: handshake keys missing after message 2");
  }
  std::optional<upgrade::VerifiedChain> chain;
  ASSIGN_OR_RETURN(attestation::VerifiedAttestation verified,
                   VerifyEnclave(*policy_, hello.attestation, hello.chain, *server_static,
                                 *ephemeral, &chain));
  // Only now does the client commit to the channel (and, in message 3, its static key).
  ASSIGN_OR_RETURN(Bytes message3, handshake_.WriteMessage(EncodeClientFinish()));
  verified_.emplace(std::move(verified));
  chain_ = std::move(chain);
  return message3;
}

Result<ClientHandshake::Established> ClientHandshake::Finish() && {
  if (!verified_ || !handshake_.complete()) {
    return Error(Code::kFailedPrecondition, "channel: handshake not complete");
  }
  ASSIGN_OR_RETURN(noise::TransportSession session, std::move(handshake_).Split());
  return Established{SecureChannel(std::move(session)), std::move(*verified_), std::move(chain_)};
}

Result<ServerHandshake> ServerHandshake::Create(const crypto::X25519Keypair& static_key,
                                                AttestationSource& source) {
  ASSIGN_OR_RETURN(noise::Handshake handshake,
                   noise::Handshake::Create(Config(noise::Role::kResponder, static_key)));
  return ServerHandshake(std::move(handshake), source);
}

Result<Bytes> ServerHandshake::ReadClientHello(ByteSpan message1) {
  auto payload = handshake_.ReadMessage(message1);
  if (!payload) {
    return payload.error().WithContext("channel: client hello");
  }
  ASSIGN_OR_RETURN(ClientHello hello, DecodeClientHello(*payload));
  fresh_ = hello.fresh;
  AttestationSource::Presented presented;
  if (hello.fresh) {
    std::optional<crypto::X25519PublicKey> ephemeral = handshake_.remote_ephemeral();
    if (!ephemeral) {
      return Error(Code::kInternal, "channel: no client ephemeral key after message 1");
    }
    ASSIGN_OR_RETURN(presented, source_->Present(ByteSpan(*ephemeral)));
  } else {
    ASSIGN_OR_RETURN(presented, source_->Present(std::nullopt));
  }
  return handshake_.WriteMessage(EncodeServerHello(
      ServerHello{std::move(presented.attestation), std::move(presented.chain)}));
}

Result<SecureChannel> ServerHandshake::ReadClientFinish(ByteSpan message3) && {
  auto payload = handshake_.ReadMessage(message3);
  if (!payload) {
    return payload.error().WithContext("channel: client finish");
  }
  RETURN_IF_ERROR(DecodeClientFinish(*payload));
  ASSIGN_OR_RETURN(noise::TransportSession session, std::move(handshake_).Split());
  return SecureChannel(std::move(session));
}

}  // namespace enclavia::channel
