// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLI_ATTEST_H_
#define ENCLAVIA_CLI_ATTEST_H_

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

// `enclavia attest verify` and `enclavia attest simulate`. Each Run* returns the process exit
// code: 0 success, 1 a document or operation failed (one line on `err` names why), 2 bad usage.
namespace enclavia::cli {

struct AttestVerifyFlags {
  std::string file;                   // Raw CBOR or base64 text.
  std::vector<std::string> roots;     // PEM files of extra trusted roots.
  bool no_aws_root = false;
  std::string at = "now";             // RFC 3339 or "now".
  std::vector<std::string> pcrs;      // "N=HEX".
  std::string nonce_hex;
  std::string public_key_hex;
  std::optional<long long> max_age_s;
  bool allow_debug = false;
  bool json = false;
};

int RunAttestVerify(const AttestVerifyFlags& flags, std::ostream& out, std::ostream& err);

struct AttestSimulateFlags {
  std::string state_dir;
  std::vector<std::string> pcrs;  // "N=HEX", 48-byte values.
  std::string user_data_hex;
  std::string nonce_hex;
  std::string public_key_hex;
  bool debug = false;
  std::string output;
};

int RunAttestSimulate(const AttestSimulateFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace enclavia::cli

#endif  // ENCLAVIA_CLI_ATTEST_H_
