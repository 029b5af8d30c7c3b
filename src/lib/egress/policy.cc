// SPDX-License-Identifier: Apache-2.0
#include "lib/egress/policy.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace enclavia::egress {

namespace {

// RFC 1035 §2.3.4: a name is at most 255 octets on the wire, so 253 characters in text without
// the trailing dot; a label is 1..63 octets.
constexpr size_t kMaxNameLength = 253;
constexpr size_t kMaxLabelLength = 63;
// Entries are the owner's, but they end up in one-line messages: keep them short and printable.
constexpr size_t kMaxQuotedEntry = 80;

std::string QuoteEntry(std::string_view entry) {
  std::string out = "\"";
  size_t n = 0;
  for (char c : entry) {
    if (n++ == kMaxQuotedEntry) {
      out.append("...");
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out.append("\\x").push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

Error Bad(std::string_view entry, std::string_view what) {
  std::string message = QuoteEntry(entry);
  message.append(": ").append(what);
  return Error(Code::kInvalidArgument, std::move(message));
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// ParseNumber reads decimal digits; nullopt-like -1 for non-digits, a saturated value for huge
// numbers (so "99999999999" is "out of range", not "bad").
int64_t ParseNumber(std::string_view s) {
  if (!AllDigits(s)) {
    return -1;
  }
  int64_t v = 0;
  for (char c : s) {
    v = v * 10 + (c - '0');
    if (v > 1000000) {
      return 1000000;
    }
  }
  return v;
}

Result<uint16_t> ParsePort(std::string_view entry, std::string_view text) {
  int64_t v = ParseNumber(text);
  if (v < 0) {
    return Bad(entry, std::string("bad port ").append(QuoteEntry(text)));
  }
  if (v < 1 || v > 65535) {
    return Bad(entry, "port out of range");
  }
  return static_cast<uint16_t>(v);
}

Result<PortRange> ParsePorts(std::string_view entry, std::string_view text) {
  PortRange range;
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    ASSIGN_OR_RETURN(range.first, ParsePort(entry, text));
    range.last = range.first;
    return range;
  }
  ASSIGN_OR_RETURN(range.first, ParsePort(entry, text.substr(0, dash)));
  ASSIGN_OR_RETURN(range.last, ParsePort(entry, text.substr(dash + 1)));
  if (range.first > range.last) {
    return Bad(entry, "reversed port range");
  }
  return range;
}

// IPv4-mapped IPv6 (RFC 4291 §2.5.5.2) reaches the IPv4 host: judge it as that address.
IpAddress Effective(const IpAddress& ip) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (ip.family == IpFamily::kV6 && std::memcmp(ip.bytes.data(), kMapped, sizeof(kMapped)) == 0) {
    return V4(ip.bytes[12], ip.bytes[13], ip.bytes[14], ip.bytes[15]);
  }
  return ip;
}

// Matches reports whether the first `length` bits of `a` and `b` agree.
bool PrefixMatches(const uint8_t* a, const uint8_t* b, unsigned length) {
  unsigned whole = length / 8;
  if (std::memcmp(a, b, whole) != 0) {
    return false;
  }
  unsigned rest = length % 8;
  if (rest == 0) {
    return true;
  }
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return ((a[whole] ^ b[whole]) & mask) == 0;
}

Result<Rule> ParseAddress(std::string_view entry, std::string_view host, bool bracketed,
                          Rule rule) {
  std::string_view ip_text = host;
  std::string_view length_text;
  bool has_length = false;
  if (size_t slash = host.find('/'); slash != std::string_view::npos) {
    ip_text = host.substr(0, slash);
    length_text = host.substr(slash + 1);
    has_length = true;
  }
  auto ip = ParseIp(ip_text);
  if (!ip) {
    return Bad(entry, std::string("bad IP address ").append(QuoteEntry(ip_text)));
  }
  if (bracketed && ip->family != IpFamily::kV6) {
    return Bad(entry, "brackets are for IPv6 addresses only");
  }
  const unsigned max_length = ip->family == IpFamily::kV4 ? 32 : 128;
  unsigned length = max_length;
  if (has_length) {
    int64_t v = ParseNumber(length_text);
    if (v < 0) {
      return Bad(entry, "bad prefix length");
    }
    if (v > static_cast<int64_t>(max_length)) {
      return Bad(entry, std::string("prefix length over ").append(std::to_string(max_length)));
    }
    length = static_cast<unsigned>(v);
  }
  IpAddress network = *ip;
  for (unsigned bit = length; bit < max_length; ++bit) {
    network.bytes[bit / 8] = static_cast<uint8_t>(network.bytes[bit / 8] & ~(0x80u >> (bit % 8)));
  }
  if (network != *ip) {
    return Bad(entry, std::string("host bits set (the network is ")
                          .append(FormatIp(network))
                          .append("/")
                          .append(std::to_string(length))
                          .append(")"));
  }
  rule.kind = Rule::Kind::kAddress;
  rule.prefix = network;
  rule.prefix_length = static_cast<uint8_t>(length);
  return rule;
}

// ValidateName checks a lowercase host name without a trailing dot (RFC 1123 §2.1).
Result<void> ValidateName(std::string_view entry, std::string_view name) {
  if (name.empty()) {
    return Bad(entry, "empty name");
  }
  if (name.size() > kMaxNameLength) {
    return Bad(entry, "name longer than 253 characters");
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) {
      dot = name.size();
    }
    std::string_view label = name.substr(start, dot - start);
    if (label.empty()) {
      return Bad(entry, "empty label in name");
    }
    if (label.size() > kMaxLabelLength) {
      return Bad(entry, "label longer than 63 characters");
    }
    for (char c : label) {
      if (c == '*') {
        return Bad(entry,
                   "a wildcard is allowed only as the whole first label (\"*.example.org\")");
      }
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
        return Bad(entry, std::string("bad character in name label ").append(QuoteEntry(label)));
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return Bad(
          entry,
          std::string("name label ").append(QuoteEntry(label)).append(" starts or ends with '-'"));
    }
    start = dot + 1;
  }
  return {};
}

}  // namespace

Result<Rule> ParseRule(std::string_view entry) {
  if (entry.empty()) {
    return Bad(entry, "empty entry");
  }
  Rule rule;
  rule.entry = std::string(entry);
  std::string_view host = entry;
  std::string_view ports;
  bool has_ports = false;
  bool bracketed = false;
  if (entry.front() == '[') {
    size_t close = entry.find(']');
    if (close == std::string_view::npos) {
      return Bad(entry, "missing ']'");
    }
    host = entry.substr(1, close - 1);
    std::string_view rest = entry.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return Bad(entry, "expected ':' and a port after ']'");
      }
      ports = rest.substr(1);
      has_ports = true;
    }
    bracketed = true;
  } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
    size_t colon = entry.find(':');
    host = entry.substr(0, colon);
    ports = entry.substr(colon + 1);
    has_ports = true;
  }
  // More than one ':' without brackets: an IPv6 address or network, without a port.
  if (has_ports) {
    ASSIGN_OR_RETURN(rule.ports, ParsePorts(entry, ports));
  }
  if (host.empty()) {
    return Bad(entry, "empty host");
  }
  if (bracketed || host.find(':') != std::string_view::npos ||
      host.find('/') != std::string_view::npos) {
    return ParseAddress(entry, host, bracketed, std::move(rule));
  }
  if (ParseIp(host)) {
    return ParseAddress(entry, host, false, std::move(rule));
  }
  std::string name;
  name.reserve(host.size());
  for (char c : host) {
    name.push_back(Lower(c));
  }
  if (name.ends_with('.')) {
    name.pop_back();
  }
  // A last label of digits is an IPv4 address gone wrong ("10.0.0.256"), never a host name
  // (RFC 3696 §2: top-level domains are not all-numeric).
  if (size_t dot = name.rfind('.'); AllDigits(std::string_view(name).substr(dot + 1))) {
    return Bad(entry, std::string("bad IP address ").append(QuoteEntry(host)));
  }
  rule.kind = Rule::Kind::kName;
  if (name.starts_with("*.")) {
    rule.kind = Rule::Kind::kWildcard;
    name.erase(0, 2);
  }
  RETURN_IF_ERROR(ValidateName(entry, name));
  rule.name = std::move(name);
  return rule;
}

