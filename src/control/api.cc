// SPDX-License-Identifier: Apache-2.0
#include "control/api.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

#include "control/keys/keys.h"
#include "lib/config/names.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"
#include "lib/eif/reader.h"
#include "lib/sys/fd.h"
#include "lib/upgrade/chain.h"

namespace enclavia::control {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using http::JsonError;
using http::Response;

constexpr int kMaxEvents = 1000;

Response Json(int status, const json& body) {
  Response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return r;
}

std::string Trim(std::string_view s) {
  size_t start = s.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) {
    return "";
  }
  size_t end = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(start, end - start + 1));
}

bool IsLowerHex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

// TomlString quotes `s` as a TOML basic string.
std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out.push_back(kHex[(c >> 4) & 15]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

// Sha256File is the image id: the SHA-256 of the file, hex.
Result<std::string> Sha256File(const std::string& path) {
  ASSIGN_OR_RETURN(Bytes digest, crypto::HashFile(crypto::HashAlgorithm::kSha256, path));
  return HexEncode(digest);
}

std::string RandomHex(size_t bytes) {
  Bytes b(bytes);
  crypto::RandomFill(b);
  return HexEncode(b);
}

json ParseOr(const std::string& text, json fallback) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? fallback : j;
}

json ImageJson(const ImageRow& image) {
  return {{"id", image.id},
          {"name", image.name},
          {"size", image.size},
          {"describe", ParseOr(image.describe_json, json::object())},
          {"created", image.created}};
}

// EnclaveJson is the Enclave of the API: the agent's view (when there is one) plus "image".
json EnclaveJson(const EnclaveRow& row, const json* agent_view) {
  json out;
  if (agent_view != nullptr) {
    out = *agent_view;
  } else {
    out = {{"name", row.name},   {"state", row.state}, {"url", row.url},
           {"port", row.port},   {"debug", row.debug}, {"cpus", row.cpus},
           {"memory_mib", row.memory_mib}};
    out["pcrs"] = ParseOr(row.pcrs_json, json::object());
  }
  out["image"] = row.image;
  out["created"] = row.created;
  return out;
}

template <typename T>
T Field(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return fallback;
  }
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}

// Route splits "/v1/enclaves/NAME/ACTION" into NAME and ACTION ("" when absent).
struct EnclaveRoute {
  std::string name;
  std::string action;
};
std::optional<EnclaveRoute> ParseEnclaveRoute(std::string_view path) {
  constexpr std::string_view kPrefix = "/v1/enclaves/";
  if (path.substr(0, kPrefix.size()) != kPrefix) {
    return std::nullopt;
  }
  std::string_view rest = path.substr(kPrefix.size());
  size_t slash = rest.find('/');
  EnclaveRoute route;
  route.name = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) {
    route.action = std::string(rest.substr(slash + 1));
  }
  if (route.name.empty() ||
      (route.action.find('/') != std::string::npos && route.action.rfind("upgrade/", 0) != 0)) {
    return std::nullopt;
  }
  return route;
}

Response MethodNotAllowed() { return JsonError(405, "method not allowed"); }

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ImagePcrs is what an image's enclave attests: its PCRs 0, 1, 2 (and 8 when signed), or zeros
// in debug mode (as Nitro reports them).
Result<upgrade::PcrMap> ImagePcrs(const ImageRow& image, bool debug) {
  upgrade::PcrMap out;
  const std::pair<uint32_t, const std::string*> pcrs[] = {
      {0, &image.pcr0}, {1, &image.pcr1}, {2, &image.pcr2}, {8, &image.pcr8}};
  for (const auto& [index, hex] : pcrs) {
    if (hex->empty()) {
      continue;
    }
    ASSIGN_OR_RETURN(Bytes value, HexDecode(*hex));
    out[index] = debug ? Bytes(value.size(), 0) : std::move(value);
  }
  return out;
}

