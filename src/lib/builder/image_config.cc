// SPDX-License-Identifier: Apache-2.0
#include "lib/builder/image_config.h"

#include <string_view>

#include "lib/eif/reader.h"
#include "lib/image/cpio.h"

namespace enclavia::builder {

namespace {
// An application ramdisk bigger than this is not read for its configuration.
constexpr uint64_t kMaxRamdisk = uint64_t{4} << 30;
constexpr uint64_t kMaxConfig = 1 << 20;
}  // namespace

Result<config::EnclaveConfig> ReadImageConfig(const std::string& path) {
  eif::ReadLimits limits;
  auto info = eif::ReadEif(path, limits);
  if (!info) {
    return info.error().WithContext(path);
  }
  for (auto it = info->sections.rbegin(); it != info->sections.rend(); ++it) {
    if (it->type != eif::SectionType::kRamdisk) {
      continue;
    }
    auto data = eif::ReadSectionData(path, *it, kMaxRamdisk);
    if (!data) {
      return data.error().WithContext(path);
    }
    auto entries = image::ListCpio(*data);
    if (!entries) {
      return entries.error().WithContext(path);
    }
    for (const image::CpioEntry& entry : *entries) {
      if (entry.path != config::kEnclaveConfigPath) {
        continue;
      }
      if (entry.type != image::EntryType::kFile) {
        return Error(Code::kMalformed, path + ": enclave.toml is not a regular file");
      }
      if (entry.size > kMaxConfig || entry.data_offset + entry.size > data->size()) {
        return Error(Code::kMalformed, path + ": enclave.toml is larger than 1 MiB");
      }
      std::string_view text(reinterpret_cast<const char*>(data->data() + entry.data_offset),
                            static_cast<size_t>(entry.size));
      auto parsed = config::ParseEnclaveConfig(text);
      if (!parsed) {
        return parsed.error().WithContext(path + ": enclave.toml");
      }
      return *parsed;
    }
  }
  return Error(Code::kNotFound, path + ": no ramdisk holds " +
                                    std::string(config::kEnclaveConfigPath));
}

}  // namespace enclavia::builder
