// SPDX-License-Identifier: Apache-2.0
#include "lib/image/cpio.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/base/sink.h"
#include "lib/crypto/hash.h"
#include "lib/image/internal/test_util.h"
#include "lib/image/scan.h"

namespace enclavia::image {
namespace {

using testing::DirEntry;
using testing::FileEntry;
using testing::HardLinkEntry;
using testing::PatternBytes;
using testing::SymlinkEntry;
using testing::TempDir;
using testing::WriteTestFile;

constexpr size_t kBigFileSize = 5 * 1024 * 1024 + 3;

Bytes Sha256Bytes(ByteSpan data) {
  crypto::Sha256Digest d = crypto::Sha256(data);
  return {d.begin(), d.end()};
}

// ContentOf returns the bytes a regular file entry (not a hard link) holds.
Bytes ContentOf(const Entry& entry) {
  if (const Bytes* bytes = std::get_if<Bytes>(&entry.content)) {
    return *bytes;
  }
  return ReadFile(std::get<PathContent>(entry.content).path, size_t{1} << 30).value();
}

// RecordingSink keeps the bytes and the size of every Write.
class RecordingSink final : public ByteSink {
 public:
  Result<void> Write(ByteSpan data) override {
    sizes_.push_back(data.size());
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    return {};
  }
  [[nodiscard]] const Bytes& Received() const { return bytes_; }
  [[nodiscard]] const std::vector<size_t>& WriteSizes() const { return sizes_; }

 private:
  Bytes bytes_;
  std::vector<size_t> sizes_;
};

// RichTree has every kind of entry the writer handles. `dir` holds the big file's content.
Tree RichTree(const TempDir& dir, bool with_devices = true) {
  Tree tree;
  const std::string big = dir / "big";
  EXPECT_TRUE(WriteTestFile(big, PatternBytes(kBigFileSize)));
  Entry app;
  app.mode = 0755;
  app.size = kBigFileSize;
  app.content = PathContent{big};
  EXPECT_TRUE(tree.Put("bin/app", app).has_value());
  EXPECT_TRUE(tree.Put("empty", FileEntry("")).has_value());
  EXPECT_TRUE(tree.Put("etc/hosts", FileEntry("127.0.0.1 localhost\n")).has_value());
  EXPECT_TRUE(tree.Put("etc/odd", FileEntry("abc", 0600)).has_value());  // 3 bytes: padded
  EXPECT_TRUE(tree.Put("lib", SymlinkEntry("usr/lib")).has_value());
  EXPECT_TRUE(tree.Put("abs", SymlinkEntry("/etc/hosts")).has_value());
  Entry leader = FileEntry(AsString(PatternBytes(1001, 2)), 0700);
  leader.uid = 5;
  leader.gid = 6;
  EXPECT_TRUE(tree.Put("hl/b", leader).has_value());
  EXPECT_TRUE(tree.Put("hl/a", HardLinkEntry("hl/b")).has_value());
  EXPECT_TRUE(tree.Put("hl/c", HardLinkEntry("hl/b")).has_value());
  Entry fifo;
  fifo.type = EntryType::kFifo;
  fifo.mode = 0600;
  EXPECT_TRUE(tree.Put("run/fifo", fifo).has_value());
  if (with_devices) {
    Entry null;
    null.type = EntryType::kCharDevice;
    null.mode = 0666;
    null.rdev_major = 1;
    null.rdev_minor = 3;
    EXPECT_TRUE(tree.Put("dev/null", null).has_value());
    Entry sda;
    sda.type = EntryType::kBlockDevice;
    sda.mode = 0660;
    sda.gid = 6;
    sda.rdev_major = 8;
    EXPECT_TRUE(tree.Put("dev/sda", sda).has_value());
  }
  Entry home = DirEntry(0700);
  home.uid = 1000;
  home.gid = 1000;
  EXPECT_TRUE(tree.Put("home/user", home).has_value());
  for (size_t n = 1; n <= 255; ++n) {
    EXPECT_TRUE(tree.Put("names/" + std::string(n, static_cast<char>('a' + n % 26)),
                         FileEntry(std::string(n % 7, 'x')))
                    .has_value());
  }
  EXPECT_TRUE(tree.Validate().has_value());
  return tree;
}

Bytes Write(const Tree& tree, uint64_t mtime = 0, std::map<std::string, Bytes>* digests = nullptr) {
  BytesSink sink;
  CpioOptions options;
  options.mtime = mtime;
  Result<void> r = WriteCpio(tree, options, sink, digests);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
  return sink.Take();
}

// ---------------------------------------------------------------------------------------------
// Writer

TEST(CpioTest, WritesTheExpectedBytesForATinyTree) {
  Tree tree;
  ASSERT_TRUE(tree.Put("a", FileEntry("hi")).has_value());
  const std::string expected =
      std::string("070701") + "00000001" + "000081A4" + "00000000" + "00000000" + "00000001" +
      "0000002A" + "00000002" + "00000000" + "00000000" + "00000000" + "00000000" + "00000002" +
      "00000000" + std::string("a\0", 2) + std::string("hi\0\0", 4) + "070701" + "00000000" +
      "00000000" + "00000000" + "00000000" + "00000001" + "00000000" + "00000000" + "00000000" +
      "00000000" + "00000000" + "00000000" + "0000000B" + "00000000" +
      std::string("TRAILER!!!\0\0\0\0", 14);
  EXPECT_EQ(AsString(Write(tree, 42)), expected);
  EXPECT_EQ(CpioSize(tree).value(), expected.size());
}

TEST(CpioTest, RoundTripsEveryKindOfEntry) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const Tree tree = RichTree(dir);
  std::map<std::string, Bytes> digests;
  RecordingSink sink;
  CpioOptions options;
  options.mtime = 1700000000;
  ASSERT_TRUE(WriteCpio(tree, options, sink, &digests).has_value());
  const Bytes& archive = sink.Received();
  EXPECT_EQ(CpioSize(tree).value(), archive.size());
  // The sink sees full 4 MiB chunks and one final partial chunk.
  ASSERT_GE(sink.WriteSizes().size(), 2U);
  for (size_t i = 0; i + 1 < sink.WriteSizes().size(); ++i) {
    EXPECT_EQ(sink.WriteSizes()[i], size_t{4} << 20);
  }

