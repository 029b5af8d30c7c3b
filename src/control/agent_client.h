// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CONTROL_AGENT_CLIENT_H_
#define ENCLAVIA_CONTROL_AGENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/result.h"
#include "lib/net/address.h"

// AgentClient calls a host agent's local API (docs/platform-api.md, host table) with its bearer
// token, over lib/http's blocking Fetch.
namespace enclavia::control {

struct AgentLocation {
  // address is either an address ("tcp:127.0.0.1:7000", "unix:/…") or the path of a file holding
  // one (DIR/host/address, written by the agent once it listens). The file and the token file are
  // read again on every call, so a restarted agent on a new port is found.
  std::string address;
  std::string token_file;  // DIR/host/token.
};

struct LaunchRequest {
  std::string name;
  std::string eif;  // Absolute path.
  bool debug = false;
  uint32_t cpus = 0;
  uint64_t memory_mib = 0;
  uint32_t port = 0;  // 0 = the agent picks.
  std::string storage_json;  // "" or a JSON object passed to the agent as "storage".
  std::string chain_json;    // "" or a JSON array of base64 entries passed as "chain".
};

// Errors of every call: kUnavailable "cannot reach the host agent …" when it does not answer
// (or its address or token file is missing); for an HTTP error status, the agent's one-line
// message with 404 → kNotFound, 409 → kFailedPrecondition, 400 → kInvalidArgument,
// 503 → kUnavailable, else kInternal; kMalformed for a reply that is not the JSON expected.
// Thread-safe (no state beyond the options).
class AgentClient {
 public:
  explicit AgentClient(AgentLocation location,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60))
      : location_(std::move(location)), timeout_(timeout) {}

  Result<nlohmann::json> Launch(const LaunchRequest& request);       // The Enclave.
  Result<std::vector<nlohmann::json>> List();                       // Enclaves by name.
  Result<nlohmann::json> Get(const std::string& name);
  Result<void> Remove(const std::string& name);
  Result<nlohmann::json> Restart(const std::string& name);
  Result<std::string> Console(const std::string& name, uint64_t offset);
  Result<std::vector<std::string>> Roots();  // PEM texts.
  Result<nlohmann::json> Health();  // With a short (2 s) timeout.
  // Upgrade calls the agent's upgrade endpoints of enclave `name` (docs/upgrade.md): GET
  // "chain" or "upgrade" (status); POST "upgrade/stage" {request, eif}, "upgrade/revoke"
  // {revocation}, "upgrade/activate" {id?, force?}. An activation may take a minute.
  Result<nlohmann::json> Upgrade(const std::string& name, const std::string& action,
                                 const nlohmann::json& body = nullptr);

  // Describe names the agent for messages ("the host agent at tcp:…").
  std::string Describe() const;

 private:
  struct Reply {
    int status;
    std::string body;
  };
  Result<Reply> Call(const std::string& method, const std::string& target, std::string body,
                     std::chrono::milliseconds timeout);
  Result<nlohmann::json> CallJson(const std::string& method, const std::string& target,
                                  std::string body = "");

  AgentLocation location_;
  std::chrono::milliseconds timeout_;
};

}  // namespace enclavia::control

#endif  // ENCLAVIA_CONTROL_AGENT_CLIENT_H_
