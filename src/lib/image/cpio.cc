// SPDX-License-Identifier: Apache-2.0
#include "lib/image/cpio.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <tuple>
#include <utility>

#include "lib/base/encoding.h"
#include "lib/crypto/hash.h"
#include "lib/image/internal/content.h"

namespace enclavia::image {
namespace {

// The newc header (cpio(5), "New ASCII Format"): a 6-byte magic and 13 fields of 8 hex digits.
constexpr size_t kHeaderSize = 110;
constexpr size_t kFieldCount = 13;
constexpr std::string_view kMagicNewc = "070701";
constexpr std::string_view kMagicCrc = "070702";
constexpr std::string_view kTrailer = "TRAILER!!!";
// The kernel's initramfs unpacker refuses names of PATH_MAX (4096) bytes or more including the
// NUL, and symlink(2) targets must be shorter than PATH_MAX too (init/initramfs.c do_header).
constexpr size_t kMaxWritablePath = 4095;
constexpr uint64_t kMaxFileSize = 0xffffffff;

// <sys/stat.h> type bits, spelled out: the archive format fixes them, not the build host.
constexpr uint32_t kTypeMask = 0170000;
constexpr uint32_t kTypeFifo = 0010000;
constexpr uint32_t kTypeChar = 0020000;
constexpr uint32_t kTypeDir = 0040000;
constexpr uint32_t kTypeBlock = 0060000;
constexpr uint32_t kTypeFile = 0100000;
constexpr uint32_t kTypeSymlink = 0120000;

enum Field : size_t {
  kIno,
  kMode,
  kUid,
  kGid,
  kNlink,
  kMtime,
  kFileSize,
  kDevMajor,
  kDevMinor,
  kRdevMajor,
  kRdevMinor,
  kNameSize,
  kCheck,
};
constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    "ino",      "mode",     "uid",       "gid",       "nlink",    "mtime", "filesize",
    "devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check"};

uint32_t TypeBits(EntryType type) {
  switch (type) {
    case EntryType::kFile:
      return kTypeFile;
    case EntryType::kDirectory:
      return kTypeDir;
    case EntryType::kSymlink:
      return kTypeSymlink;
    case EntryType::kCharDevice:
      return kTypeChar;
    case EntryType::kBlockDevice:
      return kTypeBlock;
    case EntryType::kFifo:
      return kTypeFifo;
  }
  ENCLAVIA_CHECK(false);
  return 0;
}

std::optional<EntryType> TypeFromBits(uint32_t bits) {
  switch (bits) {
    case kTypeFile:
      return EntryType::kFile;
    case kTypeDir:
      return EntryType::kDirectory;
    case kTypeSymlink:
      return EntryType::kSymlink;
    case kTypeChar:
      return EntryType::kCharDevice;
    case kTypeBlock:
      return EntryType::kBlockDevice;
    case kTypeFifo:
      return EntryType::kFifo;
    default:
      return std::nullopt;
  }
}

constexpr uint64_t Pad4(uint64_t n) { return (n + 3) & ~uint64_t{3}; }

// ---------------------------------------------------------------------------------------------
// Writer

// Group is a hard-link group, keyed by its leader's path (the entry the others' hardlink_to
// names). Its data goes with the last name in archive order (GNU cpio's newc convention).
struct Group {
  const Entry* leader = nullptr;
  std::string_view leader_path;
  std::string_view last;  // last name of the group in bytewise order
  uint32_t names = 0;
  uint32_t ino = 0;  // assigned when the first name is written
  Bytes digest;
};

// Plan is what the writer derives from the tree before writing: the hard-link groups and the
// archive size. It points into the tree.
struct Plan {
  std::map<std::string_view, Group, std::less<>> groups;
  uint64_t size = 0;
};

Error TooLong(std::string_view path, std::string_view what) {
  return {Code::kLimitExceeded, std::string(path) + ": " + std::string(what)};
}

// GroupOf returns the hard-link group `path`/`entry` belongs to, or null.
Group* GroupOf(Plan& plan, std::string_view path, const Entry& entry) {
  if (plan.groups.empty() || entry.type != EntryType::kFile) {
    return nullptr;
  }
  auto it =
      plan.groups.find(entry.hardlink_to.empty() ? path : std::string_view(entry.hardlink_to));
  return it == plan.groups.end() ? nullptr : &it->second;
}

// DataSize is the number of data bytes stored for the entry (before padding).
uint64_t DataSize(const Entry& entry, std::string_view path, const Group* group) {
  switch (entry.type) {
    case EntryType::kFile:
      if (group != nullptr) {
        return path == group->last ? group->leader->size : 0;
      }
      return entry.size;
    case EntryType::kSymlink:
      return entry.link_target.size();
    case EntryType::kDirectory:
    case EntryType::kCharDevice:
    case EntryType::kBlockDevice:
    case EntryType::kFifo:
      return 0;
  }
  return 0;
}

Result<Plan> MakePlan(const Tree& tree) {
  RETURN_IF_ERROR(tree.Validate());
  Plan plan;
  for (const auto& [path, entry] : tree.entries()) {
    if (!entry.hardlink_to.empty()) {
      Group& group = plan.groups[entry.hardlink_to];
      ++group.names;
      group.last = path;  // entries() ascends, so the latest seen is the largest
    }
  }
  for (auto& [leader_path, group] : plan.groups) {
    auto it = tree.entries().find(leader_path);
    ENCLAVIA_CHECK(it != tree.entries().end());  // Validate checked it
    group.leader = &it->second;
    group.leader_path = it->first;
    ++group.names;
    group.last = std::max(group.last, std::string_view(it->first));
    if (group.leader->size > kMaxFileSize) {
      return TooLong(it->first, "file of 4 GiB or more (newc sizes are 32-bit)");
    }
  }
  uint64_t size = 0;
  for (const auto& [path, entry] : tree.entries()) {
    if (path.size() > kMaxWritablePath) {
      return TooLong(path.substr(0, 64) + "...", "path longer than 4095 bytes");
    }
    if (entry.type == EntryType::kSymlink && entry.link_target.size() > kMaxWritablePath) {
      return TooLong(path, "symlink target longer than 4095 bytes");
    }
    if (entry.type == EntryType::kFile && entry.hardlink_to.empty() && entry.size > kMaxFileSize) {
      return TooLong(path, "file of 4 GiB or more (newc sizes are 32-bit)");
    }
    const Group* group = GroupOf(plan, path, entry);
    size += Pad4(kHeaderSize + path.size() + 1) + Pad4(DataSize(entry, path, group));
  }
  size += Pad4(kHeaderSize + kTrailer.size() + 1);
  plan.size = size;
  return plan;
}

// ChunkWriter collects headers and data in one buffer and hands the sink full chunks.
class ChunkWriter {
 public:
  explicit ChunkWriter(ByteSink& sink) : sink_(sink), buffer_(internal::kChunkSize) {}

