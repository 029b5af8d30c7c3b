// SPDX-License-Identifier: Apache-2.0
#include "enclave/upgrade/service.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "lib/channel/trust.h"
#include "lib/kms/envelope.h"
#include "lib/kms/key_ring.h"
#include "lib/kms/local_kms.h"
#include "lib/net/socket.h"
#include "lib/storage/remote_store.h"

namespace enclavia::enclave {
namespace {

constexpr std::string_view kDataKeyObject = "kms/data-key";
constexpr std::string_view kPreviousDataKeyObject = "kms/data-key.prev";
constexpr std::chrono::milliseconds kRequestTimeout{10000};

upgrade::Message ErrorMessage(const Error& error) {
  upgrade::Message m;
  m.type = upgrade::MessageType::kError;
  m.code = static_cast<uint32_t>(error.code());
  m.message = error.message();
  return m;
}

upgrade::Message Reply(upgrade::MessageType type, Bytes entry = {}) {
  upgrade::Message m;
  m.type = type;
  m.entry = std::move(entry);
  return m;
}

class KmsRingStore : public RingStore {
 public:
  KmsRingStore(net::Address storage, net::Address kms, std::shared_ptr<attestation::Nsm> nsm)
      : store_(std::move(storage)), kms_(std::move(nsm), std::move(kms)) {}

  Result<std::optional<crypto::SecretBytes>> Load() override {
    ASSIGN_OR_RETURN(std::optional<storage::wire::Attachment> attachment, store_.Hello());
    if (!attachment.has_value()) {
      return std::optional<crypto::SecretBytes>();
    }
    ASSIGN_OR_RETURN(Bytes blob, store_.Get(std::string(kDataKeyObject)));
    ASSIGN_OR_RETURN(kms::KeyRing ring, kms::OpenKeyRing(kms_, blob));
    return std::optional<crypto::SecretBytes>(kms::EncodeKeyRing(ring));
  }

  Result<void> Replace(const crypto::SecretBytes& ring_bytes) override {
    ASSIGN_OR_RETURN(std::optional<storage::wire::Attachment> attachment, store_.Hello());
    if (!attachment.has_value()) {
      return Error(Code::kFailedPrecondition,
                   "a volume key was handed over but no volume is attached");
    }
    ASSIGN_OR_RETURN(kms::KeyRing ring, kms::DecodeKeyRing(ring_bytes.Expose()));
    RETURN_IF_ERROR(kms::AppendFresh(ring));
    ASSIGN_OR_RETURN(Bytes blob, kms::SealKeyRing(kms_, attachment->kms_key_id, ring));
    // The old blob stays readable by the old image only; kept until the new one is known good.
    auto old = store_.Get(std::string(kDataKeyObject));
    if (old) {
      RETURN_IF_ERROR(store_.Put(std::string(kPreviousDataKeyObject), *old));
    } else if (old.error().code() != Code::kNotFound) {
      return std::move(old).error();
    }
    return store_.Put(std::string(kDataKeyObject), blob);
  }

 private:
  storage::RemoteObjectStore store_;
  kms::LocalKmsClient kms_;
};

}  // namespace

std::shared_ptr<RingStore> MakeKmsRingStore(net::Address storage, net::Address kms,
                                            std::shared_ptr<attestation::Nsm> nsm) {
  return std::make_shared<KmsRingStore>(std::move(storage), std::move(kms), std::move(nsm));
}

Result<std::unique_ptr<UpgradeService>> UpgradeService::Start(std::shared_ptr<UpgradeState> state,
                                                              UpgradeServiceOptions options) {
  if (state == nullptr) {
    return Error(Code::kInvalidArgument, "upgrade service: no state");
  }
  std::unique_ptr<UpgradeService> service(new UpgradeService(std::move(state), std::move(options)));
  auto listener = net::ListenOn(service->options_.listen);
  if (!listener) {
    return std::move(listener).error().WithContext("upgrade service");
  }
  service->listener_ = std::move(*listener);
  service->local_ = service->options_.listen;
  service->thread_ = std::thread([raw = service.get()] { raw->Serve(); });
  return service;
}

UpgradeService::~UpgradeService() { Stop(); }

void UpgradeService::Stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  if (listener_.valid()) {
    ::shutdown(listener_.get(), SHUT_RDWR);
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void UpgradeService::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  }
}

void UpgradeService::Serve() {
  while (!stopping_) {
    pollfd pfd{.fd = listener_.get(), .events = POLLIN, .revents = 0};
    int n = ::poll(&pfd, 1, 200);
    if (n <= 0) {
      continue;
    }
    int conn = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      continue;
    }
    sys::UniqueFd fd(conn);
    auto request = upgrade::ReadMessage(fd.get(), kRequestTimeout);
    if (!request) {
      Log("upgrade service: bad request: " + request.error().message());
      (void)upgrade::WriteMessage(fd.get(), ErrorMessage(request.error()));
      continue;
    }
    upgrade::Message response = Handle(*request);
    auto sent = upgrade::WriteMessage(fd.get(), response);
    if (response.type == upgrade::MessageType::kActivated) {
      if (!sent) {
        Log("upgrade service: the host left before the activation receipt: " +
            sent.error().message());
      }
      // Superseded either way: the successor holds the volume now.
      if (options_.on_superseded) {
        options_.on_superseded();
      }
    }
  }
}

