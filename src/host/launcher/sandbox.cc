// SPDX-License-Identifier: Apache-2.0
// enclavia-sandbox's work: boot one EIF into namespaces and supervise it (docs/local-provider.md).
#include "host/launcher/sandbox.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "host/kms/simulator.h"
#include "host/launcher/block_attach.h"
#include "host/nsm/nsm_server.h"
#include "host/nsm/simulator.h"
#include "lib/base/encoding.h"
#include "lib/crypto/random.h"
#include "lib/eif/reader.h"
#include "lib/sys/fd.h"
#include "lib/transport/transport.h"

namespace enclavia::host {
namespace {

using sys::UniqueFd;

// Host device nodes bind-mounted into the enclave's /dev (Nitro's kernel has these too).
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom", "tty"};

std::string Path(const SandboxOptions& o, std::string_view name) {
  return o.dir + "/" + std::string(name);
}

// Mapping is the EIF mapped read-only: the supervisor measures it and the child (sharing the
// mapping after clone) unpacks the same bytes, so the PCRs describe what was booted.
class Mapping {
 public:
  static Result<Mapping> Open(const std::string& path) {
    ASSIGN_OR_RETURN(UniqueFd fd, sys::Open(path, O_RDONLY));
    ASSIGN_OR_RETURN(uint64_t size, sys::FileSize(fd.get()));
    if (size == 0) {
      return Error(Code::kMalformed, "eif: empty file");
    }
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) {
      return sys::IoError("mmap " + path, errno);
    }
    return Mapping(static_cast<const uint8_t*>(p), size);
  }
  Mapping(Mapping&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr; }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping& operator=(Mapping&&) = delete;
  ~Mapping() {
    if (data_ != nullptr) {
      ::munmap(const_cast<uint8_t*>(data_), size_);
    }
  }
  ByteSpan bytes() const { return ByteSpan(data_, size_); }

 private:
  Mapping(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  const uint8_t* data_;
  size_t size_;
};

// ---- The child: runs between clone() and execve("/init"). Single-threaded; reports a failure
// as one line on `err_fd` and exits. ----

[[noreturn]] void ChildFail(int err_fd, const std::string& message) {
  std::string line = message + "\n";
  (void)!::write(err_fd, line.data(), line.size());
  ::_exit(1);
}

std::string Errno(std::string_view what) {
  return std::string(what) + ": " + std::generic_category().message(errno);
}

void Mount(int err_fd, const char* source, const std::string& target, const char* type,
           unsigned long flags, const char* data) {
  if (::mount(source, target.c_str(), type, flags, data) != 0) {
    ChildFail(err_fd, Errno("mount " + std::string(type != nullptr ? type : "bind") + " on " +
                            target));
  }
}

// RealDir makes root/<name> a directory that is not a symlink (whatever the ramdisks put there),
// so that mounting on it by path cannot be redirected.
void RealDir(int err_fd, int root_fd, const char* name, mode_t mode) {
  struct stat st {};
  if (::fstatat(root_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) {
      return;
    }
    if (::unlinkat(root_fd, name, 0) != 0) {
      ChildFail(err_fd, Errno(std::string("remove /") + name));
    }
  }
  if (::mkdirat(root_fd, name, mode) != 0 || ::fchmodat(root_fd, name, mode, 0) != 0) {
    ChildFail(err_fd, Errno(std::string("mkdir /") + name));
  }
}

void Touch(int err_fd, const std::string& path, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    ChildFail(err_fd, Errno("create " + path));
  }
  ::close(fd);
}

void MkDir(int err_fd, const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 || ::chmod(path.c_str(), mode) != 0) {
    ChildFail(err_fd, Errno("mkdir " + path));
  }
}