  Result<std::vector<CpioEntry>> listed = ListCpio(archive);
  ASSERT_TRUE(listed.has_value()) << listed.error().message();
  ASSERT_EQ(listed->size(), tree.size());

  std::map<std::string, uint32_t> group_ino;
  uint32_t next_ino = 1;
  size_t i = 0;
  for (const auto& [path, entry] : tree.entries()) {
    SCOPED_TRACE(path);
    const CpioEntry& got = (*listed)[i++];
    const bool linked = path.starts_with("hl/");
    const Entry& inode = linked ? *tree.Find("hl/b") : entry;
    EXPECT_EQ(got.path, path);
    EXPECT_EQ(got.type, entry.type);
    EXPECT_EQ(got.mode, inode.mode);
    EXPECT_EQ(got.uid, inode.uid);
    EXPECT_EQ(got.gid, inode.gid);
    EXPECT_EQ(got.mtime, 1700000000U);
    EXPECT_EQ(got.dev_major, 0U);
    EXPECT_EQ(got.dev_minor, 0U);
    EXPECT_EQ(got.rdev_major, entry.rdev_major);
    EXPECT_EQ(got.rdev_minor, entry.rdev_minor);
    if (linked) {
      if (group_ino.empty()) {
        group_ino[""] = next_ino++;
      }
      EXPECT_EQ(got.ino, group_ino[""]);
      EXPECT_EQ(got.nlink, 3U);
    } else {
      EXPECT_EQ(got.ino, next_ino++);
      EXPECT_EQ(got.nlink, entry.type == EntryType::kDirectory ? 2U : 1U);
    }
    switch (entry.type) {
      case EntryType::kFile: {
        const Bytes content = ContentOf(inode);
        // A group's data goes with its last name, hl/c.
        const bool carries = !linked || path == "hl/c";
        EXPECT_EQ(got.size, carries ? content.size() : 0U);
        EXPECT_EQ(got.sha256, carries && !content.empty() ? Sha256Bytes(content) : Bytes());
        if (carries) {
          ASSERT_LE(got.data_offset + content.size(), archive.size());
          EXPECT_TRUE(std::equal(content.begin(), content.end(),
                                 archive.begin() + static_cast<ptrdiff_t>(got.data_offset)));
        }
        ASSERT_TRUE(digests.contains(path));
        EXPECT_EQ(digests[path], Sha256Bytes(content));
        break;
      }
      case EntryType::kSymlink:
        EXPECT_EQ(got.link_target, entry.link_target);
        EXPECT_EQ(got.size, entry.link_target.size());
        break;
      default:
        EXPECT_EQ(got.size, 0U);
        break;
    }
  }
  size_t files = 0;
  for (const auto& [path, entry] : tree.entries()) {
    files += entry.type == EntryType::kFile ? 1 : 0;
  }
  EXPECT_EQ(digests.size(), files);
}

TEST(CpioTest, IsDeterministicAndCpioSourceMatches) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const Tree tree = RichTree(dir);
  const Bytes first = Write(tree, 7);
  EXPECT_EQ(Write(tree, 7), first);

