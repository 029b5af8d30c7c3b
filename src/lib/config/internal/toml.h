// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CONFIG_INTERNAL_TOML_H_
#define ENCLAVIA_LIB_CONFIG_INTERNAL_TOML_H_

// The one adapter around toml++: parsing (its exceptions are caught here), strict typed access
// that names the offending key, and a deterministic writer. Internal to lib/config.

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "lib/base/result.h"
#include "lib/config/enclave_config.h"

namespace enclavia::config::internal {

// Doc names the document in messages ("Enclaviafile", "enclavia.lock").
struct Doc {
  std::string name;
};

Result<toml::table> ParseToml(const Doc& doc, std::string_view text);

// Where renders " (line N)" for a node, or "" when toml++ has no position.
std::string Where(const toml::node& node);

// CheckKeys fails with "<doc>: unknown key <prefix><key> (line N)" for a key of `table` not in
// `allowed`.
Result<void> CheckKeys(const Doc& doc, const toml::table& table, std::string_view prefix,
                       std::initializer_list<std::string_view> allowed);

// Typed getters: nullopt when `key` is absent, an error naming `<prefix><key>` when it has the
// wrong type or range.
Result<std::optional<std::string>> GetString(const Doc& doc, const toml::table& table,
                                             std::string_view prefix, std::string_view key);
Result<std::optional<int64_t>> GetInt(const Doc& doc, const toml::table& table,
                                      std::string_view prefix, std::string_view key,
                                      int64_t min, int64_t max);
Result<std::optional<std::vector<std::string>>> GetStringArray(const Doc& doc,
                                                               const toml::table& table,
                                                               std::string_view prefix,
                                                               std::string_view key);
Result<std::optional<std::map<std::string, std::string>>> GetStringMap(const Doc& doc,
                                                                       const toml::table& table,
                                                                       std::string_view prefix,
                                                                       std::string_view key);
Result<std::optional<bool>> GetBool(const Doc& doc, const toml::table& table,
                                    std::string_view prefix, std::string_view key);
// GetTable returns the sub-table at `key`, nullptr when absent, an error when not a table.
Result<const toml::table*> GetTable(const Doc& doc, const toml::table& table,
                                    std::string_view prefix, std::string_view key);

// Writer helpers: TOML basic strings and keys, quoted only when needed.
// ParseStorage reads a [storage] table into `out` (enabled = true): path (absolute, not "/"),
// witness_pcrs (a table "index" = "hex", index 0..31, 96 hex characters), recovery_key (64 hex
// characters). The Enclaviafile and enclave.toml share it, so both accept the same section.
Result<StorageConfig> ParseStorage(const Doc& doc, const toml::table& table);
// SerializeStorage renders a [storage] section deterministically ("" when not enabled).
std::string SerializeStorage(const StorageConfig& storage);

// EgressKeys says whether an [egress] table may hold trust_anchor (the Enclaviafile's only).
enum class EgressKeys { kEnclaveToml, kEnclaviafile };
// ParseEgress reads an [egress] table: enabled (bool), resolvers (IP strings), dnssec ("require"
// or "off"), allow (entries), all validated through ToPolicy; unknown keys are errors.
// trust_anchor (kEnclaviafile only) is returned in `trust_anchor` as written, when present.
Result<EgressConfig> ParseEgress(const Doc& doc, const toml::table& table, EgressKeys keys,
                                 std::optional<std::string>* trust_anchor);
// SerializeEgress renders an [egress] section deterministically ("" when all defaults).
std::string SerializeEgress(const EgressConfig& egress);

// ParseUpgrade reads an [upgrade] table: control_keys, an array of lowercase or uppercase hex
// DER SubjectPublicKeyInfo strings, each exactly the canonical form of an Ed25519 or P-256
// (uncompressed point) key as crypto::PublicKey::ToSpki writes it, no duplicates, at most
// kMaxControlKeys. Unknown keys are errors.
Result<UpgradeConfig> ParseUpgrade(const Doc& doc, const toml::table& table);
// SerializeUpgrade renders an [upgrade] section deterministically, keys in lowercase hex in
// the order written ("" when there are none).
std::string SerializeUpgrade(const UpgradeConfig& upgrade);
inline constexpr size_t kMaxControlKeys = 16;

std::string Quote(std::string_view s);
std::string Key(std::string_view k);
std::string StringArray(const std::vector<std::string>& items);

}  // namespace enclavia::config::internal

#endif  // ENCLAVIA_LIB_CONFIG_INTERNAL_TOML_H_
