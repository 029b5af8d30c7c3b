// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CONTROL_KEYS_KEYS_H_
#define ENCLAVIA_CONTROL_KEYS_KEYS_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/secret.h"
#include "lib/crypto/signer.h"

// Control keys: the keys that sign an enclave's genesis, its upgrade requests and revocations
// (docs/control-keys.md). A control key is a PEM file (Ed25519 or P-256, optionally
// passphrase-protected), a PKCS#11 token key (control/keys/pkcs11.h), or a key the control plane
// manages for the owner (weaker: the operator can sign upgrades). Outside the trust boundary.
namespace enclavia::control {

// kPassphraseEnv holds the passphrase of an encrypted key file; kAllowInsecureKeyEnv=1 accepts a
// key file that group or others can read; kPkcs11ModuleEnv names the default PKCS#11 module;
// kPkcs11PinEnv holds the token PIN when the URI carries none.
inline constexpr const char* kPassphraseEnv = "ENCLAVIA_KEY_PASSPHRASE";
inline constexpr const char* kAllowInsecureKeyEnv = "ENCLAVIA_ALLOW_INSECURE_KEY";
inline constexpr const char* kPkcs11ModuleEnv = "ENCLAVIA_PKCS11_MODULE";
inline constexpr const char* kPkcs11PinEnv = "ENCLAVIA_PKCS11_PIN";

// Prompt says whether a secret (passphrase, PIN) may be asked for on the controlling terminal.
enum class Prompt { kNever, kIfInteractive };

// PassphraseSource says where the secret that unlocks a key comes from. For a key file: `file`
// (the first line of it: --passphrase-file), else $ENCLAVIA_KEY_PASSPHRASE, else the terminal.
// For PKCS#11 the URI's pin-value=/pin-source= come first, then `file`, then
// $ENCLAVIA_PKCS11_PIN, then the terminal.
struct PassphraseSource {
  std::string file;
  Prompt prompt = Prompt::kIfInteractive;
};

// ReadSecret returns the secret for `what` ("passphrase for key.pem") from `source`: the file's
// first line, else the environment variable `env`, else a no-echo prompt on /dev/tty when
// allowed. kNotFound when none of them gives one (the caller names what to set); kIo when the
// file cannot be read. The result is wiped on destruction.
Result<crypto::SecretBytes> ReadSecret(const PassphraseSource& source, const char* env,
                                       std::string_view what);

// OpenControlKey opens `spec`: a "pkcs11:" URI (OpenPkcs11Key) or the path of a PEM key file.
// A key file must be Ed25519 or P-256 PKCS#8 and not readable by group or others (like ssh;
// ENCLAVIA_ALLOW_INSECURE_KEY=1 overrides); an encrypted one is unlocked with a passphrase from
// `passphrase`. Errors are one line naming the key and what to do: "key file k.pem: wrong
// passphrase", "key file k.pem is readable by group/others (mode 0644): chmod 600 k.pem". Secrets
// are wiped after use and never appear in messages.
Result<std::unique_ptr<crypto::Signer>> OpenControlKey(std::string_view spec,
                                                       const PassphraseSource& passphrase);

// ParseKeyType maps "ed25519" / "p256" (also "p-256", "ecdsa-p256") to the algorithm;
// kInvalidArgument otherwise.
Result<crypto::SignatureAlgorithm> ParseKeyType(std::string_view name);

// NewFileKey generates a key of `type` (Ed25519 or P-256) and writes it as PKCS#8 PEM to `path`
// with mode 0600, encrypted (scrypt + AES-256-CBC) when `passphrase` is given. It never
// overwrites: kAlreadyExists if `path` exists. Returns the public key.
Result<crypto::PublicKey> NewFileKey(const std::string& path, crypto::SignatureAlgorithm type,
                                     std::optional<std::string_view> passphrase = std::nullopt);

// KeyDescription is what a genesis records about a control key and how people compare keys.
struct KeyDescription {
  std::string algorithm;    // "ed25519", "p256" or "p384"
  std::string fingerprint;  // hex SHA-256 of the SPKI DER
  Bytes spki;               // SubjectPublicKeyInfo DER (Genesis.control_keys entries)
  std::string spki_hex;
  std::string spki_base64;
};
KeyDescription DescribePublicKey(const crypto::PublicKey& key);

// KeyAlgorithmName returns "ed25519", "p256" or "p384".
std::string KeyAlgorithmName(crypto::SignatureAlgorithm alg);

// ManagedKeyPath is where the control plane keeps the managed control key of `enclave_name`:
// <data_dir>/managed-keys/<enclave_name>.pem. kInvalidArgument for a name that is not a valid
// enclave name (so no name can escape the directory).
Result<std::string> ManagedKeyPath(const std::string& data_dir, std::string_view enclave_name);

// OpenOrCreateManagedKey opens the managed key of `enclave_name`, creating an Ed25519 key file
// (directory 0700, file 0600, unencrypted) the first time. Managed keys are weaker than keys
// the owner holds: whoever runs the control plane can sign upgrades with them.
Result<std::unique_ptr<crypto::Signer>> OpenOrCreateManagedKey(const std::string& data_dir,
                                                               std::string_view enclave_name);

}  // namespace enclavia::control

#endif  // ENCLAVIA_CONTROL_KEYS_KEYS_H_
