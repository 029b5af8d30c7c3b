// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EIF_METADATA_H_
#define ENCLAVIA_LIB_EIF_METADATA_H_

#include <string>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// The metadata section of a version 4 EIF: nitro-cli's EifIdentityInfo as compact JSON.
namespace enclavia::eif {

// IdentityInfo is what the metadata section says about an image. Every string is UTF-8.
struct IdentityInfo {
  std::string image_name;
  std::string image_version;
  // build_time is RFC 3339, e.g. "1970-01-01T00:00:00+00:00". The caller decides it; nothing in
  // this library reads the wall clock.
  std::string build_time;
  std::string build_tool;
  std::string build_tool_version;
  std::string operating_system;
  std::string kernel_version;
  // The two free-form members, as JSON text ("null", an object, ...).
  std::string docker_info_json = "null";
  std::string custom_metadata_json = "null";

  bool operator==(const IdentityInfo&) const = default;
};

// ValidateIdentity checks what EncodeMetadata requires: every string valid UTF-8, and the two
// JSON members valid JSON (no byte order mark, nesting at most 128 deep).
// kInvalidArgument names the member at fault. Callers passing user-supplied text check it here.
Result<void> ValidateIdentity(const IdentityInfo& info);

// EncodeMetadata returns the metadata section exactly as nitro-cli writes it
// (serde_json::to_vec of EifIdentityInfo): compact JSON, members in the order
// ImageName, ImageVersion, BuildMetadata {BuildTime, BuildTool, BuildToolVersion,
// OperatingSystem, KernelVersion}, DockerInfo, CustomMetadata. DockerInfo and CustomMetadata are
// re-serialized compactly with object keys in bytewise order, as serde_json's default Value
// map (a BTreeMap) does. `info` must pass ValidateIdentity; anything else aborts.
Bytes EncodeMetadata(const IdentityInfo& info);

// DecodeMetadata parses a metadata section strictly, as nitro-cli's serde derive would: one JSON
// object (whitespace around it allowed, no byte order mark, nesting at most 128 deep), every
// member present with the right type (strings, BuildMetadata an object), no member given twice.
// Unknown members are ignored, as serde does. The JSON members come back compact with sorted
// keys. Any failure is kMalformed with a message starting "eif: metadata: ".
Result<IdentityInfo> DecodeMetadata(ByteSpan json);

}  // namespace enclavia::eif

#endif  // ENCLAVIA_LIB_EIF_METADATA_H_
