// SPDX-License-Identifier: Apache-2.0
// sandbox_probe: a static /init for the local provider's tests. It looks around from inside the
// sandbox and answers one-line commands on vsock port 5000 (the local mapping's Unix socket):
//   facts          key=value lines (pid, hostname, /, network interfaces, host files, outbound
//                  connection, NSM), then "end"
//   attest HEX     "doc HEX": an attestation document from /dev/nsm with that nonce
//   alloc MIB      allocates and touches MIB MiB; "allocated" (if it was not killed) or "failed"
//   say TEXT       writes TEXT to stdout (the console) and answers "said"
//   exit CODE      answers "bye" and exits with CODE
// facts include "version=" the first line of /version (the tests' ramdisks overwrite it).
// /probe.conf (in the image) holds "marker=PATH" (a host file that must stay invisible) and
// "port=N" (a host loopback port that must stay unreachable). SIGTERM ends it with status 0.
#include <arpa/inet.h>
#include <dirent.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "lib/attestation/nsm_socket.h"
#include "lib/base/encoding.h"
#include "lib/transport/transport.h"

namespace {

volatile sig_atomic_t g_stop = 0;

void OnTerm(int /*sig*/) { g_stop = 1; }

std::string Conf(const std::string& key) {
  std::ifstream in("/probe.conf");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key + "=")) {
      return line.substr(key.size() + 1);
    }
  }
  return "";
}

std::string Facts() {
  std::string out;
  out += "pid=" + std::to_string(::getpid()) + "\n";
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  out += "hostname=" + std::string(host) + "\n";
  std::vector<std::string> names;
  if (DIR* d = ::opendir("/")) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") {
        names.push_back(n);
      }
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  std::string root;
  for (const std::string& n : names) {
    if (!root.empty()) {
      root += ',';
    }
    root += n;
  }
  out += "root=" + root + "\n";
  std::string ifs;
  if (struct if_nameindex* list = ::if_nameindex()) {
    for (struct if_nameindex* i = list; i->if_index != 0; ++i) {
      if (!ifs.empty()) {
        ifs += ',';
      }
      ifs += i->if_name;
    }
    ::if_freenameindex(list);
  }
  out += "netifs=" + ifs + "\n";
  std::string marker = Conf("marker");
  struct stat st {};
  out += "host_marker=" +
         std::string(!marker.empty() && ::stat(marker.c_str(), &st) == 0 ? "visible" : "absent") +
         "\n";
  out += "etc_hostname=" + std::string(::stat("/etc/hostname", &st) == 0 ? "visible" : "absent") +
         "\n";
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(Conf("port").c_str())));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool connected = s >= 0 && ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  if (s >= 0) {
    ::close(s);
  }
  out += "outbound=" + std::string(connected ? "connected" : "refused") + "\n";
  out += "nsm_is_socket=" +
         std::string(::stat("/dev/nsm", &st) == 0 && S_ISSOCK(st.st_mode) ? "yes" : "no") + "\n";
  std::ifstream version("/version");
  std::string v;
  std::getline(version, v);
  out += "version=" + v + "\n";
  out += "dev_null=" + std::string(::access("/dev/null", W_OK) == 0 ? "yes" : "no") + "\n";
  out += "end\n";
  return out;
}

std::string Attest(const std::string& nonce_hex) {
  auto nonce = enclavia::HexDecode(nonce_hex);
  if (!nonce) {
    return "error bad nonce\n";
  }
  auto nsm = enclavia::attestation::OpenNsm();
  if (!nsm) {
    return "error " + nsm.error().message() + "\n";
  }
  enclavia::attestation::AttestationRequest request;
  request.nonce = *nonce;
  auto doc = (*nsm)->Attestation(request);
  if (!doc) {
    return "error " + doc.error().message() + "\n";
  }
  return "doc " + enclavia::HexEncode(*doc) + "\n";
}

std::string Alloc(const std::string& mib_text) {
  size_t size = static_cast<size_t>(std::strtoull(mib_text.c_str(), nullptr, 10)) << 20;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return "failed\n";
  }
  auto* bytes = static_cast<volatile uint8_t*>(p);
  for (size_t i = 0; i < size; i += 4096) {
    bytes[i] = 1;
  }
  ::munmap(p, size);
  return "allocated\n";
}

void WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n <= 0) {
      return;
    }
    done += static_cast<size_t>(n);
  }
}

void Serve(int conn) {
  std::string line;
  char c = 0;
  while (::read(conn, &c, 1) == 1) {
    if (c != '\n') {
      line += c;
      continue;
    }
    std::string cmd = line.substr(0, line.find(' '));
    std::string arg = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
    line.clear();
    if (cmd == "facts") {
      WriteAll(conn, Facts());
    } else if (cmd == "attest") {
      WriteAll(conn, Attest(arg));
    } else if (cmd == "alloc") {
      WriteAll(conn, Alloc(arg));
    } else if (cmd == "say") {
      std::printf("%s\n", arg.c_str());
      std::fflush(stdout);
      WriteAll(conn, "said\n");
    } else if (cmd == "exit") {
      WriteAll(conn, "bye\n");
      std::exit(std::atoi(arg.c_str()));
    } else {
      WriteAll(conn, "unknown\n");
    }
  }
}

}  // namespace

int main() {
  struct sigaction sa {};
  sa.sa_handler = OnTerm;  // No SA_RESTART: accept() returns EINTR.
  ::sigaction(SIGTERM, &sa, nullptr);
  ::mkdir("/proc", 0555);
  ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  std::printf("probe: started as pid %d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);

  std::string path =
      enclavia::transport::EnclaveListen(enclavia::transport::Mode::kLocal, 5000).host;
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof(addr.sun_path) - 1));
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::chmod(path.c_str(), 0666) != 0 || ::listen(listener, 4) != 0) {
    std::perror("probe: listen");
    return 2;
  }
  while (g_stop == 0) {
    int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      continue;
    }
    Serve(conn);
    ::close(conn);
  }
  std::printf("probe: SIGTERM\n");
  std::fflush(stdout);
  return 0;
}