  std::map<std::string, Bytes> digests;
  CpioOptions options;
  options.mtime = 7;
  Result<CpioSource> source = CpioSource::Create(tree, options, &digests);
  ASSERT_TRUE(source.has_value());
  EXPECT_EQ(source->size(), first.size());
  for (int round = 0; round < 2; ++round) {
    BytesSink sink;
    ASSERT_TRUE(source->WriteTo(sink).has_value());
    EXPECT_EQ(sink.bytes(), first);
  }
  EXPECT_EQ(digests.size(), 262U);
}

TEST(CpioTest, RefusesWhatNewcCannotHold) {
  Tree tree;
  ASSERT_TRUE(tree.Put("a", FileEntry("x")).has_value());
  CountingSink sink;
  CpioOptions options;
  options.mtime = uint64_t{1} << 32;
  EXPECT_EQ(WriteCpio(tree, options, sink).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(CpioSource::Create(tree, options).error().code(), Code::kInvalidArgument);

  Entry huge;
  huge.size = uint64_t{1} << 32;
  huge.content = PathContent{"/nonexistent"};
  ASSERT_TRUE(tree.Put("huge", huge).has_value());
  EXPECT_EQ(CpioSize(tree).error().code(), Code::kLimitExceeded);
  ASSERT_TRUE(tree.Remove("huge"));

  ASSERT_TRUE(tree.Put(std::string(4096, 'n'), FileEntry("")).has_value());
  EXPECT_EQ(CpioSize(tree).error().code(), Code::kLimitExceeded);
}

TEST(CpioTest, FailsWhenAFileChangedSinceItWasScanned) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(WriteTestFile(dir / "f", "four"));
  Entry entry;
  entry.size = 3;
  entry.content = PathContent{dir / "f"};
  Tree tree;
  ASSERT_TRUE(tree.Put("f", entry).has_value());
  CountingSink sink;
  Result<void> r = WriteCpio(tree, {}, sink);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.error().message().find(dir / "f"), std::string::npos) << r.error().message();
}

