// SPDX-License-Identifier: Apache-2.0
// The host agent. Threads: `io` (several threads) runs the API server, the relays and the public
// ports' HTTP handlers, none of which blocks; `control` (one thread) runs every Provider call and
// every change to the set of enclaves, one at a time, so launches, restarts and deletions never
// race each other. `mu` guards the records for the readers on `io` (/healthz, /metrics).
//
// nlohmann::json is used with exceptions off for parsing and with the replacing error handler
// for dumping; the few calls that could still throw are behind the try in HandleApi.
#include "host/agent/agent.h"
#include "host/agent/volumes.h"
#include "host/agent/egress.h"
#include "host/upgrade/service.h"
#include "host/upgrade/state.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "lib/config/names.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/channel/audit.h"
#include "lib/crypto/random.h"
#include "lib/http/http.h"
#include "lib/http/token.h"
#include "lib/net/framing.h"
#include "lib/transport/transport.h"
#include "lib/upgrade/chain.h"
#include "lib/upgrade/wire.h"

namespace enclavia::host {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using json = nlohmann::json;
using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kStateFile = "agent-state.json";
constexpr std::string_view kWellKnownPath = "/.well-known/enclavia/attestation";
constexpr std::string_view kChainPath = "/.well-known/enclavia/chain";
constexpr std::string_view kUpgradePath = "/.well-known/enclavia/upgrade";
constexpr std::chrono::milliseconds kStageTimeout{15000};
// Activation: the old enclave dials its successor, runs a handshake, quiesces its app and
// storage, hands the key ring over and waits for the successor's ack.
constexpr std::chrono::milliseconds kActivateTimeout{90000};
constexpr int kStateVersion = 1;
constexpr size_t kMaxStateFile = 16 << 20;
constexpr std::chrono::milliseconds kRefreshInterval{5000};
constexpr std::chrono::milliseconds kRebindBudget{3000};
constexpr std::chrono::milliseconds kDrainBudget{3000};
constexpr std::chrono::milliseconds kApiTimeout{180000};  // nitro-cli run-enclave may take 120 s.
constexpr size_t kMaxLoggedError = 300;

std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// OneLine makes a string from outside (an enclave's error, a provider's message) safe to log and
// return: printable ASCII only, bounded.
std::string OneLine(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxLoggedError)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

// Logger writes one JSON object per line: {"time", "level", "event", "enclave", "fields"}.
// Thread-safe.
class Logger {
 public:
  explicit Logger(std::function<void(std::string_view)> sink) : sink_(std::move(sink)) {}

  void Log(std::string_view level, std::string_view event, std::string_view enclave = "",
           json fields = json::object()) const {
    json line = {{"time", FormatRfc3339(std::chrono::system_clock::now())},
                 {"level", level},
                 {"event", event}};
    if (!enclave.empty()) {
      line["enclave"] = enclave;
    }
    if (!fields.empty()) {
      line["fields"] = std::move(fields);
    }
    std::string text = Dump(line);
    std::lock_guard<std::mutex> lock(mu_);
    if (sink_) {
      sink_(text);
    } else {
      std::fprintf(stderr, "%s\n", text.c_str());
      std::fflush(stderr);
    }
  }
  void Info(std::string_view event, std::string_view enclave = "",
            json fields = json::object()) const {
    Log("info", event, enclave, std::move(fields));
  }
  void Warn(std::string_view event, std::string_view enclave = "",
            json fields = json::object()) const {
    Log("warn", event, enclave, std::move(fields));
  }
  void Err(std::string_view event, std::string_view enclave = "",
           json fields = json::object()) const {
    Log("error", event, enclave, std::move(fields));
  }

 private:
  std::function<void(std::string_view)> sink_;
  mutable std::mutex mu_;
};

// UpgradeShared is one enclave's upgrade state, shared by the agent (control thread), its
// parent-port upgrade service (connection threads) and its public port (io threads).
struct UpgradeShared {
  mutable std::mutex mu;
  UpgradeState state;
  std::optional<net::Address> successor;  // The successor's ingress while an activation runs.

  UpgradeState Snapshot() const {
    std::lock_guard<std::mutex> lock(mu);
    return state;
  }
};

uint64_t NowUnix() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// PublicContext is what one enclave's public-port HTTP handler needs; shared with the relay's
// handler, so it outlives the record that made it.
struct PublicContext {
  PublicContext(asio::io_context& io_context, std::shared_ptr<const Logger> logger)
      : io(io_context), log(std::move(logger)) {}
  asio::io_context& io;
  std::shared_ptr<const Logger> log;
  std::string name;
  transport::Endpoint endpoint;
  std::chrono::milliseconds timeout{5000};
  size_t max_in_flight = 16;
  std::atomic<uint64_t> attestation_requests{0};
  std::atomic<uint64_t> in_flight{0};
  std::shared_ptr<UpgradeShared> upgrade;  // Its chain and staged upgrades (public).
};

http::Response JsonResponse(int status, const json& body) {
  http::Response response;
  response.status = status;
  response.body = Dump(body);
  return response;
}

// EnclaveCall is one exchange with an enclave's vsock port from the host: connect, and if
// `request` is set, send it as one record and read one record back; all within the context's
// timeout. `done` gets the response record (empty for a connect-only probe) or an error, exactly
// once, on the call's strand.
class EnclaveCall : public std::enable_shared_from_this<EnclaveCall> {
 public:
  using Done = std::function<void(Result<Bytes>)>;

  EnclaveCall(std::shared_ptr<PublicContext> context, net::Address address,
              std::optional<Bytes> request, Done done)
      : context_(std::move(context)),
        address_(std::move(address)),
        request_(std::move(request)),
        done_(std::move(done)),
        strand_(asio::make_strand(context_->io)),
        socket_(strand_),
        timer_(strand_) {}

  void Start() {
    asio::post(strand_, [self = shared_from_this()] { self->Begin(); });
  }

 private:
  void Begin() {
    auto resolved = net::Resolve(address_);
    if (!resolved) {
      Finish(resolved.error());
      return;
    }
    asio::generic::stream_protocol::endpoint endpoint(&resolved->storage, resolved->size);
    timer_.expires_after(context_->timeout);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) {
        self->Finish(Error(Code::kUnavailable, "the enclave did not answer within " +
                                                   std::to_string(self->context_->timeout.count()) +
                                                   " ms"));
      }
    });
    socket_.async_connect(endpoint, [self = shared_from_this()](error_code ec) {
      if (ec) {
        self->Finish(Error(Code::kUnavailable, "cannot reach the enclave: " + ec.message()));
        return;
      }
      self->Send();
    });
  }

  void Send() {
    if (finished_) {
      return;
    }
    if (!request_) {
      Finish(Bytes{});
      return;
    }
    size_t size = request_->size();
    out_.resize(net::kRecordHeaderSize + size);
    out_[0] = static_cast<uint8_t>(size >> 8);
    out_[1] = static_cast<uint8_t>(size & 0xff);
    std::copy(request_->begin(), request_->end(), out_.begin() + net::kRecordHeaderSize);
    asio::async_write(
        socket_, asio::buffer(out_), [self = shared_from_this()](error_code ec, size_t) {
          if (ec) {
            self->Finish(
                Error(Code::kUnavailable, "the enclave closed the connection: " + ec.message()));
            return;
          }
          self->ReadHeader();
        });
  }

  void ReadHeader() {
    asio::async_read(
        socket_, asio::buffer(header_), [self = shared_from_this()](error_code ec, size_t) {
          if (ec) {
            self->Finish(Error(Code::kUnavailable, "the enclave sent no answer: " + ec.message()));
            return;
          }
          size_t size = (size_t{self->header_[0]} << 8) | size_t{self->header_[1]};
          self->in_.resize(size);
          asio::async_read(
              self->socket_, asio::buffer(self->in_), [self](error_code body_ec, size_t) {
                if (body_ec) {
                  self->Finish(Error(Code::kUnavailable, "the enclave's answer was cut short"));
                  return;
                }
                self->Finish(std::move(self->in_));
              });
        });
  }

  void Finish(Result<Bytes> result) {
    if (finished_) {
      return;
    }
    finished_ = true;
    timer_.cancel();
    error_code ignored;
    socket_.close(ignored);
    Done done = std::move(done_);
    done(std::move(result));
  }

  std::shared_ptr<PublicContext> context_;
  net::Address address_;
  std::optional<Bytes> request_;
  Done done_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::generic::stream_protocol::socket socket_;
  asio::steady_timer timer_;
  Bytes out_;
  std::array<uint8_t, 2> header_{};
  Bytes in_;
  bool finished_ = false;
};

void ServeAttestation(const std::shared_ptr<PublicContext>& context, const http::Request& request,
                      http::Reply reply) {
  std::optional<std::string> nonce_hex = request.Query("nonce");
  if (!nonce_hex) {
    reply(http::JsonError(400, "missing nonce: ask for ?nonce=HEX (1 to 64 bytes)"));
    return;
  }
  auto nonce = HexDecode(*nonce_hex);
  if (!nonce || nonce->empty() || nonce->size() > channel::kMaxAuditNonce) {
    reply(http::JsonError(400, "the nonce must be 1 to 64 bytes of hex"));
    return;
  }
  context->attestation_requests.fetch_add(1);
  if (context->in_flight.fetch_add(1) >= context->max_in_flight) {
    context->in_flight.fetch_sub(1);
    reply(http::JsonError(503, "too many attestation requests in flight; retry shortly"));
    return;
  }
  Bytes encoded = channel::EncodeAuditRequest(channel::AuditRequest{std::move(*nonce)});
  auto call = std::make_shared<EnclaveCall>(
      context, transport::HostToEnclave(context->endpoint, transport::kAttestationPort),
      std::move(encoded), [context, reply = std::move(reply)](Result<Bytes> answer) {
        context->in_flight.fetch_sub(1);
        auto fail = [&](const std::string& why) {
          context->log->Warn("attestation_failed", context->name, {{"error", why}});
          reply(http::JsonError(502, why));
        };
        if (!answer) {
          fail(answer.error().message());
          return;
        }
        // The host never judges the document: it only checks the envelope it must unwrap.
        auto decoded = channel::DecodeAuditResponse(*answer);
        if (!decoded) {
          fail("the enclave's answer does not parse: " + decoded.error().message());
          return;
        }
        if (!decoded->error.empty()) {
          fail("the enclave could not attest: " + OneLine(decoded->error));
          return;
        }
        json chain = json::array();
        for (const Bytes& entry : decoded->chain) {
          chain.push_back(Base64Encode(entry));
        }
        reply(JsonResponse(
            200, {{"document", Base64Encode(decoded->attestation)}, {"chain", std::move(chain)}}));
      });
  call->Start();
}