[[noreturn]] void ChildMain(const SandboxOptions& o, const eif::EifInfo& info, ByteSpan image,
                            const Cgroup& cgroup, int go_fd, int err_fd) {
  // Wait until the supervisor has put us in the cgroup, so the ramdisk pages are the enclave's.
  char go = 0;
  while (::read(go_fd, &go, 1) < 0 && errno == EINTR) {
  }
  if (go != 'g') {
    ::_exit(1);
  }
  ::close(go_fd);
  // The enclave dies with its supervisor, as an enclave dies with its hypervisor.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);

  // Nothing we mount may propagate back to the host.
  Mount(err_fd, nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  const std::string root = Path(o, kRootDir);
  const std::string tmpfs_options = "size=" + std::to_string(o.memory_mib) + "m,mode=0755";
  Mount(err_fd, "enclave", root, "tmpfs", MS_NODEV, tmpfs_options.c_str());
  int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root_fd < 0) {
    ChildFail(err_fd, Errno("open " + root));
  }

  // The ramdisks in order; later ones overwrite earlier ones, as in the kernel's initramfs.
  int index = 0;
  for (const eif::Section& section : info.sections) {
    if (section.type != eif::SectionType::kRamdisk) {
      continue;
    }
    ++index;
    if (section.data_offset > image.size() || section.size > image.size() - section.data_offset) {
      ChildFail(err_fd, "ramdisk " + std::to_string(index) + " lies outside the image");
    }
    auto unpacked = UnpackArchive(root_fd, image.subspan(section.data_offset, section.size), index);
    if (!unpacked) {
      ChildFail(err_fd, unpacked.error().message());
    }
  }
  struct stat init_st {};
  if (::fstatat(root_fd, "init", &init_st, 0) != 0 || !S_ISREG(init_st.st_mode)) {
    ChildFail(err_fd, "the image has no /init");
  }

  // Mount points the runtime expects; /proc, /sys and /tmp are mounted by its init.
  RealDir(err_fd, root_fd, "dev", 0755);
  RealDir(err_fd, root_fd, "run", 0755);
  RealDir(err_fd, root_fd, "proc", 0555);
  RealDir(err_fd, root_fd, "sys", 0555);
  RealDir(err_fd, root_fd, "tmp", 01777);
  ::close(root_fd);

  const std::string dev = root + "/dev";
  Mount(err_fd, "dev", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755");
  for (const char* name : kDevices) {
    std::string node = dev + "/" + name;
    Touch(err_fd, node, 0666);
    Mount(err_fd, (std::string("/dev/") + name).c_str(), node, nullptr, MS_BIND, nullptr);
  }
  // The TUN device, for the enclave's emulated NIC (docs/egress.md): only root inside (the egress
  // daemon) can open it (mode 0600, and the application has no CAP_NET_ADMIN to make a device).
  // A host without it gives an enclave whose egress daemon then refuses to start, saying why.
  if (struct stat tun{}; ::stat("/dev/net/tun", &tun) == 0 && S_ISCHR(tun.st_mode)) {
    MkDir(err_fd, dev + "/net", 0755);
    Touch(err_fd, dev + "/net/tun", 0600);
    Mount(err_fd, "/dev/net/tun", dev + "/net/tun", nullptr, MS_BIND, nullptr);
  }
  const std::pair<const char*, const char*> links[] = {{"/proc/self/fd", "fd"},
                                                       {"/proc/self/fd/0", "stdin"},
                                                       {"/proc/self/fd/1", "stdout"},
                                                       {"/proc/self/fd/2", "stderr"}};
  for (const auto& [target, name] : links) {
    if (::symlink(target, (dev + "/" + name).c_str()) != 0) {
      ChildFail(err_fd, Errno(std::string("symlink /dev/") + name));
    }
  }
  MkDir(err_fd, dev + "/shm", 01777);
  Mount(err_fd, "shm", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  Touch(err_fd, dev + "/nsm", 0666);
  Mount(err_fd, Path(o, kNsmSocket).c_str(), dev + "/nsm", nullptr, MS_BIND, nullptr);

  const std::string run = root + "/run";
  Mount(err_fd, "run", run, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755");
  const std::string vsock = root + std::string(transport::kLocalVsockDir);
  MkDir(err_fd, run + "/enclavia", 0755);
  MkDir(err_fd, vsock, 0755);
  Mount(err_fd, Path(o, kVsockDir).c_str(), vsock, nullptr, MS_BIND, nullptr);
  const std::string blk = root + std::string(transport::kLocalBlockDir);
  MkDir(err_fd, blk, 0700);
  Mount(err_fd, Path(o, kBlockDir).c_str(), blk, nullptr, MS_BIND, nullptr);

  if (::sethostname("enclave", 7) != 0) {
    ChildFail(err_fd, Errno("sethostname"));
  }

  // The console: a file the host can read in debug mode; nowhere otherwise (as on Nitro).
  int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out = o.debug ? ::open(Path(o, kConsoleLog).c_str(),
                             O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600)
                    : ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (in < 0 || out < 0) {
    ChildFail(err_fd, Errno("open the console"));
  }

  // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves no host file
  // reachable.
  if (::chdir(root.c_str()) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
      ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0) {
    ChildFail(err_fd, Errno("pivot_root"));
  }

  if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) {
    ChildFail(err_fd, Errno("dup2"));
  }
  // Only stdio crosses into the enclave (err_fd is close-on-exec like the rest).
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != err_fd) {
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
    }
  }
  if (cgroup.mode == CgroupMode::kRlimit) {
    // The weak fallback: per process, address space rather than memory (docs/local-provider.md).
    rlimit limit{.rlim_cur = o.memory_mib << 20, .rlim_max = o.memory_mib << 20};
    ::setrlimit(RLIMIT_AS, &limit);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  char arg0[] = "/init";
  char* argv[] = {arg0, nullptr};
  char env_home[] = "HOME=/";
  char env_term[] = "TERM=linux";
  char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {env_home, env_term, env_path, nullptr};
  ::execve("/init", argv, envp);
  ChildFail(err_fd, Errno("execve /init"));
}

// ---- The supervisor ----

class Supervisor {
 public:
  explicit Supervisor(const SandboxOptions& o) : o_(o) {}
  ~Supervisor() { Cleanup(); }
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  int Run();

 private:
  Result<void> Boot();
  Result<void> Serve();
  void Cleanup();
  void Ready(const std::string& line);

  const SandboxOptions& o_;
  std::unique_ptr<NsmSimulator> nsm_;
  std::unique_ptr<NsmServer> server_;
  std::unique_ptr<BlockAttach> block_attach_;
  // The enclave's mount namespace, held so that it outlives the enclave's last process: when the
  // enclave dies with its volume mounted, the file system is released here, after nbdfuse is
  // gone, and not by a dying enclave process whose own NBD server was its only way out (a
  // process blocked in uninterruptible sleep forever).
  UniqueFd mount_ns_;
  std::unique_ptr<KmsSimulator> kms_;
  std::unique_ptr<KmsServer> kms_server_;
  Cgroup cgroup_;
  bool cgroup_created_ = false;
  pid_t child_ = -1;
  int exit_status_ = -1;
  SandboxState state_;
  UniqueFd signal_fd_;
};

void Supervisor::Ready(const std::string& line) {
  if (o_.ready_fd < 0) {
    return;
  }
  std::string text = line + "\n";
  (void)!::write(o_.ready_fd, text.data(), text.size());
  ::close(o_.ready_fd);
}

Result<void> Supervisor::Boot() {
  if (o_.cpus == 0 || o_.memory_mib == 0) {
    return Error(Code::kInvalidArgument, "--cpus and --memory-mib must be positive");
  }
  RETURN_IF_ERROR(crypto::Init());
  // Signals are taken through a signalfd in the poll loop; blocked before the clone so none is
  // lost (the child unblocks them before execve).
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  signal_fd_ = UniqueFd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_.valid()) {
    return sys::IoError("signalfd", errno);
  }

  // (a) The image, measured from the bytes the child will unpack.
  ASSIGN_OR_RETURN(Mapping image, Mapping::Open(o_.eif_path));
  ASSIGN_OR_RETURN(eif::EifInfo info, eif::ParseEif(image.bytes()));

  // (b) The NSM the enclave will see, with PCRs as booted.
  ASSIGN_OR_RETURN(SimulatorCa ca, SimulatorCa::LoadOrCreate(
                                       o_.ca_dir, [] { return std::chrono::system_clock::now(); }));
  SimulatorOptions sim;
  sim.boot_pcrs[0] = info.measurements.pcr0;
  sim.boot_pcrs[1] = info.measurements.pcr1;
  sim.boot_pcrs[2] = info.measurements.pcr2;
  if (info.measurements.pcr8) {
    sim.boot_pcrs[8] = *info.measurements.pcr8;
  }
  sim.boot_pcrs[4] = Pcr4ForInstance(o_.instance_id);
  sim.debug = o_.debug;
  // Shaped like AWS's "i-0123456789abcdef0-enc0123456789abcdef".
  sim.module_id = o_.instance_id + "-enc" + HexEncode(crypto::RandomBytes(8));
  state_.pcrs = {{0, HexEncode(info.measurements.pcr0)},
                 {1, HexEncode(info.measurements.pcr1)},
                 {2, HexEncode(info.measurements.pcr2)},
                 {4, HexEncode(sim.boot_pcrs[4])}};
  if (info.measurements.pcr8) {
    state_.pcrs[8] = HexEncode(*info.measurements.pcr8);
  }
  const crypto::Certificate root = ca.root();
  ASSIGN_OR_RETURN(nsm_, NsmSimulator::Create(std::make_shared<const SimulatorCa>(std::move(ca)),
                                              std::move(sim)));

  // (c) The enclave's end of its devices and ports.
  std::error_code ec;
  std::filesystem::create_directories(Path(o_, kVsockDir), ec);
  std::filesystem::create_directories(Path(o_, kRootDir), ec);
  if (ec) {
    return Error(Code::kIo, "cannot create " + o_.dir + ": " + ec.message());
  }
  std::filesystem::create_directories(Path(o_, kBlockDir), ec);
  if (ec) {
    return Error(Code::kIo, "cannot create " + o_.dir + ": " + ec.message());
  }
  ::chmod(Path(o_, kVsockDir).c_str(), 0755);
  ::chmod(Path(o_, kRootDir).c_str(), 0700);
  ::chmod(Path(o_, kBlockDir).c_str(), 0700);
  ASSIGN_OR_RETURN(NsmServer server, NsmServer::Listen(Path(o_, kNsmSocket), *nsm_));
  server_ = std::make_unique<NsmServer>(std::move(server));
  // The KMS beside the NSM: the key named after this enclave is bound to the image it booted
  // (an image that differs cannot unwrap the volume key; re-keying is the upgrade's job).
  if (!o_.kms_dir.empty()) {
    ASSIGN_OR_RETURN(kms_, KmsSimulator::Open(o_.kms_dir, root));
    KeyPolicy policy;
    policy.pcrs[0] = o_.debug ? Bytes(48, 0) : info.measurements.pcr0;
    policy.allow_debug = o_.debug;
    if (auto ensured = kms_->EnsureKey(o_.name, policy); !ensured) {
      std::cerr << "enclavia-sandbox: kms: " << ensured.error().message()
                << " (the volume key stays bound to the earlier image)\n";
    }
  }

  // (d) Limits.
  cgroup_ = CreateCgroup(o_.enclave_id, o_.cpus, o_.memory_mib);
  cgroup_created_ = true;

  // (e) The enclave: PID 1 of its own namespaces. No user namespace: loop-mounting btrfs (the
  // storage issue) is refused inside one.
  int go[2];
  int err[2];
  if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    return sys::IoError("pipe", errno);
  }
  UniqueFd go_read(go[0]), go_write(go[1]), err_read(err[0]), err_write(err[1]);
  long pid = ::syscall(SYS_clone,
                       CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                           SIGCHLD,
                       nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) {
    return sys::IoError("clone (namespaces need root)", errno);
  }
  if (pid == 0) {
    go_write = UniqueFd();
    err_read = UniqueFd();
    ChildMain(o_, info, image.bytes(), cgroup_, go_read.get(), err_write.get());
  }
  child_ = static_cast<pid_t>(pid);
  go_read = UniqueFd();
  err_write = UniqueFd();
  RETURN_IF_ERROR(JoinCgroup(cgroup_, child_));
  if (::write(go_write.get(), "g", 1) != 1) {
    return sys::IoError("start the enclave", errno);
  }
  go_write = UniqueFd();
  // The error pipe closes on a successful execve (close-on-exec) or carries the child's reason.
  std::string reason;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(err_read.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    reason.append(buf, static_cast<size_t>(n));
  }
  if (!reason.empty()) {
    while (!reason.empty() && reason.back() == '\n') {
      reason.pop_back();
    }
    return Error(Code::kInvalidArgument, reason);
  }

  // (f) Threads only now that the clone is done: the enclave kernel's NBD client, for a volume
  // the enclave may attach, and the KMS's port.
  mount_ns_ = UniqueFd(::open(("/proc/" + std::to_string(child_) + "/ns/mnt").c_str(),
                              O_RDONLY | O_CLOEXEC));
  if (!mount_ns_.valid()) {
    return sys::IoError("open the enclave's mount namespace", errno);
  }
  ASSIGN_OR_RETURN(block_attach_, BlockAttach::Start(o_.dir, child_));
  if (kms_) {
    transport::Endpoint endpoint;
    endpoint.local_dir = Path(o_, kVsockDir);
    ASSIGN_OR_RETURN(kms_server_, KmsServer::Start(*kms_, transport::HostListenForEnclave(
                                                              endpoint, transport::kKmsPort)));
  }

  // (g) Recorded for LocalProvider.
  state_.name = o_.name;
  state_.id = o_.enclave_id;
  state_.instance_id = o_.instance_id;
  state_.supervisor_pid = ::getpid();
  ASSIGN_OR_RETURN(ProcessInfo self, ReadProcessInfo(::getpid()));
  state_.supervisor_starttime = self.starttime;
  state_.init_pid = child_;
  ASSIGN_OR_RETURN(ProcessInfo init, ReadProcessInfo(child_));
  state_.init_starttime = init.starttime;
  state_.debug = o_.debug;
  state_.cpus = o_.cpus;
  state_.memory_mib = o_.memory_mib;
  state_.cgroup = cgroup_.mode;
  state_.cgroup_paths = cgroup_.paths;
  state_.state = "running";
  state_.started = static_cast<int64_t>(::time(nullptr));
  RETURN_IF_ERROR(WriteSandboxState(o_.dir, state_));
  return Ok();
}