TEST(CpioTest, FailsOnAnInvalidTree) {
  Tree tree;
  ASSERT_TRUE(tree.Put("b", HardLinkEntry("a")).has_value());
  CountingSink sink;
  EXPECT_EQ(WriteCpio(tree, {}, sink).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(sink.count(), 0U);
}

// ---------------------------------------------------------------------------------------------
// GNU cpio as the independent check

// Hex8 renders `value` as a newc header field: 8 uppercase hex digits.
std::string Hex8(uint32_t value) {
  std::string out(8, '0');
  for (size_t i = 8; i-- > 0; value >>= 4) {
    out[i] = "0123456789ABCDEF"[value & 0xf];
  }
  return out;
}

bool HaveGnuCpio() { return ::access("/usr/bin/cpio", X_OK) == 0; }

// Shell runs a fixed command line built from temp-dir paths: the point is to run GNU cpio.
int Shell(const std::string& command) {
  int status = std::system(command.c_str());  // NOLINT(cert-env33-c,concurrency-mt-unsafe)
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(CpioGnuTest, GnuCpioExtractsOurArchive) {
  if (!HaveGnuCpio()) {
    GTEST_SKIP() << "/usr/bin/cpio is not installed; skipping the GNU cpio cross-check";
  }
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const bool root = ::geteuid() == 0;  // only root can extract device nodes
  const Tree tree = RichTree(dir, /*with_devices=*/root);
  const Bytes archive = Write(tree, 1700000000);
  ASSERT_TRUE(WriteTestFile(dir / "archive.cpio", archive));
  ASSERT_EQ(::mkdir((dir / "out").c_str(), 0755), 0);
  ASSERT_EQ(Shell("cd " + dir.path() + "/out && cpio -idm --quiet < ../archive.cpio"), 0);

  // cpio -t lists names in archive order, which is the tree's bytewise order.
  ASSERT_EQ(
      Shell("cpio -t --quiet < " + dir.path() + "/archive.cpio > " + dir.path() + "/list.txt"), 0);
  std::string expected_list;
  for (const auto& [path, entry] : tree.entries()) {
    expected_list += path + "\n";
  }
  EXPECT_EQ(ReadText(dir / "list.txt"), expected_list);

  std::map<std::string, ino_t> inodes;
  for (const auto& [path, entry] : tree.entries()) {
    SCOPED_TRACE(path);
    const std::string out = dir / ("out/" + path);
    struct stat st {};
    ASSERT_EQ(::lstat(out.c_str(), &st), 0);
    const Entry& inode = entry.hardlink_to.empty() ? entry : *tree.Find(entry.hardlink_to);
    EXPECT_EQ(st.st_mode & 07777, inode.mode);
    if (entry.type == EntryType::kFile) {
      EXPECT_EQ(st.st_mtime, 1700000000);  // cpio -m restores the mtime of files only
    }
    switch (entry.type) {
      case EntryType::kFile:
        ASSERT_TRUE(S_ISREG(st.st_mode));
        EXPECT_EQ(ToBytes(ReadText(out)), ContentOf(inode));
        if (path.starts_with("hl/")) {
          inodes[path] = st.st_ino;
          EXPECT_EQ(st.st_nlink, 3U);
        }
        break;
      case EntryType::kDirectory:
        EXPECT_TRUE(S_ISDIR(st.st_mode));
        break;
      case EntryType::kSymlink: {
        ASSERT_TRUE(S_ISLNK(st.st_mode));
        std::string target(4096, '\0');
        ssize_t n = ::readlink(out.c_str(), target.data(), target.size());
        ASSERT_GT(n, 0);
        target.resize(static_cast<size_t>(n));
        EXPECT_EQ(target, entry.link_target);
        break;
      }
      case EntryType::kFifo:
        EXPECT_TRUE(S_ISFIFO(st.st_mode));
        break;
      case EntryType::kCharDevice:
      case EntryType::kBlockDevice:
        EXPECT_EQ(S_ISCHR(st.st_mode), entry.type == EntryType::kCharDevice);
        EXPECT_EQ(major(st.st_rdev), entry.rdev_major);
        EXPECT_EQ(minor(st.st_rdev), entry.rdev_minor);
        break;
    }
  }
  ASSERT_EQ(inodes.size(), 3U);
  EXPECT_EQ(inodes["hl/a"], inodes["hl/b"]);
  EXPECT_EQ(inodes["hl/b"], inodes["hl/c"]);
}

// Where the conventions coincide (files whose on-disk metadata equals what we write, listed in
// our order, --reproducible for sequential inodes and no device numbers), GNU cpio writes the
// same bytes but for inode numbering, followed by its padding to a 512-byte block.
TEST(CpioGnuTest, MatchesGnuCpioByteForByte) {
  if (!HaveGnuCpio()) {
    GTEST_SKIP() << "/usr/bin/cpio is not installed; skipping the GNU cpio cross-check";
  }
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string src = dir / "src";
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((src + "/d").c_str(), 0755), 0);  // no subdirectories: on-disk nlink is 2
  ASSERT_TRUE(WriteTestFile(src + "/a.txt", "hello"));
  ASSERT_TRUE(WriteTestFile(src + "/d/exe", "#!/bin/sh\necho hi\n", 0755));
  ASSERT_TRUE(WriteTestFile(src + "/d/empty", ""));
  ASSERT_TRUE(WriteTestFile(src + "/d/big", PatternBytes(70001)));
  ASSERT_TRUE(WriteTestFile(src + "/d/h1", "linked"));
  ASSERT_EQ(::link((src + "/d/h1").c_str(), (src + "/d/h2").c_str()), 0);
  ASSERT_EQ(::link((src + "/d/h1").c_str(), (src + "/d/h3").c_str()), 0);
  ASSERT_EQ(::symlink("a.txt", (src + "/link").c_str()), 0);
  ASSERT_EQ(::mkfifo((src + "/fifo").c_str(), 0644), 0);
  Result<Tree> tree = ScanDirectory(src);
  ASSERT_TRUE(tree.has_value()) << tree.error().message();

  constexpr time_t kMtime = 1600000000;
  std::string list;
  for (const auto& [path, entry] : tree->entries()) {
    std::string p = src;
    p += '/';
    p += path;
    if (entry.type != EntryType::kSymlink) {
      ASSERT_EQ(::chmod(p.c_str(), entry.mode), 0);  // undo the umask
    }
    const std::array<timespec, 2> times = {{{kMtime, 0}, {kMtime, 0}}};
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times.data(), AT_SYMLINK_NOFOLLOW), 0);
    list += path;
    list += '\n';
  }
  // cpio stores the owner from the disk: give the tree the same one.
  for (const auto& [path, entry] : tree->entries()) {
    tree->Find(path)->uid = ::geteuid();
    tree->Find(path)->gid = ::getegid();
  }
  // GNU cpio holds back a hard link's names until the last one and then emits the held-back
  // names most recent first; listing h2 before h1 makes it emit our (bytewise) order.
  const size_t h1 = list.find("d/h1\n");
  ASSERT_NE(h1, std::string::npos);
  list.replace(h1, 10, "d/h2\nd/h1\n");
  ASSERT_TRUE(WriteTestFile(dir / "list.txt", list));
  ASSERT_EQ(Shell("cd " + src + " && cpio -o -H newc --reproducible --quiet < ../list.txt > " +
                  "../gnu.cpio"),
            0);
  const Bytes ours = Write(*tree, kMtime);
  Bytes gnu = ReadFile(dir / "gnu.cpio", size_t{1} << 24).value();
  // The one convention that differs: --reproducible numbers inodes from 0, we from 1 (0 reads
  // as "no inode" to some tools). Renumber GNU's headers before comparing.
  Result<std::vector<CpioEntry>> gnu_entries = ListCpio(gnu);
  ASSERT_TRUE(gnu_entries.has_value()) << gnu_entries.error().message();
  for (const CpioEntry& e : *gnu_entries) {
    const size_t header =
        static_cast<size_t>(e.data_offset) - ((110 + e.path.size() + 1 + 3) & ~size_t{3});
    const std::string hex = Hex8(e.ino + 1);
    std::memcpy(gnu.data() + header + 6, hex.data(), 8);
  }
  ASSERT_GE(gnu.size(), ours.size());
  EXPECT_EQ(gnu.size() % 512, 0U);
  const auto mismatch = std::mismatch(ours.begin(), ours.end(), gnu.begin());
  if (mismatch.first != ours.end()) {
    // Show the 110-byte header the difference is in (headers are printable).
    const size_t at = static_cast<size_t>(mismatch.first - ours.begin());
    const size_t from = at < 110 ? 0 : at - 110;
    ADD_FAILURE()
        << "first difference at offset " << at << "\nours: "
        << AsString(ByteSpan(ours).subspan(from, std::min<size_t>(140, ours.size() - from)))
        << "\ngnu:  "
        << AsString(ByteSpan(gnu).subspan(from, std::min<size_t>(140, gnu.size() - from)));
  }
  for (size_t i = ours.size(); i < gnu.size(); ++i) {
    ASSERT_EQ(gnu[i], 0) << i;
  }
  // And our reader takes GNU's block padding.
  EXPECT_TRUE(ListCpio(gnu).has_value());
}