void ServeHealth(const std::shared_ptr<PublicContext>& context, http::Reply reply) {
  auto call = std::make_shared<EnclaveCall>(
      context, transport::HostToEnclave(context->endpoint, transport::kIngressPort), std::nullopt,
      [reply = std::move(reply)](Result<Bytes> answer) {
        if (!answer) {
          reply(JsonResponse(503, {{"ok", false}, {"error", answer.error().message()}}));
          return;
        }
        reply(JsonResponse(200, {{"ok", true}}));
      });
  call->Start();
}

// PublicHandler serves the plain HTTP requests of an enclave's public port (the relay serves the
// WebSocket upgrades).
http::Handler PublicHandler(std::shared_ptr<PublicContext> context) {
  return [context = std::move(context)](http::Request request, http::Reply reply) {
    std::string_view path = request.path();
    if (path != kWellKnownPath && path != "/healthz" && path != kChainPath &&
        path != kUpgradePath) {
      reply(http::JsonError(404, "not found: this port serves WebSocket channels on /, " +
                                     std::string(kWellKnownPath) + ", " + std::string(kChainPath) +
                                     ", " + std::string(kUpgradePath) + " and /healthz"));
      return;
    }
    if (request.method != "GET") {
      reply(http::JsonError(405, "use GET"));
      return;
    }
    if (path == kChainPath || path == kUpgradePath) {
      // The chain and the staged upgrades are public: anyone may check what is staged and
      // `enclavia reproduce` it before it becomes due.
      UpgradeState state = context->upgrade ? context->upgrade->Snapshot() : UpgradeState{};
      json body = path == kChainPath ? ChainJson(state.chain) : StatusJson(state, NowUnix());
      body["name"] = context->name;
      reply(JsonResponse(200, body));
    } else if (path == kWellKnownPath) {
      ServeAttestation(context, request, std::move(reply));
    } else {
      ServeHealth(context, std::move(reply));
    }
  };
}

// Record is one enclave the agent manages.
struct Record {
  std::string name;  // Its public name (the key of `records`).
  // spec.name is the provider's instance name: the public name, or after an upgrade
  // "NAME-u<request hash prefix>" (two instances run side by side during an activation).
  LaunchSpec spec;
  uint16_t port = 0;
  uint64_t restarts = 0;
  EnclaveInfo info;              // As the provider last reported it.
  std::unique_ptr<Relay> relay;  // Null when it could not be started.
  RelayStats base;               // Counters of this enclave's earlier relays.
  std::shared_ptr<PublicContext> context;
  VolumeSpec volume;                        // size_bytes 0: no volume.
  std::unique_ptr<EnclaveStorage> storage;  // Its storage port (and witness ports).
  bool egress = false;                      // Its image enables [egress].
  std::unique_ptr<EgressDialer> dialer;     // Its egress port, while it runs.
  EgressStats egress_base;                  // Counters of this enclave's earlier dialers.
  std::shared_ptr<UpgradeShared> upgrade = std::make_shared<UpgradeShared>();
  std::unique_ptr<UpgradeHostService> upgrade_service;  // Its parent upgrade port, while it runs.
};


json PcrsJson(const std::map<int, std::string>& pcrs) {
  json out = json::object();
  for (const auto& [index, hex] : pcrs) {
    out[std::to_string(index)] = hex;
  }
  return out;
}

// AttestedPcrsJson is what the enclave attests: in debug mode Nitro (and the simulator) report
// PCR0, 1, 2 and 8 as zero, whatever the image measures.
json AttestedPcrsJson(const std::map<int, std::string>& pcrs, bool debug) {
  json out = PcrsJson(pcrs);
  if (debug) {
    for (const char* index : {"0", "1", "2", "8"}) {
      if (out.contains(index)) {
        out[index] = std::string(96, '0');
      }
    }
  }
  return out;
}

// EgressStatusLabel is a dial status as a Prometheus label value ("refused_by_host").
std::string EgressStatusLabel(egress::DialStatus status) {
  std::string out(egress::DialStatusName(status));
  std::replace(out.begin(), out.end(), ' ', '_');
  return out;
}

// AddEgressStats adds `more` to `into` (all counters but the `active` gauge).
void AddEgressStats(EgressStats& into, const EgressStats& more) {
  into.connections += more.connections;
  into.refused += more.refused;
  into.failed += more.failed;
  into.bytes_up += more.bytes_up;
  into.bytes_down += more.bytes_down;
  for (size_t i = 0; i < into.by_status.size(); ++i) {
    into.by_status[i] += more.by_status[i];
  }
}

json EndpointJson(const transport::Endpoint& endpoint) {
  return {{"cid", endpoint.cid}, {"local_dir", endpoint.local_dir}};
}

// Field readers for untrusted JSON (the API body, the state file): a wrong type is an error,
// never an exception.
Result<std::string> GetString(const json& object, const char* key, bool required) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) {
      return Error(Code::kInvalidArgument, std::string("missing \"") + key + "\"");
    }
    return std::string();
  }
  if (!it->is_string()) {
    return Error(Code::kInvalidArgument, std::string("\"") + key + "\" must be a string");
  }
  return it->get<std::string>();
}

Result<uint64_t> GetUnsigned(const json& object, const char* key, uint64_t max) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    return uint64_t{0};
  }
  if (!it->is_number_unsigned() || it->get<uint64_t>() > max) {
    return Error(Code::kInvalidArgument,
                 std::string("\"") + key + "\" must be an integer 0.." + std::to_string(max));
  }
  return it->get<uint64_t>();
}

Result<bool> GetBool(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    return false;
  }
  if (!it->is_boolean()) {
    return Error(Code::kInvalidArgument, std::string("\"") + key + "\" must be true or false");
  }
  return it->get<bool>();
}

// PromLabel escapes a Prometheus label value (text format 0.0.4).
std::string PromLabel(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

struct Agent::Impl {
  explicit Impl(AgentOptions opts)
      : options(std::move(opts)), log(std::make_shared<const Logger>(options.log)) {}

  // ---- Startup ----

  Result<void> LoadOrCreateToken();
  Result<void> LoadStateAndReattach();
  Result<void> StartApi();
  void StartThreads();

  // ---- Control (on the control thread, or before it starts / after it stopped) ----

  Result<void> SaveState();
  Result<std::unique_ptr<Relay>> StartRelay(Record& record, uint16_t port);
  Result<void> StartStorage(Record& record);
  void StopStorage(Record& record);
  bool ImageEgress(const std::string& name, const std::string& eif_path);
  Result<void> StartEgress(Record& record);
  void StopEgress(Record& record);
  std::optional<net::Address> WitnessAddress(const std::string& name) const;
  Result<void> StartUpgradeService(Record& record);
  void StopUpgradeService(Record& record);
  // StartServices starts what a running enclave's parent ports serve: storage, egress, upgrade.
  // On failure nothing of them is left running.
  Result<void> StartServices(Record& record);
  void StopServices(Record& record);
  void StopRelay(Record& record);
  void UpdateInfo(Record& record, const EnclaveInfo& info);
  void Refresh();
  void ScheduleRefresh();
  http::Response DoLaunch(const std::string& body);
  http::Response DoList();
  http::Response DoGet(const std::string& name);
  http::Response DoDelete(const std::string& name);
  http::Response DoRestart(const std::string& name);
  http::Response DoConsole(const std::string& name, const http::Request& request);
  http::Response DoVolumes();
  http::Response DoVolume(const std::string& name, const std::string& action,
                          const http::Request& request);
  http::Response DoUpgrade(const std::string& name, const std::string& action,
                           const std::string& body);
  http::Response DoStage(Record& record, const json& body);
  http::Response DoRevoke(Record& record, const json& body);
  http::Response DoActivate(Record& record, const json& body);

  // ---- The API (on io) ----

  void HandleApi(http::Request request, http::Reply reply);
  void RouteApi(http::Request request, http::Reply reply);
  void OnControl(http::Reply reply, std::function<http::Response()> work);
  http::Response Health();
  http::Response Metrics();

  json EnclaveJson(const Record& record) const;
  json EgressJson(const Record& record) const;
  std::string Url(uint16_t port) const {
    std::string host = options.public_host.find(':') != std::string::npos
                           ? "[" + options.public_host + "]"
                           : options.public_host;
    return std::string(options.relay.tls ? "wss://" : "ws://") + host + ":" + std::to_string(port) +
           "/";
  }
  std::string Path(std::string_view file) const {
    return options.data_dir + "/" + std::string(file);
  }

  AgentOptions options;
  std::shared_ptr<const Logger> log;
  std::string token;

  // Declared first so that it is destroyed last: relays and the server queue work on it.
  asio::io_context io;
  std::optional<WorkGuard> io_guard;
  std::vector<std::thread> io_threads;
  asio::io_context control;
  std::optional<WorkGuard> control_guard;
  std::thread control_thread;
  asio::steady_timer refresh_timer{control};

  std::unique_ptr<http::Server> server;
  net::Address api_address;

  mutable std::mutex mu;                  // Guards records' contents for readers on io.
  std::map<std::string, Record> records;  // Changed on the control thread only.
  bool started = false;  // Create completed: only then may Stop terminate enclaves.
  bool stopped = false;
};

Result<void> Agent::Impl::LoadOrCreateToken() {
  ASSIGN_OR_RETURN(token, http::LoadOrCreateToken(Path("token")));
  return Ok();
}

Result<void> Agent::Impl::SaveState() {
  json enclaves = json::array();
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [name, record] : records) {
      enclaves.push_back({{"name", name},
                          {"instance", record.spec.name},
                          {"eif", record.spec.eif_path},
                          {"debug", record.spec.debug},
                          {"cpus", record.spec.cpus},
                          {"memory_mib", record.spec.memory_mib},
                          {"port", record.port},
                          {"restarts", record.restarts},
                          {"id", record.info.id},
                          {"endpoint", EndpointJson(record.info.endpoint)},
                          {"pcrs", PcrsJson(record.info.pcrs)},
                          {"actual_cpus", record.info.cpus},
                          {"actual_memory_mib", record.info.memory_mib},
                          {"started", record.info.started_unix}});
      if (record.volume.attached()) {
        enclaves.back()["storage"] = VolumeSpecJson(record.volume);
      }
      if (record.egress) {
        enclaves.back()["egress"] = true;
      }
      UpgradeState upgrade = record.upgrade->Snapshot();
      if (upgrade.chained() || !upgrade.staged.empty()) {
        enclaves.back()["upgrade"] = UpgradeStateJson(upgrade);
      }
    }
  }
  std::string text = Dump({{"version", kStateVersion}, {"enclaves", std::move(enclaves)}}) + "\n";
  auto written = WriteFileAtomic(
      Path(kStateFile), ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()), 0600);
  if (!written) {
    log->Err("state_not_saved", "", {{"error", written.error().message()}});
  }
  return written;
}

