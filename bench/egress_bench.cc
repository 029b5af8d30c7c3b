// SPDX-License-Identifier: Apache-2.0
// The egress firewall's decision time (goal: Firewall::Decide <= 5 us): a connection allowed by a
// CIDR rule, one allowed by a learned name among 10,000 learned (ip, name) pairs, one denied after
// trying 100 rules, and the resolver's NameAllowed check.
#include <string>

#include <benchmark/benchmark.h>

#include "lib/egress/policy.h"

namespace enclavia::egress {
namespace {

using Clock = Firewall::Clock;
const Clock::time_point kNow = Clock::time_point(std::chrono::seconds(1000));

// HundredRules: 40 IPv4 networks, 20 IPv6 networks, 30 names, 10 wildcards; none matches
// 192.0.2.1 or 2001:db8:ffff::1.
Policy HundredRules() {
  Policy p;
  p.enabled = true;
  p.resolvers.push_back(V4(192, 0, 2, 53));
  auto add = [&](const std::string& entry) { p.allow.push_back(ParseRule(entry).value()); };
  for (int i = 0; i < 40; ++i) {
    add(std::string("10.").append(std::to_string(i)).append(".0.0/16:443"));
  }
  for (int i = 0; i < 20; ++i) {
    add(std::string("[2001:db8:").append(std::to_string(i)).append("::/48]:443"));
  }
  for (int i = 0; i < 30; ++i) {
    add(std::string("api").append(std::to_string(i)).append(".example.com:443"));
  }
  for (int i = 0; i < 10; ++i) {
    add(std::string("*.svc").append(std::to_string(i)).append(".example.org:443-444"));
  }
  return p;
}

void BM_DecideAllowedByCidr(benchmark::State& state) {
  Firewall fw(HundredRules());
  const IpAddress ip = V4(10, 39, 7, 9);  // the 40th rule
  for (auto _ : state) {
    Verdict v = fw.Decide(ip, 443, kNow);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_DecideAllowedByCidr);

// 10,000 learned pairs under the wildcard rules; the decision looks one of them up.
void BM_DecideAllowedByLearnedName(benchmark::State& state) {
  Firewall fw(HundredRules());
  for (int i = 0; i < 10000; ++i) {
    std::string name = std::string("h")
                           .append(std::to_string(i))
                           .append(".svc")
                           .append(std::to_string(i % 10))
                           .append(".example.org");
    fw.Learn(name, V4(172, 16, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)),
             std::chrono::seconds(3600), kNow);
  }
  ENCLAVIA_CHECK(fw.learned_size() == 10000);
  const IpAddress ip = V4(172, 16, 19, 136);  // i = 5000
  ENCLAVIA_CHECK(fw.Decide(ip, 444, kNow).allowed);
  for (auto _ : state) {
    Verdict v = fw.Decide(ip, 444, kNow);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_DecideAllowedByLearnedName);

void BM_DecideDenied(benchmark::State& state) {
  Firewall fw(HundredRules());
  const IpAddress ip = state.range(0) == 4 ? V4(192, 0, 2, 1) : ParseIp("2001:db8:ffff::1").value();
  ENCLAVIA_CHECK(!fw.Decide(ip, 80, kNow).allowed);
  for (auto _ : state) {
    Verdict v = fw.Decide(ip, 80, kNow);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_DecideDenied)->Arg(4)->Arg(6);

void BM_NameAllowed(benchmark::State& state) {
  Firewall fw(HundredRules());
  const char* name = state.range(0) == 0   ? "api29.example.com"         // exact
                     : state.range(0) == 1 ? "a.b.svc9.example.org."     // wildcard
                                           : "tunnel.attacker.example";  // refused
  ENCLAVIA_CHECK(fw.NameAllowed(name) == (state.range(0) != 2));
  for (auto _ : state) {
    bool allowed = fw.NameAllowed(name);
    benchmark::DoNotOptimize(allowed);
  }
}
BENCHMARK(BM_NameAllowed)->Arg(0)->Arg(1)->Arg(2);

}  // namespace
}  // namespace enclavia::egress

BENCHMARK_MAIN();