Result<upgrade::Digest> DigestFromHex(const json& view, const char* key) {
  std::string hex = Field<std::string>(view, key, "");
  auto bytes = HexDecode(hex);
  if (!bytes || bytes->size() != 32) {
    return Error(Code::kMalformed, std::string("host agent: the status has no ") + key);
  }
  upgrade::Digest out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

}  // namespace

Result<EnclaveRow> Api::StoredEnclave(const std::string& name) {
  ASSIGN_OR_RETURN(std::optional<EnclaveRow> row, store_.GetEnclave(name));
  if (!row) {
    return Error(Code::kNotFound, "no enclave named " + name);
  }
  return std::move(*row);
}

Api::Api(std::string data_dir, Store& store, AgentClient& agent)
    : data_dir_(std::move(data_dir)),
      images_dir_(data_dir_ + "/control/images"),
      store_(store),
      agent_(agent) {}

std::optional<std::string> Api::SpoolPath(const http::Request& head) const {
  if (head.method != "POST" || head.path() != "/v1/images") {
    return std::nullopt;
  }
  return images_dir_ + "/upload-" + RandomHex(12) + ".tmp";
}

Response Api::Handle(const http::Request& request) {
  std::string_view path = request.path();
  const std::string& method = request.method;
  if (path == "/healthz") {
    return method == "GET" ? Health() : MethodNotAllowed();
  }
  if (path == "/v1/images") {
    if (method == "POST") {
      return UploadImage(request);
    }
    return method == "GET" ? ListImages() : MethodNotAllowed();
  }
  if (path.rfind("/v1/images/", 0) == 0) {
    return method == "GET" ? GetImage(std::string(path.substr(11))) : MethodNotAllowed();
  }
  if (path == "/v1/enclaves") {
    if (method == "POST") {
      return Deploy(request);
    }
    return method == "GET" ? ListEnclaves() : MethodNotAllowed();
  }
  if (path == "/v1/events") {
    return method == "GET" ? Events(request) : MethodNotAllowed();
  }
  if (auto route = ParseEnclaveRoute(path)) {
    if (!config::ValidEnclaveName(route->name)) {
      return JsonError(404, "no enclave named " + route->name.substr(0, 64));
    }
    if (route->action.empty()) {
      if (method == "GET") {
        return GetEnclave(route->name);
      }
      return method == "DELETE" ? RemoveEnclave(route->name) : MethodNotAllowed();
    }
    if (route->action == "restart") {
      return method == "POST" ? RestartEnclave(route->name) : MethodNotAllowed();
    }
    if (route->action == "logs") {
      return method == "GET" ? Logs(route->name, request) : MethodNotAllowed();
    }
    if (route->action == "trust") {
      return method == "GET" ? Trust(route->name) : MethodNotAllowed();
    }
    if (route->action == "upgrade" || route->action == "chain") {
      return method == "GET" ? Upgrade(route->name, route->action, request) : MethodNotAllowed();
    }
    if (route->action == "upgrade/stage" || route->action == "upgrade/revoke" ||
        route->action == "upgrade/activate") {
      return method == "POST" ? Upgrade(route->name, route->action, request) : MethodNotAllowed();
    }
  }
  return JsonError(404, "no such endpoint: " + method + " " + std::string(path).substr(0, 100));
}

Response Api::Health() {
  auto health = agent_.Health();
  return Json(200, {{"ok", true}, {"hosts", health ? 1 : 0}});
}