namespace {

// ParseRecord reads one enclave of agent-state.json.
Result<Record> ParseRecord(const json& entry) {
  if (!entry.is_object()) {
    return Error(Code::kMalformed, "an enclave entry is not an object");
  }
  Record record;
  ASSIGN_OR_RETURN(record.name, GetString(entry, "name", true));
  ASSIGN_OR_RETURN(record.spec.name, GetString(entry, "instance", false));
  if (record.spec.name.empty()) {
    record.spec.name = record.name;
  }
  if (!config::ValidEnclaveName(record.name) || !config::ValidEnclaveName(record.spec.name)) {
    return Error(Code::kMalformed, "bad enclave name " + OneLine(record.name));
  }
  ASSIGN_OR_RETURN(record.spec.eif_path, GetString(entry, "eif", false));
  ASSIGN_OR_RETURN(record.spec.debug, GetBool(entry, "debug"));
  ASSIGN_OR_RETURN(uint64_t cpus, GetUnsigned(entry, "cpus", 0xffffffffu));
  record.spec.cpus = static_cast<uint32_t>(cpus);
  ASSIGN_OR_RETURN(record.spec.memory_mib, GetUnsigned(entry, "memory_mib", uint64_t{1} << 40));
  ASSIGN_OR_RETURN(uint64_t port, GetUnsigned(entry, "port", 65535));
  record.port = static_cast<uint16_t>(port);
  ASSIGN_OR_RETURN(record.restarts, GetUnsigned(entry, "restarts", uint64_t{1} << 62));
  record.info.name = record.spec.name;
  ASSIGN_OR_RETURN(record.info.id, GetString(entry, "id", false));
  record.info.debug = record.spec.debug;
  ASSIGN_OR_RETURN(uint64_t actual_cpus, GetUnsigned(entry, "actual_cpus", 0xffffffffu));
  record.info.cpus = static_cast<uint32_t>(actual_cpus);
  ASSIGN_OR_RETURN(record.info.memory_mib,
                   GetUnsigned(entry, "actual_memory_mib", uint64_t{1} << 40));
  ASSIGN_OR_RETURN(uint64_t started, GetUnsigned(entry, "started", uint64_t{1} << 62));
  record.info.started_unix = static_cast<int64_t>(started);
  record.info.state = EnclaveState::kStopped;
  if (auto it = entry.find("endpoint"); it != entry.end() && it->is_object()) {
    ASSIGN_OR_RETURN(uint64_t cid, GetUnsigned(*it, "cid", 0xffffffffu));
    record.info.endpoint.cid = static_cast<uint32_t>(cid);
    ASSIGN_OR_RETURN(record.info.endpoint.local_dir, GetString(*it, "local_dir", false));
  }
  if (auto it = entry.find("storage"); it != entry.end() && !it->is_null()) {
    ASSIGN_OR_RETURN(record.volume, ParseVolumeSpec(*it));
  }
  ASSIGN_OR_RETURN(record.egress, GetBool(entry, "egress"));
  if (auto it = entry.find("upgrade"); it != entry.end() && !it->is_null()) {
    ASSIGN_OR_RETURN(record.upgrade->state, ParseUpgradeState(*it));
  }
  if (auto it = entry.find("pcrs"); it != entry.end() && it->is_object()) {
    for (const auto& [key, value] : it->items()) {
      if (!value.is_string() || key.empty() || key.size() > 2 ||
          key.find_first_not_of("0123456789") != std::string::npos) {
        return Error(Code::kMalformed, "bad PCR entry " + OneLine(key));
      }
      record.info.pcrs[std::stoi(key)] = value.get<std::string>();
    }
  }
  return record;
}

}  // namespace

