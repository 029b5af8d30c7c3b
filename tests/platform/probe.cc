// SPDX-License-Identifier: Apache-2.0
// enclavia-probe: an enclave application for the platform tests. It answers one HTTP GET per
// connection on --port with what it can see and do from inside the sandbox:
//   /                      "probe boot=<random id> pid=<pid> uid=<uid>"
//   /crash?code=N          replies, then exits with status N
//   /alloc?mib=N           allocates and touches N MiB, then replies "allocated N"
//   /connect?ip=A&port=P   a TCP connect with a 2 s timeout: "connected" or "error: <errno text>"
//   /file?path=P           "exists" or "missing: <errno text>"
//   /ls?path=P             the directory's entries, one per line, sorted
//   /net                   the network interfaces, one per line
//   /echo?text=T           T (goes to stdout too: the console, in debug mode only)
//   /resolve?name=N        getaddrinfo(N): "addresses: A B ..." (sorted) or "error: <gai text>"
//   /fetch?host=H&port=P&path=/X
//                          resolves H (a name or an IP literal, v4 or v6), connects to the first
//                          address that takes the connection (3 s timeout each), sends one
//                          HTTP/1.0 GET and answers "ok <ip> <body>", or "error: <ip>: <text>"
//                          per address tried
//   /udp?ip=A&port=P&text=T  sends T in one UDP datagram: "sent" or "error: <errno text>"
//   /vsock                 socket(AF_VSOCK): "allowed" or "error: <errno text>"
//   /download?ip=A&port=P&bytes=N
//                          GET /big?n=N from A:P (v4 or v6 literal), discards the body:
//                          "ok N bytes in MS ms" (for bench/egress.sh)
//   /connect-time?ip=A&port=P&n=K
//                          K connects to A:P, closed at once: "ok median US us" or "error: ..."
//   /resolve-time?name=N   getaddrinfo(N) timed: "ok US us" or "error: <gai text>"
// Static and dependency-free, like examples/hello.
#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <netdb.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace {

std::string Param(const std::string& query, const std::string& name) {
  size_t pos = 0;
  while (pos < query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string::npos) {
      end = query.size();
    }
    std::string pair = query.substr(pos, end - pos);
    if (pair.rfind(name + "=", 0) == 0) {
      std::string value = pair.substr(name.size() + 1);
      std::string out;
      for (size_t i = 0; i < value.size(); ++i) {
        if (value[i] == '%' && i + 2 < value.size()) {
          out += static_cast<char>(std::strtol(value.substr(i + 1, 2).c_str(), nullptr, 16));
          i += 2;
        } else if (value[i] == '+') {
          out += ' ';
        } else {
          out += value[i];
        }
      }
      return out;
    }
    pos = end + 1;
  }
  return "";
}

std::string Connect(const std::string& ip, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return std::string("error: socket: ") + std::strerror(errno);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return "error: bad ip";
  }
  std::string result = "connected";
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      result = std::string("error: ") + std::strerror(errno);
    } else {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 2000) != 1) {
        result = "error: timed out";
      } else {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          result = std::string("error: ") + std::strerror(err);
        }
      }
    }
  }
  ::close(fd);
  return result;
}

// ConnectTo connects `fd` (non-blocking) to `sa` within `timeout_ms`: "" or the error text.
std::string ConnectTo(int fd, const sockaddr* sa, socklen_t len, int timeout_ms) {
  if (::connect(fd, sa, len) == 0) {
    return "";
  }
  if (errno != EINPROGRESS) {
    return std::strerror(errno);
  }
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, timeout_ms) != 1) {
    return "timed out";
  }
  int err = 0;
  socklen_t elen = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  return err == 0 ? "" : std::strerror(err);
}

std::string IpText(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

std::string Resolve(const std::string& name) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    return std::string("error: ") + ::gai_strerror(rc) + "\n";
  }
  std::set<std::string> ips;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    ips.insert(IpText(a->ai_addr));
  }
  ::freeaddrinfo(res);
  std::string out = "addresses:";
  for (const std::string& ip : ips) {
    out += " " + ip;
  }
  return out + "\n";
}

