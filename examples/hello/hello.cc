// SPDX-License-Identifier: Apache-2.0
// hello: the smallest useful enclave application. An HTTP/1.1 server on 0.0.0.0:PORT that answers
// every GET with "hello from the enclave: $GREETING". POSIX sockets and threads only, so it links
// statically and its rootfs is one file. SIGTERM or SIGINT stops it cleanly (exit 0).
#include <poll.h>
#include <signal.h>
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

namespace {

constexpr int kMaxConnections = 64;        // Beyond this, new connections are closed at once.
constexpr size_t kMaxRequestBytes = 8192;  // Request line and headers.
constexpr int kIoTimeoutSeconds = 10;      // A silent client does not hold a thread forever.

std::atomic<int> active_connections{0};

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

std::string Response(int status, std::string_view reason, std::string_view body, bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (status == 405) {
    out += "Allow: GET, HEAD\r\n";
  }
  out += "Connection: close\r\n\r\n";
  if (!head) {
    out += body;
  }
  return out;
}

// Serve answers one request on `fd` and closes it. One request per connection keeps the server
// small; "Connection: close" tells the client.
void Serve(int fd, std::string body) {
  timeval timeout{kIoTimeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  std::string request;
  char buf[2048];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < kMaxRequestBytes) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    request.append(buf, static_cast<size_t>(n));
  }
  std::string_view method = std::string_view(request).substr(0, request.find(' '));
  if (request.find("\r\n\r\n") == std::string::npos) {
    SendAll(fd, Response(400, "Bad Request", "bad request\n", false));
  } else if (method == "GET" || method == "HEAD") {
    SendAll(fd, Response(200, "OK", body, method == "HEAD"));
  } else {
    SendAll(fd, Response(405, "Method Not Allowed", "only GET\n", false));
  }
  ::close(fd);
  active_connections.fetch_sub(1);
}

int Usage() {
  std::fprintf(stderr, "usage: hello [--port PORT]   (PORT 0 picks a free port; default 8080)\n");
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
    } else {
      return Usage();
    }
  }
  const char* greeting = std::getenv("GREETING");
  const std::string body =
      "hello from the enclave: " + std::string(greeting != nullptr ? greeting : "world") + "\n";

  // SIGTERM/SIGINT arrive on a signalfd; blocked before any thread starts, so no thread gets them.
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
    std::fprintf(stderr, "hello: cannot listen on port %ld: %s\n", port, std::strerror(errno));
    return 1;
  }
  std::printf("hello: listening on 0.0.0.0:%u\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  pollfd fds[2] = {{listen_fd, POLLIN, 0}, {sig_fd, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::fprintf(stderr, "hello: poll: %s\n", std::strerror(errno));
      return 1;
    }
    if (fds[1].revents != 0) {
      break;
    }
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      continue;  // The client went away, or a transient shortage (EMFILE): keep serving.
    }
    if (active_connections.fetch_add(1) >= kMaxConnections) {
      active_connections.fetch_sub(1);
      ::close(fd);
      continue;
    }
    try {
      std::thread(Serve, fd, body).detach();  // `body` is copied: the thread may outlive main.
    } catch (const std::system_error&) {      // No thread available: drop this connection.
      active_connections.fetch_sub(1);
      ::close(fd);
    }
  }

  // Stop accepting, give requests in flight up to two seconds, then exit.
  ::close(listen_fd);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (active_connections.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("hello: stopped\n");
  return 0;
}
