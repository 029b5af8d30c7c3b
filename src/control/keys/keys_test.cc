// SPDX-License-Identifier: Apache-2.0
#include "control/keys/keys.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "control/keys/pkcs11.h"
#include "lib/base/encoding.h"
#include "lib/cose/sign1.h"
#include "lib/crypto/hash.h"
#include "testing/temp_dir.h"

namespace enclavia::control {
namespace {

using crypto::SignatureAlgorithm;

// ScopedEnv sets (or unsets, with nullopt) an environment variable for one test and restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name); old != nullptr) {
      old_ = old;
    }
    if (value.has_value()) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (old_.has_value()) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

PassphraseSource NoPrompt(std::string file = "") {
  PassphraseSource s;
  s.file = std::move(file);
  s.prompt = Prompt::kNever;
  return s;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

unsigned ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

// The environment a key-file test expects: no passphrase or override set by the caller's shell.
class FileKeyTest : public ::testing::Test {
 protected:
  ScopedEnv no_pass_{kPassphraseEnv, std::nullopt};
  ScopedEnv no_insecure_{kAllowInsecureKeyEnv, std::nullopt};
  testing::TempDir dir_{"control_keys"};
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
};

void ExpectSignsAndVerifies(const crypto::Signer& signer, const crypto::PublicKey& expected) {
  EXPECT_EQ(signer.public_key().ToSpki(), expected.ToSpki());
  const Bytes message = ToBytes("genesis of enclave demo");
  auto sig = signer.Sign(message);
  ASSERT_TRUE(sig) << sig.error().message();
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(expected.Verify(message, *sig));
  EXPECT_FALSE(expected.Verify(ToBytes("another message"), *sig));
}

void ExpectCoseRoundTrip(const crypto::Signer& signer) {
  const Bytes payload = ToBytes("upgrade request payload");
  auto signed_msg = cose::CreateSign1(payload, signer, cose::Tagging::kTagged);
  ASSERT_TRUE(signed_msg) << signed_msg.error().message();
  auto parsed = cose::ParseSign1(*signed_msg);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->payload, payload);
  EXPECT_EQ(parsed->algorithm, cose::AlgorithmForKey(signer.algorithm()));
  EXPECT_TRUE(cose::VerifySign1(*parsed, signer.public_key()));
  auto other = crypto::PrivateKey::Generate(signer.algorithm()).public_key();
  EXPECT_FALSE(cose::VerifySign1(*parsed, other));
}

TEST_F(FileKeyTest, Ed25519KeyFileSignsAndVerifies) {
  auto pub = NewFileKey(Path("ctl.pem"), SignatureAlgorithm::kEd25519);
  ASSERT_TRUE(pub) << pub.error().message();
  EXPECT_EQ(pub->algorithm(), SignatureAlgorithm::kEd25519);
  EXPECT_EQ(ModeOf(Path("ctl.pem")), 0600u);
  auto signer = OpenControlKey(Path("ctl.pem"), NoPrompt());
  ASSERT_TRUE(signer) << signer.error().message();
  EXPECT_EQ((*signer)->algorithm(), SignatureAlgorithm::kEd25519);
  EXPECT_NE((*signer)->Describe().find("ctl.pem"), std::string::npos);
  ExpectSignsAndVerifies(**signer, *pub);
  ExpectCoseRoundTrip(**signer);
}

TEST_F(FileKeyTest, P256KeyFileSignsAndVerifies) {
  auto pub = NewFileKey(Path("p256.pem"), SignatureAlgorithm::kEcdsaP256Sha256);
  ASSERT_TRUE(pub) << pub.error().message();
  auto signer = OpenControlKey(Path("p256.pem"), NoPrompt());
  ASSERT_TRUE(signer) << signer.error().message();
  EXPECT_EQ((*signer)->algorithm(), SignatureAlgorithm::kEcdsaP256Sha256);
  ExpectSignsAndVerifies(**signer, *pub);
  ExpectCoseRoundTrip(**signer);
}

TEST_F(FileKeyTest, NewFileKeyRefusesToOverwrite) {
  ASSERT_TRUE(NewFileKey(Path("k.pem"), SignatureAlgorithm::kEd25519));
  auto before = OpenControlKey(Path("k.pem"), NoPrompt());
  ASSERT_TRUE(before);
  auto again = NewFileKey(Path("k.pem"), SignatureAlgorithm::kEcdsaP256Sha256);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Code::kAlreadyExists);
  EXPECT_NE(again.error().message().find("not overwriting"), std::string::npos);
  auto after = OpenControlKey(Path("k.pem"), NoPrompt());
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)->public_key().ToSpki(), (*before)->public_key().ToSpki());
}

