// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLI_BUILD_H_
#define ENCLAVIA_CLI_BUILD_H_

#include <iosfwd>
#include <string>
#include <vector>

// `enclavia build`, `enclavia describe` and `enclavia reproduce`. Each Run* returns the process
// exit code: 0 success (reproduce: the PCRs match), 1 failure or mismatch (a line on `err` says
// why), 2 bad usage.
namespace enclavia::cli {

struct BuildFlags {
  std::string dir = ".";
  std::string output;
  bool json = false;
  bool update_lock = false;
  std::string sign_cert;
  std::string sign_key;
  bool progress = true;  // shown only when `err` is a terminal
};
int RunBuild(const BuildFlags& flags, std::ostream& out, std::ostream& err);

struct DescribeFlags {
  std::string file;
  bool json = false;
};
int RunDescribe(const DescribeFlags& flags, std::ostream& out, std::ostream& err);

struct ReproduceFlags {
  std::string dir = ".";
  std::string expect_eif;
  std::string pcrs_json;
  std::string attestation;
  std::vector<std::string> roots;  // extra trusted roots for --attestation
  bool no_aws_root = false;
  std::string at = "now";
  bool json = false;
};
int RunReproduce(const ReproduceFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace enclavia::cli

#endif  // ENCLAVIA_CLI_BUILD_H_