Response Api::UploadImage(const http::Request& request) {
  std::string name = request.Query("name").value_or("");
  if (name.size() > 128 ||
      std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
    if (!request.body_file.empty()) {
      ::unlink(request.body_file.c_str());
    }
    return JsonError(400, "the image name must be at most 128 printable characters");
  }
  std::string temp = request.body_file;
  if (temp.empty()) {
    // A small body the server kept in memory (no spool): the same checks on a file.
    temp = images_dir_ + "/upload-" + RandomHex(12) + ".tmp";
    auto written = WriteFileAtomic(temp, ByteSpan(reinterpret_cast<const uint8_t*>(request.body.data()),
                                                  request.body.size()),
                                   0600);
    if (!written) {
      return http::FromError(written.error());
    }
  }
  // Whatever happens below, the temporary file does not stay.
  struct Remove {
    std::string path;
    ~Remove() {
      if (!path.empty()) {
        ::unlink(path.c_str());
      }
    }
  } remove{temp};

  auto info = eif::ReadEif(temp);
  if (!info) {
    return JsonError(400, info.error().message());
  }
  auto id = Sha256File(temp);
  if (!id) {
    return http::FromError(id.error());
  }
  std::error_code ec;
  uint64_t size = fs::file_size(temp, ec);
  std::string final_path = images_dir_ + "/" + *id + ".eif";
  if (!fs::exists(final_path, ec)) {
    if (::chmod(temp.c_str(), 0444) != 0 || ::rename(temp.c_str(), final_path.c_str()) != 0) {
      return JsonError(500, "cannot store the image in " + images_dir_ + ": " +
                                std::string(std::strerror(errno)));
    }
    remove.path.clear();
  }
  ImageRow row;
  row.id = *id;
  row.name = name;
  row.size = size;
  row.describe_json = eif::DescribeJson(*info);
  row.pcr0 = HexEncode(info->measurements.pcr0);
  row.pcr1 = HexEncode(info->measurements.pcr1);
  row.pcr2 = HexEncode(info->measurements.pcr2);
  row.pcr8 = info->measurements.pcr8 ? HexEncode(*info->measurements.pcr8) : "";
  if (auto put = store_.PutImage(row); !put) {
    return http::FromError(put.error());
  }
  (void)store_.AddEvent("", "upload", "image " + row.id + (name.empty() ? "" : " (" + name + ")"));
  auto stored = store_.GetImage(row.id);
  return Json(201, ImageJson(stored && *stored ? **stored : row));
}

Response Api::ListImages() {
  auto images = store_.ListImages();
  if (!images) {
    return http::FromError(images.error());
  }
  json out = json::array();
  for (const auto& image : *images) {
    out.push_back(ImageJson(image));
  }
  return Json(200, out);
}

// GetImage answers whether an image is stored: the CLI asks before uploading, so deploying an
// image the control plane already holds (content-addressed by SHA-256) skips the upload.
Response Api::GetImage(const std::string& id) {
  auto image = store_.GetImage(id);
  if (!image) {
    return http::FromError(image.error());
  }
  if (!*image) {
    return JsonError(404, "no image " + id.substr(0, 64));
  }
  return Json(200, ImageJson(**image));
}

