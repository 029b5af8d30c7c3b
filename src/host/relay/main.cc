// SPDX-License-Identifier: Apache-2.0
// enclavia-relay: the host's blind WebSocket relay to an enclave (docs/relay.md). Flags → Relay.
#include <csignal>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "host/relay/relay.h"
#include "lib/sys/process.h"

namespace {

namespace asio = boost::asio;
using enclavia::host::Relay;

int Fail(const std::string& message) {
  std::cerr << "enclavia-relay: " << message << "\n";
  return 1;
}

// WaitThenStop stops `io` once no connection is left, or after `budget` (closing handshakes with
// clients that do not read are cut by the relay within a few seconds anyway).
void WaitThenStop(asio::io_context& io, asio::steady_timer& timer, const Relay& relay, int budget) {
  timer.expires_after(std::chrono::milliseconds(100));
  timer.async_wait([&io, &timer, &relay, budget](boost::system::error_code ec) {
    if (ec || relay.stats().active == 0 || budget <= 0) {
      io.stop();
      return;
    }
    WaitThenStop(io, timer, relay, budget - 1);
  });
}

}  // namespace

int main(int argc, char** argv) {
  enclavia::sys::TuneAllocatorForStreaming();
  CLI::App app{"enclavia-relay: pipes WebSocket clients to an enclave, blindly"};
  std::string listen_text;
  std::string enclave_text;
  std::string tls_cert;
  std::string tls_key;
  double idle_timeout_s = 120;
  unsigned threads = 1;
  enclavia::host::RelayOptions options;
  app.add_option("--listen", listen_text, "WebSocket address, tcp:HOST:PORT")->required();
  app.add_option("--enclave", enclave_text,
                 "Enclave ingress: unix:PATH, tcp:HOST:PORT, vsock:CID:PORT")
      ->required();
  app.add_option("--path", options.path, "Accepted WebSocket path")->default_val("/");
  app.add_option("--max-connections", options.max_connections, "Open connections before HTTP 503")
      ->default_val(1024);
  app.add_option("--max-message", options.max_message_size, "Largest client message (bytes)")
      ->default_val(65535);
  app.add_option("--idle-timeout", idle_timeout_s,
                 "Close after this many seconds without a message")
      ->default_val(120);
  app.add_option("--tls-cert", tls_cert, "Serve wss://: certificate chain (PEM)");
  app.add_option("--tls-key", tls_key, "Serve wss://: private key (PEM)");
  app.add_option("--threads", threads, "Threads running the relay")->default_val(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      return app.exit(e);
    }
    return Fail(e.what());
  }

  auto listen = enclavia::net::ParseAddress(listen_text);
  if (!listen) {
    return Fail("--listen: " + listen.error().message());
  }
  auto enclave = enclavia::net::ParseAddress(enclave_text);
  if (!enclave) {
    return Fail("--enclave: " + enclave.error().message());
  }
  if (tls_cert.empty() != tls_key.empty()) {
    return Fail("--tls-cert and --tls-key go together");
  }
  if (threads < 1 || threads > 256) {
    return Fail("--threads must be 1..256");
  }
  if (!(idle_timeout_s >= 0 && idle_timeout_s < 1e7)) {
    return Fail("--idle-timeout must be 0 (never) or a number of seconds");
  }
  options.listen = *listen;
  options.enclave = *enclave;
  options.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(idle_timeout_s * 1000));
  if (!tls_cert.empty()) {
    options.tls = enclavia::host::TlsFiles{tls_cert, tls_key};
  }
  bool tls = options.tls.has_value();

  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context io(static_cast<int>(threads));
  auto relay = Relay::Create(io, std::move(options));
  if (!relay) {
    return Fail(relay.error().message());
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer drain(io);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) {
      (*relay)->Stop();
      WaitThenStop(io, drain, **relay, 50);
    }
  });
  std::cout << "enclavia-relay: listening on " << (*relay)->local_address().ToString()
            << (tls ? " (wss)" : " (ws)") << " \u2192 " << enclave->ToString() << std::endl;

  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads; ++i) {
    workers.emplace_back([&io] { io.run(); });
  }
  io.run();
  for (auto& worker : workers) {
    worker.join();
  }
  return 0;
}
