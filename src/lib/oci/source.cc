// SPDX-License-Identifier: Apache-2.0
#include "lib/oci/internal/source.h"

#include <fcntl.h>

#include <cerrno>
#include <map>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include <sys/stat.h>

#include "lib/base/file.h"
#include "lib/oci/internal/archive.h"
#include "lib/oci/internal/text.h"
#include "lib/sys/fd.h"

namespace enclavia::oci::internal {
namespace {

constexpr size_t kChunkSize = size_t{256} << 10;
// Symlink hops followed when resolving a member name; more is a loop.
constexpr int kMaxHops = 16;

Error NotFound(const std::string& name) { return {Code::kNotFound, Quote(name) + " not found"}; }

class DirSource final : public Source {
 public:
  explicit DirSource(std::string root) : root_(std::move(root)) {}

  [[nodiscard]] bool Exists(const std::string& name) const override {
    struct stat st {};
    return ::stat(Path(name).c_str(), &st) == 0 && S_ISREG(st.st_mode);
  }

  Result<Bytes> ReadSmall(const std::string& name, size_t max) const override {
    if (!Exists(name)) {
      return NotFound(name);
    }
    Result<Bytes> bytes = ReadFile(Path(name), max);
    if (!bytes) {
      return std::move(bytes).error().WithContext(Quote(name));
    }
    return bytes;
  }

  Result<std::unique_ptr<LayerInput>> Open(const std::string& name) const override {
    if (!Exists(name)) {
      return NotFound(name);
    }
    ASSIGN_OR_RETURN(sys::UniqueFd fd, sys::Open(Path(name), O_RDONLY | O_NOCTTY));
    return std::unique_ptr<LayerInput>(std::make_unique<FdInput>(std::move(fd), name));
  }

 private:
  [[nodiscard]] std::string Path(const std::string& name) const { return root_ + "/" + name; }
  std::string root_;
};

// ResolveRelative resolves a symlink `target` found at member `link` lexically, within the
// archive: nullopt for absolute targets and ones that climb out of it.
std::optional<std::string> ResolveRelative(const std::string& link, std::string_view target) {
  if (target.empty() || target.front() == '/') {
    return std::nullopt;
  }
  std::vector<std::string> parts;
  size_t slash = link.rfind('/');
  std::string_view rest =
      slash == std::string::npos ? std::string_view() : std::string_view(link).substr(0, slash);
  auto push_all = [&parts](std::string_view s) -> bool {
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find('/', start);
      if (end == std::string_view::npos) {
        end = s.size();
      }
      std::string_view part = s.substr(start, end - start);
      start = end + 1;
      if (part.empty() || part == ".") {
        continue;
      }
      if (part == "..") {
        if (parts.empty()) {
          return false;
        }
        parts.pop_back();
      } else {
        parts.emplace_back(part);
      }
    }
    return true;
  };
  if (!push_all(rest) || !push_all(target) || parts.empty()) {
    return std::nullopt;
  }
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) {
      out.push_back('/');
    }
    out += p;
  }
  return out;
}

// Member is an extracted regular member: in memory, or a temporary file.
struct Member {
  std::variant<Bytes, std::string> data;
  uint64_t size = 0;
};

class TarSource final : public Source {
 public:
  static Result<std::unique_ptr<TarSource>> Index(const std::string& path,
                                                  const std::string& temp_parent, Budget& budget,
                                                  size_t max_members);

  [[nodiscard]] bool Exists(const std::string& name) const override {
    return Find(name) != nullptr;
  }

  Result<Bytes> ReadSmall(const std::string& name, size_t max) const override {
    const Member* m = Find(name);
    if (m == nullptr) {
      return NotFound(name);
    }
    if (m->size > max) {
      return Error(Code::kLimitExceeded,
                   Quote(name) + ": larger than " + std::to_string(max) + " bytes");
    }
    if (const Bytes* bytes = std::get_if<Bytes>(&m->data)) {
      return *bytes;
    }
    Result<Bytes> bytes = ReadFile(std::get<std::string>(m->data), max);
    if (!bytes) {
      return std::move(bytes).error().WithContext(Quote(name));
    }
    return bytes;
  }

  Result<std::unique_ptr<LayerInput>> Open(const std::string& name) const override {
    const Member* m = Find(name);
    if (m == nullptr) {
      return NotFound(name);
    }
    if (const Bytes* bytes = std::get_if<Bytes>(&m->data)) {
      return std::unique_ptr<LayerInput>(std::make_unique<SpanInput>(*bytes));
    }
    ASSIGN_OR_RETURN(sys::UniqueFd fd,
                     sys::Open(std::get<std::string>(m->data), O_RDONLY | O_NOCTTY));
    return std::unique_ptr<LayerInput>(std::make_unique<FdInput>(std::move(fd), name));
  }

 private:
  TarSource() = default;

