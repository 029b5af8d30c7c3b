// SPDX-License-Identifier: Apache-2.0
#include "lib/oci/test_archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <clocale>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "lib/base/encoding.h"
#include "lib/base/sink.h"
#include "lib/crypto/hash.h"

namespace enclavia::oci::testing {
namespace {

struct WriteFree {
  void operator()(archive* a) const noexcept { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const noexcept { archive_entry_free(e); }
};

void Check(bool ok, archive* a, const char* what) {
  if (!ok) {
    std::cerr << "test_archive: " << what << ": "
              << (a != nullptr && archive_error_string(a) != nullptr ? archive_error_string(a)
                                                                     : "?")
              << "\n";
    std::abort();
  }
}

la_ssize_t Append(archive* /*a*/, void* context, const void* buffer, size_t length) {
  auto* out = static_cast<Bytes*>(context);
  const auto* p = static_cast<const uint8_t*>(buffer);
  out->insert(out->end(), p, p + length);
  return static_cast<la_ssize_t>(length);
}

std::string Octal(uint32_t mode) {
  std::ostringstream out;
  out << std::oct << std::setw(4) << std::setfill('0') << mode;
  return out.str();
}

Bytes WriteTar(const std::vector<TarEntry>& entries, Filter filter, bool binary_names) {
  Bytes out;
  std::unique_ptr<archive, WriteFree> a(archive_write_new());
  Check(archive_write_set_format_pax_restricted(a.get()) == ARCHIVE_OK, a.get(), "format");
  if (binary_names) {
    Check(archive_write_set_options(a.get(), "hdrcharset=BINARY") == ARCHIVE_OK, a.get(),
          "hdrcharset");
  }
  switch (filter) {
    case Filter::kNone:
      break;
    case Filter::kGzip:
      Check(archive_write_add_filter_gzip(a.get()) == ARCHIVE_OK, a.get(), "gzip");
      break;
    case Filter::kZstd:
      Check(archive_write_add_filter_zstd(a.get()) == ARCHIVE_OK, a.get(), "zstd");
      break;
  }
  Check(archive_write_set_bytes_in_last_block(a.get(), 1) == ARCHIVE_OK, a.get(), "block");
  Check(archive_write_open(a.get(), &out, nullptr, Append, nullptr) == ARCHIVE_OK, a.get(), "open");
  for (const TarEntry& t : entries) {
    std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), t.path.c_str());
    archive_entry_set_uid(e.get(), t.uid);
    archive_entry_set_gid(e.get(), t.gid);
    archive_entry_set_mtime(e.get(), 0, 0);
    unsigned type = AE_IFREG;
    switch (t.kind) {
      case Kind::kFile:
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(t.data.size()));
        break;
      case Kind::kDir:
        type = AE_IFDIR;
        break;
      case Kind::kSymlink:
        type = AE_IFLNK;
        archive_entry_set_symlink(e.get(), t.link.c_str());
        break;
      case Kind::kHardlink:
        archive_entry_set_hardlink(e.get(), t.link.c_str());
        break;
      case Kind::kCharDevice:
        type = AE_IFCHR;
        break;
      case Kind::kBlockDevice:
        type = AE_IFBLK;
        break;
      case Kind::kFifo:
        type = AE_IFIFO;
        break;
    }
    if (t.kind == Kind::kCharDevice || t.kind == Kind::kBlockDevice) {
      archive_entry_set_rdevmajor(e.get(), t.major);
      archive_entry_set_rdevminor(e.get(), t.minor);
    }
    archive_entry_set_mode(e.get(), type | t.mode);
    for (const auto& [name, value] : t.xattrs) {
      archive_entry_xattr_add_entry(e.get(), name.c_str(), value.data(), value.size());
    }
    Check(archive_write_header(a.get(), e.get()) == ARCHIVE_OK, a.get(), "header");
    if (t.kind == Kind::kFile && !t.data.empty()) {
      Check(archive_write_data(a.get(), t.data.data(), t.data.size()) ==
                static_cast<la_ssize_t>(t.data.size()),
            a.get(), "data");
    }
  }
  Check(archive_write_close(a.get()) == ARCHIVE_OK, a.get(), "close");
  return out;
}

}  // namespace

TarEntry File(std::string path, std::string data, uint32_t mode, uint32_t uid, uint32_t gid) {
  TarEntry e;
  e.kind = Kind::kFile;
  e.path = std::move(path);
  e.data = std::move(data);
  e.mode = mode;
  e.uid = uid;
  e.gid = gid;
  return e;
}

