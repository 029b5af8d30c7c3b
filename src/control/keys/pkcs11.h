// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CONTROL_KEYS_PKCS11_H_
#define ENCLAVIA_CONTROL_KEYS_PKCS11_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/keys/keys.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/secret.h"
#include "lib/crypto/signer.h"

// Control keys on a PKCS#11 token (a YubiKey PIV slot through ykcs11, an HSM, SoftHSM2), named by
// an RFC 7512 URI. Only ECDSA P-256 keys are supported; the token signs SHA-256(message) with
// CKM_ECDSA, so the private key never enters this process. docs/control-keys.md.
namespace enclavia::control {

// Pkcs11Uri is a parsed RFC 7512 URI. Every value has been percent-decoded.
struct Pkcs11Uri {
  // Path attributes (RFC 7512 §2.3) that select the token and the key. Empty: not given.
  std::string token;                     // token=      the token label (CK_TOKEN_INFO.label)
  std::string manufacturer;              // manufacturer=
  std::string model;                     // model=
  std::string serial;                    // serial=
  std::optional<unsigned long> slot_id;  // slot-id=
  std::string object;                    // object=     the key's CKA_LABEL
  std::optional<Bytes> id;               // id=         the key's CKA_ID (bytes, usually "%01")
  // Query attributes.
  std::string module_path;  // module-path=
  std::string module_name;  // module-name= (looked up in the p11-kit module directories)
  std::string pin_source;   // pin-source= "file:/path" or "/path": the PIN is the first line
  std::optional<crypto::SecretBytes> pin_value;  // pin-value=
};

// ParsePkcs11Uri parses "pkcs11:token=ctl;object=key?pin-value=1234&module-path=/x.so". Unknown
// path attributes (other than vendor "x-" ones), type= other than "private", a repeated
// attribute, or a bad percent-escape are kInvalidArgument with a one-line message
// ("pkcs11 URI: unknown attribute 'foo'"). The message never contains the PIN.
Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view uri);

// ResolvePkcs11Module returns the module to load for `uri`: module-path=, else module-name= in the
// p11-kit module directories, else $ENCLAVIA_PKCS11_MODULE, else SoftHSM2 at
// /usr/lib/softhsm/libsofthsm2.so or /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so if present;
// kNotFound naming what to set otherwise.
Result<std::string> ResolvePkcs11Module(const Pkcs11Uri& uri);

// OpenPkcs11Key loads the module (dlopen, C_GetFunctionList, C_Initialize), finds the one token
// the URI names (or the only token present), logs in as CKU_USER with the PIN (pin-value=,
// pin-source=, $ENCLAVIA_PKCS11_PIN, else a prompt on the terminal when `passphrase.prompt`
// allows it), finds exactly one CKO_PRIVATE_KEY matching object=/id= and the CKO_PUBLIC_KEY with
// the same CKA_ID (or label), and checks it is an EC key on P-256. Errors are one line starting
// "pkcs11: " and naming the PKCS#11 function and CKR code when the module failed
// ("pkcs11: C_Login: CKR_PIN_INCORRECT"). The PIN is wiped after login (kept, wiped at
// destruction, only for keys with CKA_ALWAYS_AUTHENTICATE, which need it for every signature).
//
// The returned Signer owns the module session; Sign is thread-safe (serialized on the session).
// PKCS#11 allows one C_Initialize per process: while a key from a module is open, a second key
// from the same module works only as long as the first one lives.
Result<std::unique_ptr<crypto::Signer>> OpenPkcs11Key(std::string_view uri,
                                                      const PassphraseSource& passphrase);

// Pkcs11ReturnName returns the CKR_ name of a PKCS#11 return value ("CKR_PIN_INCORRECT"), or
// "CKR_0x…" for values it does not know.
std::string Pkcs11ReturnName(unsigned long rv);

}  // namespace enclavia::control

#endif  // ENCLAVIA_CONTROL_KEYS_PKCS11_H_
