// SPDX-License-Identifier: Apache-2.0
// kv: a small key-value store over HTTP/1.1 that keeps every value as a file in a directory (the
// enclave's volume, /data by default). PUT /kv/KEY stores the body durably (write a temporary
// file, fsync, rename, fsync the directory) and answers 204 only after that; GET /kv/KEY returns
// it (404 if absent); DELETE /kv/KEY removes it; GET /healthz says ok. One request per
// connection. KEY: 1-128 of [A-Za-z0-9._-], not starting with '.'. Values up to 1 MiB.
// POSIX sockets and threads only, so it links statically.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

namespace {

constexpr int kMaxConnections = 64;
constexpr size_t kMaxHeaderBytes = 8192;
constexpr size_t kMaxValueBytes = 1 << 20;
constexpr int kIoTimeoutSeconds = 10;

std::atomic<int> active_connections{0};
std::string data_dir = "/data";

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string Response(int status, std::string_view reason, std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += body;
  return out;
}

bool ValidKey(std::string_view key) {
  if (key.empty() || key.size() > 128 || key[0] == '.') {
    return false;
  }
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno) + "\n"; }

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Store makes `value` the durable content of KEY; "" on success, else the error line.
std::string Store(const std::string& key, std::string_view value) {
  std::string tmp = data_dir + "/.tmp-" + key + "-" + std::to_string(::gettid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Errno("open");
  }
  bool ok = WriteAll(fd, value) && ::fsync(fd) == 0;
  std::string error = ok ? "" : Errno("write");
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return error;
  }
  if (::rename(tmp.c_str(), (data_dir + "/" + key).c_str()) != 0) {
    error = Errno("rename");
    ::unlink(tmp.c_str());
    return error;
  }
  int dir = ::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || ::fsync(dir) != 0) {
    error = Errno("fsync directory");
  }
  if (dir >= 0) {
    ::close(dir);
  }
  return error;
}

void Serve(int fd) {
  timeval timeout{kIoTimeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  std::string request;
  char buf[16384];
  size_t header_end = std::string::npos;
  while ((header_end = request.find("\r\n\r\n")) == std::string::npos &&
         request.size() < kMaxHeaderBytes) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    request.append(buf, static_cast<size_t>(n));
  }
  std::string reply;
  if (header_end == std::string::npos) {
    reply = Response(400, "Bad Request", "bad request\n");
  } else {
    std::string_view head = std::string_view(request).substr(0, header_end);
    std::string_view line = head.substr(0, head.find("\r\n"));
    std::string_view method = line.substr(0, line.find(' '));
    std::string_view rest = line.substr(line.find(' ') + 1);
    std::string_view path = rest.substr(0, rest.find(' '));
    size_t length = 0;
    for (std::string_view key : {"\r\nContent-Length:", "\r\ncontent-length:"}) {
      size_t at = head.find(key);
      if (at != std::string_view::npos) {
        length = std::strtoul(std::string(head.substr(at + key.size(), 20)).c_str(), nullptr, 10);
      }
    }
    std::string body = request.substr(header_end + 4);
    if (path == "/healthz") {
      reply = Response(200, "OK", "ok\n");
    } else if (!path.starts_with("/kv/") || !ValidKey(path.substr(4))) {
      reply = Response(404, "Not Found", "use /kv/KEY\n");
    } else if (length > kMaxValueBytes) {
      reply = Response(413, "Payload Too Large", "values are at most 1 MiB\n");
    } else {
      std::string key(path.substr(4));
      std::string file = data_dir + "/" + key;
      if (method == "PUT") {
        while (body.size() < length) {
          ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
          if (n < 0 && errno == EINTR) {
            continue;
          }
          if (n <= 0) {
            break;
          }
          body.append(buf, static_cast<size_t>(n));
        }
        if (body.size() < length) {
          reply = Response(400, "Bad Request", "short body\n");
        } else {
          std::string error = Store(key, std::string_view(body).substr(0, length));
          reply = error.empty() ? Response(204, "No Content", "")
                                : Response(500, "Internal Server Error", error);
        }
      } else if (method == "GET") {
        int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        if (in < 0) {
          reply = errno == ENOENT ? Response(404, "Not Found", "no such key\n")
                                  : Response(500, "Internal Server Error", Errno("open"));
        } else {
          std::string value;
          ssize_t n = 0;
          while ((n = ::read(in, buf, sizeof(buf))) > 0) {
            value.append(buf, static_cast<size_t>(n));
          }
          reply = n < 0 ? Response(500, "Internal Server Error", Errno("read"))
                        : Response(200, "OK", value);
          ::close(in);
        }
      } else if (method == "DELETE") {
        reply = ::unlink(file.c_str()) == 0 || errno == ENOENT
                    ? Response(204, "No Content", "")
                    : Response(500, "Internal Server Error", Errno("unlink"));
      } else {
        reply = Response(405, "Method Not Allowed", "GET, PUT or DELETE\n");
      }
    }
  }
  SendAll(fd, reply);
  ::close(fd);
  active_connections.fetch_sub(1);
}

int Usage() {
  std::fprintf(stderr, "usage: kv [--port PORT] [--dir DIR]   (default 8080 and /data)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  long port = 8080;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      char* end = nullptr;
      port = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || port < 0 || port > 65535) {
        return Usage();
      }
    } else if (arg == "--dir" && i + 1 < argc) {
      data_dir = argv[++i];
    } else {
      return Usage();
    }
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  int sig_fd = ::signalfd(-1, &stop, SFD_CLOEXEC);
  int listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t len = sizeof(addr);
  if (sig_fd < 0 || listen_fd < 0 ||
      ::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd, 128) != 0 ||
      ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::fprintf(stderr, "kv: cannot listen on port %ld: %s\n", port, std::strerror(errno));
    return 1;
  }
  std::printf("kv: listening on 0.0.0.0:%u, values in %s\n", ntohs(addr.sin_port),
              data_dir.c_str());
  std::fflush(stdout);
  pollfd fds[2] = {{listen_fd, POLLIN, 0}, {sig_fd, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return 1;
    }
    if (fds[1].revents != 0) {
      break;
    }
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      continue;
    }
    if (active_connections.fetch_add(1) >= kMaxConnections) {
      active_connections.fetch_sub(1);
      ::close(fd);
      continue;
    }
    try {
      std::thread(Serve, fd).detach();
    } catch (const std::system_error&) {
      active_connections.fetch_sub(1);
      ::close(fd);
    }
  }
  ::close(listen_fd);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (active_connections.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;
}
