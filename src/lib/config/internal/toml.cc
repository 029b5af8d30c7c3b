// SPDX-License-Identifier: Apache-2.0
#include "lib/config/internal/toml.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <span>

#include "lib/base/encoding.h"

namespace enclavia::config::internal {

namespace {

Error Bad(const Doc& doc, std::string_view prefix, std::string_view key, std::string_view what,
          const toml::node& node) {
  return Error(Code::kInvalidArgument, doc.name + ": " + std::string(prefix) + std::string(key) +
                                           " " + std::string(what) + Where(node));
}

}  // namespace

Result<toml::table> ParseToml(const Doc& doc, std::string_view text) {
  try {
    return toml::parse(text);
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    return Error(Code::kMalformed, doc.name + ": " + std::string(e.description()) + " (line " +
                                       std::to_string(begin.line) + ", column " +
                                       std::to_string(begin.column) + ")");
  } catch (const std::exception& e) {
    return Error(Code::kMalformed, doc.name + ": " + e.what());
  }
}

std::string Where(const toml::node& node) {
  const auto& begin = node.source().begin;
  if (begin.line == 0) {
    return "";
  }
  return " (line " + std::to_string(begin.line) + ")";
}

Result<void> CheckKeys(const Doc& doc, const toml::table& table, std::string_view prefix,
                       std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, node] : table) {
    bool known = false;
    for (std::string_view a : allowed) {
      if (key.str() == a) {
        known = true;
        break;
      }
    }
    if (!known) {
      return Error(Code::kInvalidArgument, doc.name + ": unknown key " + std::string(prefix) +
                                               std::string(key.str()) + Where(node));
    }
  }
  return {};
}

Result<std::optional<std::string>> GetString(const Doc& doc, const toml::table& table,
                                             std::string_view prefix, std::string_view key) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return std::optional<std::string>();
  }
  const auto* s = node->as_string();
  if (s == nullptr) {
    return Bad(doc, prefix, key, "must be a string", *node);
  }
  if (s->get().find('\0') != std::string::npos) {
    return Bad(doc, prefix, key, "must not contain NUL", *node);
  }
  return std::optional<std::string>(s->get());
}

Result<std::optional<int64_t>> GetInt(const Doc& doc, const toml::table& table,
                                      std::string_view prefix, std::string_view key, int64_t min,
                                      int64_t max) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return std::optional<int64_t>();
  }
  const auto* i = node->as_integer();
  if (i == nullptr) {
    return Bad(doc, prefix, key, "must be an integer", *node);
  }
  int64_t v = i->get();
  if (v < min || v > max) {
    return Bad(doc, prefix, key,
               "must be between " + std::to_string(min) + " and " + std::to_string(max), *node);
  }
  return std::optional<int64_t>(v);
}

Result<std::optional<std::vector<std::string>>> GetStringArray(const Doc& doc,
                                                               const toml::table& table,
                                                               std::string_view prefix,
                                                               std::string_view key) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return std::optional<std::vector<std::string>>();
  }
  const auto* arr = node->as_array();
  if (arr == nullptr) {
    return Bad(doc, prefix, key, "must be an array of strings", *node);
  }
  std::vector<std::string> out;
  for (const auto& item : *arr) {
    const auto* s = item.as_string();
    if (s == nullptr || s->get().find('\0') != std::string::npos) {
      return Bad(doc, prefix, key, "must be an array of strings", *node);
    }
    out.push_back(s->get());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<std::optional<std::map<std::string, std::string>>> GetStringMap(const Doc& doc,
                                                                       const toml::table& table,
                                                                       std::string_view prefix,
                                                                       std::string_view key) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return std::optional<std::map<std::string, std::string>>();
  }
  const auto* t = node->as_table();
  if (t == nullptr) {
    return Bad(doc, prefix, key, "must be a table of strings", *node);
  }
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : *t) {
    const auto* s = v.as_string();
    if (s == nullptr || s->get().find('\0') != std::string::npos) {
      return Bad(doc, std::string(prefix) + std::string(key) + ".", k.str(), "must be a string", v);
    }
    out.emplace(std::string(k.str()), s->get());
  }
  return std::optional<std::map<std::string, std::string>>(std::move(out));
}

Result<std::optional<bool>> GetBool(const Doc& doc, const toml::table& table,
                                    std::string_view prefix, std::string_view key) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return std::optional<bool>();
  }
  const auto* b = node->as_boolean();
  if (b == nullptr) {
    return Bad(doc, prefix, key, "must be true or false", *node);
  }
  return std::optional<bool>(b->get());
}

