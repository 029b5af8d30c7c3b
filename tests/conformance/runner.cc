// SPDX-License-Identifier: Apache-2.0
#include "conformance/runner.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>
#include <vector>

#include "client/trust.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/channel/handshake.h"
#include "lib/channel/trust.h"
#include "lib/config/trust_file.h"
#include "lib/crypto/x25519.h"

namespace enclavia::conformance {
namespace {

using nlohmann::json;

Error Broken(const std::string& what) {
  return Error(Code::kInvalidArgument, std::string("conformance vector: ").append(what));
}

// ScratchDir is a fresh folder under $TMPDIR (or /tmp), removed with its contents.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp")
                              .append("/enclavia-conformance-XXXXXX");
    if (mkdtemp(pattern.data()) != nullptr) {
      path_ = pattern;
    }
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    if (!path_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(path_, ignored);
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Result<Bytes> Hex(const json& c, const char* field) {
  if (!c.contains(field) || !c[field].is_string()) {
    return Broken(std::string("no hex field \"").append(field).append("\""));
  }
  return HexDecode(c[field].get<std::string>());
}

Result<std::optional<Bytes>> OptionalHex(const json& c, const char* field) {
  if (!c.contains(field) || c[field].is_null()) {
    return std::optional<Bytes>();
  }
  ASSIGN_OR_RETURN(Bytes bytes, Hex(c, field));
  return std::optional<Bytes>(std::move(bytes));
}

Result<Bytes> Document(const json& c, const std::string& fixtures_dir) {
  if (!c.contains("document_fixture")) {
    return Hex(c, "document");
  }
  std::string name = c["document_fixture"].get<std::string>();
  ASSIGN_OR_RETURN(Bytes raw, ReadFile(fixtures_dir + "/nitro/" + name, 1 << 20));
  if (name.ends_with(".b64")) {
    std::string text;
    for (uint8_t ch : raw) {
      if (ch != '\n' && ch != '\r' && ch != ' ' && ch != '\t') {
        text.push_back(static_cast<char>(ch));
      }
    }
    return Base64Decode(text);
  }
  return raw;
}

Outcome Verdict(const Error& error) {
  return {std::string(CodeName(error.code())), error.message(), {}};
}

Outcome Accepted(const attestation::VerifiedAttestation& verified) {
  Outcome out{"ok", "", {}};
  auto it = verified.document().pcrs.find(0);
  if (it != verified.document().pcrs.end()) {
    out.pcr0 = it->second;
  }
  return out;
}

}  // namespace

bool NeedsFixture(const json& c) { return c.contains("document_fixture"); }

Result<Outcome> RunCase(const json& c, const std::string& fixtures_dir) {
  if (!c.contains("kind") || !c.contains("trust") || !c.contains("at_ms")) {
    return Broken("a case needs kind, trust and at_ms");
  }
  const std::string kind = c["kind"].get<std::string>();
  if (kind != "attestation" && kind != "handshake") {
    return Broken(std::string("unknown kind ").append(kind));
  }

  // The trust file's folder, holding its root PEM files.
  ScratchDir dir;
  if (dir.path().empty()) {
    return Error(Code::kIo, "conformance: mkdtemp failed");
  }
  if (c.contains("files")) {
    for (const auto& [name, text] : c["files"].items()) {
      if (name.find('/') != std::string::npos) {
        return Broken(std::string("file name with a slash: ").append(name));
      }
      std::ofstream out(dir.path() + "/" + name, std::ios::binary);
      out << text.get<std::string>();
      if (!out.flush()) {
        return Error(Code::kIo, std::string("conformance: cannot write ").append(name));
      }
    }
  }

  auto trust_file = config::ParseTrustFile(c["trust"].get<std::string>());
  if (!trust_file) {
    return Verdict(trust_file.error());
  }
  auto parsed = client::PolicyFromTrustFile(*trust_file, dir.path());
  if (!parsed) {
    return Verdict(parsed.error());
  }
  auto policy = std::make_shared<channel::TrustPolicy>(std::move(parsed).value());
  const SystemTime at = FromUnixMillis(c["at_ms"].get<uint64_t>());
  policy->clock = [at] { return at; };

  if (kind == "attestation") {
    ASSIGN_OR_RETURN(Bytes document, Document(c, fixtures_dir));
    std::vector<Bytes> chain;
    if (c.contains("chain")) {
      for (const auto& entry : c["chain"]) {
        ASSIGN_OR_RETURN(Bytes bytes, HexDecode(entry.get<std::string>()));
        chain.push_back(std::move(bytes));
      }
    }
    channel::DocumentChecks checks;
    ASSIGN_OR_RETURN(checks.public_key, OptionalHex(c, "public_key"));
    ASSIGN_OR_RETURN(checks.nonce, OptionalHex(c, "nonce"));
    auto verified = channel::VerifyDocument(*policy, document, chain, checks);
    if (!verified) {
      return Verdict(verified.error());
    }
    return Accepted(*verified);
  }

  ASSIGN_OR_RETURN(Bytes ephemeral, Hex(c, "ephemeral"));
  ASSIGN_OR_RETURN(Bytes message2, Hex(c, "message2"));
  if (ephemeral.size() != crypto::kX25519KeySize) {
    return Broken("ephemeral is not 32 bytes");
  }
  auto keypair = crypto::X25519Keypair::FromPrivate(
      std::span<const uint8_t, crypto::kX25519KeySize>(ephemeral.data(), crypto::kX25519KeySize));
  auto client = channel::ClientHandshake::CreateWithEphemeral(policy, keypair);
  if (!client) {
    return Verdict(client.error());
  }
  auto message1 = client->Start();
  if (!message1) {
    return Verdict(message1.error());
  }
  auto message3 = client->ReadServerHello(message2);
  if (!message3) {
    return Verdict(message3.error());
  }
  auto established = std::move(*client).Finish();
  if (!established) {
    return Verdict(established.error());
  }
  return Accepted(established->attestation);
}

}  // namespace enclavia::conformance