Result<std::unique_ptr<Relay>> Agent::Impl::StartRelay(Record& record, uint16_t port) {
  auto context = std::make_shared<PublicContext>(io, log);
  context->name = record.name;
  context->endpoint = record.info.endpoint;
  context->upgrade = record.upgrade;
  context->timeout = options.attestation_timeout;
  context->max_in_flight = options.max_attestation_requests;
  if (record.context) {  // Keep the count across relays (restarts).
    context->attestation_requests.store(record.context->attestation_requests.load());
  }
  RelayOptions relay_options = options.relay;
  relay_options.listen.family = net::Family::kTcp;
  relay_options.listen.host = options.public_host;
  relay_options.listen.port = port;
  relay_options.enclave = transport::HostToEnclave(record.info.endpoint, transport::kIngressPort);
  relay_options.http_handler = PublicHandler(context);
  // After a restart the old relay's listener closes asynchronously: retry the bind briefly.
  SteadyClock::time_point deadline = SteadyClock::now() + kRebindBudget;
  for (;;) {
    auto relay = Relay::Create(io, relay_options);
    if (relay || relay.error().code() != Code::kIo || port == 0 || SteadyClock::now() >= deadline) {
      if (relay) {
        std::lock_guard<std::mutex> lock(mu);  // Metrics reads it.
        record.context = std::move(context);
      }
      return relay;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Agent::Impl::StopRelay(Record& record) {
  std::unique_ptr<Relay> relay;
  {
    std::lock_guard<std::mutex> lock(mu);
    relay = std::move(record.relay);
    if (relay) {
      RelayStats s = relay->stats();
      record.base.accepted += s.accepted;
      record.base.refused += s.refused;
      record.base.bytes_up += s.bytes_up;
      record.base.bytes_down += s.bytes_down;
      record.base.answered += s.answered;
    }
  }
  if (relay) {
    relay->Stop();
  }
}

Result<void> Agent::Impl::StartStorage(Record& record) {
  auto storage = EnclaveStorage::Start(
      record.name, record.volume, record.info.endpoint, Path("volumes"),
      [this](const std::string& name) { return WitnessAddress(name); }, record.spec.name);
  if (!storage) {
    return std::move(storage).error().WithContext("cannot serve the enclave's storage");
  }
  std::lock_guard<std::mutex> lock(mu);  // Readers on io (inspect, metrics).
  record.storage = std::move(*storage);
  return Ok();
}

void Agent::Impl::StopStorage(Record& record) {
  std::unique_ptr<EnclaveStorage> storage;
  {
    std::lock_guard<std::mutex> lock(mu);
    storage = std::move(record.storage);
  }
  // Destroyed without `mu`: a forward thread may be asking WitnessAddress.
  storage.reset();
}

bool Agent::Impl::ImageEgress(const std::string& name, const std::string& eif_path) {
  auto enabled = options.image_egress ? options.image_egress(eif_path)
                                      : ImageEgressEnabled(eif_path);
  if (!enabled) {
    // Fail closed: without a dialer the enclave reaches nothing.
    log->Warn("egress_config_unreadable", name, {{"error", OneLine(enabled.error().message())}});
    return false;
  }
  return *enabled;
}

Result<void> Agent::Impl::StartEgress(Record& record) {
  if (!record.egress) {
    return Ok();
  }
  std::string name = record.name;
  auto dialer = EgressDialer::Start(
      transport::HostListenForEnclave(record.info.endpoint, transport::kEgressPort),
      options.egress, [log = log, name](const EgressConnectionLog& entry) {
        // One line per connection: where, how it ended, how much; never payload bytes.
        json fields = {{"status", EgressStatusLabel(entry.status)},
                       {"bytes_up", entry.bytes_up},
                       {"bytes_down", entry.bytes_down},
                       {"duration_ms", entry.duration.count()}};
        if (entry.destination) {
          fields["destination"] = egress::FormatEndpoint(*entry.destination);
        }
        if (!entry.message.empty()) {
          fields["message"] = OneLine(entry.message);
        }
        if (!entry.ended.empty()) {
          fields["ended"] = entry.ended;
        }
        log->Info("egress_connection", name, std::move(fields));
      });
  if (!dialer) {
    return std::move(dialer).error().WithContext("cannot serve the enclave's egress port");
  }
  std::lock_guard<std::mutex> lock(mu);  // Readers on io (inspect, metrics).
  record.dialer = std::move(*dialer);
  return Ok();
}

void Agent::Impl::StopEgress(Record& record) {
  std::unique_ptr<EgressDialer> dialer;
  {
    std::lock_guard<std::mutex> lock(mu);
    dialer = std::move(record.dialer);
  }
  if (dialer) {
    dialer->Stop();  // Without `mu`: it joins its connections' threads.
    std::lock_guard<std::mutex> lock(mu);
    AddEgressStats(record.egress_base, dialer->stats());
  }
}

std::optional<net::Address> Agent::Impl::WitnessAddress(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu);
  auto it = records.find(name);
  if (it == records.end() || it->second.port == 0 ||
      it->second.info.state != EnclaveState::kRunning) {
    return std::nullopt;
  }
  net::Address address;
  address.family = net::Family::kTcp;
  const std::string& host = options.public_host;
  address.host = host == "0.0.0.0" || host == "::" || host.empty() ? "127.0.0.1" : host;
  address.port = it->second.port;
  return address;
}

void Agent::Impl::UpdateInfo(Record& record, const EnclaveInfo& info) {
  bool was_running = record.info.state == EnclaveState::kRunning;
  {
    std::lock_guard<std::mutex> lock(mu);
    record.info = info;
  }
  if (was_running && info.state == EnclaveState::kStopped) {
    StopEgress(record);  // Nothing may dial out for an enclave that is gone.
    json fields = {{"id", info.id}};
    if (info.exit_status >= 0) {
      fields["exit_status"] = info.exit_status;
    }
    log->Warn("enclave_stopped", record.name, std::move(fields));
  }
}

void Agent::Impl::Refresh() {
  auto listed = options.provider->List();
  if (!listed) {
    log->Warn("provider_list_failed", "", {{"error", listed.error().message()}});
    return;
  }
  std::map<std::string, const EnclaveInfo*> by_name;
  for (const EnclaveInfo& info : *listed) {
    by_name[info.name] = &info;
  }
  for (auto& [name, record] : records) {
    auto it = by_name.find(record.spec.name);
    if (it != by_name.end()) {
      UpdateInfo(record, *it->second);
    } else if (record.info.state != EnclaveState::kStopped) {
      EnclaveInfo gone = record.info;
      gone.state = EnclaveState::kStopped;
      UpdateInfo(record, gone);
    }
  }
}

void Agent::Impl::ScheduleRefresh() {
  refresh_timer.expires_after(kRefreshInterval);
  refresh_timer.async_wait([this](error_code ec) {
    if (ec) {
      return;
    }
    Refresh();
    ScheduleRefresh();
  });
}

Result<void> Agent::Impl::LoadStateAndReattach() {
  std::string path = Path(kStateFile);
  std::vector<Record> saved;
  std::error_code exists_ec;
  if (std::filesystem::exists(path, exists_ec)) {
    ASSIGN_OR_RETURN(Bytes bytes, ReadFile(path, kMaxStateFile));
    json state = json::parse(bytes.begin(), bytes.end(), nullptr, false);
    auto corrupt = [&](const std::string& why) {
      return Error(Code::kMalformed,
                   path + " is corrupt (" + why + "); move it aside to start without its enclaves");
    };
    if (state.is_discarded() || !state.is_object()) {
      return corrupt("not a JSON object");
    }
    auto version = state.find("version");
    if (version == state.end() || !version->is_number_integer() ||
        version->get<int64_t>() != kStateVersion) {
      return corrupt("unknown version");
    }
    auto list = state.find("enclaves");
    if (list == state.end() || !list->is_array()) {
      return corrupt("no enclaves array");
    }
    for (const json& entry : *list) {
      auto record = ParseRecord(entry);
      if (!record) {
        return corrupt(record.error().message());
      }
      saved.push_back(std::move(*record));
    }
  }

  auto listed = options.provider->List();
  if (!listed) {
    return listed.error().WithContext("cannot list the provider's enclaves");
  }
  std::map<std::string, EnclaveInfo> running;
  for (EnclaveInfo& info : *listed) {
    running[info.name] = std::move(info);
  }

  // Re-attach: every remembered enclave gets its relay back on its port. One the provider still
  // runs is served again at once; one it no longer runs (or no longer knows) is kept and reported
  // "stopped", its port held, until it is restarted or deleted.
  for (Record& record : saved) {
    std::string name = record.name;
    auto it = running.find(record.spec.name);
    if (it != running.end()) {
      record.info = std::move(it->second);
      running.erase(it);
    }
    if (record.info.state == EnclaveState::kRunning) {
      if (auto storage = StartStorage(record); !storage) {
        log->Err("storage_failed", name, {{"error", storage.error().message()}});
      }
      if (auto egress_started = StartEgress(record); !egress_started) {
        log->Err("egress_failed", name, {{"error", egress_started.error().message()}});
      }
      if (auto upgrade_started = StartUpgradeService(record); !upgrade_started) {
        log->Err("upgrade_service_failed", name, {{"error", upgrade_started.error().message()}});
      }
    }
    auto relay = StartRelay(record, record.port);
    if (relay) {
      record.relay = std::move(*relay);
    }
    json fields = {{"state", EnclaveStateName(record.info.state)},
                   {"port", record.port},
                   {"id", record.info.id}};
    if (!relay) {
      fields["error"] = relay.error().message();
      log->Err("relay_failed", name, std::move(fields));
    } else {
      log->Info("enclave_reattached", name, std::move(fields));
    }
    records.emplace(name, std::move(record));
  }
  // Enclaves the provider runs that this agent has no record of (its state file was lost): keep
  // serving them on new ports; without their image path they cannot be restarted, only deleted.
  for (auto& [name, info] : running) {
    Record record;
    record.name = name;
    record.spec.name = name;
    record.spec.debug = info.debug;
    record.spec.cpus = info.cpus;
    record.spec.memory_mib = info.memory_mib;
    record.info = std::move(info);
    auto relay = StartRelay(record, 0);
    if (!relay) {
      log->Err("relay_failed", name, {{"error", relay.error().message()}});
    } else {
      record.port = static_cast<uint16_t>((*relay)->local_address().port);
      record.relay = std::move(*relay);
      log->Info("enclave_adopted", name, {{"port", record.port}, {"id", record.info.id}});
    }
    records.emplace(name, std::move(record));
  }
  if (!saved.empty() || !records.empty()) {
    (void)SaveState();
  }
  return Ok();
}

json Agent::Impl::EnclaveJson(const Record& record) const {
  const EnclaveInfo& info = record.info;
  UpgradeState upgrade = record.upgrade->Snapshot();
  json upgrade_summary = nullptr;
  if (upgrade.chained()) {
    upgrade_summary = {{"genesis", upgrade::DigestHex(upgrade::GenesisHash(upgrade.chain.front()))},
                       {"length", upgrade.chain.size()},
                       {"staged", upgrade.staged.size()}};
  }
  return {{"name", record.name},
          {"instance", record.spec.name},
          {"upgrade", std::move(upgrade_summary)},
          {"id", info.id},
          {"state", EnclaveStateName(info.state)},
          {"url", Url(record.port)},
          {"port", record.port},
          {"pcrs", AttestedPcrsJson(info.pcrs, info.id.empty() ? record.spec.debug : info.debug)},
          {"image_pcrs", PcrsJson(info.pcrs)},
          {"debug", info.id.empty() ? record.spec.debug : info.debug},
          {"cpus", info.cpus != 0 ? info.cpus : record.spec.cpus},
          {"memory_mib", info.memory_mib != 0 ? info.memory_mib : record.spec.memory_mib},
          {"started", info.started_unix},
          {"restarts", record.restarts},
          {"storage", !record.volume.attached() ? json(nullptr)
                      : record.storage          ? record.storage->Json()
                                                : VolumeSpecJson(record.volume)},
          {"egress", EgressJson(record)}};
}

json Agent::Impl::EgressJson(const Record& record) const {
  if (!record.egress) {
    return nullptr;
  }
  EgressStats s = record.egress_base;
  if (record.dialer) {
    EgressStats now = record.dialer->stats();
    AddEgressStats(s, now);
    s.active = now.active;
  }
  return {{"enabled", true},
          {"dialer", record.dialer != nullptr},
          {"connections", s.connections},
          {"active", s.active},
          {"refused", s.refused},
          {"failed", s.failed},
          {"bytes_up", s.bytes_up},
          {"bytes_down", s.bytes_down}};
}

http::Response Agent::Impl::DoLaunch(const std::string& body) {
  json request = json::parse(body, nullptr, false);
  if (request.is_discarded() || !request.is_object()) {
    return http::JsonError(400, "the body must be a JSON object");
  }
  static const std::array<std::string_view, 8> kKeys = {
      "name", "eif", "debug", "cpus", "memory_mib", "port", "storage", "chain"};
  for (const auto& [key, value] : request.items()) {
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      return http::JsonError(400, "unknown field \"" + OneLine(key) + "\"");
    }
  }
  LaunchSpec spec;
  auto name = GetString(request, "name", true);
  auto eif = GetString(request, "eif", true);
  auto debug = GetBool(request, "debug");
  auto cpus = GetUnsigned(request, "cpus", 1024);
  auto memory = GetUnsigned(request, "memory_mib", uint64_t{1} << 24);
  auto port = GetUnsigned(request, "port", 65535);
  for (const Error* error : {name ? nullptr : &name.error(), eif ? nullptr : &eif.error(),
                             debug ? nullptr : &debug.error(), cpus ? nullptr : &cpus.error(),
                             memory ? nullptr : &memory.error(), port ? nullptr : &port.error()}) {
    if (error != nullptr) {
      return http::JsonError(400, error->message());
    }
  }
  spec.name = *name;
  spec.eif_path = *eif;
  spec.debug = *debug;
  spec.cpus = static_cast<uint32_t>(*cpus);
  spec.memory_mib = *memory;
  if (!config::ValidEnclaveName(spec.name)) {
    return http::JsonError(400, "bad name \"" + OneLine(spec.name) +
                                    "\": use lowercase letters, digits and '-', at most 63");
  }
  if (spec.eif_path.empty() || spec.eif_path.front() != '/') {
    return http::JsonError(400, "\"eif\" must be an absolute path");
  }
  if (records.count(spec.name) != 0 ||
      std::any_of(records.begin(), records.end(),
                  [&](const auto& entry) { return entry.second.spec.name == spec.name; })) {
    return http::JsonError(409,
                           "enclave " + spec.name + " already exists; rm it or pick another name");
  }
  // The chain (docs/upgrade.md): [genesis] from `enclavia deploy --control-key`, or a longer one
  // (a relaunch). The host only checks its shape; the enclave verifies it at boot.
  UpgradeState upgrade_state;
  if (auto it = request.find("chain"); it != request.end() && !it->is_null()) {
    auto chain = ParseChainJson(*it);
    if (!chain) {
      return http::JsonError(400, chain.error().message());
    }
    if (!chain->empty()) {
      auto genesis = upgrade::ParseGenesis(chain->front());
      if (!genesis) {
        return http::JsonError(400, "the chain's first entry is not a genesis: " +
                                        genesis.error().message());
      }
    }
    upgrade_state.chain = std::move(*chain);
  }
  VolumeSpec volume;
  if (auto it = request.find("storage"); it != request.end() && !it->is_null()) {
    auto parsed = ParseVolumeSpec(*it);
    if (!parsed) {
      return http::JsonError(400, parsed.error().message());
    }
    volume = std::move(*parsed);
  }
  uint16_t wanted = static_cast<uint16_t>(*port);
  for (const auto& [other, record] : records) {
    if (wanted != 0 && record.port == wanted) {
      return http::JsonError(409,
                             "port " + std::to_string(wanted) + " is taken by enclave " + other);
    }
  }

  auto launched = options.provider->Launch(spec);
  if (!launched) {
    log->Warn("launch_failed", spec.name, {{"error", launched.error().message()}});
    return http::FromError(launched.error());
  }
  Record record;
  record.name = spec.name;
  record.spec = spec;
  record.info = std::move(*launched);
  record.volume = volume;
  record.upgrade->state = std::move(upgrade_state);
  record.egress = ImageEgress(spec.name, spec.eif_path);
  if (auto upgrade_started = StartUpgradeService(record); !upgrade_started) {
    (void)options.provider->Terminate(spec.name);
    log->Warn("launch_failed", spec.name, {{"error", upgrade_started.error().message()}});
    return http::FromError(upgrade_started.error());
  }
  if (auto storage = StartStorage(record); !storage) {
    StopUpgradeService(record);
    (void)options.provider->Terminate(spec.name);
    log->Warn("launch_failed", spec.name, {{"error", storage.error().message()}});
    return http::FromError(storage.error());
  }
  if (auto egress_started = StartEgress(record); !egress_started) {
    StopStorage(record);
    StopUpgradeService(record);
    (void)options.provider->Terminate(spec.name);
    log->Warn("launch_failed", spec.name, {{"error", egress_started.error().message()}});
    return http::FromError(egress_started.error());
  }
  auto relay = StartRelay(record, wanted);
  if (!relay) {
    // Nothing left behind: the enclave goes too.
    StopEgress(record);
    StopStorage(record);
    StopUpgradeService(record);
    (void)options.provider->Terminate(spec.name);
    log->Warn("launch_failed", spec.name, {{"error", relay.error().message()}});
    return http::FromError(relay.error().WithContext("cannot start the relay"));
  }
  record.port = static_cast<uint16_t>((*relay)->local_address().port);
  record.relay = std::move(*relay);
  json out = EnclaveJson(record);
  log->Info("enclave_launched", spec.name,
            {{"id", record.info.id},
             {"port", record.port},
             {"debug", record.info.debug},
             {"cpus", record.info.cpus},
             {"memory_mib", record.info.memory_mib},
             {"egress", record.egress},
             {"eif", spec.eif_path}});
  {
    std::lock_guard<std::mutex> lock(mu);
    records.emplace(spec.name, std::move(record));
  }
  (void)SaveState();
  return JsonResponse(201, out);
}

http::Response Agent::Impl::DoList() {
  Refresh();
  json out = json::array();
  for (const auto& [name, record] : records) {
    out.push_back(EnclaveJson(record));
  }
  return JsonResponse(200, out);
}

http::Response Agent::Impl::DoGet(const std::string& name) {
  auto it = records.find(name);
  if (it == records.end()) {
    return http::JsonError(404, "no enclave named " + OneLine(name));
  }
  auto info = options.provider->Describe(it->second.spec.name);
  if (info) {
    UpdateInfo(it->second, *info);
  } else if (info.error().code() == Code::kNotFound) {
    EnclaveInfo gone = it->second.info;
    gone.state = EnclaveState::kStopped;
    UpdateInfo(it->second, gone);
  } else {
    log->Warn("provider_describe_failed", name, {{"error", info.error().message()}});
  }
  return JsonResponse(200, EnclaveJson(it->second));
}

http::Response Agent::Impl::DoDelete(const std::string& name) {
  auto it = records.find(name);
  if (it == records.end()) {
    return http::JsonError(404, "no enclave named " + OneLine(name));
  }
  auto terminated = options.provider->Terminate(it->second.spec.name);
  if (!terminated && terminated.error().code() != Code::kNotFound) {
    log->Err("terminate_failed", name, {{"error", terminated.error().message()}});
    return http::FromError(terminated.error());
  }
  StopRelay(it->second);
  StopEgress(it->second);
  StopUpgradeService(it->second);
  StopStorage(it->second);  // The volume's objects stay: a new deploy of NAME attaches them.
  {
    std::lock_guard<std::mutex> lock(mu);
    records.erase(it);
  }
  (void)SaveState();
  log->Info("enclave_deleted", name);
  http::Response response;
  response.status = 204;
  response.content_type.clear();
  return response;
}

http::Response Agent::Impl::DoRestart(const std::string& name) {
  auto it = records.find(name);
  if (it == records.end()) {
    return http::JsonError(404, "no enclave named " + OneLine(name));
  }
  Record& record = it->second;
  if (record.spec.eif_path.empty()) {
    return http::JsonError(
        409, "enclave " + name + " was adopted without its image path; rm it and deploy again");
  }
  // The enclave stops first, while its storage port still serves: a clean stop commits its
  // volume on the way out.
  auto terminated = options.provider->Terminate(record.spec.name);
  if (!terminated && terminated.error().code() != Code::kNotFound) {
    log->Err("terminate_failed", name, {{"error", terminated.error().message()}});
    return http::FromError(terminated.error());
  }
  StopEgress(record);
  StopUpgradeService(record);
  StopStorage(record);
  StopRelay(record);
  {
    std::lock_guard<std::mutex> lock(mu);
    record.restarts += 1;
    record.info.state = EnclaveState::kStopped;
  }
  auto launched = options.provider->Launch(record.spec);
  if (!launched) {
    (void)SaveState();
    log->Err("restart_failed", name, {{"error", launched.error().message()}});
    return http::FromError(launched.error().WithContext("restart of " + name));
  }
  UpdateInfo(record, *launched);
  record.egress = ImageEgress(name, record.spec.eif_path);  // The image may have been rebuilt.
  if (auto storage = StartStorage(record); !storage) {
    (void)SaveState();
    log->Err("restart_failed", name, {{"error", storage.error().message()}});
    return http::FromError(storage.error().WithContext("restart of " + name));
  }
  if (auto egress_started = StartEgress(record); !egress_started) {
    (void)SaveState();
    log->Err("restart_failed", name, {{"error", egress_started.error().message()}});
    return http::FromError(egress_started.error().WithContext("restart of " + name));
  }
  if (auto upgrade_started = StartUpgradeService(record); !upgrade_started) {
    (void)SaveState();
    log->Err("restart_failed", name, {{"error", upgrade_started.error().message()}});
    return http::FromError(upgrade_started.error().WithContext("restart of " + name));
  }
  auto relay = StartRelay(record, record.port);
  if (!relay) {
    (void)SaveState();
    log->Err("relay_failed", name, {{"port", record.port}, {"error", relay.error().message()}});
    return http::FromError(relay.error().WithContext("restart of " + name));
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    record.relay = std::move(*relay);
  }
  (void)SaveState();
  log->Info("enclave_restarted", name,
            {{"id", record.info.id}, {"port", record.port}, {"restarts", record.restarts}});
  return JsonResponse(200, EnclaveJson(record));
}

http::Response Agent::Impl::DoVolumes() {
  Refresh();
  json out = json::array();
  for (const auto& [name, record] : records) {
    if (record.volume.attached()) {
      json volume = record.storage ? record.storage->Json() : VolumeSpecJson(record.volume);
      volume["name"] = name;
      volume["enclave_state"] = EnclaveStateName(record.info.state);
      out.push_back(std::move(volume));
    }
  }
  return JsonResponse(200, out);
}

http::Response Agent::Impl::DoVolume(const std::string& name, const std::string& action,
                                     const http::Request& request) {
  auto it = records.find(name);
  if (it == records.end() || !it->second.volume.attached()) {
    return http::JsonError(404, "no volume named " + OneLine(name));
  }
  Record& record = it->second;
  auto opened = OpenBackend(record.volume, Path("volumes"), name);
  if (!opened) {
    return http::FromError(opened.error());
  }
  storage::ObjectStore& store = **opened;
  if (action.empty()) {
    json out = record.storage ? record.storage->Json() : VolumeSpecJson(record.volume);
    out["name"] = name;
    out["enclave_state"] = EnclaveStateName(record.info.state);
    auto summary = VolumeSummary(store);
    if (summary) {
      out["stored"] = *summary;
    }
    return JsonResponse(200, out);
  }
  json body = json::parse(request.body.empty() ? std::string("{}") : request.body, nullptr, false);
  if (!body.is_object()) {
    return http::JsonError(400, "the body must be a JSON object");
  }
  if (action == "recovery") {
    uint64_t version = 0;
    if (auto asked = request.Query("version"); asked && !asked->empty()) {
      char* end = nullptr;
      version = std::strtoull(asked->c_str(), &end, 10);
      if (*end != '\0') {
        return http::JsonError(400, "version must be a number");
      }
    }
    auto info = RecoveryInfo(store, version);
    return info ? JsonResponse(200, *info) : http::FromError(info.error());
  }
  if (action == "recover") {
    auto statement = GetString(body, "statement", true);
    if (!statement) {
      return http::JsonError(400, statement.error().message());
    }
    auto raw = HexDecode(*statement);
    if (!raw || raw->empty() || raw->size() > 64 * 1024) {
      return http::JsonError(400, "\"statement\" must be the hex of a signed recovery statement");
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      record.volume.recovery_statement = std::move(*raw);
    }
    (void)SaveState();
    log->Warn("volume_recovery_set", name, {});
    return JsonResponse(200, {{"name", name}, {"note", "takes effect at the next restart"}});
  }
  if (action == "snapshot" || action == "backup") {
    std::string target;
    if (action == "snapshot") {
      auto tag = GetString(body, "tag", true);
      if (!tag || !config::ValidEnclaveName(*tag)) {
        return http::JsonError(400, "\"tag\" must be 1-63 of a-z, 0-9 and '-'");
      }
      target = "dir:" + Path("snapshots") + "/" + name + "/" + *tag;
      if (std::filesystem::exists(target.substr(4))) {
        return http::JsonError(409, "snapshot " + *tag + " of " + name + " exists");
      }
      std::error_code ec;
      std::filesystem::create_directories(Path("snapshots") + "/" + name, ec);
    } else {
      auto to = GetString(body, "to", true);
      if (!to) {
        return http::JsonError(400, to.error().message());
      }
      target = *to;
    }
    auto destination = OpenTarget(target, name);
    if (!destination) {
      return http::FromError(destination.error());
    }
    auto copied = CopyObjects(store, **destination);
    if (!copied) {
      return http::FromError(copied.error());
    }
    log->Info("volume_" + action, name, {{"to", target}, {"objects", *copied}});
    return JsonResponse(200, {{"name", name}, {"to", target}, {"objects", *copied}});
  }
  return http::JsonError(404, "unknown volume action " + OneLine(action));
}

Result<void> Agent::Impl::StartUpgradeService(Record& record) {
  UpgradeHostService::Handlers handlers;
  std::shared_ptr<UpgradeShared> shared = record.upgrade;
  handlers.chain = [shared] { return shared->Snapshot().ToHostChain(); };
  handlers.successor = [shared] {
    std::lock_guard<std::mutex> lock(shared->mu);
    return shared->successor;
  };
  auto service = UpgradeHostService::Start(
      transport::HostListenForEnclave(record.info.endpoint, upgrade::kParentUpgradePort),
      std::move(handlers));
  if (!service) {
    return std::move(service).error().WithContext("cannot serve the enclave's upgrade port");
  }
  std::lock_guard<std::mutex> lock(mu);
  record.upgrade_service = std::move(*service);
  return Ok();
}

void Agent::Impl::StopUpgradeService(Record& record) {
  std::unique_ptr<UpgradeHostService> service;
  {
    std::lock_guard<std::mutex> lock(mu);
    service = std::move(record.upgrade_service);
  }
  service.reset();  // Joins its connections (a successor pipe among them) without `mu`.
}

Result<void> Agent::Impl::StartServices(Record& record) {
  RETURN_IF_ERROR(StartUpgradeService(record));
  if (auto storage = StartStorage(record); !storage) {
    StopUpgradeService(record);
    return storage;
  }
  if (auto egress_started = StartEgress(record); !egress_started) {
    StopStorage(record);
    StopUpgradeService(record);
    return egress_started;
  }
  return Ok();
}

void Agent::Impl::StopServices(Record& record) {
  StopEgress(record);
  StopUpgradeService(record);
  StopStorage(record);
}

namespace {

// UpgradeError answers an upgrade refusal: the enclave's (or the chain's) one-line reason, as a
// 409 when it is a decision (policy, signature) rather than a fault.
http::Response UpgradeError(const Error& error) {
  int status = http::StatusFor(error);
  if (error.code() == Code::kPolicyViolation || error.code() == Code::kVerifyFailed) {
    status = 409;
  }
  return http::JsonError(status, OneLine(error.message()));
}

Result<Bytes> GetBase64(const json& object, const char* key) {
  ASSIGN_OR_RETURN(std::string text, GetString(object, key, true));
  auto bytes = Base64Decode(text);
  if (!bytes || bytes->empty() || bytes->size() > upgrade::kMaxEntrySize) {
    return Error(Code::kInvalidArgument, std::string("\"") + key + "\" must be base64 of a signed "
                                                                   "entry (at most 24 KiB)");
  }
  return std::move(*bytes);
}

// InstanceName is the provider name of the successor an activation launches: two instances of
// one enclave run side by side until the old one hands over.
std::string InstanceName(const std::string& name, const std::string& request_hash) {
  return name.substr(0, 53) + "-u" + request_hash.substr(0, 8);
}

json StagedJson(const StagedUpgrade& staged, uint64_t now) {
  json pcrs = json::object();
  for (const auto& [index, hex] : staged.new_pcrs) {
    pcrs[std::to_string(index)] = hex;
  }
  return {{"id", staged.id},
          {"request", staged.request_hash},
          {"new_pcrs", std::move(pcrs)},
          {"staged_at", staged.staged_at},
          {"due_at", staged.due_at},
          {"seconds_left", staged.due_at > now ? staged.due_at - now : 0},
          {"revoked", staged.revoked},
          {"receipt", Base64Encode(staged.receipt)}};
}

std::string UnixTimeText(uint64_t unix_seconds) {
  return FormatRfc3339(std::chrono::system_clock::time_point(
      std::chrono::seconds(static_cast<int64_t>(unix_seconds))));
}

}  // namespace

http::Response Agent::Impl::DoUpgrade(const std::string& name, const std::string& action,
                                      const std::string& body) {
  auto it = records.find(name);
  if (it == records.end()) {
    return http::JsonError(404, "no enclave named " + OneLine(name));
  }
  Record& record = it->second;
  if (action == "chain" || action == "upgrade") {
    UpgradeState state = record.upgrade->Snapshot();
    json out = action == "chain" ? ChainJson(state.chain) : StatusJson(state, NowUnix());
    out["name"] = name;
    out["url"] = Url(record.port);
    return JsonResponse(200, out);
  }
  json request = json::parse(body.empty() ? std::string("{}") : body, nullptr, false);
  if (request.is_discarded() || !request.is_object()) {
    return http::JsonError(400, "the body must be a JSON object");
  }
  if (!record.upgrade->Snapshot().chained()) {
    return http::JsonError(409, "enclave " + name +
                                    " has no upgrade chain (it was deployed without --control-key "
                                    "or --managed-key): it cannot be upgraded, only redeployed");
  }
  if (record.info.state != EnclaveState::kRunning) {
    return http::JsonError(409, "enclave " + name + " is not running");
  }
  if (action == "upgrade/stage") {
    return DoStage(record, request);
  }
  if (action == "upgrade/revoke") {
    return DoRevoke(record, request);
  }
  return DoActivate(record, request);
}

http::Response Agent::Impl::DoStage(Record& record, const json& body) {
  auto entry = GetBase64(body, "request");
  auto eif = GetString(body, "eif", true);
  if (!entry || !eif) {
    return http::JsonError(400, (!entry ? entry.error() : eif.error()).message());
  }
  if (eif->empty() || eif->front() != '/') {
    return http::JsonError(400, "\"eif\" must be an absolute path");
  }
  UpgradeState state = record.upgrade->Snapshot();
  if (state.staged.size() >= 16) {
    return http::JsonError(409, "16 upgrades are staged already: revoke some first");
  }
  upgrade::Message message;
  message.type = upgrade::MessageType::kStage;
  message.entry = *entry;
  auto answer = upgrade::Call(
      transport::HostToEnclave(record.info.endpoint, upgrade::kEnclaveUpgradePort), message,
      kStageTimeout);
  if (!answer) {
    log->Warn("upgrade_stage_refused", record.name,
              {{"error", OneLine(answer.error().message())}});
    return UpgradeError(answer.error());
  }
  if (answer->type != upgrade::MessageType::kStaged) {
    return http::JsonError(502, "the enclave's answer to stage is not a staging receipt");
  }
  auto staged = DescribeStaged(state.chain, *entry, answer->entry, *eif);
  if (!staged) {
    return http::JsonError(502, "the enclave's staging receipt does not parse: " +
                                    OneLine(staged.error().message()));
  }
  {
    std::lock_guard<std::mutex> lock(record.upgrade->mu);
    auto& list = record.upgrade->state.staged;
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const StagedUpgrade& s) {
                                return s.request_hash == staged->request_hash;
                              }),
               list.end());
    list.push_back(*staged);
  }
  (void)SaveState();
  log->Info("upgrade_staged", record.name,
            {{"id", staged->id},
             {"request", staged->request_hash},
             {"due_at", staged->due_at},
             {"eif", staged->eif_path}});
  return JsonResponse(200, StagedJson(*staged, NowUnix()));
}

