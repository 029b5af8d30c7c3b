// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_AGENT_FORWARD_H_
#define ENCLAVIA_HOST_AGENT_FORWARD_H_

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "lib/base/result.h"
#include "lib/net/address.h"
#include "lib/sys/fd.h"

// PortForward pipes every connection accepted on one address to another, byte for byte, both
// ways (docs/storage.md, "Witnesses"): an enclave's witness port (the parent's vsock port
// 5100 + i) to that witness enclave's public WebSocket port. The bytes are an attested Noise
// channel between the two enclaves; the host reads nothing it could use. A thread per
// connection (witness traffic is a few small messages per commit); at most 16 at once.
namespace enclavia::host {

class PortForward {
 public:
  // Target resolves where a new connection goes (it may change while the forward runs, e.g. a
  // restarted witness gets its port back); nullopt refuses the connection.
  using Target = std::function<std::optional<net::Address>()>;

  static Result<std::unique_ptr<PortForward>> Start(const net::Address& listen, Target target);
  // The destructor closes the listener and every connection and joins the threads.
  ~PortForward();
  PortForward(const PortForward&) = delete;
  PortForward& operator=(const PortForward&) = delete;

  uint64_t connections() const { return connections_.load(); }
  uint64_t bytes() const { return bytes_.load(); }

 private:
  PortForward(sys::UniqueFd listener, sys::UniqueFd wake, Target target);
  void AcceptLoop();
  void Pipe(int a, int b);

  sys::UniqueFd listener_;
  sys::UniqueFd wake_;
  Target target_;
  std::thread accept_thread_;
  std::mutex mu_;
  struct PipeThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<PipeThread> pipes_;  // Finished ones are joined at the next accept.
  std::atomic<int> active_{0};
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_AGENT_FORWARD_H_
