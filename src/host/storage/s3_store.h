// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_STORAGE_S3_STORE_H_
#define ENCLAVIA_HOST_STORAGE_S3_STORE_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/storage/curl_http.h"
#include "lib/aws/sigv4.h"
#include "lib/storage/object_store.h"

namespace enclavia::host {

enum class S3Addressing {
  kPath,         // http://endpoint/bucket/key (local servers, s3rver, MinIO).
  kVirtualHost,  // http://bucket.endpoint/key (AWS's default).
};

struct S3Config {
  std::string endpoint;  // "https://s3.eu-west-1.amazonaws.com" or "http://127.0.0.1:4568".
  std::string region = "us-east-1";
  std::string bucket;
  // key_prefix is prepended to every object name ("volumes/web/"): empty, or object-name
  // characters ending with '/'.
  std::string key_prefix;
  S3Addressing addressing = S3Addressing::kPath;
  // credentials: nullopt reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
  std::optional<aws::Credentials> credentials;
  CurlOptions http;
  // transport, if set, replaces libcurl (tests put a SigV4-checking proxy here).
  aws::HttpTransport transport;
  // Connection errors, timeouts, 5xx and 429 are retried up to max_attempts in all, waiting
  // first_backoff, then twice as long each time (with jitter).
  int max_attempts = 4;
  std::chrono::milliseconds first_backoff{200};
};

// S3ObjectStore keeps each object as the S3 object key_prefix + name, through libcurl with
// Signature Version 4 (PUT, GET with Range, HEAD, DELETE, ListObjectsV2 with continuation
// tokens). A Put returns once S3 acknowledged it (S3 writes are durable and, since 2020, read
// after write consistent). Errors are one line naming the operation and the object: kNotFound
// (NoSuchKey), kPolicyViolation (the credentials were refused: SignatureDoesNotMatch,
// InvalidAccessKeyId, AccessDenied), kFailedPrecondition (NoSuchBucket), kUnavailable (no
// answer, or 5xx after the retries), kMalformed (a listing that does not parse). Thread-safe.
class S3ObjectStore : public storage::ObjectStore {
 public:
  // Create checks the configuration (kInvalidArgument) and finds the credentials (kNotFound when
  // none are given and the environment has none). It does not contact S3.
  static Result<std::unique_ptr<S3ObjectStore>> Create(S3Config config);

  Result<void> Put(const std::string& name, ByteSpan data) override;
  Result<Bytes> Get(const std::string& name) override;
  Result<Bytes> GetRange(const std::string& name, uint64_t offset, uint64_t length) override;
  Result<void> Delete(const std::string& name) override;
  Result<std::vector<std::string>> List(const std::string& prefix) override;

 private:
  struct Call {
    std::string method;
    std::string key;  // Full S3 key; empty for the bucket itself.
    std::vector<aws::Header> query;
    std::vector<aws::Header> headers;
    ByteSpan body;
  };
  S3ObjectStore(S3Config config, aws::Credentials credentials, std::string scheme,
                std::string authority);
  // Send signs and performs `call`, retrying as configured; any HTTP status is returned.
  Result<aws::HttpResponse> Send(const Call& call);
  // Fail turns an error response into an Error for operation `op` on `what`.
  Error Fail(std::string_view op, const std::string& what, const aws::HttpResponse& response);

  S3Config config_;
  aws::Credentials credentials_;
  std::string scheme_;     // "http" or "https".
  std::string authority_;  // host[:port] of the endpoint.
};

// ListPage is one parsed ListObjectsV2 result (exposed for tests).
struct ListPage {
  std::vector<std::string> keys;
  bool truncated = false;
  std::string next_token;
};

// ParseListPage reads the keys, IsTruncated and NextContinuationToken of a ListObjectsV2 result,
// XML entities decoded. kMalformed for a document it cannot read (unterminated elements, bad
// entities, a truncated page without a token).
Result<ListPage> ParseListPage(std::string_view xml);

// XmlUnescape decodes the five predefined entities and numeric character references (ASCII only);
// kMalformed otherwise.
Result<std::string> XmlUnescape(std::string_view text);

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_STORAGE_S3_STORE_H_
