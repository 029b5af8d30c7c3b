// SPDX-License-Identifier: Apache-2.0
#include "lib/oci/internal/json.h"

#include <exception>
#include <utility>

#include <nlohmann/json.hpp>

#include "lib/oci/internal/text.h"

namespace enclavia::oci::internal {
namespace {

using Json = nlohmann::json;

Error Bad(const std::string& doc, std::string_view what) {
  return {Code::kMalformed, doc + ": " + std::string(what)};
}

// Parse never throws: nlohmann reports syntax errors through is_discarded() when exceptions are
// disabled for the call.
Result<Json> Parse(ByteSpan bytes, const std::string& doc) {
  Json j = Json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Bad(doc, "not valid JSON");
  }
  if (!j.is_object() && !j.is_array()) {
    return Bad(doc, "not a JSON object");
  }
  return j;
}

// Field returns obj[key], or nullptr when it is absent or null.
const Json* Field(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return nullptr;
  }
  return &*it;
}

Result<std::string> GetString(const Json& obj, const char* key, const std::string& doc,
                              bool required) {
  const Json* v = Field(obj, key);
  if (v == nullptr) {
    if (required) {
      return Bad(doc, std::string("missing ") + key);
    }
    return std::string();
  }
  if (!v->is_string()) {
    return Bad(doc, std::string(key) + " is not a string");
  }
  return v->get<std::string>();
}

