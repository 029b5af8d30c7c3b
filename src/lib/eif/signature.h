// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EIF_SIGNATURE_H_
#define ENCLAVIA_LIB_EIF_SIGNATURE_H_

#include <cstdint>
#include <map>
#include <string>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/crypto/keys.h"

// The signature section nitro-cli writes for `build-enclave --signing-certificate --private-key`:
// serde_cbor of [PcrSignature {signing_certificate: PEM bytes, signature: COSE_Sign1 bytes}],
// where the COSE_Sign1 (untagged, protected header {1: alg}, empty unprotected header) signs
// serde_cbor of PcrInfo {register_index: 0, register_value: PCR0}. serde_cbor writes every
// Vec<u8> as an array of unsigned integers, not a byte string; so do we.
namespace enclavia::eif {

// SigningKey is a signing certificate and its private key. The PEM is stored in the image byte
// for byte; PCR8 measures the DER of its first CERTIFICATE block.
struct SigningKey {
  std::string certificate_pem;
  crypto::PrivateKey key;  // ECDSA P-256 (ES256) or P-384 (ES384).
};

// SignatureInfo is a decoded signature section and what nitro-cli's describe-eif says about it.
struct SignatureInfo {
  std::string certificate_pem;  // As stored (the bytes need not be UTF-8).
  Bytes certificate_der;        // Of the first CERTIFICATE block; PCR8 measures it.
  Bytes cose_sign1;
  int64_t register_index = -1;  // From the signed payload; -1 if it does not decode.
  Bytes register_value;
  // valid: the COSE signature verifies with the certificate's key, and the signed payload is
  // register 0 with the image's PCR0 (nitro-cli's SignatureCheck).
  bool valid = false;
  // The certificate as describe-eif prints it: issuer attributes by long name
  // ("commonName" -> "..."), the signature algorithm's long name ("ecdsa-with-SHA384"),
  // validity as OpenSSL prints it ("Jan  1 00:00:00 2024 GMT"), and the signature value as
  // colon-separated uppercase hex ("30:65:02:...").
  std::map<std::string, std::string> issuer;
  std::string algorithm;
  std::string not_before;
  std::string not_after;
  std::string signature_hex;
};

// SigningCertificateDer checks that `signer` can sign an image nitro-cli can check: the key is
// ECDSA P-256 or P-384 (kUnsupported otherwise), the PEM holds a certificate (kInvalidArgument)
// whose public key is `signer.key`'s (kInvalidArgument). It returns the certificate's DER.
Result<Bytes> SigningCertificateDer(const SigningKey& signer);

// EncodePcrInfo returns serde_cbor of PcrInfo {register_index, register_value}: a two-entry map
// with text keys in that order and the value as an array of unsigned integers.
Bytes EncodePcrInfo(int32_t register_index, ByteSpan register_value);

// EncodeSignatureSection signs `pcr0` with `signer` and returns the signature section. The
// ECDSA signature is randomized, so two calls give different bytes of the same length.
// Errors: SigningCertificateDer's, or the signer's.
Result<Bytes> EncodeSignatureSection(const SigningKey& signer, ByteSpan pcr0);

// DecodeSignatureSection parses a signature section (at most 64 KiB is sensible; the caller
// bounds it) and checks its first PcrSignature against `pcr0`, as describe-eif does. Byte
// strings are accepted wherever serde_cbor writes arrays of unsigned integers. A section whose
// CBOR, certificate or COSE_Sign1 structure does not parse is kMalformed ("eif: signature: ...");
// a signature that parses but does not check (wrong key, another payload, an algorithm we cannot
// verify) gives valid = false.
Result<SignatureInfo> DecodeSignatureSection(ByteSpan section, ByteSpan pcr0);

}  // namespace enclavia::eif

#endif  // ENCLAVIA_LIB_EIF_SIGNATURE_H_
