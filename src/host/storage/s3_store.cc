// SPDX-License-Identifier: Apache-2.0
#include "host/storage/s3_store.h"

#include <algorithm>
#include <charconv>
#include <thread>
#include <utility>

#include "lib/crypto/random.h"

namespace enclavia::host {

namespace {

constexpr size_t kMaxShown = 200;
constexpr int kMaxListPages = 100000;

std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxShown)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

// XmlElement finds the next <tag>text</tag> at or after `pos` and returns the raw text, moving
// `pos` past it; nullopt when there is none.
Result<std::optional<std::string_view>> XmlElement(std::string_view xml, std::string_view tag,
                                                   size_t& pos) {
  std::string open = "<" + std::string(tag) + ">";
  std::string close = "</" + std::string(tag) + ">";
  size_t start = xml.find(open, pos);
  if (start == std::string_view::npos) {
    return std::optional<std::string_view>();
  }
  start += open.size();
  size_t end = xml.find(close, start);
  if (end == std::string_view::npos) {
    return Error(Code::kMalformed, "s3: unterminated <" + std::string(tag) + "> in a reply");
  }
  pos = end + close.size();
  return std::optional<std::string_view>(xml.substr(start, end - start));
}

std::string XmlField(std::string_view xml, std::string_view tag) {
  size_t pos = 0;
  auto found = XmlElement(xml, tag, pos);
  if (!found || !*found) {
    return "";
  }
  auto text = XmlUnescape(**found);
  return text ? Printable(*text) : "";
}

bool ValidBucket(std::string_view b) {
  return b.size() >= 3 && b.size() <= 63 && std::all_of(b.begin(), b.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
         });
}

Error InvalidName() { return Error(Code::kInvalidArgument, "invalid object name"); }

}  // namespace

Result<std::string> XmlUnescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out.push_back(text[i]);
      continue;
    }
    size_t semi = text.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      return Error(Code::kMalformed, "s3: bad XML entity");
    }
    std::string_view entity = text.substr(i + 1, semi - i - 1);
    if (entity == "amp") {
      out.push_back('&');
    } else if (entity == "lt") {
      out.push_back('<');
    } else if (entity == "gt") {
      out.push_back('>');
    } else if (entity == "quot") {
      out.push_back('"');
    } else if (entity == "apos") {
      out.push_back('\'');
    } else if (entity.size() >= 2 && entity[0] == '#') {
      bool hex = entity[1] == 'x';
      std::string_view digits = entity.substr(hex ? 2 : 1);
      unsigned value = 0;
      auto [end, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), value, hex ? 16 : 10);
      if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
          value == 0 || value > 0x7f) {
        return Error(Code::kMalformed, "s3: unsupported XML character reference");
      }
      out.push_back(static_cast<char>(value));
    } else {
      return Error(Code::kMalformed, "s3: unknown XML entity");
    }
    i = semi;
  }
  return out;
}

Result<ListPage> ParseListPage(std::string_view xml) {
  if (xml.find("<ListBucketResult") == std::string_view::npos) {
    return Error(Code::kMalformed, "s3: the listing is not a ListBucketResult");
  }
  ListPage page;
  size_t pos = 0;
  for (;;) {
    ASSIGN_OR_RETURN(auto key, XmlElement(xml, "Key", pos));
    if (!key) {
      break;
    }
    ASSIGN_OR_RETURN(std::string text, XmlUnescape(*key));
    page.keys.push_back(std::move(text));
  }
  pos = 0;
  ASSIGN_OR_RETURN(auto truncated, XmlElement(xml, "IsTruncated", pos));
  page.truncated = truncated && *truncated == "true";
  pos = 0;
  ASSIGN_OR_RETURN(auto token, XmlElement(xml, "NextContinuationToken", pos));
  if (token) {
    ASSIGN_OR_RETURN(page.next_token, XmlUnescape(*token));
  }
  if (page.truncated && page.next_token.empty()) {
    return Error(Code::kMalformed, "s3: a truncated listing without a continuation token");
  }
  return page;
}