TEST_F(FileKeyTest, NewFileKeyRefusesP384) {
  auto made = NewFileKey(Path("k.pem"), SignatureAlgorithm::kEcdsaP384Sha384);
  ASSERT_FALSE(made);
  EXPECT_FALSE(std::filesystem::exists(Path("k.pem")));
}

TEST_F(FileKeyTest, EncryptedKeyOpensWithPassphraseFile) {
  auto pub = NewFileKey(Path("enc.pem"), SignatureAlgorithm::kEcdsaP256Sha256, "correct horse");
  ASSERT_TRUE(pub) << pub.error().message();
  std::ifstream in(Path("enc.pem"));
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(pem.find("ENCRYPTED PRIVATE KEY"), std::string::npos);
  WriteText(Path("pass"), "correct horse\n");
  auto signer = OpenControlKey(Path("enc.pem"), NoPrompt(Path("pass")));
  ASSERT_TRUE(signer) << signer.error().message();
  ExpectSignsAndVerifies(**signer, *pub);
}

TEST_F(FileKeyTest, EncryptedKeyOpensWithPassphraseFromEnvironment) {
  auto pub = NewFileKey(Path("enc.pem"), SignatureAlgorithm::kEd25519, "s3cret");
  ASSERT_TRUE(pub);
  ScopedEnv pass(kPassphraseEnv, "s3cret");
  auto signer = OpenControlKey(Path("enc.pem"), NoPrompt());
  ASSERT_TRUE(signer) << signer.error().message();
  ExpectSignsAndVerifies(**signer, *pub);
}

TEST_F(FileKeyTest, WrongPassphraseIsOneClearLine) {
  ASSERT_TRUE(NewFileKey(Path("enc.pem"), SignatureAlgorithm::kEd25519, "right"));
  WriteText(Path("pass"), "wrong\n");
  auto signer = OpenControlKey(Path("enc.pem"), NoPrompt(Path("pass")));
  ASSERT_FALSE(signer);
  EXPECT_EQ(signer.error().code(), Code::kVerifyFailed);
  const std::string& msg = signer.error().message();
  EXPECT_NE(msg.find("wrong passphrase"), std::string::npos) << msg;
  EXPECT_NE(msg.find("enc.pem"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_EQ(msg.find("wrong\n"), std::string::npos);
}

TEST_F(FileKeyTest, EncryptedKeyWithoutPassphraseSaysWhatToSet) {
  ASSERT_TRUE(NewFileKey(Path("enc.pem"), SignatureAlgorithm::kEd25519, "pw"));
  auto signer = OpenControlKey(Path("enc.pem"), NoPrompt());
  ASSERT_FALSE(signer);
  EXPECT_NE(signer.error().message().find("is encrypted"), std::string::npos);
  EXPECT_NE(signer.error().message().find(kPassphraseEnv), std::string::npos);
}

TEST_F(FileKeyTest, RefusesGroupOrWorldReadableKey) {
  auto pub = NewFileKey(Path("k.pem"), SignatureAlgorithm::kEd25519);
  ASSERT_TRUE(pub);
  ASSERT_EQ(::chmod(Path("k.pem").c_str(), 0644), 0);
  auto refused = OpenControlKey(Path("k.pem"), NoPrompt());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.error().message().find("mode 0644"), std::string::npos)
      << refused.error().message();
  EXPECT_NE(refused.error().message().find("chmod 600"), std::string::npos);
  ASSERT_EQ(::chmod(Path("k.pem").c_str(), 0640), 0);
  EXPECT_FALSE(OpenControlKey(Path("k.pem"), NoPrompt()));

  ScopedEnv allow(kAllowInsecureKeyEnv, "1");
  auto accepted = OpenControlKey(Path("k.pem"), NoPrompt());
  ASSERT_TRUE(accepted) << accepted.error().message();
  ExpectSignsAndVerifies(**accepted, *pub);
}

TEST_F(FileKeyTest, RefusesP384AndPublicKeyAndMissingFiles) {
  auto p384 = crypto::PrivateKey::Generate(SignatureAlgorithm::kEcdsaP384Sha384);
  auto pem = p384.ToPem();
  ASSERT_TRUE(pem);
  WriteText(Path("p384.pem"), std::string(AsString(pem->Expose())));
  ASSERT_EQ(::chmod(Path("p384.pem").c_str(), 0600), 0);
  auto refused = OpenControlKey(Path("p384.pem"), NoPrompt());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("p384"), std::string::npos);

  WriteText(Path("pub.pem"), p384.public_key().ToPem());
  ASSERT_EQ(::chmod(Path("pub.pem").c_str(), 0600), 0);
  auto pub = OpenControlKey(Path("pub.pem"), NoPrompt());
  ASSERT_FALSE(pub);
  EXPECT_NE(pub.error().message().find("public key"), std::string::npos);

  auto missing = OpenControlKey(Path("absent.pem"), NoPrompt());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("absent.pem"), std::string::npos);
  EXPECT_FALSE(OpenControlKey("", NoPrompt()));
}

