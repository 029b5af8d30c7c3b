// SPDX-License-Identifier: Apache-2.0
#include "lib/witness/witness_set.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "lib/witness/link.h"

namespace enclavia::witness {

using Clock = std::chrono::steady_clock;

// Round collects the answers to one request, slot i for witness i.
struct WitnessSet::Round {
  explicit Round(size_t n) : results(n) {}
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::optional<Result<LinkReply>>> results;  // Guarded by mu.
  size_t done = 0;                                        // Guarded by mu.

  size_t pending() const { return results.size() - done; }
};

// Worker runs one link's calls, in order, on its own thread.
class WitnessSet::Worker {
 public:
  explicit Worker(std::unique_ptr<WitnessLink> link) : link_(std::move(link)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Worker() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    link_->Abort();
    thread_.join();
  }

  void Post(Request request, Clock::time_point deadline, std::shared_ptr<Round> round,
            size_t slot) {
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(Job{std::move(request), deadline, std::move(round), slot});
    }
    cv_.notify_all();
  }

  void Abort() { link_->Abort(); }
  std::string name() const { return link_->name(); }

 private:
  struct Job {
    Request request;
    Clock::time_point deadline;
    std::shared_ptr<Round> round;
    size_t slot;
  };

  void Loop() {
    while (true) {
      Job job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (stop_) {
          return;
        }
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      // A job that waited past its round's deadline is not worth sending.
      Result<LinkReply> result = Clock::now() >= job.deadline
                                     ? Result<LinkReply>(Error(Code::kUnavailable, "timed out"))
                                     : link_->Call(job.request);
      {
        std::lock_guard lock(job.round->mu);
        job.round->results[job.slot] = std::move(result);
        ++job.round->done;
      }
      job.round->cv.notify_all();
    }
  }

  std::unique_ptr<WitnessLink> link_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;  // Guarded by mu_.
  bool stop_ = false;     // Guarded by mu_.
  std::thread thread_;
};

WitnessSet::WitnessSet(std::vector<std::unique_ptr<WitnessLink>> links, WitnessSetOptions options)
    : options_(options) {
  for (auto& link : links) {
    ENCLAVIA_CHECK(link != nullptr);
    workers_.push_back(std::make_unique<Worker>(std::move(link)));
  }
}

WitnessSet::~WitnessSet() = default;

std::shared_ptr<WitnessSet::Round> WitnessSet::Run(
    const Request& request, const std::function<bool(const Round&)>& decided) {
  auto round = std::make_shared<Round>(workers_.size());
  auto deadline = Clock::now() + options_.timeout;
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->Post(request, deadline, round, i);
  }
  std::unique_lock lock(round->mu);
  bool finished = round->cv.wait_until(lock, deadline,
                                       [&] { return round->pending() == 0 || decided(*round); });
  if (!finished) {
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (!round->results[i]) {
        workers_[i]->Abort();  // Hung: drop the connection so the next call reconnects.
        round->results[i] = Error(Code::kUnavailable, "timed out");
      }
    }
  }
  // From here on the caller reads a snapshot: late answers land in their slot no more.
  auto snapshot = std::make_shared<Round>(workers_.size());
  snapshot->results = round->results;
  for (auto& slot : snapshot->results) {
    if (!slot) {
      slot = Error(Code::kUnavailable, "no answer yet");
    }
  }
  snapshot->done = snapshot->results.size();
  return snapshot;
}

