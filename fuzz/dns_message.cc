// SPDX-License-Identifier: Apache-2.0
// Fuzzes the DNS message parser the enclave's resolver runs on the app's queries, libunbound's
// upstream queries and the answers that crossed the host.
#include <cstddef>
#include <cstdint>

#include "lib/dns/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace dns = enclavia::dns;
  enclavia::ByteSpan input(data, size);
  auto query = dns::ParseQuery(input);
  if (query) {
    // The echoed question re-parses to the same question.
    auto again = dns::ParseQuery(dns::BuildResponse(*query, dns::Rcode::kRefused));
    ENCLAVIA_CHECK(!again);  // a response is never taken for a query
    auto name = dns::EncodeName(query->name);
    ENCLAVIA_CHECK(name && name->size() + 4 == query->question.size());
    auto answer = dns::AnswerFor(*query, dns::BuildResponse(*query, dns::Rcode::kServFail));
    ENCLAVIA_CHECK(answer && answer->size() == dns::kHeaderSize + query->question.size());
  }
  auto addresses = dns::ExtractAddresses(input);
  if (addresses) {
    for (const auto& a : *addresses) {
      ENCLAVIA_CHECK(a.address.size() == 4 || a.address.size() == 16);
      ENCLAVIA_CHECK(dns::EncodeName(a.name).has_value());
    }
  }
  auto cnames = dns::ExtractCnames(input);
  if (cnames) {
    for (const auto& c : *cnames) {
      ENCLAVIA_CHECK(dns::EncodeName(c.owner).has_value() && dns::EncodeName(c.target).has_value());
    }
  }
  return 0;
}
