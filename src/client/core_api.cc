// SPDX-License-Identifier: Apache-2.0
// The C ABI's sans-I/O half: trust policies, verification without a connection and the client
// session state machine. No thread, no socket, no Asio: the browser build (wasm) compiles this
// file, so every SDK verifies with this code.
#include <cstring>
#include <deque>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "client/internal/c_errors.h"
#include "client/internal/c_objects.h"
#include "client/trust.h"
#include "enclavia/client.h"
#include "lib/base/encoding.h"
#include "lib/channel/handshake.h"
#include "lib/config/trust_file.h"
#include "lib/crypto/random.h"
#include "lib/crypto/x25519.h"
#include "lib/mux/mux.h"

using enclavia::Bytes;
using enclavia::ByteSpan;
using enclavia::Code;
using enclavia::Error;
using enclavia::client::internal::Fail;
using enclavia::client::internal::FailWith;
using enclavia::client::internal::Invalid;
using enclavia::client::internal::LastError;
using enclavia::client::internal::Succeed;
using enclavia::client::internal::CopyPcr;

namespace enclavia::client::internal {

enclavia_status CopyPcr(const attestation::AttestationDocument& document, uint8_t out[48],
                        uint32_t index) {
  auto it = document.pcrs.find(index);
  if (it == document.pcrs.end() || it->second.size() != 48) {
    return FailWith(ENCLAVIA_NOT_FOUND, std::string("no PCR")
                                            .append(std::to_string(index))
                                            .append(" in the attestation"));
  }
  std::memcpy(out, it->second.data(), 48);
  return Succeed();
}

}  // namespace enclavia::client::internal

// enclavia_session is the client end of one channel: the handshake until the ServerHello passed
// the policy, then the transport (SecureChannel) around a client mux::Session — what
// tunnel::Engine does with a socket, with the caller carrying the messages.
struct enclavia_session {
  std::shared_ptr<const enclavia::channel::TrustPolicy> policy;
  std::optional<enclavia::channel::ClientHandshake> handshake;  // Until established.
  std::optional<enclavia::channel::SecureChannel> channel;      // Once established.
  enclavia::mux::Session mux{enclavia::mux::Side::kClient};
  std::optional<enclavia_attestation> attestation;
  std::deque<Bytes> handshake_out;  // Messages 1 and 3: Noise handshake messages, not sealed.
  Bytes current_out;                // What poll_outgoing last returned.
  bool established_pending = false;  // ESTABLISHED not yet polled.
  Bytes event_data;                  // The data of what poll_event last returned.
  std::optional<Error> failure;      // The first error: the session is over.
};

namespace {

template <typename T>
T* New(T&& value) {
  return new (std::nothrow) std::remove_reference_t<T>(std::forward<T>(value));
}

enclavia_status OutOfMemory() { return FailWith(ENCLAVIA_INTERNAL, "out of memory"); }

enclavia_status InitCrypto() {
  if (auto init = enclavia::crypto::Init(); !init) {
    return Fail(init.error());
  }
  return ENCLAVIA_OK;
}

enclavia_status ReturnAttestation(enclavia_attestation** out, enclavia_attestation value) {
  *out = New(std::move(value));
  return *out == nullptr ? OutOfMemory() : Succeed();
}

// SessionFailed is what every call on a failed session returns.
enclavia_status SessionFailed(const enclavia_session* session, const char* function) {
  return FailWith(ENCLAVIA_FAILED_PRECONDITION, std::string(function)
                                                    .append(": the session failed: ")
                                                    .append(session->failure->message()));
}

// Final records the session's first error and returns it.
enclavia_status Final(enclavia_session* session, Error error) {
  session->failure = std::move(error);
  return Fail(*session->failure);
}

enclavia_status NotEstablished(const char* function) {
  return FailWith(ENCLAVIA_FAILED_PRECONDITION,
                  std::string(function).append(": the channel is not established yet"));
}

enclavia_status ReceiveServerHello(enclavia_session* session, ByteSpan message2) {
  auto message3 = session->handshake->ReadServerHello(message2);
  if (!message3) {
    return Final(session, message3.error());
  }
  auto established = std::move(*session->handshake).Finish();
  session->handshake.reset();
  if (!established) {
    return Final(session, established.error());
  }
  session->handshake_out.push_back(std::move(*message3));
  session->channel.emplace(std::move(established->channel));
  session->attestation.emplace(enclavia_attestation{std::move(established->attestation),
                                                    std::move(established->chain)});
  session->established_pending = true;
  return Succeed();
}

// OptionalBytes returns an optional document field as the C ABI does: NULL and 0 when absent.
const uint8_t* OptionalBytes(const std::optional<Bytes>& field, size_t* size) {
  if (size != nullptr) {
    *size = field ? field->size() : 0;
  }
  return field && !field->empty() ? field->data() : nullptr;
}

}  // namespace

