// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_LAUNCHER_BLOCK_ATTACH_H_
#define ENCLAVIA_HOST_LAUNCHER_BLOCK_ATTACH_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "lib/base/result.h"
#include "lib/sys/fd.h"

// BlockAttach is the local provider's stand-in for the enclave kernel's NBD client
// (docs/storage.md, "The block device"). On Nitro the enclave's own kernel connects /dev/nbd0 to
// the NBD server inside the enclave; the host kernel here has no NBD client, so the sandbox does
// it with nbdfuse (the NBD export as a file) and a loop device, and puts the loop device into the
// enclave's /dev as /dev/nbd0. Like the NSM simulator, it plays a part of the enclave's trusted
// platform: it sees the volume's plaintext blocks, which the host agent never does.
//
// Protocol on <enclave-dir>/blk/control.sock (the enclave's kLocalBlockDir/control.sock), one
// request per connection: "attach new\n" (format it with mkfs.btrfs first: a new volume) or
// "attach existing\n"; the answer is "ok /dev/nbd0\n" or "error <one line>\n".
namespace enclavia::host {

inline constexpr std::string_view kBlockDir = "blk";
inline constexpr std::string_view kFuseDir = "fuse";

class BlockAttach {
 public:
  // Start listens on <enclave_dir>/blk/control.sock and serves requests on its own thread.
  // `init_pid` is the enclave's PID 1 in the host's PID namespace (its /dev is reached through
  // /proc/<init_pid>/root/dev).
  static Result<std::unique_ptr<BlockAttach>> Start(const std::string& enclave_dir, pid_t init_pid);
  // The destructor stops serving and detaches: the loop device, the FUSE mount, nbdfuse.
  ~BlockAttach();
  // Abort kills nbdfuse at once (any thread): the enclave is being killed, and a process of it
  // blocked on its own volume (btrfs writeback through the FUSE file) can only die once the
  // FUSE requests fail.
  void Abort();
  BlockAttach(const BlockAttach&) = delete;
  BlockAttach& operator=(const BlockAttach&) = delete;

 private:
  BlockAttach(std::string dir, pid_t init_pid, sys::UniqueFd listener, sys::UniqueFd wake);
  void Serve();
  std::string Handle(std::string_view request);
  Result<std::string> Attach(bool format);
  void Detach();

  std::string dir_;
  pid_t init_pid_;
  sys::UniqueFd listener_;
  sys::UniqueFd wake_;  // An eventfd: written to stop Serve().
  std::thread thread_;
  // Set while attached (only the serving thread changes them before it is joined).
  std::atomic<pid_t> nbdfuse_pid_{-1};
  int loop_index_ = -1;
  bool fuse_mounted_ = false;
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_LAUNCHER_BLOCK_ATTACH_H_
