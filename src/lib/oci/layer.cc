// SPDX-License-Identifier: Apache-2.0
// Layer application per the OCI image spec, layer.md ("Applying Changesets", "Whiteouts").
#include "lib/oci/internal/layer.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "lib/crypto/hash.h"
#include "lib/oci/import.h"
#include "lib/oci/internal/archive.h"
#include "lib/oci/internal/text.h"

namespace enclavia::oci {
namespace internal {
namespace {

// Buffers between the readers: libarchive's own decompression buffers are 64 KiB too.
constexpr size_t kChunkSize = size_t{64} << 10;
// Linux's PATH_MAX counts the terminating NUL; longer paths and link targets cannot exist there.
constexpr size_t kMaxPathLength = 4095;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueWhiteout = ".wh..wh..opq";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// IsRootName says whether a tar name denotes the root ("./", "/", "."): the root has no entry in
// a Tree, so its metadata is not kept.
bool IsRootName(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) { return c == '/' || c == '.'; }) &&
         name.find("..") == std::string_view::npos;
}

std::string Parent(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

std::string Join(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

// Buffer is a chunk buffer, deliberately not value-initialized: zeroing it would cost more than
// parsing a small layer.
using Buffer = std::array<uint8_t, kChunkSize>;

// Pipeline is the state shared by the two libarchive readers of one layer: the outer one
// decompresses the stored bytes (format "raw"), the inner one parses the tar stream it yields.
// Both pull through it, so it hashes and counts every byte on the way.
class Pipeline {
 public:
  Pipeline(LayerInput& input, Budget& budget) : input_(input), budget_(budget) {}

  void SetOuter(archive* outer) { outer_ = outer; }

  // PullStored reads stored bytes into StoredData(), hashing them.
  Result<size_t> PullStored() {
    ASSIGN_OR_RETURN(size_t n, input_.Read(*stored_buffer_));
    blob_hasher_.Update(ByteSpan(*stored_buffer_).first(n));
    blob_size_ += n;
    return n;
  }

  // DrainStored hashes the rest of the stored bytes.
  Result<void> DrainStored() {
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, PullStored());
      if (n == 0) {
        return Ok();
      }
    }
  }

  // PullTar reads uncompressed bytes from the outer reader into TarData(), hashing and
  // charging them.
  Result<size_t> PullTar() {
    la_ssize_t n = archive_read_data(outer_, tar_buffer_->data(), tar_buffer_->size());
    if (n < 0) {
      if (error_.has_value()) {
        return *error_;
      }
      return Error(Code::kMalformed, "layer: cannot decompress: " + ArchiveMessage(outer_));
    }
    const auto got = static_cast<size_t>(n);
    RETURN_IF_ERROR(ChargeBytes(&budget_.bytes_left, got, "layer: uncompressed size"));
    diff_hasher_.Update(ByteSpan(*tar_buffer_).first(got));
    diff_size_ += got;
    return got;
  }

  [[nodiscard]] const uint8_t* StoredData() const { return stored_buffer_->data(); }
  [[nodiscard]] const uint8_t* TarData() const { return tar_buffer_->data(); }

  // SetError records why a callback failed, for ReaderError.
  void SetError(Error error) { error_ = std::move(error); }
  [[nodiscard]] const std::optional<Error>& LastError() const { return error_; }

  [[nodiscard]] uint64_t BlobSize() const { return blob_size_; }
  [[nodiscard]] uint64_t DiffSize() const { return diff_size_; }
  Bytes FinishBlobDigest() { return blob_hasher_.Finish(); }
  Bytes FinishDiffDigest() { return diff_hasher_.Finish(); }

 private:
  LayerInput& input_;
  Budget& budget_;
  archive* outer_ = nullptr;
  crypto::Hasher blob_hasher_{crypto::HashAlgorithm::kSha256};
  crypto::Hasher diff_hasher_{crypto::HashAlgorithm::kSha256};
  uint64_t blob_size_ = 0;
  uint64_t diff_size_ = 0;
  std::unique_ptr<Buffer> stored_buffer_ = std::make_unique_for_overwrite<Buffer>();
  std::unique_ptr<Buffer> tar_buffer_ = std::make_unique_for_overwrite<Buffer>();
  std::optional<Error> error_;
};

la_ssize_t OuterRead(archive* /*a*/, void* context, const void** buffer) {
  auto* p = static_cast<Pipeline*>(context);
  Result<size_t> n = p->PullStored();
  if (!n) {
    p->SetError(std::move(n).error());
    return ARCHIVE_FATAL;
  }
  *buffer = p->StoredData();
  return static_cast<la_ssize_t>(*n);
}

la_ssize_t InnerRead(archive* /*a*/, void* context, const void** buffer) {
  auto* p = static_cast<Pipeline*>(context);
  Result<size_t> n = p->PullTar();
  if (!n) {
    p->SetError(std::move(n).error());
    return ARCHIVE_FATAL;
  }
  *buffer = p->TarData();
  return static_cast<la_ssize_t>(*n);
}

// ReaderError prefers the error a callback recorded (an I/O failure or a limit) over libarchive's
// own message, which would only say that the callback failed.
Error ReaderError(Pipeline& p, archive* a, std::string_view context) {
  if (p.LastError().has_value()) {
    return p.LastError()->WithContext(context);
  }
  return {Code::kMalformed, std::string(context) + ": " + ArchiveMessage(a)};
}

Result<uint32_t> IdField(int64_t value, const std::string& path, std::string_view what) {
  if (value < 0 || value > std::numeric_limits<uint32_t>::max()) {
    return Error(Code::kMalformed, "layer entry " + Quote(path) + ": " + std::string(what) + " " +
                                       std::to_string(value) + " out of range");
  }
  return static_cast<uint32_t>(value);
}

Result<std::string> EntryPath(std::string_view name, std::string_view what) {
  Result<std::string> path = image::NormalizePath(name);
  if (!path) {
    return Error(Code::kMalformed, "layer entry " + Quote(name) + ": bad " + std::string(what) +
                                       ": " + path.error().message());
  }
  if (path->size() > kMaxPathLength) {
    return Error(Code::kLimitExceeded, "layer entry " + Quote(name) + ": " + std::string(what) +
                                           " longer than " + std::to_string(kMaxPathLength) +
                                           " bytes");
  }
  return path;
}

// ReadEntries parses the tar stream of `inner`, adding each entry to `out`.
Result<void> ReadEntries(Pipeline& p, archive* inner, Staging& staging, Budget& budget,
                         const LayerRules& rules, ParsedLayer& out) {
  size_t count = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(inner, &entry);
    if (r == ARCHIVE_EOF) {
      return Ok();
    }
    if (r < ARCHIVE_WARN) {
      return ReaderError(p, inner,
                         "layer: bad tar header after " + std::to_string(count) + " entries");
    }
    if (++count > rules.max_entries) {
      return Error(Code::kLimitExceeded,
                   "layer: more than " + std::to_string(rules.max_entries) + " entries");
    }
    const char* raw_name = archive_entry_pathname(entry);
    if (raw_name == nullptr || raw_name[0] == '\0') {
      return Error(Code::kMalformed, "layer: entry " + std::to_string(count) + " has no name");
    }
    const std::string_view name(raw_name);
    if (IsRootName(name)) {
      continue;
    }
    ASSIGN_OR_RETURN(std::string path, EntryPath(name, "path"));
    const std::string dir = Parent(path);
    const std::string_view base = std::string_view(path).substr(dir.empty() ? 0 : dir.size() + 1);

    // Whiteouts (layer.md "Whiteouts"): the entry is a marker, never content.
    if (StartsWith(base, kWhiteoutPrefix)) {
      if (base == kOpaqueWhiteout) {
        out.opaque_dirs.push_back(dir);
      } else if (StartsWith(base, kWhiteoutMetaPrefix)) {
        // Other ".wh..wh." names are aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): ignored, as
        // containerd and docker do.
      } else {
        const std::string_view target = base.substr(kWhiteoutPrefix.size());
        if (target.empty() || target == "." || target == "..") {
          return Error(Code::kMalformed, "layer entry " + Quote(name) + ": bad whiteout");
        }
        out.whiteouts.push_back(Join(dir, target));
      }
      continue;
    }

    PendingEntry pending;
    pending.path = path;
    image::Entry& e = pending.entry;
    e.mode = static_cast<uint32_t>(archive_entry_mode(entry)) & 07777U;
    ASSIGN_OR_RETURN(e.uid, IdField(archive_entry_uid(entry), path, "uid"));
    ASSIGN_OR_RETURN(e.gid, IdField(archive_entry_gid(entry), path, "gid"));
    if (archive_entry_xattr_reset(entry) > 0) {
      // libarchive may report one attribute twice (LIBARCHIVE.xattr and SCHILY.xattr records).
      std::set<std::string> names;
      const char* xattr_name = nullptr;
      const void* value = nullptr;
      size_t value_size = 0;
      while (archive_entry_xattr_next(entry, &xattr_name, &value, &value_size) == ARCHIVE_OK) {
        names.insert(Quote(xattr_name != nullptr ? xattr_name : ""));
      }
      std::string list;
      for (const std::string& n : names) {
        list += (list.empty() ? "" : ", ") + n;
      }
      out.warnings.push_back(Quote(path) + ": extended attributes dropped: " + list);
    }

    if (const char* link = archive_entry_hardlink(entry); link != nullptr) {
      // A hard link's own header metadata is ignored: it shares the target's inode.
      ASSIGN_OR_RETURN(pending.hardlink_target, EntryPath(link, "hard link target"));
      e.type = image::EntryType::kFile;
      out.entries.push_back(std::move(pending));
      continue;
    }

    switch (archive_entry_filetype(entry)) {
      case AE_IFREG: {
        e.type = image::EntryType::kFile;
        PullFn pull = [&](std::span<uint8_t> buf) -> Result<size_t> {
          la_ssize_t n = archive_read_data(inner, buf.data(), buf.size());
          if (n < 0) {
            return ReaderError(p, inner, "layer entry " + Quote(path) + ": data");
          }
          return static_cast<size_t>(n);
        };
        const uint64_t size_hint =
            archive_entry_size_is_set(entry) != 0 && archive_entry_size(entry) > 0
                ? static_cast<uint64_t>(archive_entry_size(entry))
                : 0;
        ASSIGN_OR_RETURN(StagedFile staged,
                         staging.Stage(pull, size_hint, budget, "layer entry " + Quote(path)));
        if (archive_entry_size_is_set(entry) != 0 &&
            static_cast<uint64_t>(archive_entry_size(entry)) != staged.size) {
          return Error(Code::kMalformed, "layer entry " + Quote(path) + ": size mismatch");
        }
        e.size = staged.size;
        e.content = std::move(staged.content);
        break;
      }
      case AE_IFDIR:
        e.type = image::EntryType::kDirectory;
        break;
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(entry);
        if (target == nullptr || target[0] == '\0') {
          return Error(Code::kMalformed, "layer entry " + Quote(path) + ": empty symlink target");
        }
        e.type = image::EntryType::kSymlink;
        e.link_target = target;
        if (e.link_target.size() > kMaxPathLength) {
          return Error(Code::kLimitExceeded,
                       "layer entry " + Quote(path) + ": symlink target too long");
        }
        break;
      }
      case AE_IFIFO:
        e.type = image::EntryType::kFifo;
        break;
      case AE_IFCHR:
      case AE_IFBLK: {
        const bool is_char = archive_entry_filetype(entry) == AE_IFCHR;
        const auto major = static_cast<uint64_t>(archive_entry_rdevmajor(entry));
        const auto minor = static_cast<uint64_t>(archive_entry_rdevminor(entry));
        const std::string desc = std::string(is_char ? "character" : "block") + " device " +
                                 std::to_string(major) + ":" + std::to_string(minor);
        if (!rules.devices.contains(path)) {
          out.warnings.push_back(Quote(path) + ": " + desc + " dropped (not listed in devices)");
          continue;
        }
        if (major > std::numeric_limits<uint32_t>::max() ||
            minor > std::numeric_limits<uint32_t>::max()) {
          return Error(Code::kMalformed, "layer entry " + Quote(path) + ": bad device number");
        }
        e.type = is_char ? image::EntryType::kCharDevice : image::EntryType::kBlockDevice;
        e.rdev_major = static_cast<uint32_t>(major);
        e.rdev_minor = static_cast<uint32_t>(minor);
        break;
      }
      case AE_IFSOCK:
        out.warnings.push_back(Quote(path) + ": socket dropped");
        continue;
      default:
        return Error(Code::kUnsupported, "layer entry " + Quote(path) + ": unsupported type");
    }
    out.entries.push_back(std::move(pending));
  }
}