// ---------------------------------------------------------------------------------------------
// Reader

// Newc builds one raw entry; `fields` overrides header fields by index (ino=0 .. check=12).
std::string Newc(std::string_view name, uint32_t mode, std::string_view data,
                 std::map<size_t, std::string> fields = {}, std::string_view magic = "070701") {
  std::string header(magic);
  const std::array<uint32_t, 13> values = {1,
                                           mode,
                                           0,
                                           0,
                                           1,
                                           0,
                                           static_cast<uint32_t>(data.size()),
                                           0,
                                           0,
                                           0,
                                           0,
                                           static_cast<uint32_t>(name.size() + 1),
                                           0};
  for (size_t i = 0; i < values.size(); ++i) {
    header += fields.contains(i) ? fields[i] : Hex8(values[i]);
  }
  std::string out = header + std::string(name) + '\0';
  out.append((4 - out.size() % 4) % 4, '\0');
  out += data;
  out.append((4 - data.size() % 4) % 4, '\0');
  return out;
}

std::string Trailer() { return Newc("TRAILER!!!", 0, ""); }

Error ListError(std::string_view archive, const CpioLimits& limits = {}) {
  Result<std::vector<CpioEntry>> r = ListCpio(AsBytes(archive), limits);
  EXPECT_FALSE(r.has_value());
  return r ? Error(Code::kOk, "") : std::move(r).error();
}