Response Api::Deploy(const http::Request& request) {
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) {
    return JsonError(400, "the body must be a JSON object {\"name\", \"image\", ...}");
  }
  std::string name = Field<std::string>(body, "name", "");
  std::string image_id = Field<std::string>(body, "image", "");
  if (!config::ValidEnclaveName(name)) {
    return JsonError(400, "name must be 1-63 of a-z, 0-9 and '-' (not first)");
  }
  if (!IsLowerHex(image_id) || image_id.size() != 64) {
    return JsonError(400, "image must be an image id (64 hex digits) from POST /v1/images");
  }
  auto image = store_.GetImage(image_id);
  if (!image) {
    return http::FromError(image.error());
  }
  if (!*image) {
    return JsonError(404, "no image " + image_id + ": upload it first");
  }
  auto existing = store_.GetEnclave(name);
  if (!existing) {
    return http::FromError(existing.error());
  }
  if (*existing) {
    return JsonError(409, "an enclave named " + name + " already exists: remove it first");
  }
  LaunchRequest launch;
  launch.name = name;
  launch.eif = images_dir_ + "/" + image_id + ".eif";
  launch.debug = Field<bool>(body, "debug", false);
  launch.cpus = Field<uint32_t>(body, "cpus", 0);
  launch.memory_mib = Field<uint64_t>(body, "memory_mib", 0);
  if (body.contains("storage")) {
    // Checked by the host agent, which owns volumes; here only its shape.
    if (!body["storage"].is_object()) {
      return JsonError(400, "storage must be an object {\"size_bytes\", \"backend\", \"witnesses\"}");
    }
    launch.storage_json = body["storage"].dump();
  }
  // The upgrade chain (docs/upgrade.md): a genesis the CLI signed, a whole chain (a relaunch),
  // or a genesis signed here with the managed key. None: an unchained enclave.
  json chain = json::array();
  if (auto it = body.find("chain"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) {
      return JsonError(400, "chain must be an array of base64 entries");
    }
    chain = *it;
  } else if (auto g = body.find("genesis"); g != body.end() && !g->is_null()) {
    if (!g->is_string()) {
      return JsonError(400, "genesis must be a base64 string");
    }
    chain.push_back(*g);
  } else if (Field<bool>(body, "managed_key", false)) {
    auto genesis = ManagedGenesis(name, **image, launch.debug,
                                  Field<uint64_t>(body, "staging_window_s", 72 * 3600));
    if (!genesis) {
      return http::FromError(genesis.error());
    }
    chain.push_back(*genesis);
  }
  if (!chain.empty()) {
    launch.chain_json = chain.dump();
  }
  auto launched = agent_.Launch(launch);
  if (!launched) {
    (void)store_.AddEvent(name, "deploy_failed", launched.error().message());
    return http::FromError(launched.error());
  }
  EnclaveRow row;
  row.name = name;
  row.image = image_id;
  row.debug = launch.debug;
  row.cpus = launch.cpus;
  row.memory_mib = launch.memory_mib;
  row.storage_json = launch.storage_json.empty() ? "{}" : launch.storage_json;
  row.chain_json = launch.chain_json.empty() ? "[]" : launch.chain_json;
  row.state = Field<std::string>(*launched, "state", "unknown");
  row.url = Field<std::string>(*launched, "url", "");
  row.port = Field<uint32_t>(*launched, "port", 0);
  row.pcrs_json = launched->contains("pcrs") ? (*launched)["pcrs"].dump() : "{}";
  row.debug = Field<bool>(*launched, "debug", row.debug);
  row.cpus = Field<uint32_t>(*launched, "cpus", row.cpus);
  row.memory_mib = Field<uint64_t>(*launched, "memory_mib", row.memory_mib);
  if (auto put = store_.PutEnclave(row); !put) {
    return http::FromError(put.error());
  }
  (void)store_.AddEvent(name, "deploy",
                        "image " + image_id + (row.debug ? " (debug)" : "") + " at " + row.url);
  auto stored = store_.GetEnclave(name);
  return Json(201, EnclaveJson(stored && *stored ? **stored : row, &*launched));
}

void Api::Refresh(EnclaveRow& row, const json& view) {
  std::string state = Field<std::string>(view, "state", "unknown");
  EnclaveRow before = row;
  row.state = state;
  row.url = Field<std::string>(view, "url", row.url);
  row.port = Field<uint32_t>(view, "port", row.port);
  if (view.contains("pcrs")) {
    row.pcrs_json = view["pcrs"].dump();
  }
  row.cpus = Field<uint32_t>(view, "cpus", row.cpus);
  row.memory_mib = Field<uint64_t>(view, "memory_mib", row.memory_mib);
  if (before.state != row.state) {
    (void)store_.AddEvent(row.name, "state", before.state + " -> " + row.state);
  }
  if (before.state != row.state || before.url != row.url || before.port != row.port ||
      before.pcrs_json != row.pcrs_json || before.cpus != row.cpus ||
      before.memory_mib != row.memory_mib) {
    (void)store_.PutEnclave(row);
  }
}