// LinkGroups tracks hard-link groups (a leader, a plain regular file, and the members whose
// hardlink_to names it) so that removing or replacing a leader keeps its members valid: the
// first remaining member in path order becomes the leader (it already holds the content and
// metadata, which members copy), and the others are re-pointed to it. This is what a real file
// system does: the inode lives on under its other names.
class LinkGroups {
 public:
  explicit LinkGroups(const image::Tree& tree) {
    for (const auto& [path, entry] : tree.entries()) {
      if (!entry.hardlink_to.empty()) {
        members_[entry.hardlink_to].insert(path);
      }
    }
  }

  void Add(const std::string& leader, const std::string& member) {
    members_[leader].insert(member);
  }

  // BeforeRemoving must be called before `tree` drops `path` (if `self`) and the entries under
  // it (if `children`; `path` "" is the root).
  void BeforeRemoving(image::Tree& tree, const std::string& path, bool self, bool children) {
    if (members_.empty()) {
      return;
    }
    std::vector<std::string> leaders;
    auto visit = [&](const std::string& p, const image::Entry& e) {
      if (!e.hardlink_to.empty()) {
        auto it = members_.find(e.hardlink_to);
        if (it != members_.end()) {
          it->second.erase(p);
        }
      } else if (members_.contains(p)) {
        leaders.push_back(p);
      }
    };
    if (self) {
      if (const image::Entry* e = tree.Find(path)) {
        visit(path, *e);
      }
    }
    if (children) {
      const std::string prefix = path.empty() ? std::string() : path + "/";
      const auto& map = tree.entries();
      for (auto it = map.lower_bound(prefix); it != map.end() && StartsWith(it->first, prefix);
           ++it) {
        visit(it->first, it->second);
      }
    }
    // Members under `path` were erased above, so every remaining member survives the removal.
    for (const std::string& leader : leaders) {
      auto node = members_.extract(leader);
      std::set<std::string>& rest = node.mapped();
      if (rest.empty()) {
        continue;
      }
      std::string next = *rest.begin();
      rest.erase(rest.begin());
      tree.Find(next)->hardlink_to.clear();
      for (const std::string& m : rest) {
        tree.Find(m)->hardlink_to = next;
      }
      if (!rest.empty()) {
        members_[next] = std::move(rest);
      }
    }
  }