void ExpectError(const Error& e, Code code, std::string_view needle) {
  EXPECT_EQ(e.code(), code) << e.message();
  EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
}

TEST(ListCpioTest, AcceptsLeadingDotSlashRootEntryAndCrcVariant) {
  std::map<size_t, std::string> crc = {{12, "00000126"}};  // 'a'+'b'+'c' = 0x126
  const std::string archive = Newc(".", 040755, "") + Newc("./x", 0100644, "abc") +
                              Newc("/y/z", 0100644, "abc", crc, "070702") + Trailer() +
                              std::string(512, '\0');
  Result<std::vector<CpioEntry>> r = ListCpio(AsBytes(archive));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  ASSERT_EQ(r->size(), 3U);
  EXPECT_EQ((*r)[0].path, ".");
  EXPECT_EQ((*r)[1].path, "x");
  EXPECT_EQ((*r)[2].path, "y/z");
  EXPECT_EQ((*r)[2].sha256, Sha256Bytes(AsBytes("abc")));
}

TEST(ListCpioTest, RejectsBadMagic) {
  std::string archive = Newc("a", 0100644, "x") + Trailer();
  archive[5] = '7';
  ExpectError(ListError(archive), Code::kMalformed, "cpio entry 0 at offset 0: bad magic");
}

TEST(ListCpioTest, RejectsANonHexField) {
  ExpectError(
      ListError(Newc("a", 0100644, "x") + Newc("b", 0100644, "", {{2, "0000000g"}}) + Trailer()),
      Code::kMalformed, "cpio entry 1 at offset 116: field uid is not 8 hex digits");
  ExpectError(ListError(Newc("a", 0100644, "", {{6, " 0000000"}}) + Trailer()), Code::kMalformed,
              "field filesize is not 8 hex digits");
}

TEST(ListCpioTest, RejectsANameWithoutItsNul) {
  std::string archive = Newc("abc", 0100644, "") + Trailer();
  archive[110 + 3] = 'd';
  ExpectError(ListError(archive), Code::kMalformed, "name is not NUL-terminated");
  ExpectError(ListError(Newc("a", 0100644, "", {{11, "00000001"}}) + Trailer()), Code::kMalformed,
              "not NUL-terminated");
}

TEST(ListCpioTest, RejectsNamesizeZero) {
  ExpectError(ListError(Newc("a", 0100644, "", {{11, "00000000"}}) + Trailer()), Code::kMalformed,
              "namesize is 0");
}

TEST(ListCpioTest, RejectsSizesPastTheEnd) {
  ExpectError(ListError(Newc("a", 0100644, "x", {{6, "FFFFFFFF"}}) + Trailer()), Code::kMalformed,
              "cpio entry 0 \"a\" at offset 0: data runs past the end");
  ExpectError(ListError(Newc("a", 0100644, "", {{11, "00001000"}})), Code::kMalformed,
              "name runs past the end");
  ExpectError(ListError(Newc("a", 0100644, "").substr(0, 100)), Code::kMalformed,
              "header runs past the end");
}

