// SPDX-License-Identifier: Apache-2.0
#include "cli/upgrade_cmds.h"

#include <chrono>
#include <filesystem>
#include <memory>
#include <ostream>
#include <utility>

#include <nlohmann/json.hpp>

#include "cli/trust.h"
#include "client/trust.h"
#include "control/keys/keys.h"
#include "lib/base/encoding.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/signer.h"
#include "lib/eif/reader.h"
#include "lib/http/http.h"
#include "lib/net/address.h"
#include "lib/upgrade/chain.h"

namespace enclavia::cli {
namespace {

// ControlKeyFingerprint is what `enclavia keys show` prints for a key: SHA-256 of its SPKI DER.
std::string ControlKeyFingerprint(const Bytes& spki) {
  return HexEncode(crypto::Sha256(spki));
}

namespace fs = std::filesystem;
using json = nlohmann::json;

uint64_t NowUnix() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

int Fail(std::ostream& err, std::string_view command, const Error& error) {
  err << "enclavia " << command << ": " << error.message() << "\n";
  return 1;
}

std::string Str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

uint64_t Num(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number_unsigned() ? j[key].get<uint64_t>()
                                                                         : 0;
}

std::string TimeText(uint64_t unix_seconds) {
  return FormatRfc3339(std::chrono::system_clock::time_point(
      std::chrono::seconds(static_cast<int64_t>(unix_seconds))));
}

std::string Short(const std::string& hex) { return hex.size() > 16 ? hex.substr(0, 16) + "…" : hex; }

// ImagePcrs: the image's PCRs 0, 1, 2 (8 when signed), zeros in debug mode (as Nitro attests).
Result<upgrade::PcrMap> ImagePcrs(const std::string& file, bool debug) {
  ASSIGN_OR_RETURN(eif::EifInfo info, eif::ReadEif(file));
  upgrade::PcrMap pcrs = {{0, info.measurements.pcr0},
                          {1, info.measurements.pcr1},
                          {2, info.measurements.pcr2}};
  if (info.measurements.pcr8) {
    pcrs[8] = *info.measurements.pcr8;
  }
  if (debug) {
    for (auto& [index, value] : pcrs) {
      value.assign(value.size(), 0);
    }
  }
  return pcrs;
}

Result<std::unique_ptr<crypto::Signer>> OpenKey(const std::string& spec,
                                                const std::string& passphrase_file) {
  control::PassphraseSource source;
  source.file = passphrase_file;
  return control::OpenControlKey(spec, source);
}

Result<upgrade::Digest> DigestField(const json& status, const char* key) {
  auto bytes = HexDecode(Str(status, key));
  if (!bytes || bytes->size() != 32) {
    return Error(Code::kFailedPrecondition,
                 std::string("the enclave's upgrade status has no ") + key +
                     " (was it deployed with --control-key or --managed-key?)");
  }
  upgrade::Digest out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

bool IsUrl(const std::string& target) { return target.find("://") != std::string::npos; }

// FetchPublic GETs `path` from an enclave's public port, named by its URL (ws://HOST:PORT/ or
// http://HOST:PORT/): no token, what anyone can read.
Result<json> FetchPublic(const std::string& url, const std::string& path) {
  std::string rest = url.substr(url.find("://") + 3);
  std::string hostport = rest.substr(0, rest.find('/'));
  ASSIGN_OR_RETURN(net::Address address, net::ParseAddress("tcp:" + hostport));
  http::Request request;
  request.method = "GET";
  request.target = path;
  ASSIGN_OR_RETURN(http::Response response, http::Fetch(address, request));
  json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (response.status != 200) {
    return Error(Code::kUnavailable, url + path + ": HTTP " + std::to_string(response.status) +
                                         (body.is_object() ? " " + Str(body, "error") : ""));
  }
  if (!body.is_object()) {
    return Error(Code::kMalformed, url + path + ": not a JSON object");
  }
  return body;
}

Result<json> Status(const std::string& data_dir, const std::string& target) {
  if (IsUrl(target)) {
    return FetchPublic(target, "/.well-known/enclavia/upgrade");
  }
  return ControlJson(data_dir, "GET", "/v1/enclaves/" + target + "/upgrade");
}

std::string PcrLine(const json& pcrs) {
  std::string out;
  for (const char* index : {"0", "1", "2", "8"}) {
    if (pcrs.is_object() && pcrs.contains(index) && pcrs[index].is_string()) {
      out += std::string("  PCR") + index + " " + pcrs[index].get<std::string>() + "\n";
    }
  }
  return out;
}

}  // namespace

Result<uint64_t> ParseDuration(std::string_view text) {
  if (text.empty() || text.size() > 12) {
    return Error(Code::kInvalidArgument, "a duration is a number with s, m, h or d (e.g. 72h)");
  }
  uint64_t unit = 1;
  char last = text.back();
  if (last == 's' || last == 'm' || last == 'h' || last == 'd') {
    unit = last == 's' ? 1 : last == 'm' ? 60 : last == 'h' ? 3600 : 86400;
    text.remove_suffix(1);
  }
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) {
    return Error(Code::kInvalidArgument, "a duration is a number with s, m, h or d (e.g. 72h)");
  }
  return std::stoull(std::string(text)) * unit;
}

Result<std::string> DeployGenesis(const DeployFlags& flags) {
  ASSIGN_OR_RETURN(uint64_t window, ParseDuration(flags.staging_window));
  std::unique_ptr<crypto::Signer> signer;
  if (flags.immutable) {
    // Nobody keeps this key: the genesis declares the enclave un-upgradable, for ever.
    signer = std::make_unique<crypto::MemorySigner>(
        crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519), "throwaway key");
  } else {
    ASSIGN_OR_RETURN(signer, OpenKey(flags.control_key, flags.passphrase_file));
  }
  upgrade::Genesis genesis;
  genesis.enclave_id = flags.name;
  ASSIGN_OR_RETURN(genesis.first_pcrs, ImagePcrs(flags.file, flags.debug));
  genesis.control_keys = {signer->public_key().ToSpki()};
  genesis.upgradable = !flags.immutable;
  genesis.min_staging_window_s = flags.immutable ? 0 : window;
  genesis.created_unix = NowUnix();
  ASSIGN_OR_RETURN(Bytes entry, upgrade::SignGenesis(genesis, *signer));
  return Base64Encode(entry);
}

