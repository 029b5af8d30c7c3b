// SPDX-License-Identifier: Apache-2.0
// Fuzzes the upgrade chain parser and verifier (untrusted: the host serves the chain to the
// enclave, the enclave to every client). Input: up to four entries, each u16 BE length + bytes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "lib/attestation/verifier.h"
#include "lib/upgrade/chain.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enclavia;  // NOLINT(google-build-using-namespace): a 30-line fuzz target.
  // A fixed verifier: the AWS root, which no corpus document chains to, so receipts fail after
  // parsing while genesis and request signatures are checked for real.
  static const auto* verifier = new std::shared_ptr<const attestation::Verifier>(
      std::make_shared<const attestation::Verifier>(
          attestation::Verifier::Create(attestation::AwsRoot::kTrust).value()));
  ByteSpan input(data, size);
  std::vector<Bytes> chain;
  while (input.size() >= 2 && chain.size() < 4) {
    size_t len = (size_t{input[0]} << 8) | input[1];
    input = input.subspan(2);
    len = len < input.size() ? len : input.size();
    chain.emplace_back(input.begin(), input.begin() + static_cast<ptrdiff_t>(len));
    input = input.subspan(len);
  }
  for (const Bytes& entry : chain) {
    auto parsed = upgrade::ParseEntry(entry);
    if (parsed) {
      ENCLAVIA_CHECK(parsed->bytes == entry);
    }
  }
  if (!chain.empty()) {
    auto verified = upgrade::VerifyChain(chain, {*verifier, false});
    // Receipts cannot verify against the AWS root: only a genesis alone may pass.
    ENCLAVIA_CHECK(!verified || (chain.size() == 1 && verified->steps.empty()));
  }
  return 0;
}
