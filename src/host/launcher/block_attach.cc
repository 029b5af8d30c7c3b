// SPDX-License-Identifier: Apache-2.0
#include "host/launcher/block_attach.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <vector>

#include "lib/net/socket.h"
#include "lib/sys/process.h"

namespace enclavia::host {
namespace {

using sys::UniqueFd;
using Clock = std::chrono::steady_clock;

constexpr int kLoopMajor = 7;


// LastLine is the last non-empty line of a tool's output, for a one-line error.
std::string LastLine(const std::string& text) {
  size_t end = text.find_last_not_of("\n \t");
  if (end == std::string::npos) {
    return "";
  }
  size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
}

}  // namespace

BlockAttach::BlockAttach(std::string dir, pid_t init_pid, UniqueFd listener, UniqueFd wake)
    : dir_(std::move(dir)), init_pid_(init_pid), listener_(std::move(listener)),
      wake_(std::move(wake)) {}

Result<std::unique_ptr<BlockAttach>> BlockAttach::Start(const std::string& enclave_dir,
                                                        pid_t init_pid) {
  std::string blk = enclave_dir + "/" + std::string(kBlockDir);
  std::error_code ec;
  std::filesystem::create_directories(blk, ec);
  if (ec) {
    return Error(Code::kIo, "cannot create " + blk + ": " + ec.message());
  }
  ::chmod(blk.c_str(), 0700);
  net::Address control;
  control.family = net::Family::kUnix;
  control.host = blk + "/control.sock";
  ASSIGN_OR_RETURN(UniqueFd listener, net::ListenOn(control, 4));
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) {
    return sys::IoError("eventfd", errno);
  }
  std::unique_ptr<BlockAttach> attach(
      new BlockAttach(enclave_dir, init_pid, std::move(listener), std::move(wake)));
  attach->thread_ = std::thread([raw = attach.get()] { raw->Serve(); });
  return attach;
}

BlockAttach::~BlockAttach() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  if (thread_.joinable()) {
    thread_.join();
  }
  Detach();
}

void BlockAttach::Serve() {
  for (;;) {
    pollfd fds[2] = {{.fd = listener_.get(), .events = POLLIN, .revents = 0},
                     {.fd = wake_.get(), .events = POLLIN, .revents = 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 || (fds[1].revents & POLLIN) != 0) {
      return;
    }
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      continue;
    }
    // One short line; a peer that sends nothing for 30 s is dropped.
    timeval tv{.tv_sec = 30, .tv_usec = 0};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string request;
    char c = 0;
    while (request.size() < 64 && ::read(conn.get(), &c, 1) == 1 && c != '\n') {
      request.push_back(c);
    }
    std::string reply = Handle(request) + "\n";
    (void)!::write(conn.get(), reply.data(), reply.size());
  }
}

std::string BlockAttach::Handle(std::string_view request) {
  bool format = false;
  if (request == "attach new") {
    format = true;
  } else if (request != "attach existing") {
    return "error unknown request";
  }
  auto attached = Attach(format);
  if (!attached) {
    std::cerr << "enclavia-sandbox: attach: " << attached.error().message() << "\n";
    Detach();
    return "error " + attached.error().message();
  }
  std::cerr << "enclavia-sandbox: volume attached as " << *attached << " (loop" << loop_index_
            << (format ? ", formatted btrfs)" : ")") << "\n";
  return "ok " + *attached;
}