Result<const toml::table*> GetTable(const Doc& doc, const toml::table& table,
                                    std::string_view prefix, std::string_view key) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return static_cast<const toml::table*>(nullptr);
  }
  const auto* t = node->as_table();
  if (t == nullptr) {
    return Bad(doc, prefix, key, "must be a table", *node);
  }
  return t;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string Key(std::string_view k) {
  bool bare = !k.empty();
  for (char c : k) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) {
      bare = false;
      break;
    }
  }
  return bare ? std::string(k) : Quote(k);
}

std::string StringArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += ", ";
    }
    out += Quote(items[i]);
  }
  out += "]";
  return out;
}


namespace {
bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}
}  // namespace

Result<StorageConfig> ParseStorage(const Doc& doc, const toml::table& table) {
  RETURN_IF_ERROR(CheckKeys(doc, table, "storage.", {"path", "witness_pcrs", "recovery_key"}));
  StorageConfig out;
  out.enabled = true;
  ASSIGN_OR_RETURN(auto path, GetString(doc, table, "storage.", "path"));
  if (path.has_value()) {
    out.path = *path;
  }
  if (out.path.size() < 2 || out.path[0] != '/' || out.path.back() == '/' ||
      out.path.find("/../") != std::string::npos || out.path.find("//") != std::string::npos ||
      out.path.ends_with("/..") || out.path.find('\0') != std::string::npos) {
    return Error(Code::kInvalidArgument,
                 doc.name + ": storage.path must be an absolute directory other than /, not '" +
                     out.path + "'");
  }
  ASSIGN_OR_RETURN(auto pcrs, GetStringMap(doc, table, "storage.", "witness_pcrs"));
  for (const auto& [index, hex] : pcrs.value_or(std::map<std::string, std::string>{})) {
    char* end = nullptr;
    unsigned long n = std::strtoul(index.c_str(), &end, 10);
    if (index.empty() || index.size() > 2 || *end != '\0' || n > 31) {
      return Error(Code::kInvalidArgument,
                   doc.name + ": storage.witness_pcrs: '" + index + "' is not a PCR index 0..31");
    }
    if (hex.size() != 96 || !IsLowerHex(hex)) {
      return Error(Code::kInvalidArgument, doc.name + ": storage.witness_pcrs." + index +
                                               " must be 96 lowercase hex characters");
    }
    out.witness_pcrs[static_cast<uint16_t>(n)] = hex;
  }
  ASSIGN_OR_RETURN(auto recovery, GetString(doc, table, "storage.", "recovery_key"));
  out.recovery_key = recovery.value_or("");
  if (!out.recovery_key.empty() && (out.recovery_key.size() != 64 || !IsLowerHex(out.recovery_key))) {
    return Error(Code::kInvalidArgument,
                 doc.name + ": storage.recovery_key must be 64 lowercase hex characters (Ed25519)");
  }
  return out;
}

std::string SerializeStorage(const StorageConfig& storage) {
  if (!storage.enabled) {
    return "";
  }
  std::string out = "\n[storage]\n";
  out += "path = " + Quote(storage.path) + "\n";
  if (!storage.recovery_key.empty()) {
    out += "recovery_key = " + Quote(storage.recovery_key) + "\n";
  }
  if (!storage.witness_pcrs.empty()) {
    out += "\n[storage.witness_pcrs]\n";
    for (const auto& [index, hex] : storage.witness_pcrs) {
      out += Quote(std::to_string(index)) + " = " + Quote(hex) + "\n";
    }
  }
  return out;
}

Result<EgressConfig> ParseEgress(const Doc& doc, const toml::table& table, EgressKeys keys,
                                 std::optional<std::string>* trust_anchor) {
  if (keys == EgressKeys::kEnclaviafile) {
    RETURN_IF_ERROR(CheckKeys(doc, table, "egress.",
                              {"enabled", "resolvers", "dnssec", "allow", "trust_anchor"}));
  } else {
    RETURN_IF_ERROR(CheckKeys(doc, table, "egress.", {"enabled", "resolvers", "dnssec", "allow"}));
  }
  EgressConfig out;
  ASSIGN_OR_RETURN(auto enabled, GetBool(doc, table, "egress.", "enabled"));
  out.enabled = enabled.value_or(false);
  ASSIGN_OR_RETURN(auto resolvers, GetStringArray(doc, table, "egress.", "resolvers"));
  out.resolvers = resolvers.value_or(std::vector<std::string>{});
  ASSIGN_OR_RETURN(auto dnssec, GetString(doc, table, "egress.", "dnssec"));
  if (dnssec.has_value()) {
    if (*dnssec == DnssecModeName(egress::DnssecMode::kRequire)) {
      out.dnssec = egress::DnssecMode::kRequire;
    } else if (*dnssec == DnssecModeName(egress::DnssecMode::kOff)) {
      out.dnssec = egress::DnssecMode::kOff;
    } else {
      return Error(Code::kInvalidArgument, doc.name + ": egress.dnssec must be \"require\" or " +
                                               "\"off\", not " + Quote(*dnssec) +
                                               Where(*table.get("dnssec")));
    }
  }
  ASSIGN_OR_RETURN(auto allow, GetStringArray(doc, table, "egress.", "allow"));
  out.allow = allow.value_or(std::vector<std::string>{});
  if (keys == EgressKeys::kEnclaviafile && trust_anchor != nullptr) {
    ASSIGN_OR_RETURN(*trust_anchor, GetString(doc, table, "egress.", "trust_anchor"));
    if (trust_anchor->has_value() && (*trust_anchor)->empty()) {
      return Error(Code::kInvalidArgument, doc.name + ": egress.trust_anchor is empty");
    }
  }
  auto policy = ToPolicy(out);
  if (!policy) {
    return std::move(policy).error().WithContext(doc.name);
  }
  return out;
}

