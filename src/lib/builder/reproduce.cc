// SPDX-License-Identifier: Apache-2.0
#include "lib/builder/reproduce.h"

#include <exception>

#include <nlohmann/json.hpp>

#include "lib/base/file.h"
#include "lib/crypto/hash.h"
#include "lib/eif/reader.h"
#include "lib/image/cpio.h"

namespace enclavia::builder {

namespace {

constexpr size_t kPcrSize = 48;
constexpr uint64_t kMaxRamdiskCompare = 4ull << 30;

const char* PcrNames(int index) {
  switch (index) {
    case 0:
      return "kernel, cmdline and all ramdisks";
    case 1:
      return "kernel, cmdline and the Enclavia runtime (ramdisk 1)";
    case 2:
      return "the application (ramdisks 2..)";
    case 8:
      return "the signing certificate";
    default:
      return "";
  }
}

std::string Describe(const image::CpioEntry* e) {
  if (e == nullptr) {
    return "";
  }
  std::string s = "size " + std::to_string(e->size);
  if (!e->sha256.empty()) {
    s += ", sha256 " + HexEncode(e->sha256).substr(0, 16) + "…";
  }
  if (!e->link_target.empty()) {
    s += ", -> " + e->link_target;
  }
  char mode[16];
  std::snprintf(mode, sizeof(mode), ", mode %04o", e->mode);
  s += mode;
  return s;
}

Result<std::vector<image::CpioEntry>> ListExpectedRamdisk(const std::string& eif_path,
                                                          const eif::Section& section) {
  ASSIGN_OR_RETURN(Bytes data, eif::ReadSectionData(eif_path, section, kMaxRamdiskCompare));
  return image::ListCpio(data);
}

}  // namespace

Result<Expected> ExpectFromEif(const std::string& path) {
  ASSIGN_OR_RETURN(eif::EifInfo info, eif::ReadEif(path));
  Expected e;
  e.description = path;
  e.eif_path = path;
  e.pcrs[0] = info.measurements.pcr0;
  e.pcrs[1] = info.measurements.pcr1;
  e.pcrs[2] = info.measurements.pcr2;
  if (info.measurements.pcr8.has_value()) {
    e.pcrs[8] = *info.measurements.pcr8;
  }
  return e;
}

Result<Expected> ExpectFromPcrJson(const std::string& path) {
  ASSIGN_OR_RETURN(Bytes text, ReadFile(path, 1 << 20));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(AsString(text));
  } catch (const std::exception& ex) {
    return Error(Code::kMalformed, path + ": not JSON: " + ex.what());
  }
  const nlohmann::json* m = &j;
  if (j.is_object() && j.contains("Measurements")) {
    m = &j["Measurements"];
  }
  if (!m->is_object()) {
    return Error(Code::kMalformed, path + ": expected an object of PCRs");
  }
  Expected e;
  e.description = path;
  for (int index : {0, 1, 2, 8}) {
    std::string key = "PCR" + std::to_string(index);
    if (!m->contains(key)) {
      continue;
    }
    const auto& v = (*m)[key];
    if (!v.is_string()) {
      return Error(Code::kMalformed, path + ": " + key + " must be a hex string");
    }
    auto bytes = HexDecode(v.get<std::string>());
    if (!bytes || bytes->size() != kPcrSize) {
      return Error(Code::kMalformed, path + ": " + key + " must be 48 bytes of hex");
    }
    e.pcrs[index] = std::move(*bytes);
  }
  if (!e.pcrs.contains(0) && !e.pcrs.contains(1) && !e.pcrs.contains(2)) {
    return Error(Code::kMalformed, path + ": no PCR0, PCR1 or PCR2");
  }
  return e;
}

Result<Expected> ExpectFromAttestation(ByteSpan document, const std::string& description,
                                       const attestation::Verifier& verifier, SystemTime at) {
  attestation::TrustPolicy policy;
  policy.allow_debug = true;  // refused below with a clearer message
  auto verified = verifier.Verify(document, at, policy);
  if (!verified) {
    return std::move(verified).error().WithContext(description);
  }
  if (verified->debug()) {
    return Error(Code::kPolicyViolation,
                 description + ": a debug-mode enclave attests zero PCRs; nothing to compare");
  }
  Expected e;
  e.description = description;
  for (int index : {0, 1, 2}) {
    auto it = verified->document().pcrs.find(static_cast<uint32_t>(index));
    if (it != verified->document().pcrs.end()) {
      e.pcrs[index] = it->second;
    }
  }
  return e;
}

