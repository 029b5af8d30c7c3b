// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_STORAGE_SERVICE_H_
#define ENCLAVIA_HOST_STORAGE_SERVICE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lib/base/encoding.h"
#include "lib/net/address.h"
#include "lib/storage/object_store.h"
#include "lib/storage/wire.h"
#include "lib/sys/fd.h"

// StorageService is the host's side of the storage wire protocol (lib/storage/wire.h): it serves
// one enclave, answering Hello with the volume attached at deploy time and forwarding object
// calls to an ObjectStore backend (DirectoryObjectStore or S3ObjectStore). The enclave is not
// trusted either: requests are decoded strictly and a malformed one closes its connection.
namespace enclavia::host {

struct ServiceOptions {
  // max_connections bounds concurrent connections; more are accepted and closed at once.
  size_t max_connections = 4;
  // attachment is what Hello answers (nullopt: "no volume").
  std::optional<storage::wire::Attachment> attachment;
};

// ServiceStats are counters for /metrics (monotonic since Start).
struct ServiceStats {
  uint64_t connections = 0;
  uint64_t requests = 0;
  uint64_t bytes_in = 0;   // Frame bytes received (headers included).
  uint64_t bytes_out = 0;  // Frame bytes sent.
  uint64_t errors = 0;     // Error responses plus malformed requests.
};

// VolumeReport is the enclave's last Report.
struct VolumeReport {
  std::string status;
  SystemTime received;
};

class StorageService {
 public:
  // Start listens on `address` (unix:PATH — a stale socket file there is replaced —, tcp:HOST:PORT
  // with port 0 for an ephemeral port, or vsock:CID:PORT) and serves in background threads, one
  // per connection. `backend` must outlive the service. kIo on a listen failure.
  static Result<std::unique_ptr<StorageService>> Start(const net::Address& address,
                                                       storage::ObjectStore& backend,
                                                       ServiceOptions options);
  // The destructor stops the service (Stop()).
  ~StorageService();
  StorageService(const StorageService&) = delete;
  StorageService& operator=(const StorageService&) = delete;

  // Stop closes the listener and every connection and joins the threads. Idempotent.
  void Stop();

  // address is where the service listens (the real port for tcp port 0).
  const net::Address& address() const { return address_; }
  // last_report returns the enclave's latest Report, if any. Thread-safe.
  std::optional<VolumeReport> last_report() const;
  // stats returns the counters. Thread-safe.
  ServiceStats stats() const;

 private:
  StorageService(net::Address address, storage::ObjectStore& backend, ServiceOptions options,
                 sys::UniqueFd listener);
  void AcceptLoop();
  void ServeConnection(int fd);
  storage::wire::Response Handle(const storage::wire::Request& request);

  net::Address address_;
  storage::ObjectStore& backend_;
  ServiceOptions options_;
  sys::UniqueFd listener_;
  std::thread acceptor_;
  sys::UniqueFd wake_read_;  // A byte on wake_write_ stops the accept loop.
  sys::UniqueFd wake_write_;

  mutable std::mutex mu_;
  std::condition_variable idle_;
  bool stopping_ = false;               // Guarded by mu_.
  std::set<int> open_;                  // Connection fds being served; guarded by mu_.
  size_t running_ = 0;                  // Connection threads alive; guarded by mu_.
  std::optional<VolumeReport> report_;  // Guarded by mu_.

  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<uint64_t> errors_{0};
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_STORAGE_SERVICE_H_
