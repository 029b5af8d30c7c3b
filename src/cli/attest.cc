// SPDX-License-Identifier: Apache-2.0
#include "cli/attest.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <ostream>

#include "cli/trust.h"
#include "host/nsm/simulator.h"
#include "lib/attestation/aws_root.h"
#include "lib/attestation/verifier.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"

namespace enclavia::cli {
namespace {

// A base64 rendering of a 64 KiB document, with line breaks, fits well within this.
constexpr size_t kMaxInputFileSize = 128 * 1024;

Result<std::map<uint32_t, Bytes>> ParsePcrFlags(const std::vector<std::string>& flags) {
  std::map<uint32_t, Bytes> pcrs;
  for (const std::string& flag : flags) {
    size_t eq = flag.find('=');
    uint32_t index = 0;
    if (eq == std::string::npos || eq == 0) {
      return Error(Code::kInvalidArgument, "--pcr " + flag + ": want N=HEX");
    }
    auto [ptr, ec] = std::from_chars(flag.data(), flag.data() + eq, index);
    if (ec != std::errc() || ptr != flag.data() + eq || index > 31) {
      return Error(Code::kInvalidArgument, "--pcr " + flag + ": index must be 0..31");
    }
    auto value = HexDecode(std::string_view(flag).substr(eq + 1));
    if (!value || (value->size() != 32 && value->size() != 48 && value->size() != 64)) {
      return Error(Code::kInvalidArgument,
                   "--pcr " + flag.substr(0, eq) + ": value must be 32, 48 or 64 bytes of hex");
    }
    if (!pcrs.emplace(index, std::move(value).value()).second) {
      return Error(Code::kInvalidArgument, "--pcr " + std::to_string(index) + " given twice");
    }
  }
  return pcrs;
}

Result<std::optional<Bytes>> OptionalHex(const std::string& hex, const char* flag) {
  if (hex.empty()) {
    return std::optional<Bytes>();
  }
  auto b = HexDecode(hex);
  if (!b) {
    return Error(Code::kInvalidArgument, std::string(flag) + ": not hex");
  }
  return std::optional<Bytes>(std::move(b).value());
}


nlohmann::json OptionalHexJson(const std::optional<Bytes>& b) {
  return b ? nlohmann::json(HexEncode(*b)) : nlohmann::json(nullptr);
}

nlohmann::json DocumentJson(bool valid, const std::optional<std::string>& error,
                            const attestation::AttestationDocument* doc) {
  nlohmann::json j;
  j["valid"] = valid;
  j["error"] = error ? nlohmann::json(*error) : nlohmann::json(nullptr);
  if (doc == nullptr) {
    j["module_id"] = nullptr;
    j["timestamp"] = nullptr;
    j["digest"] = nullptr;
    j["pcrs"] = nlohmann::json::object();
    j["public_key"] = nullptr;
    j["user_data"] = nullptr;
    j["nonce"] = nullptr;
    return j;
  }
  j["module_id"] = doc->module_id;
  j["timestamp"] = doc->timestamp_ms;
  j["digest"] = doc->digest;
  nlohmann::json pcrs = nlohmann::json::object();
  for (const auto& [index, value] : doc->pcrs) {
    pcrs[std::to_string(index)] = HexEncode(value);
  }
  j["pcrs"] = pcrs;
  j["public_key"] = OptionalHexJson(doc->public_key);
  j["user_data"] = OptionalHexJson(doc->user_data);
  j["nonce"] = OptionalHexJson(doc->nonce);
  return j;
}

std::string Abbreviate(const Bytes& b) {
  std::string hex = HexEncode(b);
  if (hex.size() <= 96) {
    return hex;
  }
  return hex.substr(0, 64) + "… (" + std::to_string(b.size()) + " bytes)";
}

void PrintSummary(const attestation::VerifiedAttestation& v, std::ostream& out) {
  const auto& doc = v.document();
  std::string root = HexEncode(v.root_fingerprint());
  bool aws = root == attestation::kAwsNitroRootG1Sha256Hex;
  out << "valid: Nitro attestation document\n";
  out << "  module_id   " << doc.module_id << "\n";
  out << "  timestamp   " << FormatRfc3339(FromUnixMillis(doc.timestamp_ms)) << "\n";
  out << "  root        " << (aws ? "AWS Nitro Enclaves Root-G1" : "additional root")
      << " (sha256 " << root << ")\n";
  out << "  debug mode  " << (v.debug() ? "yes (PCR0 is zero)" : "no") << "\n";
  for (const auto& [index, value] : doc.pcrs) {
    bool zero = std::all_of(value.begin(), value.end(), [](uint8_t b) { return b == 0; });
    if (!zero || index <= 2) {
      out << "  PCR" << index << (index < 10 ? "        " : "       ") << HexEncode(value) << "\n";
    }
  }
  auto optional = [&](const char* name, const std::optional<Bytes>& b) {
    out << "  " << name << (b ? Abbreviate(*b) : "-") << "\n";
  };
  optional("public_key  ", doc.public_key);
  optional("user_data   ", doc.user_data);
  optional("nonce       ", doc.nonce);
}

int Fail(std::ostream& err, const std::string& message) {
  err << "enclavia: " << message << "\n";
  return 1;
}

int Usage(std::ostream& err, const Error& e) {
  err << "enclavia: " << e.message() << "\n";
  return 2;
}

}  // namespace

int RunAttestVerify(const AttestVerifyFlags& flags, std::ostream& out, std::ostream& err) {
  attestation::TrustPolicy policy;
  auto pcrs = ParsePcrFlags(flags.pcrs);
  if (!pcrs) {
    return Usage(err, pcrs.error());
  }
  policy.expected_pcrs = std::move(pcrs).value();
  policy.allow_debug = flags.allow_debug;
  auto nonce = OptionalHex(flags.nonce_hex, "--nonce");
  auto public_key = OptionalHex(flags.public_key_hex, "--public-key");
  if (!nonce || !public_key) {
    return Usage(err, !nonce ? nonce.error() : public_key.error());
  }
  policy.expected_nonce = *nonce;
  policy.expected_public_key = *public_key;
  if (flags.max_age_s) {
    if (*flags.max_age_s < 0) {
      return Usage(err, Error(Code::kInvalidArgument, "--max-age must not be negative"));
    }
    policy.max_age = std::chrono::seconds(*flags.max_age_s);
  }
  SystemTime at = std::chrono::system_clock::now();
  if (flags.at != "now") {
    auto parsed = ParseRfc3339(flags.at);
    if (!parsed) {
      return Usage(err, parsed.error().WithContext("--at"));
    }
    at = *parsed;
  }
  auto verifier = MakeVerifier(flags.roots, flags.no_aws_root);
  if (!verifier) {
    return Usage(err, verifier.error());
  }

  auto report_failure = [&](const std::string& message,
                            const attestation::AttestationDocument* doc) {
    if (flags.json) {
      out << DocumentJson(false, message, doc).dump() << "\n";
    }
    return Fail(err, message);
  };
  auto document = ReadDocument(flags.file);
  if (!document) {
    return report_failure(document.error().message(), nullptr);
  }
  auto verified = verifier->Verify(*document, at, policy);
  if (!verified) {
    auto unverified = attestation::ParseUnverified(*document);
    return report_failure(verified.error().message(),
                          unverified ? &unverified->document : nullptr);
  }
  if (flags.json) {
    out << DocumentJson(true, std::nullopt, &verified->document()).dump() << "\n";
  } else {
    PrintSummary(*verified, out);
  }
  return 0;
}

int RunAttestSimulate(const AttestSimulateFlags& flags, std::ostream& out, std::ostream& err) {
  auto pcrs = ParsePcrFlags(flags.pcrs);
  if (!pcrs) {
    return Usage(err, pcrs.error());
  }
  host::SimulatorOptions options;
  for (auto& [index, value] : *pcrs) {
    if (value.size() != attestation::kPcrSize) {
      return Usage(err, Error(Code::kInvalidArgument,
                              "--pcr " + std::to_string(index) + ": the NSM uses 48-byte PCRs"));
    }
    options.boot_pcrs[static_cast<uint16_t>(index)] = std::move(value);
  }
  options.debug = flags.debug;
  const bool options_pcr0_zero = options.boot_pcrs.count(0) == 0 ||
                                 std::all_of(options.boot_pcrs[0].begin(),
                                             options.boot_pcrs[0].end(),
                                             [](uint8_t b) { return b == 0; });
  attestation::AttestationRequest request;
  auto user_data = OptionalHex(flags.user_data_hex, "--user-data");
  auto nonce = OptionalHex(flags.nonce_hex, "--nonce");
  auto public_key = OptionalHex(flags.public_key_hex, "--public-key");
  if (!user_data || !nonce || !public_key) {
    return Usage(err, !user_data ? user_data.error()
                                 : (!nonce ? nonce.error() : public_key.error()));
  }
  request.user_data = *user_data;
  request.nonce = *nonce;
  request.public_key = *public_key;

  auto ca = host::SimulatorCa::LoadOrCreate(flags.state_dir, {});
  if (!ca) {
    return Fail(err, ca.error().message());
  }
  auto sim = host::NsmSimulator::Create(
      std::make_shared<const host::SimulatorCa>(std::move(ca).value()), std::move(options));
  if (!sim) {
    return Fail(err, sim.error().message());
  }
  auto doc = (*sim)->Attestation(request);
  if (!doc) {
    return Fail(err, doc.error().message());
  }
  auto written = WriteFileAtomic(flags.output, *doc, 0644);
  if (!written) {
    return Fail(err, written.error().message());
  }
  if (!flags.debug && options_pcr0_zero) {
    err << "enclavia: note: PCR0 is zero (no --pcr 0=HEX), so verifiers treat this document as "
           "a debug-mode enclave unless given --allow-debug\n";
  }
  out << "wrote " << flags.output << " (" << doc->size() << " bytes), signed under "
      << flags.state_dir << "/root.pem\n";
  return 0;
}

}  // namespace enclavia::cli
