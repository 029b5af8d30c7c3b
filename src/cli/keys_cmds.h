// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLI_KEYS_CMDS_H_
#define ENCLAVIA_CLI_KEYS_CMDS_H_

#include <iosfwd>
#include <string>

// `enclavia keys new | show`: control keys that sign an enclave's genesis and its upgrades
// (docs/control-keys.md). Exit codes: 0 success, 1 failure (one line on `err`), 2 bad usage.
namespace enclavia::cli {

struct KeysNewFlags {
  std::string file;              // Where to write the PEM (0600; never overwritten).
  std::string type = "ed25519";  // --type ed25519 | p256
  // --passphrase-file F: encrypt the key with the first line of F. Without it the key is
  // encrypted with $ENCLAVIA_KEY_PASSPHRASE when that is set, else written unencrypted.
  std::string passphrase_file;
  bool json = false;
};
// RunKeysNew writes a new control key and prints its algorithm, fingerprint and SPKI.
int RunKeysNew(const KeysNewFlags& flags, std::ostream& out, std::ostream& err);

struct KeysShowFlags {
  std::string key;              // A key file (private or public PEM) or a pkcs11: URI.
  std::string passphrase_file;  // For an encrypted key file (or a token PIN).
  bool json = false;
};
// RunKeysShow prints what a genesis records about a control key: algorithm, SHA-256 fingerprint
// of the SPKI, SPKI DER (hex; base64 in --json). Opening a private key checks that it unlocks.
int RunKeysShow(const KeysShowFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace enclavia::cli

#endif  // ENCLAVIA_CLI_KEYS_CMDS_H_
