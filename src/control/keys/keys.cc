// SPDX-License-Identifier: Apache-2.0
#include "control/keys/keys.h"

#include <fcntl.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include <sys/stat.h>

#include "control/keys/pkcs11.h"
#include "lib/base/encoding.h"
#include "lib/config/names.h"
#include "lib/crypto/hash.h"
#include "lib/sys/fd.h"

namespace enclavia::control {

namespace {

constexpr size_t kMaxKeyFileSize = 64 * 1024;
constexpr size_t kMaxSecretSize = 4096;
constexpr std::string_view kPkcs11Scheme = "pkcs11:";

bool EnvIsOne(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::string_view(value) == "1";
}

// ReadBounded reads all of `fd` (at most `max` bytes) into wiped memory.
Result<crypto::SecretBytes> ReadBounded(int fd, size_t max, std::string_view what) {
  crypto::SecretBytes buffer(max + 1);
  size_t used = 0;
  while (used < buffer.size()) {
    ASSIGN_OR_RETURN(size_t n, sys::ReadSome(fd, buffer.MutableBytes().subspan(used)));
    if (n == 0) {
      break;
    }
    used += n;
  }
  if (used > max) {
    return Error(
        Code::kLimitExceeded,
        std::string(what).append(" is larger than ").append(std::to_string(max)).append(" bytes"));
  }
  return crypto::SecretBytes(buffer.Expose().first(used));
}

// FirstLine is `data` up to the first CR or LF.
crypto::SecretBytes FirstLine(ByteSpan data) {
  size_t end = 0;
  while (end < data.size() && data[end] != '\n' && data[end] != '\r') {
    ++end;
  }
  return crypto::SecretBytes(data.first(end));
}

// PromptOnTty asks for a secret on the controlling terminal with echo off. kNotFound when there
// is no terminal (a daemon, CI, a pipe).
Result<crypto::SecretBytes> PromptOnTty(std::string_view what) {
  auto tty = sys::Open("/dev/tty", O_RDWR | O_NOCTTY);
  if (!tty) {
    return Error(Code::kNotFound, "no terminal to ask on");
  }
  const int fd = tty->get();
  termios saved{};
  const bool have_termios = tcgetattr(fd, &saved) == 0;
  if (have_termios) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ICANON;
    (void)tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  std::string prompt = std::string("Enter ").append(what).append(": ");
  auto wrote = sys::WriteFull(fd, AsBytes(prompt));
  crypto::SecretBytes line(kMaxSecretSize);
  size_t used = 0;
  bool got_newline = false;
  while (wrote && used < line.size()) {
    uint8_t c = 0;
    auto n = sys::ReadSome(fd, std::span<uint8_t>(&c, 1));
    if (!n || *n == 0) {
      break;
    }
    if (c == '\n' || c == '\r') {
      got_newline = true;
      break;
    }
    line.MutableBytes()[used++] = c;
  }
  if (have_termios) {
    (void)tcsetattr(fd, TCSAFLUSH, &saved);
  }
  (void)sys::WriteFull(fd, AsBytes("\n"));
  if (!wrote || (!got_newline && used == 0)) {
    return Error(Code::kNotFound, "no answer on the terminal");
  }
  return crypto::SecretBytes(line.Expose().first(used));
}

Result<std::unique_ptr<crypto::Signer>> OpenKeyFile(const std::string& path,
                                                    const PassphraseSource& passphrase,
                                                    std::string description) {
  const std::string name = "key file " + path;
  auto fd = sys::Open(path, O_RDONLY);
  if (!fd) {
    return std::move(fd).error().WithContext(name);
  }
  struct stat st {};
  if (fstat(fd->get(), &st) != 0) {
    return sys::IoError(name, errno);
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(Code::kInvalidArgument, name + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0 && !EnvIsOne(kAllowInsecureKeyEnv)) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error(Code::kFailedPrecondition, std::string(name)
                                                .append(" is readable by group/others (mode ")
                                                .append(mode)
                                                .append("): run `chmod 600 ")
                                                .append(path)
                                                .append("`, or set ")
                                                .append(kAllowInsecureKeyEnv)
                                                .append("=1"));
  }
  auto pem_bytes = ReadBounded(fd->get(), kMaxKeyFileSize, name);
  if (!pem_bytes) {
    return std::move(pem_bytes).error().WithContext(name);
  }
  std::string_view pem = AsString(pem_bytes->Expose());
  const bool encrypted =
      pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos ||
      pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos;
  if (pem.find("-----BEGIN PUBLIC KEY-----") != std::string_view::npos &&
      pem.find("PRIVATE KEY-----") == std::string_view::npos) {
    return Error(Code::kInvalidArgument, name + " holds a public key, not a private key");
  }
  std::optional<crypto::SecretBytes> secret;
  if (encrypted) {
    auto got = ReadSecret(passphrase, kPassphraseEnv, "passphrase for " + path);
    if (!got) {
      if (got.error().code() == Code::kNotFound) {
        return Error(Code::kFailedPrecondition,
                     std::string(name)
                         .append(" is encrypted: set ")
                         .append(kPassphraseEnv)
                         .append(", pass --passphrase-file, or run on a terminal"));
      }
      return std::move(got).error();
    }
    secret = std::move(*got);
  }
  std::optional<std::string_view> pass;
  if (secret.has_value()) {
    pass = AsString(secret->Expose());
  }
  auto key = crypto::PrivateKey::FromPem(pem, pass);
  if (!key) {
    if (key.error().code() == Code::kVerifyFailed) {
      return Error(Code::kVerifyFailed, name + ": wrong passphrase (or a corrupt key file)");
    }
    return Error(key.error().code(),
                 name + ": not a PKCS#8 PEM private key (" + key.error().message() + ")");
  }
  const crypto::SignatureAlgorithm alg = key->algorithm();
  if (alg != crypto::SignatureAlgorithm::kEd25519 &&
      alg != crypto::SignatureAlgorithm::kEcdsaP256Sha256) {
    return Error(Code::kUnsupported, name + ": a " + KeyAlgorithmName(alg) +
                                         " key cannot be a control key (use ed25519 or p256)");
  }
  return std::unique_ptr<crypto::Signer>(
      std::make_unique<crypto::MemorySigner>(std::move(*key), std::move(description)));
}

}  // namespace

Result<crypto::SecretBytes> ReadSecret(const PassphraseSource& source, const char* env,
                                       std::string_view what) {
  if (!source.file.empty()) {
    auto fd = sys::Open(source.file, O_RDONLY);
    if (!fd) {
      return std::move(fd).error().WithContext(std::string(what) + " file");
    }
    ASSIGN_OR_RETURN(crypto::SecretBytes contents,
                     ReadBounded(fd->get(), kMaxSecretSize, std::string(what) + " file"));
    return FirstLine(contents.Expose());
  }
  if (env != nullptr) {
    if (const char* value = std::getenv(env); value != nullptr) {
      return crypto::SecretBytes(AsBytes(value));
    }
  }
  if (source.prompt == Prompt::kIfInteractive) {
    return PromptOnTty(what);
  }
  return Error(Code::kNotFound, std::string("no ").append(what));
}

Result<std::unique_ptr<crypto::Signer>> OpenControlKey(std::string_view spec,
                                                       const PassphraseSource& passphrase) {
  if (spec.empty()) {
    return Error(Code::kInvalidArgument, "control key: empty path or URI");
  }
  if (spec.size() >= kPkcs11Scheme.size() &&
      strncasecmp(spec.data(), kPkcs11Scheme.data(), kPkcs11Scheme.size()) == 0) {
    return OpenPkcs11Key(spec, passphrase);
  }
  std::string path(spec);
  return OpenKeyFile(path, passphrase, "file " + path);
}

Result<crypto::SignatureAlgorithm> ParseKeyType(std::string_view name) {
  if (name == "ed25519" || name == "Ed25519") {
    return crypto::SignatureAlgorithm::kEd25519;
  }
  if (name == "p256" || name == "p-256" || name == "P-256" || name == "ecdsa-p256") {
    return crypto::SignatureAlgorithm::kEcdsaP256Sha256;
  }
  return Error(Code::kInvalidArgument,
               std::string("unknown key type '").append(name).append("' (ed25519 or p256)"));
}

std::string KeyAlgorithmName(crypto::SignatureAlgorithm alg) {
  switch (alg) {
    case crypto::SignatureAlgorithm::kEd25519:
      return "ed25519";
    case crypto::SignatureAlgorithm::kEcdsaP256Sha256:
      return "p256";
    case crypto::SignatureAlgorithm::kEcdsaP384Sha384:
      return "p384";
  }
  return "unknown";
}

Result<crypto::PublicKey> NewFileKey(const std::string& path, crypto::SignatureAlgorithm type,
                                     std::optional<std::string_view> passphrase) {
  if (type != crypto::SignatureAlgorithm::kEd25519 &&
      type != crypto::SignatureAlgorithm::kEcdsaP256Sha256) {
    return Error(Code::kInvalidArgument, "control keys are ed25519 or p256");
  }
  crypto::PrivateKey key = crypto::PrivateKey::Generate(type);
  ASSIGN_OR_RETURN(crypto::SecretBytes pem, key.ToPem(passphrase));
  // O_EXCL: never replace a key someone may already have put in a genesis.
  auto fd = sys::Open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (!fd) {
    if (std::filesystem::exists(path) || std::filesystem::is_symlink(path)) {
      return Error(Code::kAlreadyExists, path + " already exists; not overwriting a key");
    }
    return std::move(fd).error().WithContext("key file " + path);
  }
  auto written = [&]() -> Result<void> {
    if (fchmod(fd->get(), 0600) != 0) {
      return sys::IoError("chmod " + path, errno);
    }
    RETURN_IF_ERROR(sys::WriteFull(fd->get(), pem.Expose()));
    if (fsync(fd->get()) != 0) {
      return sys::IoError("fsync " + path, errno);
    }
    return {};
  }();
  if (!written) {
    (void)unlink(path.c_str());
    return std::move(written).error().WithContext("key file " + path);
  }
  return key.public_key();
}

KeyDescription DescribePublicKey(const crypto::PublicKey& key) {
  KeyDescription d;
  d.algorithm = KeyAlgorithmName(key.algorithm());
  d.spki = key.ToSpki();
  d.fingerprint = HexEncode(crypto::Sha256(d.spki));
  d.spki_hex = HexEncode(d.spki);
  d.spki_base64 = Base64Encode(d.spki);
  return d;
}

Result<std::string> ManagedKeyPath(const std::string& data_dir, std::string_view enclave_name) {
  if (!config::ValidEnclaveName(enclave_name)) {
    return Error(Code::kInvalidArgument, "managed key: invalid enclave name");
  }
  if (data_dir.empty()) {
    return Error(Code::kInvalidArgument, "managed key: empty data directory");
  }
  return (std::filesystem::path(data_dir) / "managed-keys" /
          std::string(enclave_name).append(".pem"))
      .string();
}

Result<std::unique_ptr<crypto::Signer>> OpenOrCreateManagedKey(const std::string& data_dir,
                                                               std::string_view enclave_name) {
  ASSIGN_OR_RETURN(std::string path, ManagedKeyPath(data_dir, enclave_name));
  const std::string dir = std::filesystem::path(path).parent_path().string();
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return sys::IoError("managed key: mkdir " + dir, errno);
  }
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) {
    return sys::IoError("managed key: " + dir, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error(Code::kFailedPrecondition, "managed key: " + dir + " is not a directory");
  }
  if ((st.st_mode & 077) != 0 && chmod(dir.c_str(), 0700) != 0) {
    return sys::IoError("managed key: chmod " + dir, errno);
  }
  if (auto created = NewFileKey(path, crypto::SignatureAlgorithm::kEd25519); !created) {
    // Another request may have created it first; then we open that one.
    if (created.error().code() != Code::kAlreadyExists) {
      return std::move(created).error().WithContext("managed key");
    }
  }
  PassphraseSource none;
  none.prompt = Prompt::kNever;
  return OpenKeyFile(path, none, std::string("managed key of ").append(enclave_name));
}

}  // namespace enclavia::control