http::Response Agent::Impl::DoRevoke(Record& record, const json& body) {
  auto entry = GetBase64(body, "revocation");
  if (!entry) {
    return http::JsonError(400, entry.error().message());
  }
  auto revocation = upgrade::ParseRevocation(*entry);
  if (!revocation) {
    return http::JsonError(400, OneLine(revocation.error().message()));
  }
  std::string hash = upgrade::DigestHex(revocation->request);
  UpgradeState state = record.upgrade->Snapshot();
  if (state.Find(hash) == nullptr) {
    return http::JsonError(404, "no staged request " + hash.substr(0, 16) + " for " + record.name);
  }
  upgrade::Message message;
  message.type = upgrade::MessageType::kRevoke;
  message.entry = *entry;
  auto answer = upgrade::Call(
      transport::HostToEnclave(record.info.endpoint, upgrade::kEnclaveUpgradePort), message,
      kStageTimeout);
  if (!answer) {
    log->Warn("upgrade_revoke_refused", record.name,
              {{"error", OneLine(answer.error().message())}});
    return UpgradeError(answer.error());
  }
  StagedUpgrade revoked;
  {
    std::lock_guard<std::mutex> lock(record.upgrade->mu);
    StagedUpgrade* staged = record.upgrade->state.Find(hash);
    if (staged != nullptr) {
      staged->revoked = true;
      staged->revocation_b64 = Base64Encode(*entry);
      revoked = *staged;
    }
  }
  (void)SaveState();
  log->Warn("upgrade_revoked", record.name, {{"id", revoked.id}, {"request", hash}});
  return JsonResponse(200, StagedJson(revoked, NowUnix()));
}

