// SPDX-License-Identifier: Apache-2.0
// One thread per connection, like the storage service and the witness forwards: egress
// connections are few (an application's outbound calls) and each thread only polls. Every fd is
// nonblocking and every poll() also watches `wake_`, so Stop() ends each phase (reading the
// request, connecting, copying) at once.
#include "host/egress/dialer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "lib/net/socket.h"

namespace enclavia::host {
namespace {

using egress::DialStatus;
using sys::UniqueFd;
using Clock = std::chrono::steady_clock;

constexpr size_t kCopyBuffer = 64 * 1024;
constexpr size_t kMaxRequest = 64;  // A request is at most 20 bytes; the rest is early payload.

int MsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
}

enum class Wait { kReady, kTimeout, kStopped };

// WaitFor polls `fd` for `events` until `deadline`, or until the wake fd fires.
Wait WaitFor(int fd, short events, int wake, Clock::time_point deadline, short* revents) {
  for (;;) {
    pollfd fds[2] = {{.fd = fd, .events = events, .revents = 0},
                     {.fd = wake, .events = POLLIN, .revents = 0}};
    int n = ::poll(fds, 2, MsLeft(deadline));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 || fds[1].revents != 0) {
      return Wait::kStopped;
    }
    if (n == 0) {
      return Wait::kTimeout;
    }
    *revents = fds[0].revents;
    return Wait::kReady;
  }
}

// SendAll writes `data` to the nonblocking `fd` before `deadline`; false on error, timeout or
// Stop.
bool SendAll(int fd, ByteSpan data, int wake, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t put = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (put > 0) {
      off += static_cast<size_t>(put);
      continue;
    }
    if (put < 0 && errno == EINTR) {
      continue;
    }
    if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      short revents = 0;
      if (WaitFor(fd, POLLOUT, wake, deadline, &revents) != Wait::kReady) {
        return false;
      }
      continue;
    }
    return false;
  }
  return true;
}

DialStatus StatusForErrno(int err) {
  switch (err) {
    case ECONNREFUSED:
      return DialStatus::kConnectionRefused;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
    case EADDRNOTAVAIL:  // No source address of that family (e.g. no IPv6 on this host).
    case EAFNOSUPPORT:
      return DialStatus::kUnreachable;
    case ETIMEDOUT:
      return DialStatus::kTimedOut;
    case EACCES:
    case EPERM:  // The host's own packet filter.
      return DialStatus::kRefusedByHost;
    default:
      return DialStatus::kFailed;
  }
}

std::string Truncated(std::string message) {
  if (message.size() > 255) {
    message.resize(255);
  }
  return message;
}

struct Target {
  sockaddr_storage storage{};
  socklen_t size = 0;
};

Target ToSockaddr(const egress::Endpoint& to) {
  Target t;
  if (to.ip.family == egress::IpFamily::kV4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&t.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(to.port);
    std::memcpy(&sin->sin_addr, to.ip.bytes.data(), 4);
    t.size = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&t.storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(to.port);
    std::memcpy(&sin6->sin6_addr, to.ip.bytes.data(), 16);
    t.size = sizeof(sockaddr_in6);
  }
  return t;
}

struct Connected {
  UniqueFd fd;
  DialStatus status = DialStatus::kFailed;
  std::string message;
  bool stopped = false;
};

// ConnectTo opens a nonblocking TCP connection to exactly `to`, waiting up to `timeout`.
Connected ConnectTo(const egress::Endpoint& to, std::chrono::milliseconds timeout, int wake) {
  Connected out;
  Target target = ToSockaddr(to);
  int family = to.ip.family == egress::IpFamily::kV4 ? AF_INET : AF_INET6;
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  auto fail = [&](int err) {
    out.status = StatusForErrno(err);
    out.message = Truncated(std::string(std::strerror(err)));
    return std::move(out);
  };
  if (!fd.valid()) {
    return fail(errno);
  }
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&target.storage), target.size);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EINPROGRESS) {
    return fail(errno);
  }
  if (rc != 0) {
    short revents = 0;
    switch (WaitFor(fd.get(), POLLOUT, wake, Clock::now() + timeout, &revents)) {
      case Wait::kStopped:
        out.stopped = true;
        out.message = "the host's dialer is stopping";
        return out;
      case Wait::kTimeout:
        out.status = DialStatus::kTimedOut;
        out.message = "no answer within " + std::to_string(timeout.count()) + " ms";
        return out;
      case Wait::kReady:
        break;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      return fail(errno);
    }
    if (err != 0) {
      return fail(err);
    }
  }
  out.fd = std::move(fd);
  out.status = DialStatus::kConnected;
  return out;
}