Response Api::ListEnclaves() {
  auto rows = store_.ListEnclaves();
  if (!rows) {
    return http::FromError(rows.error());
  }
  json out = json::array();
  auto views = agent_.List();
  if (!views) {
    // The host agent is down: say what we last knew, and that it may be stale.
    for (const auto& row : *rows) {
      json e = EnclaveJson(row, nullptr);
      e["state"] = "unknown";
      e["error"] = views.error().message();
      out.push_back(std::move(e));
    }
    return Json(200, out);
  }
  std::map<std::string, const json*> by_name;
  for (const auto& view : *views) {
    by_name[view["name"].get<std::string>()] = &view;
  }
  for (auto row : *rows) {
    auto it = by_name.find(row.name);
    if (it == by_name.end()) {
      json gone = {{"state", "stopped"}};
      Refresh(row, gone);
      json e = EnclaveJson(row, nullptr);
      e["error"] = "the host agent does not know this enclave";
      out.push_back(std::move(e));
      continue;
    }
    Refresh(row, *it->second);
    out.push_back(EnclaveJson(row, it->second));
  }
  return Json(200, out);
}

Response Api::GetEnclave(const std::string& name) {
  auto row = StoredEnclave(name);
  if (!row) {
    return http::FromError(row.error());
  }
  auto view = agent_.Get(name);
  if (!view) {
    json e = EnclaveJson(*row, nullptr);
    if (view.error().code() == Code::kNotFound) {
      Refresh(*row, json{{"state", "stopped"}});
      e = EnclaveJson(*row, nullptr);
      e["error"] = "the host agent does not know this enclave";
    } else {
      e["state"] = "unknown";
      e["error"] = view.error().message();
    }
    return Json(200, e);
  }
  Refresh(*row, *view);
  return Json(200, EnclaveJson(*row, &*view));
}

Response Api::RemoveEnclave(const std::string& name) {
  auto row = StoredEnclave(name);
  if (!row) {
    return http::FromError(row.error());
  }
  auto removed = agent_.Remove(name);
  if (!removed && removed.error().code() != Code::kNotFound) {
    return http::FromError(removed.error());  // Still running, maybe: keep the row.
  }
  if (auto deleted = store_.DeleteEnclave(name); !deleted) {
    return http::FromError(deleted.error());
  }
  (void)store_.AddEvent(name, "remove", removed ? "terminated" : "already gone from the host");
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

Response Api::RestartEnclave(const std::string& name) {
  auto row = StoredEnclave(name);
  if (!row) {
    return http::FromError(row.error());
  }
  auto view = agent_.Restart(name);
  if (!view) {
    return http::FromError(view.error());
  }
  (void)store_.AddEvent(name, "restart", "restarted from image " + row->image);
  Refresh(*row, *view);
  return Json(200, EnclaveJson(*row, &*view));
}

Response Api::Logs(const std::string& name, const http::Request& request) {
  auto row = StoredEnclave(name);
  if (!row) {
    return http::FromError(row.error());
  }
  if (!row->debug) {
    return JsonError(409, name + " is not a debug enclave: its output never leaves it (deploy with "
                             "--debug to see logs)");
  }
  uint64_t offset = 0;
  if (auto text = request.Query("offset")) {
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(text->c_str(), &end, 10);
    if (text->empty() || *end != '\0' || errno != 0 || text->front() == '-') {
      return JsonError(400, "offset must be a byte count");
    }
    offset = v;
  }
  auto console = agent_.Console(name, offset);
  if (!console) {
    return http::FromError(console.error());
  }
  Response r;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(*console);
  return r;
}

Result<std::vector<std::string>> Api::TrustRoots() {
  ASSIGN_OR_RETURN(std::vector<std::string> pems, agent_.Roots());
  if (pems.empty()) {
    return std::vector<std::string>{"aws-nitro"};
  }
  std::vector<std::string> roots;
  std::string nsm_root = data_dir_ + "/nsm/root.pem";
  std::string nsm_text;
  if (auto bytes = ReadFile(nsm_root, 1 << 20)) {
    nsm_text = Trim(std::string(bytes->begin(), bytes->end()));
  }
  for (const auto& pem : pems) {
    std::string text = Trim(pem);
    if (text.rfind("-----BEGIN CERTIFICATE-----", 0) != 0) {
      return Error(Code::kMalformed, "host agent: a root is not a PEM certificate");
    }
    if (!nsm_text.empty() && text == nsm_text) {
      roots.push_back(nsm_root);
      continue;
    }
    ByteSpan bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    std::string path = data_dir_ + "/control/roots/" + HexEncode(crypto::Sha256(bytes)) + ".pem";
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      text += "\n";
      RETURN_IF_ERROR(WriteFileAtomic(
          path, ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()), 0644));
    }
    roots.push_back(path);
  }
  return roots;
}

