// SPDX-License-Identifier: Apache-2.0
#include "enclave/egress/resolver.h"

#include <fcntl.h>
#include <poll.h>
#include <unbound.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "lib/base/bytes.h"
#include "lib/dns/message.h"
#include "lib/net/address.h"
#include "lib/net/socket.h"

// Threads. The app side is one poll loop over the UDP socket, the TCP listener and clients, and
// ub_fd(): libunbound (ub_ctx_async(ctx, 1)) resolves on its own background thread and hands
// results back through that descriptor, so one thread serves any number of concurrent queries
// without locks, and ub_process() runs our callbacks on the loop thread. The forwarder is a
// fixed pool of worker threads, each serving one of libunbound's TCP connections at a time with
// blocking calls, because `dial` (egress::Dial) is blocking; libunbound opens at most
// outgoing-num-tcp = kForwarderWorkers connections, so every connection gets a worker.
namespace enclavia::enclave {
namespace {

constexpr size_t kForwarderWorkers = 16;
constexpr size_t kMaxPending = 512;
constexpr size_t kMaxTcpClients = 64;
constexpr auto kTcpIdle = std::chrono::seconds(30);
constexpr auto kForwarderIdle = std::chrono::seconds(120);
constexpr uint32_t kMaxLearnTtl = 86400;  // one day; 0 is allowed (expires at once)
constexpr size_t kMaxUdpAnswer = 4096;
constexpr size_t kMaxChased = 4096;
constexpr auto kMinChase = std::chrono::seconds(30);
constexpr size_t kMaxChainHops = 16;

using SteadyClock = std::chrono::steady_clock;

struct UbCtxFree {
  void operator()(ub_ctx* ctx) const noexcept { ub_ctx_delete(ctx); }
};
struct UbResultFree {
  void operator()(ub_result* r) const noexcept { ub_resolve_free(r); }
};
using UbCtxPtr = std::unique_ptr<ub_ctx, UbCtxFree>;
using UbResultPtr = std::unique_ptr<ub_result, UbResultFree>;

std::string TypeName(uint16_t type) {
  switch (type) {
    case dns::kTypeA:
      return "A";
    case dns::kTypeAaaa:
      return "AAAA";
    case dns::kTypeCname:
      return "CNAME";
    case dns::kTypeDs:
      return "DS";
    case dns::kTypeDnskey:
      return "DNSKEY";
    default:
      return std::string("TYPE").append(std::to_string(type));
  }
}

// Describe names a question for logs: "www.example.com. A". Names come from dns::ParseQuery, so
// they hold only [a-z0-9-_*.] and \DDD escapes: nothing to escape for a log line.
std::string Describe(const dns::Query& q) {
  return std::string(q.name).append(".").append(" ").append(TypeName(q.qtype));
}

Bytes Framed(ByteSpan message) {
  Bytes out;
  out.reserve(message.size() + 2);
  out.push_back(static_cast<uint8_t>(message.size() >> 8));
  out.push_back(static_cast<uint8_t>(message.size()));
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

enum class Wait { kReady, kTimeout, kStopped };

// WaitReadable waits until `fd` is readable, `stop_fd` is, or `deadline` passes.
Wait WaitReadable(int fd, int stop_fd, SteadyClock::time_point deadline) {
  while (true) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      return Wait::kTimeout;
    }
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) {
      return Wait::kStopped;
    }
    if (n > 0 && (fds[1].revents & POLLIN) != 0) {
      return Wait::kStopped;
    }
    if (n > 0 && fds[0].revents != 0) {
      return Wait::kReady;
    }
  }
}

