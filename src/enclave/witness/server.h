// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_WITNESS_SERVER_H_
#define ENCLAVIA_ENCLAVE_WITNESS_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "lib/attestation/nsm.h"
#include "lib/attestation/verifier.h"
#include "lib/base/result.h"
#include "lib/net/address.h"
#include "lib/sys/fd.h"
#include "lib/witness/state.h"

// enclavia-witness (docs/witness.md): an ordinary app inside its own enclave image. It serves the
// witness protocol on a local TCP port; the enclave's ingress terminates the attested channel in
// front of it, so a client has checked the witness's PCRs before it sends a byte, and the witness
// checks the client's attestation in the protocol's Hello.
namespace enclavia::enclave {

struct WitnessServerOptions {
  net::Address listen;  // tcp:127.0.0.1:7000 in the image; port 0 picks one (tests).
  witness::SessionOptions session;
  size_t max_connections = 256;  // Beyond: accepted and closed at once.
  // log receives one line per commit and per refused handshake; never keys.
  std::function<void(std::string_view)> log;
};

// WitnessServer accepts connections on a thread of its own and runs each on its own thread
// (blocking I/O: a witness serves a handful of enclaves). `state` must outlive the server.
class WitnessServer {
 public:
  // Start binds and starts accepting; kIo if the address cannot be bound.
  static Result<std::unique_ptr<WitnessServer>> Start(witness::WitnessState& state,
                                                      WitnessServerOptions options);
  // The destructor calls Stop.
  ~WitnessServer();
  WitnessServer(const WitnessServer&) = delete;
  WitnessServer& operator=(const WitnessServer&) = delete;

  // local_address is the bound address (with the real port).
  net::Address local_address() const { return local_address_; }
  // Stop closes the listener and every connection and waits for their threads. Idempotent.
  void Stop();

 private:
  WitnessServer(witness::WitnessState& state, WitnessServerOptions options)
      : state_(state), options_(std::move(options)) {}
  void AcceptLoop();
  void Serve(int fd);
  void Log(std::string_view line) const;

  witness::WitnessState& state_;
  WitnessServerOptions options_;
  net::Address local_address_;
  sys::UniqueFd listener_;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable idle_;
  std::set<int> connections_;  // Guarded by mu_; open connection descriptors.
  size_t active_ = 0;          // Guarded by mu_; connection threads still running.
};

// VerifierFromOwnNsm asks `nsm` for a document and trusts the root of its cabundle (the root the
// hardware, or the local NSM simulator, signs with): a client's document must chain to the same
// root as the witness's own.
Result<std::shared_ptr<const attestation::Verifier>> VerifierFromOwnNsm(attestation::Nsm& nsm);

inline constexpr std::string_view kWitnessUsage =
    "usage: enclavia-witness [--listen ADDR] [--nsm PATH] [--allow-debug]\n"
    "The anti-rollback witness (docs/witness.md); state is kept in memory only.\n"
    "  --listen ADDR   where to serve (default tcp:127.0.0.1:7000, behind the ingress)\n"
    "  --nsm PATH      the NSM: a device or the local sandbox's socket (default /dev/nsm)\n"
    "  --allow-debug   accept clients in debug mode (all-zero PCR0); never in production\n";

struct WitnessFlags {
  std::string listen = "tcp:127.0.0.1:7000";
  std::string nsm_path = "/dev/nsm";
  bool allow_debug = false;
  bool help = false;
};

// ParseWitnessFlags parses argv without argv[0] (`--flag VALUE` or `--flag=VALUE`); an unknown or
// incomplete flag is kInvalidArgument naming it.
Result<WitnessFlags> ParseWitnessFlags(const std::vector<std::string>& args);

// RunWitness is the program after flag parsing: opens the NSM, builds the verifier, serves until
// SIGTERM or SIGINT. Returns the exit code. Logs to stderr, prefixed "enclavia-witness: ".
int RunWitness(const WitnessFlags& flags);

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_WITNESS_SERVER_H_
