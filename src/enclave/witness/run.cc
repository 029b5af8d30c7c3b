// SPDX-License-Identifier: Apache-2.0
// RunWitness: the process around WitnessServer (NSM, verifier, signals).
#include <signal.h>

#include <cstdio>
#include <string>

#include "enclave/witness/server.h"
#include "lib/attestation/nsm_socket.h"
#include "lib/base/encoding.h"

namespace enclavia::enclave {
namespace {

void LogLine(std::string_view line) {
  std::fprintf(stderr, "enclavia-witness: %.*s\n", static_cast<int>(line.size()), line.data());
}

}  // namespace

int RunWitness(const WitnessFlags& flags) {
  // Signals are taken synchronously below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto listen = net::ParseAddress(flags.listen);
  if (!listen) {
    LogLine(listen.error().message());
    return 1;
  }
  auto nsm = attestation::OpenNsm(flags.nsm_path);
  if (!nsm) {
    LogLine(nsm.error().message());
    return 1;
  }
  auto verifier = VerifierFromOwnNsm(**nsm);
  if (!verifier) {
    LogLine(verifier.error().message());
    return 1;
  }
  witness::WitnessState state;
  WitnessServerOptions options;
  options.listen = *listen;
  options.session.verifier = *verifier;
  options.session.allow_debug = flags.allow_debug;
  options.log = LogLine;
  auto server = WitnessServer::Start(state, std::move(options));
  if (!server) {
    LogLine(server.error().message());
    return 1;
  }
  LogLine("serving on " + (*server)->local_address().ToString() + " (witness key " +
          HexEncode(state.public_key()) + (flags.allow_debug ? ", debug clients allowed)" : ")"));
  int sig = 0;
  sigwait(&signals, &sig);
  LogLine("signal " + std::to_string(sig) + ": stopping with " +
          std::to_string(state.volume_count()) + " volumes (state is not kept)");
  (*server)->Stop();
  return 0;
}

}  // namespace enclavia::enclave