// ReadFrame reads one 2-byte-length-prefixed DNS message (RFC 1035 §4.2.2) from a blocking
// stream. kUnavailable on end of stream, timeout or stop.
Result<Bytes> ReadFrame(int fd, int stop_fd, SteadyClock::time_point deadline) {
  Bytes buf;
  size_t want = 2;
  bool have_length = false;
  while (buf.size() < want) {
    switch (WaitReadable(fd, stop_fd, deadline)) {
      case Wait::kTimeout:
        return Error(Code::kUnavailable, "timed out");
      case Wait::kStopped:
        return Error(Code::kUnavailable, "stopped");
      case Wait::kReady:
        break;
    }
    uint8_t chunk[4096];
    size_t room = std::min(sizeof(chunk), want - buf.size());
    ssize_t n = ::recv(fd, chunk, room, 0);
    if (n < 0 && errno == ENOTSOCK) {
      n = ::read(fd, chunk, room);
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return sys::IoError("recv", errno);
    }
    if (n == 0) {
      return Error(Code::kUnavailable, "connection closed");
    }
    buf.insert(buf.end(), chunk, chunk + n);
    if (!have_length && buf.size() == 2) {
      want = 2 + ((size_t{buf[0]} << 8) | buf[1]);
      have_length = true;
      if (want == 2) {
        return Error(Code::kMalformed, "empty DNS message");
      }
    }
  }
  return Bytes(buf.begin() + 2, buf.end());
}

Result<sockaddr_storage> ListenSockaddr(const std::string& ip, uint16_t port, socklen_t* len) {
  ASSIGN_OR_RETURN(egress::IpAddress addr, egress::ParseIp(ip));
  sockaddr_storage ss{};
  if (addr.family == egress::IpFamily::kV4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, addr.bytes.data(), 4);
    *len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    std::memcpy(&sin6->sin6_addr, addr.bytes.data(), 16);
    *len = sizeof(sockaddr_in6);
  }
  return ss;
}

Result<sys::UniqueFd> BoundSocket(int type, const sockaddr_storage& ss, socklen_t len) {
  sys::UniqueFd fd(::socket(ss.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    return sys::IoError("socket", errno);
  }
  int one = 1;
  if (type == SOCK_STREAM) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) < 0) {
    return sys::IoError("bind", errno);
  }
  if (type == SOCK_STREAM && ::listen(fd.get(), 64) < 0) {
    return sys::IoError("listen", errno);
  }
  return fd;
}

uint16_t BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
    return 0;
  }
  if (ss.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

// AnchorLines splits the trust anchor text into the records ub_ctx_add_ta takes, and checks
// each names a DS or DNSKEY record.
Result<std::vector<std::string>> AnchorLines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (size_t semi = line.find(';'); semi != std::string_view::npos) {
      line = line.substr(0, semi);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())) != 0) {
      line.remove_suffix(1);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front())) != 0) {
      line.remove_prefix(1);
    }
    if (line.empty()) {
      continue;
    }
    std::string padded = std::string(" ").append(line).append(" ");
    std::replace(padded.begin(), padded.end(), '\t', ' ');
    if (padded.find(" DS ") == std::string::npos && padded.find(" DNSKEY ") == std::string::npos) {
      return Error(Code::kInvalidArgument, "trust anchor: a line is not a DS or DNSKEY record");
    }
    lines.emplace_back(line);
  }
  return lines;
}

}  // namespace

struct Resolver::State {
  ResolverOptions options;
  egress::DnssecMode dnssec = egress::DnssecMode::kRequire;
  std::vector<egress::IpAddress> upstreams;

  sys::UniqueFd stop_fd;  // eventfd: readable once Stop begins
  sys::UniqueFd udp_fd;
  sys::UniqueFd tcp_fd;
  sys::UniqueFd forwarder_fd;
  uint16_t port = 0;
  UbCtxPtr ctx;

  std::thread loop;
  std::vector<std::thread> workers;
  std::once_flag stopped;

  struct Stats {
    std::atomic<uint64_t> queries{0}, refused{0}, upstream_refused{0}, bogus{0},
        insecure_refused{0}, answered{0}, failed{0}, malformed{0};
  } stats;

  // Loop-thread state.
  struct Client {
    sys::UniqueFd fd;
    Bytes in;
    Bytes out;
    SteadyClock::time_point last_active;
  };
  struct Pending {
    State* state = nullptr;
    dns::Query query;
    bool tcp = false;
    sockaddr_storage peer{};
    socklen_t peer_len = 0;
    uint64_t client = 0;
  };
  std::map<uint64_t, Client> clients;
  uint64_t next_client = 1;
  std::map<Pending*, std::unique_ptr<Pending>> pending;

  void Log(std::string_view line) const {
    if (options.log) {
      options.log(line);
    }
  }

  // --- The app side (loop thread) ---

