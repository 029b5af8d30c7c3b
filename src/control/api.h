// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CONTROL_API_H_
#define ENCLAVIA_CONTROL_API_H_

#include <optional>
#include <string>

#include "control/agent_client.h"
#include "control/store.h"
#include "lib/http/http.h"

// The control plane's REST API (docs/platform-api.md, control table). Outside the trust boundary:
// it handles images (public), names, states, URLs and PCRs, never keys or plaintext.
namespace enclavia::control {

class Api {
 public:
  // `data_dir` is DIR (absolute): images live in DIR/control/images, roots written for trust
  // files in DIR/control/roots, and DIR/nsm/root.pem is the local simulator's root. `store` and
  // `agent` must outlive the Api.
  Api(std::string data_dir, Store& store, AgentClient& agent);

  // Handle serves one request and returns the response. It blocks (database, host agent, reading
  // an uploaded image): call it off the HTTP server's threads. Thread-safe.
  http::Response Handle(const http::Request& request);

  // SpoolPath is ServerOptions::spool: image uploads go to a new temporary file in the images
  // directory (Handle renames or removes it).
  std::optional<std::string> SpoolPath(const http::Request& head) const;

  static constexpr uint64_t kMaxImageSize = uint64_t{8} << 30;

  // ActivateDue activates every upgrade staged through this control plane that is due at
  // `now_unix` and not revoked (docs/upgrade.md, "Automatic activation"); each outcome is an
  // event. Returns how many it activated. Blocks; call it off the HTTP threads.
  size_t ActivateDue(int64_t now_unix);

 private:
  http::Response Health();
  http::Response UploadImage(const http::Request& request);
  http::Response ListImages();
  http::Response GetImage(const std::string& id);
  // StoredEnclave is enclave `name`'s row; kNotFound "no enclave named NAME" (a 404) if none.
  Result<EnclaveRow> StoredEnclave(const std::string& name);
  http::Response Deploy(const http::Request& request);
  http::Response ListEnclaves();
  http::Response GetEnclave(const std::string& name);
  http::Response RemoveEnclave(const std::string& name);
  http::Response RestartEnclave(const std::string& name);
  http::Response Logs(const std::string& name, const http::Request& request);
  http::Response Trust(const std::string& name);
  // Upgrades (docs/upgrade.md): `action` is "upgrade" (status, GET), "chain" (GET),
  // "upgrade/stage", "upgrade/revoke" or "upgrade/activate" (POST).
  http::Response Upgrade(const std::string& name, const std::string& action,
                         const http::Request& request);
  http::Response Stage(const EnclaveRow& row, const nlohmann::json& body);
  http::Response Revoke(const EnclaveRow& row, const nlohmann::json& body);
  http::Response Activate(EnclaveRow row, const nlohmann::json& body);
  // ManagedGenesis signs a genesis for `name` with the control plane's managed key.
  Result<std::string> ManagedGenesis(const std::string& name, const ImageRow& image, bool debug,
                                     uint64_t window_s);
  http::Response Events(const http::Request& request);

  // TrustRoots returns the trust file's roots: file paths of the host's PEM roots, or
  // "aws-nitro" when the host has none.
  Result<std::vector<std::string>> TrustRoots();
  // Refresh updates `row` from the agent's view of it (recording a state change) and stores it.
  void Refresh(EnclaveRow& row, const nlohmann::json& agent_view);

  std::string data_dir_;
  std::string images_dir_;
  Store& store_;
  AgentClient& agent_;
};


}  // namespace enclavia::control

#endif  // ENCLAVIA_CONTROL_API_H_
