// SPDX-License-Identifier: Apache-2.0
#include "lib/builder/builder.h"
#include "lib/builder/internal/temp_dir.h"
#include "lib/builder/witness.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/base/sink.h"
#include "lib/crypto/hash.h"
#include "lib/eif/metadata.h"
#include "lib/image/cpio.h"
#include "lib/image/scan.h"
#include "lib/oci/import.h"
#include "lib/sys/fd.h"

namespace enclavia::builder {

namespace {

constexpr std::string_view kBuildTool = "enclavia";
constexpr std::string_view kBuildToolVersion = "0.1.0";
// The command line nitro-cli's blobs ship, used when neither the Enclaviafile nor the kernel
// source says otherwise.
constexpr std::string_view kDefaultCmdline =
    "reboot=k panic=30 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp "
    "i8042.dumbkbd random.trust_cpu=on";
constexpr uint64_t kMaxKernelSize = 256ull << 20;
constexpr uint64_t kMaxRuntimeFile = 512ull << 20;

using image::FileSource;

// Sha256Sink hashes what it receives.
class Sha256Sink final : public ByteSink {
 public:
  Result<void> Write(ByteSpan data) override {
    hasher_.Update(data);
    return {};
  }
  std::string Hex() { return HexEncode(hasher_.Finish()); }