Result<std::string> BlockAttach::Attach(bool format) {
  if (nbdfuse_pid_ > 0) {
    return Error(Code::kAlreadyExists, "a volume is already attached");
  }
  const std::string blk = dir_ + "/" + std::string(kBlockDir);
  const std::string nbd_socket = blk + "/nbd.sock";
  struct stat st {};
  if (::lstat(nbd_socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return Error(Code::kFailedPrecondition, "the enclave's NBD server is not listening");
  }
  // (1) nbdfuse: the export as <dir>/fuse/disk.
  const std::string fuse = dir_ + "/" + std::string(kFuseDir);
  const std::string pidfile = dir_ + "/nbdfuse.pid";
  std::error_code ec;
  std::filesystem::create_directories(fuse, ec);
  ::chmod(fuse.c_str(), 0700);
  ::unlink(pidfile.c_str());
  UniqueFd log(::open((dir_ + "/nbdfuse.log").c_str(),
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
  // nbdfuse dies with this thread (PR_SET_PDEATHSIG): a killed supervisor leaves no nbdfuse
  // holding the enclave's processes in uninterruptible sleep.
  ASSIGN_OR_RETURN(pid_t spawned, sys::Spawn({"nbdfuse", "-P", pidfile, fuse + "/disk", "--unix",
                                              nbd_socket},
                                             log.get(), /*die_with_parent=*/true));
  nbdfuse_pid_ = spawned;
  fuse_mounted_ = true;
  auto deadline = Clock::now() + std::chrono::seconds(15);
  while (::access(pidfile.c_str(), F_OK) != 0) {
    int status = 0;
    if (::waitpid(spawned, &status, WNOHANG) == spawned) {
      nbdfuse_pid_ = -1;
      return Error(Code::kUnavailable, "nbdfuse exited before serving (see nbdfuse.log)");
    }
    if (Clock::now() > deadline) {
      return Error(Code::kUnavailable, "nbdfuse did not come up in 15 s");
    }
    ::usleep(5000);
  }
  // (2) A loop device over that file.
  const std::string disk = fuse + "/disk";
  UniqueFd backing(::open(disk.c_str(), O_RDWR | O_CLOEXEC));
  if (!backing.valid()) {
    return sys::IoError("open " + disk, errno);
  }
  UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control.valid()) {
    return sys::IoError("open /dev/loop-control", errno);
  }
  UniqueFd loop;
  for (int attempt = 0; attempt < 8 && !loop.valid(); ++attempt) {
    int index = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (index < 0) {
      return sys::IoError("LOOP_CTL_GET_FREE", errno);
    }
    std::string path = "/dev/loop" + std::to_string(index);
    if (::access(path.c_str(), F_OK) != 0) {
      ::mknod(path.c_str(), S_IFBLK | 0660, makedev(kLoopMajor, static_cast<unsigned>(index)));
    }
    UniqueFd candidate(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!candidate.valid()) {
      return sys::IoError("open " + path, errno);
    }
    loop_config config{};
    config.fd = static_cast<uint32_t>(backing.get());
    config.block_size = 4096;
    int rc = ::ioctl(candidate.get(), LOOP_CONFIGURE, &config);
    if (rc != 0 && errno == EINVAL) {
      rc = ::ioctl(candidate.get(), LOOP_SET_FD, backing.get());
    }
    if (rc == 0) {
      loop = std::move(candidate);
      loop_index_ = index;
    } else if (errno != EBUSY) {
      return sys::IoError("attach " + path, errno);
    }  // EBUSY: another process took it first; ask again.
  }
  if (!loop.valid()) {
    return Error(Code::kUnavailable, "no free loop device");
  }
  const std::string loop_path = "/dev/loop" + std::to_string(loop_index_);
  // (3) A new volume gets its file system here, as the enclave's kernel would format /dev/nbd0.
  if (format) {
    std::string output;
    ASSIGN_OR_RETURN(int status,
                     sys::RunCommand({"mkfs.btrfs", "-q", "-f", loop_path},
                                     std::chrono::seconds(120), &output));
    if (status != 0) {
      return Error(Code::kIo, "mkfs.btrfs failed (" + std::to_string(status) + "): " +
                                  LastLine(output));
    }
  }
  // (4) /dev/nbd0 in the enclave's own /dev.
  const std::string node = "/proc/" + std::to_string(init_pid_) + "/root/dev/nbd0";
  ::unlink(node.c_str());
  if (::mknod(node.c_str(), S_IFBLK | 0600,
              makedev(kLoopMajor, static_cast<unsigned>(loop_index_))) != 0) {
    return sys::IoError("mknod /dev/nbd0 in the enclave", errno);
  }
  return std::string("/dev/nbd0");
}

void BlockAttach::Abort() {
  pid_t pid = nbdfuse_pid_.load();
  if (pid > 0) {
    ::kill(pid, SIGKILL);
  }
}

void BlockAttach::Detach() {
  if (loop_index_ >= 0) {
    std::string path = "/dev/loop" + std::to_string(loop_index_);
    UniqueFd loop(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (loop.valid() && ::ioctl(loop.get(), LOOP_CLR_FD) != 0 && errno == EBUSY) {
      // Still mounted somewhere that is going away: detach when its last user closes it.
      loop_info64 info{};
      if (::ioctl(loop.get(), LOOP_GET_STATUS64, &info) == 0) {
        info.lo_flags |= LO_FLAGS_AUTOCLEAR;
        ::ioctl(loop.get(), LOOP_SET_STATUS64, &info);
      }
    }
    loop_index_ = -1;
  }
  if (fuse_mounted_) {
    ::umount2((dir_ + "/" + std::string(kFuseDir)).c_str(), MNT_DETACH);
    fuse_mounted_ = false;
  }
  pid_t pid = nbdfuse_pid_.exchange(-1);
  if (pid > 0) {
    ::kill(pid, SIGTERM);
    auto deadline = Clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      ::usleep(10000);
    }
  }
}

}  // namespace enclavia::host
