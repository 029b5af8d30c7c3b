// SPDX-License-Identifier: Apache-2.0
#include "enclave/egress/resolver.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "lib/dns/message.h"
#include "lib/net/address.h"
#include "lib/net/socket.h"
#include "testing/knot_server.h"
#include "testing/temp_dir.h"

namespace enclavia::enclave {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr char kSignedRecords[] =
    "www 30 A 192.0.2.10\n"
    "www 30 A 192.0.2.11\n"
    "www 30 AAAA 2001:db8::10\n"
    "alias 30 CNAME target\n"
    "target 30 A 192.0.2.12\n"
    "secret 30 A 192.0.2.99\n";
constexpr char kPlainRecords[] = "www 30 A 192.0.2.20\n";

// Upstream plays the path to the policy's resolvers: every dial becomes a stream to knotd
// through an in-test relay that records each query's name and can rewrite answers (a hostile
// host). Queries it never sees never left.
class Upstream {
 public:
  explicit Upstream(uint16_t knot_port) : knot_port_(knot_port) {}
  ~Upstream() {
    {
      std::lock_guard lock(mu_);
      for (int fd : fds_) {
        ::shutdown(fd, SHUT_RDWR);
      }
    }
    for (auto& t : threads_) {
      t.join();
    }
  }

  // rewrite_a replaces 192.0.2.10 in every answer with 192.0.2.66.
  void set_rewrite(bool rewrite) { rewrite_ = rewrite; }
  void set_unreachable(bool unreachable) { unreachable_ = unreachable; }
  // set_first_unreachable fails dials to the policy's first resolver (192.0.2.53) only.
  void set_first_unreachable(bool unreachable) { first_unreachable_ = unreachable; }

  Result<sys::UniqueFd> Dial(const egress::Endpoint& to) {
    if (unreachable_ || (first_unreachable_ && to.ip == egress::V4(192, 0, 2, 53))) {
      return Error(Code::kUnavailable, "unreachable");
    }
    {
      std::lock_guard lock(mu_);
      dialed_.push_back(egress::FormatEndpoint(to));
    }
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      return sys::IoError("socketpair", errno);
    }
    sys::UniqueFd ours(pair[0]);
    sys::UniqueFd theirs(pair[1]);
    auto addr = net::ParseAddress("tcp:127.0.0.1:" + std::to_string(knot_port_));
    auto knot = net::Connect(*addr);
    if (!knot) {
      return knot.error();
    }
    std::lock_guard lock(mu_);
    fds_.push_back(ours.get());
    fds_.push_back(knot->get());
    threads_.emplace_back([this, a = std::move(ours), k = std::move(*knot)]() mutable {
      Relay(a.get(), k.get());
      std::lock_guard l(mu_);
      fds_.erase(std::remove(fds_.begin(), fds_.end(), a.get()), fds_.end());
      fds_.erase(std::remove(fds_.begin(), fds_.end(), k.get()), fds_.end());
    });
    return theirs;
  }

  std::vector<std::string> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  bool Saw(std::string_view name) const {
    auto s = seen();
    return std::any_of(s.begin(), s.end(), [&](const std::string& x) {
      return x.rfind(std::string(name) + " ", 0) == 0;
    });
  }