// ---------------------------------------------------------------------------------------------
// Firewall

namespace {

struct IpHash {
  size_t operator()(const IpAddress& ip) const noexcept {
    uint64_t a = 0;
    uint64_t b = 0;
    std::memcpy(&a, ip.bytes.data(), 8);
    std::memcpy(&b, ip.bytes.data() + 8, 8);
    // splitmix64's finalizer over both halves; the family is implied by the bytes' layout.
    uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ULL) ^ static_cast<uint64_t>(ip.family);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return static_cast<size_t>(h);
  }
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

using NameIndex =
    std::unordered_map<std::string, std::vector<uint32_t>, StringHash, std::equal_to<>>;

// NormalName lowercases `name` into `buf` and drops one trailing dot; false when it cannot be a
// name (too long, an empty label).
bool NormalName(std::string_view name, char (&buf)[kMaxNameLength + 2], std::string_view& out) {
  if (name.ends_with('.')) {
    name.remove_suffix(1);
  }
  if (name.size() > kMaxNameLength) {
    return false;
  }
  char prev = '.';
  for (size_t i = 0; i < name.size(); ++i) {
    char c = Lower(name[i]);
    if (c == '.' && prev == '.') {
      return false;
    }
    buf[i] = c;
    prev = c;
  }
  if (!name.empty() && prev == '.') {
    return false;
  }
  out = std::string_view(buf, name.size());
  return true;
}

struct AddressRule {
  IpAddress prefix;
  unsigned length = 0;
  PortRange ports;
  uint32_t index = 0;  // into Policy::allow
};

struct Learned {
  std::string name;
  Firewall::Clock::time_point expiry;
  std::vector<uint32_t> rules;  // the name rules that allow `name`
};

}  // namespace