extern "C" {

const char* enclavia_last_error(void) { return LastError().c_str(); }

const char* enclavia_status_name(enclavia_status status) {
  if (status < ENCLAVIA_OK || status > ENCLAVIA_UNAVAILABLE) {
    return "unknown";
  }
  return enclavia::CodeName(static_cast<Code>(status)).data();
}

// --- Trust policies ------------------------------------------------------------------------

enclavia_status enclavia_trust_parse(enclavia_trust** out, const char* toml,
                                     const char* base_dir) {
  if (out == nullptr || toml == nullptr) {
    return Invalid("enclavia_trust_parse");
  }
  *out = nullptr;
  if (enclavia_status init = InitCrypto(); init != ENCLAVIA_OK) {
    return init;
  }
  auto file = enclavia::config::ParseTrustFile(toml);
  if (!file) {
    return Fail(file.error());
  }
  auto policy =
      enclavia::client::PolicyFromTrustFile(*file, base_dir == nullptr ? "" : base_dir);
  if (!policy) {
    return Fail(policy.error());
  }
  *out = New(enclavia_trust{std::move(*policy)});
  return *out == nullptr ? OutOfMemory() : Succeed();
}

enclavia_status enclavia_trust_load(enclavia_trust** out, const char* path) {
  if (out == nullptr || path == nullptr) {
    return Invalid("enclavia_trust_load");
  }
  *out = nullptr;
  if (enclavia_status init = InitCrypto(); init != ENCLAVIA_OK) {
    return init;
  }
  auto policy = enclavia::client::LoadTrustPolicy(path);
  if (!policy) {
    return Fail(policy.error());
  }
  *out = New(enclavia_trust{std::move(*policy)});
  return *out == nullptr ? OutOfMemory() : Succeed();
}

enclavia_status enclavia_trust_set_time(enclavia_trust* trust, int64_t unix_ms) {
  if (trust == nullptr) {
    return Invalid("enclavia_trust_set_time");
  }
  if (unix_ms < 0) {
    return FailWith(ENCLAVIA_INVALID_ARGUMENT, "enclavia_trust_set_time: negative time");
  }
  if (unix_ms == 0) {
    trust->policy.clock = nullptr;
  } else {
    enclavia::SystemTime at = enclavia::FromUnixMillis(static_cast<uint64_t>(unix_ms));
    trust->policy.clock = [at] { return at; };
  }
  return Succeed();
}

void enclavia_trust_free(enclavia_trust* trust) { delete trust; }

// --- Verification without a connection --------------------------------------------------------

enclavia_status enclavia_verify_attestation(const enclavia_trust* trust,
                                            enclavia_attestation** out, const uint8_t* document,
                                            size_t document_size, const uint8_t* const* chain,
                                            const size_t* chain_sizes, size_t chain_count,
                                            const uint8_t* public_key, const uint8_t* nonce) {
  if (out != nullptr) {
    *out = nullptr;
  }
  if (trust == nullptr || out == nullptr || document == nullptr ||
      (chain_count > 0 && (chain == nullptr || chain_sizes == nullptr))) {
    return Invalid("enclavia_verify_attestation");
  }
  std::vector<Bytes> entries;
  entries.reserve(chain_count);
  for (size_t i = 0; i < chain_count; ++i) {
    if (chain[i] == nullptr && chain_sizes[i] > 0) {
      return Invalid("enclavia_verify_attestation");
    }
    entries.emplace_back(chain[i], chain[i] + chain_sizes[i]);
  }
  if (enclavia_status init = InitCrypto(); init != ENCLAVIA_OK) {
    return init;
  }
  enclavia::channel::DocumentChecks checks;
  if (public_key != nullptr) {
    checks.public_key = Bytes(public_key, public_key + enclavia::crypto::kX25519KeySize);
  }
  if (nonce != nullptr) {
    checks.nonce = Bytes(nonce, nonce + 32);
  }
  std::optional<enclavia::upgrade::VerifiedChain> verified_chain;
  auto verified = enclavia::channel::VerifyDocument(
      trust->policy, ByteSpan(document, document_size), entries, checks, &verified_chain);
  if (!verified) {
    return Fail(verified.error());
  }
  return ReturnAttestation(out,
                           enclavia_attestation{std::move(*verified), std::move(verified_chain)});
}

enclavia_status enclavia_handshake_replay(const enclavia_trust* trust,
                                          enclavia_attestation** out, const uint8_t ephemeral[32],
                                          const uint8_t* message2, size_t size) {
  if (out != nullptr) {
    *out = nullptr;
  }
  if (trust == nullptr || out == nullptr || ephemeral == nullptr || message2 == nullptr) {
    return Invalid("enclavia_handshake_replay");
  }
  if (enclavia_status init = InitCrypto(); init != ENCLAVIA_OK) {
    return init;
  }
  auto keypair = enclavia::crypto::X25519Keypair::FromPrivate(
      std::span<const uint8_t, enclavia::crypto::kX25519KeySize>(
          ephemeral, enclavia::crypto::kX25519KeySize));
  auto handshake = enclavia::channel::ClientHandshake::CreateWithEphemeral(
      std::make_shared<const enclavia::channel::TrustPolicy>(trust->policy), keypair);
  if (!handshake) {
    return Fail(handshake.error());
  }
  if (auto message1 = handshake->Start(); !message1) {
    return Fail(message1.error());
  }
  if (auto message3 = handshake->ReadServerHello(ByteSpan(message2, size)); !message3) {
    return Fail(message3.error());
  }
  auto established = std::move(*handshake).Finish();
  if (!established) {
    return Fail(established.error());
  }
  return ReturnAttestation(out, enclavia_attestation{std::move(established->attestation),
                                                     std::move(established->chain)});
}

// --- Attestation accessors ------------------------------------------------------------------

enclavia_status enclavia_attestation_pcr(const enclavia_attestation* attestation,
                                         uint8_t out[48], uint32_t index) {
  if (attestation == nullptr || out == nullptr) {
    return Invalid("enclavia_attestation_pcr");
  }
  return CopyPcr(attestation->verified.document(), out, index);
}

const char* enclavia_attestation_module_id(const enclavia_attestation* attestation) {
  return attestation == nullptr ? "" : attestation->verified.document().module_id.c_str();
}

int64_t enclavia_attestation_timestamp_ms(const enclavia_attestation* attestation) {
  return attestation == nullptr
             ? 0
             : static_cast<int64_t>(attestation->verified.document().timestamp_ms);
}

const uint8_t* enclavia_attestation_public_key(const enclavia_attestation* attestation,
                                               size_t* size) {
  if (attestation == nullptr) {
    return OptionalBytes(std::nullopt, size);
  }
  return OptionalBytes(attestation->verified.document().public_key, size);
}

const uint8_t* enclavia_attestation_user_data(const enclavia_attestation* attestation,
                                              size_t* size) {
  if (attestation == nullptr) {
    return OptionalBytes(std::nullopt, size);
  }
  return OptionalBytes(attestation->verified.document().user_data, size);
}

uint32_t enclavia_attestation_upgrades(const enclavia_attestation* attestation) {
  if (attestation == nullptr || !attestation->chain) {
    return 0;
  }
  return static_cast<uint32_t>(attestation->chain->steps.size());
}

enclavia_status enclavia_attestation_genesis(const enclavia_attestation* attestation,
                                             uint8_t out[32]) {
  if (attestation == nullptr || out == nullptr) {
    return Invalid("enclavia_attestation_genesis");
  }
  if (!attestation->chain) {
    return FailWith(ENCLAVIA_NOT_FOUND, "the enclave presented no upgrade chain");
  }
  std::memcpy(out, attestation->chain->genesis_hash.data(), 32);
  return Succeed();
}

void enclavia_attestation_free(enclavia_attestation* attestation) { delete attestation; }

// --- The sans-I/O session -------------------------------------------------------------------

enclavia_status enclavia_session_new(enclavia_session** out, const enclavia_trust* trust) {
  if (out == nullptr || trust == nullptr) {
    return Invalid("enclavia_session_new");
  }
  *out = nullptr;
  if (enclavia_status init = InitCrypto(); init != ENCLAVIA_OK) {
    return init;
  }
  auto policy = std::make_shared<const enclavia::channel::TrustPolicy>(trust->policy);
  auto handshake = enclavia::channel::ClientHandshake::Create(policy);
  if (!handshake) {
    return Fail(handshake.error());
  }
  auto message1 = handshake->Start();
  if (!message1) {
    return Fail(message1.error());
  }
  auto session = std::unique_ptr<enclavia_session>(new (std::nothrow) enclavia_session);
  if (session == nullptr) {
    return OutOfMemory();
  }
  session->policy = std::move(policy);
  session->handshake.emplace(std::move(*handshake));
  session->handshake_out.push_back(std::move(*message1));
  *out = session.release();
  return Succeed();
}

void enclavia_session_free(enclavia_session* session) { delete session; }

enclavia_status enclavia_session_receive(enclavia_session* session, const uint8_t* message,
                                         size_t size) {
  if (session == nullptr || (message == nullptr && size > 0)) {
    return Invalid("enclavia_session_receive");
  }
  if (session->failure) {
    return SessionFailed(session, "enclavia_session_receive");
  }
  if (session->handshake) {
    return ReceiveServerHello(session, ByteSpan(message, size));
  }
  auto plaintext = session->channel->OpenInPlace(Bytes(message, message + size));
  if (!plaintext) {
    // As tunnel::Engine: a message that fails authentication was altered, replayed, reordered
    // or follows a lost one; the channel cannot continue (docs/protocol.md).
    return Final(session, Error(Code::kVerifyFailed,
                                "channel: message failed authentication; channel dropped"));
  }
  if (auto received = session->mux.Receive(*plaintext); !received) {
    return Final(session, received.error());
  }
  return Succeed();
}

enclavia_status enclavia_session_poll_outgoing(enclavia_session* session,
                                               const uint8_t** message, size_t* size) {
  if (session == nullptr || message == nullptr || size == nullptr) {
    return Invalid("enclavia_session_poll_outgoing");
  }
  *message = nullptr;
  *size = 0;
  if (session->failure) {
    return SessionFailed(session, "enclavia_session_poll_outgoing");
  }
  session->current_out.clear();
  if (!session->handshake_out.empty()) {
    // Messages 1 and 3 are Noise handshake messages, sent as they are (docs/protocol.md).
    session->current_out = std::move(session->handshake_out.front());
    session->handshake_out.pop_front();
  } else if (session->channel) {
    std::optional<Bytes> plaintext = session->mux.PollOutgoing();
    if (!plaintext) {
      return Succeed();
    }
    auto sealed = session->channel->SealInPlace(std::move(*plaintext));
    if (!sealed) {
      return Final(session, sealed.error());
    }
    session->current_out = std::move(*sealed);
  } else {
    return Succeed();
  }
  *message = session->current_out.data();
  *size = session->current_out.size();
  return Succeed();
}

enclavia_status enclavia_session_poll_event(enclavia_session* session, enclavia_event* event) {
  if (session == nullptr || event == nullptr) {
    return Invalid("enclavia_session_poll_event");
  }
  *event = enclavia_event{ENCLAVIA_EVENT_NONE, 0, 0, nullptr, 0};
  if (session->failure) {
    return SessionFailed(session, "enclavia_session_poll_event");
  }
  session->event_data.clear();
  if (session->established_pending) {
    session->established_pending = false;
    event->kind = ENCLAVIA_EVENT_ESTABLISHED;
    return Succeed();
  }
  if (!session->channel) {
    return Succeed();
  }
  namespace ev = enclavia::mux::event;
  while (event->kind == ENCLAVIA_EVENT_NONE) {
    std::optional<enclavia::mux::Event> next = session->mux.PollEvent();
    if (!next) {
      break;
    }
    std::visit(
        [session, event](auto& e) {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, ev::Data>) {
            *event = {ENCLAVIA_EVENT_DATA, e.id, 0, nullptr, 0};
            session->event_data = std::move(e.bytes);
          } else if constexpr (std::is_same_v<T, ev::Fin>) {
            *event = {ENCLAVIA_EVENT_FIN, e.id, 0, nullptr, 0};
          } else if constexpr (std::is_same_v<T, ev::Reset>) {
            *event = {ENCLAVIA_EVENT_RESET, e.id, static_cast<uint32_t>(e.code), nullptr, 0};
            session->event_data.assign(e.reason.begin(), e.reason.end());
          } else if constexpr (std::is_same_v<T, ev::Writable>) {
            *event = {ENCLAVIA_EVENT_WRITABLE, e.id, 0, nullptr, 0};
          } else if constexpr (std::is_same_v<T, ev::Closed>) {
            *event = {ENCLAVIA_EVENT_CLOSED, e.id, 0, nullptr, 0};
          } else if constexpr (std::is_same_v<T, ev::GoAway>) {
            *event = {ENCLAVIA_EVENT_GOAWAY, e.last_id, static_cast<uint32_t>(e.code), nullptr,
                      0};
            session->event_data.assign(e.reason.begin(), e.reason.end());
          } else if constexpr (std::is_same_v<T, ev::Opened>) {
            // A client accepts no streams (the mux refuses them too); as tunnel::Engine.
            (void)session->mux.Reset(e.id, enclavia::mux::ResetCode::kRefused,
                                     "streams are not accepted");
          }
          // Pong: this session never pings.
        },
        *next);
  }
  if (!session->event_data.empty()) {
    event->data = session->event_data.data();
    event->size = session->event_data.size();
  }
  return Succeed();
}

