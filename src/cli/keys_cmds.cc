// SPDX-License-Identifier: Apache-2.0
#include "cli/keys_cmds.h"

#include <cstdlib>
#include <optional>
#include <ostream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "control/keys/keys.h"
#include "lib/base/file.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/secret.h"

namespace enclavia::cli {

namespace {

constexpr size_t kMaxPublicKeyFile = 64 * 1024;

int Fail(std::ostream& err, std::string_view command, const Error& error) {
  err << "enclavia " << command << ": " << error.message() << "\n";
  return 1;
}

void Print(const control::KeyDescription& d, const std::string& key, bool json, std::ostream& out) {
  if (json) {
    nlohmann::json j{{"key", key},
                     {"algorithm", d.algorithm},
                     {"fingerprint", d.fingerprint},
                     {"spki_hex", d.spki_hex},
                     {"spki_base64", d.spki_base64}};
    out << j.dump(2) << "\n";
    return;
  }
  out << "key:         " << key << "\n"
      << "algorithm:   " << d.algorithm << "\n"
      << "fingerprint: " << d.fingerprint << "\n"
      << "spki:        " << d.spki_hex << "\n";
}

// PublicKeyFile returns the public key in `path` when it is a PEM "PUBLIC KEY" file (no secret,
// so no permission check), nullopt when it is anything else.
std::optional<crypto::PublicKey> PublicKeyFile(const std::string& path) {
  auto data = ReadFile(path, kMaxPublicKeyFile);
  if (!data) {
    return std::nullopt;
  }
  std::optional<crypto::PublicKey> key;
  std::string_view text = AsString(*data);
  if (text.find("-----BEGIN PUBLIC KEY-----") != std::string_view::npos &&
      text.find("PRIVATE KEY-----") == std::string_view::npos) {
    if (auto parsed = crypto::PublicKey::FromPem(text); parsed) {
      key = std::move(*parsed);
    }
  }
  // What we read may have been a private key: wipe it.
  crypto::Cleanse(data->data(), data->size());
  return key;
}

}  // namespace

int RunKeysNew(const KeysNewFlags& flags, std::ostream& out, std::ostream& err) {
  if (flags.file.empty()) {
    err << "enclavia keys new: FILE is required\n";
    return 2;
  }
  auto type = control::ParseKeyType(flags.type);
  if (!type) {
    err << "enclavia keys new: " << type.error().message() << "\n";
    return 2;
  }
  std::optional<crypto::SecretBytes> passphrase;
  if (!flags.passphrase_file.empty() || std::getenv(control::kPassphraseEnv) != nullptr) {
    control::PassphraseSource source;
    source.file = flags.passphrase_file;
    source.prompt = control::Prompt::kNever;
    auto got = control::ReadSecret(source, control::kPassphraseEnv, "passphrase");
    if (!got) {
      return Fail(err, "keys new", got.error());
    }
    if (got->empty()) {
      return Fail(err, "keys new", Error(Code::kInvalidArgument, "the passphrase is empty"));
    }
    passphrase = std::move(*got);
  }
  std::optional<std::string_view> pass;
  if (passphrase.has_value()) {
    pass = AsString(passphrase->Expose());
  }
  auto key = control::NewFileKey(flags.file, *type, pass);
  if (!key) {
    return Fail(err, "keys new", key.error());
  }
  if (!flags.json) {
    out << "control key written to " << flags.file << " (mode 0600, "
        << (passphrase.has_value() ? "passphrase-protected" : "not encrypted") << ")\n";
  }
  Print(control::DescribePublicKey(*key), flags.file, flags.json, out);
  return 0;
}

int RunKeysShow(const KeysShowFlags& flags, std::ostream& out, std::ostream& err) {
  if (flags.key.empty()) {
    err << "enclavia keys show: FILE or pkcs11: URI is required\n";
    return 2;
  }
  if (flags.key.rfind("pkcs11:", 0) != 0) {
    if (auto pub = PublicKeyFile(flags.key); pub.has_value()) {
      Print(control::DescribePublicKey(*pub), flags.key, flags.json, out);
      return 0;
    }
  }
  control::PassphraseSource source;
  source.file = flags.passphrase_file;
  auto signer = control::OpenControlKey(flags.key, source);
  if (!signer) {
    return Fail(err, "keys show", signer.error());
  }
  Print(control::DescribePublicKey((*signer)->public_key()), (*signer)->Describe(), flags.json,
        out);
  return 0;
}

}  // namespace enclavia::cli
