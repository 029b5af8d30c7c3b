// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_WITNESS_WITNESS_SET_H_
#define ENCLAVIA_LIB_WITNESS_WITNESS_SET_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/result.h"
#include "lib/storage/freshness.h"
#include "lib/witness/protocol.h"

// The block store's side: storage::Freshness over N witnesses (docs/witness.md, "Majorities").
namespace enclavia::witness {

// LinkReply is one witness's response with the key from the Challenge of the connection that
// carried it (the key Acks must verify with).
struct LinkReply {
  Response response;
  WitnessKey witness_key{};
};

// WitnessLink is the connection to one witness (ChannelWitnessLink in src/enclave/witness: an
// attested channel; tests use in-process fakes).
class WitnessLink {
 public:
  virtual ~WitnessLink() = default;
  // Call sends `request` and returns the witness's response. It connects first when there is no
  // connection (the first call, or the one after a failure), so a broken link heals on its next
  // call. Errors: kUnavailable for I/O, kMalformed for a reply that does not decode, and whatever
  // the handshake reported. Calls are serialised by the caller (WitnessSet: one thread per link).
  virtual Result<LinkReply> Call(const Request& request) = 0;
  // Abort, from any thread, makes a Call in progress fail soon and drops the connection.
  virtual void Abort() {}
  // name identifies the witness in error messages ("witness 2 (ws://…)").
  virtual std::string name() const = 0;
};

struct WitnessSetOptions {
  // Each Latest/Commit waits at most this long for a majority.
  std::chrono::milliseconds timeout{5000};
};

// WitnessSet asks all its witnesses in parallel (one worker thread per link, requests to one
// witness in order) and needs a majority, count()/2 + 1, of them:
//  - Latest: the highest version among the first majority of valid answers. Known records must be
//    for the asked volume and pass VerifyCommitRecord; a witness answering otherwise, refusing,
//    failing or timing out does not count.
//  - Commit: a majority of Acks, each verified with that witness's key from its Challenge.
// A call returns as soon as its outcome is decided; slower witnesses still get the request (a
// late Commit keeps them current). A link that timed out is aborted, so it reconnects next call.
// A witness that reports this enclave superseded (IsSuperseded: it verified a longer upgrade
// chain of the same genesis) decides the call: kPolicyViolation with its "superseded: …" line.
// With no links at all, Latest is nullopt and Commit succeeds (no witnesses configured).
// Thread-safe; concurrent calls are answered in order per witness.
class WitnessSet : public storage::Freshness {
 public:
  explicit WitnessSet(std::vector<std::unique_ptr<WitnessLink>> links,
                      WitnessSetOptions options = {});
  // The destructor aborts every link and joins the workers.
  ~WitnessSet() override;
  WitnessSet(const WitnessSet&) = delete;
  WitnessSet& operator=(const WitnessSet&) = delete;

  Result<std::optional<storage::CommitRecord>> Latest(const VolumeId& volume_id) override;
  Result<void> Commit(const storage::CommitRecord& record) override;
  size_t count() const override { return workers_.size(); }
  size_t majority() const { return workers_.size() / 2 + 1; }

  class Worker;
  struct Round;

 private:
  // Run sends `request` to every witness and waits until `decided` says the round's outcome is
  // known, every witness answered, or the timeout passed.
  std::shared_ptr<Round> Run(const Request& request,
                             const std::function<bool(const Round&)>& decided);

  WitnessSetOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace enclavia::witness

#endif  // ENCLAVIA_LIB_WITNESS_WITNESS_SET_H_