// Direction is one way of the copy: bytes read from `from` wait in `buffer` until written to
// `to`. Backpressure: `from` is read only when the buffer is empty, so a slow reader on one side
// slows the writer on the other instead of growing memory.
struct Direction {
  int from = -1;
  int to = -1;
  Bytes buffer;
  size_t start = 0;  // Unsent bytes are buffer[start, end).
  size_t end = 0;
  bool reading = true;     // `from` has not reached EOF.
  bool shut = false;       // `to` got SHUT_WR.
  uint64_t moved = 0;
  bool pending() const { return start < end; }
  bool done() const { return shut; }
};

}  // namespace

bool IpPrefix::Contains(const egress::IpAddress& ip) const {
  if (ip.family != network.family) {
    return false;
  }
  size_t full = length / 8;
  if (!std::equal(network.bytes.begin(), network.bytes.begin() + static_cast<ptrdiff_t>(full),
                  ip.bytes.begin())) {
    return false;
  }
  unsigned rest = length % 8;
  if (rest == 0) {
    return true;
  }
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip.bytes[full] & mask) == network.bytes[full];
}

Result<IpPrefix> ParseIpPrefix(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Error(Code::kInvalidArgument,
                 "bad prefix \"" + std::string(text.substr(0, 64)) + "\": " + std::string(why));
  };
  size_t slash = text.find('/');
  auto ip = egress::ParseIp(text.substr(0, slash));
  if (!ip) {
    return bad("not an IP address");
  }
  IpPrefix prefix;
  prefix.network = *ip;
  unsigned max = ip->family == egress::IpFamily::kV4 ? 32 : 128;
  unsigned length = max;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3 ||
        digits.find_first_not_of("0123456789") != std::string_view::npos) {
      return bad("the length must be a number");
    }
    length = 0;
    for (char c : digits) {
      length = length * 10 + static_cast<unsigned>(c - '0');
    }
    if (length > max) {
      return bad("the length is over " + std::to_string(max));
    }
  }
  prefix.length = static_cast<uint8_t>(length);
  IpPrefix masked = prefix;
  for (unsigned bit = length; bit < max; ++bit) {
    masked.network.bytes[bit / 8] =
        static_cast<uint8_t>(masked.network.bytes[bit / 8] & ~(0x80u >> (bit % 8)));
  }
  if (!(masked.network == prefix.network)) {
    return bad("host bits are set");
  }
  return prefix;
}

std::string FormatIpPrefix(const IpPrefix& prefix) {
  return egress::FormatIp(prefix.network) + "/" + std::to_string(prefix.length);
}

std::vector<IpPrefix> DefaultDenyList() {
  std::vector<IpPrefix> out;
  for (const char* text : {"127.0.0.0/8", "0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "::1/128",
                           "::/128", "fe80::/10", "ff00::/8", "::ffff:0:0/96"}) {
    auto prefix = ParseIpPrefix(text);
    ENCLAVIA_CHECK(prefix.has_value());
    out.push_back(*prefix);
  }
  return out;
}

EgressDialer::EgressDialer(net::Address address, EgressDialerOptions options, LogSink log)
    : address_(std::move(address)), options_(std::move(options)), log_(std::move(log)) {}

Result<std::unique_ptr<EgressDialer>> EgressDialer::Start(const net::Address& listen,
                                                          EgressDialerOptions options,
                                                          LogSink log) {
  if (options.max_connections == 0 || options.request_timeout.count() <= 0 ||
      options.connect_timeout.count() <= 0 || options.idle_timeout.count() < 0) {
    return Error(Code::kInvalidArgument,
                 "egress dialer: max_connections and the request and connect timeouts must be "
                 "positive");
  }
  ASSIGN_OR_RETURN(UniqueFd fd, net::ListenOn(listen, 64));
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) {
    return sys::IoError("eventfd", errno);
  }
  std::unique_ptr<EgressDialer> dialer(
      new EgressDialer(listen, std::move(options), std::move(log)));
  dialer->listener_ = std::move(fd);
  dialer->wake_ = std::move(wake);
  dialer->acceptor_ = std::thread([raw = dialer.get()] { raw->AcceptLoop(); });
  return dialer;
}

EgressDialer::~EgressDialer() { Stop(); }

void EgressDialer::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [this] { return running_ == 0; });
  }
  listener_ = UniqueFd();
  if (address_.family == net::Family::kUnix) {
    ::unlink(address_.host.c_str());
  }
}

