// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BUILDER_BUILDER_H_
#define ENCLAVIA_LIB_BUILDER_BUILDER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"
#include "lib/config/enclave_config.h"
#include "lib/config/enclaviafile.h"
#include "lib/config/lock.h"
#include "lib/eif/writer.h"
#include "lib/image/tree.h"

// The image builder: Enclaviafile + enclavia.lock + the inputs they name -> a byte-identical EIF.
// Ramdisk 1 is the Enclavia runtime (libexec/enclavia, described by its runtime.toml), ramdisk 2
// the application root file system plus /etc/enclavia/enclave.toml. Nothing here reads the wall
// clock, the user's name, the umask or a file's mtime. docs/builder.md explains the pipeline.
namespace enclavia::builder {

// Environment says where this machine keeps the builder's inputs.
struct Environment {
  std::string runtime_dir;  // runtime.toml and the runtime binaries
  std::string debian_kernel_dir = "/usr/local/lib/enclavia/kernel";  // vmlinuz, config
  std::string nitro_blobs_dir = "/usr/share/nitro_enclaves/blobs";
  std::optional<int64_t> source_date_epoch;  // $SOURCE_DATE_EPOCH, when set
  std::string temp_dir = "/tmp";             // OCI staging (removed after the build)
};

// DefaultEnvironment: runtime_dir from $ENCLAVIA_RUNTIME_DIR, else <this executable's
// dir>/../libexec/enclavia; kernel dirs from $ENCLAVIA_KERNEL_DIR and $NITRO_BLOBS_DIR;
// $SOURCE_DATE_EPOCH (a decimal integer, else an error); $TMPDIR.
Result<Environment> DefaultEnvironment();

enum class LockMode {
  kCheck,    // write the lock when missing; refuse inputs that differ from an existing one
  kUpdate,   // write the lock from the current inputs
  kRequire,  // the lock must exist and match (reproduce); never written
};

enum class LockStatus { kCreated, kVerified, kUpdated };

struct Progress {
  std::string_view stage;  // "kernel", "runtime", "app", "image"
  uint64_t done = 0;
  uint64_t total = 0;
};

struct BuildRequest {
  std::string path;    // a directory holding an Enclaviafile, or the file itself
  std::string output;  // EIF to write; "" measures only
  LockMode lock_mode = LockMode::kCheck;
  const eif::SigningKey* signer = nullptr;
  std::function<void(const Progress&)> progress;
};

struct BuildResult {
  config::Enclaviafile enclaviafile;
  config::EnclaveConfig enclave_config;
  config::Lock lock;  // the inputs as found
  std::string lock_path;
  LockStatus lock_status = LockStatus::kVerified;
  eif::Measurements measurements;
  std::string kernel_path;
  std::string cmdline;
  image::Tree runtime;  // ramdisk 1
  image::Tree app;      // ramdisk 2
  uint64_t runtime_bytes = 0;  // cpio sizes
  uint64_t app_bytes = 0;
  uint64_t image_bytes = 0;  // EIF size when written
  std::vector<std::string> warnings;
  int64_t source_date_epoch = 0;
};

// Build assembles the image described at `request.path` and writes it (atomically) to
// `request.output`. The lock is checked before anything is written: a differing input fails
// with kFailedPrecondition and one line per differing input (naming it), and leaves no output.
Result<BuildResult> Build(const BuildRequest& request, const Environment& env);

// WriteRamdisk renders `tree` as the deterministic cpio archive Build puts in the image.
Result<Bytes> WriteRamdisk(const image::Tree& tree, int64_t source_date_epoch);

// FormatBuildTime renders seconds since the epoch the way nitro-cli's metadata does
// ("1970-01-01T00:00:00+00:00").
std::string FormatBuildTime(int64_t epoch_seconds);

}  // namespace enclavia::builder

#endif  // ENCLAVIA_LIB_BUILDER_BUILDER_H_
