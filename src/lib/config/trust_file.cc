// SPDX-License-Identifier: Apache-2.0
#include "lib/config/trust_file.h"

#include <charconv>

#include "lib/base/encoding.h"
#include "lib/config/internal/toml.h"

namespace enclavia::config {

using internal::Doc;

namespace {

Error Bad(std::string message) {
  return Error(Code::kInvalidArgument, "trust file: " + std::move(message));
}

Result<bool> GetBool(const toml::table& table, std::string_view key, bool fallback) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return fallback;
  }
  if (!node->is_boolean()) {
    return Bad(std::string(key) + " must be true or false" + internal::Where(*node));
  }
  return node->as_boolean()->get();
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text.empty()) {
    return Error(Code::kInvalidArgument, "empty duration");
  }
  int64_t unit_ms = 1000;
  std::string_view digits = text;
  switch (text.back()) {
    case 's': unit_ms = 1000; digits.remove_suffix(1); break;
    case 'm': unit_ms = 60 * 1000; digits.remove_suffix(1); break;
    case 'h': unit_ms = 3600 * 1000; digits.remove_suffix(1); break;
    case 'd': unit_ms = 86400 * 1000; digits.remove_suffix(1); break;
    default: break;
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n <= 0 ||
      n > INT64_MAX / unit_ms / 1000) {
    return Error(Code::kInvalidArgument,
                 "bad duration \"" + std::string(text.substr(0, 40)) +
                     "\" (want a positive number with s, m, h or d)");
  }
  return std::chrono::milliseconds(n * unit_ms);
}

Result<TrustFile> ParseTrustFile(std::string_view toml_text) {
  const Doc doc{"trust file"};
  ASSIGN_OR_RETURN(toml::table root, internal::ParseToml(doc, toml_text));
  RETURN_IF_ERROR(internal::CheckKeys(doc, root, "",
                                      {"roots", "max_age", "fresh", "allow_debug", "accept",
                                       "genesis"}));
  TrustFile trust;
  ASSIGN_OR_RETURN(auto roots, internal::GetStringArray(doc, root, "", "roots"));
  if (!roots || roots->empty()) {
    return Bad("roots must list at least one root (\"aws-nitro\" or a PEM file)");
  }
  for (const std::string& r : *roots) {
    if (r.empty()) {
      return Bad("roots has an empty entry");
    }
  }
  trust.roots = std::move(*roots);

  if (const toml::node* age = root.get("max_age")) {
    if (age->is_string()) {
      auto d = ParseDuration(age->as_string()->get());
      if (!d) {
        return Bad("max_age: " + d.error().message() + internal::Where(*age));
      }
      trust.max_age = *d;
    } else if (age->is_integer() && age->as_integer()->get() > 0) {
      trust.max_age = std::chrono::seconds(age->as_integer()->get());
    } else {
      return Bad("max_age must be a duration like \"1h\"" + internal::Where(*age));
    }
  }
  ASSIGN_OR_RETURN(trust.fresh, GetBool(root, "fresh", false));
  ASSIGN_OR_RETURN(trust.allow_debug, GetBool(root, "allow_debug", false));

  ASSIGN_OR_RETURN(auto genesis, internal::GetStringArray(doc, root, "", "genesis"));
  if (genesis) {
    if (genesis->empty()) {
      return Bad("genesis must list at least one genesis hash (or be left out)");
    }
    for (const std::string& hex : *genesis) {
      auto hash = HexDecode(hex);
      if (!hash || hash->size() != 32) {
        return Bad("genesis entries must be 64 hex digits (an upgrade chain's genesis hash)");
      }
      trust.genesis.push_back(std::move(*hash));
    }
  }

  const toml::node* accept = root.get("accept");
  if (accept == nullptr) {
    if (!trust.genesis.empty()) {
      return trust;
    }
    return Bad("no [[accept]] set or genesis: a client must name what it trusts");
  }
  const toml::array* sets = accept->as_array();
  if (sets == nullptr || sets->empty()) {
    return Bad("accept must be an array of tables ([[accept]])" + internal::Where(*accept));
  }
  for (const toml::node& entry : *sets) {
    const toml::table* set = entry.as_table();
    if (set == nullptr) {
      return Bad("accept must be an array of tables ([[accept]])" + internal::Where(entry));
    }
    std::map<uint32_t, Bytes> pcrs;
    for (const auto& [key, value] : *set) {
      std::string_view name = key.str();
      uint32_t index = 0;
      auto [end, ec] = std::from_chars(name.data() + std::min<size_t>(3, name.size()),
                                       name.data() + name.size(), index);
      if (!name.starts_with("PCR") || name.size() < 4 || ec != std::errc() ||
          end != name.data() + name.size() || index >= 32) {
        return Bad("unknown key accept." + std::string(name) + " (want PCR0 … PCR31)" +
                   internal::Where(value));
      }
      if (!value.is_string()) {
        return Bad("accept." + std::string(name) + " must be a hex string" +
                   internal::Where(value));
      }
      auto bytes = HexDecode(value.as_string()->get());
      if (!bytes || bytes->size() != 48) {
        return Bad("accept." + std::string(name) + " must be 96 hex digits (SHA-384)" +
                   internal::Where(value));
      }
      pcrs[index] = std::move(*bytes);
    }
    if (pcrs.empty()) {
      return Bad("an [[accept]] set lists no PCR" + internal::Where(entry));
    }
    trust.accept.push_back(std::move(pcrs));
  }
  return trust;
}

}  // namespace enclavia::config
