// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_STORAGE_CURL_HTTP_H_
#define ENCLAVIA_HOST_STORAGE_CURL_HTTP_H_

#include <chrono>
#include <cstddef>

#include "lib/aws/http.h"

// The libcurl adapter: the one file that talks to libcurl (host side only; S3 and, from the host,
// any AWS JSON API).
namespace enclavia::host {

struct CurlOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{120000};  // The whole exchange.
  size_t max_response_body = 80u << 20;       // Larger: kLimitExceeded.
};

// CurlFetch performs `request` (http or https only; redirects are not followed; "HEAD" asks for
// headers only). Any HTTP status is a response; kUnavailable when no response came (connection
// refused, timeout, reset), kMalformed for a body shorter than its Content-Length (a torn
// object), kLimitExceeded for a body over the cap. Thread-safe.
Result<aws::HttpResponse> CurlFetch(const aws::HttpRequest& request, const CurlOptions& options);

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_STORAGE_CURL_HTTP_H_
