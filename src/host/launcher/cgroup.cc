// SPDX-License-Identifier: Apache-2.0
// Control groups for enclaves: v2, v1, or none (rlimits), whichever the machine offers.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host/launcher/sandbox.h"
#include "lib/base/file.h"
#include "lib/sys/fd.h"

namespace enclavia::host {
namespace {

constexpr std::string_view kCgroupRoot = "/sys/fs/cgroup";
constexpr uint64_t kCpuPeriodUs = 100000;

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool WriteValue(const std::string& path, const std::string& value) {
  auto fd = sys::Open(path, O_WRONLY);
  if (!fd) {
    return false;
  }
  return sys::WriteFull(fd->get(), ByteSpan(reinterpret_cast<const uint8_t*>(value.data()),
                                            value.size()))
      .has_value();
}

bool MakeDir(const std::string& path) {
  return ::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST;
}

// OwnCgroup returns this process's cgroup path in the hierarchy whose controller list contains
// `controller` ("" for the v2 line "0::/path"); "/" if it cannot tell.
std::string OwnCgroup(std::string_view controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    size_t first = line.find(':');
    size_t second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) {
      continue;
    }
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    if (controller.empty()) {
      if (controllers.empty() && line.starts_with("0:")) {
        return path;
      }
      continue;
    }
    std::stringstream list(controllers);
    std::string c;
    while (std::getline(list, c, ',')) {
      if (c == controller) {
        return path;
      }
    }
  }
  return "/";
}

std::string Join(const std::string& mount, const std::string& own) {
  if (own == "/" || own.empty()) {
    return mount;
  }
  return mount + own;
}

std::vector<pid_t> Procs(const std::string& dir) {
  std::vector<pid_t> pids;
  std::ifstream in(dir + "/cgroup.procs");
  long pid = 0;
  while (in >> pid) {
    pids.push_back(static_cast<pid_t>(pid));
  }
  return pids;
}

bool TryV2(const std::string& base, const std::string& leaf, uint32_t cpus, uint64_t memory_mib,
           Cgroup& out) {
  std::string parent = base + "/enclavia";
  if (!MakeDir(parent) || !WriteValue(base + "/cgroup.subtree_control", "+memory") ||
      !WriteValue(parent + "/cgroup.subtree_control", "+memory")) {
    return false;
  }
  bool cpu = WriteValue(base + "/cgroup.subtree_control", "+cpu") &&
             WriteValue(parent + "/cgroup.subtree_control", "+cpu");
  std::string dir = parent + "/" + leaf;
  if (!MakeDir(dir)) {
    return false;
  }
  std::string bytes = std::to_string(memory_mib << 20);
  if (!WriteValue(dir + "/memory.max", bytes)) {
    ::rmdir(dir.c_str());
    return false;
  }
  // Absent when swap is not accounted: then there is no swap to limit.
  if (Exists(dir + "/memory.swap.max")) {
    (void)WriteValue(dir + "/memory.swap.max", "0");
  }
  if (cpu) {
    (void)WriteValue(dir + "/cpu.max",
                     std::to_string(uint64_t{cpus} * kCpuPeriodUs) + " " +
                         std::to_string(kCpuPeriodUs));
  }
  out.mode = CgroupMode::kV2;
  out.paths = {dir};
  return true;
}

