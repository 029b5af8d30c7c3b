// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLI_TRUST_H_
#define ENCLAVIA_CLI_TRUST_H_

#include <string>
#include <vector>

#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"

// What the commands that verify attestation documents share: the flags that choose the roots,
// and reading a document file.
namespace enclavia::cli {

// MakeVerifier trusts the AWS Nitro root (unless `no_aws_root`) plus every certificate in the
// PEM files `root_files` (--root). Errors name the file.
Result<attestation::Verifier> MakeVerifier(const std::vector<std::string>& root_files,
                                           bool no_aws_root);

// ReadDocument reads an attestation document stored as raw CBOR or as base64 text.
Result<Bytes> ReadDocument(const std::string& path);

}  // namespace enclavia::cli

#endif  // ENCLAVIA_CLI_TRUST_H_
