// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_ATTESTATION_NSM_CODEC_H_
#define ENCLAVIA_LIB_ATTESTATION_NSM_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "lib/attestation/nsm.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"

// The Nitro Secure Module's request and response messages, as the /dev/nsm driver carries them:
// CBOR in the shape serde gives the Rust enums of aws-nitro-enclaves-nsm-api (docs/formats/nsm.md).
// Unit variants are a bare text string ("DescribeNSM"); the others are a one-entry map from the
// variant name to a map of fields ({"DescribePCR": {"index": 3}}), or for Error to the error code
// name ({"Error": "InvalidIndex"}). Both directions are here: the device client encodes requests
// and decodes responses; the simulator does the reverse.
namespace enclavia::attestation {

// Size limits of the driver's buffers (Linux include/uapi/linux/nsm.h).
inline constexpr size_t kNsmRequestMaxSize = 0x1000;
inline constexpr size_t kNsmResponseMaxSize = 0x3000;

// Requests. Attestation reuses AttestationRequest from nsm.h.
struct DescribePcrRequest {
  uint16_t index = 0;
  bool operator==(const DescribePcrRequest&) const = default;
};
struct ExtendPcrRequest {
  uint16_t index = 0;
  Bytes data;
  bool operator==(const ExtendPcrRequest&) const = default;
};
struct LockPcrRequest {
  uint16_t index = 0;
  bool operator==(const LockPcrRequest&) const = default;
};
struct LockPcrsRequest {
  uint16_t range = 0;  // Locks PCRs [0, range).
  bool operator==(const LockPcrsRequest&) const = default;
};
struct DescribeNsmRequest {
  bool operator==(const DescribeNsmRequest&) const = default;
};
struct GetRandomRequest {
  bool operator==(const GetRandomRequest&) const = default;
};

using NsmRequest =
    std::variant<AttestationRequest, DescribePcrRequest, ExtendPcrRequest, LockPcrRequest,
                 LockPcrsRequest, DescribeNsmRequest, GetRandomRequest>;

// NsmErrorCode is the module's ErrorCode enum; on the wire each is its name as a text string.
enum class NsmErrorCode {
  kSuccess,
  kInvalidArgument,
  kInvalidIndex,
  kInvalidResponse,
  kReadOnlyIndex,
  kInvalidOperation,
  kBufferTooSmall,
  kInputTooLarge,
  kInternalError,
};

// NsmErrorCodeName returns the wire name, e.g. "ReadOnlyIndex".
std::string_view NsmErrorCodeName(NsmErrorCode code);

// Responses. DescribePCR decodes into PcrDescription (wire "lock" and "data") and DescribeNSM
// into NsmDescription, both from nsm.h.
struct AttestationResponse {
  Bytes document;  // COSE_Sign1, not verified here.
  bool operator==(const AttestationResponse&) const = default;
};
struct ExtendPcrResponse {
  Bytes data;  // The PCR's new value.
  bool operator==(const ExtendPcrResponse&) const = default;
};
struct LockPcrResponse {
  bool operator==(const LockPcrResponse&) const = default;
};
struct LockPcrsResponse {
  bool operator==(const LockPcrsResponse&) const = default;
};
struct GetRandomResponse {
  Bytes random;
  bool operator==(const GetRandomResponse&) const = default;
};
struct ErrorResponse {
  NsmErrorCode code = NsmErrorCode::kInternalError;
  bool operator==(const ErrorResponse&) const = default;
};

using NsmResponse =
    std::variant<AttestationResponse, PcrDescription, ExtendPcrResponse, LockPcrResponse,
                 LockPcrsResponse, NsmDescription, GetRandomResponse, ErrorResponse>;

// Equality for the nsm.h value types the messages reuse (nsm.h declares none).
bool operator==(const AttestationRequest& a, const AttestationRequest& b);
bool operator==(const PcrDescription& a, const PcrDescription& b);
bool operator==(const NsmDescription& a, const NsmDescription& b);

// RequestName and ResponseName return the wire variant name, e.g. "DescribePCR".
std::string_view RequestName(const NsmRequest& request);
std::string_view ResponseName(const NsmResponse& response);

// EncodeRequest and EncodeResponse write the message as the Rust client (serde_cbor) does: fields
// in declaration order, shortest integers, definite lengths, a None option as null. locked_pcrs
// is written sorted and without duplicates (a BTreeSet on the Rust side). Sizes are not checked
// here; DeviceNsm refuses requests over kNsmRequestMaxSize.
Bytes EncodeRequest(const NsmRequest& request);
Bytes EncodeResponse(const NsmResponse& response);

// DecodeRequest and DecodeResponse parse untrusted bytes strictly: exactly one definite-length
// CBOR item of at most kNsmRequestMaxSize (kNsmResponseMaxSize) bytes, a known variant, every
// field present with its exact type (u16 an unsigned integer <= 65535, byte fields byte strings,
// locked_pcrs strictly increasing) and no other field. The one leniency is serde's: an absent
// Attestation option reads as None. Errors are kMalformed or kLimitExceeded with a one-line
// message starting "nsm: ". DecodeResponse returns the module's Error variant as an
// ErrorResponse value, not as an Error.
Result<NsmRequest> DecodeRequest(ByteSpan data);
Result<NsmResponse> DecodeResponse(ByteSpan data);

}  // namespace enclavia::attestation

#endif  // ENCLAVIA_LIB_ATTESTATION_NSM_CODEC_H_
