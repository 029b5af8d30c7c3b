// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_ATTESTATION_DOCUMENT_H_
#define ENCLAVIA_LIB_ATTESTATION_DOCUMENT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/cbor/cbor.h"

// The AWS Nitro Enclaves attestation document ("Verifying the root of trust", AWS docs): a
// COSE_Sign1 signed with ES384 whose payload is this CBOR map.
namespace enclavia::attestation {

// Caps from the AWS specification of the payload (and our 64 KiB cap on a whole document).
inline constexpr size_t kMaxDocumentSize = 64 * 1024;
inline constexpr size_t kMaxPcrIndex = 31;
inline constexpr size_t kMaxCertificateSize = 1024;
inline constexpr size_t kMaxOptionalFieldSize = 1024;
inline constexpr size_t kPcrSize = 48;  // SHA-384.

// AttestationDocument is the decoded payload. Absent optional fields are nullopt (the wire may
// carry CBOR null for them).
struct AttestationDocument {
  std::string module_id;
  std::string digest;  // Always "SHA384" in a valid document.
  uint64_t timestamp_ms = 0;
  std::map<uint32_t, Bytes> pcrs;
  Bytes certificate;            // DER of the signing (leaf) certificate.
  std::vector<Bytes> cabundle;  // DER, root first.
  std::optional<Bytes> public_key;
  std::optional<Bytes> user_data;
  std::optional<Bytes> nonce;

  bool operator==(const AttestationDocument&) const = default;
};

// ParsePayload decodes and checks a payload: every field present with its type and size (module_id
// non-empty text; digest "SHA384"; timestamp a non-zero unsigned integer; pcrs a map of 1..32
// entries with keys 0..31 and 32/48/64-byte values; certificate 1..1024 bytes; cabundle a
// non-empty array of 1..1024-byte strings; public_key, user_data and nonce absent, null or at
// most 1024 bytes), no unknown or duplicate fields. Definite- and indefinite-length maps are both
// accepted. Errors are kMalformed naming the field: "attestation: pcrs: index 40 out of range".
Result<AttestationDocument> ParsePayload(ByteSpan payload);

// PayloadFields returns the payload's entries as the NSM orders them: module_id, digest,
// timestamp, pcrs, certificate, cabundle, public_key, user_data, nonce (absent optional fields as
// null).
cbor::Value::Map PayloadFields(const AttestationDocument& doc);

enum class PayloadMapEncoding {
  kDefinite,    // As the NSM emitted before 2025.
  kIndefinite,  // As the NSM emits since 2025 (0xbf … 0xff).
};

// EncodePayload writes `doc` as the NSM does: PayloadFields in that order, shortest heads.
Bytes EncodePayload(const AttestationDocument& doc,
                    PayloadMapEncoding encoding = PayloadMapEncoding::kDefinite);

}  // namespace enclavia::attestation

#endif  // ENCLAVIA_LIB_ATTESTATION_DOCUMENT_H_