EgressStats EgressDialer::stats() const {
  EgressStats s;
  s.connections = connections_.load();
  s.active = active_.load();
  s.bytes_up = bytes_up_.load();
  s.bytes_down = bytes_down_.load();
  for (size_t i = 0; i < by_status_.size(); ++i) {
    s.by_status[i] = by_status_[i].load();
    if (i == static_cast<size_t>(DialStatus::kRefusedByHost)) {
      s.refused += s.by_status[i];
    } else if (i != static_cast<size_t>(DialStatus::kConnected)) {
      s.failed += s.by_status[i];
    }
  }
  return s;
}

void EgressDialer::Count(DialStatus status) {
  auto index = static_cast<size_t>(status);
  if (index < by_status_.size()) {
    by_status_[index].fetch_add(1);
  }
}

void EgressDialer::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{.fd = listener_.get(), .events = POLLIN, .revents = 0},
                     {.fd = wake_.get(), .events = POLLIN, .revents = 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 || fds[1].revents != 0) {
      return;
    }
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!conn.valid()) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: wait a little (or for Stop) rather than spin.
        pollfd wake = {.fd = wake_.get(), .events = POLLIN, .revents = 0};
        if (::poll(&wake, 1, 100) > 0) {
          return;
        }
      }
      continue;
    }
    connections_.fetch_add(1);
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    if (running_ >= options_.max_connections) {
      RefuseAtOnce(std::move(conn));
      continue;
    }
    ++running_;
    active_.fetch_add(1);
    std::thread([this, raw = conn.Release()] { Serve(UniqueFd(raw)); }).detach();
  }
}