  // Reserve returns the next `n` bytes of the buffer (n <= kChunkSize), flushing first if they
  // do not fit. The caller fills all of them.
  Result<std::span<uint8_t>> Reserve(size_t n) {
    if (buffer_.size() - fill_ < n) {
      RETURN_IF_ERROR(Flush());
    }
    std::span<uint8_t> out = std::span<uint8_t>(buffer_).subspan(fill_, n);
    fill_ += n;
    return out;
  }

  // Space returns the free part of the buffer, flushing first if there is none.
  Result<std::span<uint8_t>> Space() {
    if (fill_ == buffer_.size()) {
      RETURN_IF_ERROR(Flush());
    }
    return std::span<uint8_t>(buffer_).subspan(fill_);
  }
  void Commit(size_t n) { fill_ += n; }

  Result<void> Flush() {
    if (fill_ == 0) {
      return Ok();
    }
    RETURN_IF_ERROR(sink_.Write(ByteSpan(buffer_).first(fill_)));
    fill_ = 0;
    return Ok();
  }

 private:
  ByteSink& sink_;
  Bytes buffer_;
  size_t fill_ = 0;
};

void PutHex8(uint8_t* out, uint32_t value) {
  static constexpr std::string_view kDigits = "0123456789ABCDEF";
  for (size_t i = 8; i-- > 0;) {
    out[i] = static_cast<uint8_t>(kDigits[value & 0xf]);
    value >>= 4;
  }
}

Result<void> WriteHeader(ChunkWriter& out, std::string_view name,
                         const std::array<uint32_t, kFieldCount>& fields) {
  const auto total = static_cast<size_t>(Pad4(kHeaderSize + name.size() + 1));
  ASSIGN_OR_RETURN(std::span<uint8_t> header, out.Reserve(total));
  std::memcpy(header.data(), kMagicNewc.data(), kMagicNewc.size());
  for (size_t i = 0; i < kFieldCount; ++i) {
    PutHex8(header.data() + kMagicNewc.size() + 8 * i, fields[i]);
  }
  std::memcpy(header.data() + kHeaderSize, name.data(), name.size());
  std::memset(header.data() + kHeaderSize + name.size(), 0, total - kHeaderSize - name.size());
  return Ok();
}

Result<void> WritePadding(ChunkWriter& out, uint64_t data_size) {
  const auto pad = static_cast<size_t>(Pad4(data_size) - data_size);
  if (pad > 0) {
    ASSIGN_OR_RETURN(std::span<uint8_t> zeros, out.Reserve(pad));
    std::memset(zeros.data(), 0, zeros.size());
  }
  return Ok();
}

// WriteFileData streams `content`'s bytes into the chunk buffer, hashing them if asked.
Result<Bytes> WriteFileData(ChunkWriter& out, const Entry& content, std::string_view path,
                            bool want_digest) {
  std::optional<crypto::Hasher> hasher;
  if (want_digest) {
    hasher.emplace(crypto::HashAlgorithm::kSha256);
  }
  // Opened even when empty: Open is where a file that changed since the scan is caught.
  ASSIGN_OR_RETURN(internal::ContentReader reader, internal::ContentReader::Open(content, path));
  while (reader.remaining() > 0) {
    ASSIGN_OR_RETURN(std::span<uint8_t> space, out.Space());
    ASSIGN_OR_RETURN(size_t n, reader.Read(space));
    if (hasher) {
      hasher->Update(space.first(n));
    }
    out.Commit(n);
  }
  RETURN_IF_ERROR(WritePadding(out, content.size));
  return hasher ? hasher->Finish() : Bytes();
}

}  // namespace