Response Api::Trust(const std::string& name) {
  auto row = StoredEnclave(name);
  if (!row) {
    return http::FromError(row.error());
  }
  auto view = agent_.Get(name);
  if (view) {
    Refresh(*row, *view);
  }
  json pcrs = ParseOr(row->pcrs_json, json::object());
  auto roots = TrustRoots();
  if (!roots) {
    return http::FromError(roots.error());
  }
  std::string toml = "# Trust file for enclave " + name + " (image " + row->image +
                     "), written by enclavia-control.\n";
  toml += "roots = [";
  for (size_t i = 0; i < roots->size(); ++i) {
    toml += (i > 0 ? ", " : "") + TomlString((*roots)[i]);
  }
  toml += "]\nmax_age = \"1h\"\nfresh = false\n";
  toml += std::string("allow_debug = ") + (row->debug ? "true" : "false") + "\n\n[[accept]]\n";
  int listed = 0;
  for (const char* index : {"0", "1", "2", "8"}) {
    std::string value = pcrs.is_object() ? Field<std::string>(pcrs, index, "") : "";
    for (char& c : value) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (value.empty()) {
      continue;
    }
    if (!IsLowerHex(value) || value.size() != 96) {
      return JsonError(502, "the host agent reported a malformed PCR" + std::string(index));
    }
    toml += std::string("PCR") + index + " = \"" + value + "\"\n";
    ++listed;
  }
  if (listed == 0) {
    return JsonError(409, "no PCRs known for " + name + " yet: is it running?");
  }
  Response r;
  r.content_type = "application/toml";
  r.body = std::move(toml);
  return r;
}

Response Api::Events(const http::Request& request) {
  int64_t after = 0;
  if (auto text = request.Query("after")) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(text->c_str(), &end, 10);
    if (text->empty() || *end != '\0' || errno != 0) {
      return JsonError(400, "after must be an event id");
    }
    after = v;
  }
  auto events = store_.Events(after, kMaxEvents);
  if (!events) {
    return http::FromError(events.error());
  }
  json out = json::array();
  for (const auto& e : *events) {
    out.push_back({{"id", e.id},
                   {"time", e.time},
                   {"enclave", e.enclave},
                   {"kind", e.kind},
                   {"detail", e.detail}});
  }
  return Json(200, out);
}

Result<std::string> Api::ManagedGenesis(const std::string& name, const ImageRow& image,
                                        bool debug, uint64_t window_s) {
  ASSIGN_OR_RETURN(std::unique_ptr<crypto::Signer> signer,
                   OpenOrCreateManagedKey(data_dir_ + "/control", name));
  upgrade::Genesis genesis;
  genesis.enclave_id = name;
  ASSIGN_OR_RETURN(genesis.first_pcrs, ImagePcrs(image, debug));
  genesis.control_keys = {signer->public_key().ToSpki()};
  genesis.upgradable = true;
  genesis.min_staging_window_s = window_s;
  genesis.created_unix = static_cast<uint64_t>(NowUnix());
  ASSIGN_OR_RETURN(Bytes entry, upgrade::SignGenesis(genesis, *signer));
  return Base64Encode(entry);
}

Response Api::Upgrade(const std::string& name, const std::string& action,
                      const http::Request& request) {
  auto row = StoredEnclave(name);
  if (!row) {
    return http::FromError(row.error());
  }
  if (action == "upgrade" || action == "chain") {
    auto view = agent_.Upgrade(name, action);
    if (!view) {
      return http::FromError(view.error());
    }
    return Json(200, *view);
  }
  json body = json::parse(request.body.empty() ? std::string("{}") : request.body, nullptr,
                          /*allow_exceptions=*/false);
  if (!body.is_object()) {
    return JsonError(400, "the body must be a JSON object");
  }
  if (action == "upgrade/stage") {
    return Stage(*row, body);
  }
  if (action == "upgrade/revoke") {
    return Revoke(*row, body);
  }
  return Activate(std::move(*row), body);
}

