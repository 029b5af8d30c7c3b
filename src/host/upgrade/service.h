// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_UPGRADE_SERVICE_H_
#define ENCLAVIA_HOST_UPGRADE_SERVICE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "lib/base/result.h"
#include "lib/net/address.h"
#include "lib/sys/fd.h"
#include "lib/upgrade/wire.h"

// UpgradeHostService is the host's upgrade service for one enclave, on its parent port
// upgrade::kParentUpgradePort (lib/upgrade/wire.h, "2."): "chain" answers the enclave's chain as
// the host keeps it; "successor" answers "ok" and then pipes bytes, both ways, to the successor
// enclave's ingress while an activation runs (the old enclave runs an attested channel handshake
// over it, so the host relays ciphertext it cannot use). Anything else is answered with an error
// and the connection closed. A thread per connection, at most kMaxConnections at once; a
// request must arrive within kRequestTimeout.
namespace enclavia::host {

class UpgradeHostService {
 public:
  static constexpr int kMaxConnections = 8;
  static constexpr std::chrono::milliseconds kRequestTimeout{5000};
  // How long "successor" waits for the successor's ingress to listen (it is still booting).
  static constexpr std::chrono::milliseconds kSuccessorBootTimeout{30000};

  struct Handlers {
    // chain returns what "chain" answers now. Called on a connection thread.
    std::function<upgrade::HostChain()> chain;
    // successor says where the successor's ingress listens now; nullopt refuses "successor"
    // (no activation is running). Called on a connection thread.
    std::function<std::optional<net::Address>()> successor;
  };

  // Start listens on `listen` (locally the enclave's parent-port Unix socket). kIo if it cannot.
  static Result<std::unique_ptr<UpgradeHostService>> Start(const net::Address& listen,
                                                           Handlers handlers);
  // The destructor closes the listener and every connection (pipes included) and joins.
  ~UpgradeHostService();
  UpgradeHostService(const UpgradeHostService&) = delete;
  UpgradeHostService& operator=(const UpgradeHostService&) = delete;

  uint64_t requests() const { return requests_.load(); }
  uint64_t piped_bytes() const { return piped_bytes_.load(); }

 private:
  UpgradeHostService(sys::UniqueFd listener, sys::UniqueFd wake, Handlers handlers);
  void AcceptLoop();
  void Serve(sys::UniqueFd fd);
  void Pipe(int a, int b);

  sys::UniqueFd listener_;
  sys::UniqueFd wake_;  // An eventfd: readable once the service stops.
  Handlers handlers_;
  std::thread accept_thread_;
  std::mutex mu_;
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<Connection> connections_;  // Finished ones are joined at the next accept.
  std::set<int> open_fds_;             // Shut down on destruction (guarded by mu_).
  std::atomic<int> active_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> piped_bytes_{0};
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_UPGRADE_SERVICE_H_
