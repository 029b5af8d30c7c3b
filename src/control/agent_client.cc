// SPDX-License-Identifier: Apache-2.0
#include "control/agent_client.h"

#include <utility>

#include "lib/base/file.h"
#include "lib/http/http.h"

namespace enclavia::control {
namespace {

using json = nlohmann::json;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.pop_back();
  }
  size_t start = s.find_first_not_of(" \t\r\n");
  return start == std::string::npos ? std::string() : s.substr(start);
}

Result<std::string> ReadSmall(const std::string& path) {
  ASSIGN_OR_RETURN(Bytes bytes, ReadFile(path, 4096));
  return Trim(std::string(bytes.begin(), bytes.end()));
}

// PathSegment percent-encodes everything but unreserved characters (RFC 3986 §2.3).
std::string PathSegment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

Code CodeForStatus(int status) {
  switch (status) {
    case 404:
      return Code::kNotFound;
    case 409:
      return Code::kFailedPrecondition;
    case 400:
      return Code::kInvalidArgument;
    case 503:
      return Code::kUnavailable;
    default:
      return Code::kInternal;
  }
}

}  // namespace

std::string AgentClient::Describe() const {
  return "the host agent (" + location_.address + ")";
}

Result<AgentClient::Reply> AgentClient::Call(const std::string& method, const std::string& target,
                                             std::string body,
                                             std::chrono::milliseconds timeout) {
  std::string address_text = location_.address;
  bool is_address = address_text.rfind("tcp:", 0) == 0 || address_text.rfind("unix:", 0) == 0 ||
                    address_text.rfind("vsock:", 0) == 0;
  if (!is_address) {
    auto text = ReadSmall(address_text);
    if (!text || text->empty()) {
      return Error(Code::kUnavailable, "cannot reach the host agent: no address in " +
                                           location_.address + " (is enclavia-host running?)");
    }
    address_text = *text;
  }
  auto address = net::ParseAddress(address_text);
  if (!address) {
    return Error(Code::kUnavailable,
                 "bad host agent address " + address_text + ": " + address.error().message());
  }
  auto token = ReadSmall(location_.token_file);
  if (!token || token->empty()) {
    return Error(Code::kUnavailable,
                 "cannot read the host agent's token " + location_.token_file);
  }
  http::Request request;
  request.method = method;
  request.target = target;
  request.body = std::move(body);
  if (!request.body.empty()) {
    request.headers["content-type"] = "application/json";
  }
  http::ClientOptions options;
  options.timeout = timeout;
  options.bearer_token = *token;
  auto response = http::Fetch(*address, request, options);
  if (!response) {
    if (response.error().code() == Code::kUnavailable) {
      return Error(Code::kUnavailable, "cannot reach the host agent: " + response.error().message());
    }
    return Error(response.error().code(), "host agent: " + response.error().message());
  }
  if (response->status >= 400) {
    std::string message = Trim(response->body);
    try {
      json j = json::parse(response->body);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) {
        message = j["error"].get<std::string>();
      }
    } catch (const json::exception&) {
    }
    if (message.size() > 300) {
      message.resize(300);
    }
    return Error(CodeForStatus(response->status),
                 "host agent: " + message + " (HTTP " + std::to_string(response->status) + ")");
  }
  return Reply{response->status, std::move(response->body)};
}

Result<json> AgentClient::CallJson(const std::string& method, const std::string& target,
                                   std::string body) {
  ASSIGN_OR_RETURN(Reply reply, Call(method, target, std::move(body), timeout_));
  json j = json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Error(Code::kMalformed, "host agent: " + method + " " + target + ": reply is not JSON");
  }
  return j;
}