struct Firewall::State {
  Policy policy;
  size_t max_learned = kMaxLearned;
  // Immutable after construction: read without the lock.
  std::vector<AddressRule> v4;
  std::vector<AddressRule> v6;
  NameIndex exact;      // name -> rules
  NameIndex wildcards;  // suffix -> rules
  std::unordered_set<std::string, StringHash, std::equal_to<>> ancestors;

  mutable std::shared_mutex mu;
  // Guarded by mu.
  std::unordered_map<IpAddress, std::vector<Learned>, IpHash> learned;
  std::set<std::tuple<Clock::time_point, IpAddress, std::string>> by_expiry;

  // RulesFor appends the name and wildcard rules allowing the normalized `name`.
  void RulesFor(std::string_view name, std::vector<uint32_t>& out) const {
    if (auto it = exact.find(name); it != exact.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
    if (wildcards.empty()) {
      return;
    }
    // Strictly below the suffix: "a.b.example.org" tries "b.example.org", then "example.org", ...
    for (size_t dot = name.find('.'); dot != std::string_view::npos;
         dot = name.find('.', dot + 1)) {
      if (auto it = wildcards.find(name.substr(dot + 1)); it != wildcards.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
      }
    }
  }

  bool Allowed(std::string_view name) const {
    if (exact.find(name) != exact.end()) {
      return true;
    }
    for (size_t dot = name.find('.'); dot != std::string_view::npos;
         dot = name.find('.', dot + 1)) {
      if (wildcards.find(name.substr(dot + 1)) != wildcards.end()) {
        return true;
      }
    }
    return false;
  }

  // Erase removes learned[ip][i] and its expiry entry. Requires mu held exclusively.
  void Erase(std::unordered_map<IpAddress, std::vector<Learned>, IpHash>::iterator it, size_t i) {
    std::vector<Learned>& entries = it->second;
    by_expiry.erase(std::make_tuple(entries[i].expiry, it->first, entries[i].name));
    entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(i));
    if (entries.empty()) {
      learned.erase(it);
    }
  }

  void EraseOldest() {
    const auto& [expiry, ip, name] = *by_expiry.begin();
    auto it = learned.find(ip);
    ENCLAVIA_CHECK(it != learned.end());
    for (size_t i = 0; i < it->second.size(); ++i) {
      if (it->second[i].name == name) {
        Erase(it, i);
        return;
      }
    }
    ENCLAVIA_CHECK(false);
  }
};

namespace {

void AddAncestors(std::string_view name,
                  std::unordered_set<std::string, StringHash, std::equal_to<>>& out) {
  for (size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
    out.emplace(name.substr(dot + 1));
  }
  out.emplace("");
}

}  // namespace

Firewall::Firewall(Policy policy, size_t max_learned) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.policy = std::move(policy);
  s.max_learned = std::max<size_t>(max_learned, 1);
  for (size_t i = 0; i < s.policy.allow.size(); ++i) {
    const Rule& rule = s.policy.allow[i];
    auto index = static_cast<uint32_t>(i);
    switch (rule.kind) {
      case Rule::Kind::kAddress: {
        AddressRule a{rule.prefix, rule.prefix_length, rule.ports, index};
        // An IPv4-mapped network is the IPv4 network it reaches (see Effective).
        if (a.prefix.family == IpFamily::kV6 && a.length >= 96 &&
            Effective(a.prefix).family == IpFamily::kV4) {
          a.prefix = Effective(a.prefix);
          a.length -= 96;
        }
        (a.prefix.family == IpFamily::kV4 ? s.v4 : s.v6).push_back(a);
        break;
      }
      case Rule::Kind::kName:
        s.exact[rule.name].push_back(index);
        AddAncestors(rule.name, s.ancestors);
        break;
      case Rule::Kind::kWildcard:
        s.wildcards[rule.name].push_back(index);
        s.ancestors.emplace(rule.name);
        AddAncestors(rule.name, s.ancestors);
        break;
    }
  }
}

