// SPDX-License-Identifier: Apache-2.0
#include "enclave/storaged/attach.h"

#include <fcntl.h>
#include <linux/nbd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "lib/net/socket.h"
#include "lib/sys/fd.h"
#include "lib/sys/process.h"

namespace enclavia::enclave {
namespace {

using sys::UniqueFd;

Result<UniqueFd> ConnectUnix(const std::string& path) {
  net::Address address;
  address.family = net::Family::kUnix;
  address.host = path;
  return net::Connect(address);
}

Result<std::string> AttachLocal(bool format_new) {
  const std::string control = std::string(transport::kLocalBlockDir) + "/control.sock";
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(control));
  std::string request = format_new ? "attach new\n" : "attach existing\n";
  RETURN_IF_ERROR(sys::WriteFull(
      fd.get(), ByteSpan(reinterpret_cast<const uint8_t*>(request.data()), request.size())));
  // mkfs.btrfs on a new volume runs before the answer: allow it two minutes.
  timeval tv{.tv_sec = 180, .tv_usec = 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string line;
  char c = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), &c, 1);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0 || c == '\n' || line.size() > 4096) {
      break;
    }
    line.push_back(c);
  }
  return ParseAttachReply(line);
}

// AttachNitro is the kernel NBD client's documented sequence (nbd-client does the same):
// NBD_SET_SOCK with a connected socket, sizes, then NBD_DO_IT on a thread that lives as long as
// the device. Not run here: this kernel has no NBD driver.
Result<std::string> AttachNitro(bool format_new, uint64_t size_bytes) {
  const std::string device = "/dev/nbd0";
  UniqueFd nbd(::open(device.c_str(), O_RDWR | O_CLOEXEC));
  if (!nbd.valid()) {
    return sys::IoError("open " + device + " (the enclave kernel needs CONFIG_BLK_DEV_NBD)", errno);
  }
  ASSIGN_OR_RETURN(UniqueFd sock, ConnectUnix(NbdSocketPath(transport::Mode::kVsock)));
  // The kernel client speaks only the transmission phase: the handshake is done here first, as
  // nbd-client does.
  ASSIGN_OR_RETURN(NbdExport exported, NbdExportNameHandshake(sock.get()));
  if (exported.size != size_bytes) {
    return Error(Code::kFailedPrecondition, "the NBD export's size differs from the volume's");
  }
  if (::ioctl(nbd.get(), NBD_SET_BLKSIZE, 4096UL) != 0 ||
      ::ioctl(nbd.get(), NBD_SET_SIZE_BLOCKS, static_cast<unsigned long>(size_bytes / 4096)) != 0 ||
      ::ioctl(nbd.get(), NBD_SET_FLAGS,
              static_cast<unsigned long>(NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
                                         NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM)) != 0 ||
      ::ioctl(nbd.get(), NBD_SET_SOCK, static_cast<unsigned long>(sock.get())) != 0) {
    return sys::IoError("configure " + device, errno);
  }
  int raw = nbd.Release();
  std::thread([raw] {
    ::ioctl(raw, NBD_DO_IT);
    ::ioctl(raw, NBD_CLEAR_QUE);
    ::ioctl(raw, NBD_CLEAR_SOCK);
    ::close(raw);
  }).detach();
  sock.Release();  // The kernel holds it now.
  if (format_new) {
    std::string output;
    ASSIGN_OR_RETURN(int status, sys::RunCommand({"mkfs.btrfs", "-q", "-f", device},
                                                 std::chrono::seconds(120), &output));
    if (status != 0) {
      return Error(Code::kIo, "mkfs.btrfs failed with status " + std::to_string(status));
    }
  }
  return device;
}

uint64_t LoadBe(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    v = (v << 8) | p[i];
  }
  return v;
}

void StoreBe(uint8_t* p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    p[i] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
  }
}

}  // namespace

Result<NbdExport> NbdExportNameHandshake(int fd) {
  constexpr uint64_t kNbdMagic = 0x4e42444d41474943ULL;   // "NBDMAGIC"
  constexpr uint64_t kIHaveOpt = 0x49484156454F5054ULL;   // "IHAVEOPT"
  constexpr uint16_t kFixedNewstyle = 1;
  constexpr uint16_t kNoZeroes = 2;
  constexpr uint32_t kOptExportName = 1;
  uint8_t hello[18];
  RETURN_IF_ERROR(sys::ReadFull(fd, hello));
  if (LoadBe(hello, 8) != kNbdMagic || LoadBe(hello + 8, 8) != kIHaveOpt) {
    return Error(Code::kMalformed, "NBD handshake: not a newstyle NBD server");
  }
  auto server_flags = static_cast<uint16_t>(LoadBe(hello + 16, 2));
  if ((server_flags & kFixedNewstyle) == 0) {
    return Error(Code::kUnsupported, "NBD handshake: the server is not fixed-newstyle");
  }
  const bool no_zeroes = (server_flags & kNoZeroes) != 0;
  uint8_t request[4 + 16];
  StoreBe(request, kFixedNewstyle | (no_zeroes ? kNoZeroes : 0), 4);
  StoreBe(request + 4, kIHaveOpt, 8);
  StoreBe(request + 12, kOptExportName, 4);
  StoreBe(request + 16, 0, 4);  // The default export, "".
  RETURN_IF_ERROR(sys::WriteFull(fd, request));
  uint8_t reply[10 + 124];
  RETURN_IF_ERROR(sys::ReadFull(fd, std::span<uint8_t>(reply, no_zeroes ? 10 : sizeof(reply))));
  return NbdExport{.size = LoadBe(reply, 8), .flags = static_cast<uint16_t>(LoadBe(reply + 8, 2))};
}

std::string NbdSocketPath(transport::Mode mode) {
  return mode == transport::Mode::kLocal ? std::string(transport::kLocalBlockDir) + "/nbd.sock"
                                         : std::string("/run/enclavia/nbd.sock");
}

Result<std::string> ParseAttachReply(const std::string& line) {
  if (line.starts_with("ok /dev/") && line.size() > 8 && line.size() < 64 &&
      line.find_first_of(" /", 8) == std::string::npos) {
    return line.substr(3);
  }
  if (line.starts_with("error ")) {
    return Error(Code::kUnavailable, "attach the volume: " + line.substr(6));
  }
  return Error(Code::kMalformed, "attach the volume: unexpected answer from the sandbox");
}

Result<std::string> AttachBlockDevice(transport::Mode mode, bool format_new, uint64_t size_bytes) {
  if (mode == transport::Mode::kLocal) {
    return AttachLocal(format_new);
  }
  return AttachNitro(format_new, size_bytes);
}

}  // namespace enclavia::enclave
