// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CONFIG_ENCLAVIAFILE_H_
#define ENCLAVIA_LIB_CONFIG_ENCLAVIAFILE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"
#include "lib/config/enclave_config.h"

// Enclaviafile (TOML) describes an enclave image: its name, the application (a rootfs directory
// or an OCI image), how to start it, and the kernel. Format and examples:
// docs/formats/enclaviafile.md. Unknown keys are an error that names the key.
namespace enclavia::config {

inline constexpr std::string_view kEnclaviafileName = "Enclaviafile";

enum class KernelSource { kDebian, kNitro, kPath };

struct KernelSpec {
  KernelSource source = KernelSource::kDebian;
  std::string path;                    // kPath: absolute (resolved against the Enclaviafile's dir)
  std::optional<std::string> cmdline;  // nullopt: the source's default
};

struct AppSpec {
  std::string rootfs;  // absolute path of a directory, or "" when `oci` is set
  std::string oci;     // absolute path of an OCI layout / docker-save tarball or layout directory
  std::optional<std::vector<std::string>> cmd;         // nullopt: the OCI image's entrypoint+cmd
  std::optional<std::map<std::string, std::string>> env;  // merged over the OCI image's env
  std::optional<std::string> workdir;
  uint16_t port = 0;
  std::optional<uint32_t> uid;       // nullopt: the OCI image's numeric User, else kDefaultAppUid
  std::optional<uint32_t> gid;
  std::vector<std::string> devices;  // device nodes to keep (normalized relative paths)
  RestartPolicy restart = RestartPolicy::kOnFailure;
  uint32_t restart_limit = kDefaultRestartLimit;
};

struct EifSpec {
  uint64_t memory_mib = 1024;  // EIF header default_mem
  uint64_t cpus = 2;           // EIF header default_cpus
};

// kDefaultTrustAnchor is Debian's dns-root-data root KSK (DS and DNSKEY records), the DNSSEC
// trust anchor baked into images with [egress] enabled and dnssec = "require".
inline constexpr std::string_view kDefaultTrustAnchor = "/usr/share/dns/root.key";

struct Enclaviafile {
  StorageConfig storage;  // [storage]: copied into enclave.toml as is
  EgressConfig egress;    // [egress] without trust_anchor: copied into enclave.toml as is
  UpgradeConfig upgrade;  // [upgrade]: copied into enclave.toml as is
  // [egress] trust_anchor: absolute (resolved against the Enclaviafile's dir). The builder reads
  // it only when egress is enabled with dnssec = "require".
  std::string trust_anchor = std::string(kDefaultTrustAnchor);
  std::string dir;  // absolute directory holding the Enclaviafile (and enclavia.lock)
  std::string name;
  std::string version;
  AppSpec app;
  KernelSpec kernel;
  EifSpec eif;
};

// ParseEnclaviafile parses `text`; relative paths resolve against `dir` (absolute).
Result<Enclaviafile> ParseEnclaviafile(std::string_view text, const std::string& dir);

// LoadEnclaviafile reads `<dir>/Enclaviafile` (or `path` itself when it names a file).
Result<Enclaviafile> LoadEnclaviafile(const std::string& path);

}  // namespace enclavia::config

#endif  // ENCLAVIA_LIB_CONFIG_ENCLAVIAFILE_H_