http::Response Agent::Impl::DoActivate(Record& record, const json& body) {
  auto id = GetString(body, "id", false);
  auto force = GetBool(body, "force");
  if (!id || !force) {
    return http::JsonError(400, (!id ? id.error() : force.error()).message());
  }
  UpgradeState state = record.upgrade->Snapshot();
  const StagedUpgrade* chosen = nullptr;
  if (!id->empty()) {
    chosen = state.Find(*id);
    if (chosen == nullptr) {
      return http::JsonError(404, "no staged request " + OneLine(*id) + " for " + record.name);
    }
  } else {
    std::vector<const StagedUpgrade*> open;
    for (const StagedUpgrade& s : state.staged) {
      if (!s.revoked) {
        open.push_back(&s);
      }
    }
    if (open.empty()) {
      return http::JsonError(409, "nothing is staged for " + record.name +
                                      ": run `enclavia upgrade stage` first");
    }
    if (open.size() > 1) {
      return http::JsonError(409, "several requests are staged for " + record.name +
                                      ": name the one to activate");
    }
    chosen = open.front();
  }
  StagedUpgrade target = *chosen;
  uint64_t now = NowUnix();
  // The host checks what it can say clearly; the old enclave decides, on its own clock
  // (`force` skips the host's checks, so that the enclave's own refusal can be seen).
  if (!*force) {
    if (target.revoked) {
      return http::JsonError(409, "request " + target.id + " was revoked: it cannot be activated");
    }
    if (now < target.due_at) {
      return http::JsonError(409, "request " + target.id + " is not due until " +
                                      UnixTimeText(target.due_at) + " (in " +
                                      std::to_string(target.due_at - now) + " s)");
    }
  }
  std::string instance = InstanceName(record.name, target.request_hash);
  for (const auto& [other, other_record] : records) {
    if (other == instance || other_record.spec.name == instance) {
      return http::JsonError(409, "the successor's instance name " + instance +
                                      " is taken by enclave " + other);
    }
  }
  if (options.provider->Describe(instance)) {
    (void)options.provider->Terminate(instance);  // A failed activation's leftover.
  }
  LaunchSpec spec = record.spec;
  spec.name = instance;
  spec.eif_path = target.eif_path;
  auto launched = options.provider->Launch(spec);
  if (!launched) {
    log->Warn("upgrade_activate_failed", record.name,
              {{"id", target.id}, {"error", OneLine(launched.error().message())}});
    return http::FromError(launched.error().WithContext("cannot launch the successor"));
  }
  Record next;
  next.name = record.name;
  next.spec = spec;
  next.info = std::move(*launched);
  next.port = record.port;
  next.volume = record.volume;
  next.egress = ImageEgress(record.name, spec.eif_path);
  next.upgrade->state.chain = state.chain;
  next.upgrade->state.pending = target.request;
  next.upgrade->state.staged = {target};  // The successor checks the pending request's receipt.
  auto abandon = [&](const Error& error) {
    StopServices(next);
    (void)options.provider->Terminate(instance);
    log->Warn("upgrade_activate_failed", record.name,
              {{"id", target.id}, {"instance", instance}, {"error", OneLine(error.message())}});
    return UpgradeError(error);
  };
  if (auto services = StartServices(next); !services) {
    return abandon(services.error());
  }
  log->Info("upgrade_successor_launched", record.name,
            {{"id", target.id}, {"instance", instance}, {"eif", spec.eif_path}});
  {
    std::lock_guard<std::mutex> lock(record.upgrade->mu);
    record.upgrade->successor = transport::HostToEnclave(next.info.endpoint, transport::kIngressPort);
  }
  upgrade::Message message;
  message.type = upgrade::MessageType::kActivate;
  auto hash = HexDecode(target.request_hash);
  message.entry = hash ? *hash : Bytes{};
  auto answer = upgrade::Call(
      transport::HostToEnclave(record.info.endpoint, upgrade::kEnclaveUpgradePort), message,
      kActivateTimeout);
  {
    std::lock_guard<std::mutex> lock(record.upgrade->mu);
    record.upgrade->successor.reset();
  }
  if (!answer) {
    return abandon(answer.error());
  }
  if (answer->type != upgrade::MessageType::kActivated || answer->entry.empty()) {
    return abandon(Error(Code::kMalformed, "the enclave's answer to activate is not a receipt"));
  }
  std::vector<Bytes> chain = AppendActivation(state.chain, target, answer->entry);

  // The old instance is superseded (it refuses everything now): stop it and its ports, and
  // serve the name from its successor, on the same public port.
  std::string old_instance = record.spec.name;
  if (auto terminated = options.provider->Terminate(old_instance);
      !terminated && terminated.error().code() != Code::kNotFound) {
    log->Err("terminate_failed", record.name,
             {{"instance", old_instance}, {"error", terminated.error().message()}});
  }
  StopRelay(record);
  StopServices(record);
  {
    std::lock_guard<std::mutex> lock(mu);
    record.spec = next.spec;
    record.info = next.info;
    record.egress = next.egress;
    record.storage = std::move(next.storage);
    record.dialer = std::move(next.dialer);
    record.upgrade_service = std::move(next.upgrade_service);
    record.upgrade = next.upgrade;
  }
  {
    std::lock_guard<std::mutex> lock(record.upgrade->mu);
    record.upgrade->state.chain = chain;
    record.upgrade->state.staged.clear();  // They extended the old head: void now.
    record.upgrade->state.pending.reset();
  }
  auto relay = StartRelay(record, record.port);
  if (relay) {
    std::lock_guard<std::mutex> lock(mu);
    record.relay = std::move(*relay);
  } else {
    log->Err("relay_failed", record.name,
             {{"port", record.port}, {"error", relay.error().message()}});
  }
  (void)SaveState();
  UpgradeState after = record.upgrade->Snapshot();
  json status = StatusJson(after, NowUnix());
  log->Info("enclave_upgraded", record.name,
            {{"id", target.id},
             {"from", old_instance},
             {"instance", instance},
             {"length", chain.size()},
             {"head", status.value("head", json(nullptr))}});
  json out = EnclaveJson(record);
  out["activated"] = {{"id", target.id},
                      {"request", target.request_hash},
                      {"receipt", Base64Encode(answer->entry)},
                      {"length", chain.size()},
                      {"head", status["head"]}};
  return JsonResponse(200, out);
}