const enclavia_attestation* enclavia_session_attestation(const enclavia_session* session) {
  if (session == nullptr || !session->attestation) {
    return nullptr;
  }
  return &*session->attestation;
}

enclavia_status enclavia_session_open(enclavia_session* session, uint32_t* stream,
                                      uint16_t port) {
  if (session == nullptr || stream == nullptr) {
    return Invalid("enclavia_session_open");
  }
  *stream = 0;
  if (session->failure) {
    return SessionFailed(session, "enclavia_session_open");
  }
  if (!session->channel) {
    return NotEstablished("enclavia_session_open");
  }
  auto id = session->mux.Open(port);
  if (!id) {
    return Fail(id.error());
  }
  *stream = *id;
  return Succeed();
}

enclavia_status enclavia_session_write(enclavia_session* session, uint32_t stream,
                                       const uint8_t* data, size_t size, size_t* accepted) {
  if (session == nullptr || accepted == nullptr || (data == nullptr && size > 0)) {
    return Invalid("enclavia_session_write");
  }
  *accepted = 0;
  if (session->failure) {
    return SessionFailed(session, "enclavia_session_write");
  }
  if (!session->channel) {
    return NotEstablished("enclavia_session_write");
  }
  auto taken = session->mux.Write(stream, ByteSpan(data, size));
  if (!taken) {
    return Fail(taken.error());
  }
  *accepted = *taken;
  return Succeed();
}