std::string SerializeEgress(const EgressConfig& egress) {
  if (egress == EgressConfig{}) {
    return "";
  }
  std::string out = "\n[egress]\n";
  out.append("enabled = ").append(egress.enabled ? "true" : "false").append("\n");
  out.append("resolvers = ").append(StringArray(egress.resolvers)).append("\n");
  out.append("dnssec = ").append(Quote(DnssecModeName(egress.dnssec))).append("\n");
  out.append("allow = ").append(StringArray(egress.allow)).append("\n");
  return out;
}

namespace {

// The DER SubjectPublicKeyInfo prefixes of the two control key types, each followed by the key
// itself: Ed25519 (RFC 8410, 32 bytes) and P-256 (RFC 5480, an uncompressed point: 0x04 and 64
// bytes). lib/config does not link the crypto library (enclavia-init would carry it): a
// well-formed SPKI whose point is not on the curve can match no genesis (whose keys verify its
// signature), so it fails closed.
constexpr uint8_t kEd25519SpkiPrefix[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                          0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
constexpr uint8_t kP256SpkiPrefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                       0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                       0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};

bool HasForm(const Bytes& der, std::span<const uint8_t> prefix, size_t key_size) {
  return der.size() == prefix.size() + key_size &&
         std::equal(prefix.begin(), prefix.end(), der.begin());
}

}  // namespace

Result<UpgradeConfig> ParseUpgrade(const Doc& doc, const toml::table& table) {
  RETURN_IF_ERROR(CheckKeys(doc, table, "upgrade.", {"control_keys"}));
  UpgradeConfig out;
  ASSIGN_OR_RETURN(auto keys, GetStringArray(doc, table, "upgrade.", "control_keys"));
  if (!keys.has_value()) {
    return out;
  }
  if (keys->size() > kMaxControlKeys) {
    return Error(Code::kInvalidArgument, doc.name + ": upgrade.control_keys: more than " +
                                             std::to_string(kMaxControlKeys) + " keys");
  }
  for (size_t i = 0; i < keys->size(); ++i) {
    std::string where = doc.name + ": upgrade.control_keys[" + std::to_string(i) + "]";
    auto der = HexDecode((*keys)[i]);
    if (!der) {
      return Error(Code::kInvalidArgument,
                   where + " must be the hex of a DER SubjectPublicKeyInfo (`enclavia keys show`)");
    }
    if (!HasForm(*der, kEd25519SpkiPrefix, 32) && !HasForm(*der, kP256SpkiPrefix, 64)) {
      return Error(Code::kInvalidArgument,
                   where + " is not an Ed25519 or P-256 (uncompressed) SubjectPublicKeyInfo");
    }
    if (std::find(out.control_keys.begin(), out.control_keys.end(), *der) !=
        out.control_keys.end()) {
      return Error(Code::kInvalidArgument, where + " repeats an earlier key");
    }
    out.control_keys.push_back(std::move(*der));
  }
  return out;
}

std::string SerializeUpgrade(const UpgradeConfig& upgrade) {
  if (upgrade == UpgradeConfig{}) {
    return "";
  }
  std::vector<std::string> hex;
  hex.reserve(upgrade.control_keys.size());
  for (const Bytes& key : upgrade.control_keys) {
    hex.push_back(HexEncode(key));
  }
  std::string out = "\n[upgrade]\n";
  out.append("control_keys = ").append(StringArray(hex)).append("\n");
  return out;
}

}  // namespace enclavia::config::internal
