// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_INGRESS_DAEMON_H_
#define ENCLAVIA_ENCLAVE_INGRESS_DAEMON_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "enclave/ingress/attestation_service.h"
#include "enclave/ingress/ingress.h"
#include "enclave/upgrade/service.h"
#include "enclave/upgrade/state.h"
#include "lib/attestation/nsm.h"
#include "lib/base/result.h"
#include "lib/config/enclave_config.h"
#include "lib/crypto/x25519.h"
#include "lib/net/address.h"

// enclavia-ingress, the enclave's network face (docs/runtime.md): the channel terminator on
// vsock port 5000 (Ingress) and the attestation service on port 5001 (AttestationService), on
// one io_context, sharing one Noise static key that exists only in this process's memory and
// one AttestationSource over the NSM. enclavia-init starts it and restarts it if it dies (a
// restart means a new static key: clients re-verify).
namespace enclavia::enclave {

struct UpgradeDaemonOptions {
  net::Address service_listen;  // The enclave's upgrade service (vsock port 5005).
  net::Address parent_upgrade;  // The host's upgrade service (parent port 5006).
  // fetch_timeout bounds the wait for the host's chain; a host that serves no upgrade service
  // in that time leaves the enclave unchained (as a host serving an empty chain would).
  std::chrono::milliseconds fetch_timeout{2000};
  std::vector<Bytes> pinned_control_keys;  // SPKI DER (UpgradeOptions).
  // verifier for receipt documents; null: the root of our own NSM (VerifierFromOwnNsm).
  std::shared_ptr<const attestation::Verifier> verifier;
  std::function<Result<void>()> quiesce;  // UpgradeServiceOptions.
  std::function<void()> resume;
  std::function<void()> on_superseded;
  std::shared_ptr<RingStore> rings;
  // on_ready runs once the enclave may start its application: at Create, or (for a successor)
  // after its handover.
  std::function<void()> on_ready;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  std::function<uint64_t()> now_unix;  // The enclave's clock (tests); default: the system's.
};

struct DaemonOptions {
  net::Address ingress_listen;
  net::Address attestation_listen;
  // Application ports streams may open (app.port from enclave.toml).
  std::set<uint16_t> allowed_ports;
  size_t max_audit_connections = 64;
  std::chrono::milliseconds audit_timeout{5000};
  std::chrono::milliseconds document_refresh{std::chrono::minutes(5)};
  // log receives one line per event (both listeners); never keys or plaintext.
  std::function<void(std::string_view)> log;
  // upgrade, when set, makes the daemon take part in upgrades (docs/upgrade.md).
  std::optional<UpgradeDaemonOptions> upgrade;
};

class Daemon {
 public:
  // Create generates the static key, primes the attestation cache (an NSM that cannot attest
  // fails here, not in the first handshake), and starts both listeners on `io`.
  static Result<std::unique_ptr<Daemon>> Create(boost::asio::io_context& io,
                                                std::shared_ptr<attestation::Nsm> nsm,
                                                DaemonOptions options);
  ~Daemon();

  const crypto::X25519PublicKey& static_public_key() const { return public_key_; }
  net::Address ingress_address() const { return ingress_->local_address(); }
  net::Address attestation_address() const { return attestation_->local_address(); }
  IngressStats ingress_stats() const { return ingress_->stats(); }
  // upgrade_state is null without DaemonOptions::upgrade.
  const std::shared_ptr<UpgradeState>& upgrade_state() const { return upgrade_state_; }
  net::Address upgrade_address() const {
    return upgrade_service_ ? upgrade_service_->local_address() : net::Address();
  }
  AttestationServiceStats attestation_stats() const { return attestation_->stats(); }
  // Stop closes both listeners and every connection. Idempotent.
  void Stop();

 private:
  Daemon() = default;
  // StartUpgrade fetches and checks the chain, starts the upgrade service and returns the
  // successor's handover server.
  Result<std::shared_ptr<HandoverServer>> StartUpgrade(
      const UpgradeDaemonOptions& options, const std::shared_ptr<attestation::Nsm>& nsm,
      const std::shared_ptr<channel::AttestationSource>& source,
      const std::function<void(std::string_view)>& log);
  crypto::X25519PublicKey public_key_{};
  std::unique_ptr<Ingress> ingress_;
  std::unique_ptr<AttestationService> attestation_;
  std::shared_ptr<UpgradeState> upgrade_state_;
  std::unique_ptr<UpgradeService> upgrade_service_;
};

inline constexpr std::string_view kDaemonUsage =
    "usage: enclavia-ingress [--config PATH] [--nsm PATH] [--listen ADDR]\n"
    "                        [--attestation-listen ADDR] [--upgrade-listen ADDR]\n"
    "                        [--parent-upgrade ADDR] [--no-upgrade] [--ready-fd N]\n"
    "                        [--control-fd N]\n"
    "The enclave's channel terminator (vsock port 5000) and attestation service (port 5001).\n"
    "  --config PATH              enclave configuration (default /etc/enclavia/enclave.toml)\n"
    "  --nsm PATH                 the NSM: a device or the local sandbox's socket (default /dev/nsm)\n"
    "  --listen ADDR              channel listener (default: vsock port 5000, or its local mapping)\n"
    "  --attestation-listen ADDR  attestation listener (default: vsock port 5001, or its mapping)\n"
    "  --upgrade-listen ADDR      upgrade service (default: vsock port 5005, or its mapping)\n"
    "  --parent-upgrade ADDR      the host's upgrade service (default: parent port 5006)\n"
    "  --no-upgrade               take no part in upgrades (no chain, no upgrade service)\n"
    "  --ready-fd N               write \"ready PHASE\" here once the app may start\n"
    "  --control-fd N             a socket to init: \"quiesce\", \"resume\", \"superseded\"\n";

struct DaemonFlags {
  std::string config_path = "/etc/enclavia/enclave.toml";
  std::string nsm_path = "/dev/nsm";
  std::optional<net::Address> ingress_listen;
  std::optional<net::Address> attestation_listen;
  std::optional<net::Address> upgrade_listen;
  std::optional<net::Address> parent_upgrade;
  bool upgrade = true;
  int ready_fd = -1;
  int control_fd = -1;
  bool help = false;
};

// ParseDaemonFlags parses argv without argv[0] (`--flag VALUE` or `--flag=VALUE`); an unknown
// or incomplete flag is kInvalidArgument naming it.
Result<DaemonFlags> ParseDaemonFlags(const std::vector<std::string>& args);

// DaemonOptionsFor derives the options from the enclave configuration: the listeners from the
// flags, else transport::EnclaveListen(DetectMode(), port); allowed_ports = {app.port} (none
// when app.port is 0).
Result<DaemonOptions> DaemonOptionsFor(const config::EnclaveConfig& config,
                                       const DaemonFlags& flags);

// RunDaemon is the whole program after flag parsing: reads the configuration, opens the NSM,
// serves until SIGTERM or SIGINT, and returns the exit code (0 after a signal, 1 when it cannot
// start). Logs to stderr, one line per event, prefixed "enclavia-ingress: ".
int RunDaemon(const DaemonFlags& flags);

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_INGRESS_DAEMON_H_
