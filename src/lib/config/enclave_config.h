// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CONFIG_ENCLAVE_CONFIG_H_
#define ENCLAVIA_LIB_CONFIG_ENCLAVE_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/egress/policy.h"

// EnclaveConfig is /etc/enclavia/enclave.toml: the measured configuration of an enclave. The
// builder writes it into the application ramdisk (so it is part of PCR2); enclavia-init and the
// other enclave daemons read it at boot. Format: docs/formats/enclaviafile.md.
namespace enclavia::config {

inline constexpr std::string_view kEnclaveConfigPath = "etc/enclavia/enclave.toml";
inline constexpr int kEnclaveConfigVersion = 1;
// kTrustAnchorPath is where the builder puts the DNSSEC trust anchor (DS/DNSKEY records in
// zone-file text) in the application ramdisk when [egress] is enabled with dnssec = "require"
// (docs/egress.md). Measured in PCR2 like enclave.toml.
inline constexpr std::string_view kTrustAnchorPath = "etc/enclavia/egress/trust-anchor";

// kDefaultAppUid and kDefaultAppGid (nobody/nogroup) are what the application runs as when
// neither the Enclaviafile nor the image says otherwise: never root by default.
inline constexpr uint32_t kDefaultAppUid = 65534;
inline constexpr uint32_t kDefaultAppGid = 65534;

// RestartPolicy says what enclavia-init does when the application exits (docs/runtime.md).
enum class RestartPolicy {
  kOnFailure,  // "on-failure": restart after a non-zero exit or a signal; stop after exit 0.
  kAlways,     // "always": restart after any exit.
  kNever,      // "never": the enclave stops when the application exits.
};

// kDefaultRestartLimit is how many quick failures in a row (exits within 10 s of starting) end
// the enclave; kMaxRestartLimit bounds the key.
inline constexpr uint32_t kDefaultRestartLimit = 5;
inline constexpr uint32_t kMaxRestartLimit = 1000;

// RestartPolicyName is the TOML spelling ("on-failure", "always", "never").
std::string_view RestartPolicyName(RestartPolicy policy);
// ParseRestartPolicy reads that spelling; anything else is kInvalidArgument naming the choices.
Result<RestartPolicy> ParseRestartPolicy(std::string_view name);

struct AppConfig {
  std::vector<std::string> cmd;             // argv; cmd[0] is an absolute path in the rootfs
  std::map<std::string, std::string> env;   // the whole environment the app starts with
  std::string workdir = "/";
  uint16_t port = 0;                         // the TCP port the enclave's ingress forwards to
  uint32_t uid = kDefaultAppUid;
  uint32_t gid = kDefaultAppGid;
  RestartPolicy restart = RestartPolicy::kOnFailure;
  uint32_t restart_limit = kDefaultRestartLimit;  // 1..kMaxRestartLimit
};

// StorageConfig is the image's [storage] section (docs/storage.md). Present means the image can
// mount a volume; whether it gets one is decided at deploy time (`enclavia deploy --storage`).
struct StorageConfig {
  bool enabled = false;
  std::string path = "/data";  // where the volume's btrfs is mounted (absolute, not "/")
  // witness_pcrs: the PCRs (index → lowercase hex) an anti-rollback witness enclave must attest
  // to before the volume trusts its answers. Empty: no witness can be trusted, so the volume
  // mounts unprotected against rollback across restarts (and says so).
  std::map<uint16_t, std::string> witness_pcrs;
  // recovery_key: the owner's Ed25519 public key (64 hex characters) that may sign a recovery
  // when every witness lost its state (`enclavia storage recover`); empty: no recovery possible.
  std::string recovery_key;
};

// EgressConfig is the image's [egress] section (docs/egress.md), kept as written: the strings
// are validated when parsed (every allow entry by egress::ParseRule, every resolver by
// egress::ParseIp) and turned into an egress::Policy by ToPolicy. A section with enabled = false
// is kept but inert: the enclave gets no network interface.
struct EgressConfig {
  bool enabled = false;
  std::vector<std::string> resolvers;  // IP addresses, reached on TCP port 53
  egress::DnssecMode dnssec = egress::DnssecMode::kRequire;
  std::vector<std::string> allow;      // allow-list entries, as written

  friend bool operator==(const EgressConfig&, const EgressConfig&) = default;
};

// DnssecModeName is the TOML spelling ("require", "off").
std::string_view DnssecModeName(egress::DnssecMode mode);

// ToPolicy parses `egress` into the firewall's policy. kInvalidArgument naming the bad value:
// `egress.allow: "xyz:99999": port out of range`, `egress.resolvers: not an IP address: "x"`,
// or name rules with no resolvers to ask.
Result<egress::Policy> ToPolicy(const EgressConfig& egress);

// UpgradeConfig is the image's [upgrade] section (docs/upgrade.md, docs/formats/enclaviafile.md).
struct UpgradeConfig {
  // control_keys pins the owner's control keys (DER SubjectPublicKeyInfo, Ed25519 or P-256;
  // written as lowercase hex): an enclave of this image accepts only an upgrade chain whose
  // genesis names no other control key, and no unchained boot. Empty: any genesis the host
  // serves (the chain is still verified) or none.
  std::vector<Bytes> control_keys;

  friend bool operator==(const UpgradeConfig&, const UpgradeConfig&) = default;
};

struct EnclaveConfig {
  std::string name;
  std::string version;
  AppConfig app;
  StorageConfig storage;
  EgressConfig egress;
  UpgradeConfig upgrade;
};

// ParseEnclaveConfig parses enclave.toml. Strict: unknown keys in [enclave], [app], [storage],
// [egress] and [upgrade] are an error naming the key. kMalformed / kInvalidArgument with a
// one-line message.
Result<EnclaveConfig> ParseEnclaveConfig(std::string_view toml_text);

// SerializeEnclaveConfig renders `config` deterministically (fixed key order, sorted env), so the
// same configuration always gives the same bytes and the same PCR2. [storage], [egress] and
// [upgrade] are written only when they differ from their defaults.
std::string SerializeEnclaveConfig(const EnclaveConfig& config);

}  // namespace enclavia::config

#endif  // ENCLAVIA_LIB_CONFIG_ENCLAVE_CONFIG_H_
