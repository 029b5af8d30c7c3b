// SPDX-License-Identifier: Apache-2.0
// state.json and /proc lookups shared by enclavia-sandbox and LocalProvider.
#include <cerrno>
#include <exception>
#include <string>

#include <nlohmann/json.hpp>

#include "host/launcher/sandbox.h"
#include "lib/base/file.h"
#include "lib/crypto/hash.h"

namespace enclavia::host {
namespace {

constexpr size_t kMaxStateFile = size_t{64} * 1024;
constexpr size_t kMaxStatFile = 4096;

}  // namespace

std::string_view CgroupModeName(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::kV2:
      return "v2";
    case CgroupMode::kV1:
      return "v1";
    case CgroupMode::kRlimit:
      break;
  }
  return "rlimit";
}

std::string EncodeSandboxState(const SandboxState& s) {
  nlohmann::json pcrs = nlohmann::json::object();
  for (const auto& [index, hex] : s.pcrs) {
    pcrs[std::to_string(index)] = hex;
  }
  nlohmann::json j = {
      {"name", s.name},
      {"id", s.id},
      {"instance_id", s.instance_id},
      {"supervisor_pid", s.supervisor_pid},
      {"supervisor_starttime", s.supervisor_starttime},
      {"init_pid", s.init_pid},
      {"init_starttime", s.init_starttime},
      {"debug", s.debug},
      {"cpus", s.cpus},
      {"memory_mib", s.memory_mib},
      {"pcrs", pcrs},
      {"cgroup", std::string(CgroupModeName(s.cgroup))},
      {"cgroup_paths", s.cgroup_paths},
      {"state", s.state},
      {"started", s.started},
      {"exit_status", s.exit_status},
  };
  return j.dump(2) + "\n";
}

Result<SandboxState> ParseSandboxState(std::string_view json) {
  try {
    nlohmann::json j = nlohmann::json::parse(json);
    SandboxState s;
    s.name = j.at("name").get<std::string>();
    s.id = j.at("id").get<std::string>();
    s.instance_id = j.value("instance_id", std::string());
    s.supervisor_pid = j.at("supervisor_pid").get<int64_t>();
    s.supervisor_starttime = j.at("supervisor_starttime").get<uint64_t>();
    s.init_pid = j.at("init_pid").get<int64_t>();
    s.init_starttime = j.at("init_starttime").get<uint64_t>();
    s.debug = j.at("debug").get<bool>();
    s.cpus = j.at("cpus").get<uint32_t>();
    s.memory_mib = j.at("memory_mib").get<uint64_t>();
    for (const auto& [key, value] : j.at("pcrs").items()) {
      s.pcrs[std::stoi(key)] = value.get<std::string>();
    }
    std::string mode = j.at("cgroup").get<std::string>();
    if (mode == "v2") {
      s.cgroup = CgroupMode::kV2;
    } else if (mode == "v1") {
      s.cgroup = CgroupMode::kV1;
    } else if (mode == "rlimit") {
      s.cgroup = CgroupMode::kRlimit;
    } else {
      return Error(Code::kMalformed, "state.json: unknown cgroup mode " + mode);
    }
    s.cgroup_paths = j.value("cgroup_paths", std::vector<std::string>{});
    for (const std::string& path : s.cgroup_paths) {
      // LocalProvider removes these directories: they must be enclave cgroups, nothing else.
      if (!path.starts_with("/sys/fs/cgroup/") || path.find("/enclavia/") == std::string::npos ||
          path.find("/../") != std::string::npos || path.ends_with("/..")) {
        return Error(Code::kMalformed, "state.json: unexpected cgroup path " + path);
      }
    }
    s.state = j.at("state").get<std::string>();
    s.started = j.at("started").get<int64_t>();
    s.exit_status = j.value("exit_status", -1);
    return s;
  } catch (const std::exception& e) {
    return Error(Code::kMalformed, std::string("state.json: ") + e.what());
  }
}

Result<SandboxState> ReadSandboxState(const std::string& enclave_dir) {
  ASSIGN_OR_RETURN(Bytes text, ReadFile(enclave_dir + "/" + std::string(kStateFile), kMaxStateFile));
  return ParseSandboxState(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
}

Result<void> WriteSandboxState(const std::string& enclave_dir, const SandboxState& state) {
  std::string text = EncodeSandboxState(state);
  return WriteFileAtomic(enclave_dir + "/" + std::string(kStateFile),
                         ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                         0600);
}

Result<ProcessInfo> ReadProcessInfo(pid_t pid) {
  if (pid <= 0) {
    return Error(Code::kNotFound, "no process " + std::to_string(pid));
  }
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/stat", kMaxStatFile);
  if (!text) {
    return Error(Code::kNotFound, "no process " + std::to_string(pid));
  }
  std::string stat(text->begin(), text->end());
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) {
    return Error(Code::kMalformed, "/proc/" + std::to_string(pid) + "/stat: unexpected format");
  }
  ProcessInfo info;
  info.state = stat[close + 2];
  // After ')' come field 3 (state) … field 22 (starttime): skip 19 separators.
  size_t pos = close + 2;
  for (int field = 3; field < 22; ++field) {
    pos = stat.find(' ', pos);
    if (pos == std::string::npos) {
      return Error(Code::kMalformed, "/proc/" + std::to_string(pid) + "/stat: too few fields");
    }
    ++pos;
  }
  info.starttime = std::strtoull(stat.c_str() + pos, nullptr, 10);
  return info;
}

bool IsAlive(int64_t pid, uint64_t starttime) {
  auto info = ReadProcessInfo(static_cast<pid_t>(pid));
  return info && info->state != 'Z' && info->state != 'X' && info->starttime == starttime;
}

Bytes Pcr4ForInstance(std::string_view instance_id) {
  Bytes input(48, 0);
  input.insert(input.end(), instance_id.begin(), instance_id.end());
  crypto::Sha384Digest digest = crypto::Sha384(input);
  return Bytes(digest.begin(), digest.end());
}

}  // namespace enclavia::host
