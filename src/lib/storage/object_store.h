// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_STORAGE_OBJECT_STORE_H_
#define ENCLAVIA_LIB_STORAGE_OBJECT_STORE_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// The host keeps an enclave's volume as named, immutable objects (docs/formats/volume.md): the
// enclave's block store writes each object once and later deletes it; it never rewrites one. The
// store is untrusted: everything it returns is checked by the caller (AEAD, Merkle root,
// signatures, witnesses). Implementations: the host's directory and S3 backends
// (src/host/storage), the enclave's client of the host's storage service, and MemoryObjectStore.
namespace enclavia::storage {

// kMaxObjectSize caps one object (a segment is at most this big); larger Puts are kLimitExceeded.
inline constexpr uint64_t kMaxObjectSize = 64ull << 20;
// kMaxObjectNameSize caps an object name.
inline constexpr size_t kMaxObjectNameSize = 200;

// ValidObjectName: 1..200 characters of [a-z0-9._/-], no leading or trailing '/', no empty, "."
// or ".." component. Every store refuses other names with kInvalidArgument, so a name is always
// a safe relative path and a safe S3 key.
bool ValidObjectName(std::string_view name);

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Put stores `data` under `name`, replacing any object of that name. It returns only once the
  // object is durable (fsync'd, or acknowledged by S3), and readers see the old or the new object
  // whole, never a mix.
  virtual Result<void> Put(const std::string& name, ByteSpan data) = 0;
  // Get returns the whole object; kNotFound when there is none.
  virtual Result<Bytes> Get(const std::string& name) = 0;
  // GetRange returns `length` bytes at `offset`; kNotFound when there is no object, kMalformed
  // when the object is shorter than offset + length.
  virtual Result<Bytes> GetRange(const std::string& name, uint64_t offset, uint64_t length) = 0;
  // Delete removes the object; deleting a missing object succeeds.
  virtual Result<void> Delete(const std::string& name) = 0;
  // List returns the names that start with `prefix`, sorted bytewise.
  virtual Result<std::vector<std::string>> List(const std::string& prefix) = 0;
};

// MemoryObjectStore keeps objects in memory (tests, and the in-enclave fallback never used in
// production). Thread-safe.
class MemoryObjectStore : public ObjectStore {
 public:
  Result<void> Put(const std::string& name, ByteSpan data) override;
  Result<Bytes> Get(const std::string& name) override;
  Result<Bytes> GetRange(const std::string& name, uint64_t offset, uint64_t length) override;
  Result<void> Delete(const std::string& name) override;
  Result<std::vector<std::string>> List(const std::string& prefix) override;

  // Tests play a hostile host through these: direct access to the stored bytes.
  std::map<std::string, Bytes> Snapshot() const;
  void Restore(std::map<std::string, Bytes> objects);

 private:
  mutable std::mutex mu_;
  std::map<std::string, Bytes> objects_;
};

}  // namespace enclavia::storage

#endif  // ENCLAVIA_LIB_STORAGE_OBJECT_STORE_H_