std::string_view EntryTypeName(EntryType type) {
  switch (type) {
    case EntryType::kFile:
      return "file";
    case EntryType::kDirectory:
      return "directory";
    case EntryType::kSymlink:
      return "symlink";
    case EntryType::kCharDevice:
      return "char device";
    case EntryType::kBlockDevice:
      return "block device";
    case EntryType::kFifo:
      return "fifo";
  }
  return "?";
}

Result<uint64_t> CpioSize(const Tree& tree) {
  ASSIGN_OR_RETURN(Plan plan, MakePlan(tree));
  return plan.size;
}

Result<void> WriteCpio(const Tree& tree, const CpioOptions& options, ByteSink& sink,
                       std::map<std::string, Bytes>* file_digests) {
  if (options.mtime > 0xffffffff) {
    return Error(Code::kInvalidArgument, "cpio mtime " + std::to_string(options.mtime) +
                                             " does not fit newc's 32-bit field");
  }
  ASSIGN_OR_RETURN(Plan plan, MakePlan(tree));
  const auto mtime = static_cast<uint32_t>(options.mtime);
  ChunkWriter out(sink);
  uint32_t next_ino = 1;
  for (const auto& [path, entry] : tree.entries()) {
    Group* group = GroupOf(plan, path, entry);
    // A hard link's inode is its leader's: same metadata, one inode number for the group.
    const Entry& inode = group != nullptr ? *group->leader : entry;
    uint32_t ino = 0;
    if (group != nullptr) {
      if (group->ino == 0) {
        group->ino = next_ino++;
      }
      ino = group->ino;
    } else {
      ino = next_ino++;
    }
    uint32_t nlink = 1;
    if (entry.type == EntryType::kDirectory) {
      nlink = 2;
    } else if (group != nullptr) {
      nlink = group->names;
    }
    const uint64_t data_size = DataSize(entry, path, group);
    std::array<uint32_t, kFieldCount> fields{};
    fields[kIno] = ino;
    fields[kMode] = TypeBits(entry.type) | (inode.mode & 07777);
    fields[kUid] = inode.uid;
    fields[kGid] = inode.gid;
    fields[kNlink] = nlink;
    fields[kMtime] = mtime;
    fields[kFileSize] = static_cast<uint32_t>(data_size);  // MakePlan checked the range
    if (entry.type == EntryType::kCharDevice || entry.type == EntryType::kBlockDevice) {
      fields[kRdevMajor] = entry.rdev_major;
      fields[kRdevMinor] = entry.rdev_minor;
    }
    fields[kNameSize] = static_cast<uint32_t>(path.size() + 1);
    RETURN_IF_ERROR(WriteHeader(out, path, fields));

    if (entry.type == EntryType::kSymlink) {
      const size_t n = entry.link_target.size();
      ASSIGN_OR_RETURN(std::span<uint8_t> target, out.Reserve(static_cast<size_t>(Pad4(n))));
      std::memcpy(target.data(), entry.link_target.data(), n);
      std::memset(target.data() + n, 0, target.size() - n);
    } else if (entry.type == EntryType::kFile && (group == nullptr || path == group->last)) {
      const std::string_view name = group != nullptr ? group->leader_path : path;
      ASSIGN_OR_RETURN(Bytes digest, WriteFileData(out, inode, name, file_digests != nullptr));
      if (file_digests != nullptr) {
        if (group != nullptr) {
          group->digest = std::move(digest);
        } else {
          file_digests->insert_or_assign(file_digests->end(), path, std::move(digest));
        }
      }
    }
  }
  std::array<uint32_t, kFieldCount> trailer{};
  trailer[kNlink] = 1;
  trailer[kNameSize] = static_cast<uint32_t>(kTrailer.size() + 1);
  RETURN_IF_ERROR(WriteHeader(out, kTrailer, trailer));
  RETURN_IF_ERROR(out.Flush());

  if (file_digests != nullptr) {
    for (const auto& [path, entry] : tree.entries()) {
      if (!entry.hardlink_to.empty()) {
        (*file_digests)[path] = plan.groups.find(entry.hardlink_to)->second.digest;
      }
    }
    for (const auto& [leader_path, group] : plan.groups) {
      (*file_digests)[std::string(leader_path)] = group.digest;
    }
  }
  return Ok();
}

