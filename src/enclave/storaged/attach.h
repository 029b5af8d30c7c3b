// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_STORAGED_ATTACH_H_
#define ENCLAVIA_ENCLAVE_STORAGED_ATTACH_H_

#include <cstdint>
#include <string>

#include "lib/base/result.h"
#include "lib/transport/transport.h"

// Turning the enclave's NBD export into a block device (docs/storage.md, "The block device").
namespace enclavia::enclave {

// NbdSocketPath is where the enclave's NBD server listens: kLocalBlockDir/nbd.sock in a local
// sandbox (so the sandbox can reach it), /run/enclavia/nbd.sock on Nitro.
std::string NbdSocketPath(transport::Mode mode);

// AttachBlockDevice connects the NBD server at NbdSocketPath(mode) to a block device and returns
// its path (/dev/nbd0). Local: asks the sandbox through kLocalBlockDir/control.sock, which
// formats the device with btrfs first when `format_new` (the sandbox plays the enclave kernel's
// NBD client). Nitro: the kernel's own NBD client through the NBD ioctls on /dev/nbd0 (a kernel
// thread serves NBD_DO_IT), then mkfs.btrfs from the image when `format_new` — written to the
// kernel's documented interface, not run on hardware here (docs/hardware.md).
Result<std::string> AttachBlockDevice(transport::Mode mode, bool format_new, uint64_t size_bytes);

// NbdExportNameHandshake runs the client side of the fixed-newstyle handshake on a connected
// socket with NBD_OPT_EXPORT_NAME "" (what the kernel's client needs done before NBD_SET_SOCK)
// and returns the export size and transmission flags. Exposed for tests.
struct NbdExport {
  uint64_t size = 0;
  uint16_t flags = 0;
};
Result<NbdExport> NbdExportNameHandshake(int fd);

// ParseAttachReply reads the sandbox's answer: "ok /dev/X" → "/dev/X"; "error MSG" → an Error
// with MSG; anything else kMalformed. Exposed for tests.
Result<std::string> ParseAttachReply(const std::string& line);

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_STORAGED_ATTACH_H_