enclavia_status enclavia_session_consumed(enclavia_session* session, uint32_t stream,
                                          size_t size) {
  if (session == nullptr) {
    return Invalid("enclavia_session_consumed");
  }
  if (session->failure) {
    return SessionFailed(session, "enclavia_session_consumed");
  }
  if (!session->channel) {
    return NotEstablished("enclavia_session_consumed");
  }
  session->mux.Consumed(stream, size);
  return Succeed();
}

enclavia_status enclavia_session_close_write(enclavia_session* session, uint32_t stream) {
  if (session == nullptr) {
    return Invalid("enclavia_session_close_write");
  }
  if (session->failure) {
    return SessionFailed(session, "enclavia_session_close_write");
  }
  if (!session->channel) {
    return NotEstablished("enclavia_session_close_write");
  }
  auto fin = session->mux.Fin(stream);
  return fin ? Succeed() : Fail(fin.error());
}

enclavia_status enclavia_session_reset(enclavia_session* session, uint32_t stream) {
  if (session == nullptr) {
    return Invalid("enclavia_session_reset");
  }
  if (session->failure) {
    return SessionFailed(session, "enclavia_session_reset");
  }
  if (!session->channel) {
    return NotEstablished("enclavia_session_reset");
  }
  auto reset = session->mux.Reset(stream, enclavia::mux::ResetCode::kCancelled,
                                  "reset by the application");
  return reset ? Succeed() : Fail(reset.error());
}

}  // extern "C"