  void RunLoop();
  void ReadUdp();
  void AcceptTcp();
  bool ServiceClient(uint64_t id, Client& c, short revents);
  // Handle takes one message from the app; it returns the immediate response, if any, and
  // sets *drop when the message deserves no answer. Otherwise the query is now pending.
  std::optional<Bytes> Handle(ByteSpan message, std::unique_ptr<Pending> origin, bool* drop);
  static void OnResult(void* data, int err, ub_result* result);
  Bytes Decide(const dns::Query& query, int err, ub_result* result);
  void Deliver(const Pending& p, Bytes response);

  // --- The forwarder (worker threads) ---

  // chased holds CNAME targets (and their ancestors, for DS and DNSKEY) of answers relayed for
  // names the policy lets out: libunbound asks for each target itself, even when the answer
  // carried the whole chain. These names come from the DNS data of allowed names, not from the
  // app, so they open no channel for it. Entries expire with the record's TTL (at least
  // kMinChase, so a TTL of 0 still lets the validator finish).
  std::mutex chased_mu;
  std::map<std::string, SteadyClock::time_point> chased;
  bool UpstreamAllowed(const std::string& name);
  void NoteCnames(const dns::Query& query, ByteSpan answer);

  void RunWorker();
  void ServeValidator(int conn);
  struct Upstream {
    sys::UniqueFd fd;
    egress::Endpoint to;
  };
  Result<Bytes> Relay(ByteSpan query, const dns::Query& parsed, Upstream* upstream);
};

// --- The app side ---

void Resolver::State::RunLoop() {
  while (true) {
    std::vector<pollfd> fds;
    fds.push_back({stop_fd.get(), POLLIN, 0});
    fds.push_back({udp_fd.get(), POLLIN, 0});
    fds.push_back({tcp_fd.get(), POLLIN, 0});
    fds.push_back({ub_fd(ctx.get()), POLLIN, 0});
    std::vector<uint64_t> ids;
    for (auto& [id, c] : clients) {
      short events = POLLIN;
      if (!c.out.empty()) {
        events |= POLLOUT;
      }
      fds.push_back({c.fd.get(), events, 0});
      ids.push_back(id);
    }
    int n = ::poll(fds.data(), fds.size(), 1000);
    if (n < 0 && errno != EINTR) {
      Log(std::string("resolver: poll failed: ").append(std::strerror(errno)));
      return;
    }
    if ((fds[0].revents & POLLIN) != 0) {
      return;
    }
    if ((fds[3].revents & POLLIN) != 0) {
      int err = ub_process(ctx.get());
      if (err != 0) {
        Log(std::string("resolver: ub_process: ").append(ub_strerror(err)));
      }
    }
    if ((fds[1].revents & POLLIN) != 0) {
      ReadUdp();
    }
    if ((fds[2].revents & POLLIN) != 0) {
      AcceptTcp();
    }
    auto now = SteadyClock::now();
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = clients.find(ids[i]);
      if (it == clients.end()) {
        continue;
      }
      bool keep = ServiceClient(ids[i], it->second, fds[4 + i].revents);
      if (keep && it->second.out.empty() && now - it->second.last_active > kTcpIdle) {
        keep = false;
      }
      if (!keep) {
        clients.erase(it);
      }
    }
  }
}

void Resolver::State::ReadUdp() {
  for (int i = 0; i < 64; ++i) {
    uint8_t buf[65536];
    auto p = std::make_unique<Pending>();
    p->peer_len = sizeof(p->peer);
    ssize_t n = ::recvfrom(udp_fd.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&p->peer),
                           &p->peer_len);
    if (n < 0) {
      return;  // EAGAIN: drained (other errors: a later poll retries)
    }
    bool drop = false;
    Pending origin = *p;
    std::optional<Bytes> response =
        Handle(ByteSpan(buf, static_cast<size_t>(n)), std::move(p), &drop);
    if (response) {
      Deliver(origin, std::move(*response));
    }
  }
}

