// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_STORAGE_REMOTE_STORE_H_
#define ENCLAVIA_LIB_STORAGE_REMOTE_STORE_H_

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/net/address.h"
#include "lib/storage/object_store.h"
#include "lib/storage/wire.h"
#include "lib/sys/fd.h"

// RemoteObjectStore is the enclave's client of the host's storage service
// (src/host/storage/service.h), over the storage wire protocol (lib/storage/wire.h). Everything
// the host answers is untrusted: responses are parsed strictly, sizes checked against what was
// asked, and every failure is one line ("storage host: ...") that never crashes the enclave.
namespace enclavia::storage {

struct RemoteStoreOptions {
  // io_timeout bounds each send and receive on the connection (a host that stalls is an error,
  // not a hang). Connecting is bounded by the kernel.
  std::chrono::milliseconds io_timeout{60000};
};

// RemoteObjectStore implements ObjectStore by sending each call to the host, one request at a
// time under a mutex (thread-safe). It connects lazily, and when the connection breaks (closed,
// reset, timed out) it reconnects and resends once: every request is idempotent. A response that
// does not parse or answers the wrong request closes the connection and fails the call.
class RemoteObjectStore : public ObjectStore {
 public:
  explicit RemoteObjectStore(net::Address address, RemoteStoreOptions options = {});

  Result<void> Put(const std::string& name, ByteSpan data) override;
  Result<Bytes> Get(const std::string& name) override;
  Result<Bytes> GetRange(const std::string& name, uint64_t offset, uint64_t length) override;
  Result<void> Delete(const std::string& name) override;
  // List returns [] for a prefix no valid name can start with.
  Result<std::vector<std::string>> List(const std::string& prefix) override;

  // Hello asks the host which volume it attached at deploy time (nullopt: none) and checks the
  // protocol version (kUnsupported on a mismatch).
  Result<std::optional<wire::Attachment>> Hello();
  // Report tells the host this volume's status, shown by `enclavia inspect`. The text is made
  // printable and cut to wire::kMaxReportSize; never put secrets in it.
  Result<void> Report(std::string_view status);

 private:
  // Call sends one request body and returns the host's answer of the same type (an error
  // response is returned as that Error, prefixed "storage host: ").
  Result<wire::Response> Call(wire::Type type, const Bytes& body);
  Result<wire::Response> CallOnce(wire::Type type, const Bytes& body, bool* retry);
  Result<void> Connect();

  net::Address address_;
  RemoteStoreOptions options_;
  std::mutex mu_;
  sys::UniqueFd fd_;  // Guarded by mu_.
};

}  // namespace enclavia::storage

#endif  // ENCLAVIA_LIB_STORAGE_REMOTE_STORE_H_
