// SPDX-License-Identifier: Apache-2.0
#include "lib/image/tree.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <utility>

#include <sys/stat.h>

#include "lib/image/internal/content.h"
#include "lib/sys/fd.h"

namespace enclavia::image {
namespace {

// IsNormalized says whether `path` is already in the Entry form, so lookups can skip the copy.
bool IsNormalized(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') {
    return false;
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos) {
      return false;
    }
    start = end + 1;
  }
  return true;
}

bool HasPrefix(const std::string& key, const std::string& prefix) {
  return key.size() >= prefix.size() && key.compare(0, prefix.size(), prefix) == 0;
}

// EraseUnder removes the keys strictly under directory `dir`: those starting with "dir/", which
// form one contiguous range of the bytewise-ordered map.
void EraseUnder(Tree::Map& map, const std::string& dir) {
  const std::string prefix = dir + "/";
  auto it = map.lower_bound(prefix);
  auto end = it;
  while (end != map.end() && HasPrefix(end->first, prefix)) {
    ++end;
  }
  map.erase(it, end);
}

Error ContentChanged(std::string_view path, uint64_t expected, uint64_t actual) {
  return {Code::kFailedPrecondition, std::string(path) + ": size changed since it was scanned (" +
                                         std::to_string(expected) + " -> " +
                                         std::to_string(actual) + " bytes)"};
}

Result<std::string> NormalizeOrRoot(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) {
    return Error(Code::kInvalidArgument, "path contains a NUL byte");
  }
  std::string out;
  out.reserve(path.size());
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    std::string_view part = path.substr(start, end - start);
    start = end + 1;
    if (part.empty() || part == ".") {
      continue;
    }
    if (part == "..") {
      return Error(Code::kInvalidArgument,
                   "path \"" + std::string(path) + R"(" has a ".." component)");
    }
    if (!out.empty()) {
      out.push_back('/');
    }
    out.append(part);
  }
  return out;
}

}  // namespace

Result<std::string> NormalizePath(std::string_view path) {
  ASSIGN_OR_RETURN(std::string out, NormalizeOrRoot(path));
  if (out.empty()) {
    return Error(Code::kInvalidArgument, "path \"" + std::string(path) + "\" names the root");
  }
  return out;
}

Result<void> Tree::Put(std::string_view path, Entry entry) {
  ASSIGN_OR_RETURN(std::string key, NormalizePath(path));
  // Check every ancestor before changing anything, so a failed Put leaves the tree unchanged.
  bool missing_parent = false;
  for (size_t slash = key.find('/'); slash != std::string::npos; slash = key.find('/', slash + 1)) {
    auto it = entries_.find(std::string_view(key).substr(0, slash));
    if (it == entries_.end()) {
      missing_parent = true;
    } else if (it->second.type != EntryType::kDirectory) {
      return Error(Code::kFailedPrecondition,
                   key + ": ancestor " + it->first + " is not a directory");
    }
  }
  for (size_t slash = key.find('/'); missing_parent && slash != std::string::npos;
       slash = key.find('/', slash + 1)) {
    std::string_view parent = std::string_view(key).substr(0, slash);
    if (entries_.find(parent) == entries_.end()) {
      Entry dir;
      dir.type = EntryType::kDirectory;
      dir.mode = 0755;
      entries_.emplace(std::string(parent), std::move(dir));
    }
  }
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    entries_.emplace(std::move(key), std::move(entry));
    return Ok();
  }
  if (it->second.type == EntryType::kDirectory && entry.type != EntryType::kDirectory) {
    EraseUnder(entries_, key);
  }
  it->second = std::move(entry);
  return Ok();
}

bool Tree::Remove(std::string_view path) {
  Result<std::string> key = NormalizePath(path);
  if (!key) {
    return false;
  }
  auto it = entries_.find(*key);
  if (it == entries_.end()) {
    return false;
  }
  entries_.erase(it);
  // A non-directory has no children; erasing the (empty) range is harmless either way.
  EraseUnder(entries_, *key);
  return true;
}

void Tree::RemoveChildren(std::string_view path) {
  Result<std::string> key = NormalizeOrRoot(path);
  if (!key) {
    return;
  }
  if (key->empty()) {
    entries_.clear();
    return;
  }
  EraseUnder(entries_, *key);
}

const Entry* Tree::Find(std::string_view path) const {
  if (IsNormalized(path)) {
    auto it = entries_.find(path);
    return it == entries_.end() ? nullptr : &it->second;
  }
  Result<std::string> key = NormalizePath(path);
  if (!key) {
    return nullptr;
  }
  auto it = entries_.find(*key);
  return it == entries_.end() ? nullptr : &it->second;
}

Entry* Tree::Find(std::string_view path) {
  return const_cast<Entry*>(std::as_const(*this).Find(path));
}

Result<void> Tree::Merge(const Tree& other, std::string_view prefix) {
  ENCLAVIA_CHECK(&other != this);  // Put would invalidate the iteration below
  ASSIGN_OR_RETURN(std::string base, NormalizeOrRoot(prefix));
  if (!base.empty()) {
    base.push_back('/');
  }
  // `other` iterates parents first, so each Put finds its ancestors already in place.
  for (const auto& [path, entry] : other.entries()) {
    Entry copy = entry;
    if (!copy.hardlink_to.empty()) {
      copy.hardlink_to = base + copy.hardlink_to;
    }
    RETURN_IF_ERROR(Put(base + path, std::move(copy)));
  }
  return Ok();
}