TEST(ListCpioTest, RejectsAMissingTrailer) {
  Tree tree;
  ASSERT_TRUE(tree.Put("a", FileEntry("x")).has_value());
  const Bytes archive = Write(tree);
  ASSERT_EQ(archive.size(), 240U);
  // Everything but the 124-byte trailer (a view: GCC 12 warns falsely on a shrinking resize).
  ExpectError(ListError(AsString(ByteSpan(archive).first(116))), Code::kMalformed,
              "cpio entry 1 at offset 116: archive ends without a TRAILER!!! entry");
}

TEST(ListCpioTest, RejectsDotDotAndEmptyNames) {
  ExpectError(ListError(Newc("a/../../etc/passwd", 0100644, "") + Trailer()), Code::kMalformed,
              "\"..\" component");
  ExpectError(ListError(Newc("..", 040755, "") + Trailer()), Code::kMalformed, "\"..\"");
  ExpectError(ListError(Newc("", 0100644, "") + Trailer()), Code::kMalformed, "names the root");
}

TEST(ListCpioTest, EnforcesLimits) {
  const std::string archive =
      Newc("a", 040755, "") + Newc("a/b", 0100644, "") + Newc("c", 0120777, "a/b") + Trailer();
  EXPECT_TRUE(ListCpio(AsBytes(archive)).has_value());
  CpioLimits limits;
  limits.max_entries = 2;
  ExpectError(ListError(archive, limits), Code::kLimitExceeded,
              "cpio entry 2 \"c\" at offset 228: more than 2 entries");
  limits = {};
  limits.max_name = 2;
  ExpectError(ListError(archive, limits), Code::kLimitExceeded, "name of 3 bytes");
  limits = {};
  limits.max_link_target = 2;
  ExpectError(ListError(archive, limits), Code::kLimitExceeded, "symlink target of 3 bytes");
}

TEST(ListCpioTest, RejectsOtherStructuralProblems) {
  std::string bad_pad = Newc("ab", 0100644, "x") + Trailer();
  bad_pad[110 + 3] = 'z';  // the byte after "ab\0" pads the header to 4
  ExpectError(ListError(bad_pad), Code::kMalformed, "padding after the name is not zero");
  ExpectError(ListError(Newc("a", 0100644, "x") + Trailer() + "junk"), Code::kMalformed,
              "non-zero bytes after the trailer");
  ExpectError(ListError(Newc("./a", 0100644, "") + Newc("a", 0100644, "") + Trailer()),
              Code::kMalformed, "cpio entry 1 \"a\": duplicate of entry 0");
  ExpectError(ListError(Newc("s", 0140755, "") + Trailer()), Code::kMalformed,
              "unsupported file type");
  ExpectError(ListError(Newc("d", 040755, "x") + Trailer()), Code::kMalformed,
              "directory has data");
  ExpectError(ListError(Newc("l", 0120777, "") + Trailer()), Code::kMalformed,
              "symlink without a target");
  ExpectError(ListError(Newc("f", 0100644, "x", {{12, "00000001"}}) + Trailer()), Code::kMalformed,
              "check field is not 0");
  ExpectError(ListError(Newc("f", 0100644, "x", {{12, "00000001"}}, "070702") + Trailer()),
              Code::kMalformed, "data checksum mismatch");
  ExpectError(ListError(Newc("f", 0100644, "x") + Newc("TRAILER!!!", 0, "x")), Code::kMalformed,
              "trailer has data");
  ExpectError(ListError(Newc("f\x01\"", 0100644, "") + Newc("f\x01\"", 0100644, "") + Trailer()),
              Code::kMalformed, R"("f\x01\"")");
}

// ---------------------------------------------------------------------------------------------
// Diff

std::vector<CpioEntry> List(const Tree& tree) {
  Result<std::vector<CpioEntry>> r = ListCpio(Write(tree));
  EXPECT_TRUE(r.has_value());
  return r ? *r : std::vector<CpioEntry>{};
}

Tree SmallTree() {
  Tree tree;
  EXPECT_TRUE(tree.Put("bin/app", FileEntry("hello", 0755)).has_value());
  EXPECT_TRUE(tree.Put("etc/conf", FileEntry("a=1\n")).has_value());
  EXPECT_TRUE(tree.Put("lib", SymlinkEntry("usr/lib")).has_value());
  return tree;
}

TEST(DiffEntriesTest, IdenticalListingsHaveNoDifferences) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::vector<CpioEntry> listing = List(RichTree(dir));
  EXPECT_TRUE(DiffEntries(listing, listing).empty());
}