Result<void> Supervisor::Serve() {
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> kill_at;
  bool killed = false;
  while (exit_status_ < 0) {
    int timeout = -1;
    if (kill_at && !killed) {
      timeout = static_cast<int>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(*kill_at - Clock::now())
                 .count()));
    }
    const int fds[] = {signal_fd_.get()};
    ASSIGN_OR_RETURN(std::vector<int> ready, server_->Poll(fds, timeout));
    if (kill_at && !killed && Clock::now() >= *kill_at) {
      ::kill(child_, SIGKILL);
      KillCgroup(cgroup_);
      if (block_attach_) {
        block_attach_->Abort();  // Else a process blocked on its own volume would never die.
      }
      killed = true;
    }
    if (ready.empty()) {
      continue;
    }
    signalfd_siginfo si{};
    while (::read(signal_fd_.get(), &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
      if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
        if (!kill_at) {
          int grace = kDefaultGraceMs;
          if (si.ssi_code == SI_QUEUE && si.ssi_int >= 0) {
            grace = si.ssi_int;
          }
          // The enclave's init gets SIGTERM only if it handles it (it is a namespace's PID 1).
          ::kill(child_, SIGTERM);
          kill_at = Clock::now() + std::chrono::milliseconds(grace);
        }
      }
    }
    int status = 0;
    pid_t done = ::waitpid(child_, &status, WNOHANG);
    if (done == child_) {
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
  return Ok();
}

