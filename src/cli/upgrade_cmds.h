// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLI_UPGRADE_CMDS_H_
#define ENCLAVIA_CLI_UPGRADE_CMDS_H_

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "cli/platform_cmds.h"
#include "lib/base/result.h"

// The upgrade commands (docs/upgrade.md): `enclavia upgrade stage | status | revoke | activate`
// and `enclavia chain NAME|URL`. Exit codes: 0 success, 1 failure or refusal (one line on `err`),
// 2 bad usage.
namespace enclavia::cli {

// ParseDuration reads "90", "90s", "30m", "72h", "3d" into seconds; kInvalidArgument otherwise.
Result<uint64_t> ParseDuration(std::string_view text);

// DeployGenesis signs the genesis `enclavia deploy --control-key KEY | --immutable` sends: enclave
// id = the name, first PCRs = the image's (zeros in debug mode, as Nitro attests them), the
// control key, upgradable unless immutable (then a throwaway Ed25519 key signs), the staging
// window. Returns the entry in base64.
Result<std::string> DeployGenesis(const DeployFlags& flags);

struct UpgradeFlags {
  std::string data_dir;
  std::string name;
  std::string image;        // stage --image NEW.eif
  std::string after = "72h";  // stage --after DUR: not before now + DUR (the enclave's window too)
  std::string id;           // stage --id (default: "u" + the time); revoke/activate ID
  std::string control_key;  // --control-key FILE|pkcs11:URI
  std::string passphrase_file;
  bool managed_key = false;  // sign with the control plane's managed key
  bool force = false;        // activate --force: skip the host's checks (the enclave still decides)
  bool json = false;
};
int RunUpgradeStage(const UpgradeFlags& flags, std::ostream& out, std::ostream& err);
int RunUpgradeStatus(const UpgradeFlags& flags, std::ostream& out, std::ostream& err);
int RunUpgradeRevoke(const UpgradeFlags& flags, std::ostream& out, std::ostream& err);
int RunUpgradeActivate(const UpgradeFlags& flags, std::ostream& out, std::ostream& err);

struct ChainFlags {
  std::string data_dir;
  std::string target;  // An enclave name (through the control plane) or its URL (public).
  std::string trust;   // --trust FILE: also print AcceptChain's verdict for that trust file.
  std::vector<std::string> roots;  // --root PEM files (default: the local simulator's root).
  bool no_aws_root = false;
  bool allow_debug = false;
  bool json = false;
};
int RunChain(const ChainFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace enclavia::cli

#endif  // ENCLAVIA_CLI_UPGRADE_CMDS_H_
