// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLIENT_PROXY_H_
#define ENCLAVIA_CLIENT_PROXY_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "client/connect.h"
#include "lib/base/result.h"
#include "lib/channel/trust.h"
#include "lib/net/address.h"

// The transparent proxy for legacy clients (`enclavia proxy`): every TCP connection accepted on
// `listen` becomes one stream to the enclave's app port over a single attested channel. When the
// channel fails it reconnects, verifying the enclave again; connections that arrive meanwhile
// wait (up to connect_wait) and are refused if no verified channel comes back.
namespace enclavia::client {

struct ProxyOptions {
  net::Address listen;  // tcp:
  std::string url;      // ws:// or wss:// of the host's relay
  std::shared_ptr<const channel::TrustPolicy> policy;
  uint16_t port = 80;   // The enclave's application port.
  ConnectOptions connect;
  std::chrono::milliseconds retry_initial{250};
  std::chrono::milliseconds retry_max{10000};
  std::chrono::milliseconds connect_wait{15000};
  size_t max_pending = 1024;
  // log receives one line per event (verified PCRs, reconnects, failures).
  std::function<void(std::string_view)> log;
};

struct ProxyStats {
  uint64_t connections = 0;
  uint64_t channels = 0;          // Verified channels established.
  uint64_t channel_failures = 0;  // Connect or verification failures.
};

class Proxy {
 public:
  // Start binds `listen`, connects and verifies the first channel, and only then starts
  // accepting. `ready` runs once on the proxy's strand: an error (bad address, verification
  // failed) means the proxy did not start and no connection was accepted.
  static std::shared_ptr<Proxy> Start(boost::asio::io_context& io, ProxyOptions options,
                                      std::function<void(Result<net::Address>)> ready);
  ~Proxy();

  void Stop();
  ProxyStats stats() const;

  struct State;

 private:
  explicit Proxy(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace enclavia::client

#endif  // ENCLAVIA_CLIENT_PROXY_H_