 private:
  std::map<std::string, std::set<std::string>> members_;
};

// CheckAncestors fails if an ancestor of `path` exists and is not a directory. Entries are never
// written through a symlink (the tree is not a file system that could resolve it safely).
Result<void> CheckAncestors(const image::Tree& tree, const std::string& path) {
  for (size_t slash = path.find('/'); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string ancestor = path.substr(0, slash);
    const image::Entry* e = tree.Find(ancestor);
    if (e == nullptr || e->type == image::EntryType::kDirectory) {
      continue;
    }
    if (e->type == image::EntryType::kSymlink) {
      return Error(Code::kUnsupported, "layer entry " + Quote(path) + ": parent " +
                                           Quote(ancestor) +
                                           " is a symlink; entries are not written through "
                                           "symlinks");
    }
    return Error(Code::kMalformed, "layer entry " + Quote(path) + ": parent " + Quote(ancestor) +
                                       " is not a directory");
  }
  return Ok();
}

Result<void> CommitEntry(PendingEntry& pending, image::Tree& tree, LinkGroups& groups,
                         Budget& budget, bool in_memory) {
  const std::string& path = pending.path;
  const bool is_link = !pending.hardlink_target.empty();
  if (is_link) {
    const std::string& target = pending.hardlink_target;
    if (target == path || StartsWith(target, path + "/")) {
      return Error(Code::kMalformed, "layer entry " + Quote(path) + ": hard link to " +
                                         Quote(target) + ", which it replaces");
    }
    const image::Entry* t = tree.Find(target);
    if (t == nullptr) {
      return Error(Code::kMalformed,
                   "layer entry " + Quote(path) + ": hard link to missing " + Quote(target));
    }
    if (t->type != image::EntryType::kFile) {
      return Error(Code::kMalformed, "layer entry " + Quote(path) + ": hard link to " +
                                         Quote(target) + ", which is not a regular file");
    }
  }
  RETURN_IF_ERROR(CheckAncestors(tree, path));
  if (const image::Entry* existing = tree.Find(path)) {
    const bool old_dir = existing->type == image::EntryType::kDirectory;
    const bool new_dir = pending.entry.type == image::EntryType::kDirectory;
    if (!(old_dir && new_dir)) {
      groups.BeforeRemoving(tree, path, /*self=*/true, /*children=*/old_dir);
    }
  }
  if (!is_link) {
    return tree.Put(path, std::move(pending.entry));
  }
  // The target may have become a leader (or been re-pointed) above, so resolve it now.
  const image::Entry* t = tree.Find(pending.hardlink_target);
  const std::string leader = t->hardlink_to.empty() ? pending.hardlink_target : t->hardlink_to;
  const image::Entry* l = tree.Find(leader);
  image::Entry e;
  e.type = image::EntryType::kFile;
  e.mode = l->mode;
  e.uid = l->uid;
  e.gid = l->gid;
  e.size = l->size;
  e.content = l->content;
  e.hardlink_to = leader;
  if (in_memory) {
    RETURN_IF_ERROR(ChargeBytes(&budget.memory_left, e.size, "layer entry " + Quote(path)));
  }
  RETURN_IF_ERROR(tree.Put(path, std::move(e)));
  groups.Add(leader, path);
  return Ok();
}

}  // namespace