int RunUpgradeStage(const UpgradeFlags& flags, std::ostream& out, std::ostream& err) {
  if (flags.control_key.empty() == !flags.managed_key) {
    err << "enclavia upgrade stage: use --control-key KEY (or --managed-key)\n";
    return 2;
  }
  auto after = ParseDuration(flags.after);
  if (!after) {
    return Fail(err, "upgrade stage", after.error());
  }
  auto enclave = ControlJson(flags.data_dir, "GET", "/v1/enclaves/" + flags.name);
  if (!enclave) {
    return Fail(err, "upgrade stage", enclave.error());
  }
  bool debug = enclave->is_object() && enclave->value("debug", false);
  auto image_id = ControlUploadImage(flags.data_dir, flags.image, flags.name);
  if (!image_id) {
    return Fail(err, "upgrade stage", image_id.error());
  }
  json body = {{"image", *image_id}};
  std::string id = flags.id.empty() ? "u" + std::to_string(NowUnix()) : flags.id;
  if (flags.managed_key) {
    body["managed_key"] = true;
    body["after_s"] = *after;
    body["id"] = id;
  } else {
    auto status = Status(flags.data_dir, flags.name);
    if (!status) {
      return Fail(err, "upgrade stage", status.error());
    }
    auto genesis = DigestField(*status, "genesis");
    auto head = DigestField(*status, "head");
    auto pcrs = ImagePcrs(flags.image, debug);
    auto signer = OpenKey(flags.control_key, flags.passphrase_file);
    for (const Error* e : {genesis ? nullptr : &genesis.error(), head ? nullptr : &head.error(),
                           pcrs ? nullptr : &pcrs.error(), signer ? nullptr : &signer.error()}) {
      if (e != nullptr) {
        return Fail(err, "upgrade stage", *e);
      }
    }
    upgrade::UpgradeRequest request;
    request.genesis = *genesis;
    request.previous_head = *head;
    request.new_pcrs = std::move(*pcrs);
    request.not_before_unix = NowUnix() + *after;
    request.id = id;
    auto entry = upgrade::SignRequest(request, **signer);
    if (!entry) {
      return Fail(err, "upgrade stage", entry.error());
    }
    body["request"] = Base64Encode(*entry);
  }
  auto staged = ControlJson(flags.data_dir, "POST", "/v1/enclaves/" + flags.name + "/upgrade/stage",
                            body.dump());
  if (!staged) {
    return Fail(err, "upgrade stage", staged.error());
  }
  if (flags.json) {
    out << staged->dump(2) << "\n";
    return 0;
  }
  uint64_t due = Num(*staged, "due_at");
  out << "staged:  " << Str(*staged, "id") << " (request " << Short(Str(*staged, "request"))
      << ")\n"
      << "new PCRs:\n"
      << PcrLine((*staged)["new_pcrs"]) << "due:     " << TimeText(due) << " (in "
      << Num(*staged, "seconds_left") << " s, on the enclave's clock)\n"
      << "public:  enclavia upgrade status " << flags.name
      << "; anyone can `enclavia reproduce` the image and compare its PCRs before then\n";
  return 0;
}

