// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_STORAGED_DAEMON_H_
#define ENCLAVIA_ENCLAVE_STORAGED_DAEMON_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"
#include "lib/net/address.h"

// enclavia-storage, the enclave's volume daemon (docs/storage.md). enclavia-init starts it when
// the measured configuration has a [storage] section, before the application:
//   1. asks the host's storage service (the parent's port 5002) which volume it attached, if any;
//   2. gets the volume key from the KMS (generated on the first boot; afterwards released only to
//      an enclave whose attestation satisfies the key's policy);
//   3. opens attested channels to the anti-rollback witnesses the configuration trusts;
//   4. mounts the block store (refusing rollback), serves it over NBD, has it attached as
//      /dev/nbd0 and mounts its btrfs at storage.path;
//   5. reports "ready PATH" on its ready descriptor (or "none", or "error MESSAGE") and keeps
//      the status current at the host (`enclavia inspect`);
//   6. on SIGTERM: unmounts, commits, reports "stopped" and exits 0.
namespace enclavia::enclave {

struct StorageFlags {
  std::string config_path = "/etc/enclavia/enclave.toml";
  std::string nsm_path = "/dev/nsm";
  int ready_fd = -1;
  // Where the host's services are; default: the parent's vsock ports (or their local mapping).
  std::optional<net::Address> storage;
  std::optional<net::Address> kms;
  bool help = false;
};

inline constexpr std::string_view kStorageUsage =
    "usage: enclavia-storage [--config PATH] [--nsm PATH] [--ready-fd N]\n"
    "                        [--storage ADDR] [--kms ADDR]\n"
    "The enclave's volume daemon (started by enclavia-init for a [storage] section).\n"
    "  --config PATH   enclave configuration (default /etc/enclavia/enclave.toml)\n"
    "  --nsm PATH      the NSM: a device or the local sandbox's socket (default /dev/nsm)\n"
    "  --ready-fd N    where to write \"ready PATH\", \"none\" or \"error MESSAGE\"\n"
    "  --storage ADDR  the host's storage service (default: the parent's vsock port 5002)\n"
    "  --kms ADDR      the KMS (default: the parent's vsock port 5003)\n";

Result<StorageFlags> ParseStorageFlags(const std::vector<std::string>& args);

// RunStorage is the daemon after flag parsing; returns the exit code.
int RunStorage(const StorageFlags& flags);

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_STORAGED_DAEMON_H_
