// SPDX-License-Identifier: Apache-2.0
#include "testing/knot_server.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lib/sys/fd.h"
#include "lib/sys/process.h"

namespace enclavia::testing {
namespace {

bool OnPath(const std::string& tool) {
  for (const char* dir :
       {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/", "/usr/local/sbin/", "/usr/local/bin/"}) {
    if (::access((std::string(dir) + tool).c_str(), X_OK) == 0) {
      return true;
    }
  }
  return false;
}

// FreePort finds a port free for TCP and UDP on 127.0.0.1 (a small race with other tests; Start
// retries on a bind failure).
uint16_t FreePort() {
  for (int tries = 0; tries < 50; ++tries) {
    sys::UniqueFd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sin);
    if (::bind(tcp.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 ||
        ::getsockname(tcp.get(), reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
      continue;
    }
    sys::UniqueFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (::bind(udp.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0) {
      return ntohs(sin.sin_port);
    }
  }
  return 0;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

bool KnotServer::Available() { return OnPath("knotd") && OnPath("keymgr") && OnPath("kdig"); }

Result<std::unique_ptr<KnotServer>> KnotServer::Start(const std::string& dir,
                                                      std::vector<KnotZone> zones) {
  for (const char* sub : {"/zones", "/db", "/run"}) {
    if (::mkdir((dir + sub).c_str(), 0700) != 0 && errno != EEXIST) {
      return sys::IoError("mkdir " + dir + sub, errno);
    }
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    uint16_t port = FreePort();
    std::string conf;
    conf.append("server:\n  rundir: ").append(dir).append("/run\n");
    conf.append("  listen: 127.0.0.1@").append(std::to_string(port)).append("\n");
    conf.append("  background-workers: 1\n  tcp-workers: 2\n  udp-workers: 1\n");
    conf.append("log:\n  - target: ").append(dir).append("/knot.log\n    any: info\n");
    conf.append("database:\n  storage: ").append(dir).append("/db\n");
    conf.append("policy:\n  - id: fast\n    algorithm: ecdsap256sha256\n");
    conf.append("    ksk-lifetime: 0\n    zsk-lifetime: 0\n");
    conf.append("template:\n  - id: default\n    storage: ").append(dir).append("/zones\n");
    conf.append("    file: %s.zone\n    zonefile-sync: -1\n    journal-content: none\n");
    conf.append("zone:\n");
    for (const KnotZone& z : zones) {
      conf.append("  - domain: ").append(z.name).append(".\n");
      if (z.sign) {
        conf.append("    dnssec-signing: on\n    dnssec-policy: fast\n");
      }
      std::string zone_text;
      zone_text.append("$ORIGIN ").append(z.name).append(".\n$TTL 60\n");
      zone_text.append("@ SOA ns hostmaster 1 60 60 600 60\n@ NS ns\nns A 127.0.0.1\n");
      zone_text.append(z.records).append("\n");
      if (!WriteFile(dir + "/zones/" + z.name + ".zone", zone_text)) {
        return Error(Code::kIo, "cannot write the zone file of " + z.name);
      }
    }
    if (!WriteFile(dir + "/knot.conf", conf)) {
      return Error(Code::kIo, "cannot write knot.conf");
    }
    sys::UniqueFd log(
        ::open((dir + "/knotd.out").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    ASSIGN_OR_RETURN(pid_t pid, sys::Spawn({"knotd", "-c", dir + "/knot.conf"}, log.get(),
                                           /*die_with_parent=*/true));
    std::unique_ptr<KnotServer> server(new KnotServer(dir, port, pid));
    // Ready when every zone answers over TCP (signed zones with their DNSKEY).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        server->pid_ = -1;
        exited = true;
        break;
      }
      bool ready = true;
      for (const KnotZone& z : zones) {
        std::string out;
        auto rc = sys::RunCommand(
            {"kdig", "+tcp", "+short", "+time=1", "+retry=0", "-p", std::to_string(port),
             "@127.0.0.1", z.name + ".", z.sign ? "DNSKEY" : "SOA"},
            std::chrono::seconds(3), &out);
        if (!rc || *rc != 0 || out.empty()) {
          ready = false;
          break;
        }
      }
      if (ready) {
        return server;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!exited) {
      return Error(Code::kUnavailable, "knotd did not come up: " + server->Log());
    }
    // Most likely the port was taken between FreePort and knotd's bind: try another.
  }
  return Error(Code::kUnavailable, "knotd exited at start: " + ReadFileText(dir + "/knotd.out") +
                                       ReadFileText(dir + "/knot.log"));
}

KnotServer::~KnotServer() {
  if (pid_ <= 0) {
    return;
  }
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
}

Result<std::string> KnotServer::TrustAnchor(std::string_view zone) const {
  std::string out;
  ASSIGN_OR_RETURN(
      int rc, sys::RunCommand({"keymgr", "-c", dir_ + "/knot.conf", std::string(zone) + ".", "ds"},
                              std::chrono::seconds(10), &out));
  if (rc != 0) {
    return Error(Code::kUnavailable, "keymgr ds failed: " + out);
  }
  // Keep the SHA-256 line: "<zone>. DS <tag> <alg> 2 <digest>".
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string owner, type, tag, alg, digest_type;
    fields >> owner >> type >> tag >> alg >> digest_type;
    if (type == "DS" && digest_type == "2") {
      return line + "\n";
    }
  }
  return Error(Code::kNotFound, "keymgr printed no SHA-256 DS: " + out);
}

std::string KnotServer::Log() const {
  return ReadFileText(dir_ + "/knotd.out") + ReadFileText(dir_ + "/knot.log");
}

}  // namespace enclavia::testing
