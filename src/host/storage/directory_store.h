// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_STORAGE_DIRECTORY_STORE_H_
#define ENCLAVIA_HOST_STORAGE_DIRECTORY_STORE_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lib/storage/object_store.h"
#include "lib/sys/fd.h"

namespace enclavia::host {

// DirectoryObjectStore keeps each object as a file under a root directory; a name's '/'
// separated parts are subdirectories (ValidObjectName makes every name a safe relative path).
// Every path is walked with *at() calls and O_NOFOLLOW from the root's descriptor, so a symlink
// planted in the tree is never followed (it is an error, or skipped by List).
//
// Put writes a temporary file ("~tmp.<random>", a name no object can have), fsyncs it, renames it
// over the object and fsyncs the directory: a crash leaves the old object or the new one, and a
// failed Put leaves the old object (ENOSPC is kLimitExceeded "disk full"). Other failures are kIo,
// one line naming the object. Thread-safe (concurrent calls on the same name: last rename wins).
class DirectoryObjectStore : public storage::ObjectStore {
 public:
  // Open uses `root`, creating it (mode 0700; its parent must exist) if missing.
  static Result<std::unique_ptr<DirectoryObjectStore>> Open(const std::string& root);

  Result<void> Put(const std::string& name, ByteSpan data) override;
  Result<Bytes> Get(const std::string& name) override;
  Result<Bytes> GetRange(const std::string& name, uint64_t offset, uint64_t length) override;
  Result<void> Delete(const std::string& name) override;
  Result<std::vector<std::string>> List(const std::string& prefix) override;

  const std::string& root() const { return root_; }

 private:
  DirectoryObjectStore(std::string root, sys::UniqueFd dir)
      : root_(std::move(root)), dir_(std::move(dir)) {}
  enum class Create { kNo, kYes };
  // OpenParent opens the directory holding `name`, creating missing directories with kYes
  // (kNotFound with kNo).
  Result<sys::UniqueFd> OpenParent(const std::string& name, Create create);
  // OpenObject opens an object for reading and returns it with its size.
  Result<std::pair<sys::UniqueFd, uint64_t>> OpenObject(const std::string& name);

  std::string root_;
  sys::UniqueFd dir_;
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_STORAGE_DIRECTORY_STORE_H_
