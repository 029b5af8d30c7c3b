// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CHANNEL_AUDIT_H_
#define ENCLAVIA_LIB_CHANNEL_AUDIT_H_

#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// The attestation service on the enclave's vsock port 5001 (transport::kAttestationPort), which
// lets anyone audit a running enclave through the host:
// `GET /.well-known/enclavia/attestation?nonce=HEX`. Documents are public and signed, so the
// service needs no channel; what it proves is bound by the document's fields: `nonce` is the
// caller's nonce (freshness) and `public_key` is the enclave's Noise static key (the same key
// every channel's handshake proves possession of).
//
// Framing: records of lib/net/framing.h (u16 BE length + bytes). The client sends one request
// record; the enclave answers with one response record and closes. Both are deterministic CBOR
// maps (docs/protocol.md, "Attestation service"):
//   request  {"v": 1, "nonce": bstr (1..64 bytes)}
//   response {"v": 1, "attestation": bstr, "chain": [bstr, ...]}   or   {"v": 1, "error": tstr}
namespace enclavia::channel {

inline constexpr size_t kMaxAuditNonce = 64;

struct AuditRequest {
  Bytes nonce;
};

struct AuditResponse {
  Bytes attestation;         // COSE_Sign1; empty when `error` is set.
  std::vector<Bytes> chain;  // The upgrade chain (empty until upgrades exist).
  std::string error;         // Set: the enclave could not attest (one line).
};

Bytes EncodeAuditRequest(const AuditRequest& request);
// DecodeAuditRequest parses untrusted bytes strictly (canonical CBOR, exact keys, nonce size).
Result<AuditRequest> DecodeAuditRequest(ByteSpan data);

Bytes EncodeAuditResponse(const AuditResponse& response);
// DecodeAuditResponse parses untrusted bytes strictly (kMaxAttestationSize, kMaxChainEntries).
Result<AuditResponse> DecodeAuditResponse(ByteSpan data);

}  // namespace enclavia::channel

#endif  // ENCLAVIA_LIB_CHANNEL_AUDIT_H_