 private:
  crypto::Hasher hasher_{crypto::HashAlgorithm::kSha256};
};

Result<std::string> FileSha256(const std::string& path) {
  ASSIGN_OR_RETURN(FileSource source, FileSource::Open(path));
  Sha256Sink sink;
  RETURN_IF_ERROR(source.WriteTo(sink));
  return sink.Hex();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

// KernelIdentity reads the OperatingSystem and KernelVersion the way nitro-cli does: the third
// line of the kernel's config ("# Linux/x86 6.1.0-28-amd64 Kernel Configuration") split on
// ' ', '/' and '-', words 1 and 3.
std::pair<std::string, std::string> KernelIdentity(const std::string& config_path) {
  std::pair<std::string, std::string> unknown{"Unknown", "Unknown"};
  auto text = ReadFile(config_path, 4 << 20);
  if (!text) {
    return unknown;
  }
  std::string_view all = AsString(*text);
  for (int i = 0; i < 2; ++i) {
    size_t nl = all.find('\n');
    if (nl == std::string_view::npos) {
      return unknown;
    }
    all.remove_prefix(nl + 1);
  }
  std::string_view line = all.substr(0, all.find('\n'));
  std::vector<std::string> words(1);
  for (char c : line) {
    if (c == ' ' || c == '/' || c == '-') {
      words.emplace_back();
    } else {
      words.back() += c;
    }
  }
  return {words.size() > 1 ? words[1] : "Unknown", words.size() > 3 ? words[3] : "Unknown"};
}

struct KernelChoice {
  std::string path;
  std::string config_path;
  std::string cmdline;
  std::string source;
};

Result<KernelChoice> ResolveKernel(const config::KernelSpec& spec, const Environment& env) {
  KernelChoice k;
  std::string default_cmdline(kDefaultCmdline);
  switch (spec.source) {
    case config::KernelSource::kDebian:
      k.source = "debian";
      k.path = env.debian_kernel_dir + "/vmlinuz";
      k.config_path = env.debian_kernel_dir + "/config";
      if (!Exists(k.path)) {
        return Error(Code::kNotFound, "no default kernel at " + k.path +
                                          " (run scripts/install-deps, set ENCLAVIA_KERNEL_DIR, "
                                          "or set [kernel] path in the Enclaviafile)");
      }
      break;
    case config::KernelSource::kNitro: {
      k.source = "nitro";
      k.path = env.nitro_blobs_dir + "/bzImage";
      k.config_path = env.nitro_blobs_dir + "/bzImage.config";
      if (!Exists(k.path)) {
        return Error(Code::kNotFound, "kernel = \"nitro\" needs nitro-cli's blobs at " +
                                          env.nitro_blobs_dir + " (set NITRO_BLOBS_DIR)");
      }
      auto cmdline = ReadFile(env.nitro_blobs_dir + "/cmdline", 64 << 10);
      if (cmdline) {
        default_cmdline = Trim(std::string(AsString(*cmdline)));
      }
      break;
    }
    case config::KernelSource::kPath:
      k.source = "path";
      k.path = spec.path;
      k.config_path = spec.path + ".config";
      if (!Exists(k.path)) {
        return Error(Code::kNotFound, "kernel.path: no such file: " + k.path);
      }
      break;
  }
  k.cmdline = spec.cmdline.value_or(default_cmdline);
  return k;
}

Result<image::Tree> RuntimeTree(const Environment& env, config::Lock& lock) {
  std::string manifest_path = env.runtime_dir + "/runtime.toml";
  auto text = ReadFile(manifest_path, 1 << 20);
  if (!text) {
    return Error(Code::kNotFound, "no Enclavia runtime at " + env.runtime_dir +
                                      " (missing runtime.toml; build the project or set "
                                      "ENCLAVIA_RUNTIME_DIR)");
  }
  ASSIGN_OR_RETURN(config::RuntimeManifest manifest, config::ParseRuntimeManifest(AsString(*text)));
  lock.toolchain = manifest.toolchain;
  image::Tree tree;
  for (const config::RuntimeFile& file : manifest.files) {
    std::string path = env.runtime_dir + "/" + file.source;
    ASSIGN_OR_RETURN(FileSource source, FileSource::Open(path));
    if (source.size() > kMaxRuntimeFile) {
      return Error(Code::kLimitExceeded, "runtime file too large: " + path);
    }
    ASSIGN_OR_RETURN(std::string digest, FileSha256(path));
    image::Entry entry;
    entry.type = image::EntryType::kFile;
    entry.mode = file.mode;
    entry.size = source.size();
    entry.content = image::PathContent{path};
    RETURN_IF_ERROR(tree.Put(file.path, std::move(entry)));
    lock.runtime_files[file.path] = digest;
  }
  return tree;
}

// OciUser parses an image's User ("uid", "uid:gid"; none: kDefaultAppUid/Gid); names would need
// the image's /etc/passwd, so they are refused with a pointer to app.uid / app.gid.
Result<std::pair<uint32_t, uint32_t>> OciUser(const std::string& user) {
  if (user.empty()) {
    return std::pair<uint32_t, uint32_t>{config::kDefaultAppUid, config::kDefaultAppGid};
  }
  auto number = [&](std::string_view s) -> std::optional<uint32_t> {
    if (s.empty() || s.size() > 9) {
      return std::nullopt;
    }
    uint32_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') {
        return std::nullopt;
      }
      v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    return v;
  };
  size_t colon = user.find(':');
  auto uid = number(std::string_view(user).substr(0, colon));
  auto gid = colon == std::string::npos ? uid : number(std::string_view(user).substr(colon + 1));
  if (!uid || !gid) {
    return Error(Code::kInvalidArgument, "the image's User \"" + user +
                                             "\" is not numeric: set app.uid and app.gid");
  }
  return std::pair<uint32_t, uint32_t>{*uid, *gid};
}

using internal::TempDir;

constexpr size_t kMaxTrustAnchor = 1 << 20;

// IsAnchorRecord reports whether one zone-file line (RFC 1035 §5.1) is a DS or DNSKEY record:
// owner [TTL] [class] type rdata..., comments after ';'.
bool IsAnchorRecord(std::string_view line) {
  line = line.substr(0, line.find(';'));
  std::vector<std::string_view> tokens;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) {
      ++i;
    }
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
      ++i;
    }
    if (i > start) {
      tokens.push_back(line.substr(start, i - start));
    }
  }
  auto upper_equals = [](std::string_view token, std::string_view word) {
    return token.size() == word.size() &&
           std::equal(token.begin(), token.end(), word.begin(), [](char a, char b) {
             return (a >= 'a' && a <= 'z' ? static_cast<char>(a - 'a' + 'A') : a) == b;
           });
  };
  // The type is at most the fourth token and needs rdata after it.
  for (size_t t = 1; t < tokens.size() && t <= 3; ++t) {
    if ((upper_equals(tokens[t], "DS") || upper_equals(tokens[t], "DNSKEY")) &&
        t + 1 < tokens.size()) {
      return true;
    }
  }
  return false;
}