std::string Fetch(const std::string& host, const std::string& port, const std::string& path) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return std::string("error: resolve ") + host + ": " + ::gai_strerror(rc) + "\n";
  }
  std::string errors;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    std::string ip = IpText(a->ai_addr);
    int fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      errors += "error: " + ip + ": socket: " + std::strerror(errno) + "\n";
      continue;
    }
    std::string failed = ConnectTo(fd, a->ai_addr, a->ai_addrlen, 3000);
    if (!failed.empty()) {
      errors += "error: " + ip + ": " + failed + "\n";
      ::close(fd);
      continue;
    }
    std::string request = "GET " + (path.empty() ? std::string("/") : path) +
                          " HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string response;
    char buf[4096];
    while (response.size() < (1 << 20)) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) {
        break;
      }
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      response.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    ::freeaddrinfo(res);
    size_t body = response.find("\r\n\r\n");
    return "ok " + ip + " " + (body == std::string::npos ? response : response.substr(body + 4));
  }
  ::freeaddrinfo(res);
  return errors;
}

std::string SendUdp(const std::string& ip, int port, const std::string& text) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v6;
  } else {
    return "error: bad ip\n";
  }
  int fd = ::socket(ss.ss_family, SOCK_DGRAM, 0);
  if (fd < 0) {
    return std::string("error: ") + std::strerror(errno) + "\n";
  }
  ssize_t n = ::sendto(fd, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&ss), len);
  std::string out = n < 0 ? std::string("error: ") + std::strerror(errno) + "\n" : "sent\n";
  ::close(fd);
  return out;
}

// Literal parses an IPv4 or IPv6 literal with a port into `ss`; its length, or 0.
socklen_t Literal(const std::string& ip, int port, sockaddr_storage* ss) {
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    return sizeof *v4;
  }
  if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    return sizeof *v6;
  }
  return 0;
}

long long MicrosSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

std::string Download(const std::string& ip, int port, long long bytes) {
  sockaddr_storage ss{};
  socklen_t len = Literal(ip, port, &ss);
  if (len == 0) {
    return "error: bad ip\n";
  }
  auto start = std::chrono::steady_clock::now();
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  std::string failed = ConnectTo(fd, reinterpret_cast<sockaddr*>(&ss), len, 3000);
  if (!failed.empty()) {
    ::close(fd);
    return "error: " + failed + "\n";
  }
  std::string request = "GET /big?n=" + std::to_string(bytes) + " HTTP/1.0\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  static char buf[1 << 18];
  long long got = 0;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) {
      break;
    }
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    got += n;
  }
  ::close(fd);
  return "ok " + std::to_string(got) + " bytes in " + std::to_string(MicrosSince(start) / 1000) +
         " ms\n";
}

std::string ConnectTime(const std::string& ip, int port, int count) {
  sockaddr_storage ss{};
  socklen_t len = Literal(ip, port, &ss);
  if (len == 0 || count <= 0 || count > 1000) {
    return "error: bad ip or n\n";
  }
  std::vector<long long> times;
  for (int i = 0; i < count; ++i) {
    auto start = std::chrono::steady_clock::now();
    int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    std::string failed = ConnectTo(fd, reinterpret_cast<sockaddr*>(&ss), len, 3000);
    times.push_back(MicrosSince(start));
    ::close(fd);
    if (!failed.empty()) {
      return "error: " + failed + "\n";
    }
  }
  std::sort(times.begin(), times.end());
  return "ok median " + std::to_string(times[times.size() / 2]) + " us\n";
}

std::string ResolveTime(const std::string& name) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  auto start = std::chrono::steady_clock::now();
  int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
  long long us = MicrosSince(start);
  if (rc != 0) {
    return std::string("error: ") + ::gai_strerror(rc) + "\n";
  }
  ::freeaddrinfo(res);
  return "ok " + std::to_string(us) + " us\n";
}

std::string List(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    return std::string("error: ") + std::strerror(errno);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") {
      names.push_back(name);
    }
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) {
    out += n + "\n";
  }
  return out;
}

