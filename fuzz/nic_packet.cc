// SPDX-License-Identifier: Apache-2.0
// Parses arbitrary bytes as an IP packet read from the enclave's TUN device; whatever parses must
// agree with the IP version nibble and carry ports only for TCP and UDP.
#include <cstddef>
#include <cstdint>

#include "enclave/egress/nic.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace enclave = enclavia::enclave;
  namespace egress = enclavia::egress;
  enclavia::Result<enclave::ParsedPacket> parsed =
      enclave::ParsePacket(enclavia::ByteSpan(data, size));
  if (!parsed) {
    return 0;
  }
  ENCLAVIA_CHECK(size >= 20);
  egress::IpFamily family = (data[0] >> 4) == 4 ? egress::IpFamily::kV4 : egress::IpFamily::kV6;
  ENCLAVIA_CHECK(parsed->source.ip.family == family && parsed->destination.ip.family == family);
  if (parsed->kind == enclave::PacketKind::kOther) {
    ENCLAVIA_CHECK(parsed->source.port == 0 && parsed->destination.port == 0);
  }
  if (parsed->kind != enclave::PacketKind::kTcp) {
    ENCLAVIA_CHECK(parsed->tcp_flags == 0 && parsed->tcp_seq == 0);
  }
  return 0;
}
