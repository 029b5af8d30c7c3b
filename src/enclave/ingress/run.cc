// SPDX-License-Identifier: Apache-2.0
// RunDaemon: the process around Daemon (configuration, NSM, signals). Kept apart from
// daemon.cc so that tests of Daemon link without the NSM device and socket clients.
#include <cstdio>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "enclave/ingress/daemon.h"
#include "lib/attestation/nsm_socket.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"

namespace enclavia::enclave {
namespace {

constexpr size_t kMaxConfigSize = 1 << 20;

void LogLine(std::string_view line) {
  std::fprintf(stderr, "enclavia-ingress: %.*s\n", static_cast<int>(line.size()), line.data());
}

}  // namespace

int RunDaemon(const DaemonFlags& flags) {
  auto text = ReadFile(flags.config_path, kMaxConfigSize);
  if (!text) {
    LogLine(text.error().message());
    return 1;
  }
  auto config = config::ParseEnclaveConfig(AsString(*text));
  if (!config) {
    LogLine(config.error().message());
    return 1;
  }
  auto options = DaemonOptionsFor(*config, flags);
  if (!options) {
    LogLine(options.error().message());
    return 1;
  }
  if (options->allowed_ports.empty()) {
    LogLine("app.port is not set: channels can open no stream");
  }
  options->log = LogLine;
  auto nsm = attestation::OpenNsm(flags.nsm_path);
  if (!nsm) {
    LogLine(nsm.error().message());
    return 1;
  }
  boost::asio::io_context io;
  auto daemon = Daemon::Create(io, std::shared_ptr<attestation::Nsm>(std::move(*nsm)),
                               std::move(*options));
  if (!daemon) {
    LogLine(daemon.error().message());
    return 1;
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) {
      LogLine("signal " + std::to_string(sig) + ": stopping");
    }
    (*daemon)->Stop();
    io.stop();
  });
  LogLine("channels on " + (*daemon)->ingress_address().ToString() + ", attestation on " +
          (*daemon)->attestation_address().ToString() + " (static key " +
          HexEncode((*daemon)->static_public_key()) + ")");
  io.run();
  auto stats = (*daemon)->ingress_stats();
  auto audit = (*daemon)->attestation_stats();
  LogLine("channels " + std::to_string(stats.channels_accepted) + " accepted, " +
          std::to_string(stats.handshakes_failed) + " handshakes failed; documents " +
          std::to_string(audit.served) + " served, " + std::to_string(audit.errors) + " errors");
  return 0;
}

}  // namespace enclavia::enclave
