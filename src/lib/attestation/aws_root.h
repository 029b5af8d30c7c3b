// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_ATTESTATION_AWS_ROOT_H_
#define ENCLAVIA_LIB_ATTESTATION_AWS_ROOT_H_

#include <string_view>

namespace enclavia::attestation {

// kAwsNitroRootG1Pem is the AWS Nitro Enclaves root certificate G1 (P-384, valid 2019-10-28 to
// 2049-10-28), as AWS publishes it. Its DER SHA-256 is kAwsNitroRootG1Sha256Hex; a unit test
// checks the two agree.
extern const std::string_view kAwsNitroRootG1Pem;
inline constexpr std::string_view kAwsNitroRootG1Sha256Hex =
    "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";

}  // namespace enclavia::attestation

#endif  // ENCLAVIA_LIB_ATTESTATION_AWS_ROOT_H_
