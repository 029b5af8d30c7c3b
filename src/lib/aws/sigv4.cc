// SPDX-License-Identifier: Apache-2.0
#include "lib/aws/sigv4.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <map>

#include "lib/crypto/hash.h"

namespace enclavia::aws {

namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// RFC 9110 §5.6.2 token characters.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// CanonicalHeaderValue trims the value and collapses runs of spaces into one (SigV4 step 4).
std::string CanonicalHeaderValue(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) {
      out.push_back(' ');
      space = false;
    }
    out.push_back(c);
  }
  return out;
}

std::string HexOf(ByteSpan data) { return HexEncode(data); }

bool ValidAmzDate(std::string_view d) {
  if (d.size() != 16 || d[8] != 'T' || d[15] != 'Z') {
    return false;
  }
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && (d[i] < '0' || d[i] > '9')) {
      return false;
    }
  }
  return true;
}

}  // namespace

Credentials Credentials::Clone() const {
  return Credentials{access_key_id, crypto::SecretBytes(secret_access_key.Expose()), session_token};
}

Result<Credentials> CredentialsFromEnvironment() {
  const char* id = std::getenv("AWS_ACCESS_KEY_ID");
  const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  if (id == nullptr || *id == '\0' || secret == nullptr || *secret == '\0') {
    return Error(Code::kNotFound,
                 "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  const char* token = std::getenv("AWS_SESSION_TOKEN");
  return Credentials{id, crypto::SecretBytes(AsBytes(secret)), token == nullptr ? "" : token};
}

std::string UriEncode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string CanonicalQueryString(const std::vector<Header>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(UriEncode(name, false), UriEncode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) {
      out.push_back('&');
    }
    out.append(name).append("=").append(value);
  }
  return out;
}

std::string FormatAmzDate(SystemTime t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  size_t n = std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf, n);
}

std::string HexSha256(ByteSpan data) { return HexOf(crypto::Sha256(data)); }

crypto::SecretBytes SigningKey(const crypto::SecretBytes& secret, std::string_view date,
                               std::string_view region, std::string_view service) {
  crypto::SecretBytes k_secret(4 + secret.size());
  std::copy_n("AWS4", 4, k_secret.MutableBytes().begin());
  std::copy(secret.Expose().begin(), secret.Expose().end(), k_secret.MutableBytes().begin() + 4);
  auto step = [](const crypto::SecretBytes& key, std::string_view data) {
    Bytes mac = crypto::Hmac(crypto::HashAlgorithm::kSha256, key.Expose(), AsBytes(data));
    crypto::SecretBytes out(mac);
    crypto::Cleanse(mac.data(), mac.size());
    return out;
  };
  crypto::SecretBytes k_date = step(k_secret, date);
  crypto::SecretBytes k_region = step(k_date, region);
  crypto::SecretBytes k_service = step(k_region, service);
  return step(k_service, "aws4_request");
}

Result<Signature> Sign(const Credentials& credentials, const Scope& scope,
                       const SigningRequest& request) {
  if (!ValidAmzDate(scope.amz_date)) {
    return Error(Code::kInvalidArgument, "sigv4: amz_date must be YYYYMMDDTHHMMSSZ");
  }
  if (scope.region.empty() || scope.service.empty() || request.method.empty() ||
      request.path.empty() || request.path.front() != '/') {
    return Error(Code::kInvalidArgument,
                 "sigv4: empty method, region or service, or a relative path");
  }
  // Canonical headers: lowercase names, sorted; repeated names joined with ','.
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return Error(Code::kInvalidArgument, "sigv4: header name is not a token");
    }
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return Error(Code::kInvalidArgument, "sigv4: header " + name + " holds CR, LF or NUL");
    }
    std::string& slot = headers[Lower(name)];
    if (!slot.empty()) {
      slot.push_back(',');
    }
    slot.append(CanonicalHeaderValue(value));
  }
  if (headers.find("host") == headers.end()) {
    return Error(Code::kInvalidArgument, "sigv4: the request has no host header");
  }
  Signature sig;
  std::string canonical_headers;
  for (const auto& [name, value] : headers) {
    canonical_headers.append(name).append(":").append(value).append("\n");
    if (!sig.signed_headers.empty()) {
      sig.signed_headers.push_back(';');
    }
    sig.signed_headers.append(name);
  }
  sig.canonical_request = request.method;
  sig.canonical_request.append("\n")
      .append(UriEncode(request.path, true))
      .append("\n")
      .append(CanonicalQueryString(request.query))
      .append("\n")
      .append(canonical_headers)
      .append("\n")
      .append(sig.signed_headers)
      .append("\n")
      .append(request.payload_hash);

  std::string date = scope.amz_date.substr(0, 8);
  std::string credential_scope = date;
  credential_scope.append("/")
      .append(scope.region)
      .append("/")
      .append(scope.service)
      .append("/aws4_request");
  sig.string_to_sign = std::string(kAlgorithm);
  sig.string_to_sign.append("\n")
      .append(scope.amz_date)
      .append("\n")
      .append(credential_scope)
      .append("\n")
      .append(HexSha256(AsBytes(sig.canonical_request)));

  crypto::SecretBytes key =
      SigningKey(credentials.secret_access_key, date, scope.region, scope.service);
  sig.signature = HexOf(
      crypto::Hmac(crypto::HashAlgorithm::kSha256, key.Expose(), AsBytes(sig.string_to_sign)));
  sig.authorization = std::string(kAlgorithm);
  sig.authorization.append(" Credential=")
      .append(credentials.access_key_id)
      .append("/")
      .append(credential_scope)
      .append(", SignedHeaders=")
      .append(sig.signed_headers)
      .append(", Signature=")
      .append(sig.signature);
  return sig;
}

Result<void> SignRequest(const Credentials& credentials, std::string_view region,
                         std::string_view service, SystemTime now, SigningRequest& request) {
  Scope scope{FormatAmzDate(now), std::string(region), std::string(service)};
  request.headers.emplace_back("X-Amz-Date", scope.amz_date);
  request.headers.emplace_back("X-Amz-Content-Sha256", request.payload_hash);
  if (!credentials.session_token.empty()) {
    request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  ASSIGN_OR_RETURN(Signature sig, Sign(credentials, scope, request));
  request.headers.emplace_back("Authorization", std::move(sig.authorization));
  return Ok();
}

}  // namespace enclavia::aws