TarEntry Dir(std::string path, uint32_t mode, uint32_t uid, uint32_t gid) {
  TarEntry e;
  e.kind = Kind::kDir;
  e.path = std::move(path);
  e.mode = mode;
  e.uid = uid;
  e.gid = gid;
  return e;
}

TarEntry Symlink(std::string path, std::string target) {
  TarEntry e;
  e.kind = Kind::kSymlink;
  e.path = std::move(path);
  e.link = std::move(target);
  e.mode = 0777;
  return e;
}

TarEntry Hardlink(std::string path, std::string target) {
  TarEntry e;
  e.kind = Kind::kHardlink;
  e.path = std::move(path);
  e.link = std::move(target);
  return e;
}

TarEntry Device(Kind kind, std::string path, uint32_t major, uint32_t minor) {
  TarEntry e;
  e.kind = kind;
  e.path = std::move(path);
  e.mode = 0666;
  e.major = major;
  e.minor = minor;
  return e;
}

TarEntry Fifo(std::string path) {
  TarEntry e;
  e.kind = Kind::kFifo;
  e.path = std::move(path);
  return e;
}

Bytes MakeTar(const std::vector<TarEntry>& entries, Filter filter) {
  // Write names as UTF-8 in pax headers, as Go's archive/tar (docker, buildkit) does, whatever
  // the test's locale; names that are not UTF-8 go out raw with hdrcharset=BINARY.
  locale_t utf8 = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", nullptr);
  Check(utf8 != nullptr, nullptr, "C.UTF-8 locale");
  locale_t previous = ::uselocale(utf8);
  Bytes out = WriteTar(entries, filter, /*binary_names=*/false);
  ::uselocale(previous);
  ::freelocale(utf8);
  return out;
}

Bytes MakeTarWithBinaryNames(const std::vector<TarEntry>& entries) {
  return WriteTar(entries, Filter::kNone, /*binary_names=*/true);
}

Bytes TarDirectory(const std::string& dir) {
  std::vector<TarEntry> entries;
  std::vector<std::filesystem::path> paths;
  for (const auto& item : std::filesystem::recursive_directory_iterator(dir)) {
    paths.push_back(item.path());
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    const std::string rel = std::filesystem::relative(p, dir).string();
    if (std::filesystem::is_directory(p)) {
      entries.push_back(Dir(rel + "/"));
    } else {
      std::ifstream in(p, std::ios::binary);
      std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      entries.push_back(File(rel, std::move(data)));
    }
  }
  return MakeTar(entries);
}

std::vector<std::string> Describe(const image::Tree& tree) {
  std::vector<std::string> out;
  for (const auto& [path, e] : tree.entries()) {
    std::string line = path + " ";
    switch (e.type) {
      case image::EntryType::kFile:
        line += "file";
        break;
      case image::EntryType::kDirectory:
        line += "dir";
        break;
      case image::EntryType::kSymlink:
        line += "symlink";
        break;
      case image::EntryType::kCharDevice:
        line += "chr";
        break;
      case image::EntryType::kBlockDevice:
        line += "blk";
        break;
      case image::EntryType::kFifo:
        line += "fifo";
        break;
    }
    line += ' ';
    line += Octal(e.mode);
    line += ' ';
    line += std::to_string(e.uid);
    line += ':';
    line += std::to_string(e.gid);
    if (e.type == image::EntryType::kFile) {
      BytesSink sink;
      Result<void> r = image::StreamContent(e, sink);
      line += " size=";
      line += std::to_string(e.size);
      line += " content=\"";
      if (r) {
        line += AsString(sink.bytes());
      } else {
        line += "<";
        line += r.error().message();
        line += ">";
      }
      line += "\"";
      if (!e.hardlink_to.empty()) {
        line += " hardlink_to=" + e.hardlink_to;
      }
    }
    if (e.type == image::EntryType::kSymlink) {
      line += " -> " + e.link_target;
    }
    if (e.type == image::EntryType::kCharDevice || e.type == image::EntryType::kBlockDevice) {
      line += " rdev=" + std::to_string(e.rdev_major) + ":" + std::to_string(e.rdev_minor);
    }
    out.push_back(std::move(line));
  }
  return out;
}

std::string Sha256Hex(ByteSpan data) { return HexEncode(crypto::Sha256(data)); }

void WriteBytes(const std::string& path, ByteSpan data) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) {
    std::cerr << "test_archive: cannot write " << path << "\n";
    std::abort();
  }
}

std::string MakeTempDir() {
  std::string templ =
      (std::filesystem::temp_directory_path() / "enclavia-oci-test-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    std::cerr << "test_archive: mkdtemp failed\n";
    std::abort();
  }
  return templ;
}

}  // namespace enclavia::oci::testing
