// SPDX-License-Identifier: Apache-2.0
#include "lib/storage/object_store.h"

#include <utility>

namespace enclavia::storage {

bool ValidObjectName(std::string_view name) {
  if (name.empty() || name.size() > kMaxObjectNameSize || name.front() == '/' ||
      name.back() == '/') {
    return false;
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) {
      end = name.size();
    }
    std::string_view part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return false;
    }
    for (char c : part) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                c == '-';
      if (!ok) {
        return false;
      }
    }
    start = end + 1;
  }
  return true;
}

namespace {
Result<void> CheckName(const std::string& name) {
  if (!ValidObjectName(name)) {
    return Error(Code::kInvalidArgument, "invalid object name");
  }
  return Ok();
}
}  // namespace

Result<void> MemoryObjectStore::Put(const std::string& name, ByteSpan data) {
  RETURN_IF_ERROR(CheckName(name));
  if (data.size() > kMaxObjectSize) {
    return Error(Code::kLimitExceeded, "object " + name + " is over the object size limit");
  }
  std::lock_guard lock(mu_);
  objects_[name] = Bytes(data.begin(), data.end());
  return Ok();
}

Result<Bytes> MemoryObjectStore::Get(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  std::lock_guard lock(mu_);
  auto it = objects_.find(name);
  if (it == objects_.end()) {
    return Error(Code::kNotFound, "no object " + name);
  }
  return it->second;
}

Result<Bytes> MemoryObjectStore::GetRange(const std::string& name, uint64_t offset,
                                          uint64_t length) {
  RETURN_IF_ERROR(CheckName(name));
  std::lock_guard lock(mu_);
  auto it = objects_.find(name);
  if (it == objects_.end()) {
    return Error(Code::kNotFound, "no object " + name);
  }
  const Bytes& data = it->second;
  if (offset > data.size() || length > data.size() - offset) {
    return Error(Code::kMalformed, "object " + name + " is shorter than the range asked");
  }
  return Bytes(data.begin() + static_cast<std::ptrdiff_t>(offset),
               data.begin() + static_cast<std::ptrdiff_t>(offset + length));
}

Result<void> MemoryObjectStore::Delete(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  std::lock_guard lock(mu_);
  objects_.erase(name);
  return Ok();
}

Result<std::vector<std::string>> MemoryObjectStore::List(const std::string& prefix) {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (auto it = objects_.lower_bound(prefix); it != objects_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) {
      break;
    }
    out.push_back(it->first);
  }
  return out;
}

std::map<std::string, Bytes> MemoryObjectStore::Snapshot() const {
  std::lock_guard lock(mu_);
  return objects_;
}

void MemoryObjectStore::Restore(std::map<std::string, Bytes> objects) {
  std::lock_guard lock(mu_);
  objects_ = std::move(objects);
}

}  // namespace enclavia::storage
