// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_AGENT_VOLUMES_H_
#define ENCLAVIA_HOST_AGENT_VOLUMES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/agent/forward.h"
#include "host/storage/service.h"
#include "lib/base/result.h"
#include "lib/storage/object_store.h"
#include "lib/transport/transport.h"

// The agent's side of an enclave's volume (docs/storage.md): where the host keeps its objects
// (a directory or an S3 bucket), the storage service on the enclave's storage port, and the
// pipes from its witness ports to the witness enclaves. The host sees ciphertext objects, their
// sizes and the access pattern; the enclave's status reports (no secrets) for `inspect`.
namespace enclavia::host {

// VolumeSpec is what `enclavia deploy --storage SIZE --backend B --witnesses N` asked for.
struct VolumeSpec {
  uint64_t size_bytes = 0;  // 0: no volume.
  // backend: "dir" (DATA/volumes/NAME), "dir:/ABSOLUTE/PATH" or "s3://BUCKET[/PREFIX]" (endpoint,
  // region and credentials from ENCLAVIA_S3_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID and
  // AWS_SECRET_ACCESS_KEY in the agent's environment).
  std::string backend = "dir";
  std::vector<std::string> witnesses;  // Witness enclave names, in port order.
  std::optional<Bytes> recovery_statement;  // Owner-signed, from `enclavia storage recover`.

  bool attached() const { return size_bytes != 0; }
};

// ParseVolumeSpec reads the "storage" object of a launch request or of agent-state.json
// (strict: unknown keys, wrong types, a size that is not a non-zero multiple of 4096, more than
// kMaxWitnesses witnesses or a malformed backend are kInvalidArgument).
Result<VolumeSpec> ParseVolumeSpec(const nlohmann::json& object);
nlohmann::json VolumeSpecJson(const VolumeSpec& spec);

// OpenBackend opens the object store that keeps enclave `name`'s volume.
Result<std::unique_ptr<storage::ObjectStore>> OpenBackend(const VolumeSpec& spec,
                                                          const std::string& volumes_dir,
                                                          const std::string& name);

// CopyObjects copies every object of `from` into `to` (a snapshot or a backup: the objects are
// immutable ciphertext, so a copy taken while the enclave runs holds every committed version up
// to the newest whose segments it has) and returns how many it copied.
Result<size_t> CopyObjects(storage::ObjectStore& from, storage::ObjectStore& to);

// OpenTarget opens a backup target: "dir:/ABSOLUTE/PATH" or "s3://BUCKET[/PREFIX]".
Result<std::unique_ptr<storage::ObjectStore>> OpenTarget(const std::string& target,
                                                         const std::string& name);

// RecoveryInfo names a stored superblock for `enclavia storage recover`: the newest one, or the
// one of `version` (non-zero). {"volume_id", "version", "superblock_hash"} (hex); reading it
// needs no key. kNotFound when the store has no such superblock.
Result<nlohmann::json> RecoveryInfo(storage::ObjectStore& store, uint64_t version);

// VolumeSummary is what the host can tell of a volume on its own: object and segment counts.
Result<nlohmann::json> VolumeSummary(storage::ObjectStore& store);

class EnclaveStorage {
 public:
  // WitnessAddress says where witness enclave NAME's public relay listens now (nullopt: it does
  // not run).
  using WitnessAddress = std::function<std::optional<net::Address>(const std::string& name)>;

  // Start serves the enclave's storage port (every enclave gets one: without a volume it answers
  // "no volume", so the enclave's storage daemon need not wait) and its witness ports.
  // `kms_key_id` names the KMS key the enclave's volume key is wrapped under (empty: `name`); an
  // upgraded enclave's is its own instance's key, bound to its own PCR0 (docs/upgrade.md).
  static Result<std::unique_ptr<EnclaveStorage>> Start(const std::string& name,
                                                       const VolumeSpec& spec,
                                                       const transport::Endpoint& endpoint,
                                                       const std::string& volumes_dir,
                                                       WitnessAddress witness_address,
                                                       const std::string& kms_key_id = "");
  ~EnclaveStorage();

  // Json is the "storage" of `enclavia inspect`: the spec, the enclave's last status report
  // (parsed when it is JSON) and the service's counters.
  nlohmann::json Json() const;
  ServiceStats stats() const;
  storage::ObjectStore* backend() const { return backend_.get(); }

 private:
  EnclaveStorage() = default;
  VolumeSpec spec_;
  std::unique_ptr<storage::ObjectStore> backend_;
  std::unique_ptr<StorageService> service_;
  std::vector<std::unique_ptr<PortForward>> forwards_;
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_AGENT_VOLUMES_H_