int RunUpgradeStatus(const UpgradeFlags& flags, std::ostream& out, std::ostream& err) {
  auto status = Status(flags.data_dir, flags.name);
  if (!status) {
    return Fail(err, "upgrade status", status.error());
  }
  if (flags.json) {
    out << status->dump(2) << "\n";
    return 0;
  }
  if (!status->value("chained", false)) {
    out << flags.name << " has no upgrade chain (deployed without --control-key): it cannot be "
                         "upgraded\n";
    return 0;
  }
  out << "enclave:   " << Str(*status, "enclave_id") << "\n"
      << "genesis:   " << Str(*status, "genesis") << "\n"
      << "upgradable: " << (status->value("upgradable", false) ? "yes" : "no (immutable)")
      << ", staging window " << Num(*status, "staging_window_s") << " s\n"
      << "chain:     " << Num(*status, "length") << " entries, " << Num(*status, "steps")
      << " upgrade(s); head " << Str(*status, "head") << "\n"
      << "head PCRs:\n"
      << PcrLine((*status)["head_pcrs"]);
  const json& staged = (*status)["staged"];
  if (!staged.is_array() || staged.empty()) {
    out << "staged:    none\n";
    return 0;
  }
  for (const json& s : staged) {
    out << "staged:    " << Str(s, "id") << " (request " << Short(Str(s, "request")) << ")"
        << (s.value("revoked", false) ? " REVOKED" : "") << "\n"
        << "  staged at " << TimeText(Num(s, "staged_at")) << ", due at "
        << TimeText(Num(s, "due_at"));
    if (s.value("due", false)) {
      out << " (due now)\n";
    } else {
      out << " (in " << Num(s, "seconds_left") << " s)\n";
    }
    out << PcrLine(s["new_pcrs"]);
  }
  out << "check:     `enclavia reproduce` the staged image and compare its PCRs to these\n";
  return 0;
}

int RunUpgradeRevoke(const UpgradeFlags& flags, std::ostream& out, std::ostream& err) {
  if (flags.id.empty() || flags.control_key.empty() == !flags.managed_key) {
    err << "enclavia upgrade revoke: NAME ID and --control-key KEY (or --managed-key)\n";
    return 2;
  }
  json body;
  if (flags.managed_key) {
    body = {{"managed_key", true}, {"id", flags.id}};
  } else {
    auto status = Status(flags.data_dir, flags.name);
    if (!status) {
      return Fail(err, "upgrade revoke", status.error());
    }
    std::string hash;
    for (const json& s : (*status)["staged"]) {
      if (Str(s, "id") == flags.id || Str(s, "request") == flags.id) {
        hash = Str(s, "request");
      }
    }
    auto digest = DigestField(json{{"request", hash}}, "request");
    if (!digest) {
      return Fail(err, "upgrade revoke",
                  Error(Code::kNotFound, "no staged request " + flags.id + " for " + flags.name));
    }
    auto signer = OpenKey(flags.control_key, flags.passphrase_file);
    if (!signer) {
      return Fail(err, "upgrade revoke", signer.error());
    }
    auto entry = upgrade::SignRevocation(upgrade::Revocation{*digest}, **signer);
    if (!entry) {
      return Fail(err, "upgrade revoke", entry.error());
    }
    body = {{"revocation", Base64Encode(*entry)}};
  }
  auto revoked = ControlJson(flags.data_dir, "POST",
                             "/v1/enclaves/" + flags.name + "/upgrade/revoke", body.dump());
  if (!revoked) {
    return Fail(err, "upgrade revoke", revoked.error());
  }
  if (flags.json) {
    out << revoked->dump(2) << "\n";
  } else {
    out << "revoked: " << Str(*revoked, "id") << " (request " << Short(Str(*revoked, "request"))
        << "): the enclave will refuse to activate it\n";
  }
  return 0;
}