Result<ReproduceReport> Reproduce(const std::string& path, const Expected& expected,
                                  const Environment& env) {
  ReproduceReport report;
  BuildRequest request;
  request.path = path;
  request.lock_mode = LockMode::kRequire;
  ASSIGN_OR_RETURN(report.build, Build(request, env));
  const eif::Measurements& m = report.build.measurements;
  std::map<int, const Bytes*> actual = {{0, &m.pcr0}, {1, &m.pcr1}, {2, &m.pcr2}};

  report.match = true;
  for (const auto& [index, value] : expected.pcrs) {
    auto it = actual.find(index);
    if (it == actual.end()) {
      report.notes.push_back("PCR" + std::to_string(index) +
                             " not compared: reproduce does not sign the image");
      continue;
    }
    PcrCheck check{index, PcrNames(index), value, *it->second, value == *it->second};
    report.match = report.match && check.match;
    report.pcrs.push_back(std::move(check));
  }
  if (report.match || expected.eif_path.empty()) {
    return report;
  }

  // Open the expected image and find what differs.
  eif::ReadLimits limits;
  limits.require_crc = false;
  ASSIGN_OR_RETURN(eif::EifInfo info, eif::ReadEif(expected.eif_path, limits));
  std::vector<eif::Section> ramdisks;
  for (const eif::Section& s : info.sections) {
    if (s.type == eif::SectionType::kKernel) {
      ASSIGN_OR_RETURN(Bytes theirs, eif::ReadSectionData(expected.eif_path, s, 512ull << 20));
      ASSIGN_OR_RETURN(Bytes ours, ReadFile(report.build.kernel_path, 512ull << 20));
      if (theirs != ours) {
        report.notes.push_back(
            "kernel differs: expected " + std::to_string(theirs.size()) + " bytes sha256 " +
            HexEncode(crypto::Sha256(theirs)).substr(0, 16) + "…, rebuilt " +
            std::to_string(ours.size()) + " bytes sha256 " +
            HexEncode(crypto::Sha256(ours)).substr(0, 16) + "…");
      }
    } else if (s.type == eif::SectionType::kCmdline) {
      ASSIGN_OR_RETURN(Bytes theirs, eif::ReadSectionData(expected.eif_path, s, 1 << 20));
      if (AsString(theirs) != report.build.cmdline) {
        report.notes.push_back("cmdline differs: expected \"" + std::string(AsString(theirs)) +
                               "\", rebuilt \"" + report.build.cmdline + "\"");
      }
    } else if (s.type == eif::SectionType::kRamdisk) {
      ramdisks.push_back(s);
    }
  }
  if (ramdisks.size() != 2) {
    report.notes.push_back("the expected image has " + std::to_string(ramdisks.size()) +
                           " ramdisks; Enclavia builds 2");
  }
  auto compare = [&](int ramdisk, std::vector<image::CpioEntry> theirs,
                     const image::Tree& tree) -> Result<void> {
    ASSIGN_OR_RETURN(Bytes ours_bytes, WriteRamdisk(tree, report.build.source_date_epoch));
    ASSIGN_OR_RETURN(std::vector<image::CpioEntry> ours, image::ListCpio(ours_bytes));
    RamdiskReport r;
    r.ramdisk = ramdisk;
    for (const image::EntryDiff& d : image::DiffEntries(theirs, ours)) {
      r.files.push_back(FileDifference{d.path, d.what, Describe(d.expected), Describe(d.actual)});
    }
    if (r.files.empty()) {
      report.notes.push_back("ramdisk " + std::to_string(ramdisk) +
                             " bytes differ but every file matches (archive metadata or order)");
    }
    report.ramdisks.push_back(std::move(r));
    return {};
  };
  auto pcr_differs = [&](int index) {
    for (const PcrCheck& c : report.pcrs) {
      if (c.index == index) {
        return !c.match;
      }
    }
    return false;
  };
  if (pcr_differs(1) && !ramdisks.empty()) {
    ASSIGN_OR_RETURN(auto theirs, ListExpectedRamdisk(expected.eif_path, ramdisks[0]));
    RETURN_IF_ERROR(compare(1, std::move(theirs), report.build.runtime));
  }
  if (pcr_differs(2) && ramdisks.size() > 1) {
    std::vector<image::CpioEntry> theirs;
    for (size_t i = 1; i < ramdisks.size(); ++i) {
      ASSIGN_OR_RETURN(auto part, ListExpectedRamdisk(expected.eif_path, ramdisks[i]));
      theirs.insert(theirs.end(), std::make_move_iterator(part.begin()),
                    std::make_move_iterator(part.end()));
    }
    RETURN_IF_ERROR(compare(2, std::move(theirs), report.build.app));
  }
  return report;
}

}  // namespace enclavia::builder
