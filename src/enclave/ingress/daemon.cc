// SPDX-License-Identifier: Apache-2.0
#include "enclave/ingress/daemon.h"

#include <utility>

#include "lib/base/flags.h"
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
  auto source = std::make_shared<channel::AttestationSource>(std::move(nsm),
                                                             static_key.public_key, source_options);
  if (auto document = source->Cached(); !document) {
    return std::move(document).error().WithContext("cannot attest");
  }

  std::unique_ptr<Daemon> daemon(new Daemon());
  daemon->public_key_ = static_key.public_key;

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
  ASSIGN_OR_RETURN(daemon->ingress_,
                   Ingress::Create(io, std::move(ingress), std::move(static_key), source));
  return daemon;
}

Daemon::~Daemon() { Stop(); }

void Daemon::Stop() {
  if (ingress_ != nullptr) {
    ingress_->Stop();
  }
  if (attestation_ != nullptr) {
    attestation_->Stop();
  }
}

Result<DaemonFlags> ParseDaemonFlags(const std::vector<std::string>& args) {
  DaemonFlags flags;
  ASSIGN_OR_RETURN(std::vector<Flag> parsed, SplitFlags(args, {"--help", "-h"}));
  for (const Flag& flag : parsed) {
    if (flag.value.empty()) {
      flags.help = true;
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
  return options;
}

}  // namespace enclavia::enclave
