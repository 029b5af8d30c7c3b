// SPDX-License-Identifier: Apache-2.0
#include "cli/build.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ostream>

#include <nlohmann/json.hpp>

#include "cli/trust.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/builder/builder.h"
#include "lib/builder/image_config.h"
#include "lib/builder/reproduce.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/x509.h"
#include "lib/eif/reader.h"

namespace enclavia::cli {

namespace {

int Fail(std::ostream& err, const Error& e) {
  err << "enclavia: " << e.message() << "\n";
  return 1;
}

int Usage(std::ostream& err, const std::string& message) {
  err << "enclavia: " << message << "\n";
  return 2;
}

std::string Size(uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < (1u << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / 1048576.0);
  }
  return buf;
}

size_t CountFiles(const image::Tree& tree) {
  size_t n = 0;
  for (const auto& [path, entry] : tree.entries()) {
    n += entry.type == image::EntryType::kFile ? 1 : 0;
  }
  return n;
}

// MeasurementsJson is nitro-cli's shape: {"Measurements": {"HashAlgorithm": ..., "PCR0": ...}}.
nlohmann::ordered_json MeasurementsJson(const eif::Measurements& m) {
  nlohmann::ordered_json j;
  j["HashAlgorithm"] = "Sha384 { ... }";
  j["PCR0"] = HexEncode(m.pcr0);
  j["PCR1"] = HexEncode(m.pcr1);
  j["PCR2"] = HexEncode(m.pcr2);
  if (m.pcr8.has_value()) {
    j["PCR8"] = HexEncode(*m.pcr8);
  }
  return j;
}

void PrintPcrs(std::ostream& out, const eif::Measurements& m) {
  out << "PCR0  " << HexEncode(m.pcr0) << "\n";
  out << "PCR1  " << HexEncode(m.pcr1) << "\n";
  out << "PCR2  " << HexEncode(m.pcr2) << "\n";
  if (m.pcr8.has_value()) {
    out << "PCR8  " << HexEncode(*m.pcr8) << "\n";
  }
}

// ProgressPrinter draws one self-overwriting line on a terminal; elsewhere it prints nothing.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool enabled) : enabled_(enabled && ::isatty(STDERR_FILENO) == 1) {}
  ~ProgressPrinter() { Clear(); }
  ProgressPrinter(const ProgressPrinter&) = delete;
  ProgressPrinter& operator=(const ProgressPrinter&) = delete;

  void Update(const builder::Progress& p) {
    if (!enabled_) {
      return;
    }
    int percent = p.total == 0 ? 0 : static_cast<int>(p.done * 100 / p.total);
    if (p.stage == stage_ && percent == percent_) {
      return;
    }
    stage_ = std::string(p.stage);
    percent_ = percent;
    if (p.stage == "image") {
      std::fprintf(stderr, "\r\033[Kenclavia: writing image %3d%% (%s of %s)", percent,
                   Size(p.done).c_str(), Size(p.total).c_str());
    } else {
      std::fprintf(stderr, "\r\033[Kenclavia: reading %s…", stage_.c_str());
    }
    std::fflush(stderr);
    drawn_ = true;
  }
  void Clear() {
    if (drawn_) {
      std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
      drawn_ = false;
    }
  }

 private:
  bool enabled_;
  bool drawn_ = false;
  std::string stage_;
  int percent_ = -1;
};

Result<SystemTime> ParseAt(const std::string& at) {
  if (at == "now") {
    return std::chrono::system_clock::now();
  }
  return ParseRfc3339(at);
}

}  // namespace

