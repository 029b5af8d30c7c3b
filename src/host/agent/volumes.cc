// SPDX-License-Identifier: Apache-2.0
#include "host/agent/volumes.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "host/storage/directory_store.h"
#include "host/storage/s3_store.h"
#include "lib/base/encoding.h"
#include "lib/blockstore/format.h"
#include "lib/config/names.h"

namespace enclavia::host {

using json = nlohmann::json;

namespace {

bool ValidBackend(const std::string& backend) {
  if (backend == "dir") {
    return true;
  }
  if (backend.starts_with("dir:/")) {
    return backend.find("/../") == std::string::npos && !backend.ends_with("/..");
  }
  if (backend.starts_with("s3://")) {
    std::string rest = backend.substr(5);
    std::string bucket = rest.substr(0, rest.find('/'));
    return bucket.size() >= 3 && bucket.size() <= 63 &&
           bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") == std::string::npos;
  }
  return false;
}

// OpenS3Backend: s3://BUCKET[/PREFIX]; each enclave's volume under PREFIX/NAME/. The endpoint
// is ENCLAVIA_S3_ENDPOINT (default AWS's regional endpoint, virtual-host addressing), the region
// AWS_REGION (default us-east-1), the credentials AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
Result<std::unique_ptr<storage::ObjectStore>> OpenS3Backend(const std::string& bucket_and_prefix,
                                                            const std::string& name) {
  S3Config config;
  size_t slash = bucket_and_prefix.find('/');
  config.bucket = bucket_and_prefix.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : bucket_and_prefix.substr(slash + 1);
  while (!prefix.empty() && prefix.back() == '/') {
    prefix.pop_back();
  }
  config.key_prefix = (prefix.empty() ? "" : prefix + "/") + (name.empty() ? "" : name + "/");
  const char* region = std::getenv("AWS_REGION");
  config.region = region != nullptr && *region != '\0' ? region : "us-east-1";
  const char* endpoint = std::getenv("ENCLAVIA_S3_ENDPOINT");
  if (endpoint != nullptr && *endpoint != '\0') {
    config.endpoint = endpoint;
    config.addressing = S3Addressing::kPath;
  } else {
    config.endpoint = "https://s3." + config.region + ".amazonaws.com";
    config.addressing = S3Addressing::kVirtualHost;
  }
  ASSIGN_OR_RETURN(auto store, S3ObjectStore::Create(std::move(config)));
  return std::unique_ptr<storage::ObjectStore>(std::move(store));
}

}  // namespace

Result<VolumeSpec> ParseVolumeSpec(const json& object) {
  if (!object.is_object()) {
    return Error(Code::kInvalidArgument, "\"storage\" must be an object");
  }
  VolumeSpec spec;
  for (const auto& [key, value] : object.items()) {
    if (key == "size_bytes") {
      bool whole = value.is_number_unsigned() ||
                   (value.is_number_integer() && value.get<int64_t>() > 0);
      if (!whole || value.get<uint64_t>() == 0 || value.get<uint64_t>() % 4096 != 0 ||
          value.get<uint64_t>() > (uint64_t{16} << 40)) {
        return Error(Code::kInvalidArgument,
                     "storage.size_bytes must be a non-zero multiple of 4096 (at most 16 TiB)");
      }
      spec.size_bytes = value.get<uint64_t>();
    } else if (key == "backend") {
      if (!value.is_string() || !ValidBackend(value.get<std::string>())) {
        return Error(Code::kInvalidArgument,
                     "storage.backend must be dir, dir:/PATH or s3://BUCKET[/PREFIX]");
      }
      spec.backend = value.get<std::string>();
    } else if (key == "witnesses") {
      if (!value.is_array() || value.size() > transport::kMaxWitnesses) {
        return Error(Code::kInvalidArgument, "storage.witnesses must be a list of at most " +
                                                 std::to_string(transport::kMaxWitnesses) +
                                                 " enclave names");
      }
      for (const json& name : value) {
        if (!name.is_string() || !config::ValidEnclaveName(name.get<std::string>())) {
          return Error(Code::kInvalidArgument, "storage.witnesses holds a bad enclave name");
        }
        spec.witnesses.push_back(name.get<std::string>());
      }
    } else if (key == "recovery_statement") {
      auto raw = value.is_string() ? HexDecode(value.get<std::string>())
                                   : Result<Bytes>(Error(Code::kInvalidArgument, ""));
      if (!raw || raw->size() > 64 * 1024) {
        return Error(Code::kInvalidArgument, "storage.recovery_statement must be hex");
      }
      spec.recovery_statement = std::move(*raw);
    } else {
      return Error(Code::kInvalidArgument, "unknown storage field \"" + key + "\"");
    }
  }
  if (spec.size_bytes == 0) {
    return Error(Code::kInvalidArgument, "storage needs size_bytes");
  }
  return spec;
}

json VolumeSpecJson(const VolumeSpec& spec) {
  json out = {{"size_bytes", spec.size_bytes},
              {"backend", spec.backend},
              {"witnesses", spec.witnesses}};
  if (spec.recovery_statement) {
    out["recovery_statement"] = HexEncode(*spec.recovery_statement);
  }
  return out;
}

Result<std::unique_ptr<storage::ObjectStore>> OpenBackend(const VolumeSpec& spec,
                                                          const std::string& volumes_dir,
                                                          const std::string& name) {
  if (spec.backend == "dir" || spec.backend.starts_with("dir:")) {
    std::string root = spec.backend == "dir" ? volumes_dir + "/" + name : spec.backend.substr(4);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(root).parent_path(), ec);
    ASSIGN_OR_RETURN(auto store, DirectoryObjectStore::Open(root));
    return std::unique_ptr<storage::ObjectStore>(std::move(store));
  }
  return OpenS3Backend(spec.backend.substr(5), name);
}