namespace {

// ValidAnswer returns the record a Latest answer contributes (nullopt for Unknown), or an error
// when the answer does not count.
Result<std::optional<storage::CommitRecord>> ValidAnswer(const Result<LinkReply>& reply,
                                                         const VolumeId& volume_id) {
  if (!reply) {
    return reply.error();
  }
  if (std::holds_alternative<Unknown>(reply->response)) {
    return std::optional<storage::CommitRecord>();
  }
  if (const auto* known = std::get_if<Known>(&reply->response)) {
    if (known->record.volume_id != volume_id) {
      return Error(Code::kVerifyFailed, "answered for another volume");
    }
    RETURN_IF_ERROR(storage::VerifyCommitRecord(known->record));
    return std::optional<storage::CommitRecord>(known->record);
  }
  if (const auto* refused = std::get_if<Refused>(&reply->response)) {
    return Error(Code::kFailedPrecondition, "refused: " + refused->reason);
  }
  return Error(Code::kMalformed, "unexpected response to a query");
}

Result<void> ValidAck(const Result<LinkReply>& reply, const storage::CommitRecord& record) {
  if (!reply) {
    return reply.error();
  }
  if (const auto* ack = std::get_if<Ack>(&reply->response)) {
    return VerifyAck(reply->witness_key, record, ack->signature);
  }
  if (const auto* refused = std::get_if<Refused>(&reply->response)) {
    return Error(Code::kFailedPrecondition, refused->reason);
  }
  return Error(Code::kMalformed, "unexpected response to a commit");
}

// Superseded finds a witness's "superseded: …" in a round: a witness saw a longer chain of this
// enclave's genesis (it verified that chain), so this enclave was replaced and must stop, whatever
// the other witnesses say.
std::optional<Error> Superseded(const std::vector<std::optional<Result<LinkReply>>>& results) {
  for (const auto& slot : results) {
    if (!slot) {
      continue;
    }
    if (!*slot) {
      if (IsSuperseded(slot->error().message())) {
        return Error(Code::kPolicyViolation, slot->error().message());
      }
      continue;
    }
    if (const auto* refused = std::get_if<Refused>(&(*slot)->response)) {
      if (IsSuperseded(refused->reason)) {
        return Error(Code::kPolicyViolation, refused->reason);
      }
    }
  }
  return std::nullopt;
}

std::string Summary(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& p : problems) {
    out.append(out.empty() ? "" : "; ");
    out.append(p);
  }
  return out;
}

}  // namespace

Result<std::optional<storage::CommitRecord>> WitnessSet::Latest(const VolumeId& volume_id) {
  if (workers_.empty()) {
    return std::optional<storage::CommitRecord>();
  }
  const size_t need = majority();
  auto round = Run(Query{volume_id}, [&](const Round& r) {
    size_t valid = 0;
    for (const auto& slot : r.results) {
      if (slot && ValidAnswer(*slot, volume_id)) {
        ++valid;
      }
    }
    return valid >= need || valid + r.pending() < need;
  });
  if (auto superseded = Superseded(round->results)) {
    return std::move(*superseded);
  }
  size_t valid = 0;
  std::optional<storage::CommitRecord> newest;
  std::vector<std::string> problems;
  for (size_t i = 0; i < round->results.size(); ++i) {
    auto answer = ValidAnswer(*round->results[i], volume_id);
    if (!answer) {
      problems.push_back(workers_[i]->name() + ": " + answer.error().message());
      continue;
    }
    ++valid;
    if (*answer && (!newest || (*answer)->version > newest->version)) {
      newest = *answer;
    }
  }
  if (valid < need) {
    return Error(Code::kUnavailable, std::to_string(valid) + " of " + std::to_string(count()) +
                                         " witnesses answered (need " + std::to_string(need) +
                                         "): " + Summary(problems));
  }
  return newest;
}

Result<void> WitnessSet::Commit(const storage::CommitRecord& record) {
  if (workers_.empty()) {
    return Ok();
  }
  const size_t need = majority();
  auto round = Run(witness::Commit{record}, [&](const Round& r) {
    size_t acks = 0;
    size_t refusals = 0;
    for (const auto& slot : r.results) {
      if (!slot) {
        continue;
      }
      auto ack = ValidAck(*slot, record);
      if (ack) {
        ++acks;
      } else if (ack.error().code() == Code::kFailedPrecondition) {
        ++refusals;
      }
    }
    // Wait while the outcome (acked, refused by a majority, or neither) can still change.
    return acks >= need || refusals >= need ||
           (acks + r.pending() < need && refusals + r.pending() < need);
  });
  if (auto superseded = Superseded(round->results)) {
    return std::move(*superseded);
  }
  size_t acks = 0;
  size_t refusals = 0;
  std::string first_refusal;
  std::vector<std::string> problems;
  for (size_t i = 0; i < round->results.size(); ++i) {
    auto ack = ValidAck(*round->results[i], record);
    if (ack) {
      ++acks;
      continue;
    }
    if (ack.error().code() == Code::kFailedPrecondition) {
      if (refusals++ == 0) {
        first_refusal = ack.error().message();
      }
    }
    problems.push_back(workers_[i]->name() + ": " + ack.error().message());
  }
  if (acks >= need) {
    return Ok();
  }
  if (refusals >= need) {
    return Error(Code::kFailedPrecondition,
                 std::to_string(refusals) + " of " + std::to_string(count()) +
                     " witnesses refused version " + std::to_string(record.version) + ": " +
                     first_refusal);
  }
  return Error(Code::kUnavailable, std::to_string(acks) + " of " + std::to_string(count()) +
                                       " witnesses acknowledged version " +
                                       std::to_string(record.version) + " (need " +
                                       std::to_string(need) + "): " + Summary(problems));
}

}  // namespace enclavia::witness