std::string Handle(const std::string& path, const std::string& query, const std::string& boot,
                   int* exit_after) {
  if (path == "/") {
    return "probe boot=" + boot + " pid=" + std::to_string(::getpid()) +
           " uid=" + std::to_string(::getuid()) + "\n";
  }
  if (path == "/crash") {
    *exit_after = std::atoi(Param(query, "code").c_str());
    return "exiting " + std::to_string(*exit_after) + "\n";
  }
  if (path == "/alloc") {
    long mib = std::atol(Param(query, "mib").c_str());
    for (long i = 0; i < mib; ++i) {
      char* block = static_cast<char*>(std::malloc(1 << 20));
      if (block == nullptr) {
        return "error: out of memory after " + std::to_string(i) + " MiB\n";
      }
      std::memset(block, 0x5a, 1 << 20);  // Touch every page; never freed.
    }
    return "allocated " + std::to_string(mib) + "\n";
  }
  if (path == "/connect") {
    return Connect(Param(query, "ip"), std::atoi(Param(query, "port").c_str())) + "\n";
  }
  if (path == "/file") {
    struct stat st{};
    std::string p = Param(query, "path");
    return ::lstat(p.c_str(), &st) == 0 ? "exists\n" : "missing: " + std::string(std::strerror(errno)) + "\n";
  }
  if (path == "/ls") {
    return List(Param(query, "path"));
  }
  if (path == "/net") {
    std::string out;
    if (struct if_nameindex* names = ::if_nameindex()) {
      for (struct if_nameindex* n = names; n->if_index != 0; ++n) {
        out += std::string(n->if_name) + "\n";
      }
      ::if_freenameindex(names);
    }
    return out;
  }
  if (path == "/resolve") {
    return Resolve(Param(query, "name"));
  }
  if (path == "/fetch") {
    return Fetch(Param(query, "host"), Param(query, "port"), Param(query, "path"));
  }
  if (path == "/udp") {
    return SendUdp(Param(query, "ip"), std::atoi(Param(query, "port").c_str()), Param(query, "text"));
  }
  if (path == "/download") {
    return Download(Param(query, "ip"), std::atoi(Param(query, "port").c_str()),
                    std::atoll(Param(query, "bytes").c_str()));
  }
  if (path == "/connect-time") {
    return ConnectTime(Param(query, "ip"), std::atoi(Param(query, "port").c_str()),
                       std::atoi(Param(query, "n").c_str()));
  }
  if (path == "/resolve-time") {
    return ResolveTime(Param(query, "name"));
  }
  if (path == "/vsock") {
    int fd = ::socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0) {
      return std::string("error: ") + std::strerror(errno) + "\n";
    }
    ::close(fd);
    return "allowed\n";
  }
  if (path == "/echo") {
    std::string text = Param(query, "text");
    std::printf("probe: %s\n", text.c_str());
    std::fflush(stdout);
    return text + "\n";
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  int port = 8081;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: enclavia-probe [--port N]\n");
      return 2;
    }
  }
  char boot[17] = {};
  unsigned char raw[8] = {};
  int rnd = ::open("/dev/urandom", O_RDONLY);
  if (rnd < 0 || ::read(rnd, raw, sizeof raw) != static_cast<ssize_t>(sizeof raw)) {
    std::fprintf(stderr, "probe: /dev/urandom: %s\n", std::strerror(errno));
    return 1;
  }
  ::close(rnd);
  for (int i = 0; i < 8; ++i) {
    std::snprintf(boot + 2 * i, 3, "%02x", raw[i]);
  }
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 64) != 0) {
    std::fprintf(stderr, "probe: cannot listen on 127.0.0.1:%d: %s\n", port, std::strerror(errno));
    return 1;
  }
  std::printf("probe: listening on 127.0.0.1:%d boot=%s\n", port, boot);
  std::fflush(stdout);
  for (;;) {
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) {
      continue;
    }
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      request.append(buf, static_cast<size_t>(n));
    }
    std::string target;
    if (request.rfind("GET ", 0) == 0) {
      target = request.substr(4, request.find(' ', 4) - 4);
    }
    size_t q = target.find('?');
    std::string path = target.substr(0, q);
    std::string query = q == std::string::npos ? "" : target.substr(q + 1);
    int exit_after = -1;
    std::string body = Handle(path, query, boot, &exit_after);
    std::string status = body.empty() ? "404 Not Found" : "200 OK";
    std::string response = "HTTP/1.1 " + status + "\r\nContent-Type: text/plain\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    size_t off = 0;
    while (off < response.size()) {
      ssize_t n = ::write(fd, response.data() + off, response.size() - off);
      if (n <= 0) {
        break;
      }
      off += static_cast<size_t>(n);
    }
    ::close(fd);
    if (exit_after >= 0) {
      return exit_after;
    }
  }
}
