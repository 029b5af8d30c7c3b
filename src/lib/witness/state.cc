// SPDX-License-Identifier: Apache-2.0
#include "lib/witness/state.h"

#include <algorithm>
#include <utility>

#include "lib/crypto/random.h"
#include "lib/crypto/secret.h"

namespace enclavia::witness {
namespace {

std::string VolumePrefix(const VolumeId& id) { return HexEncode(ByteSpan(id).first(4)); }

}  // namespace

WitnessState::WitnessState(size_t max_volumes)
    : max_volumes_(max_volumes),
      key_(crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519)) {
  Bytes raw = key_.public_key().ToRaw();
  ENCLAVIA_CHECK(raw.size() == public_key_.size());
  std::copy(raw.begin(), raw.end(), public_key_.begin());
}

Ack WitnessState::Sign(const storage::CommitRecord& record) const {
  auto signature = key_.Sign(AckStatement(record));
  // Ed25519 signing with a key we generated cannot fail short of a broken OpenSSL.
  ENCLAVIA_CHECK(signature.has_value() && signature->size() == kSignatureSize);
  Ack ack;
  std::copy(signature->begin(), signature->end(), ack.signature.begin());
  return ack;
}

Response WitnessState::Query(const VolumeId& volume_id, ByteSpan client_pcr0) const {
  std::lock_guard lock(mu_);
  auto it = volumes_.find(volume_id);
  if (it == volumes_.end()) {
    return Unknown{};
  }
  if (!crypto::ConstantTimeEqual(it->second.pcr0, client_pcr0)) {
    return Refused{"volume " + VolumePrefix(volume_id) +
                   "… is bound to another enclave image (PCR0)"};
  }
  return Known{it->second.latest};
}

Response WitnessState::Commit(const storage::CommitRecord& record, ByteSpan client_pcr0) {
  if (!storage::VerifyCommitRecord(record)) {
    return Refused{"commit record: bad signature"};
  }
  std::string volume = VolumePrefix(record.volume_id) + "…";
  std::lock_guard lock(mu_);
  auto it = volumes_.find(record.volume_id);
  if (it == volumes_.end()) {
    if (volumes_.size() >= max_volumes_) {
      return Refused{"witness holds its maximum number of volumes"};
    }
    volumes_.emplace(record.volume_id,
                     Entry{record, Bytes(client_pcr0.begin(), client_pcr0.end())});
    return Sign(record);
  }
  Entry& entry = it->second;
  if (entry.latest.volume_public_key != record.volume_public_key) {
    return Refused{"volume " + volume + " is bound to another volume key"};
  }
  if (!crypto::ConstantTimeEqual(entry.pcr0, client_pcr0)) {
    return Refused{"volume " + volume + " is bound to another enclave image (PCR0)"};
  }
  if (record.version < entry.latest.version) {
    return Refused{"rollback: version " + std::to_string(record.version) +
                   " is below the witnessed version " + std::to_string(entry.latest.version) +
                   " of volume " + volume};
  }
  if (record.version == entry.latest.version) {
    if (record.epoch == entry.latest.epoch &&
        record.superblock_hash == entry.latest.superblock_hash) {
      return Sign(record);  // A retry of the commit we hold.
    }
    return Refused{"version " + std::to_string(record.version) + " of volume " + volume +
                   " was already witnessed with another superblock"};
  }
  entry.latest = record;
  return Sign(record);
}

size_t WitnessState::volume_count() const {
  std::lock_guard lock(mu_);
  return volumes_.size();
}

WitnessSession::WitnessSession(WitnessState& state, SessionOptions options)
    : state_(state), options_(std::move(options)) {
  crypto::RandomFill(nonce_);
  if (!options_.clock) {
    options_.clock = [] { return SystemTime(std::chrono::system_clock::now()); };
  }
}

Bytes WitnessSession::Start() {
  ENCLAVIA_CHECK(!started_);
  started_ = true;
  return EncodeMessage(Message(Challenge{nonce_, state_.public_key()}));
}

WitnessSession::Step WitnessSession::Refuse(std::string reason, bool close) {
  Step step;
  step.reply = EncodeMessage(Message(Refused{std::move(reason)}));
  step.close = close;
  return step;
}

WitnessSession::Step WitnessSession::OnHello(const Hello& hello) {
  if (options_.verifier == nullptr) {
    return Refuse("witness has no trusted root", true);
  }
  attestation::TrustPolicy policy;
  policy.allow_debug = options_.allow_debug;
  policy.expected_nonce = Bytes(nonce_.begin(), nonce_.end());
  policy.max_age = options_.max_age;
  auto verified = options_.verifier->Verify(hello.attestation, options_.clock(), policy);
  if (!verified) {
    return Refuse(verified.error().message(), true);
  }
  auto pcr0 = verified->document().pcrs.find(0);
  if (pcr0 == verified->document().pcrs.end()) {
    return Refuse("attestation has no PCR0", true);
  }
  client_pcr0_ = pcr0->second;
  ready_ = true;
  Step step;
  step.reply = EncodeMessage(Message(Ready{}));
  return step;
}

WitnessSession::Step WitnessSession::OnMessage(ByteSpan message) {
  ENCLAVIA_CHECK(started_);
  auto decoded = DecodeMessage(message);
  if (!decoded) {
    return Refuse(decoded.error().message(), true);
  }
  if (!ready_) {
    if (const auto* hello = std::get_if<Hello>(&*decoded)) {
      return OnHello(*hello);
    }
    return Refuse("expected hello, got " + MessageName(*decoded), true);
  }
  if (const auto* query = std::get_if<Query>(&*decoded)) {
    Step step;
    step.reply = EncodeMessage(state_.Query(query->volume_id, client_pcr0_));
    return step;
  }
  if (const auto* commit = std::get_if<Commit>(&*decoded)) {
    Response response = state_.Commit(commit->record, client_pcr0_);
    Step step;
    if (std::holds_alternative<Ack>(response)) {
      step.event = "commit volume " + VolumePrefix(commit->record.volume_id) + "… v" +
                   std::to_string(commit->record.version) + " acked";
    } else {
      step.event = "commit volume " + VolumePrefix(commit->record.volume_id) + "… v" +
                   std::to_string(commit->record.version) +
                   " refused: " + std::get<Refused>(response).reason;
    }
    step.reply = EncodeMessage(response);
    return step;
  }
  return Refuse("unexpected " + MessageName(*decoded), true);
}

}  // namespace enclavia::witness
