// SPDX-License-Identifier: Apache-2.0
#include "host/storage/curl_http.h"

#include <memory>
#include <mutex>

#include <curl/curl.h>

namespace enclavia::host {

namespace {

struct CurlFree {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

struct Sink {
  aws::HttpResponse* response;
  size_t max_body;
  bool too_large = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t n = size * count;
  if (sink->response->body.size() + n > sink->max_body) {
    sink->too_large = true;
    return 0;  // Aborts the transfer with CURLE_WRITE_ERROR.
  }
  sink->response->body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t n = size * count;
  std::string_view line(data, n);
  if (line.substr(0, 5) == "HTTP/") {
    sink->response->headers.clear();  // A new response (after 100 Continue, say).
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || sink->response->headers.size() >= 200) {
    return n;
  }
  std::string name(line.substr(0, colon));
  for (char& c : name) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  sink->response->headers.emplace_back(std::move(name), std::string(value));
  return n;
}

}  // namespace

Result<aws::HttpResponse> CurlFetch(const aws::HttpRequest& request, const CurlOptions& options) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  if (!curl) {
    return Error(Code::kInternal, "curl: cannot create a handle");
  }
  CURL* c = curl.get();
  aws::HttpResponse response;
  Sink sink{&response, options.max_response_body};
  std::unique_ptr<curl_slist, SlistFree> headers;
  auto append = [&headers](const std::string& line) {
    // curl_slist_append returns the list's head (a new one only for an empty list), or null.
    curl_slist* head = curl_slist_append(headers.get(), line.c_str());
    if (head == nullptr) {
      return false;
    }
    (void)headers.release();
    headers.reset(head);
    return true;
  };
  bool has_content_type = false;
  for (const auto& [name, value] : request.headers) {
    has_content_type = has_content_type || name == "Content-Type" || name == "content-type";
    if (!append(name + ": " + value)) {
      return Error(Code::kInternal, "curl: out of memory");
    }
  }
  // No "Expect: 100-continue" round trip, and no default form content type.
  if (!append("Expect:") || (!has_content_type && !append("Content-Type:"))) {
    return Error(Code::kInternal, "curl: out of memory");
  }

  CURLcode rc = CURLE_OK;
  auto set = [&rc](CURLcode r) {
    if (rc == CURLE_OK) {
      rc = r;
    }
  };
  set(curl_easy_setopt(c, CURLOPT_URL, request.url.c_str()));
  set(curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L));
  set(curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https"));
  set(curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L));
  set(curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                       static_cast<long>(options.connect_timeout.count())));
  set(curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count())));
  set(curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get()));
  set(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody));
  set(curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink));
  set(curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader));
  set(curl_easy_setopt(c, CURLOPT_HEADERDATA, &sink));
  if (request.method == "GET") {
    set(curl_easy_setopt(c, CURLOPT_HTTPGET, 1L));
  } else if (request.method == "HEAD") {
    set(curl_easy_setopt(c, CURLOPT_NOBODY, 1L));
  } else if (request.method == "PUT" || request.method == "POST") {
    set(curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str()));
    set(curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data()));
    set(curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size())));
  } else {
    set(curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str()));
  }
  if (rc != CURLE_OK) {
    return Error(Code::kInternal, std::string("curl: ") + curl_easy_strerror(rc));
  }
  rc = curl_easy_perform(c);
  if (sink.too_large) {
    return Error(Code::kLimitExceeded,
                 request.method + " " + request.url + ": response body over the limit");
  }
  if (rc == CURLE_PARTIAL_FILE) {
    // The body ended before its Content-Length: a torn object (a server that stored an
    // interrupted upload), or a connection cut mid-body. kMalformed, so that a reader can tell it
    // from a server that does not answer; S3ObjectStore retries it like a connection error.
    return Error(Code::kMalformed, request.method + " " + request.url +
                                       ": the body is shorter than its Content-Length");
  }
  if (rc != CURLE_OK) {
    return Error(Code::kUnavailable,
                 request.method + " " + request.url + ": " + curl_easy_strerror(rc));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  return response;
}

}  // namespace enclavia::host
