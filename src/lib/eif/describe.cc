// SPDX-License-Identifier: Apache-2.0
// DescribeJson uses only nlohmann's non-throwing calls: parse with allow_exceptions = false and
// dump with error_handler_t::replace.
#include <nlohmann/json.hpp>

#include "lib/base/encoding.h"
#include "lib/eif/reader.h"

namespace enclavia::eif {
namespace {

using OrderedJson = nlohmann::ordered_json;

// ParseOrNull parses JSON text that DecodeMetadata produced (compact, keys sorted), keeping its
// key order; text that does not parse becomes null.
OrderedJson ParseOrNull(const std::string& text) {
  OrderedJson j = OrderedJson::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? OrderedJson() : j;
}

}  // namespace

std::string DescribeJson(const EifInfo& info) {
  // Field order follows nitro-cli's EifDescribeInfo; Measurements is a BTreeMap, so sorted.
  OrderedJson out;
  out["EifVersion"] = info.version;
  OrderedJson measurements;
  measurements["HashAlgorithm"] = "Sha384 { ... }";  // nitro-cli prints sha2's Debug.
  measurements["PCR0"] = HexEncode(info.measurements.pcr0);
  measurements["PCR1"] = HexEncode(info.measurements.pcr1);
  measurements["PCR2"] = HexEncode(info.measurements.pcr2);
  if (info.measurements.pcr8) {
    measurements["PCR8"] = HexEncode(*info.measurements.pcr8);
  }
  out["Measurements"] = std::move(measurements);
  out["IsSigned"] = info.signature.has_value();
  if (info.signature) {
    const SignatureInfo& sig = *info.signature;
    OrderedJson issuer = OrderedJson::object();
    for (const auto& [key, value] : sig.issuer) {  // std::map: sorted, as the BTreeMap.
      issuer[key] = value;
    }
    OrderedJson cert;
    cert["IssuerName"] = std::move(issuer);
    cert["Algorithm"] = sig.algorithm;
    cert["NotBefore"] = sig.not_before;
    cert["NotAfter"] = sig.not_after;
    cert["Signature"] = sig.signature_hex;
    out["SigningCertificate"] = std::move(cert);
  }
  out["CheckCRC"] = info.crc_ok;
  if (info.signature) {
    out["SignatureCheck"] = info.signature->valid;
  }
  if (info.metadata) {
    const IdentityInfo& id = *info.metadata;
    out["ImageName"] = id.image_name;
    out["ImageVersion"] = id.image_version;
    OrderedJson meta;
    meta["BuildTime"] = id.build_time;
    meta["BuildTool"] = id.build_tool;
    meta["BuildToolVersion"] = id.build_tool_version;
    meta["OperatingSystem"] = id.operating_system;
    meta["KernelVersion"] = id.kernel_version;
    meta["DockerInfo"] = ParseOrNull(id.docker_info_json);
    // nitro-cli flattens CustomMetadata into Metadata and omits it when null. (serde cannot
    // flatten other values and describe-eif fails; we print them under CustomMetadata.)
    OrderedJson custom = ParseOrNull(id.custom_metadata_json);
    if (custom.is_object()) {
      for (const auto& [key, value] : custom.items()) {
        meta[key] = value;
      }
    } else if (!custom.is_null()) {
      meta["CustomMetadata"] = std::move(custom);
    }
    out["Metadata"] = std::move(meta);
  }
  return out.dump(2, ' ', /*ensure_ascii=*/false, OrderedJson::error_handler_t::replace);
}

}  // namespace enclavia::eif
