// SPDX-License-Identifier: Apache-2.0
#include "lib/config/enclave_config.h"

#include "lib/config/internal/toml.h"

namespace enclavia::config {

using internal::Doc;

std::string_view RestartPolicyName(RestartPolicy policy) {
  switch (policy) {
    case RestartPolicy::kOnFailure:
      return "on-failure";
    case RestartPolicy::kAlways:
      return "always";
    case RestartPolicy::kNever:
      return "never";
  }
  return "on-failure";
}

Result<RestartPolicy> ParseRestartPolicy(std::string_view name) {
  for (RestartPolicy p : {RestartPolicy::kOnFailure, RestartPolicy::kAlways, RestartPolicy::kNever}) {
    if (name == RestartPolicyName(p)) {
      return p;
    }
  }
  return Error(Code::kInvalidArgument, "app.restart must be \"on-failure\", \"always\" or "
                                       "\"never\", not \"" + std::string(name) + "\"");
}

std::string_view DnssecModeName(egress::DnssecMode mode) {
  return mode == egress::DnssecMode::kOff ? "off" : "require";
}

Result<egress::Policy> ToPolicy(const EgressConfig& config) {
  egress::Policy policy;
  policy.enabled = config.enabled;
  policy.dnssec = config.dnssec;
  for (const std::string& text : config.resolvers) {
    auto ip = egress::ParseIp(text);
    if (!ip) {
      return std::move(ip).error().WithContext("egress.resolvers");
    }
    policy.resolvers.push_back(*ip);
  }
  std::string first_name;
  for (const std::string& entry : config.allow) {
    auto rule = egress::ParseRule(entry);
    if (!rule) {
      return std::move(rule).error().WithContext("egress.allow");
    }
    if (rule->kind != egress::Rule::Kind::kAddress && first_name.empty()) {
      first_name = entry;
    }
    policy.allow.push_back(std::move(*rule));
  }
  if (!first_name.empty() && policy.resolvers.empty()) {
    return Error(Code::kInvalidArgument,
                 "egress.allow names hosts (" + internal::Quote(first_name) +
                     ") but egress.resolvers is empty: name rules need resolvers");
  }
  return policy;
}

Result<EnclaveConfig> ParseEnclaveConfig(std::string_view toml_text) {
  const Doc doc{"enclave.toml"};
  ASSIGN_OR_RETURN(toml::table root, internal::ParseToml(doc, toml_text));
  RETURN_IF_ERROR(internal::CheckKeys(doc, root, "",
                                      {"version", "enclave", "app", "storage", "egress", "upgrade"}));
  ASSIGN_OR_RETURN(auto version, internal::GetInt(doc, root, "", "version", 0, INT32_MAX));
  if (!version.has_value()) {
    return Error(Code::kInvalidArgument, "enclave.toml: missing key version");
  }
  if (*version != kEnclaveConfigVersion) {
    return Error(Code::kUnsupported,
                 "enclave.toml: unsupported version " + std::to_string(*version));
  }

  EnclaveConfig config;
  ASSIGN_OR_RETURN(const toml::table* enclave, internal::GetTable(doc, root, "", "enclave"));
  if (enclave == nullptr) {
    return Error(Code::kInvalidArgument, "enclave.toml: missing section [enclave]");
  }
  RETURN_IF_ERROR(internal::CheckKeys(doc, *enclave, "enclave.", {"name", "version"}));
  ASSIGN_OR_RETURN(auto name, internal::GetString(doc, *enclave, "enclave.", "name"));
  ASSIGN_OR_RETURN(auto image_version, internal::GetString(doc, *enclave, "enclave.", "version"));
  config.name = name.value_or("");
  config.version = image_version.value_or("");

  ASSIGN_OR_RETURN(const toml::table* app, internal::GetTable(doc, root, "", "app"));
  if (app == nullptr) {
    return Error(Code::kInvalidArgument, "enclave.toml: missing section [app]");
  }
  RETURN_IF_ERROR(
      internal::CheckKeys(doc, *app, "app.", {"cmd", "env", "workdir", "port", "uid", "gid", "restart", "restart_limit"}));
  ASSIGN_OR_RETURN(auto cmd, internal::GetStringArray(doc, *app, "app.", "cmd"));
  if (!cmd.has_value() || cmd->empty()) {
    return Error(Code::kInvalidArgument, "enclave.toml: app.cmd must be a non-empty array");
  }
  if ((*cmd)[0].empty() || (*cmd)[0][0] != '/') {
    return Error(Code::kInvalidArgument, "enclave.toml: app.cmd[0] must be an absolute path");
  }
  config.app.cmd = std::move(*cmd);
  ASSIGN_OR_RETURN(auto env, internal::GetStringMap(doc, *app, "app.", "env"));
  if (env.has_value()) {
    for (const auto& [k, v] : *env) {
      if (k.empty() || k.find('=') != std::string::npos) {
        return Error(Code::kInvalidArgument, "enclave.toml: bad environment variable name '" +
                                                 k + "'");
      }
    }
    config.app.env = std::move(*env);
  }
  ASSIGN_OR_RETURN(auto workdir, internal::GetString(doc, *app, "app.", "workdir"));
  config.app.workdir = workdir.value_or("/");
  if (config.app.workdir.empty() || config.app.workdir[0] != '/') {
    return Error(Code::kInvalidArgument, "enclave.toml: app.workdir must be an absolute path");
  }
  ASSIGN_OR_RETURN(auto port, internal::GetInt(doc, *app, "app.", "port", 0, 65535));
  config.app.port = static_cast<uint16_t>(port.value_or(0));
  ASSIGN_OR_RETURN(auto uid, internal::GetInt(doc, *app, "app.", "uid", 0, UINT32_MAX - 1));
  ASSIGN_OR_RETURN(auto gid, internal::GetInt(doc, *app, "app.", "gid", 0, UINT32_MAX - 1));
  config.app.uid = static_cast<uint32_t>(uid.value_or(kDefaultAppUid));
  config.app.gid = static_cast<uint32_t>(gid.value_or(kDefaultAppGid));
  ASSIGN_OR_RETURN(auto restart, internal::GetString(doc, *app, "app.", "restart"));
  if (restart.has_value()) {
    auto policy = ParseRestartPolicy(*restart);
    if (!policy) {
      return Error(Code::kInvalidArgument, "enclave.toml: " + policy.error().message());
    }
    config.app.restart = *policy;
  }
  ASSIGN_OR_RETURN(auto limit,
                   internal::GetInt(doc, *app, "app.", "restart_limit", 1, kMaxRestartLimit));
  config.app.restart_limit = static_cast<uint32_t>(limit.value_or(kDefaultRestartLimit));

  ASSIGN_OR_RETURN(const toml::table* storage, internal::GetTable(doc, root, "", "storage"));
  if (storage != nullptr) {
    ASSIGN_OR_RETURN(config.storage, internal::ParseStorage(doc, *storage));
  }
  ASSIGN_OR_RETURN(const toml::table* egress, internal::GetTable(doc, root, "", "egress"));
  if (egress != nullptr) {
    ASSIGN_OR_RETURN(config.egress, internal::ParseEgress(doc, *egress,
                                                          internal::EgressKeys::kEnclaveToml,
                                                          nullptr));
  }
  ASSIGN_OR_RETURN(const toml::table* upgrade, internal::GetTable(doc, root, "", "upgrade"));
  if (upgrade != nullptr) {
    ASSIGN_OR_RETURN(config.upgrade, internal::ParseUpgrade(doc, *upgrade));
  }
  return config;
}

std::string SerializeEnclaveConfig(const EnclaveConfig& config) {
  using internal::Key;
  using internal::Quote;
  std::string out;
  out += "# /etc/enclavia/enclave.toml: written by `enclavia build` and measured in PCR2.\n";
  out += "version = " + std::to_string(kEnclaveConfigVersion) + "\n\n";
  out += "[enclave]\n";
  out += "name = " + Quote(config.name) + "\n";
  out += "version = " + Quote(config.version) + "\n\n";
  out += "[app]\n";
  out += "cmd = " + internal::StringArray(config.app.cmd) + "\n";
  out += "workdir = " + Quote(config.app.workdir) + "\n";
  out += "port = " + std::to_string(config.app.port) + "\n";
  out += "uid = " + std::to_string(config.app.uid) + "\n";
  out += "gid = " + std::to_string(config.app.gid) + "\n";
  out += "restart = " + Quote(std::string(RestartPolicyName(config.app.restart))) + "\n";
  out += "restart_limit = " + std::to_string(config.app.restart_limit) + "\n";
  out += "\n[app.env]\n";
  for (const auto& [k, v] : config.app.env) {  // std::map: sorted, so deterministic
    out += Key(k) + " = " + Quote(v) + "\n";
  }
  out += internal::SerializeStorage(config.storage);
  out += internal::SerializeEgress(config.egress);
  out += internal::SerializeUpgrade(config.upgrade);
  return out;
}

}  // namespace enclavia::config