Result<std::unique_ptr<S3ObjectStore>> S3ObjectStore::Create(S3Config config) {
  std::string_view endpoint = config.endpoint;
  size_t scheme_end = endpoint.find("://");
  std::string scheme(endpoint.substr(0, scheme_end == std::string_view::npos ? 0 : scheme_end));
  if (scheme != "http" && scheme != "https") {
    return Error(Code::kInvalidArgument, "s3: the endpoint must be an http:// or https:// URL");
  }
  std::string_view rest = endpoint.substr(scheme_end + 3);
  while (!rest.empty() && rest.back() == '/') {
    rest.remove_suffix(1);
  }
  if (rest.empty() || rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return Error(Code::kInvalidArgument, "s3: the endpoint must be scheme://host[:port]");
  }
  if (!ValidBucket(config.bucket)) {
    return Error(Code::kInvalidArgument, "s3: invalid bucket name");
  }
  if (config.region.empty()) {
    return Error(Code::kInvalidArgument, "s3: no region");
  }
  const std::string& prefix = config.key_prefix;
  if (!prefix.empty() &&
      (prefix.back() != '/' || !storage::ValidObjectName(prefix.substr(0, prefix.size() - 1)))) {
    return Error(Code::kInvalidArgument,
                 "s3: the key prefix must be object-name characters ending with '/'");
  }
  if (config.max_attempts < 1) {
    config.max_attempts = 1;
  }
  aws::Credentials credentials;
  if (config.credentials) {
    credentials = std::move(*config.credentials);
    config.credentials.reset();
  } else {
    ASSIGN_OR_RETURN(credentials, aws::CredentialsFromEnvironment());
  }
  return std::unique_ptr<S3ObjectStore>(new S3ObjectStore(std::move(config), std::move(credentials),
                                                          std::move(scheme), std::string(rest)));
}

S3ObjectStore::S3ObjectStore(S3Config config, aws::Credentials credentials, std::string scheme,
                             std::string authority)
    : config_(std::move(config)),
      credentials_(std::move(credentials)),
      scheme_(std::move(scheme)),
      authority_(std::move(authority)) {}

Result<aws::HttpResponse> S3ObjectStore::Send(const Call& call) {
  std::string authority = authority_;
  std::string path;
  if (config_.addressing == S3Addressing::kPath) {
    path = "/" + config_.bucket;
    if (!call.key.empty()) {
      path += "/" + call.key;
    }
  } else {
    authority = config_.bucket + "." + authority_;
    path = "/" + call.key;
  }
  std::string url = scheme_ + "://" + authority + aws::UriEncode(path, true);
  if (!call.query.empty()) {
    url += "?" + aws::CanonicalQueryString(call.query);
  }
  const std::string payload_hash = aws::HexSha256(call.body);
  auto backoff = config_.first_backoff;
  for (int attempt = 1;; ++attempt) {
    aws::SigningRequest signing;
    signing.method = call.method;
    signing.path = path;
    signing.query = call.query;
    signing.headers = call.headers;
    signing.headers.emplace_back("Host", authority);
    signing.payload_hash = payload_hash;
    RETURN_IF_ERROR(aws::SignRequest(credentials_, config_.region, "s3",
                                     std::chrono::system_clock::now(), signing));
    aws::HttpRequest request;
    request.method = call.method;
    request.url = url;
    request.headers = std::move(signing.headers);
    request.body.assign(reinterpret_cast<const char*>(call.body.data()), call.body.size());
    auto response =
        config_.transport ? config_.transport(request) : CurlFetch(request, config_.http);
    bool retryable = response ? (response->status >= 500 || response->status == 429)
                              : response.error().code() == Code::kUnavailable ||
                                    response.error().code() == Code::kMalformed;
    if (!retryable || attempt >= config_.max_attempts) {
      return response;
    }
    // Exponential backoff with up to 50% jitter, so retrying clients spread out.
    Bytes r = crypto::RandomBytes(2);
    auto jitter = backoff * ((r[0] << 8) | r[1]) / 131072;
    std::this_thread::sleep_for(backoff + jitter);
    backoff *= 2;
  }
}

Error S3ObjectStore::Fail(std::string_view op, const std::string& what,
                          const aws::HttpResponse& response) {
  std::string code = XmlField(response.body, "Code");
  std::string message = XmlField(response.body, "Message");
  std::string detail = "HTTP " + std::to_string(response.status);
  if (!code.empty()) {
    detail += " " + code;
  }
  if (!message.empty()) {
    detail += ": " + message;
  }
  std::string where = "s3 " + std::string(op) + " " + what;
  if (code == "NoSuchBucket") {
    return Error(Code::kFailedPrecondition,
                 where + ": bucket " + config_.bucket + " does not exist (" + detail + ")");
  }
  if (response.status == 404 || code == "NoSuchKey") {
    return Error(Code::kNotFound, "no object " + what);
  }
  if (response.status == 403 || code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" ||
      code == "AccessDenied") {
    return Error(Code::kPolicyViolation, where + ": the credentials were refused (" + detail +
                                             "); check the access key and secret");
  }
  if (response.status >= 500 || response.status == 429) {
    return Error(Code::kUnavailable, where + ": " + detail);
  }
  return Error(Code::kIo, where + ": " + detail);
}

Result<void> S3ObjectStore::Put(const std::string& name, ByteSpan data) {
  if (!storage::ValidObjectName(name)) {
    return InvalidName();
  }
  if (data.size() > storage::kMaxObjectSize) {
    return Error(Code::kLimitExceeded, "object " + name + " is over the object size limit");
  }
  Call call{
      "PUT", config_.key_prefix + name, {}, {{"Content-Type", "application/octet-stream"}}, data};
  ASSIGN_OR_RETURN(aws::HttpResponse response, Send(call));
  if (response.status != 200) {
    return Fail("PUT", name, response);
  }
  return Ok();
}

