// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_UPGRADE_HANDOVER_H_
#define ENCLAVIA_ENCLAVE_UPGRADE_HANDOVER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/channel/trust.h"
#include "lib/crypto/secret.h"
#include "lib/mux/mux.h"
#include "lib/tunnel/engine.h"

// The handover from an old enclave to its successor (docs/upgrade.md, "Activation"). The old
// enclave dials the successor's ingress through the host (a byte pipe: channel records, u16 BE
// length + bytes), runs the attested channel handshake as a client, opens one mux stream to
// upgrade::kHandoverStreamPort and sends one message, u32 BE length + deterministic CBOR:
//   {"v": 1, "receipt": bstr (activation receipt), "ring": bstr (volume key ring)?}
// and the successor answers on the same stream, then finishes it:
//   {"v": 1, "ok": true}   or   {"v": 1, "ok": false, "error": tstr}
// The ring travels only inside the channel, i.e. encrypted to the successor's attested key.
namespace enclavia::enclave {

inline constexpr size_t kMaxHandoverMessage = 64 * 1024;

struct HandoverMessage {
  Bytes receipt;
  std::optional<crypto::SecretBytes> ring;
};

// EncodeHandover writes the framed message (length prefix included); secret: the caller wipes.
crypto::SecretBytes EncodeHandover(const HandoverMessage& message);
// DecodeHandover parses one unframed body strictly (kMalformed "handover: ...").
Result<HandoverMessage> DecodeHandover(ByteSpan body);
// EncodeHandoverReply writes the framed reply to `outcome`.
Bytes EncodeHandoverReply(const Result<void>& outcome);
// DecodeHandoverReply parses one unframed reply: Ok, or kFailedPrecondition with the
// successor's (escaped) reason.
Result<void> DecodeHandoverReply(ByteSpan body);

// HandoverPayload builds the message once the successor's attestation passed the policy: the
// old enclave quiesces, reads its key ring and signs the activation receipt for that
// attestation's public_key (the successor's Noise static key).
using HandoverPayload =
    std::function<Result<HandoverMessage>(const attestation::VerifiedAttestation& successor)>;

// RunHandoverClient runs the old enclave's side over `fd`, a connected stream to the
// successor's ingress: handshake (nothing is sent after message 1 unless the successor's
// attestation passes `policy`), payload, the successor's reply. Blocking; every read waits at
// most `timeout`. Errors: the handshake's, the payload's, or the successor's refusal.
Result<void> RunHandoverClient(int fd, std::shared_ptr<const channel::TrustPolicy> policy,
                               const HandoverPayload& payload, std::chrono::milliseconds timeout);

// HandoverServer is the successor's side: the ingress hands it the mux stream a client opened to
// upgrade::kHandoverStreamPort (only while awaiting a handover). The sink reads one message and
// runs `handler` on a thread of its own (it may block on the KMS and the storage service; a
// handover happens once in an enclave's life); the reply goes back on the stream. The thread
// holds shared ownership of what it uses, so it may outlive the ingress. Thread-safe.
class HandoverServer : public std::enable_shared_from_this<HandoverServer> {
 public:
  using Handler = std::function<Result<void>(HandoverMessage message)>;
  explicit HandoverServer(Handler handler) : handler_(std::move(handler)) {}

  // Sink returns the stream's sink; call from the engine's on_open (its strand).
  std::shared_ptr<tunnel::StreamSink> Sink(const std::shared_ptr<tunnel::Engine>& engine,
                                           mux::StreamId id);
  // Run runs the handler and then `done`, both on a new thread.
  void Run(HandoverMessage message, std::function<void(Result<void>)> done);

 private:
  Handler handler_;
};

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_UPGRADE_HANDOVER_H_