Result<void> Tree::Validate() const {
  for (const auto& item : entries_) {
    // Named references rather than a structured binding: clang 14 cannot capture bindings.
    const std::string& path = item.first;
    const Entry& entry = item.second;
    auto bad = [&path](std::string_view why) {
      return Error(Code::kInvalidArgument, path + ": " + std::string(why));
    };
    if ((entry.mode & ~07777U) != 0) {
      return bad("mode has bits outside 07777");
    }
    size_t slash = path.rfind('/');
    if (slash != std::string::npos) {
      const Entry* parent = Find(std::string_view(path).substr(0, slash));
      if (parent == nullptr || parent->type != EntryType::kDirectory) {
        return bad("parent is missing or not a directory");
      }
    }
    if (!entry.hardlink_to.empty()) {
      if (entry.type != EntryType::kFile) {
        return bad("only regular files can be hard links");
      }
      const Entry* target = Find(entry.hardlink_to);
      if (target == nullptr) {
        return bad("hard link to missing \"" + entry.hardlink_to + "\"");
      }
      if (target->type != EntryType::kFile || !target->hardlink_to.empty()) {
        return bad("hard link to \"" + entry.hardlink_to + "\", which is not a plain regular file");
      }
      if (entry.hardlink_to == path) {
        return bad("hard link to itself");
      }
      continue;
    }
    switch (entry.type) {
      case EntryType::kFile:
        if (const Bytes* bytes = std::get_if<Bytes>(&entry.content)) {
          if (bytes->size() != entry.size) {
            return bad("size " + std::to_string(entry.size) + " but " +
                       std::to_string(bytes->size()) + " bytes of content");
          }
        } else if (std::get<PathContent>(entry.content).path.empty()) {
          return bad("empty content path");
        }
        break;
      case EntryType::kSymlink:
        if (entry.link_target.empty() || entry.link_target.find('\0') != std::string::npos) {
          return bad("symlink target is empty or contains NUL");
        }
        break;
      case EntryType::kDirectory:
      case EntryType::kCharDevice:
      case EntryType::kBlockDevice:
      case EntryType::kFifo:
        break;
    }
  }
  return Ok();
}

namespace internal {

Result<ContentReader> ContentReader::Open(const Entry& entry, std::string_view name) {
  ContentReader reader;
  reader.size_ = entry.size;
  if (const Bytes* bytes = std::get_if<Bytes>(&entry.content)) {
    if (bytes->size() != entry.size) {
      return ContentChanged(name, entry.size, bytes->size());
    }
    reader.bytes_ = ByteSpan(*bytes);
    return reader;
  }
  const std::string& path = std::get<PathContent>(entry.content).path;
  ASSIGN_OR_RETURN(reader.fd_, sys::Open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK));
  struct stat st {};
  if (::fstat(reader.fd_.get(), &st) != 0) {
    return sys::IoError("fstat " + path, errno);
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(Code::kFailedPrecondition, path + ": no longer a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) != entry.size) {
    return ContentChanged(path, entry.size, static_cast<uint64_t>(st.st_size));
  }
  reader.path_ = &path;
  return reader;
}

Result<size_t> ContentReader::Read(std::span<uint8_t> out) {
  size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - done_));
  if (want == 0) {
    return size_t{0};
  }
  if (path_ == nullptr) {
    std::memcpy(out.data(), bytes_.data() + done_, want);
    done_ += want;
    return want;
  }
  size_t got = 0;
  while (got < want) {
    Result<size_t> n = sys::ReadSome(fd_.get(), out.subspan(got, want - got));
    if (!n) {
      return std::move(n).error().WithContext(*path_);
    }
    if (*n == 0) {
      return ContentChanged(*path_, size_, done_ + got);
    }
    got += *n;
  }
  done_ += got;
  return got;
}

}  // namespace internal

Result<void> StreamContent(const Entry& entry, ByteSink& sink) {
  if (entry.type != EntryType::kFile) {
    return Error(Code::kInvalidArgument, "StreamContent: not a regular file");
  }
  if (const Bytes* bytes = std::get_if<Bytes>(&entry.content)) {
    if (bytes->size() != entry.size) {
      return ContentChanged("in-memory content", entry.size, bytes->size());
    }
    return sink.Write(*bytes);
  }
  ASSIGN_OR_RETURN(internal::ContentReader reader,
                   internal::ContentReader::Open(entry, std::get<PathContent>(entry.content).path));
  Bytes buffer(static_cast<size_t>(std::min<uint64_t>(entry.size, internal::kChunkSize)));
  while (reader.remaining() > 0) {
    ASSIGN_OR_RETURN(size_t n, reader.Read(buffer));
    RETURN_IF_ERROR(sink.Write(ByteSpan(buffer).first(n)));
  }
  return Ok();
}

Result<FileSource> FileSource::Open(const std::string& path) {
  ASSIGN_OR_RETURN(sys::UniqueFd fd, sys::Open(path, O_RDONLY));
  ASSIGN_OR_RETURN(uint64_t size, sys::FileSize(fd.get()));
  return FileSource(path, size);
}

Result<void> FileSource::WriteTo(ByteSink& sink) const {
  Entry entry;
  entry.size = size_;
  entry.content = PathContent{path_};
  return StreamContent(entry, sink);
}

}  // namespace enclavia::image
