// SPDX-License-Identifier: Apache-2.0
#include "enclave/ingress/daemon.h"

#include <utility>

#include "enclave/witness/server.h"
#include "lib/attestation/verifier.h"
#include "lib/base/flags.h"
#include "lib/upgrade/wire.h"
#include "lib/transport/transport.h"

namespace enclavia::enclave {

Result<std::unique_ptr<Daemon>> Daemon::Create(boost::asio::io_context& io,
                                               std::shared_ptr<attestation::Nsm> nsm,
                                               DaemonOptions options) {
  if (nsm == nullptr) {
    return Error(Code::kInvalidArgument, "ingress daemon: no NSM");
  }
  crypto::X25519Keypair static_key = crypto::X25519Keypair::Generate();
  channel::AttestationSource::Options source_options;
  source_options.refresh_after = options.document_refresh;
  std::shared_ptr<attestation::Nsm> nsm_for_upgrade = nsm;  // Used before any concurrency.
  auto source = std::make_shared<channel::AttestationSource>(std::move(nsm),
                                                             static_key.public_key, source_options);
  if (auto document = source->Cached(); !document) {
    return std::move(document).error().WithContext("cannot attest");
  }

  std::unique_ptr<Daemon> daemon(new Daemon());
  daemon->public_key_ = static_key.public_key;
  std::shared_ptr<HandoverServer> handover;
  if (options.upgrade.has_value()) {
    ASSIGN_OR_RETURN(handover, daemon->StartUpgrade(*options.upgrade, nsm_for_upgrade, source,
                                                    options.log));
  }

  AttestationServiceOptions audit;
  audit.listen = options.attestation_listen;
  audit.max_connections = options.max_audit_connections;
  audit.timeout = options.audit_timeout;
  audit.log = options.log;
  ASSIGN_OR_RETURN(daemon->attestation_, AttestationService::Create(io, std::move(audit), source));

  IngressOptions ingress;
  ingress.listen = options.ingress_listen;
  ingress.allowed_ports = options.allowed_ports;
  ingress.log = options.log;
  if (daemon->upgrade_state_ != nullptr) {
    std::weak_ptr<UpgradeState> weak = daemon->upgrade_state_;
    ingress.admit = [weak] {
      auto state = weak.lock();
      return state == nullptr || state->phase() != UpgradePhase::kSuperseded;
    };
    ingress.app_streams = [weak] {
      auto state = weak.lock();
      return state == nullptr || state->phase() != UpgradePhase::kAwaitingHandover;
    };
    ingress.handover = [weak, handover](const std::shared_ptr<tunnel::Engine>& engine,
                                        mux::StreamId id) -> std::shared_ptr<tunnel::StreamSink> {
      auto state = weak.lock();
      if (state == nullptr || state->phase() != UpgradePhase::kAwaitingHandover) {
        return nullptr;
      }
      return handover->Sink(engine, id);
    };
  }
  ASSIGN_OR_RETURN(daemon->ingress_,
                   Ingress::Create(io, std::move(ingress), std::move(static_key), source));
  if (daemon->upgrade_state_ != nullptr &&
      daemon->upgrade_state_->phase() != UpgradePhase::kAwaitingHandover &&
      options.upgrade->on_ready) {
    options.upgrade->on_ready();
  }
  return daemon;
}

Result<std::shared_ptr<HandoverServer>> Daemon::StartUpgrade(
    const UpgradeDaemonOptions& options, const std::shared_ptr<attestation::Nsm>& nsm,
    const std::shared_ptr<channel::AttestationSource>& source,
    const std::function<void(std::string_view)>& log) {
  auto host = upgrade::FetchChain(options.parent_upgrade, options.fetch_timeout);
  if (!host) {
    if (host.error().code() != Code::kUnavailable) {
      return std::move(host).error().WithContext("the host's upgrade chain");
    }
    if (log) {
      log("no upgrade service on the host (" + host.error().message() + "): unchained");
    }
    host = upgrade::HostChain{};
  }
  UpgradeOptions state_options;
  state_options.source = source;
  state_options.verifier = options.verifier;
  if (state_options.verifier == nullptr) {
    ASSIGN_OR_RETURN(state_options.verifier, VerifierFromOwnNsm(*nsm));
  }
  ASSIGN_OR_RETURN(Bytes own, source->Cached());
  ASSIGN_OR_RETURN(attestation::ParsedDocument parsed, attestation::ParseUnverified(own));
  state_options.allow_debug = attestation::IsDebugMode(parsed.document);
  state_options.pinned_control_keys = options.pinned_control_keys;
  state_options.now_unix = options.now_unix;
  ASSIGN_OR_RETURN(std::unique_ptr<UpgradeState> state,
                   UpgradeState::Boot(*host, std::move(state_options)));
  upgrade_state_ = std::move(state);
  if (log) {
    log(std::string("upgrade chain: ") + UpgradePhaseName(upgrade_state_->phase()) + " (" +
        std::to_string(upgrade_state_->chain().size()) + " entries)");
  }
  UpgradeServiceOptions service;
  service.listen = options.service_listen;
  service.parent_upgrade = options.parent_upgrade;
  service.quiesce = options.quiesce;
  service.resume = options.resume;
  service.on_superseded = options.on_superseded;
  service.rings = options.rings;
  service.timeout = options.timeout;
  service.log = log;
  ASSIGN_OR_RETURN(upgrade_service_, UpgradeService::Start(upgrade_state_, std::move(service)));
  return std::make_shared<HandoverServer>(
      SuccessorHandler(upgrade_state_, public_key_, options.rings, options.on_ready));
}

Daemon::~Daemon() { Stop(); }

void Daemon::Stop() {
  if (upgrade_service_ != nullptr) {
    upgrade_service_->Stop();
  }
  if (ingress_ != nullptr) {
    ingress_->Stop();
  }
  if (attestation_ != nullptr) {
    attestation_->Stop();
  }
}

Result<DaemonFlags> ParseDaemonFlags(const std::vector<std::string>& args) {
  DaemonFlags flags;
  ASSIGN_OR_RETURN(std::vector<Flag> parsed, SplitFlags(args, {"--help", "-h", "--no-upgrade"}));
  for (const Flag& flag : parsed) {
    if (flag.name == "--no-upgrade") {
      flags.upgrade = false;
    } else if (flag.value.empty()) {
      flags.help = true;
    } else if (flag.name == "--ready-fd") {
      ASSIGN_OR_RETURN(flags.ready_fd, DescriptorFlag(flag));
    } else if (flag.name == "--control-fd") {
      ASSIGN_OR_RETURN(flags.control_fd, DescriptorFlag(flag));
    } else if (flag.name == "--upgrade-listen" || flag.name == "--parent-upgrade") {
      auto address = net::ParseAddress(flag.value);
      if (!address) {
        return std::move(address).error().WithContext(flag.name);
      }
      (flag.name == "--upgrade-listen" ? flags.upgrade_listen : flags.parent_upgrade) = *address;
    } else if (flag.name == "--config") {
      flags.config_path = flag.value;
    } else if (flag.name == "--nsm") {
      flags.nsm_path = flag.value;
    } else if (flag.name == "--listen" || flag.name == "--attestation-listen") {
      auto address = net::ParseAddress(flag.value);
      if (!address) {
        return std::move(address).error().WithContext(flag.name);
      }
      (flag.name == "--listen" ? flags.ingress_listen : flags.attestation_listen) = *address;
    } else {
      return UnexpectedFlag(flag);
    }
  }
  return flags;
}

Result<DaemonOptions> DaemonOptionsFor(const config::EnclaveConfig& config,
                                       const DaemonFlags& flags) {
  DaemonOptions options;
  if (!flags.ingress_listen.has_value() || !flags.attestation_listen.has_value()) {
    ASSIGN_OR_RETURN(transport::Mode mode, transport::DetectMode());
    options.ingress_listen = transport::EnclaveListen(mode, transport::kIngressPort);
    options.attestation_listen = transport::EnclaveListen(mode, transport::kAttestationPort);
  }
  if (flags.ingress_listen.has_value()) {
    options.ingress_listen = *flags.ingress_listen;
  }
  if (flags.attestation_listen.has_value()) {
    options.attestation_listen = *flags.attestation_listen;
  }
  if (config.app.port != 0) {
    options.allowed_ports.insert(config.app.port);
  }
  if (flags.upgrade) {
    UpgradeDaemonOptions upgrade;
    if (!flags.upgrade_listen.has_value() || !flags.parent_upgrade.has_value()) {
      ASSIGN_OR_RETURN(transport::Mode mode, transport::DetectMode());
      upgrade.service_listen = transport::EnclaveListen(mode, upgrade::kEnclaveUpgradePort);
      upgrade.parent_upgrade = transport::EnclaveToParent(mode, upgrade::kParentUpgradePort);
    }
    if (flags.upgrade_listen.has_value()) {
      upgrade.service_listen = *flags.upgrade_listen;
    }
    if (flags.parent_upgrade.has_value()) {
      upgrade.parent_upgrade = *flags.parent_upgrade;
    }
    // The measured [upgrade] control_keys: only a genesis naming none but these is accepted.
    upgrade.pinned_control_keys = config.upgrade.control_keys;
    options.upgrade = std::move(upgrade);
  }
  return options;
}

}  // namespace enclavia::enclave
