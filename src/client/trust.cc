// SPDX-License-Identifier: Apache-2.0
#include "client/trust.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

#include "lib/base/file.h"
#include "lib/crypto/x509.h"

namespace enclavia::client {

Result<channel::TrustPolicy> PolicyFromTrustFile(const config::TrustFile& trust,
                                                 const std::string& base_dir) {
  bool aws = false;
  std::vector<crypto::Certificate> roots;
  for (const std::string& root : trust.roots) {
    if (root == config::kAwsNitroRoot) {
      aws = true;
      continue;
    }
    std::filesystem::path path(root);
    if (path.is_relative() && !base_dir.empty()) {
      path = std::filesystem::path(base_dir) / path;
    }
    auto pem = ReadFile(path.string(), 1 << 20);
    if (!pem) {
      return pem.error().WithContext("trust file: root " + root);
    }
    auto certs = crypto::Certificate::AllFromPem(AsString(*pem));
    if (!certs) {
      return certs.error().WithContext("trust file: root " + path.string());
    }
    for (auto& cert : *certs) {
      roots.push_back(std::move(cert));
    }
  }
  ASSIGN_OR_RETURN(attestation::Verifier verifier,
                   attestation::Verifier::Create(
                       aws ? attestation::AwsRoot::kTrust : attestation::AwsRoot::kDoNotTrust,
                       std::move(roots)));
  channel::TrustPolicy policy;
  policy.verifier = std::make_shared<const attestation::Verifier>(std::move(verifier));
  policy.accept = trust.accept;
  for (const Bytes& hash : trust.genesis) {
    upgrade::Digest digest{};
    if (hash.size() != digest.size()) {
      return Error(Code::kInvalidArgument, "trust file: a genesis hash is not 32 bytes");
    }
    std::copy(hash.begin(), hash.end(), digest.begin());
    policy.chain_trust.genesis.push_back(digest);
  }
  policy.freshness = trust.fresh ? channel::Freshness::kFresh : channel::Freshness::kCached;
  policy.max_age = trust.max_age;
  policy.allow_debug = trust.allow_debug;
  RETURN_IF_ERROR(channel::CheckPolicy(policy));
  return policy;
}

Result<channel::TrustPolicy> LoadTrustPolicy(const std::string& path) {
  auto text = ReadFile(path, 1 << 20);
  if (!text) {
    return text.error().WithContext("trust file " + path);
  }
  auto trust = config::ParseTrustFile(AsString(*text));
  if (!trust) {
    return trust.error().WithContext(path);
  }
  return PolicyFromTrustFile(*trust, std::filesystem::path(path).parent_path().string());
}

}  // namespace enclavia::client