Result<CpioSource> CpioSource::Create(const Tree& tree, const CpioOptions& options,
                                      std::map<std::string, Bytes>* file_digests) {
  if (options.mtime > 0xffffffff) {
    return Error(Code::kInvalidArgument, "cpio mtime " + std::to_string(options.mtime) +
                                             " does not fit newc's 32-bit field");
  }
  ASSIGN_OR_RETURN(uint64_t size, CpioSize(tree));
  return CpioSource(tree, options, file_digests, size);
}

Result<void> CpioSource::WriteTo(ByteSink& sink) const {
  return WriteCpio(*tree_, options_, sink, file_digests_);
}

// ---------------------------------------------------------------------------------------------
// Reader

namespace {

// Escape renders untrusted bytes for a one-line message: printable ASCII as is (with '"' and
// '\' escaped), anything else as \xNN, cut after 200 bytes.
std::string Escape(std::string_view s) {
  static constexpr std::string_view kDigits = "0123456789abcdef";
  constexpr size_t kMax = 200;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 0xf]);
    }
  }
  if (s.size() > kMax) {
    out += "...";
  }
  return out;
}

std::optional<uint32_t> ParseHex8(ByteSpan field) {
  uint32_t value = 0;
  for (uint8_t c : field) {
    uint32_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    value = (value << 4) | digit;
  }
  return value;
}

