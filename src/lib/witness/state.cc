// SPDX-License-Identifier: Apache-2.0
#include "lib/witness/state.h"

#include <algorithm>
#include <utility>

#include "lib/crypto/random.h"
#include "lib/crypto/secret.h"

namespace enclavia::witness {
namespace {

std::string VolumePrefix(const VolumeId& id) { return HexEncode(ByteSpan(id).first(4)); }

constexpr std::string_view kGenesisBindingLabel = "enclavia/witness/genesis-binding/v1";

std::string Short(const upgrade::Digest& digest) {
  return HexEncode(ByteSpan(digest).first(6)) + "...";
}

// HeadAt is the chain's head after `steps` steps (0: the genesis hash).
const upgrade::Digest& HeadAt(const upgrade::VerifiedChain& chain, size_t steps) {
  return steps == 0 ? chain.genesis_hash : chain.steps[steps - 1].head;
}

}  // namespace

Bytes GenesisBinding(const upgrade::Digest& genesis_hash) {
  // Sized up front (GCC 12 -O3 warns falsely about growing a vector by insert).
  Bytes out(kGenesisBindingLabel.size() + genesis_hash.size());
  auto end = std::copy(kGenesisBindingLabel.begin(), kGenesisBindingLabel.end(), out.begin());
  std::copy(genesis_hash.begin(), genesis_hash.end(), end);
  return out;
}

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

Response WitnessState::Query(const VolumeId& volume_id, ByteSpan client_binding) const {
  std::lock_guard lock(mu_);
  auto it = volumes_.find(volume_id);
  if (it == volumes_.end()) {
    return Unknown{};
  }
  if (!crypto::ConstantTimeEqual(it->second.binding, client_binding)) {
    return Refused{"volume " + VolumePrefix(volume_id) +
                   "... is bound to another enclave image (PCR0 or upgrade genesis)"};
  }
  return Known{it->second.latest};
}

Response WitnessState::Commit(const storage::CommitRecord& record, ByteSpan client_binding) {
  if (!storage::VerifyCommitRecord(record)) {
    return Refused{"commit record: bad signature"};
  }
  std::string volume = VolumePrefix(record.volume_id) + "...";
  std::lock_guard lock(mu_);
  auto it = volumes_.find(record.volume_id);
  if (it == volumes_.end()) {
    if (volumes_.size() >= max_volumes_) {
      return Refused{"witness holds its maximum number of volumes"};
    }
    volumes_.emplace(record.volume_id,
                     Entry{record, Bytes(client_binding.begin(), client_binding.end())});
    return Sign(record);
  }
  Entry& entry = it->second;
  if (entry.latest.volume_public_key != record.volume_public_key) {
    return Refused{"volume " + volume + " is bound to another volume key"};
  }
  if (!crypto::ConstantTimeEqual(entry.binding, client_binding)) {
    return Refused{"volume " + volume +
                   " is bound to another enclave image (PCR0 or upgrade genesis)"};
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

ChainVerdict WitnessState::ObserveChain(const upgrade::VerifiedChain& chain) {
  const size_t steps = chain.steps.size();
  std::lock_guard lock(mu_);
  auto it = chains_.find(chain.genesis_hash);
  if (it == chains_.end()) {
    if (chains_.size() >= max_volumes_) {
      return {false, "witness holds its maximum number of upgrade chains"};
    }
    chains_.emplace(chain.genesis_hash, ChainHead{steps, chain.head});
    return {true, ""};
  }
  ChainHead& known = it->second;
  if (steps < known.steps) {
    return {false, "superseded: chain head " + Short(chain.head) + " is behind " +
                       Short(known.head) + " (" + std::to_string(steps) + " of " +
                       std::to_string(known.steps) + " upgrades)"};
  }
  if (steps == known.steps) {
    if (chain.head != known.head) {
      return {false, "fork: chain head " + Short(chain.head) + " differs from " +
                         Short(known.head) + " after " + std::to_string(steps) + " upgrades"};
    }
    return {true, ""};
  }
  if (HeadAt(chain, known.steps) != known.head) {
    return {false, "fork: the chain does not pass through head " + Short(known.head) +
                       " (upgrade " + std::to_string(known.steps) + ")"};
  }
  known = ChainHead{steps, chain.head};
  return {true, ""};
}

bool WitnessState::IsCurrentHead(const upgrade::Digest& genesis,
                                 const upgrade::Digest& head) const {
  std::lock_guard lock(mu_);
  auto it = chains_.find(genesis);
  return it != chains_.end() && it->second.head == head;
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
  if (hello.chain.empty()) {
    client_binding_ = pcr0->second;
  } else {
    // docs/witness.md, "Upgrades": the chain is checked like a client checks it, then the
    // longest head per genesis wins.
    upgrade::ChainOptions chain_options;
    chain_options.verifier = options_.verifier;
    chain_options.allow_debug = options_.allow_debug;
    auto chain = upgrade::VerifyChain(hello.chain, chain_options);
    if (!chain) {
      return Refuse(chain.error().message(), true);
    }
    if (auto presented = upgrade::CheckPresented(*chain, verified->document()); !presented) {
      return Refuse(presented.error().message(), true);
    }
    ChainVerdict verdict = state_.ObserveChain(*chain);
    if (!verdict.accepted) {
      return Refuse(std::move(verdict.reason), true);
    }
    genesis_ = chain->genesis_hash;
    chain_head_ = chain->head;
    client_binding_ = GenesisBinding(chain->genesis_hash);
  }
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
  if (chain_head_ && !state_.IsCurrentHead(genesis_, *chain_head_)) {
    // Another client presented a longer chain since this one's Hello: this one is an
    // enclave its successor replaced.
    return Refuse("superseded: chain head " + Short(*chain_head_) +
                      " was replaced by a longer chain",
                  true);
  }
  if (const auto* query = std::get_if<Query>(&*decoded)) {
    Step step;
    step.reply = EncodeMessage(state_.Query(query->volume_id, client_binding_));
    return step;
  }
  if (const auto* commit = std::get_if<Commit>(&*decoded)) {
    Response response = state_.Commit(commit->record, client_binding_);
    Step step;
    if (std::holds_alternative<Ack>(response)) {
      step.event = "commit volume " + VolumePrefix(commit->record.volume_id) + "... v" +
                   std::to_string(commit->record.version) + " acked";
    } else {
      step.event = "commit volume " + VolumePrefix(commit->record.volume_id) + "... v" +
                   std::to_string(commit->record.version) +
                   " refused: " + std::get<Refused>(response).reason;
    }
    step.reply = EncodeMessage(response);
    return step;
  }
  return Refuse("unexpected " + MessageName(*decoded), true);
}

}  // namespace enclavia::witness
