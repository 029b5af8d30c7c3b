// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLIENT_TRUST_H_
#define ENCLAVIA_CLIENT_TRUST_H_

#include <string>

#include "lib/base/result.h"
#include "lib/channel/trust.h"
#include "lib/config/trust_file.h"

namespace enclavia::client {

// PolicyFromTrustFile builds a TrustPolicy: "aws-nitro" trusts the built-in AWS Nitro root;
// any other root is a PEM file, relative paths taken from `base_dir`. Errors name the file.
Result<channel::TrustPolicy> PolicyFromTrustFile(const config::TrustFile& trust,
                                                 const std::string& base_dir);

// LoadTrustPolicy reads and parses the trust file at `path` (docs/trust-file.md).
Result<channel::TrustPolicy> LoadTrustPolicy(const std::string& path);

}  // namespace enclavia::client

#endif  // ENCLAVIA_CLIENT_TRUST_H_
