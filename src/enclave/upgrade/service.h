// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_UPGRADE_SERVICE_H_
#define ENCLAVIA_ENCLAVE_UPGRADE_SERVICE_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "enclave/upgrade/handover.h"
#include "enclave/upgrade/state.h"
#include "lib/attestation/nsm.h"
#include "lib/base/result.h"
#include "lib/crypto/secret.h"
#include "lib/crypto/x25519.h"
#include "lib/net/address.h"
#include "lib/sys/fd.h"
#include "lib/upgrade/wire.h"

// The enclave's upgrade service (vsock port upgrade::kEnclaveUpgradePort, lib/upgrade/wire.h) and
// the volume key ring's way through a handover.
namespace enclavia::enclave {

// RingStore is the volume key ring as the KMS wraps it in the host's object store
// ("kms/data-key", docs/upgrade.md "Re-keying").
class RingStore {
 public:
  virtual ~RingStore() = default;
  // Load (old enclave, after quiescing) unwraps the stored ring: nullopt when no volume is
  // attached.
  virtual Result<std::optional<crypto::SecretBytes>> Load() = 0;
  // Replace (successor) decodes `ring`, appends a fresh secret (kms::AppendFresh), wraps it under
  // this enclave's KMS key, keeps the old blob as "kms/data-key.prev" and stores the new one.
  // kFailedPrecondition when no volume is attached.
  virtual Result<void> Replace(const crypto::SecretBytes& ring) = 0;
};

// KmsRingStore is the production RingStore: the host's storage service (transport::kStoragePort)
// and the KMS (kms::LocalKmsClient over `nsm`, which must be used by nothing else concurrently:
// give it its own NSM connection).
std::shared_ptr<RingStore> MakeKmsRingStore(net::Address storage, net::Address kms,
                                            std::shared_ptr<attestation::Nsm> nsm);

struct UpgradeServiceOptions {
  net::Address listen;          // Where the host reaches the service.
  net::Address parent_upgrade;  // The host's upgrade service ("successor").
  // quiesce stops the application and the storage daemon (the volume flushed, one writer) and
  // returns once they are stopped; resume starts them again after a handover that failed
  // after quiescing. Empty: nothing to stop (tests).
  std::function<Result<void>()> quiesce;
  std::function<void()> resume;
  // on_superseded runs once the host has the activation receipt.
  std::function<void()> on_superseded;
  std::shared_ptr<RingStore> rings;  // Null: no volume.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  std::function<void(std::string_view)> log;
};

// UpgradeService answers the host's requests one connection at a time (one request each).
class UpgradeService {
 public:
  static Result<std::unique_ptr<UpgradeService>> Start(std::shared_ptr<UpgradeState> state,
                                                       UpgradeServiceOptions options);
  ~UpgradeService();
  // Stop closes the listener and waits for the request in progress.
  void Stop();
  net::Address local_address() const { return local_; }

  // Handle answers one request (any "error" as a kError message).
  upgrade::Message Handle(const upgrade::Message& request);

 private:
  UpgradeService(std::shared_ptr<UpgradeState> state, UpgradeServiceOptions options)
      : state_(std::move(state)), options_(std::move(options)) {}
  Result<Bytes> Activate(ByteSpan request_hash);
  void Serve();
  void Log(const std::string& line) const;

  std::shared_ptr<UpgradeState> state_;
  UpgradeServiceOptions options_;
  net::Address local_;
  sys::UniqueFd listener_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// SuccessorHandler is the handover handler of an enclave awaiting its handover: CheckHandover,
// the ring into `rings` (a ring without a RingStore is refused), CompleteHandover, then
// `on_ready`.
HandoverServer::Handler SuccessorHandler(std::shared_ptr<UpgradeState> state,
                                         crypto::X25519PublicKey our_static_key,
                                         std::shared_ptr<RingStore> rings,
                                         std::function<void()> on_ready);

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_UPGRADE_SERVICE_H_