Result<size_t> SpanInput::Read(std::span<uint8_t> out) {
  const size_t n = std::min(out.size(), data_.size());
  if (n > 0) {
    std::memcpy(out.data(), data_.data(), n);
  }
  data_ = data_.subspan(n);
  return n;
}

Result<size_t> FdInput::Read(std::span<uint8_t> out) {
  Result<size_t> n = sys::ReadSome(fd_.get(), out);
  if (!n) {
    return std::move(n).error().WithContext(name_);
  }
  return n;
}

Result<LayerRules> MakeLayerRules(const ImportOptions& options) {
  LayerRules rules;
  rules.max_entries = options.max_entries;
  for (const std::string& device : options.devices) {
    Result<std::string> path = image::NormalizePath(device);
    if (!path) {
      return std::move(path).error().WithContext("ImportOptions.devices");
    }
    rules.devices.insert(*std::move(path));
  }
  return rules;
}

namespace {

Result<ParsedLayer> ReadLayerWith(Pipeline& p, Staging& staging, Budget& budget,
                                  const LayerRules& rules) {
  ParsedLayer out;

  ASSIGN_OR_RETURN(ReadArchive outer, NewDecompressingReader());
  p.SetOuter(outer.get());
  if (archive_read_support_format_raw(outer.get()) != ARCHIVE_OK ||
      archive_read_open(outer.get(), &p, nullptr, OuterRead, nullptr) != ARCHIVE_OK) {
    return ReaderError(p, outer.get(), "layer: cannot open");
  }
  archive_entry* raw = nullptr;
  int r = archive_read_next_header(outer.get(), &raw);
  if (r == ARCHIVE_EOF) {
    return Error(Code::kMalformed, "layer: empty");
  }
  if (r < ARCHIVE_WARN) {
    return ReaderError(p, outer.get(), "layer: cannot decompress");
  }
  switch (archive_filter_code(outer.get(), 0)) {
    case ARCHIVE_FILTER_GZIP:
      out.compression = Compression::kGzip;
      break;
    case ARCHIVE_FILTER_ZSTD:
      out.compression = Compression::kZstd;
      break;
    default:
      out.compression = Compression::kNone;
      break;
  }

  {
    ReadArchive inner(archive_read_new());
    if (inner == nullptr) {
      return Error(Code::kInternal, "archive_read_new failed");
    }
    if (archive_read_support_format_tar(inner.get()) != ARCHIVE_OK ||
        archive_read_open(inner.get(), &p, nullptr, InnerRead, nullptr) != ARCHIVE_OK) {
      return ReaderError(p, inner.get(), "layer: not a tar stream");
    }
    RETURN_IF_ERROR(ReadEntries(p, inner.get(), staging, budget, rules, out));
  }
  // The diff_id covers the whole uncompressed stream and the digest the whole blob, including
  // what follows the tar end marker (record padding) and the compressed trailer.
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, p.PullTar());
    if (n == 0) {
      break;
    }
  }
  outer.reset();
  RETURN_IF_ERROR(p.DrainStored());
  out.blob_sha256 = p.FinishBlobDigest();
  out.blob_size = p.BlobSize();
  out.diff_sha256 = p.FinishDiffDigest();
  out.diff_size = p.DiffSize();
  return out;
}

}  // namespace

