// SPDX-License-Identifier: Apache-2.0
// RunDaemon: the process around Daemon (configuration, NSM, signals). Kept apart from
// daemon.cc so that tests of Daemon link without the NSM device and socket clients.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "enclave/ingress/daemon.h"
#include "lib/attestation/nsm_socket.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/sys/fd.h"
#include "lib/transport/transport.h"

namespace enclavia::enclave {
namespace {

constexpr size_t kMaxConfigSize = 1 << 20;

void LogLine(std::string_view line) {
  std::fprintf(stderr, "enclavia-ingress: %.*s\n", static_cast<int>(line.size()), line.data());
}

// Say writes one line to init (ready pipe or control socket); a missing descriptor is no-op.
void Say(int fd, const std::string& line) {
  if (fd < 0) {
    return;
  }
  std::string text = line + "\n";
  (void)sys::SendFull(fd, AsBytes(text));
}

// AskInit sends `request` on the control socket and waits for `expected` (init stops the app
// and the storage daemon first, which may take the app's grace period and a volume flush).
Result<void> AskInit(int fd, const std::string& request, std::string_view expected) {
  if (fd < 0) {
    return Error(Code::kFailedPrecondition, "no control channel to init");
  }
  Say(fd, request);
  std::string line;
  char c = 0;
  while (line.size() < 256) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return Error(Code::kUnavailable, "init closed the control channel");
    }
    if (c == '\n') {
      break;
    }
    line.push_back(c);
  }
  if (line != expected) {
    return Error(Code::kFailedPrecondition, "init answered \"" + line.substr(0, 64) + "\"");
  }
  return Ok();
}

void WireUpgrade(UpgradeDaemonOptions& upgrade, const config::EnclaveConfig& config,
                 const DaemonFlags& flags) {
  const int control = flags.control_fd;
  const int ready = flags.ready_fd;
  if (control >= 0) {
    upgrade.quiesce = [control] { return AskInit(control, "quiesce", "quiesced"); };
    upgrade.resume = [control] { Say(control, "resume"); };
    upgrade.on_superseded = [control] { Say(control, "superseded"); };
  } else {
    upgrade.on_superseded = [] { LogLine("superseded: refusing new channels"); };
  }
  upgrade.on_ready = [ready] {
    LogLine("ready");
    Say(ready, "ready upgrade");
  };
  if (config.storage.enabled) {
    auto mode = transport::DetectMode();
    auto nsm = attestation::OpenNsm(flags.nsm_path);  // Its own connection: the KMS client's.
    if (mode && nsm) {
      upgrade.rings = MakeKmsRingStore(transport::EnclaveToParent(*mode, transport::kStoragePort),
                                       transport::EnclaveToParent(*mode, transport::kKmsPort),
                                       std::shared_ptr<attestation::Nsm>(std::move(*nsm)));
    } else {
      LogLine("no volume key handover: cannot reach the NSM or the parent");
    }
  }
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
  const bool upgrades = options->upgrade.has_value();
  if (upgrades) {
    WireUpgrade(*options->upgrade, *config, flags);
  }
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
  if (!upgrades) {
    Say(flags.ready_fd, "ready plain");  // No handover to wait for (with upgrades: on_ready).
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