void Resolver::State::AcceptTcp() {
  while (true) {
    sys::UniqueFd fd(::accept4(tcp_fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      return;
    }
    if (clients.size() >= kMaxTcpClients) {
      Log("resolver: too many TCP clients; closing a new connection");
      continue;
    }
    clients.emplace(next_client++, Client{std::move(fd), {}, {}, SteadyClock::now()});
  }
}

bool Resolver::State::ServiceClient(uint64_t id, Client& c, short revents) {
  if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
    uint8_t buf[8192];
    ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      return false;
    }
    if (n > 0) {
      c.last_active = SteadyClock::now();
      c.in.insert(c.in.end(), buf, buf + n);
    }
    while (c.in.size() >= 2) {
      size_t len = (size_t{c.in[0]} << 8) | c.in[1];
      if (len == 0) {
        return false;
      }
      if (c.in.size() < 2 + len) {
        break;
      }
      Bytes message(c.in.begin() + 2, c.in.begin() + 2 + static_cast<std::ptrdiff_t>(len));
      c.in.erase(c.in.begin(), c.in.begin() + 2 + static_cast<std::ptrdiff_t>(len));
      auto p = std::make_unique<Pending>();
      p->tcp = true;
      p->client = id;
      bool drop = false;
      std::optional<Bytes> response = Handle(message, std::move(p), &drop);
      if (drop) {
        return false;
      }
      if (response) {
        Bytes framed = Framed(*response);
        c.out.insert(c.out.end(), framed.begin(), framed.end());
      }
    }
  }
  if (!c.out.empty()) {
    ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return false;
    }
    if (n > 0) {
      c.out.erase(c.out.begin(), c.out.begin() + n);
      c.last_active = SteadyClock::now();
    }
  }
  return true;
}

std::optional<Bytes> Resolver::State::Handle(ByteSpan message, std::unique_ptr<Pending> origin,
                                             bool* drop) {
  auto header = dns::ParseHeader(message);
  if (!header || header->qr()) {
    // Not even a header, or a response: nothing to answer (and no loops with another server).
    stats.malformed++;
    *drop = true;
    Log("resolver: dropped a message that is not a query");
    return std::nullopt;
  }
  stats.queries++;
  if (header->opcode() != 0) {
    stats.malformed++;
    Log(std::string("resolver: NOTIMP for opcode ").append(std::to_string(header->opcode())));
    return dns::BuildHeaderResponse(*header, dns::Rcode::kNotImp);
  }
  auto query = dns::ParseQuery(message);
  if (!query) {
    stats.malformed++;
    Log(std::string("resolver: FORMERR: ").append(query.error().message()));
    return dns::BuildHeaderResponse(*header, dns::Rcode::kFormErr);
  }
  if (query->qclass != dns::kClassIn || query->qtype == dns::kTypeAxfr ||
      query->qtype == dns::kTypeIxfr) {
    stats.refused++;
    Log(std::string("resolver: refused ")
            .append(Describe(*query))
            .append(": unsupported class "
                    "or type"));
    return dns::BuildResponse(*query, dns::Rcode::kRefused);
  }
  if (!options.firewall->NameAllowed(query->name)) {
    stats.refused++;
    Log(std::string("resolver: refused ").append(Describe(*query)).append(": no rule allows it"));
    return dns::BuildResponse(*query, dns::Rcode::kRefused);
  }
  if (pending.size() >= kMaxPending) {
    stats.failed++;
    Log(std::string("resolver: SERVFAIL ")
            .append(Describe(*query))
            .append(": too many "
                    "queries in flight"));
    return dns::BuildResponse(*query, dns::Rcode::kServFail);
  }
  origin->state = this;
  origin->query = std::move(*query);
  Pending* raw = origin.get();
  int async_id = 0;
  std::string name = raw->query.name.empty() ? "." : raw->query.name;
  int err = ub_resolve_async(ctx.get(), name.c_str(), raw->query.qtype, raw->query.qclass, raw,
                             &State::OnResult, &async_id);
  if (err != 0) {
    stats.failed++;
    Log(std::string("resolver: SERVFAIL ")
            .append(Describe(raw->query))
            .append(": ")
            .append(ub_strerror(err)));
    return dns::BuildResponse(raw->query, dns::Rcode::kServFail);
  }
  pending.emplace(raw, std::move(origin));
  return std::nullopt;
}

void Resolver::State::OnResult(void* data, int err, ub_result* result) {
  UbResultPtr owned(result);
  auto* raw = static_cast<Pending*>(data);
  State* self = raw->state;
  auto it = self->pending.find(raw);
  if (it == self->pending.end()) {
    return;
  }
  std::unique_ptr<Pending> p = std::move(it->second);
  self->pending.erase(it);
  Bytes response = self->Decide(p->query, err, result);
  self->Deliver(*p, std::move(response));
}