Result<Bytes> S3ObjectStore::Get(const std::string& name) {
  if (!storage::ValidObjectName(name)) {
    return InvalidName();
  }
  ASSIGN_OR_RETURN(aws::HttpResponse response,
                   Send(Call{"GET", config_.key_prefix + name, {}, {}, {}}));
  if (response.status != 200) {
    return Fail("GET", name, response);
  }
  if (response.body.size() > storage::kMaxObjectSize) {
    return Error(Code::kLimitExceeded, "object " + name + " is over the object size limit");
  }
  ByteSpan body = AsBytes(response.body);
  return Bytes(body.begin(), body.end());
}

Result<Bytes> S3ObjectStore::GetRange(const std::string& name, uint64_t offset, uint64_t length) {
  if (!storage::ValidObjectName(name)) {
    return InvalidName();
  }
  const Error short_object(Code::kMalformed, "object " + name + " is shorter than the range asked");
  if (length == 0) {
    // An empty range cannot be asked with Range: read the size instead.
    ASSIGN_OR_RETURN(aws::HttpResponse head,
                     Send(Call{"HEAD", config_.key_prefix + name, {}, {}, {}}));
    if (head.status != 200) {
      return Fail("HEAD", name, head);
    }
    uint64_t size = 0;
    std::string text = head.Header("content-length");
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), size);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      return Error(Code::kMalformed, "s3 HEAD " + name + ": no valid Content-Length");
    }
    if (offset > size) {
      return short_object;
    }
    return Bytes();
  }
  auto last = CheckedAdd(offset, length - 1);
  if (!last || length > storage::kMaxObjectSize) {
    return short_object;
  }
  Call call{"GET",
            config_.key_prefix + name,
            {},
            {{"Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(*last)}},
            {}};
  ASSIGN_OR_RETURN(aws::HttpResponse response, Send(call));
  ByteSpan body = AsBytes(response.body);
  if (response.status == 206) {
    if (body.size() != length) {
      return short_object;  // S3 cuts a range at the end of the object.
    }
    return Bytes(body.begin(), body.end());
  }
  if (response.status == 200) {
    // A server that ignores Range sends the whole object.
    if (offset > body.size() || length > body.size() - offset) {
      return short_object;
    }
    auto from = body.subspan(static_cast<size_t>(offset), static_cast<size_t>(length));
    return Bytes(from.begin(), from.end());
  }
  if (response.status == 416) {
    return short_object;
  }
  return Fail("GET", name, response);
}

Result<void> S3ObjectStore::Delete(const std::string& name) {
  if (!storage::ValidObjectName(name)) {
    return InvalidName();
  }
  ASSIGN_OR_RETURN(aws::HttpResponse response,
                   Send(Call{"DELETE", config_.key_prefix + name, {}, {}, {}}));
  if (response.status == 204 || response.status == 200 ||
      (response.status == 404 && XmlField(response.body, "Code") != "NoSuchBucket")) {
    return Ok();
  }
  return Fail("DELETE", name, response);
}

Result<std::vector<std::string>> S3ObjectStore::List(const std::string& prefix) {
  std::vector<std::string> names;
  const std::string full_prefix = config_.key_prefix + prefix;
  std::string token;
  for (int page_number = 0;; ++page_number) {
    if (page_number >= kMaxListPages) {
      return Error(Code::kLimitExceeded, "s3 LIST " + prefix + ": too many pages");
    }
    Call call{"GET", "", {{"list-type", "2"}, {"prefix", full_prefix}}, {}, {}};
    if (!token.empty()) {
      call.query.emplace_back("continuation-token", token);
    }
    ASSIGN_OR_RETURN(aws::HttpResponse response, Send(call));
    if (response.status != 200) {
      return Fail("LIST", prefix, response);
    }
    auto page = ParseListPage(response.body);
    if (!page) {
      return std::move(page).error().WithContext("s3 LIST " + prefix);
    }
    for (std::string& key : page->keys) {
      if (key.compare(0, full_prefix.size(), full_prefix) != 0) {
        continue;
      }
      std::string name = key.substr(config_.key_prefix.size());
      // Keys that are no valid object name (put there by something else) are not ours.
      if (storage::ValidObjectName(name)) {
        names.push_back(std::move(name));
      }
    }
    if (!page->truncated) {
      break;
    }
    if (page->next_token == token) {
      return Error(Code::kMalformed, "s3 LIST " + prefix + ": the continuation token repeats");
    }
    token = std::move(page->next_token);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace enclavia::host