int RunBuild(const BuildFlags& flags, std::ostream& out, std::ostream& err) {
  if (flags.sign_cert.empty() != flags.sign_key.empty()) {
    return Usage(err, "--sign-cert and --sign-key go together");
  }
  auto env = builder::DefaultEnvironment();
  if (!env) {
    return Fail(err, env.error());
  }
  std::optional<eif::SigningKey> signer;
  if (!flags.sign_cert.empty()) {
    auto cert = ReadFile(flags.sign_cert, 1 << 20);
    if (!cert) {
      return Fail(err, cert.error().WithContext("--sign-cert"));
    }
    if (auto parsed = crypto::Certificate::FromPem(AsString(*cert)); !parsed) {
      return Fail(err, parsed.error().WithContext("--sign-cert " + flags.sign_cert));
    }
    auto key_pem = ReadFile(flags.sign_key, 1 << 20);
    if (!key_pem) {
      return Fail(err, key_pem.error().WithContext("--sign-key"));
    }
    auto key = crypto::PrivateKey::FromPem(AsString(*key_pem));
    if (!key) {
      return Fail(err, key.error().WithContext("--sign-key " + flags.sign_key));
    }
    signer.emplace(eif::SigningKey{std::string(AsString(*cert)), std::move(*key)});
  }

  ProgressPrinter printer(flags.progress);
  builder::BuildRequest request;
  request.path = flags.dir;
  request.output = flags.output;
  request.lock_mode = flags.update_lock ? builder::LockMode::kUpdate : builder::LockMode::kCheck;
  request.signer = signer ? &*signer : nullptr;
  request.progress = [&](const builder::Progress& p) { printer.Update(p); };
  auto result = builder::Build(request, *env);
  printer.Clear();
  if (!result) {
    return Fail(err, result.error());
  }
  for (const std::string& w : result->warnings) {
    err << "enclavia: warning: " << w << "\n";
  }
  const char* lock_status = result->lock_status == builder::LockStatus::kCreated   ? "created"
                            : result->lock_status == builder::LockStatus::kUpdated ? "updated"
                                                                                   : "verified";
  if (flags.json) {
    nlohmann::ordered_json j;
    j["Measurements"] = MeasurementsJson(result->measurements);
    out << j.dump(2) << "\n";
    return 0;
  }
  const auto& file = result->enclaviafile;
  out << "enclavia: built " << file.name << ":" << file.version;
  if (!flags.output.empty()) {
    out << " -> " << flags.output << " (" << Size(result->image_bytes) << ")";
  } else {
    out << " (measured only; -o FILE writes the image)";
  }
  out << "\n";
  out << "  kernel   " << result->lock.kernel_source << " " << result->kernel_path << "\n";
  out << "  cmdline  " << result->cmdline << "\n";
  out << "  runtime  ramdisk 1, " << CountFiles(result->runtime) << " file(s), "
      << Size(result->runtime_bytes) << "\n";
  out << "  app      ramdisk 2, " << result->lock.app_source << ", " << CountFiles(result->app)
      << " file(s), " << Size(result->app_bytes) << "\n";
  out << "  lock     " << lock_status << " " << result->lock_path << "\n";
  out << "  time     SOURCE_DATE_EPOCH=" << result->source_date_epoch << "\n";
  PrintPcrs(out, result->measurements);
  return 0;
}

int RunDescribe(const DescribeFlags& flags, std::ostream& out, std::ostream& err) {
  eif::ReadLimits limits;
  limits.require_crc = false;  // reported as CheckCRC: false, and the exit code is 1
  auto info = eif::ReadEif(flags.file, limits);
  if (!info) {
    return Fail(err, info.error().WithContext(flags.file));
  }
  bool ok = info->crc_ok && (!info->signature.has_value() || info->signature->valid);
  if (flags.json) {
    out << eif::DescribeJson(*info) << "\n";
  } else {
    uint64_t total = eif::kHeaderSize;
    for (const auto& s : info->sections) {
      total += eif::kSectionHeaderSize + s.size;
    }
    char crc[64];
    std::snprintf(crc, sizeof(crc), "0x%08x", info->header_crc);
    out << flags.file << ": EIF version " << info->version << ", " << Size(total) << ", CRC "
        << (info->crc_ok ? "ok " : "MISMATCH ") << crc << "\n";
    if (info->metadata.has_value()) {
      const auto& md = *info->metadata;
      out << "  image     " << md.image_name << " version " << md.image_version << "\n";
      out << "  built     " << md.build_time << " by " << md.build_tool << " "
          << md.build_tool_version << "\n";
      out << "  kernel    " << md.operating_system << " " << md.kernel_version << "\n";
    }
    out << "  memory    " << (info->default_mem >> 20) << " MiB, " << info->default_cpus
        << " CPUs (defaults)\n";
    int ramdisk = 0;
    for (const auto& s : info->sections) {
      std::string name;
      switch (s.type) {
        case eif::SectionType::kKernel:
          name = "kernel";
          break;
        case eif::SectionType::kCmdline:
          name = "cmdline";
          break;
        case eif::SectionType::kMetadata:
          name = "metadata";
          break;
        case eif::SectionType::kRamdisk:
          name = "ramdisk " + std::to_string(++ramdisk);
          break;
        case eif::SectionType::kSignature:
          name = "signature";
          break;
        default:
          name = "invalid";
      }
      out << "  section   " << name << ", " << Size(s.size) << " at offset " << s.data_offset
          << "\n";
    }
    if (info->signature.has_value()) {
      out << "  signed    " << (info->signature->valid ? "yes, signature valid" : "SIGNATURE INVALID")
          << ", certificate valid " << info->signature->not_before << " to "
          << info->signature->not_after << "\n";
    } else {
      out << "  signed    no\n";
    }
    PrintPcrs(out, info->measurements);
    // The measured configuration's network reach (PCR2 covers it): what a client trusting these
    // PCRs also trusts about where the enclave can connect.
    if (auto config = builder::ReadImageConfig(flags.file); config) {
      const config::EgressConfig& egress = config->egress;
      if (!egress.enabled) {
        out << "  egress    off (no network interface)\n";
      } else {
        out << "  egress    on, " << egress.allow.size() << " allow rules, resolvers";
        for (const std::string& r : egress.resolvers) {
          out << " " << r;
        }
        if (egress.dnssec == egress::DnssecMode::kOff) {
          out << ", DNSSEC OFF: answers are not validated (the host can steer allowed names)\n";
        } else {
          out << ", dnssec require\n";
        }
        for (const std::string& rule : egress.allow) {
          out << "    allow   " << rule << "\n";
        }
      }
    }
  }
  if (!info->crc_ok) {
    err << "enclavia: " << flags.file << ": CRC mismatch: the image is damaged\n";
  } else if (!ok) {
    err << "enclavia: " << flags.file << ": the signature does not verify\n";
  }
  return ok ? 0 : 1;
}