Result<json> AgentClient::Launch(const LaunchRequest& r) {
  json body = {{"name", r.name},   {"eif", r.eif},
               {"debug", r.debug}, {"cpus", r.cpus},
               {"memory_mib", r.memory_mib}, {"port", r.port}};
  if (!r.storage_json.empty() && r.storage_json != "{}") {
    json storage = json::parse(r.storage_json, nullptr, /*allow_exceptions=*/false);
    if (!storage.is_object()) {
      return Error(Code::kInvalidArgument, "storage must be a JSON object");
    }
    body["storage"] = std::move(storage);
  }
  if (!r.chain_json.empty() && r.chain_json != "[]") {
    json chain = json::parse(r.chain_json, nullptr, /*allow_exceptions=*/false);
    if (!chain.is_array()) {
      return Error(Code::kInvalidArgument, "chain must be a JSON array");
    }
    body["chain"] = std::move(chain);
  }
  ASSIGN_OR_RETURN(json enclave, CallJson("POST", "/v1/enclaves", body.dump()));
  if (!enclave.is_object()) {
    return Error(Code::kMalformed, "host agent: launch reply is not an enclave");
  }
  return enclave;
}

Result<std::vector<json>> AgentClient::List() {
  ASSIGN_OR_RETURN(json list, CallJson("GET", "/v1/enclaves"));
  if (!list.is_array()) {
    return Error(Code::kMalformed, "host agent: enclave list is not an array");
  }
  std::vector<json> out;
  for (auto& e : list) {
    if (e.is_object() && e.contains("name") && e["name"].is_string()) {
      out.push_back(std::move(e));
    }
  }
  return out;
}

Result<json> AgentClient::Get(const std::string& name) {
  ASSIGN_OR_RETURN(json enclave, CallJson("GET", "/v1/enclaves/" + PathSegment(name)));
  if (!enclave.is_object()) {
    return Error(Code::kMalformed, "host agent: reply is not an enclave");
  }
  return enclave;
}

Result<void> AgentClient::Remove(const std::string& name) {
  ASSIGN_OR_RETURN(Reply reply, Call("DELETE", "/v1/enclaves/" + PathSegment(name), "", timeout_));
  (void)reply;
  return Ok();
}

Result<json> AgentClient::Upgrade(const std::string& name, const std::string& action,
                                  const json& body) {
  bool get = body.is_null();
  std::string target = "/v1/enclaves/" + PathSegment(name) + "/" + action;
  ASSIGN_OR_RETURN(Reply reply,
                   Call(get ? "GET" : "POST", target,
                        get ? std::string() : body.dump(-1, ' ', false, json::error_handler_t::replace),
                        std::max(timeout_, std::chrono::milliseconds(120000))));
  json out = json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (!out.is_object()) {
    return Error(Code::kMalformed, Describe() + " sent a reply that is not a JSON object");
  }
  return out;
}

Result<json> AgentClient::Restart(const std::string& name) {
  ASSIGN_OR_RETURN(json enclave,
                   CallJson("POST", "/v1/enclaves/" + PathSegment(name) + "/restart"));
  if (!enclave.is_object()) {
    return Error(Code::kMalformed, "host agent: restart reply is not an enclave");
  }
  return enclave;
}

Result<std::string> AgentClient::Console(const std::string& name, uint64_t offset) {
  ASSIGN_OR_RETURN(Reply reply, Call("GET",
                                     "/v1/enclaves/" + PathSegment(name) +
                                         "/console?offset=" + std::to_string(offset),
                                     "", timeout_));
  return std::move(reply.body);
}

Result<std::vector<std::string>> AgentClient::Roots() {
  ASSIGN_OR_RETURN(json j, CallJson("GET", "/v1/roots"));
  if (!j.is_object() || !j.contains("roots") || !j["roots"].is_array()) {
    return Error(Code::kMalformed, "host agent: /v1/roots reply has no roots array");
  }
  std::vector<std::string> out;
  for (const auto& root : j["roots"]) {
    if (!root.is_string()) {
      return Error(Code::kMalformed, "host agent: a root is not a string");
    }
    out.push_back(root.get<std::string>());
  }
  return out;
}

Result<json> AgentClient::Health() {
  ASSIGN_OR_RETURN(Reply reply, Call("GET", "/healthz", "", std::chrono::seconds(2)));
  json j = json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Error(Code::kMalformed, "host agent: /healthz reply is not JSON");
  }
  return j;
}

}  // namespace enclavia::control
