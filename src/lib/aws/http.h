// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_AWS_HTTP_H_
#define ENCLAVIA_LIB_AWS_HTTP_H_

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/base/result.h"

// The HTTP exchange the AWS clients need, as values: the transport is injected, because inside an
// enclave a request travels through the parent's vsock proxy (TLS must then terminate inside the
// enclave), while host code uses libcurl (src/host/storage/curl_http.h).
namespace enclavia::aws {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string url;     // "https://kms.eu-west-1.amazonaws.com/"
  std::vector<std::pair<std::string, std::string>> headers;  // As sent, including Host.
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // Names lowercased.
  std::string body;

  // Header returns the first value of header `name` (lowercase), or "".
  std::string Header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) {
        return v;
      }
    }
    return "";
  }
};

// HttpTransport performs one exchange. It returns any HTTP status as a response; Errors are for
// failures to get one (kUnavailable for connection errors and timeouts).
using HttpTransport = std::function<Result<HttpResponse>(const HttpRequest&)>;

}  // namespace enclavia::aws

#endif  // ENCLAVIA_LIB_AWS_HTTP_H_
