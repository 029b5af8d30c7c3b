// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_OCI_INTERNAL_JSON_H_
#define ENCLAVIA_LIB_OCI_INTERNAL_JSON_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/oci/import.h"

// The one adapter around nlohmann::json (its exceptions are caught here): the OCI image-spec and
// docker documents lib/oci reads, parsed into plain structs. Fields Enclavia does not use are
// ignored; fields it uses must have the right type (kMalformed naming the document and field).
namespace enclavia::oci::internal {

// Platform is an image index entry's platform ("os/architecture/variant").
struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

// Descriptor is an OCI content descriptor (image-spec descriptor.md).
struct Descriptor {
  std::string media_type;
  std::string digest;
  uint64_t size = 0;
  std::vector<std::string> urls;
  bool has_platform = false;
  Platform platform;
};

// ParseLayoutVersion returns oci-layout's imageLayoutVersion.
Result<std::string> ParseLayoutVersion(ByteSpan json);

// IndexDoc is an image index (index.json, or a blob of type ...image.index.v1+json or a docker
// manifest list).
struct IndexDoc {
  std::string media_type;  // may be empty
  std::vector<Descriptor> manifests;
};
Result<IndexDoc> ParseIndex(ByteSpan json, const std::string& name);

// ManifestDoc is an image manifest (OCI or docker schema 2).
struct ManifestDoc {
  std::string media_type;  // may be empty
  Descriptor config;
  std::vector<Descriptor> layers;
};
Result<ManifestDoc> ParseManifest(ByteSpan json, const std::string& name);

// SniffMediaType returns the "mediaType" field of a JSON object, or "" (also for non-objects
// and unparsable input; the real parse reports those).
std::string SniffMediaType(ByteSpan json);
// LooksLikeIndex says whether a JSON object without mediaType has "manifests" (an index) rather
// than "layers".
bool LooksLikeIndex(ByteSpan json);

// ConfigDoc is the part of an image configuration (image-spec config.md) Enclavia uses.
struct ConfigDoc {
  std::string os;
  std::string architecture;
  std::string variant;
  ImageConfig config;
  std::vector<std::string> diff_ids;
};
Result<ConfigDoc> ParseConfig(ByteSpan json, const std::string& name);

// DockerManifestEntry is one image of a `docker save` manifest.json.
struct DockerManifestEntry {
  std::string config;
  std::vector<std::string> layers;
  std::vector<std::string> repo_tags;
};
Result<std::vector<DockerManifestEntry>> ParseDockerManifest(ByteSpan json);

}  // namespace enclavia::oci::internal

#endif  // ENCLAVIA_LIB_OCI_INTERNAL_JSON_H_