Bytes Resolver::State::Decide(const dns::Query& q, int err, ub_result* r) {
  auto servfail = [&](std::string_view why) {
    Log(std::string("resolver: SERVFAIL ").append(Describe(q)).append(": ").append(why));
    return dns::BuildResponse(q, dns::Rcode::kServFail);
  };
  bool require = dnssec == egress::DnssecMode::kRequire;
  if (err != 0 || r == nullptr) {
    stats.failed++;
    return servfail(err != 0 ? ub_strerror(err) : "no result");
  }
  if (require && r->bogus != 0) {
    stats.bogus++;
    return servfail(std::string("bogus: ").append(r->why_bogus != nullptr ? r->why_bogus
                                                                          : "validation failed"));
  }
  if (r->rcode == static_cast<int>(dns::Rcode::kServFail)) {
    stats.failed++;
    return servfail("upstream failure");
  }
  if (require && r->secure == 0) {
    stats.insecure_refused++;
    return servfail("insecure answer refused: dnssec = require");
  }
  if (r->answer_packet == nullptr || r->answer_len <= 0) {
    stats.failed++;
    return servfail("no answer packet");
  }
  auto answer = dns::AnswerFor(q, ByteSpan(static_cast<const uint8_t*>(r->answer_packet),
                                           static_cast<size_t>(r->answer_len)));
  if (!answer) {
    stats.failed++;
    return servfail(answer.error().message());
  }
  stats.answered++;
  // Learn the addresses under the name the app asked (the name a rule allowed), also when they
  // came at the end of a CNAME chain: r->data holds the final records of the asked type.
  size_t learned = 0;
  uint32_t ttl = std::min<uint32_t>(static_cast<uint32_t>(std::max(r->ttl, 0)), kMaxLearnTtl);
  if (r->havedata != 0 && (q.qtype == dns::kTypeA || q.qtype == dns::kTypeAaaa)) {
    auto now = egress::Firewall::Clock::now();
    for (int i = 0; r->data[i] != nullptr; ++i) {
      auto ip = egress::FromBytes(
          ByteSpan(reinterpret_cast<const uint8_t*>(r->data[i]), static_cast<size_t>(r->len[i])));
      if (ip) {
        options.firewall->Learn(q.name, *ip, std::chrono::seconds(ttl), now);
        ++learned;
      }
    }
  }
  std::string line = std::string("resolver: answered ").append(Describe(q));
  line.append(r->secure != 0 ? " (secure" : " (insecure").append(", rcode ");
  line.append(std::to_string(r->rcode));
  if (learned > 0) {
    line.append(", learned ").append(std::to_string(learned)).append(" address(es) for ");
    line.append(std::to_string(ttl)).append(" s");
  }
  line.append(")");
  Log(line);
  return std::move(*answer);
}

void Resolver::State::Deliver(const Pending& p, Bytes response) {
  if (p.tcp) {
    auto it = clients.find(p.client);
    if (it == clients.end()) {
      return;  // the client went away
    }
    Client& c = it->second;
    Bytes framed = Framed(response);
    c.out.insert(c.out.end(), framed.begin(), framed.end());
    ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(c.out.begin(), c.out.begin() + n);
    }
    return;
  }
  // UDP: RFC 1035 §4.2.1 / RFC 6891 §6.2.5: no more than the asker can take; else TC.
  size_t limit = dns::kUdpPlainSize;
  if (p.query.edns_udp_size) {
    limit = std::clamp<size_t>(*p.query.edns_udp_size, dns::kUdpPlainSize, kMaxUdpAnswer);
  }
  if (response.size() > limit && !p.query.question.empty()) {
    auto h = dns::ParseHeader(response);
    response = dns::BuildResponse(p.query, static_cast<dns::Rcode>(h ? h->rcode() : 0), true);
  }
  ::sendto(udp_fd.get(), response.data(), response.size(), MSG_NOSIGNAL,
           reinterpret_cast<const sockaddr*>(&p.peer), p.peer_len);
}

// --- The forwarder ---

