// SPDX-License-Identifier: Apache-2.0
// bulk: the two ends of the bulk-throughput benchmark (bench/channel.sh), plain POSIX sockets.
//   bulk server PORT                  serve: "d"+N → send N bytes; "u" → read to EOF, reply N
//   bulk client IP:PORT d|u BYTES     one transfer; prints "<seconds> <MiB/s>"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kChunk = 256 * 1024;

bool WriteAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w <= 0) {
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r <= 0) {
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void Serve(int fd) {
  std::vector<uint8_t> buffer(kChunk, 0x5a);
  uint8_t header[9];
  if (!ReadAll(fd, header, 1)) {
    ::close(fd);
    return;
  }
  if (header[0] == 'd' && ReadAll(fd, header + 1, 8)) {
    uint64_t n = 0;
    std::memcpy(&n, header + 1, 8);
    while (n > 0) {
      size_t k = n < kChunk ? static_cast<size_t>(n) : kChunk;
      if (!WriteAll(fd, buffer.data(), k)) {
        break;
      }
      n -= k;
    }
  } else if (header[0] == 'u') {
    uint64_t total = 0;
    for (;;) {
      ssize_t r = ::read(fd, buffer.data(), buffer.size());
      if (r <= 0) {
        break;
      }
      total += static_cast<uint64_t>(r);
    }
    WriteAll(fd, reinterpret_cast<const uint8_t*>(&total), 8);
  }
  ::close(fd);
}

int Server(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(s, 64) != 0) {
    std::perror("bulk server");
    return 1;
  }
  std::printf("bulk: listening on %d\n", port);
  std::fflush(stdout);
  for (;;) {
    int c = ::accept(s, nullptr, nullptr);
    if (c >= 0) {
      std::thread(Serve, c).detach();
    }
  }
}

int Client(const std::string& target, char op, uint64_t bytes) {
  size_t colon = target.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(target.c_str() + colon + 1)));
  ::inet_pton(AF_INET, target.substr(0, colon).c_str(), &addr.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto start = std::chrono::steady_clock::now();
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("bulk client");
    return 1;
  }
  std::vector<uint8_t> buffer(kChunk, 0xa5);
  uint64_t moved = 0;
  if (op == 'd') {
    uint8_t header[9] = {'d'};
    std::memcpy(header + 1, &bytes, 8);
    WriteAll(fd, header, 9);
    for (;;) {
      ssize_t r = ::read(fd, buffer.data(), buffer.size());
      if (r <= 0) {
        break;
      }
      moved += static_cast<uint64_t>(r);
    }
  } else {
    uint8_t header = 'u';
    WriteAll(fd, &header, 1);
    uint64_t left = bytes;
    while (left > 0) {
      size_t k = left < kChunk ? static_cast<size_t>(left) : kChunk;
      if (!WriteAll(fd, buffer.data(), k)) {
        break;
      }
      left -= k;
    }
    ::shutdown(fd, SHUT_WR);
    uint64_t count = 0;
    if (ReadAll(fd, reinterpret_cast<uint8_t*>(&count), 8)) {
      moved = count;
    }
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  if (moved != bytes) {
    std::fprintf(stderr, "bulk: moved %llu of %llu bytes\n",
                 static_cast<unsigned long long>(moved), static_cast<unsigned long long>(bytes));
    return 1;
  }
  std::printf("%.4f %.1f\n", seconds, static_cast<double>(bytes) / seconds / (1 << 20));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "server") {
    return Server(std::atoi(argv[2]));
  }
  if (argc == 5 && std::string(argv[1]) == "client" && (argv[3][0] == 'd' || argv[3][0] == 'u')) {
    return Client(argv[2], argv[3][0], std::strtoull(argv[4], nullptr, 10));
  }
  std::fprintf(stderr, "usage: bulk server PORT | bulk client IP:PORT d|u BYTES\n");
  return 2;
}
