// SPDX-License-Identifier: Apache-2.0
#include "lib/builder/witness.h"

#include <filesystem>

#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/builder/internal/temp_dir.h"

namespace enclavia::builder {
namespace {


constexpr std::string_view kEnclaviafile = R"(# The built-in anti-rollback witness (docs/witness.md).
[image]
name = "enclavia-witness"
version = "1"

[app]
rootfs = "rootfs"
cmd = ["/bin/enclavia-witness", "--listen", "tcp:127.0.0.1:7000"]
port = 7000
restart = "always"

[eif]
memory_mib = 256
cpus = 1
)";

}  // namespace

Result<BuildResult> BuildWitnessImage(const Environment& env, const std::string& output) {
  const std::string binary = env.runtime_dir + "/" + std::string(kWitnessBinary);
  ASSIGN_OR_RETURN(Bytes program, ReadFile(binary, 256u << 20));
  ASSIGN_OR_RETURN(internal::TempDir dir,
                   internal::TempDir::Create(env.temp_dir, "enclavia-witness"));
  std::error_code ec;
  std::filesystem::create_directories(dir.path() + "/rootfs/bin", ec);
  if (ec) {
    return Error(Code::kIo, "cannot create " + dir.path() + "/rootfs/bin: " + ec.message());
  }
  const std::string target = dir.path() + "/rootfs/bin/" + std::string(kWitnessBinary);
  RETURN_IF_ERROR(WriteFileAtomic(target, program, 0755));
  RETURN_IF_ERROR(WriteFileAtomic(dir.path() + "/Enclaviafile",
                            ByteSpan(reinterpret_cast<const uint8_t*>(kEnclaviafile.data()),
                                     kEnclaviafile.size())));
  BuildRequest request;
  request.path = dir.path();
  request.output = output;
  request.lock_mode = LockMode::kUpdate;
  auto built = Build(request, env);
  if (!built) {
    return std::move(built).error().WithContext("the witness image");
  }
  return built;
}

Result<std::map<uint16_t, std::string>> WitnessPcrs(const Environment& env) {
  ASSIGN_OR_RETURN(BuildResult built, BuildWitnessImage(env, ""));
  return std::map<uint16_t, std::string>{{0, HexEncode(built.measurements.pcr0)}};
}

}  // namespace enclavia::builder