void Resolver::State::RunWorker() {
  while (true) {
    auto wait = WaitReadable(forwarder_fd.get(), stop_fd.get(),
                             SteadyClock::now() + std::chrono::hours(24));
    if (wait == Wait::kStopped) {
      return;
    }
    if (wait != Wait::kReady) {
      continue;
    }
    sys::UniqueFd conn(::accept4(forwarder_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      continue;  // another worker took it (the listener is nonblocking)
    }
    ServeValidator(conn.get());
  }
}

void Resolver::State::ServeValidator(int conn) {
  Upstream upstream;
  while (true) {
    auto frame = ReadFrame(conn, stop_fd.get(), SteadyClock::now() + kForwarderIdle);
    if (!frame) {
      return;
    }
    auto query = dns::ParseQuery(*frame);
    if (!query) {
      Log(std::string("forwarder: closing on a malformed query from the validator: ")
              .append(query.error().message()));
      return;
    }
    Bytes response;
    if (!UpstreamAllowed(query->name)) {
      stats.upstream_refused++;
      Log(std::string("forwarder: refused upstream query ")
              .append(Describe(*query))
              .append(": no rule needs it"));
      response = dns::BuildResponse(*query, dns::Rcode::kRefused);
    } else {
      auto relayed = Relay(*frame, *query, &upstream);
      if (relayed) {
        NoteCnames(*query, *relayed);
        response = std::move(*relayed);
      } else {
        Log(std::string("forwarder: SERVFAIL ")
                .append(Describe(*query))
                .append(": ")
                .append(relayed.error().message()));
        response = dns::BuildResponse(*query, dns::Rcode::kServFail);
      }
    }
    if (!sys::SendFull(conn, Framed(response))) {
      return;
    }
  }
}

bool Resolver::State::UpstreamAllowed(const std::string& name) {
  if (options.firewall->UpstreamNameAllowed(name)) {
    return true;
  }
  std::lock_guard lock(chased_mu);
  auto it = chased.find(name);
  return it != chased.end() && it->second > SteadyClock::now();
}

void Resolver::State::NoteCnames(const dns::Query& query, ByteSpan answer) {
  auto cnames = dns::ExtractCnames(answer);
  if (!cnames || cnames->empty()) {
    return;
  }
  auto now = SteadyClock::now();
  std::lock_guard lock(chased_mu);
  if (chased.size() >= kMaxChased) {
    std::erase_if(chased, [&](const auto& entry) { return entry.second <= now; });
  }
  // Follow the chain from the asked name only: other CNAMEs in the answer are not its data.
  std::string current = query.name;
  for (size_t hop = 0; hop < kMaxChainHops; ++hop) {
    auto next = std::find_if(cnames->begin(), cnames->end(),
                             [&](const dns::CnameRecord& c) { return c.owner == current; });
    if (next == cnames->end()) {
      return;
    }
    auto ttl = std::clamp<std::chrono::seconds>(std::chrono::seconds(next->ttl), kMinChase,
                                                std::chrono::seconds(kMaxLearnTtl));
    // The target and each ancestor, up to the root "".
    std::string_view name = next->target;
    while (true) {
      if (chased.size() >= kMaxChased) {
        Log("forwarder: too many CNAME targets in flight; not following more");
        return;
      }
      auto& expiry = chased[std::string(name)];
      expiry = std::max(expiry, now + ttl);
      if (name.empty()) {
        break;
      }
      size_t dot = name.find('.');
      name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
    }
    current = next->target;
  }
}

Result<Bytes> Resolver::State::Relay(ByteSpan query, const dns::Query& parsed, Upstream* upstream) {
  if (upstreams.empty()) {
    return Error(Code::kFailedPrecondition, "no resolvers in the policy");
  }
  Bytes framed = Framed(query);
  std::string errors;  // "dial 192.0.2.53:53: ...; 192.0.2.54:53: timed out"
  auto note = [&](const egress::Endpoint& to, std::string_view what) {
    errors.append(errors.empty() ? "" : "; ").append(egress::FormatEndpoint(to)).append(": ");
    errors.append(what);
  };
  // A kept stream first (the resolver may have closed it: then redial); then each resolver in
  // the policy's order, falling back to the next on failure.
  for (size_t attempt = 0; attempt <= upstreams.size(); ++attempt) {
    bool reused = upstream->fd.valid();
    if (attempt == 0 && !reused) {
      continue;
    }
    if (!reused) {
      upstream->to = egress::Endpoint{upstreams[attempt - 1], 53};
      auto dialed = options.dial(upstream->to);
      if (!dialed) {
        note(upstream->to, dialed.error().message());
        continue;
      }
      upstream->fd = std::move(*dialed);
    }
    auto deadline = SteadyClock::now() + options.upstream_timeout;
    Result<Bytes> answer = Error(Code::kUnavailable, "");
    if (auto sent = sys::SendFull(upstream->fd.get(), framed); !sent) {
      answer = sent.error();
    } else {
      answer = ReadFrame(upstream->fd.get(), stop_fd.get(), deadline);
    }
    if (answer) {
      auto h = dns::ParseHeader(*answer);
      if (h && h->qr() && h->id == parsed.header.id) {
        return answer;
      }
      answer = Error(Code::kMalformed, "answer does not match the query");
    }
    note(upstream->to, answer.error().message());
    upstream->fd = sys::UniqueFd();
  }
  return Error(Code::kUnavailable, errors.empty() ? "no resolver answered" : errors);
}

// --- Resolver ---

Resolver::Resolver(std::unique_ptr<State> state) : state_(std::move(state)) {}

Resolver::~Resolver() { Stop(); }

void Resolver::Stop() {
  State* s = state_.get();
  std::call_once(s->stopped, [s] {
    uint64_t one = 1;
    (void)!::write(s->stop_fd.get(), &one, sizeof(one));
    if (s->loop.joinable()) {
      s->loop.join();
    }
    // Ends libunbound's thread (and its connections to the forwarder) before the workers.
    s->ctx.reset();
    s->pending.clear();
    for (auto& w : s->workers) {
      w.join();
    }
    s->workers.clear();
    s->clients.clear();
    s->udp_fd = sys::UniqueFd();
    s->tcp_fd = sys::UniqueFd();
    s->forwarder_fd = sys::UniqueFd();
  });
}

ResolverStats Resolver::stats() const {
  const auto& s = state_->stats;
  return ResolverStats{s.queries.load(), s.refused.load(),          s.upstream_refused.load(),
                       s.bogus.load(),   s.insecure_refused.load(), s.answered.load(),
                       s.failed.load(),  s.malformed.load()};
}

uint16_t Resolver::port() const { return state_->port; }

Result<std::unique_ptr<Resolver>> Resolver::Start(ResolverOptions options) {
  if (!options.firewall || !options.dial) {
    return Error(Code::kInvalidArgument, "resolver: a firewall and a dial function are required");
  }
  auto state = std::make_unique<State>();
  const egress::Policy& policy = options.firewall->policy();
  state->dnssec = policy.dnssec;
  state->upstreams = policy.resolvers;
  bool require = policy.dnssec == egress::DnssecMode::kRequire;
  ASSIGN_OR_RETURN(std::vector<std::string> anchors, AnchorLines(options.trust_anchor));
  if (require && anchors.empty()) {
    return Error(Code::kInvalidArgument, "resolver: dnssec = require needs a trust anchor");
  }
  if (!require && !anchors.empty()) {
    return Error(Code::kInvalidArgument, "resolver: a trust anchor is set but dnssec = off");
  }

  state->stop_fd = sys::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!state->stop_fd.valid()) {
    return sys::IoError("eventfd", errno);
  }

  // The app-facing sockets: UDP first (port 0 picks one), then TCP on the same port.
  socklen_t len = 0;
  for (int tries = 0;; ++tries) {
    ASSIGN_OR_RETURN(sockaddr_storage ss,
                     ListenSockaddr(options.listen_ip, options.listen_port, &len));
    auto udp = BoundSocket(SOCK_DGRAM, ss, len);
    if (!udp) {
      return std::move(udp).error().WithContext("resolver: udp " + options.listen_ip);
    }
    uint16_t port = BoundPort(udp->get());
    ASSIGN_OR_RETURN(ss, ListenSockaddr(options.listen_ip, port, &len));
    auto tcp = BoundSocket(SOCK_STREAM, ss, len);
    if (!tcp) {
      if (options.listen_port == 0 && tries < 20) {
        continue;  // another socket holds that TCP port: pick another
      }
      return std::move(tcp).error().WithContext("resolver: tcp " + options.listen_ip);
    }
    state->udp_fd = std::move(*udp);
    state->tcp_fd = std::move(*tcp);
    state->port = port;
    break;
  }

  // The forwarder libunbound talks to.
  socklen_t flen = 0;
  ASSIGN_OR_RETURN(sockaddr_storage fss, ListenSockaddr("127.0.0.1", 0, &flen));
  auto forwarder = BoundSocket(SOCK_STREAM, fss, flen);
  if (!forwarder) {
    return std::move(forwarder).error().WithContext("resolver: forwarder");
  }
  state->forwarder_fd = std::move(*forwarder);
  uint16_t forwarder_port = BoundPort(state->forwarder_fd.get());

  state->ctx = UbCtxPtr(ub_ctx_create());
  if (!state->ctx) {
    return Error(Code::kInternal, "resolver: ub_ctx_create failed");
  }
  ub_ctx* ctx = state->ctx.get();
  auto set = [&](const char* opt, const char* val) -> Result<void> {
    int err = ub_ctx_set_option(ctx, opt, val);
    if (err != 0) {
      return Error(Code::kInternal, std::string("resolver: unbound option ")
                                        .append(opt)
                                        .append(" ")
                                        .append(val)
                                        .append(": ")
                                        .append(ub_strerror(err)));
    }
    return Ok();
  };
  std::string num_tcp = std::to_string(kForwarderWorkers);
  // Threads, not a forked process (ub_ctx_async); TCP to the forwarder only; the forwarder is on
  // loopback, which unbound skips by default; no extra queries of our own making (trust-anchor
  // signaling, qname minimisation) that the forwarder would have to refuse.
  if (int err = ub_ctx_async(ctx, 1); err != 0) {
    return Error(Code::kInternal, std::string("resolver: ub_ctx_async: ").append(ub_strerror(err)));
  }
  RETURN_IF_ERROR(set("tcp-upstream:", "yes"));
  RETURN_IF_ERROR(set("do-not-query-localhost:", "no"));
  RETURN_IF_ERROR(set("qname-minimisation:", "no"));
  RETURN_IF_ERROR(set("trust-anchor-signaling:", "no"));
  RETURN_IF_ERROR(set("root-key-sentinel:", "no"));
  RETURN_IF_ERROR(set("outgoing-num-tcp:", num_tcp.c_str()));
  RETURN_IF_ERROR(set("cache-max-ttl:", "86400"));
  RETURN_IF_ERROR(set("infra-keep-probing:", "yes"));
  RETURN_IF_ERROR(set("infra-host-ttl:", "10"));
  if (!require) {
    RETURN_IF_ERROR(set("module-config:", "iterator"));
  }
  std::string fwd = std::string("127.0.0.1@").append(std::to_string(forwarder_port));
  if (int err = ub_ctx_set_fwd(ctx, fwd.c_str()); err != 0) {
    return Error(Code::kInternal,
                 std::string("resolver: ub_ctx_set_fwd: ").append(ub_strerror(err)));
  }
  for (const std::string& line : anchors) {
    if (int err = ub_ctx_add_ta(ctx, line.c_str()); err != 0) {
      return Error(Code::kInvalidArgument,
                   std::string("resolver: trust anchor: ").append(ub_strerror(err)));
    }
  }
  // Finalize now, so a trust anchor unbound cannot parse fails Start; and drop unbound's
  // built-in local zones for special-use names (RFC 6761: test., invalid., onion., ...): the
  // policy decides which names resolve, and a name it allows goes upstream.
  for (const char* zone : {"test.", "invalid.", "onion.", "home.arpa.", "local."}) {
    if (int err = ub_ctx_zone_remove(ctx, zone); err != 0) {
      return Error(
          Code::kInvalidArgument,
          std::string("resolver: unbound setup (trust anchor?): ").append(ub_strerror(err)));
    }
  }

  State* s = state.get();
  s->options = std::move(options);
  for (size_t i = 0; i < kForwarderWorkers; ++i) {
    s->workers.emplace_back([s] { s->RunWorker(); });
  }
  s->loop = std::thread([s] { s->RunLoop(); });
  return std::unique_ptr<Resolver>(new Resolver(std::move(state)));
}

}  // namespace enclavia::enclave