TEST(KeyTypeTest, ParsesTheTwoControlKeyTypes) {
  EXPECT_EQ(*ParseKeyType("ed25519"), SignatureAlgorithm::kEd25519);
  EXPECT_EQ(*ParseKeyType("p256"), SignatureAlgorithm::kEcdsaP256Sha256);
  EXPECT_FALSE(ParseKeyType("p384"));
  EXPECT_FALSE(ParseKeyType("rsa"));
}

TEST(DescribeTest, FingerprintIsSha256OfSpki) {
  auto key = crypto::PrivateKey::Generate(SignatureAlgorithm::kEcdsaP256Sha256).public_key();
  KeyDescription d = DescribePublicKey(key);
  EXPECT_EQ(d.algorithm, "p256");
  EXPECT_EQ(d.spki, key.ToSpki());
  EXPECT_EQ(d.fingerprint, HexEncode(crypto::Sha256(key.ToSpki())));
  EXPECT_EQ(d.fingerprint.size(), 64u);
  EXPECT_EQ(*HexDecode(d.spki_hex), d.spki);
  EXPECT_EQ(*Base64Decode(d.spki_base64), d.spki);
  auto back = crypto::PublicKey::FromSpki(d.spki);
  ASSERT_TRUE(back);
  EXPECT_EQ(DescribePublicKey(*back).fingerprint, d.fingerprint);
  EXPECT_EQ(
      DescribePublicKey(crypto::PrivateKey::Generate(SignatureAlgorithm::kEd25519).public_key())
          .algorithm,
      "ed25519");
}

TEST(ManagedKeyTest, CreatesOnceThenReopensTheSameKey) {
  ScopedEnv no_insecure(kAllowInsecureKeyEnv, std::nullopt);
  testing::TempDir dir("managed_keys");
  auto path = ManagedKeyPath(dir.path(), "demo");
  ASSERT_TRUE(path);
  EXPECT_EQ(*path, dir.path() + "/managed-keys/demo.pem");
  auto first = OpenOrCreateManagedKey(dir.path(), "demo");
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(ModeOf(*path), 0600u);
  EXPECT_EQ(ModeOf(dir.path() + "/managed-keys"), 0700u);
  EXPECT_NE((*first)->Describe().find("managed"), std::string::npos);
  auto second = OpenOrCreateManagedKey(dir.path(), "demo");
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)->public_key().ToSpki(), (*first)->public_key().ToSpki());
  auto other = OpenOrCreateManagedKey(dir.path(), "other");
  ASSERT_TRUE(other);
  EXPECT_NE((*other)->public_key().ToSpki(), (*first)->public_key().ToSpki());
  ExpectSignsAndVerifies(**second, (*first)->public_key());
}

