// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CONTROL_CONTROL_H_
#define ENCLAVIA_CONTROL_CONTROL_H_

#include <chrono>
#include <memory>
#include <string>

#include "lib/base/result.h"
#include "lib/net/address.h"

// The control plane (`enclavia-control`): the REST API of docs/platform-api.md over the SQLite
// store, talking to one host agent. Outside the trust boundary: never keys or plaintext.
namespace enclavia::control {

struct ControlOptions {
  std::string data_dir;  // DIR; DIR/control is created (0700) with images/, roots/, token.
  net::Address listen;   // Default (family tcp, empty host): tcp:127.0.0.1:0.
  // host is the agent's address or a file holding it; default DIR/host/address.
  std::string host;
  std::string host_token;  // Default DIR/host/token.
  unsigned io_threads = 2;
  unsigned workers = 4;  // Threads serving requests (they block on SQLite and the agent).
  // auto_activate_interval: how often staged upgrades that are due are activated
  // (docs/upgrade.md); zero turns automatic activation off.
  std::chrono::seconds auto_activate_interval{5};
};

class Control {
 public:
  // Create makes DIR/control (token created once: 32 random bytes as hex, 0600), opens
  // DIR/control/control.db (migrating it), starts the API and writes DIR/control/address.
  // Errors: kInvalidArgument, kIo, kFailedPrecondition (a database newer than this build).
  static Result<std::unique_ptr<Control>> Create(ControlOptions options);
  ~Control();  // Stop().
  Control(const Control&) = delete;
  Control& operator=(const Control&) = delete;

  net::Address address() const;
  const std::string& token() const;
  // Stop stops the API, waits for requests in progress, and removes DIR/control/address.
  // Idempotent; blocks.
  void Stop();

  struct Impl;

 private:
  explicit Control(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enclavia::control

#endif  // ENCLAVIA_CONTROL_CONTROL_H_