Result<size_t> CopyObjects(storage::ObjectStore& from, storage::ObjectStore& to) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, from.List(""));
  size_t copied = 0;
  for (const std::string& name : names) {
    auto data = from.Get(name);
    if (!data) {
      if (data.error().code() == Code::kNotFound) {
        continue;  // Collected since the listing: an older version's segment.
      }
      return std::move(data).error();
    }
    RETURN_IF_ERROR(to.Put(name, *data));
    ++copied;
  }
  return copied;
}

Result<std::unique_ptr<storage::ObjectStore>> OpenTarget(const std::string& target,
                                                         const std::string& name) {
  if (!target.starts_with("dir:/") && !target.starts_with("s3://")) {
    return Error(Code::kInvalidArgument, "a backup goes to dir:/PATH or s3://BUCKET[/PREFIX]");
  }
  VolumeSpec spec;
  spec.backend = target;
  if (!ValidBackend(target)) {
    return Error(Code::kInvalidArgument, "bad backup target " + target);
  }
  return OpenBackend(spec, "", name);
}

Result<json> RecoveryInfo(storage::ObjectStore& store, uint64_t version) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, store.List("seg/"));
  std::optional<blockstore::StoredSuperblock> best;
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    auto seq = blockstore::ParseSegmentName(*it);
    if (!seq) {
      continue;
    }
    auto located = blockstore::LocateSuperblock(store, *seq);
    if (!located) {
      continue;  // A staging segment, or damaged: not a candidate.
    }
    if (version == 0 ? (!best || located->header.version > best->header.version)
                     : located->header.version == version) {
      best = std::move(*located);
      if (version != 0) {
        break;
      }
    }
  }
  if (!best) {
    return Error(Code::kNotFound, version == 0 ? std::string("the volume has no superblock")
                                               : "no stored superblock of version " +
                                                     std::to_string(version));
  }
  return json{{"volume_id", HexEncode(best->header.volume_id)},
              {"version", best->header.version},
              {"epoch", best->header.epoch},
              {"superblock_hash", HexEncode(best->hash)}};
}

Result<json> VolumeSummary(storage::ObjectStore& store) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, store.List(""));
  size_t segments = 0;
  for (const std::string& name : names) {
    segments += blockstore::ParseSegmentName(name).has_value() ? 1 : 0;
  }
  return json{{"objects", names.size()}, {"segments", segments}};
}

Result<std::unique_ptr<EnclaveStorage>> EnclaveStorage::Start(const std::string& name,
                                                              const VolumeSpec& spec,
                                                              const transport::Endpoint& endpoint,
                                                              const std::string& volumes_dir,
                                                              WitnessAddress witness_address,
                                                              const std::string& kms_key_id) {
  std::unique_ptr<EnclaveStorage> out(new EnclaveStorage());
  out->spec_ = spec;
  ServiceOptions options;
  if (spec.attached()) {
    ASSIGN_OR_RETURN(out->backend_, OpenBackend(spec, volumes_dir, name));
    storage::wire::Attachment attachment;
    attachment.label = name;
    attachment.size_bytes = spec.size_bytes;
    attachment.kms_key_id = kms_key_id.empty() ? name : kms_key_id;
    attachment.witnesses = static_cast<uint8_t>(spec.witnesses.size());
    attachment.recovery_statement = spec.recovery_statement;
    options.attachment = attachment;
  } else {
    out->backend_ = std::make_unique<storage::MemoryObjectStore>();  // Never reached: no volume.
  }
  ASSIGN_OR_RETURN(out->service_,
                   StorageService::Start(
                       transport::HostListenForEnclave(endpoint, transport::kStoragePort),
                       *out->backend_, options));
  for (size_t i = 0; i < spec.witnesses.size(); ++i) {
    std::string witness = spec.witnesses[i];
    ASSIGN_OR_RETURN(
        auto forward,
        PortForward::Start(transport::HostListenForEnclave(
                               endpoint, transport::kWitnessPortBase + static_cast<uint32_t>(i)),
                           [witness_address, witness] { return witness_address(witness); }));
    out->forwards_.push_back(std::move(forward));
  }
  return out;
}

EnclaveStorage::~EnclaveStorage() {
  forwards_.clear();
  if (service_) {
    service_->Stop();
  }
}

json EnclaveStorage::Json() const {
  json out = VolumeSpecJson(spec_);
  out.erase("recovery_statement");
  if (auto report = service_->last_report()) {
    json status = json::parse(report->status, nullptr, /*allow_exceptions=*/false);
    out["status"] = status.is_object() ? status : json(report->status);
    out["reported"] = std::chrono::duration_cast<std::chrono::seconds>(
                          report->received.time_since_epoch())
                          .count();
  } else {
    out["status"] = json::object();
  }
  ServiceStats s = service_->stats();
  out["requests"] = s.requests;
  out["bytes_in"] = s.bytes_in;
  out["bytes_out"] = s.bytes_out;
  return out;
}

ServiceStats EnclaveStorage::stats() const { return service_->stats(); }

}  // namespace enclavia::host