bool AllZero(ByteSpan bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

// NormalizeArchiveName maps an archive name to CpioEntry::path: "." for the root ("." or "./"
// or "/"), else NormalizePath's form.
Result<std::string> NormalizeArchiveName(std::string_view name) {
  bool only_root =
      std::all_of(name.begin(), name.end(), [](char c) { return c == '/' || c == '.'; }) &&
      name.find("..") == std::string_view::npos;
  if (only_root && !name.empty()) {
    return std::string(".");
  }
  return NormalizePath(name);
}

class EntryParser {
 public:
  EntryParser(ByteSpan archive, const CpioLimits& limits) : archive_(archive), limits_(limits) {}

  Result<std::vector<CpioEntry>> Run();

 private:
  [[nodiscard]] Error Fail(Code code, std::string_view why) const {
    std::string where = "cpio entry " + std::to_string(index_);
    if (!name_.empty()) {
      where += " \"" + Escape(name_) + "\"";
    }
    where += " at offset " + std::to_string(offset_);
    return {code, where + ": " + std::string(why)};
  }
  [[nodiscard]] Error Malformed(std::string_view why) const { return Fail(Code::kMalformed, why); }

  // Take returns the `n` bytes at `pos_` and advances, or fails saying what was cut short.
  Result<ByteSpan> Take(uint64_t n, std::string_view what) {
    if (n > archive_.size() - pos_) {
      return Malformed(std::string(what) + " runs past the end of the archive");
    }
    ByteSpan out = archive_.subspan(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return out;
  }
  Result<void> TakePadding(uint64_t unpadded, std::string_view what) {
    ASSIGN_OR_RETURN(ByteSpan pad, Take(Pad4(unpadded) - unpadded, what));
    if (!AllZero(pad)) {
      return Malformed(std::string(what) + " is not zero");
    }
    return Ok();
  }

  ByteSpan archive_;
  const CpioLimits& limits_;
  size_t pos_ = 0;
  size_t index_ = 0;
  size_t offset_ = 0;
  std::string_view name_;
};

Result<std::vector<CpioEntry>> EntryParser::Run() {
  std::vector<CpioEntry> entries;
  for (;; ++index_) {
    offset_ = pos_;
    name_ = {};
    if (pos_ == archive_.size()) {
      return Malformed("archive ends without a TRAILER!!! entry");
    }
    ASSIGN_OR_RETURN(ByteSpan header, Take(kHeaderSize, "header"));
    const std::string_view magic = AsString(header.first(6));
    const bool crc = magic == kMagicCrc;
    if (magic != kMagicNewc && !crc) {
      return Malformed("bad magic \"" + Escape(magic) + "\" (want 070701 or 070702)");
    }
    std::array<uint32_t, kFieldCount> f{};
    for (size_t i = 0; i < kFieldCount; ++i) {
      std::optional<uint32_t> value = ParseHex8(header.subspan(6 + 8 * i, 8));
      if (!value) {
        return Malformed("field " + std::string(kFieldNames[i]) + " is not 8 hex digits");
      }
      f[i] = *value;
    }
    if (f[kNameSize] == 0) {
      return Malformed("namesize is 0");
    }
    if (f[kNameSize] - 1 > limits_.max_name) {
      return Fail(Code::kLimitExceeded, "name of " + std::to_string(f[kNameSize] - 1) +
                                            " bytes is over the limit of " +
                                            std::to_string(limits_.max_name));
    }
    ASSIGN_OR_RETURN(ByteSpan raw_name, Take(f[kNameSize], "name"));
    const std::string_view name = AsString(raw_name.first(raw_name.size() - 1));
    if (raw_name.back() != 0 || name.find('\0') != std::string_view::npos) {
      name_ = name.substr(0, name.find('\0'));
      return Malformed("name is not NUL-terminated at namesize");
    }
    name_ = name;
    RETURN_IF_ERROR(TakePadding(kHeaderSize + f[kNameSize], "padding after the name"));

    if (name == kTrailer) {
      if (f[kFileSize] != 0) {
        return Malformed("trailer has data");
      }
      if (!AllZero(archive_.subspan(pos_))) {
        offset_ = pos_;
        return Malformed("non-zero bytes after the trailer");
      }
      break;
    }
    if (entries.size() >= limits_.max_entries) {
      return Fail(Code::kLimitExceeded,
                  "more than " + std::to_string(limits_.max_entries) + " entries");
    }
    if ((f[kMode] & ~uint32_t{0177777}) != 0) {
      return Malformed("mode has bits above 0177777");
    }
    const std::optional<EntryType> type = TypeFromBits(f[kMode] & kTypeMask);
    if (!type) {
      return Malformed("unsupported file type " + std::to_string(f[kMode] & kTypeMask) +
                       " (octal mode " +
                       [&] {
                         std::string octal;
                         for (uint32_t m = f[kMode]; m != 0 || octal.empty(); m >>= 3) {
                           octal.insert(octal.begin(), static_cast<char>('0' + (m & 7)));
                         }
                         return octal;
                       }() +
                       ")");
    }
    Result<std::string> path = NormalizeArchiveName(name);
    if (!path) {
      return Malformed(path.error().message());
    }
    if (*path == "." && *type != EntryType::kDirectory) {
      return Malformed("the root is not a directory");
    }

    CpioEntry entry;
    entry.path = *std::move(path);
    entry.type = *type;
    entry.mode = f[kMode] & 07777;
    entry.uid = f[kUid];
    entry.gid = f[kGid];
    entry.nlink = f[kNlink];
    entry.ino = f[kIno];
    entry.mtime = f[kMtime];
    entry.size = f[kFileSize];
    entry.dev_major = f[kDevMajor];
    entry.dev_minor = f[kDevMinor];
    entry.rdev_major = f[kRdevMajor];
    entry.rdev_minor = f[kRdevMinor];
    entry.data_offset = pos_;
    ASSIGN_OR_RETURN(ByteSpan data, Take(f[kFileSize], "data"));
    RETURN_IF_ERROR(TakePadding(f[kFileSize], "padding after the data"));

    switch (entry.type) {
      case EntryType::kFile:
        if (!data.empty()) {
          const crypto::Sha256Digest digest = crypto::Sha256(data);
          entry.sha256.assign(digest.begin(), digest.end());
        }
        break;
      case EntryType::kSymlink:
        if (data.empty()) {
          return Malformed("symlink without a target");
        }
        if (data.size() > limits_.max_link_target) {
          return Fail(Code::kLimitExceeded, "symlink target of " + std::to_string(data.size()) +
                                                " bytes is over the limit of " +
                                                std::to_string(limits_.max_link_target));
        }
        entry.link_target = std::string(AsString(data));
        if (entry.link_target.find('\0') != std::string::npos) {
          return Malformed("symlink target contains a NUL byte");
        }
        break;
      case EntryType::kDirectory:
      case EntryType::kCharDevice:
      case EntryType::kBlockDevice:
      case EntryType::kFifo:
        if (!data.empty()) {
          return Malformed(std::string(EntryTypeName(entry.type)) + " has data");
        }
        break;
    }
    // 070702 (cpio(5) "New CRC Format"): the check field is the 32-bit sum of the data bytes of
    // a regular file, and 0 for everything else; in 070701 it is always 0.
    uint32_t check = 0;
    if (crc && entry.type == EntryType::kFile) {
      for (uint8_t b : data) {
        check += b;
      }
    }
    if (f[kCheck] != check) {
      return Malformed(crc ? "data checksum mismatch" : "check field is not 0");
    }
    entries.push_back(std::move(entry));
  }

  // Duplicate names would make the unpacked tree depend on extraction order and the listing
  // ambiguous; reject them, naming the later entry.
  std::vector<size_t> order(entries.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  std::sort(order.begin(), order.end(), [&entries](size_t a, size_t b) {
    return std::tie(entries[a].path, a) < std::tie(entries[b].path, b);
  });
  for (size_t i = 1; i < order.size(); ++i) {
    if (entries[order[i]].path == entries[order[i - 1]].path) {
      const CpioEntry& dup = entries[order[i]];
      return Error(Code::kMalformed, "cpio entry " + std::to_string(order[i]) + " \"" +
                                         Escape(dup.path) + "\": duplicate of entry " +
                                         std::to_string(order[i - 1]));
    }
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Diff

// Resolved is what an entry means once hard links are taken into account.
struct Resolved {
  uint64_t size = 0;
  const Bytes* sha256 = nullptr;
  std::string_view link_group;  // first path of its hard-link group; empty if not linked
  size_t group_names = 0;
};

std::vector<Resolved> Resolve(const std::vector<CpioEntry>& list) {
  struct GroupInfo {
    size_t names = 0;
    std::string_view first;
    const CpioEntry* data = nullptr;
  };
  using Key = std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>;
  auto key_of = [](const CpioEntry& e) { return Key(e.dev_major, e.dev_minor, e.ino, e.mode); };
  auto linked = [](const CpioEntry& e) { return e.type == EntryType::kFile && e.nlink >= 2; };
  std::map<Key, GroupInfo> groups;
  for (const CpioEntry& e : list) {
    if (!linked(e)) {
      continue;
    }
    GroupInfo& g = groups[key_of(e)];
    ++g.names;
    if (g.first.empty() || e.path < g.first) {
      g.first = e.path;
    }
    // The kernel writes each name's data into the shared inode in archive order; the last name
    // with data wins (GNU cpio and our writer store it once).
    if (e.size > 0) {
      g.data = &e;
    }
  }
  std::vector<Resolved> out(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const CpioEntry& e = list[i];
    Resolved& r = out[i];
    r.size = e.size;
    r.sha256 = &e.sha256;
    if (!linked(e)) {
      continue;
    }
    const GroupInfo& g = groups[key_of(e)];
    if (g.names < 2) {
      continue;
    }
    r.link_group = g.first;
    r.group_names = g.names;
    if (g.data != nullptr) {
      r.size = g.data->size;
      r.sha256 = &g.data->sha256;
    }
  }
  return out;
}

std::string Octal4(uint32_t mode) {
  std::string out(4, '0');
  for (size_t i = 4; i-- > 0;) {
    out[i] = static_cast<char>('0' + (mode & 7));
    mode >>= 3;
  }
  return out;
}

std::string DescribeContent(uint64_t size, const Bytes& sha256) {
  return std::to_string(size) + " bytes" + (sha256.empty() ? "" : ", sha256 " + HexEncode(sha256));
}

std::string DescribeGroup(const Resolved& r) {
  if (r.link_group.empty()) {
    return "none";
  }
  return "\"" + Escape(r.link_group) + "\" (" + std::to_string(r.group_names) + " names)";
}

void Compare(const CpioEntry& e, const Resolved& re, const CpioEntry& a, const Resolved& ra,
             std::vector<EntryDiff>& out) {
  auto add = [&](std::string what) { out.push_back(EntryDiff{e.path, std::move(what), &e, &a}); };
  if (e.type != a.type) {
    add("type " + std::string(EntryTypeName(e.type)) + " != " + std::string(EntryTypeName(a.type)));
    return;
  }
  if (e.mode != a.mode) {
    add("mode " + Octal4(e.mode) + " != " + Octal4(a.mode));
  }
  if (e.uid != a.uid || e.gid != a.gid) {
    add("owner " + std::to_string(e.uid) + ":" + std::to_string(e.gid) +
        " != " + std::to_string(a.uid) + ":" + std::to_string(a.gid));
  }
  switch (e.type) {
    case EntryType::kFile:
      if (re.size != ra.size || *re.sha256 != *ra.sha256) {
        add("content differs: " + DescribeContent(re.size, *re.sha256) +
            " != " + DescribeContent(ra.size, *ra.sha256));
      }
      if (re.link_group != ra.link_group) {
        add("hard-link group " + DescribeGroup(re) + " != " + DescribeGroup(ra));
      }
      break;
    case EntryType::kSymlink:
      if (e.link_target != a.link_target) {
        add("link target \"" + Escape(e.link_target) + "\" != \"" + Escape(a.link_target) + "\"");
      }
      break;
    case EntryType::kCharDevice:
    case EntryType::kBlockDevice:
      if (e.rdev_major != a.rdev_major || e.rdev_minor != a.rdev_minor) {
        add("device " + std::to_string(e.rdev_major) + ":" + std::to_string(e.rdev_minor) +
            " != " + std::to_string(a.rdev_major) + ":" + std::to_string(a.rdev_minor));
      }
      break;
    case EntryType::kDirectory:
    case EntryType::kFifo:
      break;
  }
}

}  // namespace

Result<std::vector<CpioEntry>> ListCpio(ByteSpan archive, const CpioLimits& limits) {
  return EntryParser(archive, limits).Run();
}

std::vector<EntryDiff> DiffEntries(const std::vector<CpioEntry>& expected,
                                   const std::vector<CpioEntry>& actual) {
  const std::vector<Resolved> resolved_expected = Resolve(expected);
  const std::vector<Resolved> resolved_actual = Resolve(actual);
  auto sorted = [](const std::vector<CpioEntry>& list) {
    std::vector<size_t> order(list.size());
    for (size_t i = 0; i < order.size(); ++i) {
      order[i] = i;
    }
    std::sort(order.begin(), order.end(),
              [&list](size_t a, size_t b) { return list[a].path < list[b].path; });
    return order;
  };
  const std::vector<size_t> e_order = sorted(expected);
  const std::vector<size_t> a_order = sorted(actual);
  std::vector<EntryDiff> out;
  size_t i = 0;
  size_t j = 0;
  while (i < e_order.size() || j < a_order.size()) {
    const CpioEntry* e = i < e_order.size() ? &expected[e_order[i]] : nullptr;
    const CpioEntry* a = j < a_order.size() ? &actual[a_order[j]] : nullptr;
    if (a == nullptr || (e != nullptr && e->path < a->path)) {
      out.push_back(EntryDiff{e->path, "only in expected", e, nullptr});
      ++i;
    } else if (e == nullptr || a->path < e->path) {
      out.push_back(EntryDiff{a->path, "only in actual", nullptr, a});
      ++j;
    } else {
      Compare(*e, resolved_expected[e_order[i]], *a, resolved_actual[a_order[j]], out);
      ++i;
      ++j;
    }
  }
  return out;
}

}  // namespace enclavia::image
