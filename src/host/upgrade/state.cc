// SPDX-License-Identifier: Apache-2.0
#include "host/upgrade/state.h"

#include <algorithm>
#include <utility>

#include "lib/base/encoding.h"
#include "lib/upgrade/chain.h"

namespace enclavia::host {
namespace {

using json = nlohmann::json;

std::map<int, std::string> PcrHex(const upgrade::PcrMap& pcrs) {
  std::map<int, std::string> out;
  for (const auto& [index, value] : pcrs) {
    out[static_cast<int>(index)] = HexEncode(value);
  }
  return out;
}

json PcrJson(const std::map<int, std::string>& pcrs) {
  json out = json::object();
  for (const auto& [index, hex] : pcrs) {
    out[std::to_string(index)] = hex;
  }
  return out;
}

// Head returns the head of an (unverified) chain and the PCRs in force there.
Result<std::pair<upgrade::Digest, upgrade::PcrMap>> Head(const std::vector<Bytes>& chain) {
  if (chain.empty()) {
    return Error(Code::kFailedPrecondition, "the enclave has no upgrade chain");
  }
  ASSIGN_OR_RETURN(upgrade::Genesis genesis, upgrade::ParseGenesis(chain.front()));
  if (chain.size() == 1) {
    return std::make_pair(upgrade::GenesisHash(chain.front()), genesis.first_pcrs);
  }
  ASSIGN_OR_RETURN(upgrade::Entry last, upgrade::ParseEntry(chain.back()));
  const auto* activation = std::get_if<upgrade::ActivationReceipt>(&last.body);
  if (activation == nullptr) {
    return Error(Code::kMalformed, "the chain does not end with an activation receipt");
  }
  return std::make_pair(upgrade::HeadAfterActivation(chain.back()), activation->new_pcrs);
}

std::string StringOr(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool BoolOr(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

Result<Bytes> B64Field(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) {
    return Error(Code::kMalformed, std::string("upgrade state: \"") + key + "\" missing");
  }
  auto bytes = Base64Decode(it->get<std::string>());
  if (!bytes) {
    return Error(Code::kMalformed, std::string("upgrade state: \"") + key + "\" is not base64");
  }
  return std::move(*bytes);
}

}  // namespace

upgrade::HostChain UpgradeState::ToHostChain() const {
  upgrade::HostChain out;
  out.chain = chain;
  // Request entries and their staging receipts (the wire holds 16 entries: 8 pairs). A
  // restarted enclave re-learns each pair it can check; the window starts again from its boot.
  for (const StagedUpgrade& s : staged) {
    if (!s.revoked && out.staged.size() + 2 <= 16) {
      out.staged.push_back(s.request);
      out.staged.push_back(s.receipt);
    }
  }
  out.pending = pending;
  return out;
}

StagedUpgrade* UpgradeState::Find(const std::string& id_or_hash) {
  for (StagedUpgrade& s : staged) {
    if (s.id == id_or_hash || (id_or_hash.size() >= 8 && s.request_hash.rfind(id_or_hash, 0) == 0)) {
      return &s;
    }
  }
  return nullptr;
}

Result<StagedUpgrade> DescribeStaged(const std::vector<Bytes>& chain, Bytes request,
                                     Bytes receipt, std::string eif_path) {
  if (chain.empty()) {
    return Error(Code::kFailedPrecondition, "the enclave has no upgrade chain");
  }
  ASSIGN_OR_RETURN(upgrade::Genesis genesis, upgrade::ParseGenesis(chain.front()));
  ASSIGN_OR_RETURN(upgrade::UpgradeRequest parsed, upgrade::ParseRequest(request));
  ASSIGN_OR_RETURN(upgrade::Entry entry, upgrade::ParseEntry(receipt));
  const auto* staging = std::get_if<upgrade::StagingReceipt>(&entry.body);
  if (staging == nullptr) {
    return Error(Code::kMalformed, "the enclave's answer is not a staging receipt");
  }
  StagedUpgrade out;
  out.id = parsed.id;
  out.request_hash = upgrade::DigestHex(upgrade::RequestHash(request));
  out.new_pcrs = PcrHex(parsed.new_pcrs);
  out.staged_at = staging->staged_at_unix;
  out.due_at = std::max(staging->staged_at_unix + genesis.min_staging_window_s,
                        parsed.not_before_unix);
  out.request = std::move(request);
  out.receipt = std::move(receipt);
  out.eif_path = std::move(eif_path);
  return out;
}

std::vector<Bytes> AppendActivation(std::vector<Bytes> chain, const StagedUpgrade& staged,
                                    Bytes activation) {
  chain.push_back(staged.request);
  chain.push_back(staged.receipt);
  chain.push_back(std::move(activation));
  return chain;
}

json StatusJson(const UpgradeState& state, uint64_t now_unix) {
  json out = {{"chained", state.chained()}, {"length", state.chain.size()}};
  if (!state.chained()) {
    out["genesis"] = nullptr;
    out["staged"] = json::array();
    return out;
  }
  if (auto genesis = upgrade::ParseGenesis(state.chain.front())) {
    out["genesis"] = upgrade::DigestHex(upgrade::GenesisHash(state.chain.front()));
    out["enclave_id"] = genesis->enclave_id;
    out["upgradable"] = genesis->upgradable;
    out["staging_window_s"] = genesis->min_staging_window_s;
    out["created"] = genesis->created_unix;
    out["control_keys"] = genesis->control_keys.size();
  } else {
    out["genesis"] = nullptr;
    out["error"] = genesis.error().message();
  }
  if (auto head = Head(state.chain)) {
    out["head"] = upgrade::DigestHex(head->first);
    out["head_pcrs"] = PcrJson(PcrHex(head->second));
  } else {
    out["head"] = nullptr;
    out["error"] = head.error().message();
  }
  out["steps"] = (state.chain.size() - 1) / 3;
  json staged = json::array();
  for (const StagedUpgrade& s : state.staged) {
    staged.push_back({{"id", s.id},
                      {"request", s.request_hash},
                      {"new_pcrs", PcrJson(s.new_pcrs)},
                      {"staged_at", s.staged_at},
                      {"due_at", s.due_at},
                      {"seconds_left", s.due_at > now_unix ? s.due_at - now_unix : 0},
                      {"due", s.due_at <= now_unix},
                      {"revoked", s.revoked}});
  }
  out["staged"] = std::move(staged);
  out["activating"] = state.pending.has_value();
  return out;
}

json ChainJson(const std::vector<Bytes>& chain) {
  json entries = json::array();
  for (const Bytes& entry : chain) {
    entries.push_back(Base64Encode(entry));
  }
  return {{"chain", std::move(entries)}};
}

json UpgradeStateJson(const UpgradeState& state) {
  json out = ChainJson(state.chain);
  json staged = json::array();
  for (const StagedUpgrade& s : state.staged) {
    json entry = {{"request", Base64Encode(s.request)},
                  {"receipt", Base64Encode(s.receipt)},
                  {"eif", s.eif_path},
                  {"revoked", s.revoked}};
    if (!s.revocation_b64.empty()) {
      entry["revocation"] = s.revocation_b64;
    }
    staged.push_back(std::move(entry));
  }
  out["staged"] = std::move(staged);
  if (state.pending) {
    out["pending"] = Base64Encode(*state.pending);
  }
  return out;
}

Result<std::vector<Bytes>> ParseChainJson(const json& array) {
  if (!array.is_array() || array.size() > upgrade::kMaxChainLength) {
    return Error(Code::kInvalidArgument, "\"chain\" must be an array of at most " +
                                             std::to_string(upgrade::kMaxChainLength) +
                                             " base64 entries");
  }
  std::vector<Bytes> out;
  for (const json& entry : array) {
    if (!entry.is_string()) {
      return Error(Code::kInvalidArgument, "a chain entry is not a base64 string");
    }
    auto bytes = Base64Decode(entry.get<std::string>());
    if (!bytes || bytes->empty() || bytes->size() > upgrade::kMaxEntrySize) {
      return Error(Code::kInvalidArgument, "a chain entry is not base64 of at most " +
                                               std::to_string(upgrade::kMaxEntrySize) + " bytes");
    }
    out.push_back(std::move(*bytes));
  }
  return out;
}

Result<UpgradeState> ParseUpgradeState(const json& object) {
  if (!object.is_object()) {
    return Error(Code::kMalformed, "upgrade state: not an object");
  }
  UpgradeState state;
  if (auto it = object.find("chain"); it != object.end()) {
    auto chain = ParseChainJson(*it);
    if (!chain) {
      return Error(Code::kMalformed, "upgrade state: " + chain.error().message());
    }
    state.chain = std::move(*chain);
  }
  if (auto it = object.find("staged"); it != object.end()) {
    if (!it->is_array() || it->size() > 16) {
      return Error(Code::kMalformed, "upgrade state: \"staged\" must be an array (at most 16)");
    }
    for (const json& entry : *it) {
      if (!entry.is_object()) {
        return Error(Code::kMalformed, "upgrade state: a staged entry is not an object");
      }
      ASSIGN_OR_RETURN(Bytes request, B64Field(entry, "request"));
      ASSIGN_OR_RETURN(Bytes receipt, B64Field(entry, "receipt"));
      std::string eif = StringOr(entry, "eif");
      auto staged = DescribeStaged(state.chain, std::move(request), std::move(receipt), eif);
      if (!staged) {
        return Error(Code::kMalformed, "upgrade state: " + staged.error().message());
      }
      staged->revoked = BoolOr(entry, "revoked");
      staged->revocation_b64 = StringOr(entry, "revocation");
      state.staged.push_back(std::move(*staged));
    }
  }
  if (auto it = object.find("pending"); it != object.end() && !it->is_null()) {
    ASSIGN_OR_RETURN(Bytes pending, B64Field(object, "pending"));
    state.pending = std::move(pending);
  }
  return state;
}

}  // namespace enclavia::host
