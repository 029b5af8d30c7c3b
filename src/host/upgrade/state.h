// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_UPGRADE_STATE_H_
#define ENCLAVIA_HOST_UPGRADE_STATE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/upgrade/wire.h"

// What the host agent keeps of one enclave's upgrade chain (docs/upgrade.md, "The host"): the
// chain entries, the requests staged for the current head with the receipts the enclave signed
// for them, and, for a successor launched to be activated, the request it awaits. The host is
// untrusted: it stores and forwards these signed entries, and reads their fields only to show
// them (status) and to decide when to ask for an activation; the enclaves and clients verify.
namespace enclavia::host {

// StagedUpgrade is one request the enclave accepted (it returned a staging receipt).
struct StagedUpgrade {
  Bytes request;              // The control-signed request entry.
  Bytes receipt;              // The staging receipt the enclave signed.
  std::string id;             // request.id
  std::string request_hash;   // upgrade::RequestHash, hex.
  std::string eif_path;       // The staged image (absolute).
  std::map<int, std::string> new_pcrs;  // From the request, lowercase hex.
  uint64_t staged_at = 0;     // The enclave's clock, from the receipt.
  uint64_t due_at = 0;        // max(staged_at + the genesis window, not_before).
  bool revoked = false;
  std::string revocation_b64;  // The signed revocation, when revoked.
};

struct UpgradeState {
  std::vector<Bytes> chain;            // Empty: an unchained enclave (no genesis).
  std::vector<StagedUpgrade> staged;   // For the current head only (cleared by an activation).
  std::optional<Bytes> pending;        // A successor's: the request entry it awaits.

  bool chained() const { return !chain.empty(); }
  // HostChain is the answer of the parent-port "chain" call: the receipts of staged,
  // unrevoked requests (a restarted enclave re-learns them) and `pending`.
  upgrade::HostChain ToHostChain() const;
  StagedUpgrade* Find(const std::string& id_or_hash);
};

// Describe parses a staged request and its receipt against `chain` (unverified: the host only
// shows what they say) and fills `out`'s id, hash, PCRs, times. kMalformed for entries that do
// not parse, kFailedPrecondition for an unchained enclave.
Result<StagedUpgrade> DescribeStaged(const std::vector<Bytes>& chain, Bytes request,
                                     Bytes receipt, std::string eif_path);

// AppendActivation returns `chain` + [request, staging receipt, activation receipt].
std::vector<Bytes> AppendActivation(std::vector<Bytes> chain, const StagedUpgrade& staged,
                                    Bytes activation);

// StatusJson is the public status (`enclavia upgrade status`): genesis hash, id, upgradable,
// window, chain length, head, head PCRs, and every staged request with its new PCRs, staged_at,
// due_at, seconds left at `now_unix`, revoked. Null fields for an unchained enclave.
nlohmann::json StatusJson(const UpgradeState& state, uint64_t now_unix);

// ChainJson is {"chain": [base64...]}.
nlohmann::json ChainJson(const std::vector<Bytes>& chain);

// State files: agent-state.json's "upgrade" object (strict; kMalformed).
nlohmann::json UpgradeStateJson(const UpgradeState& state);
Result<UpgradeState> ParseUpgradeState(const nlohmann::json& object);

// ParseChainJson reads a JSON array of base64 entries (at most upgrade::kMaxChainLength, each at
// most upgrade::kMaxEntrySize). kInvalidArgument otherwise.
Result<std::vector<Bytes>> ParseChainJson(const nlohmann::json& array);

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_UPGRADE_STATE_H_