Response Api::Stage(const EnclaveRow& row, const json& body) {
  std::string image_id = Field<std::string>(body, "image", "");
  if (!IsLowerHex(image_id) || image_id.size() != 64) {
    return JsonError(400, "image must be an image id (64 hex digits) from POST /v1/images");
  }
  auto image = store_.GetImage(image_id);
  if (!image) {
    return http::FromError(image.error());
  }
  if (!*image) {
    return JsonError(404, "no image " + image_id + ": upload it first");
  }
  std::string request_b64 = Field<std::string>(body, "request", "");
  if (request_b64.empty()) {
    if (!Field<bool>(body, "managed_key", false)) {
      return JsonError(400, "request must be a signed upgrade request (base64), or set "
                            "managed_key to have the control plane sign it");
    }
    // The managed key signs a request for the enclave's current head.
    auto path = ManagedKeyPath(data_dir_ + "/control", row.name);
    std::error_code ec;
    if (!path || !fs::exists(*path, ec)) {
      return JsonError(409, row.name + " was not deployed with --managed-key: sign the request "
                                       "with its control key (--control-key)");
    }
    auto status = agent_.Upgrade(row.name, "upgrade");
    if (!status) {
      return http::FromError(status.error());
    }
    auto signer = OpenOrCreateManagedKey(data_dir_ + "/control", row.name);
    auto genesis = DigestFromHex(*status, "genesis");
    auto head = DigestFromHex(*status, "head");
    auto pcrs = ImagePcrs(**image, row.debug);
    for (const Error* e : {signer ? nullptr : &signer.error(), genesis ? nullptr : &genesis.error(),
                           head ? nullptr : &head.error(), pcrs ? nullptr : &pcrs.error()}) {
      if (e != nullptr) {
        return http::FromError(*e);
      }
    }
    upgrade::UpgradeRequest request;
    request.genesis = *genesis;
    request.previous_head = *head;
    request.new_pcrs = std::move(*pcrs);
    request.not_before_unix =
        static_cast<uint64_t>(NowUnix()) + Field<uint64_t>(body, "after_s", 72 * 3600);
    request.id = Field<std::string>(body, "id", "");
    if (request.id.empty()) {
      request.id = "u" + std::to_string(NowUnix());
    }
    auto entry = upgrade::SignRequest(request, **signer);
    if (!entry) {
      return http::FromError(entry.error());
    }
    request_b64 = Base64Encode(*entry);
  }
  auto staged = agent_.Upgrade(
      row.name, "upgrade/stage",
      {{"request", request_b64}, {"eif", images_dir_ + "/" + image_id + ".eif"}});
  if (!staged) {
    (void)store_.AddEvent(row.name, "upgrade_refused", "stage: " + staged.error().message());
    return http::FromError(staged.error());
  }
  UpgradeRow upgrade_row;
  upgrade_row.enclave = row.name;
  upgrade_row.request = Field<std::string>(*staged, "request", "");
  upgrade_row.id = Field<std::string>(*staged, "id", "");
  upgrade_row.image = image_id;
  upgrade_row.state = "staged";
  upgrade_row.due_at = Field<int64_t>(*staged, "due_at", 0);
  if (auto put = store_.PutUpgrade(upgrade_row); !put) {
    return http::FromError(put.error());
  }
  (void)store_.AddEvent(row.name, "upgrade_staged",
                        "request " + upgrade_row.id + " (image " + image_id + ") due at " +
                            std::to_string(upgrade_row.due_at));
  return Json(200, *staged);
}

