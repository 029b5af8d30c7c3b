// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_HTTP_HTTP_H_
#define ENCLAVIA_LIB_HTTP_HTTP_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "lib/base/result.h"
#include "lib/net/address.h"

// A small HTTP/1.1 server and a blocking client on Boost.Beast, for the control plane's and the
// host agent's local JSON APIs (outside the trust boundary; never for enclave traffic).
namespace enclavia::http {

struct Request {
  std::string method;                         // "GET", "POST", ...
  std::string target;                         // As sent: path and query.
  std::map<std::string, std::string> headers;  // Names lowercased.
  std::string body;
  // body_file: on the server, set when ServerOptions::spool streamed the body into this file
  // (`body` is then empty and the handler owns the file). On the client, if set, Fetch and
  // StreamTo send this file's contents as the body instead of `body`.
  std::string body_file;

  std::string_view path() const;  // target up to '?'.
  // Query returns the percent-decoded value of query parameter `name`, if present.
  std::optional<std::string> Query(std::string_view name) const;
  // Header returns a header's value, or "" (name case-insensitive).
  std::string Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // Extra headers.
};

// JsonError is {"error": message} with `status`; the message is one line.
Response JsonError(int status, std::string_view message);
// StatusFor maps an Error's code to an HTTP status (kNotFound 404, kAlreadyExists 409,
// kInvalidArgument/kMalformed 400, kFailedPrecondition 409, kUnavailable 503, else 500).
int StatusFor(const Error& error);
inline Response FromError(const Error& error) { return JsonError(StatusFor(error), error.message()); }

// Reply sends the response; it may be called from any thread, exactly once.
using Reply = std::function<void(Response)>;
// Handler is called on the server's strand for each request; it may reply later (asynchronously).
using Handler = std::function<void(Request, Reply)>;

struct ServerOptions {
  net::Address listen;                 // tcp:HOST:PORT (port 0: ephemeral) or unix:PATH.
  size_t max_body = 1 << 20;           // Bigger: 413.
  std::chrono::milliseconds timeout{30000};  // Per request (read + handler + write).
  // bearer_token set: every request but those to `public_paths` needs "Authorization: Bearer
  // <token>" (compared in constant time), else 401.
  std::optional<std::string> bearer_token;
  std::vector<std::string> public_paths;  // Exact paths served without the token.
  Handler handler;
  // spool, if set, is asked about each authorized request that has a body, once its headers are
  // read. A path streams the body into that new file (created 0600, must not exist) instead of
  // memory, up to spool_max_body bytes (bigger: 413 and the file removed); while it streams,
  // `timeout` bounds each read rather than the whole body. nullopt: the body goes to memory.
  std::function<std::optional<std::string>(const Request& head)> spool;
  uint64_t spool_max_body = 0;
};

// Server serves keep-alive HTTP/1.1 connections on `io`, each on its own strand.
class Server {
 public:
  static Result<std::unique_ptr<Server>> Create(boost::asio::io_context& io, ServerOptions options);
  ~Server();  // Stop().
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  net::Address local_address() const;
  void Stop();  // Stops accepting and closes idle connections; idempotent.
  struct State;

 private:
  explicit Server(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

struct ClientOptions {
  std::chrono::milliseconds timeout{30000};
  std::optional<std::string> bearer_token;
  size_t max_body = 64 << 20;
};

// Fetch sends one request to `to` (tcp: or unix:) on a new connection and reads the response.
// kUnavailable when it cannot connect ("cannot reach ADDRESS: …"), kIo on a broken exchange,
// kLimitExceeded over max_body. Any HTTP status is a successful Fetch.
Result<Response> Fetch(const net::Address& to, const Request& request,
                       const ClientOptions& options = {});

// StreamTo sends one request and hands the response body to `on_data` as it arrives (for
// `logs -f`); stops when on_data returns false or the server closes.
Result<int> StreamTo(const net::Address& to, const Request& request, const ClientOptions& options,
                     const std::function<bool(std::string_view)>& on_data);

}  // namespace enclavia::http

#endif  // ENCLAVIA_LIB_HTTP_HTTP_H_