http::Response Agent::Impl::DoConsole(const std::string& name, const http::Request& request) {
  if (records.count(name) == 0) {
    return http::JsonError(404, "no enclave named " + OneLine(name));
  }
  uint64_t offset = 0;
  if (auto text = request.Query("offset")) {
    if (text->empty() || text->size() > 19 ||
        text->find_first_not_of("0123456789") != std::string::npos) {
      return http::JsonError(400, "offset must be a byte count");
    }
    offset = std::stoull(*text);
  }
  auto console = options.provider->Console(records.at(name).spec.name, offset);
  if (!console) {
    return http::FromError(console.error());
  }
  http::Response response;
  response.content_type = "text/plain; charset=utf-8";
  response.body = std::move(*console);
  return response;
}

http::Response Agent::Impl::Health() {
  std::lock_guard<std::mutex> lock(mu);
  return JsonResponse(200, {{"ok", true}, {"enclaves", records.size()}});
}

http::Response Agent::Impl::Metrics() {
  struct Row {
    std::string name;
    RelayStats stats;
    uint64_t attestations = 0;
    std::optional<ServiceStats> storage;
    std::optional<EgressStats> egress;
  };
  std::vector<Row> rows;
  uint64_t running = 0;
  uint64_t stopped_count = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [name, record] : records) {
      (record.info.state == EnclaveState::kRunning ? running : stopped_count) += 1;
      Row row{name, record.base, 0, std::nullopt, std::nullopt};
      if (record.relay) {
        RelayStats s = record.relay->stats();
        row.stats.accepted += s.accepted;
        row.stats.active = s.active;
        row.stats.refused += s.refused;
        row.stats.bytes_up += s.bytes_up;
        row.stats.bytes_down += s.bytes_down;
        row.stats.answered += s.answered;
      } else {
        row.stats.active = 0;
      }
      if (record.context) {
        row.attestations = record.context->attestation_requests.load();
      }
      if (record.storage && record.volume.attached()) {
        row.storage = record.storage->stats();
      }
      if (record.egress) {
        EgressStats s = record.egress_base;
        s.active = 0;
        if (record.dialer) {
          EgressStats now = record.dialer->stats();
          AddEgressStats(s, now);
          s.active = now.active;
        }
        row.egress = s;
      }
      rows.push_back(std::move(row));
    }
  }
  std::string out;
  auto family = [&](std::string_view metric, std::string_view type, std::string_view help) {
    out += "# HELP " + std::string(metric) + " " + std::string(help) + "\n";
    out += "# TYPE " + std::string(metric) + " " + std::string(type) + "\n";
  };
  auto per_enclave = [&](std::string_view metric, std::string_view type, std::string_view help,
                         const std::function<uint64_t(const Row&)>& value) {
    family(metric, type, help);
    for (const Row& row : rows) {
      out += std::string(metric) + "{enclave=\"" + PromLabel(row.name) + "\"} " +
             std::to_string(value(row)) + "\n";
    }
  };
  family("enclavia_enclaves", "gauge", "Enclaves this host agent manages, by state.");
  out += "enclavia_enclaves{state=\"running\"} " + std::to_string(running) + "\n";
  out += "enclavia_enclaves{state=\"stopped\"} " + std::to_string(stopped_count) + "\n";
  per_enclave("enclavia_relay_connections_total", "counter",
              "WebSocket connections the relay accepted.",
              [](const Row& r) { return r.stats.accepted; });
  per_enclave("enclavia_relay_connections_active", "gauge", "WebSocket connections open now.",
              [](const Row& r) { return r.stats.active; });
  per_enclave("enclavia_relay_refused_total", "counter",
              "Connections the relay refused (bad path, not a WebSocket, over the limit).",
              [](const Row& r) { return r.stats.refused; });
  family("enclavia_relay_bytes_total", "counter",
         "Message bytes relayed (ciphertext; framing excluded), up to or down from the enclave.");
  for (const Row& row : rows) {
    std::string label = PromLabel(row.name);
    out += "enclavia_relay_bytes_total{enclave=\"" + label + "\",direction=\"up\"} " +
           std::to_string(row.stats.bytes_up) + "\n";
    out += "enclavia_relay_bytes_total{enclave=\"" + label + "\",direction=\"down\"} " +
           std::to_string(row.stats.bytes_down) + "\n";
  }
  per_enclave("enclavia_relay_handshakes_total", "counter",
              "Connections on which the enclave answered the client's first message.",
              [](const Row& r) { return r.stats.answered; });
  per_enclave("enclavia_attestation_requests_total", "counter",
              "Requests to the public attestation path.",
              [](const Row& r) { return r.attestations; });
  family("enclavia_storage_requests_total", "counter",
         "Requests of enclaves' volumes to the host's storage service (objects: ciphertext).");
  for (const Row& row : rows) {
    if (row.storage) {
      out += "enclavia_storage_requests_total{enclave=\"" + PromLabel(row.name) + "\"} " +
             std::to_string(row.storage->requests) + "\n";
    }
  }
  family("enclavia_storage_bytes_total", "counter",
         "Bytes between enclaves' volumes and the host's storage service, in or out.");
  for (const Row& row : rows) {
    if (row.storage) {
      std::string label = PromLabel(row.name);
      out += "enclavia_storage_bytes_total{enclave=\"" + label + "\",direction=\"in\"} " +
             std::to_string(row.storage->bytes_in) + "\n";
      out += "enclavia_storage_bytes_total{enclave=\"" + label + "\",direction=\"out\"} " +
             std::to_string(row.storage->bytes_out) + "\n";
    }
  }
  family("enclavia_egress_connections_total", "counter",
         "Outbound connections enclaves asked the host's egress dialer for, by its answer.");
  for (const Row& row : rows) {
    if (row.egress) {
      for (size_t i = 0; i < row.egress->by_status.size(); ++i) {
        out += "enclavia_egress_connections_total{enclave=\"" + PromLabel(row.name) +
               "\",status=\"" + EgressStatusLabel(static_cast<egress::DialStatus>(i)) + "\"} " +
               std::to_string(row.egress->by_status[i]) + "\n";
      }
    }
  }
  family("enclavia_egress_active", "gauge", "Outbound connections the egress dialer serves now.");
  for (const Row& row : rows) {
    if (row.egress) {
      out += "enclavia_egress_active{enclave=\"" + PromLabel(row.name) + "\"} " +
             std::to_string(row.egress->active) + "\n";
    }
  }
  family("enclavia_egress_bytes_total", "counter",
         "Bytes the egress dialer relayed, up from the enclave or down to it (the app's own "
         "encryption, if any, still on them).");
  for (const Row& row : rows) {
    if (row.egress) {
      std::string label = PromLabel(row.name);
      out += "enclavia_egress_bytes_total{enclave=\"" + label + "\",direction=\"up\"} " +
             std::to_string(row.egress->bytes_up) + "\n";
      out += "enclavia_egress_bytes_total{enclave=\"" + label + "\",direction=\"down\"} " +
             std::to_string(row.egress->bytes_down) + "\n";
    }
  }
  http::Response response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = std::move(out);
  return response;
}

