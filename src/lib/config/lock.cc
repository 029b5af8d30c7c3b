// SPDX-License-Identifier: Apache-2.0
#include "lib/config/lock.h"

#include <set>

#include "lib/config/internal/toml.h"

namespace enclavia::config {

namespace {

using internal::Doc;
using internal::Key;
using internal::Quote;

Result<std::map<std::string, std::string>> StringTable(const Doc& doc, const toml::table& parent,
                                                      std::string_view prefix,
                                                      std::string_view key) {
  ASSIGN_OR_RETURN(auto map, internal::GetStringMap(doc, parent, prefix, key));
  return map.value_or(std::map<std::string, std::string>{});
}

std::string Short(const std::string& digest) {
  std::string_view d = digest;
  if (d.starts_with("sha256:")) {
    d.remove_prefix(7);
  }
  return std::string(d.substr(0, 12)) + (d.size() > 12 ? "…" : "");
}

void DiffMaps(std::string_view what, const std::map<std::string, std::string>& locked,
              const std::map<std::string, std::string>& current, std::vector<std::string>& out) {
  auto l = locked.begin();
  auto c = current.begin();
  while (l != locked.end() || c != current.end()) {
    if (c == current.end() || (l != locked.end() && l->first < c->first)) {
      out.push_back(std::string(what) + " " + l->first + ": in the lock, missing now");
      ++l;
    } else if (l == locked.end() || c->first < l->first) {
      out.push_back(std::string(what) + " " + c->first + ": new, not in the lock");
      ++c;
    } else {
      if (l->second != c->second) {
        out.push_back(std::string(what) + " " + l->first + ": " + Short(l->second) +
                      " in the lock, " + Short(c->second) + " now");
      }
      ++l;
      ++c;
    }
  }
}

void Table(std::string& out, std::string_view header,
           const std::map<std::string, std::string>& map) {
  out += "\n[" + std::string(header) + "]\n";
  for (const auto& [k, v] : map) {
    out += Key(k) + " = " + Quote(v) + "\n";
  }
}

}  // namespace

Result<Lock> ParseLock(std::string_view text) {
  const Doc doc{std::string(kLockName)};
  ASSIGN_OR_RETURN(toml::table root, internal::ParseToml(doc, text));
  RETURN_IF_ERROR(internal::CheckKeys(doc, root, "", {"version", "build", "kernel", "runtime", "app"}));
  ASSIGN_OR_RETURN(auto version, internal::GetInt(doc, root, "", "version", 0, INT32_MAX));
  if (version.value_or(0) != kLockVersion) {
    return Error(Code::kUnsupported, std::string(kLockName) + ": unsupported version " +
                                         std::to_string(version.value_or(0)));
  }
  Lock lock;
  ASSIGN_OR_RETURN(const toml::table* build, internal::GetTable(doc, root, "", "build"));
  if (build != nullptr) {
    RETURN_IF_ERROR(internal::CheckKeys(doc, *build, "build.", {"source_date_epoch"}));
    ASSIGN_OR_RETURN(auto epoch,
                     internal::GetInt(doc, *build, "build.", "source_date_epoch", 0, INT64_MAX));
    lock.source_date_epoch = epoch.value_or(0);
  }
  ASSIGN_OR_RETURN(const toml::table* kernel, internal::GetTable(doc, root, "", "kernel"));
  if (kernel != nullptr) {
    RETURN_IF_ERROR(internal::CheckKeys(doc, *kernel, "kernel.", {"source", "sha256"}));
    ASSIGN_OR_RETURN(auto source, internal::GetString(doc, *kernel, "kernel.", "source"));
    ASSIGN_OR_RETURN(auto sha, internal::GetString(doc, *kernel, "kernel.", "sha256"));
    lock.kernel_source = source.value_or("");
    lock.kernel_sha256 = sha.value_or("");
  }
  ASSIGN_OR_RETURN(const toml::table* runtime, internal::GetTable(doc, root, "", "runtime"));
  if (runtime != nullptr) {
    RETURN_IF_ERROR(internal::CheckKeys(doc, *runtime, "runtime.", {"toolchain", "files"}));
    ASSIGN_OR_RETURN(lock.toolchain, StringTable(doc, *runtime, "runtime.", "toolchain"));
    ASSIGN_OR_RETURN(lock.runtime_files, StringTable(doc, *runtime, "runtime.", "files"));
  }
  ASSIGN_OR_RETURN(const toml::table* app, internal::GetTable(doc, root, "", "app"));
  if (app != nullptr) {
    RETURN_IF_ERROR(
        internal::CheckKeys(doc, *app, "app.", {"source", "config_digest", "layers", "files"}));
    ASSIGN_OR_RETURN(auto source, internal::GetString(doc, *app, "app.", "source"));
    ASSIGN_OR_RETURN(auto config_digest, internal::GetString(doc, *app, "app.", "config_digest"));
    ASSIGN_OR_RETURN(auto layers, internal::GetStringArray(doc, *app, "app.", "layers"));
    lock.app_source = source.value_or("");
    lock.oci_config_digest = config_digest.value_or("");
    lock.oci_layers = layers.value_or(std::vector<std::string>{});
    ASSIGN_OR_RETURN(lock.app_files, StringTable(doc, *app, "app.", "files"));
  }
  return lock;
}

std::string SerializeLock(const Lock& lock) {
  std::string out;
  out += "# enclavia.lock: the SHA-256 of every input of this image, written by `enclavia build`.\n";
  out += "# Commit it. `enclavia build` refuses inputs that differ (--update-lock accepts them),\n";
  out += "# and `enclavia reproduce` rebuilds from it.\n";
  out += "version = " + std::to_string(kLockVersion) + "\n";
  out += "\n[build]\nsource_date_epoch = " + std::to_string(lock.source_date_epoch) + "\n";
  out += "\n[kernel]\nsource = " + Quote(lock.kernel_source) + "\n";
  out += "sha256 = " + Quote(lock.kernel_sha256) + "\n";
  Table(out, "runtime.toolchain", lock.toolchain);
  Table(out, "runtime.files", lock.runtime_files);
  out += "\n[app]\nsource = " + Quote(lock.app_source) + "\n";
  if (lock.app_source == "oci") {
    out += "config_digest = " + Quote(lock.oci_config_digest) + "\n";
    out += "layers = [\n";
    for (const auto& layer : lock.oci_layers) {
      out += "  " + Quote(layer) + ",\n";
    }
    out += "]\n";
  } else {
    Table(out, "app.files", lock.app_files);
  }
  return out;
}

std::vector<std::string> DiffLocks(const Lock& locked, const Lock& current, size_t max_lines) {
  std::vector<std::string> out;
  if (locked.source_date_epoch != current.source_date_epoch) {
    out.push_back("SOURCE_DATE_EPOCH: " + std::to_string(locked.source_date_epoch) +
                  " in the lock, " + std::to_string(current.source_date_epoch) + " now");
  }
  if (locked.kernel_source != current.kernel_source) {
    out.push_back("kernel: source " + locked.kernel_source + " in the lock, " +
                  current.kernel_source + " now");
  } else if (locked.kernel_sha256 != current.kernel_sha256) {
    out.push_back("kernel: sha256 " + Short(locked.kernel_sha256) + " in the lock, " +
                  Short(current.kernel_sha256) + " now");
  }
  DiffMaps("toolchain", locked.toolchain, current.toolchain, out);
  DiffMaps("runtime file", locked.runtime_files, current.runtime_files, out);
  if (locked.app_source != current.app_source) {
    out.push_back("app: source " + locked.app_source + " in the lock, " + current.app_source +
                  " now");
  } else {
    if (locked.oci_config_digest != current.oci_config_digest) {
      out.push_back("oci config: " + Short(locked.oci_config_digest) + " in the lock, " +
                    Short(current.oci_config_digest) + " now");
    }
    size_t layers = std::max(locked.oci_layers.size(), current.oci_layers.size());
    for (size_t i = 0; i < layers; ++i) {
      std::string l = i < locked.oci_layers.size() ? locked.oci_layers[i] : "(none)";
      std::string c = i < current.oci_layers.size() ? current.oci_layers[i] : "(none)";
      if (l != c) {
        out.push_back("oci layer " + std::to_string(i + 1) + ": " + Short(l) + " in the lock, " +
                      Short(c) + " now");
      }
    }
    DiffMaps("app file", locked.app_files, current.app_files, out);
  }
  if (out.size() > max_lines) {
    size_t rest = out.size() - max_lines;
    out.resize(max_lines);
    out.push_back("… and " + std::to_string(rest) + " more");
  }
  return out;
}

Result<RuntimeManifest> ParseRuntimeManifest(std::string_view text) {
  const Doc doc{"runtime.toml"};
  ASSIGN_OR_RETURN(toml::table root, internal::ParseToml(doc, text));
  RETURN_IF_ERROR(internal::CheckKeys(doc, root, "", {"toolchain", "file"}));
  RuntimeManifest manifest;
  ASSIGN_OR_RETURN(manifest.toolchain, StringTable(doc, root, "", "toolchain"));
  const toml::node* files = root.get("file");
  if (files == nullptr || files->as_array() == nullptr) {
    return Error(Code::kInvalidArgument, "runtime.toml: missing [[file]] entries");
  }
  std::set<std::string> seen;
  for (const auto& item : *files->as_array()) {
    const auto* t = item.as_table();
    if (t == nullptr) {
      return Error(Code::kInvalidArgument, "runtime.toml: file must be a table");
    }
    RETURN_IF_ERROR(internal::CheckKeys(doc, *t, "file.", {"path", "source", "mode"}));
    ASSIGN_OR_RETURN(auto path, internal::GetString(doc, *t, "file.", "path"));
    ASSIGN_OR_RETURN(auto source, internal::GetString(doc, *t, "file.", "source"));
    ASSIGN_OR_RETURN(auto mode, internal::GetInt(doc, *t, "file.", "mode", 0, 07777));
    if (!path.has_value() || path->empty() || !source.has_value() || source->empty() ||
        source->find('/') != std::string::npos) {
      return Error(Code::kInvalidArgument,
                   "runtime.toml: each file needs a path and a plain source file name");
    }
    if (!seen.insert(*path).second) {
      return Error(Code::kInvalidArgument, "runtime.toml: duplicate file " + *path);
    }
    manifest.files.push_back(
        RuntimeFile{*path, *source, static_cast<uint32_t>(mode.value_or(0755))});
  }
  return manifest;
}

}  // namespace enclavia::config