void EgressDialer::RefuseAtOnce(UniqueFd conn) {
  // On the accept thread: no thread for a connection over the limit. The answer is a few bytes
  // into a fresh socket's empty send buffer, so the nonblocking send does not fail short.
  egress::DialResponse response{DialStatus::kRefusedByHost, "connection limit"};
  Bytes bytes = egress::EncodeDialResponse(response);
  (void)::send(conn.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(conn.get(), SHUT_WR);
  uint8_t drain[kMaxRequest];
  (void)!::recv(conn.get(), drain, sizeof(drain), MSG_DONTWAIT);  // Avoids a reset over TCP.
  Count(DialStatus::kRefusedByHost);
  if (log_) {
    EgressConnectionLog entry;
    entry.status = DialStatus::kRefusedByHost;
    entry.message = response.message;
    log_(entry);
  }
}

void EgressDialer::Serve(UniqueFd conn) {
  const auto started = Clock::now();
  const int wake = wake_.get();
  EgressConnectionLog entry;
  auto finish = [&] {
    entry.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    if (log_) {
      log_(entry);
    }
  };
  auto answer = [&](DialStatus status, std::string message) {
    entry.status = status;
    entry.message = Truncated(std::move(message));
    Count(status);
    Bytes bytes = egress::EncodeDialResponse({status, entry.message});
    return SendAll(conn.get(), bytes, wake, Clock::now() + options_.request_timeout);
  };

  [&] {
    // 1. The request, within request_timeout. Bytes after it are the connection's first payload.
    Bytes in;
    std::optional<egress::Decoded<egress::Endpoint>> request;
    const auto deadline = started + options_.request_timeout;
    while (!request) {
      uint8_t chunk[kMaxRequest];
      ssize_t got = ::recv(conn.get(), chunk, sizeof(chunk), 0);
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        short revents = 0;
        Wait w = WaitFor(conn.get(), POLLIN, wake, deadline, &revents);
        if (w == Wait::kTimeout) {
          (void)answer(DialStatus::kMalformedRequest, "no complete request in time");
          return;
        }
        if (w == Wait::kStopped) {
          entry.message = "stopped before a complete request";
          return;
        }
        continue;
      }
      if (got <= 0) {
        entry.message = "closed before a complete request";  // The enclave went away.
        return;
      }
      in.insert(in.end(), chunk, chunk + got);
      auto decoded = egress::DecodeDialRequest(in);
      if (!decoded) {
        (void)answer(DialStatus::kMalformedRequest, decoded.error().message());
        return;
      }
      request = std::move(*decoded);
      if (!request && in.size() >= kMaxRequest) {
        (void)answer(DialStatus::kMalformedRequest, "request too long");
        return;
      }
    }
    const egress::Endpoint to = request->value;
    entry.destination = to;
    Bytes early(in.begin() + static_cast<ptrdiff_t>(request->used), in.end());

    // 2. The host's own policy: nothing denied is ever connected to.
    for (const IpPrefix& prefix : options_.deny) {
      if (prefix.Contains(to.ip)) {
        (void)answer(DialStatus::kRefusedByHost,
                     "the host denies " + FormatIpPrefix(prefix));
        return;
      }
    }

    // 3. Exactly that IP:port.
    Connected out = ConnectTo(to, options_.connect_timeout, wake);
    if (out.stopped) {
      entry.message = out.message;
      return;
    }
    if (out.status != DialStatus::kConnected) {
      (void)answer(out.status, out.message);
      return;
    }
    if (!answer(DialStatus::kConnected, "")) {
      entry.ended = "error";
      return;
    }
    UniqueFd dest = std::move(out.fd);

    // 4. Copy both ways until both directions have ended.
    Direction up;
    up.from = conn.get();
    up.to = dest.get();
    up.buffer.resize(kCopyBuffer);
    std::copy(early.begin(), early.end(), up.buffer.begin());
    up.end = early.size();
    Direction down;
    down.from = dest.get();
    down.to = conn.get();
    down.buffer.resize(kCopyBuffer);
    auto last_activity = Clock::now();
    entry.ended = "closed";
    auto account = [&](Direction& d, size_t n) {
      d.moved += n;
      (&d == &up ? bytes_up_ : bytes_down_).fetch_add(n);
    };
    // Step moves what it can in one direction without blocking; false on an error.
    auto step = [&](Direction& d) {
      for (;;) {
        if (d.pending()) {
          ssize_t put = ::send(d.to, d.buffer.data() + d.start, d.end - d.start, MSG_NOSIGNAL);
          if (put < 0 && errno == EINTR) {
            continue;
          }
          if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
          }
          if (put <= 0) {
            return false;
          }
          d.start += static_cast<size_t>(put);
          account(d, static_cast<size_t>(put));
          last_activity = Clock::now();
          continue;
        }
        d.start = d.end = 0;
        if (!d.reading) {
          if (!d.shut) {
            ::shutdown(d.to, SHUT_WR);  // Pass the half-close on once everything is through.
            d.shut = true;
          }
          return true;
        }
        ssize_t got = ::recv(d.from, d.buffer.data(), d.buffer.size(), 0);
        if (got < 0 && errno == EINTR) {
          continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          return true;
        }
        if (got < 0) {
          return false;
        }
        if (got == 0) {
          d.reading = false;
          continue;
        }
        d.end = static_cast<size_t>(got);
        last_activity = Clock::now();
      }
    };
    for (;;) {
      if (!step(up) || !step(down)) {
        entry.ended = "error";
        break;
      }
      if (up.done() && down.done()) {
        break;
      }
      // Wait for whatever lets a direction progress: room to write its buffer, or input. A
      // descriptor nothing is asked of stays out of the set, so a hang-up it keeps reporting
      // cannot spin the loop.
      short conn_events = 0;
      short dest_events = 0;
      if (up.pending()) {
        dest_events |= POLLOUT;
      } else if (up.reading) {
        conn_events |= POLLIN;
      }
      if (down.pending()) {
        conn_events |= POLLOUT;
      } else if (down.reading) {
        dest_events |= POLLIN;
      }
      int timeout = -1;
      if (options_.idle_timeout.count() > 0) {
        timeout = MsLeft(last_activity + options_.idle_timeout);
        if (timeout == 0) {
          entry.ended = "idle";
          break;
        }
      }
      pollfd fds[3] = {{.fd = conn_events != 0 ? conn.get() : -1, .events = conn_events,
                        .revents = 0},
                       {.fd = dest_events != 0 ? dest.get() : -1, .events = dest_events,
                        .revents = 0},
                       {.fd = wake, .events = POLLIN, .revents = 0}};
      int n = ::poll(fds, 3, timeout);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 || fds[2].revents != 0) {
        entry.ended = n < 0 ? "error" : "stopped";
        break;
      }
      if ((fds[0].revents & POLLHUP) != 0 && !down.pending()) {
        // The enclave closed its end entirely (not a half-close): nothing more can reach it.
        // What it sent before still goes to the destination.
        down.reading = false;
        down.shut = true;
      }
    }
    entry.bytes_up = up.moved;
    entry.bytes_down = down.moved;
  }();

  finish();
  active_.fetch_sub(1);
  std::lock_guard lock(mu_);
  conn = UniqueFd();
  --running_;
  idle_.notify_all();
}

}  // namespace enclavia::host
