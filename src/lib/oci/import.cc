// SPDX-License-Identifier: Apache-2.0
// OCI image-spec v1.1 (image-layout.md, image-index.md, manifest.md, config.md, layer.md) and the
// `docker save` archive format (moby image/tarexport).
#include "lib/oci/import.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <set>
#include <string_view>
#include <utility>

#include <sys/stat.h>

#include "lib/base/encoding.h"
#include "lib/crypto/hash.h"
#include "lib/oci/internal/json.h"
#include "lib/oci/internal/layer.h"
#include "lib/oci/internal/source.h"
#include "lib/oci/internal/staging.h"
#include "lib/oci/internal/text.h"
#include "lib/sys/fd.h"

namespace enclavia::oci {
namespace {

using internal::ConfigDoc;
using internal::Descriptor;
using internal::Quote;

// JSON documents (index, manifest, config, manifest.json) are small; anything larger is hostile.
constexpr size_t kMaxJsonBytes = size_t{4} << 20;
// Image indexes may point at image indexes; real images nest at most once.
constexpr int kMaxIndexDepth = 3;

constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";

constexpr std::string_view kDockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar";
constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";

bool IsManifestType(std::string_view t) { return t == kOciManifest || t == kDockerManifest; }
bool IsIndexType(std::string_view t) { return t == kOciIndex || t == kDockerManifestList; }

bool IsHexDigest(std::string_view hex) {
  return hex.size() == 64 && std::ranges::all_of(hex, [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string Sha256Digest(ByteSpan data) {
  const crypto::Sha256Digest d = crypto::Sha256(data);
  return "sha256:" + HexEncode(d);
}

// CheckDigest accepts "sha256:<64 lowercase hex>" (image-spec descriptor.md "Digests"; the only
// registered algorithm every implementation supports) and returns the hex part.
Result<std::string> CheckDigest(std::string_view digest, std::string_view what) {
  const size_t colon = digest.find(':');
  if (colon == std::string_view::npos) {
    return Error(Code::kMalformed, std::string(what) + ": bad digest " + Quote(digest));
  }
  if (digest.substr(0, colon) != "sha256") {
    return Error(Code::kUnsupported, std::string(what) + ": digest algorithm " +
                                         Quote(digest.substr(0, colon)) + " is not supported");
  }
  if (!IsHexDigest(digest.substr(colon + 1))) {
    return Error(Code::kMalformed, std::string(what) + ": bad digest " + Quote(digest));
  }
  return std::string(digest.substr(colon + 1));
}

Result<internal::Platform> ParsePlatform(std::string_view text) {
  internal::Platform p;
  const size_t a = text.find('/');
  if (a == std::string_view::npos || a == 0) {
    return Error(Code::kInvalidArgument, "platform " + Quote(text) + " is not os/arch[/variant]");
  }
  p.os = std::string(text.substr(0, a));
  std::string_view rest = text.substr(a + 1);
  const size_t b = rest.find('/');
  p.architecture = std::string(rest.substr(0, b));
  if (b != std::string_view::npos) {
    p.variant = std::string(rest.substr(b + 1));
    if (p.variant.empty() || p.variant.find('/') != std::string::npos) {
      return Error(Code::kInvalidArgument, "platform " + Quote(text) + " is not os/arch[/variant]");
    }
  }
  if (p.architecture.empty()) {
    return Error(Code::kInvalidArgument, "platform " + Quote(text) + " is not os/arch[/variant]");
  }
  return p;
}

std::string PlatformString(const internal::Platform& p) {
  std::string s = p.os + "/" + p.architecture;
  if (!p.variant.empty()) {
    s += "/" + p.variant;
  }
  return s;
}

// Matches compares os and architecture, and the variant when both sides name one.
bool Matches(const internal::Platform& have, const internal::Platform& want) {
  return have.os == want.os && have.architecture == want.architecture &&
         (have.variant.empty() || want.variant.empty() || have.variant == want.variant);
}

// LayerMediaType classifies a manifest's layer media type (image-spec media-types.md).
Result<void> CheckLayerDescriptor(const Descriptor& d, size_t index) {
  const std::string what = "layer " + std::to_string(index) + " (" + d.digest + ")";
  constexpr std::array<std::string_view, 5> kAccepted = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      kOciLayerZstd,
      kDockerLayerTar,
      kDockerLayerGzip,
  };
  if (d.media_type.find("nondistributable") != std::string::npos ||
      d.media_type.find("foreign") != std::string::npos || !d.urls.empty()) {
    return Error(
        Code::kUnsupported,
        what + ": non-distributable (foreign) layers are not supported: " + Quote(d.media_type));
  }
  if (std::ranges::find(kAccepted, d.media_type) == kAccepted.end()) {
    return Error(Code::kUnsupported, what + ": unsupported media type " + Quote(d.media_type));
  }
  return Ok();
}

class Importer {
 public:
  Importer(const ImportOptions& options, internal::LayerRules rules, internal::Staging& staging,
           internal::Budget& budget, internal::Platform platform, internal::Source& source)
      : options_(options),
        rules_(std::move(rules)),
        staging_(staging),
        budget_(budget),
        platform_(std::move(platform)),
        source_(source) {}

  Result<Image> ImportOci();
  Result<Image> ImportDocker();

 private:
  // ReadBlob reads a small blob named by `d` and checks its size and digest.
  Result<Bytes> ReadBlob(const Descriptor& d, std::string_view what);
  // SelectManifest picks the image manifest for our platform from an index's entries, following
  // nested image indexes.
  Result<Descriptor> SelectManifest(std::vector<Descriptor> descriptors, std::string doc);
  Result<void> CheckPlatform(const ConfigDoc& config) const;
  Result<void> CheckLayerCount(size_t layers, const ConfigDoc& config) const;
  // ApplyBlob reads the layer in member `name`, checks it against what the manifest (`digest`,
  // `size`, when known) and the config (`diff_id`) say, and applies it to image->tree.
  Result<void> ApplyBlob(const std::string& name, size_t index, LayerInfo info, bool know_digest,
                         bool know_size, Image* image);

  const ImportOptions& options_;
  internal::LayerRules rules_;
  internal::Staging& staging_;
  internal::Budget& budget_;
  internal::Platform platform_;
  internal::Source& source_;
};

Result<Bytes> Importer::ReadBlob(const Descriptor& d, std::string_view what) {
  const std::string label = std::string(what) + " blob " + d.digest;
  ASSIGN_OR_RETURN(std::string hex, CheckDigest(d.digest, label));
  const std::string name = "blobs/sha256/" + hex;
  if (d.size > kMaxJsonBytes) {
    return Error(Code::kLimitExceeded, label + ": " + std::to_string(d.size) + " bytes");
  }
  Result<Bytes> bytes = source_.ReadSmall(name, kMaxJsonBytes);
  if (!bytes) {
    if (bytes.error().code() == Code::kNotFound) {
      return Error(Code::kNotFound, label + ": missing (" + name + ")");
    }
    return std::move(bytes).error().WithContext(label);
  }
  if (bytes->size() != d.size) {
    return Error(Code::kVerifyFailed, label + ": size is " + std::to_string(bytes->size()) +
                                          ", descriptor says " + std::to_string(d.size));
  }
  const std::string actual = Sha256Digest(*bytes);
  if (actual != d.digest) {
    return Error(Code::kVerifyFailed, label + ": content has digest " + actual);
  }
  return bytes;
}

Result<Descriptor> Importer::SelectManifest(std::vector<Descriptor> descriptors, std::string doc) {
  // Each round searches one image index; a lone nested index is searched in the next round.
  for (int depth = 0; depth <= kMaxIndexDepth; ++depth) {
    std::vector<Descriptor> matching;    // image manifests for our platform
    std::vector<Descriptor> unlabelled;  // image manifests that name no platform
    std::vector<Descriptor> indexes;
    std::set<std::string> seen;
    std::set<std::string> available;
    for (const Descriptor& d : descriptors) {
      if (d.has_platform) {
        available.insert(PlatformString(d.platform));
        if (!Matches(d.platform, platform_)) {
          continue;
        }
      }
      Descriptor copy = d;
      if (copy.media_type.empty()) {
        // index.json entries should carry mediaType; older tools left it out. Look inside.
        ASSIGN_OR_RETURN(Bytes blob, ReadBlob(d, "manifest"));
        copy.media_type = internal::SniffMediaType(blob);
        if (copy.media_type.empty()) {
          copy.media_type =
              internal::LooksLikeIndex(blob) ? std::string(kOciIndex) : std::string(kOciManifest);
        }
      }
      if (!seen.insert(copy.digest).second) {
        continue;  // the same image under several names (tags)
      }
      if (IsManifestType(copy.media_type)) {
        (d.has_platform ? matching : unlabelled).push_back(std::move(copy));
      } else if (IsIndexType(copy.media_type)) {
        indexes.push_back(std::move(copy));
      }
      // Other types (attestations, artifacts) are not images.
    }
    // A manifest naming our platform wins over ones that name none.
    std::vector<Descriptor>& manifests = matching.empty() ? unlabelled : matching;
    if (manifests.size() == 1) {
      return manifests.front();
    }
    if (manifests.size() > 1) {
      return Error(Code::kInvalidArgument,
                   doc + ": " + std::to_string(manifests.size()) + " different images match " +
                       PlatformString(platform_) + "; import needs exactly one");
    }
    if (indexes.size() > 1) {
      return Error(Code::kInvalidArgument, doc + ": " + std::to_string(indexes.size()) +
                                               " image indexes; import needs one");
    }
    if (indexes.empty()) {
      std::string list;
      for (const std::string& p : available) {
        list += (list.empty() ? "" : ", ") + p;
      }
      return Error(Code::kNotFound, doc + ": no image for " + PlatformString(platform_) +
                                        (list.empty() ? "" : " (available: " + list + ")"));
    }
    ASSIGN_OR_RETURN(Bytes blob, ReadBlob(indexes.front(), "image index"));
    doc = "image index " + indexes.front().digest;
    ASSIGN_OR_RETURN(internal::IndexDoc index, internal::ParseIndex(blob, doc));
    descriptors = std::move(index.manifests);
  }
  return Error(Code::kMalformed, doc + ": image indexes nested too deeply");
}

Result<void> Importer::CheckPlatform(const ConfigDoc& config) const {
  if (config.os.empty() || config.architecture.empty()) {
    return Ok();
  }
  internal::Platform have{config.os, config.architecture, config.variant};
  if (!Matches(have, platform_)) {
    return Error(Code::kFailedPrecondition,
                 "image is for " + PlatformString(have) + ", not " + PlatformString(platform_));
  }
  return Ok();
}

Result<void> Importer::CheckLayerCount(size_t layers, const ConfigDoc& config) const {
  if (layers > options_.max_layers) {
    return Error(Code::kLimitExceeded, "image has " + std::to_string(layers) +
                                           " layers, more than " +
                                           std::to_string(options_.max_layers));
  }
  if (config.diff_ids.size() != layers) {
    return Error(Code::kMalformed, "config lists " + std::to_string(config.diff_ids.size()) +
                                       " diff_ids for " + std::to_string(layers) + " layers");
  }
  return Ok();
}

Result<void> Importer::ApplyBlob(const std::string& name, size_t index, LayerInfo info,
                                 bool know_digest, bool know_size, Image* image) {
  const std::string label =
      "layer " + std::to_string(index) + " (" + (know_digest ? info.digest : Quote(name)) + ")";
  RETURN_IF_ERROR(CheckDigest(info.diff_id, label + " diff_id"));
  Result<std::unique_ptr<internal::LayerInput>> input = source_.Open(name);
  if (!input) {
    if (input.error().code() == Code::kNotFound) {
      return Error(Code::kNotFound, label + ": missing blob " + Quote(name));
    }
    return std::move(input).error().WithContext(label);
  }
  Bytes digest_on_error;
  Result<internal::ParsedLayer> parsed =
      internal::ReadLayer(**input, staging_, budget_, rules_, &digest_on_error);
  if (!parsed) {
    if (know_digest && !digest_on_error.empty()) {
      const std::string actual = "sha256:" + HexEncode(digest_on_error);
      if (actual != info.digest) {
        return Error(Code::kVerifyFailed, label + ": blob content has digest " + actual);
      }
    }
    return std::move(parsed).error().WithContext(label);
  }
  internal::ParsedLayer& layer = *parsed;
  const std::string blob_digest = "sha256:" + HexEncode(layer.blob_sha256);
  if (know_size && layer.blob_size != info.size) {
    return Error(Code::kVerifyFailed, label + ": blob is " + std::to_string(layer.blob_size) +
                                          " bytes, descriptor says " + std::to_string(info.size));
  }
  if (know_digest && blob_digest != info.digest) {
    return Error(Code::kVerifyFailed, label + ": blob content has digest " + blob_digest);
  }
  const std::string diff_id = "sha256:" + HexEncode(layer.diff_sha256);
  if (diff_id != info.diff_id) {
    return Error(Code::kVerifyFailed, label + ": uncompressed digest " + diff_id +
                                          " does not match config diff_id " + info.diff_id);
  }
  info.digest = blob_digest;
  info.size = layer.blob_size;
  if (info.media_type.empty()) {
    switch (layer.compression) {
      case internal::Compression::kNone:
        info.media_type = kDockerLayerTar;
        break;
      case internal::Compression::kGzip:
        info.media_type = kDockerLayerGzip;
        break;
      case internal::Compression::kZstd:
        info.media_type = kOciLayerZstd;
        break;
    }
  }
  Result<void> committed =
      internal::CommitLayer(layer, image->tree, budget_, rules_, staging_.in_memory());
  if (!committed) {
    return std::move(committed).error().WithContext(label);
  }
  for (const std::string& w : layer.warnings) {
    std::string warning = label;
    warning += ": ";
    warning += w;
    image->warnings.push_back(std::move(warning));
  }
  image->layers.push_back(std::move(info));
  return Ok();
}

Result<Image> Importer::ImportOci() {
  Image image;
  image.format = "oci-layout";
  // image-layout.md: oci-layout marks the layout and its version.
  Result<Bytes> layout = source_.ReadSmall("oci-layout", kMaxJsonBytes);
  if (!layout) {
    return std::move(layout).error().WithContext("OCI layout");
  }
  ASSIGN_OR_RETURN(std::string version, internal::ParseLayoutVersion(*layout));
  if (version != "1.0.0") {
    return Error(Code::kUnsupported, "oci-layout: imageLayoutVersion " + Quote(version) +
                                         " is not supported (want 1.0.0)");
  }
  ASSIGN_OR_RETURN(Bytes index_bytes, source_.ReadSmall("index.json", kMaxJsonBytes));
  ASSIGN_OR_RETURN(internal::IndexDoc index, internal::ParseIndex(index_bytes, "index.json"));
  ASSIGN_OR_RETURN(Descriptor manifest_desc,
                   SelectManifest(std::move(index.manifests), "index.json"));
  ASSIGN_OR_RETURN(Bytes manifest_bytes, ReadBlob(manifest_desc, "manifest"));
  const std::string manifest_name = "manifest " + manifest_desc.digest;
  ASSIGN_OR_RETURN(internal::ManifestDoc manifest,
                   internal::ParseManifest(manifest_bytes, manifest_name));
  if (!manifest.media_type.empty() && !IsManifestType(manifest.media_type)) {
    return Error(Code::kUnsupported,
                 manifest_name + ": media type " + Quote(manifest.media_type) + " is not an image");
  }
  image.manifest_digest = manifest_desc.digest;

  ASSIGN_OR_RETURN(Bytes config_bytes, ReadBlob(manifest.config, "config"));
  const std::string config_name = "config " + manifest.config.digest;
  ASSIGN_OR_RETURN(ConfigDoc config, internal::ParseConfig(config_bytes, config_name));
  image.config_digest = manifest.config.digest;
  RETURN_IF_ERROR(CheckPlatform(config));
  RETURN_IF_ERROR(CheckLayerCount(manifest.layers.size(), config));

  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    const Descriptor& d = manifest.layers[i];
    RETURN_IF_ERROR(CheckLayerDescriptor(d, i));
    ASSIGN_OR_RETURN(std::string hex,
                     CheckDigest(d.digest, "layer " + std::to_string(i) + " digest"));
    LayerInfo info;
    info.digest = d.digest;
    info.diff_id = config.diff_ids[i];
    info.media_type = d.media_type;
    info.size = d.size;
    RETURN_IF_ERROR(ApplyBlob("blobs/sha256/" + hex, i, std::move(info), /*know_digest=*/true,
                              /*know_size=*/true, &image));
  }
  image.config = std::move(config.config);
  return image;
}

// DigestFromName returns the sha256 a docker archive member's name promises, if it makes one:
// "<hex>.json" (a config, named by the image ID) or "blobs/sha256/<hex>" (docker 25+).
std::string DigestFromName(std::string_view name) {
  constexpr std::string_view kBlobs = "blobs/sha256/";
  if (name.size() == kBlobs.size() + 64 && name.substr(0, kBlobs.size()) == kBlobs &&
      IsHexDigest(name.substr(kBlobs.size()))) {
    return "sha256:" + std::string(name.substr(kBlobs.size()));
  }
  if (name.size() == 64 + 5 && name.substr(64) == ".json" && IsHexDigest(name.substr(0, 64))) {
    return "sha256:" + std::string(name.substr(0, 64));
  }
  return {};
}

Result<Image> Importer::ImportDocker() {
  Image image;
  image.format = "docker-archive";
  ASSIGN_OR_RETURN(Bytes manifest_bytes, source_.ReadSmall("manifest.json", kMaxJsonBytes));
  ASSIGN_OR_RETURN(std::vector<internal::DockerManifestEntry> entries,
                   internal::ParseDockerManifest(manifest_bytes));
  if (entries.size() != 1) {
    return Error(Code::kInvalidArgument, "manifest.json lists " + std::to_string(entries.size()) +
                                             " images; import needs exactly one");
  }
  const internal::DockerManifestEntry& entry = entries.front();

  Result<std::string> config_name = image::NormalizePath(entry.config);
  if (!config_name) {
    return Error(Code::kMalformed, "manifest.json: bad Config " + Quote(entry.config));
  }
  Result<Bytes> config_bytes = source_.ReadSmall(*config_name, kMaxJsonBytes);
  if (!config_bytes) {
    return std::move(config_bytes).error().WithContext("config");
  }
  image.config_digest = Sha256Digest(*config_bytes);
  if (const std::string promised = DigestFromName(*config_name);
      !promised.empty() && promised != image.config_digest) {
    return Error(Code::kVerifyFailed,
                 "config " + Quote(*config_name) + ": content has digest " + image.config_digest);
  }
  ASSIGN_OR_RETURN(ConfigDoc config,
                   internal::ParseConfig(*config_bytes, "config " + *config_name));
  RETURN_IF_ERROR(CheckPlatform(config));
  RETURN_IF_ERROR(CheckLayerCount(entry.layers.size(), config));

  for (size_t i = 0; i < entry.layers.size(); ++i) {
    Result<std::string> name = image::NormalizePath(entry.layers[i]);
    if (!name) {
      return Error(Code::kMalformed, "manifest.json: bad layer name " + Quote(entry.layers[i]));
    }
    LayerInfo info;
    info.digest = DigestFromName(*name);
    info.diff_id = config.diff_ids[i];
    const bool know_digest = !info.digest.empty();
    RETURN_IF_ERROR(ApplyBlob(*name, i, std::move(info), know_digest, /*know_size=*/false, &image));
  }
  image.config = std::move(config.config);
  return image;
}

}  // namespace

Result<Image> ImportImage(const std::string& path, const ImportOptions& options) {
  ASSIGN_OR_RETURN(internal::LayerRules rules, internal::MakeLayerRules(options));
  ASSIGN_OR_RETURN(internal::Platform platform, ParsePlatform(options.platform));
  ASSIGN_OR_RETURN(internal::Staging staging, internal::Staging::Create(options.staging_dir));
  internal::Budget budget{options.max_total_bytes, options.max_total_bytes};

  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return Error(Code::kNotFound, path + ": no such file or directory");
    }
    return sys::IoError("stat " + path, errno);
  }
  std::unique_ptr<internal::Source> source;
  if (S_ISDIR(st.st_mode)) {
    ASSIGN_OR_RETURN(source, internal::OpenDirSource(path));
  } else if (S_ISREG(st.st_mode)) {
    Result<std::unique_ptr<internal::Source>> tar =
        internal::OpenTarSource(path, staging.dir(), budget, options.max_entries);
    if (!tar) {
      return std::move(tar).error().WithContext("reading image archive");
    }
    source = *std::move(tar);
  } else {
    return Error(Code::kInvalidArgument, path + ": not a directory or a regular file");
  }

  Importer importer(options, std::move(rules), staging, budget, std::move(platform), *source);
  Result<Image> image = Error(Code::kInternal, "unset");
  if (source->Exists("index.json")) {
    image = importer.ImportOci();
  } else if (source->Exists("manifest.json")) {
    image = importer.ImportDocker();
  } else {
    return Error(Code::kMalformed, path +
                                       ": neither an OCI image layout (no index.json) nor a "
                                       "docker archive (no manifest.json)");
  }
  if (!image) {
    return std::move(image).error().WithContext(path);
  }
  // Every rule above keeps the tree consistent; a failure here is a bug in this module.
  if (Result<void> valid = image->tree.Validate(); !valid) {
    return Error(Code::kInternal, "imported tree is inconsistent: " + valid.error().message());
  }
  return image;
}

}  // namespace enclavia::oci