TEST(ManagedKeyTest, RefusesNamesThatCouldEscapeTheDirectory) {
  EXPECT_FALSE(ManagedKeyPath("/data", "../etc"));
  EXPECT_FALSE(ManagedKeyPath("/data", "a/b"));
  EXPECT_FALSE(ManagedKeyPath("/data", ""));
  EXPECT_FALSE(ManagedKeyPath("", "demo"));
}

TEST(Pkcs11UriTest, ParsesPathAndQueryAttributes) {
  auto uri = ParsePkcs11Uri(
      "pkcs11:token=My%20Token;object=ctl;id=%01%02;serial=abc;slot-id=3;type=private"
      "?pin-value=12%2534&module-path=/usr/lib/x.so");
  ASSERT_TRUE(uri) << uri.error().message();
  EXPECT_EQ(uri->token, "My Token");
  EXPECT_EQ(uri->object, "ctl");
  ASSERT_TRUE(uri->id.has_value());
  EXPECT_EQ(*uri->id, (Bytes{0x01, 0x02}));
  EXPECT_EQ(uri->serial, "abc");
  ASSERT_TRUE(uri->slot_id.has_value());
  EXPECT_EQ(*uri->slot_id, 3u);
  ASSERT_TRUE(uri->pin_value.has_value());
  EXPECT_EQ(AsString(uri->pin_value->Expose()), "12%34");
  EXPECT_EQ(uri->module_path, "/usr/lib/x.so");
  auto resolved = ResolvePkcs11Module(*uri);
  ASSERT_TRUE(resolved);
  EXPECT_EQ(*resolved, "/usr/lib/x.so");

  auto src = ParsePkcs11Uri("pkcs11:object=k?pin-source=file:/run/pin");
  ASSERT_TRUE(src);
  EXPECT_EQ(src->pin_source, "/run/pin");
}

TEST(Pkcs11UriTest, RefusesBadUrisWithoutEchoingThePin) {
  EXPECT_FALSE(ParsePkcs11Uri("pkcs12:token=x"));
  EXPECT_FALSE(ParsePkcs11Uri("pkcs11:token=x;token=y"));
  EXPECT_FALSE(ParsePkcs11Uri("pkcs11:object=%4"));
  EXPECT_FALSE(ParsePkcs11Uri("pkcs11:object=%zz"));
  EXPECT_FALSE(ParsePkcs11Uri("pkcs11:type=public"));
  EXPECT_FALSE(ParsePkcs11Uri("pkcs11:slot-id=-1"));
  EXPECT_FALSE(ParsePkcs11Uri("pkcs11:object=k?pin-source=|/bin/echo"));
  EXPECT_FALSE(ParsePkcs11Uri("pkcs11:object=k?module-name=../evil"));
  auto unknown = ParsePkcs11Uri("pkcs11:colour=blue?pin-value=987654");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("colour"), std::string::npos);
  auto bad_query = ParsePkcs11Uri("pkcs11:object=k?pin-value=987654&foo=1");
  ASSERT_FALSE(bad_query);
  EXPECT_EQ(bad_query.error().message().find("987654"), std::string::npos);
  EXPECT_TRUE(ParsePkcs11Uri("pkcs11:x-vendor=1;object=k"));
}

TEST(Pkcs11Test, ReturnNamesAreTheSpecNames) {
  EXPECT_EQ(Pkcs11ReturnName(0xa0), "CKR_PIN_INCORRECT");
  EXPECT_EQ(Pkcs11ReturnName(0xe0), "CKR_TOKEN_NOT_PRESENT");
  EXPECT_EQ(Pkcs11ReturnName(0x12345), "CKR_0x12345");
}

TEST(Pkcs11Test, MissingModuleIsOneLine) {
  auto key = OpenControlKey("pkcs11:token=t;object=k?module-path=/nonexistent/lib.so&pin-value=1",
                            NoPrompt());
  ASSERT_FALSE(key);
  EXPECT_NE(key.error().message().find("cannot load module /nonexistent/lib.so"), std::string::npos)
      << key.error().message();
}

