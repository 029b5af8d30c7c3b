// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CONFIG_LOCK_H_
#define ENCLAVIA_LIB_CONFIG_LOCK_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"

// enclavia.lock pins every input of an image by SHA-256: the kernel, each runtime file and the
// toolchain that built the runtime, each OCI layer or every file of a rootfs directory, and the
// SOURCE_DATE_EPOCH used. `enclavia build` writes it when missing and refuses inputs that differ
// from it; `enclavia reproduce` rebuilds from it. Format: docs/formats/enclaviafile.md.
namespace enclavia::config {

inline constexpr std::string_view kLockName = "enclavia.lock";
inline constexpr int kLockVersion = 1;

struct Lock {
  int64_t source_date_epoch = 0;
  std::string kernel_source;  // "debian", "nitro" or "path"
  std::string kernel_sha256;  // lowercase hex
  std::map<std::string, std::string> toolchain;      // the runtime manifest's [toolchain]
  std::map<std::string, std::string> runtime_files;  // path in ramdisk 1 -> sha256 hex
  std::string app_source;                            // "rootfs" or "oci"
  std::string oci_config_digest;                     // "sha256:<hex>" (oci)
  std::vector<std::string> oci_layers;               // "sha256:<hex>" in order (oci)
  std::map<std::string, std::string> app_files;      // rootfs path -> sha256 hex (rootfs)
};

Result<Lock> ParseLock(std::string_view text);
// SerializeLock renders `lock` deterministically (sorted keys, fixed section order).
std::string SerializeLock(const Lock& lock);

// DiffLocks lists, one line each, every input of `current` that differs from `locked`, naming
// the input ("app file bin/hello: sha256 3f2a… in the lock, 9c1e… now"). Empty when they agree.
// At most `max_lines` lines; a final line counts the rest.
std::vector<std::string> DiffLocks(const Lock& locked, const Lock& current, size_t max_lines = 20);

// RuntimeManifest is libexec/enclavia/runtime.toml, written by CMake beside the runtime
// binaries: the files of ramdisk 1 and the toolchain that built them.
struct RuntimeFile {
  std::string path;    // inside ramdisk 1, normalized
  std::string source;  // file name in the manifest's directory
  uint32_t mode = 0755;
};
struct RuntimeManifest {
  std::map<std::string, std::string> toolchain;
  std::vector<RuntimeFile> files;
};
Result<RuntimeManifest> ParseRuntimeManifest(std::string_view text);

}  // namespace enclavia::config

#endif  // ENCLAVIA_LIB_CONFIG_LOCK_H_
