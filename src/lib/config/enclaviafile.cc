// SPDX-License-Identifier: Apache-2.0
#include "lib/config/enclaviafile.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>

#include "lib/base/file.h"
#include "lib/config/internal/toml.h"

namespace enclavia::config {

namespace {

using internal::Doc;

std::string Resolve(const std::string& dir, const std::string& path) {
  if (!path.empty() && path[0] == '/') {
    return path;
  }
  return dir + "/" + path;
}

Error Invalid(const std::string& message) {
  return Error(Code::kInvalidArgument, "Enclaviafile: " + message);
}

Result<void> ParseKernel(const Doc& doc, const toml::table& root, const std::string& dir,
                         KernelSpec& kernel) {
  const toml::node* node = root.get("kernel");
  if (node == nullptr) {
    return {};
  }
  auto parse_builtin = [&](const std::string& name) -> Result<void> {
    if (name == "debian") {
      kernel.source = KernelSource::kDebian;
    } else if (name == "nitro") {
      kernel.source = KernelSource::kNitro;
    } else {
      return Invalid("kernel must be \"debian\", \"nitro\" or a [kernel] table, not \"" + name +
                     "\"" + internal::Where(*node));
    }
    return {};
  };
  if (const auto* s = node->as_string()) {
    return parse_builtin(s->get());
  }
  const auto* t = node->as_table();
  if (t == nullptr) {
    return Invalid("kernel must be a string or a table" + internal::Where(*node));
  }
  RETURN_IF_ERROR(internal::CheckKeys(doc, *t, "kernel.", {"path", "builtin", "cmdline"}));
  ASSIGN_OR_RETURN(auto path, internal::GetString(doc, *t, "kernel.", "path"));
  ASSIGN_OR_RETURN(auto builtin, internal::GetString(doc, *t, "kernel.", "builtin"));
  ASSIGN_OR_RETURN(auto cmdline, internal::GetString(doc, *t, "kernel.", "cmdline"));
  if (path.has_value() && builtin.has_value()) {
    return Invalid("kernel.path and kernel.builtin are exclusive");
  }
  if (path.has_value()) {
    if (path->empty()) {
      return Invalid("kernel.path is empty");
    }
    kernel.source = KernelSource::kPath;
    kernel.path = Resolve(dir, *path);
  } else if (builtin.has_value()) {
    RETURN_IF_ERROR(parse_builtin(*builtin));
  }
  kernel.cmdline = std::move(cmdline);
  return {};
}

}  // namespace

Result<Enclaviafile> ParseEnclaviafile(std::string_view text, const std::string& dir) {
  const Doc doc{"Enclaviafile"};
  ASSIGN_OR_RETURN(toml::table root, internal::ParseToml(doc, text));
  RETURN_IF_ERROR(internal::CheckKeys(
      doc, root, "", {"image", "app", "kernel", "eif", "storage", "egress", "upgrade"}));

  Enclaviafile file;
  file.dir = dir;

  ASSIGN_OR_RETURN(const toml::table* image, internal::GetTable(doc, root, "", "image"));
  if (image == nullptr) {
    return Invalid("missing section [image]");
  }
  RETURN_IF_ERROR(internal::CheckKeys(doc, *image, "image.", {"name", "version"}));
  ASSIGN_OR_RETURN(auto name, internal::GetString(doc, *image, "image.", "name"));
  ASSIGN_OR_RETURN(auto version, internal::GetString(doc, *image, "image.", "version"));
  if (!name.has_value() || name->empty()) {
    return Invalid("missing key image.name");
  }
  file.name = *name;
  file.version = version.value_or("latest");

  ASSIGN_OR_RETURN(const toml::table* app, internal::GetTable(doc, root, "", "app"));
  if (app == nullptr) {
    return Invalid("missing section [app]");
  }
  RETURN_IF_ERROR(internal::CheckKeys(
      doc, *app, "app.",
      {"rootfs", "oci", "cmd", "env", "workdir", "port", "uid", "gid", "devices", "restart",
       "restart_limit"}));
  ASSIGN_OR_RETURN(auto rootfs, internal::GetString(doc, *app, "app.", "rootfs"));
  ASSIGN_OR_RETURN(auto oci, internal::GetString(doc, *app, "app.", "oci"));
  if (rootfs.has_value() == oci.has_value()) {
    return Invalid("[app] needs exactly one of rootfs or oci");
  }
  if (rootfs.has_value()) {
    file.app.rootfs = Resolve(dir, *rootfs);
  } else {
    file.app.oci = Resolve(dir, *oci);
  }
  ASSIGN_OR_RETURN(file.app.cmd, internal::GetStringArray(doc, *app, "app.", "cmd"));
  if (file.app.cmd.has_value() &&
      (file.app.cmd->empty() || file.app.cmd->front().empty() || file.app.cmd->front()[0] != '/')) {
    return Invalid("app.cmd must be a non-empty array whose first element is an absolute path");
  }
  if (!file.app.cmd.has_value() && rootfs.has_value()) {
    return Invalid("missing key app.cmd (required with app.rootfs)");
  }
  ASSIGN_OR_RETURN(file.app.env, internal::GetStringMap(doc, *app, "app.", "env"));
  if (file.app.env.has_value()) {
    for (const auto& [k, v] : *file.app.env) {
      if (k.empty() || k.find('=') != std::string::npos) {
        return Invalid("app.env: bad variable name '" + k + "'");
      }
    }
  }
  ASSIGN_OR_RETURN(file.app.workdir, internal::GetString(doc, *app, "app.", "workdir"));
  if (file.app.workdir.has_value() && (file.app.workdir->empty() || (*file.app.workdir)[0] != '/')) {
    return Invalid("app.workdir must be an absolute path");
  }
  ASSIGN_OR_RETURN(auto port, internal::GetInt(doc, *app, "app.", "port", 1, 65535));
  if (!port.has_value()) {
    return Invalid("missing key app.port");
  }
  file.app.port = static_cast<uint16_t>(*port);
  ASSIGN_OR_RETURN(auto uid, internal::GetInt(doc, *app, "app.", "uid", 0, UINT32_MAX - 1));
  ASSIGN_OR_RETURN(auto gid, internal::GetInt(doc, *app, "app.", "gid", 0, UINT32_MAX - 1));
  if (uid.has_value()) {
    file.app.uid = static_cast<uint32_t>(*uid);
  }
  if (gid.has_value()) {
    file.app.gid = static_cast<uint32_t>(*gid);
  }
  ASSIGN_OR_RETURN(auto devices, internal::GetStringArray(doc, *app, "app.", "devices"));
  if (devices.has_value()) {
    file.app.devices = std::move(*devices);
  }
  ASSIGN_OR_RETURN(auto restart, internal::GetString(doc, *app, "app.", "restart"));
  if (restart.has_value()) {
    auto policy = ParseRestartPolicy(*restart);
    if (!policy) {
      return Invalid(policy.error().message());
    }
    file.app.restart = *policy;
  }
  ASSIGN_OR_RETURN(auto limit,
                   internal::GetInt(doc, *app, "app.", "restart_limit", 1, kMaxRestartLimit));
  file.app.restart_limit = static_cast<uint32_t>(limit.value_or(kDefaultRestartLimit));

  RETURN_IF_ERROR(ParseKernel(doc, root, dir, file.kernel));

  ASSIGN_OR_RETURN(const toml::table* eif, internal::GetTable(doc, root, "", "eif"));
  if (eif != nullptr) {
    RETURN_IF_ERROR(internal::CheckKeys(doc, *eif, "eif.", {"memory_mib", "cpus"}));
    ASSIGN_OR_RETURN(auto mem, internal::GetInt(doc, *eif, "eif.", "memory_mib", 64, 1 << 24));
    ASSIGN_OR_RETURN(auto cpus, internal::GetInt(doc, *eif, "eif.", "cpus", 1, 1024));
    file.eif.memory_mib = static_cast<uint64_t>(mem.value_or(1024));
    file.eif.cpus = static_cast<uint64_t>(cpus.value_or(2));
  }
  ASSIGN_OR_RETURN(const toml::table* storage, internal::GetTable(doc, root, "", "storage"));
  if (storage != nullptr) {
    ASSIGN_OR_RETURN(file.storage, internal::ParseStorage(doc, *storage));
  }
  ASSIGN_OR_RETURN(const toml::table* egress, internal::GetTable(doc, root, "", "egress"));
  if (egress != nullptr) {
    std::optional<std::string> anchor;
    ASSIGN_OR_RETURN(file.egress, internal::ParseEgress(doc, *egress,
                                                        internal::EgressKeys::kEnclaviafile,
                                                        &anchor));
    if (anchor.has_value()) {
      file.trust_anchor = Resolve(dir, *anchor);
    }
  }
  ASSIGN_OR_RETURN(const toml::table* upgrade, internal::GetTable(doc, root, "", "upgrade"));
  if (upgrade != nullptr) {
    ASSIGN_OR_RETURN(file.upgrade, internal::ParseUpgrade(doc, *upgrade));
  }
  return file;
}

Result<Enclaviafile> LoadEnclaviafile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Error(Code::kNotFound, "no such file or directory: " + path);
  }
  std::string file_path = S_ISDIR(st.st_mode) ? path + "/" + std::string(kEnclaviafileName) : path;
  char resolved[PATH_MAX];
  if (::realpath(file_path.c_str(), resolved) == nullptr) {
    return Error(Code::kNotFound, "no Enclaviafile at " + file_path);
  }
  std::string abs = resolved;
  size_t slash = abs.rfind('/');
  std::string dir = slash == 0 ? std::string("/") : abs.substr(0, slash);
  ASSIGN_OR_RETURN(Bytes text, ReadFile(abs, 1 << 20));
  return ParseEnclaviafile(AsString(text), dir);
}

}  // namespace enclavia::config
