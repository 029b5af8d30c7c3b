// SPDX-License-Identifier: Apache-2.0
#include "enclave/egress/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "enclave/egress/nic.h"
#include "enclave/egress/resolver.h"
#include "lib/base/file.h"
#include "lib/base/flags.h"
#include "lib/config/enclave_config.h"
#include "lib/egress/dial.h"
#include "lib/egress/policy.h"
#include "lib/transport/transport.h"

namespace enclavia::enclave {
namespace {

constexpr size_t kMaxConfig = 1 << 20;
constexpr size_t kMaxAnchor = 1 << 20;
// An upstream DNS connection through the host that is not answered in this time fails over.
constexpr std::chrono::milliseconds kResolverDialTimeout{5000};

// Log lines go to stderr, which enclavia-init points at the console in debug mode only.
std::mutex log_mutex;
void Log(std::string_view line) {
  std::lock_guard<std::mutex> lock(log_mutex);
  std::fprintf(stderr, "enclavia-egress: %.*s\n", static_cast<int>(line.size()), line.data());
  std::fflush(stderr);
}

void Report(int fd, const std::string& line) {
  if (fd < 0) {
    return;
  }
  std::string text = line + "\n";
  ssize_t unused = ::write(fd, text.data(), text.size());
  static_cast<void>(unused);
  ::close(fd);
}

int Fail(int ready_fd, const Error& error) {
  Log(error.message());
  Report(ready_fd, "error " + error.message());
  return 1;
}

// WriteResolvConf points the enclave's resolver library at the internal resolver. The file is
// replaced atomically; /etc is created if the image has none.
Result<void> WriteResolvConf(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty()) {
    ::mkdir(dir.c_str(), 0755);
  }
  std::string text =
      "# Written by enclavia-egress: the enclave's DNSSEC-validating resolver (docs/egress.md).\n"
      "nameserver 127.0.0.53\n"
      "options timeout:5 attempts:2\n";
  return WriteFileAtomic(path, AsBytes(text), 0644);
}

}  // namespace

Result<EgressFlags> ParseEgressFlags(const std::vector<std::string>& args) {
  EgressFlags flags;
  ASSIGN_OR_RETURN(std::vector<Flag> parsed, SplitFlags(args, {"--help", "-h"}));
  for (const Flag& flag : parsed) {
    if (flag.value.empty()) {
      flags.help = true;
    } else if (flag.name == "--config") {
      flags.config_path = flag.value;
    } else if (flag.name == "--ready-fd") {
      ASSIGN_OR_RETURN(flags.ready_fd, DescriptorFlag(flag));
    } else if (flag.name == "--dialer") {
      ASSIGN_OR_RETURN(net::Address address, net::ParseAddress(flag.value));
      flags.dialer = address;
    } else if (flag.name == "--resolv-conf") {
      flags.resolv_conf = flag.value;
    } else if (flag.name == "--trust-anchor") {
      flags.trust_anchor = flag.value;
    } else {
      return UnexpectedFlag(flag);
    }
  }
  return flags;
}

int RunEgress(const EgressFlags& flags) {
  // SIGTERM and SIGINT end the daemon; they are taken synchronously below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto text = ReadFile(flags.config_path, kMaxConfig);
  if (!text) {
    return Fail(flags.ready_fd, text.error());
  }
  auto config = config::ParseEnclaveConfig(
      std::string_view(reinterpret_cast<const char*>(text->data()), text->size()));
  if (!config) {
    return Fail(flags.ready_fd, config.error().WithContext(flags.config_path));
  }
  if (!config->egress.enabled) {
    Report(flags.ready_fd, "none");
    return 0;
  }
  auto policy = config::ToPolicy(config->egress);
  if (!policy) {
    return Fail(flags.ready_fd, policy.error());
  }
  const bool validate = policy->dnssec == egress::DnssecMode::kRequire;
  std::string anchor;
  if (validate) {
    std::string path = flags.trust_anchor.empty()
                           ? "/" + std::string(config::kTrustAnchorPath)
                           : flags.trust_anchor;
    auto bytes = ReadFile(path, kMaxAnchor);
    if (!bytes) {
      return Fail(flags.ready_fd, bytes.error().WithContext("the DNSSEC trust anchor"));
    }
    anchor.assign(bytes->begin(), bytes->end());
  } else {
    Log("WARNING: dnssec = \"off\": DNS answers are NOT validated; whoever carries the enclave's "
        "DNS traffic (the host) can point allowed names at any address");
  }

  net::Address dialer;
  if (flags.dialer.has_value()) {
    dialer = *flags.dialer;
  } else {
    auto mode = transport::DetectMode();
    if (!mode) {
      return Fail(flags.ready_fd, mode.error());
    }
    dialer = transport::EnclaveToParent(*mode, transport::kEgressPort);
  }

  size_t rules = policy->allow.size();
  auto firewall = std::make_shared<egress::Firewall>(std::move(*policy));
  for (const egress::Rule& rule : firewall->policy().allow) {
    Log("allow rule: " + rule.entry);
  }

  NicOptions nic_options;
  nic_options.dialer = dialer;
  nic_options.log = Log;
  // The NIC logs each verdict (destination, rule or reason) as it applies it.
  nic_options.decide = [firewall](const egress::Endpoint& destination) {
    return firewall->Decide(destination.ip, destination.port, egress::Firewall::Clock::now());
  };
  auto nic = Nic::Start(std::move(nic_options));
  if (!nic) {
    return Fail(flags.ready_fd, nic.error().WithContext("the emulated NIC"));
  }

  ResolverOptions resolver_options;
  resolver_options.firewall = firewall;
  resolver_options.trust_anchor = std::move(anchor);
  resolver_options.dial = [dialer](const egress::Endpoint& to) {
    return egress::Dial(dialer, to, kResolverDialTimeout);
  };
  resolver_options.log = Log;
  auto resolver = Resolver::Start(std::move(resolver_options));
  if (!resolver) {
    (*nic)->Stop();
    return Fail(flags.ready_fd, resolver.error().WithContext("the resolver"));
  }
  if (auto written = WriteResolvConf(flags.resolv_conf); !written) {
    (*resolver)->Stop();
    (*nic)->Stop();
    return Fail(flags.ready_fd, written.error().WithContext(flags.resolv_conf));
  }

  std::string summary = "tun0, " + std::to_string(rules) + " allow rules, dnssec " +
                        std::string(config::DnssecModeName(firewall->policy().dnssec)) +
                        ", resolver 127.0.0.53";
  Log("ready: " + summary);
  Report(flags.ready_fd, "ready " + summary);

  int signal_number = 0;
  while (::sigwait(&stop_signals, &signal_number) != 0) {
  }
  Log("stopping (signal " + std::to_string(signal_number) + ")");
  (*resolver)->Stop();
  (*nic)->Stop();
  NicStats stats = (*nic)->stats();
  Log("stopped: " + std::to_string(stats.connections_allowed) + " connections allowed, " +
      std::to_string(stats.connections_denied) + " denied, " +
      std::to_string(stats.udp_dropped) + " UDP packets dropped");
  return 0;
}

}  // namespace enclavia::enclave