bool TryV1(const std::string& leaf, uint32_t cpus, uint64_t memory_mib, Cgroup& out) {
  std::string mem_mount = std::string(kCgroupRoot) + "/memory";
  if (!Exists(mem_mount + "/cgroup.procs")) {
    return false;
  }
  std::string mem_parent = Join(mem_mount, OwnCgroup("memory")) + "/enclavia";
  std::string mem = mem_parent + "/" + leaf;
  if (!MakeDir(mem_parent) || !MakeDir(mem)) {
    return false;
  }
  std::string bytes = std::to_string(memory_mib << 20);
  if (!WriteValue(mem + "/memory.limit_in_bytes", bytes)) {
    ::rmdir(mem.c_str());
    return false;
  }
  // memsw (memory + swap) equal to the memory limit: no swap, as in an enclave.
  if (Exists(mem + "/memory.memsw.limit_in_bytes")) {
    (void)WriteValue(mem + "/memory.memsw.limit_in_bytes", bytes);
  }
  out.mode = CgroupMode::kV1;
  out.paths = {mem};
  std::string cpu_mount = std::string(kCgroupRoot) + "/cpu";
  if (Exists(cpu_mount + "/cgroup.procs")) {
    std::string cpu_parent = Join(cpu_mount, OwnCgroup("cpu")) + "/enclavia";
    std::string cpu = cpu_parent + "/" + leaf;
    if (MakeDir(cpu_parent) && MakeDir(cpu)) {
      if (WriteValue(cpu + "/cpu.cfs_period_us", std::to_string(kCpuPeriodUs)) &&
          WriteValue(cpu + "/cpu.cfs_quota_us", std::to_string(uint64_t{cpus} * kCpuPeriodUs))) {
        out.paths.push_back(cpu);
      } else {
        ::rmdir(cpu.c_str());
      }
    }
  }
  return true;
}

}  // namespace

Cgroup CreateCgroup(const std::string& leaf, uint32_t cpus, uint64_t memory_mib) {
  Cgroup cgroup;
  const std::string root(kCgroupRoot);
  if (Exists(root + "/cgroup.controllers")) {
    std::string own = Join(root, OwnCgroup(""));
    // Below our own cgroup when it can delegate (it cannot while it holds processes, unless it is
    // the root); else below the root.
    if ((own != root && TryV2(own, leaf, cpus, memory_mib, cgroup)) ||
        TryV2(root, leaf, cpus, memory_mib, cgroup)) {
      return cgroup;
    }
  }
  if (TryV1(leaf, cpus, memory_mib, cgroup)) {
    return cgroup;
  }
  return Cgroup{};
}

void RemoveCgroupsNamed(const std::string& leaf) {
  if (leaf.empty() || leaf.find('/') != std::string::npos || leaf == "." || leaf == "..") {
    return;
  }
  const std::string root(kCgroupRoot);
  std::vector<std::string> candidates = {
      Join(root, OwnCgroup("")) + "/enclavia/" + leaf, root + "/enclavia/" + leaf,
      Join(root + "/memory", OwnCgroup("memory")) + "/enclavia/" + leaf,
      Join(root + "/cpu", OwnCgroup("cpu")) + "/enclavia/" + leaf};
  for (const std::string& dir : candidates) {
    if (Exists(dir)) {
      bool v2 = Exists(dir + "/cgroup.controllers");
      (void)RemoveCgroup(Cgroup{v2 ? CgroupMode::kV2 : CgroupMode::kV1, {dir}}, 2000);
    }
  }
}

Result<void> JoinCgroup(const Cgroup& cgroup, pid_t pid) {
  for (const std::string& dir : cgroup.paths) {
    if (!WriteValue(dir + "/cgroup.procs", std::to_string(pid))) {
      return sys::IoError("cannot move the enclave into " + dir, errno);
    }
  }
  return Ok();
}

void KillCgroup(const Cgroup& cgroup) {
  for (const std::string& dir : cgroup.paths) {
    if (cgroup.mode == CgroupMode::kV2 && WriteValue(dir + "/cgroup.kill", "1")) {
      continue;
    }
    for (pid_t pid : Procs(dir)) {
      ::kill(pid, SIGKILL);
    }
  }
}

Result<void> RemoveCgroup(const Cgroup& cgroup, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (const std::string& dir : cgroup.paths) {
    for (;;) {
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) {
        break;
      }
      int err = errno;
      if (err != EBUSY || std::chrono::steady_clock::now() >= deadline) {
        return sys::IoError("cannot remove cgroup " + dir, err);
      }
      KillCgroup(Cgroup{cgroup.mode, {dir}});
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return Ok();
}

}  // namespace enclavia::host