Firewall::~Firewall() = default;

const Policy& Firewall::policy() const { return state_->policy; }

Verdict Firewall::Decide(const IpAddress& dest, uint16_t port, Clock::time_point now) const {
  const State& s = *state_;
  const IpAddress ip = Effective(dest);
  const auto& rules = ip.family == IpFamily::kV4 ? s.v4 : s.v6;
  for (const AddressRule& r : rules) {
    if (r.ports.Contains(port) && PrefixMatches(ip.bytes.data(), r.prefix.bytes.data(), r.length)) {
      Verdict v;
      v.allowed = true;
      v.rule = s.policy.allow[r.index].entry;
      return v;
    }
  }
  std::string other_port;  // a name that resolved to `ip` but whose rules name other ports
  {
    std::shared_lock lock(s.mu);
    if (auto it = s.learned.find(ip); it != s.learned.end()) {
      for (const Learned& l : it->second) {
        if (now >= l.expiry) {
          continue;
        }
        for (uint32_t index : l.rules) {
          const Rule& rule = s.policy.allow[index];
          if (rule.ports.Contains(port)) {
            Verdict v;
            v.allowed = true;
            v.rule = rule.entry;
            v.name = l.name;
            return v;
          }
        }
        other_port = l.name;
      }
    }
  }
  Verdict v;
  v.reason = "no rule matches ";
  v.reason.append(FormatEndpoint(Endpoint{dest, port}));
  if (!other_port.empty()) {
    v.reason.append(" (")
        .append(other_port)
        .append(" resolved to it; its rules allow other ports)");
  }
  return v;
}

bool Firewall::NameAllowed(std::string_view name) const {
  char buf[kMaxNameLength + 2] = {};
  std::string_view normal;
  if (!NormalName(name, buf, normal) || normal.empty()) {
    return false;
  }
  return state_->Allowed(normal);
}

bool Firewall::UpstreamNameAllowed(std::string_view name) const {
  char buf[kMaxNameLength + 2] = {};
  std::string_view normal;
  if (!NormalName(name, buf, normal)) {
    return false;
  }
  if (state_->ancestors.find(normal) != state_->ancestors.end()) {
    return true;
  }
  return !normal.empty() && state_->Allowed(normal);
}

void Firewall::Learn(std::string_view name, const IpAddress& address, std::chrono::seconds ttl,
                     Clock::time_point now) {
  State& s = *state_;
  char buf[kMaxNameLength + 2] = {};
  std::string_view normal;
  if (!NormalName(name, buf, normal) || normal.empty()) {
    return;
  }
  std::vector<uint32_t> rules;
  s.RulesFor(normal, rules);
  if (rules.empty()) {
    return;
  }
  const IpAddress ip = Effective(address);
  ttl = std::min(ttl, kMaxLearnedTtl);
  const Clock::time_point expiry = now + ttl;

  std::unique_lock lock(s.mu);
  // Drop what has expired, oldest first: amortized O(log n) per Learn.
  while (!s.by_expiry.empty() && std::get<0>(*s.by_expiry.begin()) <= now) {
    s.EraseOldest();
  }
  auto it = s.learned.find(ip);
  if (it != s.learned.end()) {
    std::vector<Learned>& entries = it->second;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].name != normal) {
        continue;
      }
      s.by_expiry.erase(std::make_tuple(entries[i].expiry, ip, entries[i].name));
      if (ttl <= std::chrono::seconds::zero()) {
        entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(i));
        if (entries.empty()) {
          s.learned.erase(it);
        }
        return;
      }
      entries[i].expiry = expiry;
      s.by_expiry.emplace(expiry, ip, entries[i].name);
      return;
    }
  }
  if (ttl <= std::chrono::seconds::zero()) {
    return;
  }
  if (it != s.learned.end() && it->second.size() >= kMaxNamesPerIp) {
    // This IP's pair closest to expiry makes room.
    auto soonest =
        std::min_element(it->second.begin(), it->second.end(),
                         [](const Learned& a, const Learned& b) { return a.expiry < b.expiry; });
    s.Erase(it, static_cast<size_t>(soonest - it->second.begin()));
  } else if (s.by_expiry.size() >= s.max_learned) {
    s.EraseOldest();
  }
  std::string owned(normal);
  s.by_expiry.emplace(expiry, ip, owned);
  // Erase may have invalidated `it`.
  s.learned[ip].push_back(Learned{std::move(owned), expiry, std::move(rules)});
}

size_t Firewall::learned_size() const {
  std::shared_lock lock(state_->mu);
  return state_->by_expiry.size();
}

}  // namespace enclavia::egress