int RunReproduce(const ReproduceFlags& flags, std::ostream& out, std::ostream& err) {
  int targets = (flags.expect_eif.empty() ? 0 : 1) + (flags.pcrs_json.empty() ? 0 : 1) +
                (flags.attestation.empty() ? 0 : 1);
  if (targets != 1) {
    return Usage(err, "reproduce needs exactly one of --expect, --pcrs, --attestation");
  }
  auto env = builder::DefaultEnvironment();
  if (!env) {
    return Fail(err, env.error());
  }
  Result<builder::Expected> expected = Error(Code::kInternal, "unset");
  if (!flags.expect_eif.empty()) {
    expected = builder::ExpectFromEif(flags.expect_eif);
  } else if (!flags.pcrs_json.empty()) {
    expected = builder::ExpectFromPcrJson(flags.pcrs_json);
  } else {
    auto at = ParseAt(flags.at);
    if (!at) {
      return Usage(err, at.error().WithContext("--at").message());
    }
    auto verifier = MakeVerifier(flags.roots, flags.no_aws_root);
    if (!verifier) {
      return Fail(err, verifier.error());
    }
    auto document = ReadDocument(flags.attestation);
    if (!document) {
      return Fail(err, document.error());
    }
    expected = builder::ExpectFromAttestation(*document, "attestation " + flags.attestation,
                                              *verifier, *at);
  }
  if (!expected) {
    return Fail(err, expected.error());
  }
  auto report = builder::Reproduce(flags.dir, *expected, *env);
  if (!report) {
    return Fail(err, report.error());
  }
  if (flags.json) {
    nlohmann::ordered_json j;
    j["Match"] = report->match;
    j["Expected"] = expected->description;
    nlohmann::ordered_json pcrs = nlohmann::ordered_json::array();
    for (const auto& c : report->pcrs) {
      pcrs.push_back({{"PCR", c.index},
                      {"Covers", c.names},
                      {"Match", c.match},
                      {"Expected", HexEncode(c.expected)},
                      {"Rebuilt", HexEncode(c.actual)}});
    }
    j["PCRs"] = pcrs;
    j["Notes"] = report->notes;
    nlohmann::ordered_json ramdisks = nlohmann::ordered_json::array();
    for (const auto& r : report->ramdisks) {
      nlohmann::ordered_json files = nlohmann::ordered_json::array();
      for (const auto& f : r.files) {
        files.push_back({{"Path", f.path},
                         {"What", f.what},
                         {"Expected", f.expected},
                         {"Rebuilt", f.actual}});
      }
      ramdisks.push_back({{"Ramdisk", r.ramdisk}, {"Files", files}});
    }
    j["Ramdisks"] = ramdisks;
    out << j.dump(2) << "\n";
  } else {
    out << "enclavia: reproduce " << report->build.enclaviafile.name << ":"
        << report->build.enclaviafile.version << " against " << expected->description << "\n";
    for (const auto& c : report->pcrs) {
      out << "PCR" << c.index << "  " << (c.match ? "match   " : "DIFFERS ") << " (" << c.names
          << ")\n";
      if (!c.match) {
        out << "      expected " << HexEncode(c.expected) << "\n";
        out << "      rebuilt  " << HexEncode(c.actual) << "\n";
      }
    }
    for (const auto& note : report->notes) {
      out << "note: " << note << "\n";
    }
    for (const auto& r : report->ramdisks) {
      out << "ramdisk " << r.ramdisk << (r.ramdisk == 1 ? " (runtime)" : " (application)") << ": "
          << r.files.size() << (r.files.size() == 1 ? " file differs" : " files differ") << "\n";
      for (const auto& f : r.files) {
        out << "  /" << f.path << ": " << f.what << "\n";
        if (!f.expected.empty()) {
          out << "      expected " << f.expected << "\n";
        }
        if (!f.actual.empty()) {
          out << "      rebuilt  " << f.actual << "\n";
        }
      }
    }
  }
  if (!report->match) {
    err << "enclavia: the rebuild does not match " << expected->description << "\n";
    return 1;
  }
  if (!flags.json) {
    out << "enclavia: reproduced: every compared PCR matches\n";
  }
  return 0;
}

}  // namespace enclavia::cli