Response Api::Revoke(const EnclaveRow& row, const json& body) {
  std::string revocation_b64 = Field<std::string>(body, "revocation", "");
  if (revocation_b64.empty()) {
    std::string id = Field<std::string>(body, "id", "");
    if (!Field<bool>(body, "managed_key", false) || id.empty()) {
      return JsonError(400, "revocation must be a signed revocation (base64), or set managed_key "
                            "and id to have the control plane sign it");
    }
    auto status = agent_.Upgrade(row.name, "upgrade");
    if (!status) {
      return http::FromError(status.error());
    }
    std::string hash;
    for (const json& staged : (*status)["staged"]) {
      if (Field<std::string>(staged, "id", "") == id) {
        hash = Field<std::string>(staged, "request", "");
      }
    }
    auto digest = DigestFromHex(json{{"request", hash}}, "request");
    if (!digest) {
      return JsonError(404, "no staged request " + id.substr(0, 64) + " for " + row.name);
    }
    auto signer = OpenOrCreateManagedKey(data_dir_ + "/control", row.name);
    if (!signer) {
      return http::FromError(signer.error());
    }
    auto entry = upgrade::SignRevocation(upgrade::Revocation{*digest}, **signer);
    if (!entry) {
      return http::FromError(entry.error());
    }
    revocation_b64 = Base64Encode(*entry);
  }
  auto revoked = agent_.Upgrade(row.name, "upgrade/revoke", {{"revocation", revocation_b64}});
  if (!revoked) {
    return http::FromError(revoked.error());
  }
  std::string hash = Field<std::string>(*revoked, "request", "");
  if (auto rows = store_.Upgrades(row.name)) {
    for (UpgradeRow& u : *rows) {
      if (u.request == hash) {
        u.state = "revoked";
        (void)store_.PutUpgrade(u);
      }
    }
  }
  (void)store_.AddEvent(row.name, "upgrade_revoked", "request " + Field<std::string>(*revoked, "id", ""));
  return Json(200, *revoked);
}

Response Api::Activate(EnclaveRow row, const json& body) {
  json request = {{"id", Field<std::string>(body, "id", "")},
                  {"force", Field<bool>(body, "force", false)}};
  auto activated = agent_.Upgrade(row.name, "upgrade/activate", request);
  if (!activated) {
    (void)store_.AddEvent(row.name, "upgrade_refused", "activate: " + activated.error().message());
    return http::FromError(activated.error());
  }
  json done = (*activated)["activated"];
  std::string hash = done.is_object() ? Field<std::string>(done, "request", "") : "";
  if (auto rows = store_.Upgrades(row.name)) {
    for (UpgradeRow& u : *rows) {
      if (u.request == hash) {
        u.state = "activated";
        (void)store_.PutUpgrade(u);
        row.image = u.image;
      }
    }
  }
  if (auto chain = agent_.Upgrade(row.name, "chain"); chain && (*chain)["chain"].is_array()) {
    row.chain_json = (*chain)["chain"].dump();
  }
  (void)store_.PutEnclave(row);
  Refresh(row, *activated);
  (void)store_.AddEvent(row.name, "upgrade_activated",
                        "request " + (done.is_object() ? Field<std::string>(done, "id", "") : "") +
                            " now serves from image " + row.image);
  return Json(200, *activated);
}

size_t Api::ActivateDue(int64_t now_unix) {
  auto rows = store_.Upgrades("");
  if (!rows) {
    return 0;
  }
  size_t activated = 0;
  for (UpgradeRow& u : *rows) {
    if (u.state != "staged" || u.due_at > now_unix) {
      continue;
    }
    auto row = StoredEnclave(u.enclave);
    if (!row) {
      u.state = "failed";
      (void)store_.PutUpgrade(u);
      continue;
    }
    Response response = Activate(std::move(*row), json{{"id", u.request}});
    if (response.status == 200) {
      ++activated;
    } else {
      u.state = "failed";  // The event says why; a person may stage again.
      (void)store_.PutUpgrade(u);
    }
  }
  return activated;
}

}  // namespace enclavia::control