  [[nodiscard]] const Member* Find(const std::string& name) const {
    std::string current = name;
    for (int hop = 0; hop <= kMaxHops; ++hop) {
      auto m = members_.find(current);
      if (m != members_.end()) {
        return &m->second;
      }
      auto l = links_.find(current);
      if (l == links_.end()) {
        return nullptr;
      }
      current = l->second;
    }
    return nullptr;
  }

  std::optional<TempDir> temp_;
  std::map<std::string, Member> members_;
  std::map<std::string, std::string> links_;  // member name -> resolved name it points to
};

Result<std::unique_ptr<TarSource>> TarSource::Index(const std::string& path,
                                                    const std::string& temp_parent, Budget& budget,
                                                    size_t max_members) {
  std::unique_ptr<TarSource> source(new TarSource());
  if (!temp_parent.empty()) {
    ASSIGN_OR_RETURN(TempDir temp, TempDir::Create(temp_parent, ".oci-import-"));
    source->temp_.emplace(std::move(temp));
  }
  ASSIGN_OR_RETURN(ReadArchive a, NewDecompressingReader());
  if (archive_read_support_format_tar(a.get()) != ARCHIVE_OK) {
    return Error(Code::kInternal, "libarchive has no tar support");
  }
  if (archive_read_open_filename(a.get(), path.c_str(), kChunkSize) != ARCHIVE_OK) {
    return Error(Code::kMalformed, path + ": " + ArchiveMessage(a.get()));
  }
  std::vector<uint8_t> buffer(kChunkSize);
  size_t count = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) {
      break;
    }
    if (r < ARCHIVE_WARN) {
      return Error(Code::kMalformed, path + ": " + ArchiveMessage(a.get()));
    }
    if (++count > max_members) {
      return Error(Code::kLimitExceeded,
                   path + ": more than " + std::to_string(max_members) + " members");
    }
    const char* raw_name = archive_entry_pathname(entry);
    if (raw_name == nullptr) {
      return Error(Code::kMalformed, path + ": member without a name");
    }
    Result<std::string> name = image::NormalizePath(raw_name);
    if (!name) {
      if (std::string_view(raw_name).find("..") != std::string_view::npos) {
        return Error(Code::kMalformed,
                     path + ": member " + Quote(raw_name) + ": " + name.error().message());
      }
      continue;  // the root directory
    }
    if (const char* hardlink = archive_entry_hardlink(entry); hardlink != nullptr) {
      Result<std::string> target = image::NormalizePath(hardlink);
      if (!target) {
        return Error(Code::kMalformed, path + ": member " + Quote(*name) + ": bad hard link");
      }
      source->members_.erase(*name);
      source->links_[*name] = *target;
      continue;
    }
    const auto type = archive_entry_filetype(entry);
    if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(entry);
      std::optional<std::string> resolved = ResolveRelative(*name, target != nullptr ? target : "");
      source->members_.erase(*name);
      if (resolved.has_value()) {
        source->links_[*name] = *resolved;
      } else {
        source->links_.erase(*name);
      }
      continue;
    }
    if (type != AE_IFREG) {
      continue;
    }
    source->links_.erase(*name);
    Member member;
    std::optional<sys::UniqueFd> fd;
    if (source->temp_.has_value()) {
      std::string file = source->temp_->path() + "/" + std::to_string(count);
      ASSIGN_OR_RETURN(fd, sys::Open(file, O_WRONLY | O_CREAT | O_EXCL, 0600));
      member.data = std::move(file);
    }
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buffer.data(), buffer.size());
      if (n < 0) {
        return Error(Code::kMalformed,
                     path + ": member " + Quote(*name) + ": " + ArchiveMessage(a.get()));
      }
      if (n == 0) {
        break;
      }
      const auto got = static_cast<size_t>(n);
      RETURN_IF_ERROR(ChargeBytes(&budget.bytes_left, got, path + ": member " + Quote(*name)));
      ByteSpan chunk = ByteSpan(buffer).first(got);
      if (fd.has_value()) {
        RETURN_IF_ERROR(sys::WriteFull(fd->get(), chunk));
      } else {
        auto& bytes = std::get<Bytes>(member.data);
        bytes.insert(bytes.end(), chunk.begin(), chunk.end());
      }
      member.size += got;
    }
    source->members_[*name] = std::move(member);
  }
  return source;
}

}  // namespace

Result<std::unique_ptr<Source>> OpenDirSource(const std::string& root) {
  return std::unique_ptr<Source>(std::make_unique<DirSource>(root));
}

Result<std::unique_ptr<Source>> OpenTarSource(const std::string& path,
                                              const std::string& temp_parent, Budget& budget,
                                              size_t max_members) {
  ASSIGN_OR_RETURN(std::unique_ptr<TarSource> source,
                   TarSource::Index(path, temp_parent, budget, max_members));
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace enclavia::oci::internal
