// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_AWS_SIGV4_H_
#define ENCLAVIA_LIB_AWS_SIGV4_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/encoding.h"
#include "lib/base/result.h"
#include "lib/crypto/secret.h"

// AWS Signature Version 4 (the "Signature Version 4 signing process" of the AWS General
// Reference, and S3's "Authenticating Requests: Using the Authorization Header"): the canonical
// request, the string to sign, the derived signing key and the Authorization header. Pure
// functions, no I/O, no clock (callers pass the time); thread-safe.
namespace enclavia::aws {

// Credentials are an access key pair, plus a session token for temporary credentials. Move-only
// because the secret is; never logged.
struct Credentials {
  std::string access_key_id;
  crypto::SecretBytes secret_access_key;
  std::string session_token;  // Empty for long-term keys.

  // Clone copies the credentials (the secret stays in cleansed memory).
  Credentials Clone() const;
};

// CredentialsFromEnvironment reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and (optionally)
// AWS_SESSION_TOKEN. kNotFound when either of the first two is unset or empty.
Result<Credentials> CredentialsFromEnvironment();

// Header is one HTTP header as sent (any case; values are trimmed when canonicalised).
using Header = std::pair<std::string, std::string>;

// SigningRequest is what SigV4 signs. `path` is the absolute path *decoded* ("/my key.txt"); it is
// URI-encoded once here, per segment, '/' kept (S3's rule, and the test suite's for paths without
// '%'). `query` holds decoded name/value pairs in any order. `headers` must contain "host"; every
// header listed is signed. `payload_hash` is the lowercase hex SHA-256 of the body or
// "UNSIGNED-PAYLOAD".
struct SigningRequest {
  std::string method;
  std::string path = "/";
  std::vector<Header> query;
  std::vector<Header> headers;
  std::string payload_hash;
};

// Scope names where a signature is valid: `amz_date` is the request time "YYYYMMDDTHHMMSSZ"
// (FormatAmzDate), region e.g. "us-east-1", service e.g. "s3" or "kms".
struct Scope {
  std::string amz_date;
  std::string region;
  std::string service;
};

// Signature is the result of signing, with its intermediate forms (for tests and debugging; none
// of them is secret).
struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;x-amz-date".
  std::string signature;       // Lowercase hex.
  std::string authorization;   // The Authorization header's value.
};

// UriEncode percent-encodes every byte but A-Z a-z 0-9 - _ . ~ (uppercase hex), and '/' too
// unless `keep_slash`.
std::string UriEncode(std::string_view text, bool keep_slash);

// CanonicalQueryString encodes names and values and sorts by encoded name, then value.
std::string CanonicalQueryString(const std::vector<Header>& query);

// FormatAmzDate renders `t` (UTC) as "YYYYMMDDTHHMMSSZ".
std::string FormatAmzDate(SystemTime t);

// HexSha256 is the lowercase hex SHA-256 of `data` (the payload hash).
std::string HexSha256(ByteSpan data);

// SigningKey derives HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
// "aws4_request").
crypto::SecretBytes SigningKey(const crypto::SecretBytes& secret, std::string_view date,
                               std::string_view region, std::string_view service);

// Sign computes the signature of `request` exactly as given (it adds no header). kInvalidArgument
// for a missing host header, a malformed amz_date, a header name that is not a token, or a
// header value holding CR, LF or NUL.
Result<Signature> Sign(const Credentials& credentials, const Scope& scope,
                       const SigningRequest& request);

// SignRequest adds X-Amz-Date, X-Amz-Content-Sha256 (= payload_hash; S3 requires it, other
// services ignore it), X-Amz-Security-Token when the credentials have a session token, and then
// Authorization to `request.headers`. Errors as Sign.
Result<void> SignRequest(const Credentials& credentials, std::string_view region,
                         std::string_view service, SystemTime now, SigningRequest& request);

}  // namespace enclavia::aws

#endif  // ENCLAVIA_LIB_AWS_SIGV4_H_