void Supervisor::Cleanup() {
  if (child_ > 0 && exit_status_ < 0) {
    ::kill(child_, SIGKILL);
    if (block_attach_) {
      block_attach_->Abort();
    }
    int status = 0;
    while (::waitpid(child_, &status, 0) < 0 && errno == EINTR) {
    }
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // The enclave is gone. A volume it left mounted is released when its mount namespace is: first
  // nbdfuse goes (so the release's last writes fail at once instead of waiting for the enclave's
  // NBD server), then the namespace, then the loop device.
  if (block_attach_) {
    block_attach_->Abort();
  }
  mount_ns_ = UniqueFd();
  block_attach_.reset();
  kms_server_.reset();
  if (cgroup_created_) {
    // The namespace's other processes die with its init; wait for the kernel to empty the cgroup.
    auto removed = RemoveCgroup(cgroup_, 5000);
    if (!removed) {
      std::cerr << "enclavia-sandbox: " << removed.error().message() << "\n";
    }
    cgroup_created_ = false;
  }
  server_.reset();
  std::error_code ec;
  std::filesystem::remove(Path(o_, kNsmSocket), ec);
  for (const auto& entry : std::filesystem::directory_iterator(Path(o_, kVsockDir), ec)) {
    std::filesystem::remove(entry.path(), ec);
  }
  for (const auto& entry : std::filesystem::directory_iterator(Path(o_, kBlockDir), ec)) {
    std::filesystem::remove(entry.path(), ec);
  }
}

int Supervisor::Run() {
  Result<void> booted = Boot();
  if (!booted) {
    std::cerr << "enclavia-sandbox: " << booted.error().message() << "\n";
    Ready("error: " + booted.error().message());
    Cleanup();
    return 1;
  }
  Ready("ready");
  Result<void> served = Serve();
  if (!served) {
    std::cerr << "enclavia-sandbox: " << served.error().message() << "\n";
  }
  Cleanup();
  state_.state = "stopped";
  state_.exit_status = exit_status_;
  auto written = WriteSandboxState(o_.dir, state_);
  if (!written) {
    std::cerr << "enclavia-sandbox: " << written.error().message() << "\n";
  }
  std::cerr << "enclavia-sandbox: enclave " << o_.name << " stopped, exit status " << exit_status_
            << "\n";
  return 0;
}

}  // namespace

int RunSandbox(const SandboxOptions& options) {
  Supervisor supervisor(options);
  return supervisor.Run();
}

}  // namespace enclavia::host
