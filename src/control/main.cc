// SPDX-License-Identifier: Apache-2.0
// enclavia-control: the control plane (docs/platform-api.md). Flags → Control; runs until
// SIGTERM or SIGINT.
#include <pthread.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "control/control.h"

namespace {

int Fail(const std::string& message) {
  std::cerr << "enclavia-control: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"enclavia-control: the Enclavia control plane (REST/JSON on loopback)"};
  enclavia::control::ControlOptions options;
  std::string listen_text = "tcp:127.0.0.1:0";
  app.add_option("--data-dir", options.data_dir, "Data directory DIR (state in DIR/control)")
      ->required();
  app.add_option("--listen", listen_text, "API address, tcp:HOST:PORT or unix:PATH")
      ->default_val("tcp:127.0.0.1:0");
  app.add_option("--host", options.host,
                 "Host agent: an address, or a file holding it (default DIR/host/address)");
  app.add_option("--host-token", options.host_token,
                 "File holding the host agent's API token (default DIR/host/token)");
  unsigned auto_activate_s = 5;
  if (const char* env = std::getenv("ENCLAVIA_AUTO_ACTIVATE"); env != nullptr &&
                                                               std::string(env) == "0") {
    auto_activate_s = 0;  // `enclavia up` passes its environment on: tests turn it off so.
  }
  app.add_option("--auto-activate-interval", auto_activate_s,
                 "Seconds between activations of due upgrades (0: never; env "
                 "ENCLAVIA_AUTO_ACTIVATE=0 too)");
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
  options.listen = *listen;
  options.auto_activate_interval = std::chrono::seconds(auto_activate_s);

  // Block the stop signals in every thread (the control plane's threads inherit the mask) and
  // wait for them here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto control = enclavia::control::Control::Create(options);
  if (!control) {
    return Fail(control.error().message());
  }
  std::cout << "enclavia-control: listening on " << (*control)->address().ToString()
            << std::endl;
  int signal = 0;
  sigwait(&stop_signals, &signal);
  (*control)->Stop();
  std::cout << "enclavia-control: stopped" << std::endl;
  return 0;
}
