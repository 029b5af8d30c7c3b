// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLI_CHANNEL_CMDS_H_
#define ENCLAVIA_CLI_CHANNEL_CMDS_H_

#include <cstdint>
#include <iosfwd>
#include <string>

// `enclavia proxy` and `enclavia connect`: the client side of attested channels. Exit codes: 0
// success, 1 failure (one line on `err`), 2 bad usage.
namespace enclavia::cli {

struct TlsFlags {
  std::string ca_file;     // wss://: trust these CAs instead of the system's.
  bool insecure = false;   // wss://: skip the certificate check (the channel is still verified).
};

struct ProxyFlags {
  std::string listen;  // tcp:IP:PORT
  std::string enclave; // ws:// or wss:// URL of the relay
  std::string trust;   // trust file
  uint16_t port = 80;
  TlsFlags tls;
};

// RunProxy runs until SIGINT/SIGTERM. It prints "enclavia proxy: listening on ADDR → URL" on
// `out` once the first channel is verified, and logs verified PCRs and reconnects on `err`.
int RunProxy(const ProxyFlags& flags, std::ostream& out, std::ostream& err);

struct ConnectFlags {
  std::string enclave;
  std::string trust;
  uint16_t port = 80;
  bool print_attestation = false;  // JSON of the verified document on `err`
  bool attestation_only = false;   // print it on `out` and exit without opening a stream
  TlsFlags tls;
};

// RunConnect pipes stdin to a stream and the stream to stdout, like nc.
int RunConnect(const ConnectFlags& flags, std::ostream& out, std::ostream& err);

struct VerifyFlags {
  std::string enclave;  // ws:// or wss:// URL of the relay
  std::string trust;
  bool json = false;
  TlsFlags tls;
};

// RunVerify completes an attested handshake with the enclave, opens no stream, and prints what
// was verified: the root, the PCRs that matched, debug mode, the document's age and the key the
// channel is bound to. Exit 1 (one line naming the failed check) when the trust policy refuses.
int RunVerify(const VerifyFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace enclavia::cli

#endif  // ENCLAVIA_CLI_CHANNEL_CMDS_H_
