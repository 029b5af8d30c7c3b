// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLI_PLATFORM_CMDS_H_
#define ENCLAVIA_CLI_PLATFORM_CMDS_H_

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lib/base/result.h"

// The platform commands: `enclavia up | down | deploy | ls | inspect | logs | restart | rm |
// trust`. They talk to the control plane (docs/platform-api.md) found through the data directory.
// Exit codes: 0 success, 1 failure (one line on `err` naming what to do next), 2 bad usage.
namespace enclavia::cli {

// DefaultDataDir is $ENCLAVIA_HOME, else /var/lib/enclavia for root, else
// ~/.local/share/enclavia.
std::string DefaultDataDir();

struct UpFlags {
  std::string data_dir;       // Empty: DefaultDataDir().
  bool detach = false;        // -d: return once healthy; else run until SIGINT/SIGTERM, then down.
  std::string public_host = "127.0.0.1";  // Where enclave relays listen.
  std::string provider = "local";
};
int RunUp(const UpFlags& flags, std::ostream& out, std::ostream& err);

struct DownFlags {
  std::string data_dir;
};
// RunDown removes every enclave, then stops the host agent and the control plane.
int RunDown(const DownFlags& flags, std::ostream& out, std::ostream& err);

struct DeployFlags {
  std::string data_dir;
  std::string file;  // The EIF.
  std::string name;
  bool debug = false;
  uint32_t cpus = 0;
  uint64_t memory_mib = 0;
  bool json = false;
  bool wait = true;  // Wait (≤ 30 s) until the enclave's relay answers /healthz.
  // --storage SIZE: attach a volume of SIZE ("1G", "512M", bytes; a multiple of 4 KiB).
  std::string storage;
  std::string backend;     // --backend dir[:PATH] | s3://BUCKET[/PREFIX]; default dir.
  uint32_t witnesses = 1;  // --witnesses N: anti-rollback witness enclaves (0..7).
  // Upgrades (docs/upgrade.md): at most one of --control-key, --managed-key, --immutable; none:
  // an unchained enclave (it can only be redeployed).
  std::string control_key;      // --control-key FILE|pkcs11:URI signs the genesis.
  std::string passphrase_file;  // --passphrase-file for it.
  bool managed_key = false;     // --managed-key: the control plane keeps the key (weaker).
  bool immutable = false;       // --immutable: a genesis that accepts no upgrade.
  std::string staging_window = "72h";  // --staging-window DUR
};

// ParseSize reads "4096", "512K", "64M", "1G", "2T" (binary units) into bytes; kInvalidArgument
// for anything else or an overflow.
Result<uint64_t> ParseSize(std::string_view text);
int RunDeploy(const DeployFlags& flags, std::ostream& out, std::ostream& err);

// For the upgrade commands: one JSON call to the control plane of `data_dir` (4xx/5xx become
// errors with its message), an image upload (skipped when it is stored), and the wait until an
// enclave's relay answers through its URL.
Result<nlohmann::json> ControlJson(const std::string& data_dir, const std::string& method,
                                   const std::string& target, const std::string& body = "");
Result<std::string> ControlUploadImage(const std::string& data_dir, const std::string& file,
                                       const std::string& name);
Result<void> ControlWaitServing(const std::string& data_dir, const std::string& name,
                                const std::string& url);

struct EnclaveFlags {
  std::string data_dir;
  std::string name;  // Empty for ls.
  bool json = false;
  bool follow = false;      // logs -f
  std::string output;       // trust -o
};
int RunList(const EnclaveFlags& flags, std::ostream& out, std::ostream& err);
int RunInspect(const EnclaveFlags& flags, std::ostream& out, std::ostream& err);
int RunLogs(const EnclaveFlags& flags, std::ostream& out, std::ostream& err);
int RunRestart(const EnclaveFlags& flags, std::ostream& out, std::ostream& err);
int RunRemove(const EnclaveFlags& flags, std::ostream& out, std::ostream& err);
int RunTrust(const EnclaveFlags& flags, std::ostream& out, std::ostream& err);

// `enclavia storage ...` (docs/storage.md): volumes as the host agent keeps them.
struct StorageFlags {
  std::string data_dir;
  std::string name;     // The enclave whose volume (all but ls, keygen).
  std::string tag;      // snapshot --tag
  std::string to;       // backup --to dir:/PATH | s3://BUCKET[/PREFIX]
  uint64_t version = 0; // recover --version (0: the newest stored)
  std::string key;      // recover --key: the owner's Ed25519 key (PEM); keygen -o
  bool json = false;
  bool restart = true;  // recover: restart the enclave so that it mounts the recovered version
};
int RunStorageList(const StorageFlags& flags, std::ostream& out, std::ostream& err);
int RunStorageInspect(const StorageFlags& flags, std::ostream& out, std::ostream& err);
int RunStorageSnapshot(const StorageFlags& flags, std::ostream& out, std::ostream& err);
int RunStorageBackup(const StorageFlags& flags, std::ostream& out, std::ostream& err);
int RunStorageRecover(const StorageFlags& flags, std::ostream& out, std::ostream& err);
// keygen writes a new Ed25519 owner key (PEM, 0600) to flags.key and prints the public key to
// put in the Enclaviafile's [storage] recovery_key.
int RunStorageKeygen(const StorageFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace enclavia::cli

#endif  // ENCLAVIA_CLI_PLATFORM_CMDS_H_