// SoftHsmTest runs against a real SoftHSM2 token in a private token directory.
class SoftHsmTest : public ::testing::Test {
 protected:
  static constexpr const char* kToken = "ctl-token";
  static constexpr const char* kPin = "123456";

  void SetUp() override {
    for (const char* candidate :
         {"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"}) {
      if (std::filesystem::exists(candidate)) {
        module_ = candidate;
        break;
      }
    }
    if (module_.empty() || std::system("command -v softhsm2-util >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "SoftHSM2 is not installed (Debian package softhsm2)";
    }
    if (std::system("command -v pkcs11-tool >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "pkcs11-tool is not installed (Debian package opensc)";
    }
    const std::string conf = dir_.path() + "/softhsm2.conf";
    std::filesystem::create_directory(dir_.path() + "/tokens");
    WriteText(conf, "directories.tokendir = " + dir_.path() +
                        "/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
                        "slots.removable = false\n");
    conf_env_.emplace("SOFTHSM2_CONF", conf);
    pin_env_.emplace(kPkcs11PinEnv, std::nullopt);
    module_env_.emplace(kPkcs11ModuleEnv, std::nullopt);
    Run(std::string("softhsm2-util --init-token --free --label ") + kToken + " --pin " + kPin +
        " --so-pin 87654321");
    Run(Tool() + " --keypairgen --key-type EC:prime256v1 --label ctl --id 01");
    Run(Tool() + " --keypairgen --key-type EC:secp384r1 --label big --id 02");
  }

  std::string Tool() const {
    return "pkcs11-tool --module " + module_ + " --token-label " + kToken + " --login --pin " +
           kPin;
  }

  void Run(const std::string& command) {
    const std::string log = dir_.path() + "/cmd.log";
    int rc = std::system((command + " >" + log + " 2>&1").c_str());
    std::ifstream in(log);
    std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_EQ(rc, 0) << command << "\n" << output;
  }

  std::string Uri(const std::string& path, const std::string& query) const {
    std::string uri = "pkcs11:" + path + "?module-path=" + module_;
    if (!query.empty()) {
      uri.append("&").append(query);
    }
    return uri;
  }

  testing::TempDir dir_{"softhsm"};
  std::string module_;
  std::optional<ScopedEnv> conf_env_;
  std::optional<ScopedEnv> pin_env_;
  std::optional<ScopedEnv> module_env_;
};

TEST_F(SoftHsmTest, P256TokenKeySignsAndVerifies) {
  auto signer = OpenControlKey(Uri("token=ctl-token;object=ctl", "pin-value=123456"), NoPrompt());
  ASSERT_TRUE(signer) << signer.error().message();
  EXPECT_EQ((*signer)->algorithm(), SignatureAlgorithm::kEcdsaP256Sha256);
  EXPECT_NE((*signer)->Describe().find("ctl-token"), std::string::npos);
  EXPECT_EQ((*signer)->Describe().find("123456"), std::string::npos);
  const crypto::PublicKey pub = (*signer)->public_key();
  ExpectSignsAndVerifies(**signer, pub);
  EXPECT_EQ(DescribePublicKey(pub).algorithm, "p256");
}

TEST_F(SoftHsmTest, CoseSign1SignedOnTheTokenVerifies) {
  auto signer = OpenControlKey(Uri("token=ctl-token;object=ctl", "pin-value=123456"), NoPrompt());
  ASSERT_TRUE(signer) << signer.error().message();
  ExpectCoseRoundTrip(**signer);
}

TEST_F(SoftHsmTest, SelectsTheKeyByIdAndTakesThePinFromEnvOrFile) {
  auto by_label = OpenControlKey(Uri("token=ctl-token;object=ctl", "pin-value=123456"), NoPrompt());
  ASSERT_TRUE(by_label) << by_label.error().message();
  const Bytes spki = (*by_label)->public_key().ToSpki();
  by_label->reset();
  {
    ScopedEnv pin(kPkcs11PinEnv, kPin);
    auto by_id = OpenControlKey(Uri("token=ctl-token;id=%01", ""), NoPrompt());
    ASSERT_TRUE(by_id) << by_id.error().message();
    EXPECT_EQ((*by_id)->public_key().ToSpki(), spki);
  }
  const std::string pin_file = dir_.path() + "/pin";
  WriteText(pin_file, std::string(kPin) + "\n");
  auto from_file =
      OpenControlKey(Uri("token=ctl-token;object=ctl", "pin-source=file:" + pin_file), NoPrompt());
  ASSERT_TRUE(from_file) << from_file.error().message();
  EXPECT_EQ((*from_file)->public_key().ToSpki(), spki);
  // The default module: ENCLAVIA_PKCS11_MODULE.
  from_file->reset();
  ScopedEnv module(kPkcs11ModuleEnv, module_);
  auto by_env = OpenControlKey("pkcs11:token=ctl-token;object=ctl?pin-value=123456", NoPrompt());
  ASSERT_TRUE(by_env) << by_env.error().message();
  EXPECT_EQ((*by_env)->public_key().ToSpki(), spki);
}

TEST_F(SoftHsmTest, WrongPinNamesTheReturnCode) {
  auto signer = OpenControlKey(Uri("token=ctl-token;object=ctl", "pin-value=999999"), NoPrompt());
  ASSERT_FALSE(signer);
  EXPECT_EQ(signer.error().message(), "pkcs11: C_Login: CKR_PIN_INCORRECT");
  EXPECT_EQ(signer.error().code(), Code::kVerifyFailed);
}

TEST_F(SoftHsmTest, MissingPinSaysWhereToPutIt) {
  auto signer = OpenControlKey(Uri("token=ctl-token;object=ctl", ""), NoPrompt());
  ASSERT_FALSE(signer);
  EXPECT_NE(signer.error().message().find("needs a PIN"), std::string::npos)
      << signer.error().message();
}

TEST_F(SoftHsmTest, MissingObjectOrTokenIsClear) {
  auto no_key = OpenControlKey(Uri("token=ctl-token;object=nope", "pin-value=123456"), NoPrompt());
  ASSERT_FALSE(no_key);
  EXPECT_EQ(no_key.error().code(), Code::kNotFound);
  EXPECT_NE(no_key.error().message().find("no private key object=nope"), std::string::npos)
      << no_key.error().message();
  auto no_token = OpenControlKey(Uri("token=other;object=ctl", "pin-value=123456"), NoPrompt());
  ASSERT_FALSE(no_token);
  EXPECT_NE(no_token.error().message().find("no token 'other'"), std::string::npos)
      << no_token.error().message();
  EXPECT_NE(no_token.error().message().find("'ctl-token'"), std::string::npos);
  // Both keys match an empty selection: the URI must name one.
  auto ambiguous = OpenControlKey(Uri("token=ctl-token", "pin-value=123456"), NoPrompt());
  ASSERT_FALSE(ambiguous);
  EXPECT_NE(ambiguous.error().message().find("several private keys"), std::string::npos);
}

TEST_F(SoftHsmTest, RefusesAKeyOnAnotherCurve) {
  auto signer = OpenControlKey(Uri("token=ctl-token;object=big", "pin-value=123456"), NoPrompt());
  ASSERT_FALSE(signer);
  EXPECT_EQ(signer.error().code(), Code::kUnsupported);
  EXPECT_NE(signer.error().message().find("P-384"), std::string::npos) << signer.error().message();
  EXPECT_NE(signer.error().message().find("must be P-256"), std::string::npos);
}

TEST_F(SoftHsmTest, AlwaysAuthenticateKeyLogsInForEverySignature) {
  Run(Tool() + " --keypairgen --key-type EC:prime256v1 --label always --id 03 --always-auth");
  auto signer =
      OpenControlKey(Uri("token=ctl-token;object=always", "pin-value=123456"), NoPrompt());
  ASSERT_TRUE(signer) << signer.error().message();
  const crypto::PublicKey pub = (*signer)->public_key();
  ExpectSignsAndVerifies(**signer, pub);
  ExpectSignsAndVerifies(**signer, pub);  // A second signature needs a second context login.
}

}  // namespace
}  // namespace enclavia::control