int RunUpgradeActivate(const UpgradeFlags& flags, std::ostream& out, std::ostream& err) {
  json body = {{"id", flags.id}, {"force", flags.force}};
  auto activated = ControlJson(flags.data_dir, "POST",
                               "/v1/enclaves/" + flags.name + "/upgrade/activate", body.dump());
  if (!activated) {
    return Fail(err, "upgrade activate", activated.error());
  }
  std::string url = Str(*activated, "url");
  if (!url.empty()) {
    if (auto serving = ControlWaitServing(flags.data_dir, flags.name, url); !serving) {
      return Fail(err, "upgrade activate", serving.error());
    }
  }
  if (flags.json) {
    out << activated->dump(2) << "\n";
    return 0;
  }
  const json& done = (*activated)["activated"];
  out << "activated: " << Str(done, "id") << ": " << flags.name << " now runs "
      << Str(*activated, "instance") << " at " << url << "\n"
      << "chain:     " << Num(done, "length") << " entries; head " << Str(done, "head") << "\n"
      << "PCRs:\n"
      << PcrLine((*activated)["pcrs"]);
  return 0;
}

int RunChain(const ChainFlags& flags, std::ostream& out, std::ostream& err) {
  auto fetched = IsUrl(flags.target)
                     ? FetchPublic(flags.target, "/.well-known/enclavia/chain")
                     : ControlJson(flags.data_dir, "GET", "/v1/enclaves/" + flags.target + "/chain");
  if (!fetched) {
    return Fail(err, "chain", fetched.error());
  }
  std::vector<Bytes> chain;
  if (fetched->is_object() && (*fetched)["chain"].is_array()) {
    for (const json& entry : (*fetched)["chain"]) {
      auto bytes = entry.is_string() ? Base64Decode(entry.get<std::string>())
                                     : Result<Bytes>(Error(Code::kMalformed, "not a string"));
      if (!bytes) {
        return Fail(err, "chain", Error(Code::kMalformed, "a chain entry is not base64"));
      }
      chain.push_back(std::move(*bytes));
    }
  }
  if (chain.empty()) {
    return Fail(err, "chain", Error(Code::kFailedPrecondition,
                                    flags.target + " has no upgrade chain (an unchained enclave)"));
  }
  std::optional<channel::TrustPolicy> policy;
  if (!flags.trust.empty()) {
    auto loaded = client::LoadTrustPolicy(flags.trust);
    if (!loaded) {
      return Fail(err, "chain", loaded.error());
    }
    policy = std::move(*loaded);
  }
  upgrade::ChainOptions options;
  options.allow_debug = flags.allow_debug || (policy && policy->allow_debug);
  if (policy && policy->verifier && flags.roots.empty()) {
    options.verifier = policy->verifier;
  } else {
    std::vector<std::string> roots = flags.roots;
    std::string local_root = DefaultDataDir() + "/nsm/root.pem";
    if (!flags.data_dir.empty()) {
      local_root = flags.data_dir + "/nsm/root.pem";
    }
    std::error_code ec;
    if (roots.empty() && fs::exists(local_root, ec)) {
      roots.push_back(local_root);  // The local platform's simulator root.
    }
    auto verifier = MakeVerifier(roots, flags.no_aws_root);
    if (!verifier) {
      return Fail(err, "chain", verifier.error());
    }
    options.verifier = std::make_shared<const attestation::Verifier>(std::move(*verifier));
  }
  auto verified = upgrade::VerifyChain(chain, options);
  if (!verified) {
    return Fail(err, "chain", verified.error().WithContext("the chain does not verify"));
  }
  std::optional<Result<size_t>> accepted;
  if (policy) {
    upgrade::ChainTrust trust = policy->chain_trust;
    for (const auto& set : policy->accept) {
      trust.pcrs.push_back(set);
    }
    accepted = upgrade::AcceptChain(*verified, trust);
  }
  if (flags.json) {
    json steps = json::array();
    for (const upgrade::Step& step : verified->steps) {
      steps.push_back({{"id", step.request.id},
                       {"request", upgrade::DigestHex(step.request_hash)},
                       {"pcr0", HexEncode(step.activation.new_pcrs.count(0) != 0
                                              ? step.activation.new_pcrs.at(0)
                                              : Bytes{})},
                       {"staged_at", step.staging.staged_at_unix},
                       {"activated_at", step.activation.activated_at_unix},
                       {"head", upgrade::DigestHex(step.head)}});
    }
    json keys = json::array();
    for (const Bytes& spki : verified->genesis.control_keys) {
      keys.push_back(ControlKeyFingerprint(spki));
    }
    json result = {{"verified", true},
                   {"genesis", upgrade::DigestHex(verified->genesis_hash)},
                   {"control_keys", std::move(keys)},
                   {"window_s", verified->genesis.min_staging_window_s},
                   {"enclave_id", verified->genesis.enclave_id},
                   {"upgradable", verified->genesis.upgradable},
                   {"head", upgrade::DigestHex(verified->head)},
                   {"length", chain.size()},
                   {"steps", std::move(steps)}};
    if (accepted) {
      result["accepted"] = accepted->has_value();
      if (!accepted->has_value()) {
        result["refused"] = accepted->error().message();
      } else {
        result["trusted_from"] = **accepted;
      }
    }
    out << result.dump(2) << "\n";
  } else {
    auto pcr0 = [](const upgrade::PcrMap& pcrs) {
      return pcrs.count(0) != 0 ? Short(HexEncode(pcrs.at(0))) : std::string("?");
    };
    out << "enclave:  " << verified->genesis.enclave_id << "\n"
        << "genesis:  " << upgrade::DigestHex(verified->genesis_hash) << " (created "
        << TimeText(verified->genesis.created_unix) << ", "
        << (verified->genesis.upgradable ? "upgradable" : "immutable") << ")\n"
        << "step 0:   PCR0 " << pcr0(verified->genesis.first_pcrs) << "\n";
    for (const Bytes& spki : verified->genesis.control_keys) {
      out << "key:      " << ControlKeyFingerprint(spki) << " (SHA-256 of the control key's SPKI)\n";
    }
    if (verified->genesis.upgradable) {
      out << "window:   at least " << verified->genesis.min_staging_window_s
          << " s between staging and activation\n";
    }
    for (size_t i = 0; i < verified->steps.size(); ++i) {
      const upgrade::Step& step = verified->steps[i];
      out << "step " << i + 1 << ":   " << step.request.id << ": PCR0 " << pcr0(verified->PcrsAt(i))
          << " -> " << pcr0(step.activation.new_pcrs) << ", staged "
          << TimeText(step.staging.staged_at_unix) << ", activated "
          << TimeText(step.activation.activated_at_unix) << "\n";
    }
    out << "head:     " << upgrade::DigestHex(verified->head) << "\n"
        << "verified: " << chain.size() << " entries, every signature and receipt checks\n";
    if (accepted) {
      if (accepted->has_value()) {
        out << "trust:    accepted (" << flags.trust << " trusts step " << **accepted << ")\n";
      } else {
        out << "trust:    REFUSED: " << accepted->error().message() << "\n";
      }
    }
  }
  return accepted && !accepted->has_value() ? 1 : 0;
}

}  // namespace enclavia::cli