TEST(DiffEntriesTest, OneChangedByteIsContentDiffers) {
  Tree changed = SmallTree();
  ASSERT_TRUE(changed.Put("bin/app", FileEntry("hellp", 0755)).has_value());
  const std::vector<CpioEntry> expected = List(SmallTree());
  const std::vector<CpioEntry> actual = List(changed);
  const std::vector<EntryDiff> diffs = DiffEntries(expected, actual);
  ASSERT_EQ(diffs.size(), 1U);
  EXPECT_EQ(diffs[0].path, "bin/app");
  EXPECT_EQ(diffs[0].what, "content differs: 5 bytes, sha256 " +
                               HexEncode(Sha256Bytes(AsBytes("hello"))) + " != 5 bytes, sha256 " +
                               HexEncode(Sha256Bytes(AsBytes("hellp"))));
  ASSERT_NE(diffs[0].expected, nullptr);
  ASSERT_NE(diffs[0].actual, nullptr);
  EXPECT_EQ(diffs[0].expected->path, "bin/app");
}

TEST(DiffEntriesTest, ReportsModeOwnerTargetAndPresence) {
  Tree changed = SmallTree();
  Entry conf = FileEntry("a=1\n", 0755);
  conf.uid = 1000;
  ASSERT_TRUE(changed.Put("etc/conf", conf).has_value());
  ASSERT_TRUE(changed.Put("lib", SymlinkEntry("/usr/lib")).has_value());
  ASSERT_TRUE(changed.Put("etc/new", FileEntry("")).has_value());
  ASSERT_TRUE(changed.Remove("bin"));
  const std::vector<EntryDiff> diffs = DiffEntries(List(SmallTree()), List(changed));
  std::vector<std::string> got;
  got.reserve(diffs.size());
  for (const EntryDiff& d : diffs) {
    got.push_back(d.path + ": " + d.what);
  }
  EXPECT_EQ(got, (std::vector<std::string>{
                     "bin: only in expected",
                     "bin/app: only in expected",
                     "etc/conf: mode 0644 != 0755",
                     "etc/conf: owner 0:0 != 1000:0",
                     "etc/new: only in actual",
                     "lib: link target \"usr/lib\" != \"/usr/lib\"",
                 }));
  EXPECT_EQ(diffs[0].actual, nullptr);
  EXPECT_EQ(diffs[4].expected, nullptr);
}

TEST(DiffEntriesTest, ComparesHardLinksByGroupNotByStoredSize) {
  Tree linked;
  ASSERT_TRUE(linked.Put("a", FileEntry("same")).has_value());
  ASSERT_TRUE(linked.Put("b", HardLinkEntry("a")).has_value());
  Tree copies;
  ASSERT_TRUE(copies.Put("a", FileEntry("same")).has_value());
  ASSERT_TRUE(copies.Put("b", FileEntry("same")).has_value());
  const std::vector<EntryDiff> diffs = DiffEntries(List(linked), List(copies));
  ASSERT_EQ(diffs.size(), 2U);
  EXPECT_EQ(diffs[0].path, "a");
  EXPECT_EQ(diffs[0].what, "hard-link group \"a\" (2 names) != none");
  EXPECT_EQ(diffs[1].path, "b");
}

TEST(DiffEntriesTest, ReportsTypeAndDeviceChanges) {
  Tree a;
  Entry dev;
  dev.type = EntryType::kCharDevice;
  dev.rdev_major = 1;
  dev.rdev_minor = 3;
  ASSERT_TRUE(a.Put("dev/null", dev).has_value());
  ASSERT_TRUE(a.Put("x", FileEntry("")).has_value());
  Tree b;
  dev.rdev_minor = 5;
  ASSERT_TRUE(b.Put("dev/null", dev).has_value());
  ASSERT_TRUE(b.Put("x", DirEntry(0644)).has_value());
  std::vector<std::string> got;
  for (const EntryDiff& d : DiffEntries(List(a), List(b))) {
    got.push_back(d.path + ": " + d.what);
  }
  EXPECT_EQ(got,
            (std::vector<std::string>{"dev/null: device 1:3 != 1:5", "x: type file != directory"}));
}

}  // namespace
}  // namespace enclavia::image