Result<std::vector<std::string>> GetStrings(const Json& obj, const char* key,
                                            const std::string& doc, bool required) {
  std::vector<std::string> out;
  const Json* v = Field(obj, key);
  if (v == nullptr) {
    if (required) {
      return Bad(doc, std::string("missing ") + key);
    }
    return out;
  }
  if (!v->is_array()) {
    return Bad(doc, std::string(key) + " is not an array");
  }
  for (const Json& item : *v) {
    if (!item.is_string()) {
      return Bad(doc, std::string(key) + " has a non-string element");
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<const Json*> GetObject(const Json& obj, const char* key, const std::string& doc,
                              bool required) {
  const Json* v = Field(obj, key);
  if (v == nullptr) {
    if (required) {
      return Bad(doc, std::string("missing ") + key);
    }
    return v;
  }
  if (!v->is_object()) {
    return Bad(doc, std::string(key) + " is not an object");
  }
  return v;
}

Result<Descriptor> ParseDescriptor(const Json& j, const std::string& doc) {
  if (!j.is_object()) {
    return Bad(doc, "descriptor is not an object");
  }
  Descriptor d;
  ASSIGN_OR_RETURN(d.media_type, GetString(j, "mediaType", doc, false));
  ASSIGN_OR_RETURN(d.digest, GetString(j, "digest", doc, true));
  const Json* size = Field(j, "size");
  if (size == nullptr || !size->is_number_unsigned()) {
    return Bad(doc, "descriptor " + Quote(d.digest) + " has no valid size");
  }
  d.size = size->get<uint64_t>();
  ASSIGN_OR_RETURN(d.urls, GetStrings(j, "urls", doc, false));
  ASSIGN_OR_RETURN(const Json* platform, GetObject(j, "platform", doc, false));
  if (platform != nullptr) {
    d.has_platform = true;
    ASSIGN_OR_RETURN(d.platform.os, GetString(*platform, "os", doc, true));
    ASSIGN_OR_RETURN(d.platform.architecture, GetString(*platform, "architecture", doc, true));
    ASSIGN_OR_RETURN(d.platform.variant, GetString(*platform, "variant", doc, false));
  }
  return d;
}

Result<std::string> DoParseLayoutVersion(ByteSpan json) {
  const std::string doc = "oci-layout";
  ASSIGN_OR_RETURN(Json j, Parse(json, doc));
  if (!j.is_object()) {
    return Bad(doc, "not a JSON object");
  }
  return GetString(j, "imageLayoutVersion", doc, true);
}

Result<IndexDoc> DoParseIndex(ByteSpan json, const std::string& doc) {
  ASSIGN_OR_RETURN(Json j, Parse(json, doc));
  if (!j.is_object()) {
    return Bad(doc, "not a JSON object");
  }
  IndexDoc out;
  ASSIGN_OR_RETURN(out.media_type, GetString(j, "mediaType", doc, false));
  const Json* manifests = Field(j, "manifests");
  if (manifests == nullptr || !manifests->is_array()) {
    return Bad(doc, "manifests is missing or not an array");
  }
  for (const Json& m : *manifests) {
    ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(m, doc));
    out.manifests.push_back(std::move(d));
  }
  return out;
}

Result<ManifestDoc> DoParseManifest(ByteSpan json, const std::string& doc) {
  ASSIGN_OR_RETURN(Json j, Parse(json, doc));
  if (!j.is_object()) {
    return Bad(doc, "not a JSON object");
  }
  ManifestDoc out;
  ASSIGN_OR_RETURN(out.media_type, GetString(j, "mediaType", doc, false));
  ASSIGN_OR_RETURN(const Json* config, GetObject(j, "config", doc, true));
  ASSIGN_OR_RETURN(out.config, ParseDescriptor(*config, doc));
  const Json* layers = Field(j, "layers");
  if (layers == nullptr || !layers->is_array()) {
    return Bad(doc, "layers is missing or not an array");
  }
  for (const Json& l : *layers) {
    ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(l, doc));
    out.layers.push_back(std::move(d));
  }
  return out;
}

Result<ConfigDoc> DoParseConfig(ByteSpan json, const std::string& doc) {
  ASSIGN_OR_RETURN(Json j, Parse(json, doc));
  if (!j.is_object()) {
    return Bad(doc, "not a JSON object");
  }
  ConfigDoc out;
  ASSIGN_OR_RETURN(out.os, GetString(j, "os", doc, false));
  ASSIGN_OR_RETURN(out.architecture, GetString(j, "architecture", doc, false));
  ASSIGN_OR_RETURN(out.variant, GetString(j, "variant", doc, false));
  ASSIGN_OR_RETURN(const Json* config, GetObject(j, "config", doc, false));
  if (config != nullptr) {
    ASSIGN_OR_RETURN(out.config.entrypoint, GetStrings(*config, "Entrypoint", doc, false));
    ASSIGN_OR_RETURN(out.config.cmd, GetStrings(*config, "Cmd", doc, false));
    ASSIGN_OR_RETURN(out.config.env, GetStrings(*config, "Env", doc, false));
    ASSIGN_OR_RETURN(out.config.workdir, GetString(*config, "WorkingDir", doc, false));
    ASSIGN_OR_RETURN(out.config.user, GetString(*config, "User", doc, false));
  }
  ASSIGN_OR_RETURN(const Json* rootfs, GetObject(j, "rootfs", doc, true));
  ASSIGN_OR_RETURN(std::string type, GetString(*rootfs, "type", doc, true));
  if (type != "layers") {
    return Bad(doc, "rootfs.type is " + Quote(type) + ", not \"layers\"");
  }
  ASSIGN_OR_RETURN(out.diff_ids, GetStrings(*rootfs, "diff_ids", doc, true));
  return out;
}

Result<std::vector<DockerManifestEntry>> DoParseDockerManifest(ByteSpan json) {
  const std::string doc = "manifest.json";
  ASSIGN_OR_RETURN(Json j, Parse(json, doc));
  if (!j.is_array()) {
    return Bad(doc, "not a JSON array");
  }
  std::vector<DockerManifestEntry> out;
  for (const Json& item : j) {
    if (!item.is_object()) {
      return Bad(doc, "element is not an object");
    }
    DockerManifestEntry e;
    ASSIGN_OR_RETURN(e.config, GetString(item, "Config", doc, true));
    ASSIGN_OR_RETURN(e.layers, GetStrings(item, "Layers", doc, true));
    ASSIGN_OR_RETURN(e.repo_tags, GetStrings(item, "RepoTags", doc, false));
    out.push_back(std::move(e));
  }
  return out;
}

// Guard runs `f`, turning any exception nlohmann throws into kMalformed. The typed accessors
// above check types first, so this is a backstop, not the error path.
template <typename F>
auto Guard(const std::string& doc, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Bad(doc, std::string("cannot read: ") + e.what());
  }
}

}  // namespace

Result<std::string> ParseLayoutVersion(ByteSpan json) {
  return Guard("oci-layout", [&] { return DoParseLayoutVersion(json); });
}

Result<IndexDoc> ParseIndex(ByteSpan json, const std::string& name) {
  return Guard(name, [&] { return DoParseIndex(json, name); });
}

Result<ManifestDoc> ParseManifest(ByteSpan json, const std::string& name) {
  return Guard(name, [&] { return DoParseManifest(json, name); });
}

Result<ConfigDoc> ParseConfig(ByteSpan json, const std::string& name) {
  return Guard(name, [&] { return DoParseConfig(json, name); });
}

Result<std::vector<DockerManifestEntry>> ParseDockerManifest(ByteSpan json) {
  return Guard("manifest.json", [&] { return DoParseDockerManifest(json); });
}

std::string SniffMediaType(ByteSpan json) {
  try {
    Json j = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) {
      auto it = j.find("mediaType");
      if (it != j.end() && it->is_string()) {
        return it->get<std::string>();
      }
    }
  } catch (const std::exception&) {
    // Fall through: the real parse reports the problem.
  }
  return {};
}

bool LooksLikeIndex(ByteSpan json) {
  try {
    Json j = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
    return j.is_object() && j.contains("manifests") && !j.contains("layers");
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace enclavia::oci::internal
