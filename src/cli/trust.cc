// SPDX-License-Identifier: Apache-2.0
#include "cli/trust.h"

#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/crypto/x509.h"

namespace enclavia::cli {

namespace {
constexpr size_t kMaxDocumentFileSize = 128 * 1024;
constexpr size_t kMaxRootFileSize = 1 << 20;
}  // namespace

Result<attestation::Verifier> MakeVerifier(const std::vector<std::string>& root_files,
                                           bool no_aws_root) {
  std::vector<crypto::Certificate> roots;
  for (const std::string& path : root_files) {
    ASSIGN_OR_RETURN(Bytes pem, ReadFile(path, kMaxRootFileSize));
    auto certs = crypto::Certificate::AllFromPem(AsString(pem));
    if (!certs) {
      return std::move(certs).error().WithContext("--root " + path);
    }
    for (auto& c : *certs) {
      roots.push_back(std::move(c));
    }
  }
  return attestation::Verifier::Create(
      no_aws_root ? attestation::AwsRoot::kDoNotTrust : attestation::AwsRoot::kTrust,
      std::move(roots));
}

// A COSE_Sign1 starts with 0x84 (array of 4) or 0xd2 (tag 18), neither of which is printable, so
// raw CBOR and base64 text cannot be confused.
Result<Bytes> ReadDocument(const std::string& path) {
  ASSIGN_OR_RETURN(Bytes data, ReadFile(path, kMaxDocumentFileSize));
  if (!data.empty() && (data[0] == 0x84 || data[0] == 0xd2)) {
    return data;
  }
  auto decoded = Base64Decode(AsString(data));
  if (!decoded) {
    return Error(Code::kMalformed, path + ": neither a CBOR COSE_Sign1 nor base64 text");
  }
  return decoded;
}

}  // namespace enclavia::cli
