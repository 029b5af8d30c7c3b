// SPDX-License-Identifier: Apache-2.0
// Parses and verifies arbitrary bytes as a Nitro attestation document under the AWS root, at the
// time of a real fixture document so that mutations of real documents reach the deepest checks.
#include <cstdint>

#include "lib/attestation/verifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enclavia;
  static const auto* verifier =
      new attestation::Verifier(attestation::Verifier::Create(attestation::AwsRoot::kTrust).value());
  attestation::TrustPolicy policy;
  policy.allow_debug = true;
  ByteSpan input(data, size);
  auto parsed = attestation::ParseUnverified(input);
  if (parsed) {
    Bytes payload = attestation::EncodePayload(parsed->document);
    auto reparsed = attestation::ParsePayload(payload);
    ENCLAVIA_CHECK(reparsed && *reparsed == parsed->document);
  }
  auto verified = verifier->Verify(input, FromUnixMillis(1665651482136), policy);
  ENCLAVIA_CHECK(!verified || (parsed && verified->document() == parsed->document));
  return 0;
}