upgrade::Message UpgradeService::Handle(const upgrade::Message& request) {
  if (state_->phase() == UpgradePhase::kSuperseded) {
    return ErrorMessage(Error(Code::kFailedPrecondition, "upgrade: this enclave is superseded"));
  }
  switch (request.type) {
    case upgrade::MessageType::kChain:
      return state_->ChainView();
    case upgrade::MessageType::kStage: {
      auto receipt = state_->Stage(request.entry);
      if (!receipt) {
        Log("upgrade service: stage refused: " + receipt.error().message());
        return ErrorMessage(receipt.error());
      }
      Log("upgrade service: staged a request");
      return Reply(upgrade::MessageType::kStaged, std::move(*receipt));
    }
    case upgrade::MessageType::kRevoke: {
      auto revoked = state_->Revoke(request.entry);
      if (!revoked) {
        return ErrorMessage(revoked.error());
      }
      Log("upgrade service: recorded a revocation");
      return Reply(upgrade::MessageType::kRevoked);
    }
    case upgrade::MessageType::kActivate: {
      auto receipt = Activate(request.entry);
      if (!receipt) {
        Log("upgrade service: activation failed: " + receipt.error().message());
        return ErrorMessage(receipt.error());
      }
      Log("upgrade service: handed over to the successor; superseded");
      return Reply(upgrade::MessageType::kActivated, std::move(*receipt));
    }
    default:
      return ErrorMessage(Error(Code::kInvalidArgument, "upgrade service: unexpected request"));
  }
}

Result<Bytes> UpgradeService::Activate(ByteSpan request_hash) {
  ASSIGN_OR_RETURN(UpgradeState::Activation activation, state_->BeginActivation(request_hash));
  bool quiesced = false;
  auto attempt = [&]() -> Result<Bytes> {
    // The successor, through the host: {"t": "successor"} → {"t": "ok"}, then a byte pipe.
    ASSIGN_OR_RETURN(sys::UniqueFd fd, net::Connect(options_.parent_upgrade));
    upgrade::Message ask;
    ask.type = upgrade::MessageType::kSuccessor;
    RETURN_IF_ERROR(upgrade::WriteMessage(fd.get(), ask));
    ASSIGN_OR_RETURN(upgrade::Message answer, upgrade::ReadMessage(fd.get(), options_.timeout));
    if (answer.type == upgrade::MessageType::kError) {
      return Error(Code::kUnavailable, "the host has no successor: " + answer.message.substr(0, 200));
    }
    if (answer.type != upgrade::MessageType::kOk) {
      return Error(Code::kMalformed, "the host answered \"successor\" with another message");
    }
    auto policy = std::make_shared<channel::TrustPolicy>();
    policy->verifier = state_->verifier();
    policy->accept.push_back(
        channel::PcrSet(activation.request.new_pcrs.begin(), activation.request.new_pcrs.end()));
    policy->freshness = channel::Freshness::kFresh;
    policy->allow_debug = state_->allow_debug();
    Bytes receipt;
    HandoverPayload payload =
        [&](const attestation::VerifiedAttestation& successor) -> Result<HandoverMessage> {
      const auto& key = successor.document().public_key;
      if (!key.has_value() || key->size() != crypto::kX25519KeySize) {
        return Error(Code::kPolicyViolation, "the successor's document binds no static key");
      }
      // Only now, with the successor verified, does the old enclave stop its application.
      if (options_.quiesce) {
        RETURN_IF_ERROR(options_.quiesce());
        quiesced = true;
      }
      HandoverMessage message;
      std::optional<upgrade::Digest> commitment;
      if (options_.rings != nullptr) {
        ASSIGN_OR_RETURN(std::optional<crypto::SecretBytes> ring, options_.rings->Load());
        if (ring.has_value()) {
          commitment = upgrade::KeyCommitment(ring->Expose(), *key);
          message.ring = std::move(ring);
        }
      }
      ASSIGN_OR_RETURN(message.receipt, state_->SignActivation(activation, *key, commitment));
      receipt = message.receipt;
      return message;
    };
    RETURN_IF_ERROR(RunHandoverClient(fd.get(), policy, payload, options_.timeout));
    return receipt;
  };
  auto receipt = attempt();
  state_->FinishActivation(receipt.has_value());
  if (!receipt && quiesced && options_.resume) {
    options_.resume();
  }
  return receipt;
}

HandoverServer::Handler SuccessorHandler(std::shared_ptr<UpgradeState> state,
                                         crypto::X25519PublicKey our_static_key,
                                         std::shared_ptr<RingStore> rings,
                                         std::function<void()> on_ready) {
  return [state = std::move(state), our_static_key, rings = std::move(rings),
          on_ready = std::move(on_ready)](HandoverMessage message) -> Result<void> {
    const crypto::SecretBytes* ring = message.ring.has_value() ? &*message.ring : nullptr;
    ASSIGN_OR_RETURN(UpgradeState::Handover handover,
                     state->CheckHandover(message.receipt, ring, our_static_key));
    if (ring != nullptr) {
      if (rings == nullptr) {
        return Error(Code::kFailedPrecondition,
                     "a volume key was handed over but this enclave has no volume");
      }
      RETURN_IF_ERROR(rings->Replace(*ring));
    }
    RETURN_IF_ERROR(state->CompleteHandover(std::move(handover)));
    if (on_ready) {
      on_ready();
    }
    return Ok();
  };
}

}  // namespace enclavia::enclave