Result<ParsedLayer> ReadLayer(LayerInput& input, Staging& staging, Budget& budget,
                              const LayerRules& rules, Bytes* blob_sha256_on_error) {
  Pipeline p(input, budget);
  Result<ParsedLayer> out = ReadLayerWith(p, staging, budget, rules);
  if (!out && blob_sha256_on_error != nullptr) {
    // A blob that does not match its digest should be reported as such, not by whatever its
    // corrupt bytes made the tar reader say: hash the rest (no decompression, so this is bounded
    // by the stored size).
    blob_sha256_on_error->clear();
    if (p.DrainStored()) {
      *blob_sha256_on_error = p.FinishBlobDigest();
    }
  }
  return out;
}

Result<void> CommitLayer(ParsedLayer& layer, image::Tree& tree, Budget& budget,
                         const LayerRules& rules, bool in_memory) {
  LinkGroups groups(tree);
  // Whiteouts apply to lower layers only (layer.md), so all of them go before this layer's own
  // entries, wherever they appear in the tar stream.
  for (const std::string& path : layer.whiteouts) {
    groups.BeforeRemoving(tree, path, /*self=*/true, /*children=*/true);
    tree.Remove(path);
  }
  for (const std::string& dir : layer.opaque_dirs) {
    if (!dir.empty()) {
      const image::Entry* e = tree.Find(dir);
      if (e == nullptr || e->type != image::EntryType::kDirectory) {
        continue;
      }
    }
    groups.BeforeRemoving(tree, dir, /*self=*/false, /*children=*/true);
    tree.RemoveChildren(dir);
  }
  for (PendingEntry& pending : layer.entries) {
    RETURN_IF_ERROR(CommitEntry(pending, tree, groups, budget, in_memory));
    if (tree.size() > rules.max_entries) {
      return Error(Code::kLimitExceeded,
                   "image has more than " + std::to_string(rules.max_entries) + " entries");
    }
  }
  return Ok();
}