void Agent::Impl::OnControl(http::Reply reply, std::function<http::Response()> work) {
  asio::post(control, [this, reply = std::move(reply), work = std::move(work)] {
    http::Response response;
    try {
      response = work();
    } catch (const std::exception& e) {
      log->Err("internal_error", "", {{"error", OneLine(e.what())}});
      response = http::JsonError(500, "internal error");
    }
    reply(std::move(response));
  });
}

void Agent::Impl::HandleApi(http::Request request, http::Reply reply) {
  try {
    RouteApi(std::move(request), reply);
  } catch (const std::exception& e) {
    log->Err("internal_error", "", {{"error", OneLine(e.what())}});
    reply(http::JsonError(500, "internal error"));
  }
}

void Agent::Impl::RouteApi(http::Request request, http::Reply reply) {
  std::string path(request.path());
  const std::string& method = request.method;
  auto wrong_method = [&](std::string_view allowed) {
    http::Response response = http::JsonError(405, "use " + std::string(allowed));
    response.headers.emplace_back("Allow", std::string(allowed));
    reply(std::move(response));
  };
  if (path == "/healthz") {
    reply(method == "GET" ? Health() : http::JsonError(405, "use GET"));
    return;
  }
  if (path == "/metrics") {
    reply(method == "GET" ? Metrics() : http::JsonError(405, "use GET"));
    return;
  }
  if (path == "/v1/roots") {
    if (method != "GET") {
      wrong_method("GET");
      return;
    }
    reply(JsonResponse(200, {{"roots", options.roots_pem}}));
    return;
  }
  if (path == "/v1/enclaves") {
    if (method == "POST") {
      OnControl(std::move(reply),
                [this, body = std::move(request.body)] { return DoLaunch(body); });
    } else if (method == "GET") {
      OnControl(std::move(reply), [this] { return DoList(); });
    } else {
      wrong_method("GET, POST");
    }
    return;
  }
  if (path == "/v1/volumes") {
    if (method != "GET") {
      wrong_method("GET");
      return;
    }
    OnControl(std::move(reply), [this] { return DoVolumes(); });
    return;
  }
  constexpr std::string_view kVolumes = "/v1/volumes/";
  if (path.rfind(kVolumes, 0) == 0) {
    std::string rest = path.substr(kVolumes.size());
    std::string name = rest.substr(0, rest.find('/'));
    std::string action = rest.size() > name.size() ? rest.substr(name.size() + 1) : "";
    if (!config::ValidEnclaveName(name)) {
      reply(http::JsonError(404, "no volume named " + OneLine(name)));
      return;
    }
    bool get = action.empty() || action == "recovery";
    if ((get && method != "GET") || (!get && method != "POST")) {
      wrong_method(get ? "GET" : "POST");
      return;
    }
    OnControl(std::move(reply), [this, name, action, request = std::move(request)] {
      return DoVolume(name, action, request);
    });
    return;
  }
  constexpr std::string_view kPrefix = "/v1/enclaves/";
  if (path.rfind(kPrefix, 0) == 0) {
    std::string rest = path.substr(kPrefix.size());
    std::string name = rest.substr(0, rest.find('/'));
    std::string action = rest.size() > name.size() ? rest.substr(name.size() + 1) : "";
    bool has_action = rest.size() > name.size();
    if (!config::ValidEnclaveName(name)) {
      reply(http::JsonError(404, "no enclave named " + OneLine(name)));
      return;
    }
    if (!has_action) {
      if (method == "GET") {
        OnControl(std::move(reply), [this, name] { return DoGet(name); });
      } else if (method == "DELETE") {
        OnControl(std::move(reply), [this, name] { return DoDelete(name); });
      } else {
        wrong_method("GET, DELETE");
      }
      return;
    }
    if (action == "restart") {
      if (method != "POST") {
        wrong_method("POST");
        return;
      }
      OnControl(std::move(reply), [this, name] { return DoRestart(name); });
      return;
    }
    if (action == "console") {
      if (method != "GET") {
        wrong_method("GET");
        return;
      }
      OnControl(std::move(reply),
                [this, name, request = std::move(request)] { return DoConsole(name, request); });
      return;
    }
    if (action == "chain" || action == "upgrade" || action == "upgrade/stage" ||
        action == "upgrade/revoke" || action == "upgrade/activate") {
      bool get = action == "chain" || action == "upgrade";
      if ((get && method != "GET") || (!get && method != "POST")) {
        wrong_method(get ? "GET" : "POST");
        return;
      }
      OnControl(std::move(reply), [this, name, action, body = std::move(request.body)] {
        return DoUpgrade(name, action, body);
      });
      return;
    }
  }
  reply(http::JsonError(404, "not found: " + OneLine(path)));
}

Result<void> Agent::Impl::StartApi() {
  http::ServerOptions server_options;
  server_options.listen = options.listen;
  server_options.timeout = kApiTimeout;
  server_options.bearer_token = token;
  server_options.public_paths = {"/healthz", "/metrics"};
  server_options.handler = [this](http::Request request, http::Reply reply) {
    HandleApi(std::move(request), std::move(reply));
  };
  ASSIGN_OR_RETURN(server, http::Server::Create(io, std::move(server_options)));
  api_address = server->local_address();
  std::string text = api_address.ToString();
  RETURN_IF_ERROR(WriteFileAtomic(
      Path("address"), ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()), 0644));
  return Ok();
}

void Agent::Impl::StartThreads() {
  io_guard.emplace(io.get_executor());
  unsigned count = std::max(1u, options.io_threads);
  for (unsigned i = 0; i < count; ++i) {
    io_threads.emplace_back([this] { io.run(); });
  }
}

Result<std::unique_ptr<Agent>> Agent::Create(AgentOptions options) {
  if (options.data_dir.empty()) {
    return Error(Code::kInvalidArgument, "the agent needs a data directory");
  }
  if (!options.provider) {
    return Error(Code::kInvalidArgument, "the agent needs a provider");
  }
  if (options.listen.host.empty() && options.listen.family == net::Family::kTcp) {
    options.listen = net::Address{net::Family::kTcp, "127.0.0.1", 0, 0};
  }
  if (options.public_host.empty()) {
    return Error(Code::kInvalidArgument, "the public host must be an IP address");
  }
  if (options.attestation_timeout.count() <= 0 || options.max_attestation_requests == 0) {
    return Error(Code::kInvalidArgument, "attestation timeout and limit must be positive");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return Error(Code::kIo, "cannot create " + options.data_dir + ": " + ec.message());
  }
  ::chmod(options.data_dir.c_str(), 0700);

  auto impl = std::make_unique<Impl>(std::move(options));
  RETURN_IF_ERROR(impl->LoadOrCreateToken());
  impl->StartThreads();
  // From here on Stop() (through ~Agent) undoes whatever was started if a step fails.
  std::unique_ptr<Agent> agent(new Agent(std::move(impl)));
  Impl& self = *agent->impl_;
  RETURN_IF_ERROR(self.LoadStateAndReattach());
  self.control_guard.emplace(self.control.get_executor());
  self.control_thread = std::thread([&self] { self.control.run(); });
  asio::post(self.control, [&self] { self.ScheduleRefresh(); });
  RETURN_IF_ERROR(self.StartApi());
  self.started = true;
  self.log->Info("agent_started", "",
                 {{"api", self.api_address.ToString()},
                  {"enclaves", self.records.size()},
                  {"public_host", self.options.public_host},
                  {"pid", static_cast<int64_t>(::getpid())}});
  return agent;
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Agent::~Agent() { Stop(); }

net::Address Agent::api_address() const { return impl_->api_address; }

const std::string& Agent::token() const { return impl_->token; }

void Agent::Stop() {
  Impl& self = *impl_;
  if (self.stopped) {
    return;
  }
  self.stopped = true;
  if (self.server) {
    self.server->Stop();
  }
  // Let the control thread finish what it was asked, then stop it.
  if (self.control_thread.joinable()) {
    asio::post(self.control, [&self] { self.refresh_timer.cancel(); });
    self.control_guard.reset();
    self.control_thread.join();
  }
  bool terminate = self.options.terminate_on_exit && self.started;
  if (terminate) {
    for (auto& [name, record] : self.records) {
      auto terminated = self.options.provider->Terminate(record.spec.name);
      if (terminated || terminated.error().code() == Code::kNotFound) {
        self.log->Info("enclave_terminated", name);
      } else {
        self.log->Err("terminate_failed", name, {{"error", terminated.error().message()}});
      }
    }
  }
  std::vector<Relay*> relays;
  for (auto& [name, record] : self.records) {
    if (record.relay) {
      record.relay->Stop();
      relays.push_back(record.relay.get());
    }
  }
  SteadyClock::time_point deadline = SteadyClock::now() + kDrainBudget;
  while (SteadyClock::now() < deadline &&
         std::any_of(relays.begin(), relays.end(),
                     [](const Relay* relay) { return relay->stats().active > 0; })) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  self.io_guard.reset();
  self.io.stop();
  for (auto& thread : self.io_threads) {
    thread.join();
  }
  self.io_threads.clear();
  if (terminate) {
    {
      std::lock_guard<std::mutex> lock(self.mu);
      self.records.clear();
    }
    (void)self.SaveState();
  }
  if (self.started) {
    // A stale address would send the control plane to a port someone else may hold next.
    std::error_code ignored;
    std::filesystem::remove(self.Path("address"), ignored);
  }
  self.log->Info("agent_stopped", "",
                 {{"enclaves_left_running", terminate ? 0 : self.records.size()}});
}

}  // namespace enclavia::host
