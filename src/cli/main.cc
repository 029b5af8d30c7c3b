// SPDX-License-Identifier: Apache-2.0
// enclavia: the command-line tool. Flags are parsed here; each command lives in its own file.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/attest.h"
#include "lib/crypto/random.h"

int main(int argc, char** argv) {
  if (auto init = enclavia::crypto::Init(); !init) {
    std::cerr << "enclavia: " << init.error().message() << "\n";
    return 1;
  }
  CLI::App app{"Enclavia: trusted enclaves, as easy as containers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "enclavia 0.1.0");
  CLI::App* attest = app.add_subcommand("attest", "Nitro attestation documents");
  attest->require_subcommand(1);

  enclavia::cli::AttestVerifyFlags verify;
  CLI::App* v = attest->add_subcommand("verify", "Verify an attestation document");
  v->add_option("FILE", verify.file, "Document: raw CBOR or base64 text")->required();
  v->add_option("--root", verify.roots, "Also trust the root certificate(s) in this PEM file");
  v->add_flag("--no-aws-root", verify.no_aws_root, "Do not trust the AWS Nitro root G1");
  v->add_option("--at", verify.at, "Verification time: RFC 3339 or 'now'")->default_val("now");
  v->add_option("--pcr", verify.pcrs, "Require PCR N to equal HEX (N=HEX)");
  v->add_option("--nonce", verify.nonce_hex, "Require this nonce (hex)");
  v->add_option("--public-key", verify.public_key_hex, "Require this public_key (hex)");
  v->add_option("--max-age", verify.max_age_s, "Reject documents older than this many seconds");
  v->add_flag("--allow-debug", verify.allow_debug, "Accept debug-mode enclaves (PCR0 zero)");
  v->add_flag("--json", verify.json, "Print the result as JSON");

  enclavia::cli::AttestSimulateFlags simulate;
  CLI::App* s = attest->add_subcommand("simulate", "Sign a document with the local NSM simulator");
  s->add_option("--state-dir", simulate.state_dir, "Simulator state (root CA)")->required();
  s->add_option("--pcr", simulate.pcrs, "Set PCR N to HEX (48 bytes) at boot (N=HEX)");
  s->add_option("--user-data", simulate.user_data_hex, "user_data (hex, at most 1024 bytes)");
  s->add_option("--nonce", simulate.nonce_hex, "nonce (hex, at most 1024 bytes)");
  s->add_option("--public-key", simulate.public_key_hex, "public_key (hex, at most 1024 bytes)");
  s->add_flag("--debug", simulate.debug, "Simulate a debug-mode enclave (PCR0/1/2/8 zero)");
  s->add_option("-o,--output", simulate.output, "Where to write the document (raw CBOR)")
      ->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (v->parsed()) {
    return enclavia::cli::RunAttestVerify(verify, std::cout, std::cerr);
  }
  if (s->parsed()) {
    return enclavia::cli::RunAttestSimulate(simulate, std::cout, std::cerr);
  }
  return 2;
}