 private:
  static bool ReadFull(int fd, uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t r = ::recv(fd, p, n, 0);
      if (r <= 0) {
        return false;
      }
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  static bool ReadFrame(int fd, Bytes* out) {
    uint8_t len[2];
    if (!ReadFull(fd, len, 2)) {
      return false;
    }
    out->resize((size_t{len[0]} << 8) | len[1]);
    return ReadFull(fd, out->data(), out->size());
  }
  static bool WriteFrame(int fd, const Bytes& msg) {
    Bytes framed{static_cast<uint8_t>(msg.size() >> 8), static_cast<uint8_t>(msg.size())};
    framed.insert(framed.end(), msg.begin(), msg.end());
    return ::send(fd, framed.data(), framed.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(framed.size());
  }

  void Relay(int app, int knot) {
    Bytes query;
    Bytes answer;
    while (ReadFrame(app, &query)) {
      auto q = dns::ParseQuery(query);
      {
        std::lock_guard lock(mu_);
        seen_.push_back(q ? q->name + " " + std::to_string(q->qtype) : "<malformed>");
      }
      if (!WriteFrame(knot, query) || !ReadFrame(knot, &answer)) {
        return;
      }
      if (rewrite_) {
        const uint8_t from[4] = {192, 0, 2, 10};
        for (size_t i = 0; i + 4 <= answer.size(); ++i) {
          if (std::equal(from, from + 4, answer.begin() + static_cast<std::ptrdiff_t>(i))) {
            answer[i + 3] = 66;
          }
        }
      }
      if (!WriteFrame(app, answer)) {
        return;
      }
    }
  }

  uint16_t knot_port_;
  std::atomic<bool> rewrite_{false};
  std::atomic<bool> unreachable_{false};
  std::atomic<bool> first_unreachable_{false};
  mutable std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::vector<std::string> seen_;

 public:
  std::vector<std::string> dialed() const {
    std::lock_guard lock(mu_);
    return dialed_;
  }

 private:
  std::vector<std::string> dialed_;
};

// Ask sends `query` to the resolver over UDP (or TCP) and returns the response, or an empty
// buffer when none came within `wait`.
Bytes Ask(uint16_t port, const Bytes& query, bool tcp = false, milliseconds wait = seconds(15)) {
  sys::UniqueFd fd(::socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
    return {};
  }
  Bytes out = query;
  if (tcp) {
    out.insert(out.begin(),
               {static_cast<uint8_t>(query.size() >> 8), static_cast<uint8_t>(query.size())});
  }
  if (::send(fd.get(), out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
    return {};
  }
  Bytes buf(65536 + 2);
  size_t have = 0;
  auto deadline = Clock::now() + wait;
  while (Clock::now() < deadline) {
    pollfd p{fd.get(), POLLIN, 0};
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 1))) <= 0) {
      continue;
    }
    ssize_t n = ::recv(fd.get(), buf.data() + have, buf.size() - have, 0);
    if (n <= 0) {
      return {};
    }
    have += static_cast<size_t>(n);
    if (!tcp) {
      return Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(have));
    }
    if (have >= 2) {
      size_t len = (size_t{buf[0]} << 8) | buf[1];
      if (have >= 2 + len) {
        return Bytes(buf.begin() + 2, buf.begin() + 2 + static_cast<std::ptrdiff_t>(len));
      }
    }
  }
  return {};
}

Bytes Query(uint16_t id, std::string_view name, uint16_t type) {
  auto q = dns::BuildQuery(id, name, type);
  ENCLAVIA_CHECK(q.has_value());
  return *q;
}

int RcodeOf(const Bytes& response) {
  auto h = dns::ParseHeader(response);
  return h ? h->rcode() : -1;
}

std::vector<std::string> AddressesOf(const Bytes& response) {
  std::vector<std::string> out;
  auto records = dns::ExtractAddresses(response);
  if (!records) {
    return out;
  }
  for (const auto& r : *records) {
    auto ip = egress::FromBytes(r.address);
    out.push_back(ip ? egress::FormatIp(*ip) : "?");
  }
  std::sort(out.begin(), out.end());
  return out;
}

class ResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::KnotServer::Available()) {
      GTEST_SKIP() << "knotd, keymgr or kdig is not installed (Debian: knot, knot-dnsutils)";
    }
    auto knot = testing::KnotServer::Start(dir_.path(), {{"enclavia.test", kSignedRecords, true},
                                                         {"plain.test", kPlainRecords, false}});
    ASSERT_TRUE(knot) << knot.error().message();
    knot_ = std::move(*knot);
    upstream_ = std::make_unique<Upstream>(knot_->port());
  }

  std::shared_ptr<egress::Firewall> MakeFirewall(egress::DnssecMode mode) {
    egress::Policy policy;
    policy.enabled = true;
    // Not knotd's address: the test's dial sends every resolver to knotd, as the host would.
    policy.resolvers = {egress::V4(192, 0, 2, 53), egress::V4(192, 0, 2, 54)};
    policy.dnssec = mode;
    for (const char* entry :
         {"www.enclavia.test:443", "alias.enclavia.test:443", "www.plain.test:443"}) {
      auto rule = egress::ParseRule(entry);
      ENCLAVIA_CHECK(rule.has_value());
      policy.allow.push_back(*rule);
    }
    return std::make_shared<egress::Firewall>(std::move(policy));
  }

  // StartResolver starts a resolver on 127.0.0.1:<free port> over this test's knotd.
  void StartResolver(egress::DnssecMode mode) {
    firewall_ = MakeFirewall(mode);
    ResolverOptions options;
    options.firewall = firewall_;
    if (mode == egress::DnssecMode::kRequire) {
      auto anchor = knot_->TrustAnchor("enclavia.test");
      ASSERT_TRUE(anchor) << anchor.error().message();
      options.trust_anchor = *anchor;
    }
    options.dial = [u = upstream_.get()](const egress::Endpoint& to) { return u->Dial(to); };
    options.listen_ip = "127.0.0.1";
    options.listen_port = 0;
    options.log = [this](std::string_view line) {
      std::lock_guard lock(log_mu_);
      log_.emplace_back(line);
    };
    auto resolver = Resolver::Start(std::move(options));
    ASSERT_TRUE(resolver) << resolver.error().message();
    resolver_ = std::move(*resolver);
  }

  void TearDown() override {
    if (resolver_) {
      resolver_->Stop();
    }
    std::lock_guard lock(log_mu_);
    for (const auto& line : log_) {
      std::cout << "  log: " << line << "\n";
    }
  }

  bool Logged(std::string_view needle) {
    std::lock_guard lock(log_mu_);
    return std::any_of(log_.begin(), log_.end(),
                       [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  }

  bool Allowed(const char* ip, std::chrono::steady_clock::duration later = {}) {
    auto addr = egress::ParseIp(ip);
    ENCLAVIA_CHECK(addr.has_value());
    return firewall_->Decide(*addr, 443, egress::Firewall::Clock::now() + later).allowed;
  }

  testing::TempDir dir_{"resolver"};
  std::unique_ptr<testing::KnotServer> knot_;
  std::unique_ptr<Upstream> upstream_;
  std::shared_ptr<egress::Firewall> firewall_;
  std::unique_ptr<Resolver> resolver_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(ResolverTest, AnswersAllowedSignedNameAndLearnsItsAddresses) {
  StartResolver(egress::DnssecMode::kRequire);
  auto start = Clock::now();
  Bytes answer = Ask(resolver_->port(), Query(0x1111, "www.enclavia.test", dns::kTypeA));
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  std::cout << "first validated answer (cold cache, loopback knotd): "
            << static_cast<double>(elapsed.count()) / 1000.0 << " ms\n";
  RecordProperty("first_validated_answer_us", static_cast<int>(elapsed.count()));
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(dns::ParseHeader(answer)->id, 0x1111);
  EXPECT_EQ(RcodeOf(answer), 0);
  EXPECT_EQ(AddressesOf(answer), (std::vector<std::string>{"192.0.2.10", "192.0.2.11"}));
  EXPECT_TRUE(Allowed("192.0.2.10"));
  EXPECT_TRUE(Allowed("192.0.2.11"));
  // Learned for the record's TTL (30 s), not longer.
  EXPECT_TRUE(Allowed("192.0.2.10", seconds(20)));
  EXPECT_FALSE(Allowed("192.0.2.10", seconds(31)));
  EXPECT_FALSE(Allowed("192.0.2.12"));

  auto warm_start = Clock::now();
  Bytes aaaa = Ask(resolver_->port(), Query(0x2222, "WWW.Enclavia.Test", dns::kTypeAaaa));
  std::cout << "validated AAAA answer (keys cached): "
            << static_cast<double>(
                   std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - warm_start)
                       .count()) /
                   1000.0
            << " ms\n";
  EXPECT_EQ(RcodeOf(aaaa), 0);
  EXPECT_EQ(AddressesOf(aaaa), std::vector<std::string>{"2001:db8::10"});
  // The asker's letter case comes back in the question.
  auto q = dns::ParseQuery(Query(0x2222, "WWW.Enclavia.Test", dns::kTypeAaaa));
  ASSERT_TRUE(q);
  EXPECT_TRUE(std::equal(q->question.begin(), q->question.end(), aaaa.begin() + 12));
  EXPECT_TRUE(Allowed("2001:db8::10"));
  EXPECT_EQ(resolver_->stats().answered, 2u);
  EXPECT_EQ(resolver_->stats().bogus, 0u);
}

TEST_F(ResolverTest, RefusesNameNotAllowedWithoutAskingUpstream) {
  StartResolver(egress::DnssecMode::kRequire);
  Bytes answer = Ask(resolver_->port(), Query(7, "secret.enclavia.test", dns::kTypeA));
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(RcodeOf(answer), static_cast<int>(dns::Rcode::kRefused));
  EXPECT_EQ(dns::ParseHeader(answer)->id, 7);
  EXPECT_EQ(resolver_->stats().refused, 1u);
  EXPECT_TRUE(Logged("refused secret.enclavia.test. A"));
  // An allowed name afterwards goes through; the refused one never reached knotd.
  EXPECT_EQ(RcodeOf(Ask(resolver_->port(), Query(8, "www.enclavia.test", dns::kTypeA))), 0);
  EXPECT_TRUE(upstream_->Saw("www.enclavia.test"));
  EXPECT_FALSE(upstream_->Saw("secret.enclavia.test"));
  EXPECT_FALSE(Allowed("192.0.2.99"));
}

TEST_F(ResolverTest, LearnsCnameTargetAddressesUnderTheAskedName) {
  StartResolver(egress::DnssecMode::kRequire);
  Bytes answer = Ask(resolver_->port(), Query(9, "alias.enclavia.test", dns::kTypeA));
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(RcodeOf(answer), 0);
  EXPECT_EQ(AddressesOf(answer), std::vector<std::string>{"192.0.2.12"});
  auto addr = egress::ParseIp("192.0.2.12");
  ASSERT_TRUE(addr);
  auto verdict = firewall_->Decide(*addr, 443, egress::Firewall::Clock::now());
  EXPECT_TRUE(verdict.allowed) << verdict.reason;
  EXPECT_EQ(verdict.name, "alias.enclavia.test");
}

TEST_F(ResolverTest, UnsignedZoneIsServfailWhenDnssecRequired) {
  StartResolver(egress::DnssecMode::kRequire);
  Bytes answer = Ask(resolver_->port(), Query(10, "www.plain.test", dns::kTypeA));
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(RcodeOf(answer), static_cast<int>(dns::Rcode::kServFail));
  EXPECT_EQ(resolver_->stats().insecure_refused, 1u);
  EXPECT_TRUE(Logged("insecure answer refused: dnssec = require"));
  EXPECT_FALSE(Allowed("192.0.2.20"));
}

TEST_F(ResolverTest, UnsignedZoneIsAnsweredWhenDnssecOff) {
  StartResolver(egress::DnssecMode::kOff);
  Bytes answer = Ask(resolver_->port(), Query(11, "www.plain.test", dns::kTypeA));
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(RcodeOf(answer), 0);
  EXPECT_EQ(AddressesOf(answer), std::vector<std::string>{"192.0.2.20"});
  EXPECT_TRUE(Allowed("192.0.2.20"));
  EXPECT_EQ(resolver_->stats().answered, 1u);
}

TEST_F(ResolverTest, RewrittenAnswerIsBogusAndNothingIsLearned) {
  upstream_->set_rewrite(true);
  StartResolver(egress::DnssecMode::kRequire);
  Bytes answer = Ask(resolver_->port(), Query(12, "www.enclavia.test", dns::kTypeA));
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(RcodeOf(answer), static_cast<int>(dns::Rcode::kServFail));
  EXPECT_TRUE(AddressesOf(answer).empty());
  EXPECT_EQ(resolver_->stats().bogus, 1u);
  EXPECT_TRUE(Logged("bogus"));
  EXPECT_FALSE(Allowed("192.0.2.66"));
  EXPECT_FALSE(Allowed("192.0.2.10"));
  EXPECT_FALSE(Allowed("192.0.2.11"));
}

TEST_F(ResolverTest, AnswersOverTcp) {
  StartResolver(egress::DnssecMode::kRequire);
  Bytes answer = Ask(resolver_->port(), Query(13, "www.enclavia.test", dns::kTypeA), true);
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(dns::ParseHeader(answer)->id, 13);
  EXPECT_EQ(RcodeOf(answer), 0);
  EXPECT_EQ(AddressesOf(answer), (std::vector<std::string>{"192.0.2.10", "192.0.2.11"}));
  Bytes refused = Ask(resolver_->port(), Query(14, "secret.enclavia.test", dns::kTypeA), true);
  EXPECT_EQ(RcodeOf(refused), static_cast<int>(dns::Rcode::kRefused));
}

TEST_F(ResolverTest, AnswersSeveralQueriesAtOnce) {
  StartResolver(egress::DnssecMode::kRequire);
  struct Case {
    const char* name;
    uint16_t type;
    bool tcp;
    int rcode;
  };
  const std::vector<Case> cases = {
      {"www.enclavia.test", dns::kTypeA, false, 0},
      {"www.enclavia.test", dns::kTypeAaaa, true, 0},
      {"alias.enclavia.test", dns::kTypeA, false, 0},
      {"www.plain.test", dns::kTypeA, true, 2},
      {"secret.enclavia.test", dns::kTypeA, false, 5},
      {"www.enclavia.test", dns::kTypeA, true, 0},
  };
  std::vector<int> rcodes(cases.size(), -1);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cases.size(); ++i) {
    threads.emplace_back([&, i] {
      rcodes[i] = RcodeOf(Ask(resolver_->port(),
                              Query(static_cast<uint16_t>(100 + i), cases[i].name, cases[i].type),
                              cases[i].tcp));
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(rcodes[i], cases[i].rcode) << cases[i].name;
  }
}

TEST_F(ResolverTest, MalformedQueriesGetFormErrOrNothing) {
  StartResolver(egress::DnssecMode::kRequire);
  // A header, then a label running past the end.
  Bytes bad = {0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x05, 'a', 'b'};
  Bytes answer = Ask(resolver_->port(), bad);
  ASSERT_EQ(answer.size(), dns::kHeaderSize);
  EXPECT_EQ(dns::ParseHeader(answer)->id, 0xbeef);
  EXPECT_EQ(RcodeOf(answer), static_cast<int>(dns::Rcode::kFormErr));
  // Not even a header: no answer at all.
  EXPECT_TRUE(Ask(resolver_->port(), Bytes{1, 2, 3}, false, milliseconds(300)).empty());
  // Over TCP, FORMERR too.
  Bytes tcp_answer = Ask(resolver_->port(), bad, true);
  EXPECT_EQ(RcodeOf(tcp_answer), static_cast<int>(dns::Rcode::kFormErr));
  // Still serving.
  EXPECT_EQ(RcodeOf(Ask(resolver_->port(), Query(15, "www.enclavia.test", dns::kTypeA))), 0);
  EXPECT_EQ(resolver_->stats().malformed, 3u);
}

TEST_F(ResolverTest, UnreachableUpstreamIsServfail) {
  upstream_->set_unreachable(true);
  StartResolver(egress::DnssecMode::kRequire);
  auto start = Clock::now();
  Bytes answer = Ask(resolver_->port(), Query(16, "www.enclavia.test", dns::kTypeA));
  auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  std::cout << "SERVFAIL with every resolver unreachable after " << elapsed.count() << " ms\n";
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(RcodeOf(answer), static_cast<int>(dns::Rcode::kServFail));
  EXPECT_TRUE(Logged("unreachable"));
  EXPECT_FALSE(Allowed("192.0.2.10"));
}

TEST_F(ResolverTest, FallsBackToTheNextResolver) {
  upstream_->set_first_unreachable(true);
  StartResolver(egress::DnssecMode::kRequire);
  Bytes answer = Ask(resolver_->port(), Query(17, "www.enclavia.test", dns::kTypeA));
  EXPECT_EQ(RcodeOf(answer), 0);
  EXPECT_TRUE(Allowed("192.0.2.10"));
  auto dialed = upstream_->dialed();
  ASSERT_FALSE(dialed.empty());
  EXPECT_TRUE(std::all_of(dialed.begin(), dialed.end(),
                          [](const std::string& d) { return d == "192.0.2.54:53"; }));
}

TEST(ResolverStartTest, RejectsTrustAnchorMismatchWithPolicy) {
  egress::Policy policy;
  policy.dnssec = egress::DnssecMode::kRequire;
  auto firewall = std::make_shared<egress::Firewall>(policy);
  ResolverOptions options;
  options.firewall = firewall;
  options.dial = [](const egress::Endpoint&) -> Result<sys::UniqueFd> {
    return Error(Code::kUnavailable, "no");
  };
  options.listen_ip = "127.0.0.1";
  options.listen_port = 0;
  auto missing = Resolver::Start(options);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kInvalidArgument);

  options.trust_anchor = "example.org. IN A 192.0.2.1\n";
  auto not_ds = Resolver::Start(options);
  ASSERT_FALSE(not_ds);

  options.trust_anchor = "example.org. DS 1 13 2 zz\n";
  auto garbage = Resolver::Start(options);
  EXPECT_FALSE(garbage) << "unbound should reject a DS digest that is not hex";

  egress::Policy off;
  off.dnssec = egress::DnssecMode::kOff;
  options.firewall = std::make_shared<egress::Firewall>(off);
  options.trust_anchor = "example.org. DS 1 13 2 abcd\n";
  auto extra = Resolver::Start(options);
  ASSERT_FALSE(extra);
  EXPECT_EQ(extra.error().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace enclavia::enclave
