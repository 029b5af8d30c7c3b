// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_KMS_SIMULATOR_H_
#define ENCLAVIA_HOST_KMS_SIMULATOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/encoding.h"
#include "lib/base/result.h"
#include "lib/crypto/x509.h"
#include "lib/kms/kms.h"
#include "lib/kms/protocol.h"
#include "lib/net/address.h"
#include "lib/sys/fd.h"

// The local KMS simulator (docs/kms.md): the stand-in for AWS KMS beside the NSM simulator,
// outside the sandbox. It keeps master keys in a directory and releases a data key only to an
// attestation document signed by the NSM simulator's root whose PCRs satisfy the key's policy,
// sealed to the document's public key (AWS KMS's Recipient semantics).
namespace enclavia::host {

// KeyPolicy is what a document must show to use a key: every listed PCR exactly (48 bytes
// each), and no debug mode unless allowed.
struct KeyPolicy {
  std::map<uint32_t, Bytes> pcrs;
  bool allow_debug = false;
  bool operator==(const KeyPolicy&) const = default;
};

// ImagePolicy is the policy an enclave's key gets at deploy (the sandbox's EnsureKey): the
// image's PCR0, or, for a debug-mode enclave (whose PCR0 reads all zero), all-zero PCR0 with
// allow_debug. kInvalidArgument unless `pcr0` is 48 bytes.
Result<KeyPolicy> ImagePolicy(ByteSpan pcr0, bool debug);
// ImageKeyId names the key of enclave `name` for a successor image (upgrades, docs/upgrade.md):
// the name cut to 40 characters, "-", then the first 8 bytes of `pcr0` in hex: a valid key id
// (kms::ValidKeyId) for any deployment name, distinct per image. The first image keeps the key
// named `name` itself.
std::string ImageKeyId(std::string_view name, ByteSpan pcr0);

struct KmsSimulatorOptions {
  std::function<SystemTime()> clock;  // Defaults to the system clock.
  // A request's document must be at most this old.
  std::chrono::milliseconds max_age{std::chrono::minutes(5)};
};

// KmsSimulator holds the keys of one state directory: <dir>/<key_id>.key per key (mode 0600,
// written atomically): a canonical CBOR map of the 32-byte master key and the policy. Thread-safe.
class KmsSimulator {
 public:
  // Open uses `dir` (created 0700 if missing) and trusts documents that chain to `root` (the NSM
  // simulator's SimulatorCa::root()).
  static Result<std::unique_ptr<KmsSimulator>> Open(const std::string& dir,
                                                    const crypto::Certificate& root,
                                                    KmsSimulatorOptions options = {});

  // CreateKey makes a new master key under `key_id`; kAlreadyExists if there is one,
  // kInvalidArgument for a bad key id or policy (no PCR, or a PCR that is not 48 bytes).
  Result<void> CreateKey(const std::string& key_id, const KeyPolicy& policy);
  // EnsureKey creates the key unless it exists with this policy; kFailedPrecondition when it
  // exists with another.
  Result<void> EnsureKey(const std::string& key_id, const KeyPolicy& policy);

  // Handle answers one request: verifies the document (chain to the root, age, a 32-byte public
  // key), checks the key's policy (kPolicyViolation, one line naming the first PCR that differs),
  // then generates a data key and its blob, or opens a blob (kVerifyFailed if it was altered,
  // kNotFound for an unknown key), and seals the data key (or the opened plaintext) to the
  // document's public key; or, for Encrypt, seals the request's plaintext under the key into a
  // blob (the same format GenerateDataKey's blobs have) and returns only the blob.
  Result<kms::KmsResponse> Handle(const kms::KmsRequest& request) const;

 private:
  struct Key;
  KmsSimulator(std::string dir, attestation::Verifier verifier, KmsSimulatorOptions options)
      : dir_(std::move(dir)), verifier_(std::move(verifier)), options_(std::move(options)) {}
  Result<Key> LoadKey(const std::string& key_id) const;
  // SealBlob makes a ciphertext blob of `plaintext` under `key` (version, key id, nonce, AEAD).
  static Result<Bytes> SealBlob(const Key& key, const std::string& key_id, ByteSpan plaintext);
  std::string KeyPath(const std::string& key_id) const;

  const std::string dir_;
  const attestation::Verifier verifier_;
  KmsSimulatorOptions options_;
  mutable std::mutex mu_;  // Serialises key file creation.
};

// KmsServer serves a KmsSimulator on a stream address (a Unix socket locally: the enclave's
// parent port). Each connection may send requests one after another; a malformed or oversized
// frame ends that connection after an error response. One thread per connection.
// `simulator` must outlive the server.
class KmsServer {
 public:
  static Result<std::unique_ptr<KmsServer>> Start(const KmsSimulator& simulator,
                                                  const net::Address& listen);
  ~KmsServer();  // Calls Stop.
  KmsServer(const KmsServer&) = delete;
  KmsServer& operator=(const KmsServer&) = delete;

  // Stop closes the listener and every connection and waits for their threads. Idempotent.
  void Stop();

 private:
  explicit KmsServer(const KmsSimulator& simulator) : simulator_(simulator) {}
  void AcceptLoop();
  void Serve(int fd);

  const KmsSimulator& simulator_;
  sys::UniqueFd listener_;
  std::string unix_path_;  // Removed on Stop.
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable idle_;
  std::set<int> connections_;  // Guarded by mu_.
  size_t active_ = 0;          // Guarded by mu_.
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_KMS_SIMULATOR_H_