Result<ReadArchive> NewDecompressingReader() {
  ReadArchive a(archive_read_new());
  if (a == nullptr) {
    return Error(Code::kInternal, "archive_read_new failed");
  }
  if (archive_read_support_filter_gzip(a.get()) != ARCHIVE_OK) {
    return Error(Code::kInternal, "libarchive has no built-in gzip support");
  }
  // ARCHIVE_WARN would mean "via an external zstd program", which we do not allow.
  if (archive_read_support_filter_zstd(a.get()) != ARCHIVE_OK) {
    return Error(Code::kInternal, "libarchive has no built-in zstd support");
  }
  return a;
}

}  // namespace internal

Result<void> ApplyLayer(ByteSpan layer_bytes, image::Tree& tree, const ImportOptions& options,
                        std::vector<std::string>* warnings) {
  ASSIGN_OR_RETURN(internal::LayerRules rules, internal::MakeLayerRules(options));
  ASSIGN_OR_RETURN(internal::Staging staging, internal::Staging::Create(options.staging_dir));
  internal::Budget budget{options.max_total_bytes, options.max_total_bytes};
  internal::SpanInput input(layer_bytes);
  ASSIGN_OR_RETURN(internal::ParsedLayer layer, internal::ReadLayer(input, staging, budget, rules));
  RETURN_IF_ERROR(internal::CommitLayer(layer, tree, budget, rules, staging.in_memory()));
  if (warnings != nullptr) {
    warnings->insert(warnings->end(), layer.warnings.begin(), layer.warnings.end());
  }
  return Ok();
}

}  // namespace enclavia::oci
