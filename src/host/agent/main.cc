// SPDX-License-Identifier: Apache-2.0
// enclavia-host: the host agent (docs/host-agent.md). Flags → provider → Agent → wait for a signal.
#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "host/agent/agent.h"
#include "lib/http/token.h"
#include "host/launcher/local_provider.h"
#include "host/launcher/nitro_provider.h"
#include "lib/base/file.h"
#include "lib/crypto/random.h"
#include "lib/sys/process.h"

namespace {

using namespace enclavia;  // NOLINT(google-build-using-namespace): a main.

int Fail(const std::string& message) {
  std::cerr << "enclavia-host: " << message << "\n";
  return 1;
}

std::string SelfDir() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

}  // namespace

int main(int argc, char** argv) {
  sys::TuneAllocatorForStreaming();
  CLI::App app{"enclavia-host: runs enclaves through a provider and relays to them, blindly"};
  std::string data_dir = enclavia::http::DefaultDataDir();
  std::string provider_name = "local";
  std::string sandbox;
  std::string nitro_cli = "nitro-cli";
  std::string listen_text = "tcp:127.0.0.1:0";
  std::string public_host = "127.0.0.1";
  std::string tls_cert;
  std::string tls_key;
  double idle_timeout_s = 120;
  unsigned threads = 2;
  bool terminate_on_exit = false;
  std::vector<std::string> egress_deny;
  bool egress_allow_loopback = false;
  host::AgentOptions options;
  app.add_option("--data-dir", data_dir, "Data directory (the agent uses DIR/host, DIR/nsm)")
      ->default_val(data_dir);
  app.add_option("--provider", provider_name, "Where enclaves run: local | nitro")
      ->check(CLI::IsMember({"local", "nitro"}))
      ->default_val("local");
  app.add_option("--sandbox", sandbox,
                 "enclavia-sandbox binary (local; default: beside this executable)");
  app.add_option("--nitro-cli", nitro_cli, "nitro-cli binary (nitro)")->default_val("nitro-cli");
  app.add_option("--listen", listen_text, "API address: tcp:HOST:PORT or unix:PATH")
      ->default_val("tcp:127.0.0.1:0");
  app.add_option("--public-host", public_host, "IP the enclaves' relays listen on and URLs name")
      ->default_val("127.0.0.1");
  app.add_option("--max-connections", options.relay.max_connections,
                 "Open WebSocket connections per enclave before HTTP 503")
      ->default_val(1024);
  app.add_option("--max-message", options.relay.max_message_size, "Largest client message (bytes)")
      ->default_val(65535);
  app.add_option("--idle-timeout", idle_timeout_s, "Close a connection idle this many seconds")
      ->default_val(120);
  app.add_option("--tls-cert", tls_cert, "Relays serve wss://: certificate chain (PEM)");
  app.add_option("--tls-key", tls_key, "Relays serve wss://: private key (PEM)");
  app.add_option("--threads", threads, "I/O threads")->default_val(2);
  app.add_flag("--terminate-on-exit", terminate_on_exit,
               "Terminate every enclave on SIGTERM/SIGINT (default: they keep running)");
  app.add_option("--egress-deny", egress_deny,
                 "Egress: also refuse this CIDR (repeatable; the host's own addresses are always "
                 "refused unless --egress-allow-loopback)");
  app.add_flag("--egress-allow-loopback", egress_allow_loopback,
               "Egress: drop the default deny list (loopback, metadata, link-local, multicast) so "
               "enclaves can reach this machine's services (tests, demos on one machine)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      return app.exit(e);
    }
    return Fail(e.what());
  }

  auto listen = net::ParseAddress(listen_text);
  if (!listen) {
    return Fail("--listen: " + listen.error().message());
  }
  if (tls_cert.empty() != tls_key.empty()) {
    return Fail("--tls-cert and --tls-key go together");
  }
  if (threads < 1 || threads > 64) {
    return Fail("--threads must be 1..64");
  }
  if (!(idle_timeout_s >= 0 && idle_timeout_s < 1e7)) {
    return Fail("--idle-timeout must be 0 (never) or a number of seconds");
  }
  if (egress_allow_loopback) {
    options.egress.deny.clear();
  }
  for (const std::string& text : egress_deny) {
    auto prefix = host::ParseIpPrefix(text);
    if (!prefix) {
      return Fail("--egress-deny: " + prefix.error().message());
    }
    options.egress.deny.push_back(*prefix);
  }
  if (auto init = crypto::Init(); !init) {
    return Fail(init.error().message());
  }
  std::string host_dir = data_dir + "/host";
  if (provider_name == "local") {
    host::LocalProviderOptions local;
    local.state_dir = host_dir;
    local.ca_dir = data_dir + "/nsm";
    local.sandbox_binary = sandbox.empty() ? SelfDir() + "/enclavia-sandbox" : sandbox;
    auto provider = host::LocalProvider::Create(local);
    if (!provider) {
      return Fail(provider.error().message());
    }
    auto root = ReadFile(local.ca_dir + "/root.pem", 1 << 20);
    if (!root) {
      return Fail("cannot read the simulator root: " + root.error().message());
    }
    options.roots_pem.emplace_back(root->begin(), root->end());
    options.provider = std::move(*provider);
  } else {
    host::NitroOptions nitro;
    nitro.nitro_cli = nitro_cli;
    options.provider = std::make_unique<host::NitroProvider>(nitro);
  }
  options.data_dir = host_dir;
  options.listen = *listen;
  options.public_host = public_host;
  options.relay.idle_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(idle_timeout_s * 1000));
  if (!tls_cert.empty()) {
    options.relay.tls = host::TlsFiles{tls_cert, tls_key};
  }
  options.io_threads = threads;
  options.terminate_on_exit = terminate_on_exit;

  // Signals are taken by sigwait below, so block them before any thread starts.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto agent = host::Agent::Create(std::move(options));
  if (!agent) {
    return Fail(agent.error().message());
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  (void)WriteFileAtomic(host_dir + "/pid",
                        ByteSpan(reinterpret_cast<const uint8_t*>(pid.data()), pid.size()));
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  (*agent)->Stop();
  return 0;
}