// ReadTrustAnchor reads the DNSSEC trust anchor the image will carry and checks that it holds
// at least one DS or DNSKEY record; unbound reads the rest.
Result<Bytes> ReadTrustAnchor(const std::string& path) {
  if (!Exists(path)) {
    return Error(Code::kNotFound,
                 "egress.trust_anchor: no such file: " + path +
                     " (install Debian's dns-root-data or set trust_anchor in [egress])");
  }
  auto bytes = ReadFile(path, kMaxTrustAnchor);
  if (!bytes) {
    return std::move(bytes).error().WithContext("egress.trust_anchor");
  }
  std::string_view text = AsString(*bytes);
  for (size_t start = 0; start < text.size();) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    if (IsAnchorRecord(text.substr(start, end - start))) {
      return bytes;
    }
    start = end + 1;
  }
  return Error(Code::kInvalidArgument,
               "egress.trust_anchor: " + path + " holds no DS or DNSKEY record");
}

Error LockError(const std::string& lock_path, const std::vector<std::string>& diffs) {
  std::string message = "inputs differ from " + lock_path + " (use --update-lock to accept):";
  for (const auto& d : diffs) {
    message += "\n  " + d;
  }
  return Error(Code::kFailedPrecondition, message);
}

}  // namespace

std::string FormatBuildTime(int64_t epoch_seconds) {
  time_t t = static_cast<time_t>(epoch_seconds);
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
  return buf;
}

Result<Environment> DefaultEnvironment() {
  Environment env;
  if (const char* dir = std::getenv("ENCLAVIA_RUNTIME_DIR"); dir != nullptr && *dir != '\0') {
    env.runtime_dir = dir;
  } else {
    char exe[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
      return sys::IoError("readlink /proc/self/exe", errno);
    }
    std::string self(exe, static_cast<size_t>(n));
    env.runtime_dir = self.substr(0, self.rfind('/')) + "/../libexec/enclavia";
  }
  if (const char* dir = std::getenv("ENCLAVIA_KERNEL_DIR"); dir != nullptr && *dir != '\0') {
    env.debian_kernel_dir = dir;
  }
  if (const char* dir = std::getenv("NITRO_BLOBS_DIR"); dir != nullptr && *dir != '\0') {
    env.nitro_blobs_dir = dir;
  }
  if (const char* dir = std::getenv("TMPDIR"); dir != nullptr && *dir != '\0') {
    env.temp_dir = dir;
  }
  if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde != nullptr && *sde != '\0') {
    std::string s = sde;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (errno != 0 || end == s.c_str() || *end != '\0' || v < 0) {
      return Error(Code::kInvalidArgument,
                   "SOURCE_DATE_EPOCH must be a non-negative integer, not \"" + s + "\"");
    }
    env.source_date_epoch = v;
  }
  return env;
}

Result<Bytes> WriteRamdisk(const image::Tree& tree, int64_t source_date_epoch) {
  image::CpioOptions options;
  options.mtime = static_cast<uint64_t>(source_date_epoch);
  BytesSink sink;
  RETURN_IF_ERROR(image::WriteCpio(tree, options, sink));
  return sink.Take();
}

