// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_ATTESTATION_NSM_H_
#define ENCLAVIA_LIB_ATTESTATION_NSM_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

namespace enclavia::attestation {

// Limits the Nitro Secure Module enforces (aws-nitro-enclaves-nsm-api).
inline constexpr uint16_t kNsmMaxPcrs = 32;
inline constexpr size_t kNsmMaxOptionalFieldSize = 1024;  // user_data, nonce, public_key.

// AttestationRequest carries the optional fields the caller wants bound into a document.
struct AttestationRequest {
  std::optional<Bytes> user_data;
  std::optional<Bytes> nonce;
  std::optional<Bytes> public_key;
};

struct PcrDescription {
  bool locked = false;
  Bytes value;  // 48 bytes for SHA-384.
};

struct NsmDescription {
  uint16_t version_major = 0;
  uint16_t version_minor = 0;
  uint16_t version_patch = 0;
  std::string module_id;
  uint16_t max_pcrs = 0;
  std::vector<uint16_t> locked_pcrs;
  std::string digest;  // "SHA384".
};

// Nsm is the Nitro Secure Module's request set. Implementations: DeviceNsm (the real /dev/nsm)
// and the simulator (host side, for the local provider). Errors the module reports come back as
// Errors whose message names the NSM error code ("nsm: ReadOnlyIndex"). Implementations are not
// required to be thread-safe; callers serialise.
class Nsm {
 public:
  virtual ~Nsm() = default;

  // Attestation returns a COSE_Sign1 attestation document binding the current PCRs and the
  // request's fields. A field over kNsmMaxOptionalFieldSize bytes is kInvalidArgument.
  virtual Result<Bytes> Attestation(const AttestationRequest& request) = 0;
  // DescribePcr returns a PCR's value and lock state; kInvalidArgument for index >= max_pcrs.
  virtual Result<PcrDescription> DescribePcr(uint16_t index) = 0;
  // ExtendPcr sets PCR[index] = SHA384(PCR[index] || data) and returns the new value; a locked
  // PCR is kFailedPrecondition ("nsm: ReadOnlyIndex").
  virtual Result<Bytes> ExtendPcr(uint16_t index, ByteSpan data) = 0;
  // LockPcr makes PCR[index] read-only until the enclave ends.
  virtual Result<void> LockPcr(uint16_t index) = 0;
  // LockPcrs locks PCRs [0, range).
  virtual Result<void> LockPcrs(uint16_t range) = 0;
  virtual Result<NsmDescription> DescribeNsm() = 0;
  // GetRandom returns bytes from the module's entropy source.
  virtual Result<Bytes> GetRandom() = 0;
};

}  // namespace enclavia::attestation

#endif  // ENCLAVIA_LIB_ATTESTATION_NSM_H_
