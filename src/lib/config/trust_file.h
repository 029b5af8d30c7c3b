// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CONFIG_TRUST_FILE_H_
#define ENCLAVIA_LIB_CONFIG_TRUST_FILE_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// A client's trust file (TOML): which roots, which measurements, how fresh. docs/trust-file.md.
//
//   roots = ["aws-nitro", "/path/to/local-root.pem"]
//   max_age = "1h"
//   fresh = false
//   allow_debug = false
//   genesis = ["<64 hex digits>"]        # optional: upgrade chains from these genesis hashes
//   [[accept]]
//   PCR0 = "<96 hex digits>"
namespace enclavia::config {

inline constexpr std::string_view kAwsNitroRoot = "aws-nitro";

struct TrustFile {
  // roots: "aws-nitro" (the built-in AWS Nitro root G1) or paths to PEM files, as written.
  std::vector<std::string> roots;
  std::chrono::milliseconds max_age{std::chrono::hours(1)};
  bool fresh = false;
  bool allow_debug = false;
  // accept: any one set must match; every PCR listed in the set must match exactly.
  std::vector<std::map<uint32_t, Bytes>> accept;
  // genesis: upgrade-chain genesis hashes (32 bytes each, docs/formats/upgrade-chain.md) whose
  // descendants are trusted. With at least one, [[accept]] may be absent.
  std::vector<Bytes> genesis;
};

// ParseTrustFile parses and checks a trust file: at least one root, at least one [[accept]] set
// (or genesis hash), each set with at least one PCR<n> (n < 32) of 96 hex digits, each genesis
// 64 hex digits, max_age a positive duration
// ("90s", "15m", "1h", "2d", or a plain number of seconds). Unknown keys are errors. Messages
// are one line, prefixed "trust file: ".
Result<TrustFile> ParseTrustFile(std::string_view toml_text);

// ParseDuration parses "<n>s|m|h|d" or "<n>" seconds.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace enclavia::config

#endif  // ENCLAVIA_LIB_CONFIG_TRUST_FILE_H_