Result<BuildResult> Build(const BuildRequest& request, const Environment& env) {
  BuildResult result;
  auto progress = [&](std::string_view stage, uint64_t done, uint64_t total) {
    if (request.progress) {
      request.progress(Progress{stage, done, total});
    }
  };
  ASSIGN_OR_RETURN(result.enclaviafile, config::LoadEnclaviafile(request.path));
  const config::Enclaviafile& file = result.enclaviafile;
  result.lock_path = file.dir + "/" + std::string(config::kLockName);

  // The existing lock, if any.
  std::optional<config::Lock> locked;
  if (Exists(result.lock_path)) {
    ASSIGN_OR_RETURN(Bytes text, ReadFile(result.lock_path, 64 << 20));
    ASSIGN_OR_RETURN(config::Lock parsed, config::ParseLock(AsString(text)));
    locked = std::move(parsed);
  } else if (request.lock_mode == LockMode::kRequire) {
    return Error(Code::kNotFound, "no " + result.lock_path + ": reproduce rebuilds from the lock");
  }

  config::Lock& lock = result.lock;
  // SOURCE_DATE_EPOCH: the environment's when set, else the lock's, else 0.
  lock.source_date_epoch = env.source_date_epoch.value_or(locked ? locked->source_date_epoch : 0);
  result.source_date_epoch = lock.source_date_epoch;

  // Kernel.
  progress("kernel", 0, 1);
  ASSIGN_OR_RETURN(KernelChoice kernel, ResolveKernel(file.kernel, env));
  ASSIGN_OR_RETURN(FileSource kernel_source, FileSource::Open(kernel.path));
  if (kernel_source.size() == 0 || kernel_source.size() > kMaxKernelSize) {
    return Error(Code::kInvalidArgument, "kernel " + kernel.path + " is empty or too large");
  }
  lock.kernel_source = kernel.source;
  ASSIGN_OR_RETURN(lock.kernel_sha256, FileSha256(kernel.path));
  result.kernel_path = kernel.path;
  result.cmdline = kernel.cmdline;

  // Runtime (ramdisk 1).
  progress("runtime", 0, 1);
  ASSIGN_OR_RETURN(result.runtime, RuntimeTree(env, lock));

  // Application (ramdisk 2).
  progress("app", 0, 1);
  config::EnclaveConfig& ec = result.enclave_config;
  ec.name = file.name;
  ec.version = file.version;
  std::optional<TempDir> staging;
  if (!file.app.rootfs.empty()) {
    lock.app_source = "rootfs";
    image::ScanOptions scan;
    scan.devices = file.app.devices;
    auto tree = image::ScanDirectory(file.app.rootfs, scan);
    if (!tree) {
      return std::move(tree).error().WithContext("app.rootfs");
    }
    result.app = std::move(*tree);
    ec.app.cmd = *file.app.cmd;
    ec.app.env = file.app.env.value_or(std::map<std::string, std::string>{});
    ec.app.workdir = file.app.workdir.value_or("/");
    ec.app.uid = file.app.uid.value_or(config::kDefaultAppUid);
    ec.app.gid = file.app.gid.value_or(config::kDefaultAppGid);
  } else {
    lock.app_source = "oci";
    ASSIGN_OR_RETURN(TempDir dir, TempDir::Create(env.temp_dir, "enclavia-build"));
    staging.emplace(std::move(dir));
    oci::ImportOptions options;
    options.staging_dir = staging->path();
    options.devices = file.app.devices;
    auto imported = oci::ImportImage(file.app.oci, options);
    if (!imported) {
      return std::move(imported).error().WithContext("app.oci");
    }
    oci::Image& img = *imported;
    result.app = std::move(img.tree);
    result.warnings = img.warnings;
    lock.oci_config_digest = img.config_digest;
    for (const auto& layer : img.layers) {
      lock.oci_layers.push_back(layer.digest);
    }
    if (file.app.cmd.has_value()) {
      ec.app.cmd = *file.app.cmd;
    } else {
      ec.app.cmd = img.config.entrypoint;
      ec.app.cmd.insert(ec.app.cmd.end(), img.config.cmd.begin(), img.config.cmd.end());
    }
    if (ec.app.cmd.empty() || ec.app.cmd[0].empty() || ec.app.cmd[0][0] != '/') {
      return Error(Code::kInvalidArgument,
                   "app.cmd: the image has no absolute entrypoint/cmd; set app.cmd");
    }
    for (const std::string& kv : img.config.env) {
      size_t eq = kv.find('=');
      if (eq != std::string::npos && eq > 0) {
        ec.app.env[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
    }
    for (const auto& [k, v] : file.app.env.value_or(std::map<std::string, std::string>{})) {
      ec.app.env[k] = v;
    }
    ec.app.workdir = file.app.workdir.value_or(img.config.workdir.empty() ? "/"
                                                                          : img.config.workdir);
    ASSIGN_OR_RETURN(auto user, OciUser(img.config.user));
    ec.app.uid = file.app.uid.value_or(user.first);
    ec.app.gid = file.app.gid.value_or(user.second);
  }
  ec.app.port = file.app.port;
  ec.app.restart = file.app.restart;
  ec.app.restart_limit = file.app.restart_limit;
  ec.storage = file.storage;
  if (ec.storage.enabled && ec.storage.witness_pcrs.empty()) {
    // Trust the built-in witness image of this release (lib/builder/witness.h).
    auto pcrs = WitnessPcrs(env);
    if (!pcrs) {
      return std::move(pcrs).error().WithContext(
          "[storage] without witness_pcrs trusts the built-in witness image");
    }
    ec.storage.witness_pcrs = std::move(*pcrs);
  }
  ec.egress = file.egress;
  ec.upgrade = file.upgrade;
  if (ec.egress.enabled && ec.egress.dnssec == egress::DnssecMode::kRequire) {
    // The trust anchor is baked in (and so measured in PCR2): the host cannot swap it.
    ASSIGN_OR_RETURN(Bytes anchor, ReadTrustAnchor(file.trust_anchor));
    if (result.app.Find(config::kTrustAnchorPath) != nullptr) {
      return Error(Code::kInvalidArgument, "the application must not contain /" +
                                               std::string(config::kTrustAnchorPath) +
                                               ": the builder writes it");
    }
    image::Entry entry;
    entry.type = image::EntryType::kFile;
    entry.mode = 0644;
    entry.size = anchor.size();
    entry.content = std::move(anchor);
    RETURN_IF_ERROR(result.app.Put(config::kTrustAnchorPath, std::move(entry)));
  }
  if (result.app.Find(config::kEnclaveConfigPath) != nullptr) {
    return Error(Code::kInvalidArgument, "the application must not contain /" +
                                             std::string(config::kEnclaveConfigPath) +
                                             ": the builder writes it");
  }
  {
    image::Entry entry;
    entry.type = image::EntryType::kFile;
    entry.mode = 0644;
    std::string text = config::SerializeEnclaveConfig(ec);
    entry.size = text.size();
    entry.content = ToBytes(text);
    RETURN_IF_ERROR(result.app.Put(config::kEnclaveConfigPath, std::move(entry)));
  }
  RETURN_IF_ERROR(result.app.Validate());

  // The lock, before reading the application's contents: everything but per-file digests.
  bool check_lock = locked.has_value() && request.lock_mode != LockMode::kUpdate;
  if (check_lock) {
    config::Lock pre = lock;
    pre.app_files = locked->app_files;
    auto diffs = config::DiffLocks(*locked, pre);
    if (!diffs.empty()) {
      return LockError(result.lock_path, diffs);
    }
  }

  // The image.
  auto [os, kernel_version] = KernelIdentity(kernel.config_path);
  eif::IdentityInfo identity;
  identity.image_name = file.name;
  identity.image_version = file.version;
  identity.build_time = FormatBuildTime(lock.source_date_epoch);
  identity.build_tool = std::string(kBuildTool);
  identity.build_tool_version = std::string(kBuildToolVersion);
  identity.operating_system = os;
  identity.kernel_version = kernel_version;
  if (lock.app_source == "oci") {
    nlohmann::ordered_json docker;
    docker["ConfigDigest"] = lock.oci_config_digest;
    docker["Layers"] = lock.oci_layers;
    identity.docker_info_json = docker.dump();
  }
  {
    nlohmann::ordered_json custom;
    custom["Enclavia"]["App"] = lock.app_source;
    custom["Enclavia"]["Port"] = file.app.port;
    custom["Enclavia"]["SourceDateEpoch"] = lock.source_date_epoch;
    identity.custom_metadata_json = custom.dump();
  }
  Bytes metadata = eif::EncodeMetadata(identity);

  image::CpioOptions cpio_options;
  cpio_options.mtime = static_cast<uint64_t>(lock.source_date_epoch);
  std::map<std::string, Bytes> digests;
  ASSIGN_OR_RETURN(image::CpioSource runtime_source,
                   image::CpioSource::Create(result.runtime, cpio_options));
  ASSIGN_OR_RETURN(image::CpioSource app_source,
                   image::CpioSource::Create(result.app, cpio_options,
                                             lock.app_source == "rootfs" ? &digests : nullptr));
  result.runtime_bytes = runtime_source.size();
  result.app_bytes = app_source.size();

  eif::ImageSpec spec;
  spec.kernel = &kernel_source;
  spec.cmdline = kernel.cmdline;
  spec.metadata = metadata;
  spec.ramdisks = {&runtime_source, &app_source};
  spec.signer = request.signer;
  spec.default_mem = file.eif.memory_mib << 20;
  spec.default_cpus = file.eif.cpus;
  spec.progress = [&](uint64_t done, uint64_t total) { progress("image", done, total); };

  std::string partial;
  if (!request.output.empty()) {
    std::string out = request.output;
    size_t slash = out.rfind('/');
    std::string dir = slash == std::string::npos ? "." : out.substr(0, slash);
    std::string base = slash == std::string::npos ? out : out.substr(slash + 1);
    partial = dir + "/." + base + ".partial-" + std::to_string(::getpid());
    ASSIGN_OR_RETURN(result.measurements, eif::WriteEif(spec, partial));
  } else {
    ASSIGN_OR_RETURN(result.measurements, eif::MeasureImage(spec));
  }
  auto discard = [&]() {
    if (!partial.empty()) {
      ::unlink(partial.c_str());
    }
  };

  if (lock.app_source == "rootfs") {
    for (auto& [path, digest] : digests) {
      if (path != config::kEnclaveConfigPath) {
        lock.app_files[path] = HexEncode(digest);
      }
    }
  }
  if (check_lock) {
    auto diffs = config::DiffLocks(*locked, lock);
    if (!diffs.empty()) {
      discard();
      return LockError(result.lock_path, diffs);
    }
    result.lock_status = LockStatus::kVerified;
  } else if (request.lock_mode != LockMode::kRequire) {
    result.lock_status = locked.has_value() ? LockStatus::kUpdated : LockStatus::kCreated;
  }

  if (!partial.empty()) {
    if (::rename(partial.c_str(), request.output.c_str()) != 0) {
      int err = errno;
      discard();
      return sys::IoError("rename to " + request.output, err);
    }
    struct stat st {};
    if (::stat(request.output.c_str(), &st) == 0) {
      result.image_bytes = static_cast<uint64_t>(st.st_size);
    }
  }
  if (!check_lock && request.lock_mode != LockMode::kRequire) {
    std::string text = config::SerializeLock(lock);
    RETURN_IF_ERROR(WriteFileAtomic(result.lock_path, AsBytes(text)));
  }
  return result;
}

}  // namespace enclavia::builder
