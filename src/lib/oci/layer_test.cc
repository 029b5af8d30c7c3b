// SPDX-License-Identifier: Apache-2.0
#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "lib/oci/import.h"
#include "lib/oci/test_archive.h"

namespace enclavia::oci {
namespace {

using testing::Describe;
using testing::Dir;
using ::testing::ElementsAre;
using testing::File;
using testing::Filter;
using testing::Hardlink;
using ::testing::HasSubstr;
using testing::Kind;
using testing::MakeTar;
using testing::Symlink;
using testing::TarEntry;

ImportOptions MemoryOptions() { return ImportOptions{}; }

// Apply applies layers in order to a fresh tree, failing the test on error.
image::Tree Apply(const std::vector<std::vector<TarEntry>>& layers,
                  const ImportOptions& options = MemoryOptions(),
                  std::vector<std::string>* warnings = nullptr) {
  image::Tree tree;
  for (const auto& layer : layers) {
    Result<void> r = ApplyLayer(MakeTar(layer), tree, options, warnings);
    EXPECT_TRUE(r.has_value()) << r.error().message();
  }
  return tree;
}

TEST(ApplyLayerTest, KeepsMetadataOfEveryEntryType) {
  std::vector<std::string> warnings;
  image::Tree tree =
      Apply({{Dir("./", 0700), Dir("./bin/", 0755), File("./bin/su", "su", 04755, 1000, 1001),
              File("/tmp-ish", "x", 01777), File("sgid", "", 02711, 0, 4294967295U),
              Symlink("abs", "/bin/su"), Symlink("rel", "../x/./y"), testing::Fifo("pipe")}},
            MemoryOptions(), &warnings);
  EXPECT_THAT(Describe(tree), ElementsAre("abs symlink 0777 0:0 -> /bin/su", "bin dir 0755 0:0",
                                          "bin/su file 4755 1000:1001 size=2 content=\"su\"",
                                          "pipe fifo 0644 0:0", "rel symlink 0777 0:0 -> ../x/./y",
                                          "sgid file 2711 0:4294967295 size=0 content=\"\"",
                                          "tmp-ish file 1777 0:0 size=1 content=\"x\""));
  EXPECT_TRUE(warnings.empty());
}

TEST(ApplyLayerTest, CreatesMissingParentDirectories) {
  image::Tree tree = Apply({{File("a/b/c", "x")}});
  EXPECT_THAT(Describe(tree), ElementsAre("a dir 0755 0:0", "a/b dir 0755 0:0",
                                          "a/b/c file 0644 0:0 size=1 content=\"x\""));
}

TEST(ApplyLayerTest, WhiteoutDeletesLowerFileAndDirectory) {
  image::Tree tree = Apply({{File("a", "1"), File("d/x", "2"), File("d/y", "3"), File("k", "4")},
                            {File(".wh.a", ""), File(".wh.d", ""), File(".wh.missing", "")}});
  EXPECT_THAT(Describe(tree), ElementsAre("k file 0644 0:0 size=1 content=\"4\""));
}

TEST(ApplyLayerTest, WhiteoutAppliesOnlyToLowerLayers) {
  // The layer re-creates "a" before its whiteout in tar order: the whiteout removes the lower
  // "a" only, and the new one stays (image-spec layer.md "Whiteouts").
  image::Tree tree = Apply({{File("a", "lower")}, {File("a", "upper"), File(".wh.a", "")}});
  EXPECT_THAT(Describe(tree), ElementsAre("a file 0644 0:0 size=5 content=\"upper\""));
}

TEST(ApplyLayerTest, OpaqueDirectoryHidesLowerContentOnly) {
  image::Tree tree =
      Apply({{Dir("d", 0755), File("d/old", "o"), File("d/sub/deep", "x"), File("e/keep", "k")},
             {Dir("d", 0700, 3, 4), File("d/new", "n"), File("d/.wh..wh..opq", "")}});
  EXPECT_THAT(Describe(tree),
              ElementsAre("d dir 0700 3:4", "d/new file 0644 0:0 size=1 content=\"n\"",
                          "e dir 0755 0:0", "e/keep file 0644 0:0 size=1 content=\"k\""));
}

TEST(ApplyLayerTest, OpaqueWhiteoutAtRootClearsLowerLayers) {
  image::Tree tree =
      Apply({{File("a", "1"), File("b/c", "2")}, {File(".wh..wh..opq", ""), File("z", "3")}});
  EXPECT_THAT(Describe(tree), ElementsAre("z file 0644 0:0 size=1 content=\"3\""));
}

TEST(ApplyLayerTest, WhiteoutFilesNeverAppear) {
  image::Tree tree =
      Apply({{File("d/.wh.x", ""), File("d/.wh..wh..opq", ""), File("d/.wh..wh.plnk", "")}});
  for (const auto& [path, entry] : tree.entries()) {
    EXPECT_EQ(path.find(".wh."), std::string::npos) << path;
  }
}

TEST(ApplyLayerTest, LaterEntryReplacesEarlierOne) {
  image::Tree tree = Apply({{File("a", "1"), File("a", "22", 0600)}, {File("a", "333", 0640)}});
  EXPECT_THAT(Describe(tree), ElementsAre("a file 0640 0:0 size=3 content=\"333\""));
}

TEST(ApplyLayerTest, FileReplacingDirectoryRemovesSubtree) {
  image::Tree tree = Apply({{File("d/x", "1"), File("d/y/z", "2")}, {File("d", "now a file")}});
  EXPECT_THAT(Describe(tree), ElementsAre("d file 0644 0:0 size=10 content=\"now a file\""));
}

TEST(ApplyLayerTest, DirectoryReplacingDirectoryKeepsChildren) {
  image::Tree tree = Apply({{Dir("d", 0755), File("d/x", "1")}, {Dir("d", 0711, 5, 6)}});
  EXPECT_THAT(Describe(tree),
              ElementsAre("d dir 0711 5:6", "d/x file 0644 0:0 size=1 content=\"1\""));
}

TEST(ApplyLayerTest, DirectoryReplacesFileAndSymlink) {
  image::Tree tree = Apply({{File("a", "1"), Symlink("b", "a")}, {Dir("a"), Dir("b", 0700)}});
  EXPECT_THAT(Describe(tree), ElementsAre("a dir 0755 0:0", "b dir 0700 0:0"));
}

TEST(ApplyLayerTest, RejectsDotDotComponents) {
  image::Tree tree;
  Result<void> r =
      ApplyLayer(MakeTar({File("a/../../etc/passwd", "x")}), tree, MemoryOptions(), nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kMalformed);
  EXPECT_THAT(r.error().message(), HasSubstr("a/../../etc/passwd"));
}

TEST(ApplyLayerTest, RejectsDotDotInHardLinkTarget) {
  image::Tree tree;
  Result<void> r =
      ApplyLayer(MakeTar({File("a", "x"), Hardlink("b", "../a")}), tree, MemoryOptions(), nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kMalformed);
}

TEST(ApplyLayerTest, DoesNotWriteThroughSymlinks) {
  image::Tree tree;
  ASSERT_TRUE(ApplyLayer(MakeTar({Symlink("lib", "usr/lib")}), tree, MemoryOptions(), nullptr));
  Result<void> r = ApplyLayer(MakeTar({File("lib/libc.so", "x")}), tree, MemoryOptions(), nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kUnsupported);
  EXPECT_THAT(r.error().message(), HasSubstr("lib/libc.so"));
  EXPECT_EQ(tree.Find("usr/lib/libc.so"), nullptr);
}

TEST(ApplyLayerTest, HardLinkSharesTargetContentAndMetadata) {
  image::Tree tree =
      Apply({{File("a", "data", 0750, 3, 4)}, {Hardlink("b", "a"), Hardlink("c", "b")}});
  // "c" links to a member; it is recorded against the group's leader.
  EXPECT_THAT(Describe(tree), ElementsAre("a file 0750 3:4 size=4 content=\"data\"",
                                          "b file 0750 3:4 size=4 content=\"data\" hardlink_to=a",
                                          "c file 0750 3:4 size=4 content=\"data\" hardlink_to=a"));
  EXPECT_TRUE(tree.Validate());
}

TEST(ApplyLayerTest, HardLinkToMissingTargetFails) {
  image::Tree tree;
  Result<void> r = ApplyLayer(MakeTar({Hardlink("b", "nope")}), tree, MemoryOptions(), nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kMalformed);
  EXPECT_THAT(r.error().message(), HasSubstr("\"b\""));
  EXPECT_THAT(r.error().message(), HasSubstr("nope"));
}

TEST(ApplyLayerTest, HardLinkToDirectoryOrItselfFails) {
  image::Tree tree;
  EXPECT_FALSE(ApplyLayer(MakeTar({Dir("d"), Hardlink("b", "d")}), tree, MemoryOptions(), nullptr));
  image::Tree tree2;
  EXPECT_FALSE(
      ApplyLayer(MakeTar({File("a", "x"), Hardlink("a", "a")}), tree2, MemoryOptions(), nullptr));
}

TEST(ApplyLayerTest, HardLinkMembersSurviveWhiteoutOfLeader) {
  image::Tree tree = Apply(
      {{File("a", "data", 0700), Hardlink("b", "a"), Hardlink("c", "a")}, {File(".wh.a", "")}});
  EXPECT_THAT(Describe(tree), ElementsAre("b file 0700 0:0 size=4 content=\"data\"",
                                          "c file 0700 0:0 size=4 content=\"data\" hardlink_to=b"));
  EXPECT_TRUE(tree.Validate());
}

TEST(ApplyLayerTest, HardLinkMembersSurviveReplacementOfLeader) {
  image::Tree tree = Apply({{File("d/a", "old"), Hardlink("x", "d/a")},
                            {File("d/a", "new")},
                            {File("d", "file now"), Hardlink("y", "x")}});
  EXPECT_THAT(Describe(tree), ElementsAre("d file 0644 0:0 size=8 content=\"file now\"",
                                          "x file 0644 0:0 size=3 content=\"old\"",
                                          "y file 0644 0:0 size=3 content=\"old\" hardlink_to=x"));
  EXPECT_TRUE(tree.Validate());
}

TEST(ApplyLayerTest, HardLinkMembersSurviveOpaqueDirectory) {
  image::Tree tree =
      Apply({{File("d/a", "v"), Hardlink("e/b", "d/a")}, {File("d/.wh..wh..opq", "")}});
  EXPECT_THAT(Describe(tree), ElementsAre("d dir 0755 0:0", "e dir 0755 0:0",
                                          "e/b file 0644 0:0 size=1 content=\"v\""));
  EXPECT_TRUE(tree.Validate());
}

TEST(ApplyLayerTest, ReplacingLeaderByLinkToItsMember) {
  // "a" (leader) is replaced by a link to its own member "b": b keeps the inode, a joins it.
  image::Tree tree = Apply({{File("a", "v"), Hardlink("b", "a")}, {Hardlink("a", "b")}});
  EXPECT_THAT(Describe(tree), ElementsAre("a file 0644 0:0 size=1 content=\"v\" hardlink_to=b",
                                          "b file 0644 0:0 size=1 content=\"v\""));
  EXPECT_TRUE(tree.Validate());
}

TEST(ApplyLayerTest, DropsUndeclaredDevicesWithWarning) {
  std::vector<std::string> warnings;
  image::Tree tree = Apply({{testing::Device(Kind::kCharDevice, "dev/null", 1, 3),
                             testing::Device(Kind::kBlockDevice, "dev/sda", 8, 0)}},
                           MemoryOptions(), &warnings);
  EXPECT_EQ(tree.size(), 0U);  // not even "dev": dropped entries create no parents
  EXPECT_THAT(warnings, ElementsAre(HasSubstr("\"dev/null\": character device 1:3 dropped"),
                                    HasSubstr("\"dev/sda\": block device 8:0 dropped")));
}

TEST(ApplyLayerTest, KeepsDeclaredDevices) {
  ImportOptions options;
  options.devices = {"/dev/null", "dev/sda"};
  std::vector<std::string> warnings;
  image::Tree tree = Apply({{testing::Device(Kind::kCharDevice, "dev/null", 1, 3),
                             testing::Device(Kind::kBlockDevice, "./dev/sda", 8, 0),
                             testing::Device(Kind::kCharDevice, "dev/zero", 1, 5)}},
                           options, &warnings);
  EXPECT_THAT(Describe(tree), ElementsAre("dev dir 0755 0:0", "dev/null chr 0666 0:0 rdev=1:3",
                                          "dev/sda blk 0666 0:0 rdev=8:0"));
  EXPECT_THAT(warnings, ElementsAre(HasSubstr("dev/zero")));
}

TEST(ApplyLayerTest, DropsExtendedAttributesWithWarning) {
  TarEntry ping = File("bin/ping", "ping", 0755);
  ping.xattrs = {{"security.capability", std::string("\x01\x00\x00\x02\x00\x20\x00\x00", 8)}};
  std::vector<std::string> warnings;
  image::Tree tree = Apply({{ping}}, MemoryOptions(), &warnings);
  EXPECT_THAT(Describe(tree),
              ElementsAre("bin dir 0755 0:0", "bin/ping file 0755 0:0 size=4 content=\"ping\""));
  EXPECT_THAT(warnings,
              ElementsAre("\"bin/ping\": extended attributes dropped: \"security.capability\""));
}

TEST(ApplyLayerTest, MaxEntriesExceeded) {
  ImportOptions options;
  options.max_entries = 3;
  image::Tree tree;
  Result<void> r = ApplyLayer(MakeTar({File("a", ""), File("b", ""), File("c", ""), File("d", "")}),
                              tree, options, nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded);
  // Implicit parent directories count too.
  image::Tree tree2;
  Result<void> r2 = ApplyLayer(MakeTar({File("a/b/c/d", "")}), tree2, options, nullptr);
  ASSERT_FALSE(r2.has_value());
  EXPECT_EQ(r2.error().code(), Code::kLimitExceeded);
}

TEST(ApplyLayerTest, MaxTotalBytesExceeded) {
  ImportOptions options;
  options.max_total_bytes = 4096;
  image::Tree tree;
  Result<void> r = ApplyLayer(MakeTar({File("big", std::string(8192, 'x'))}, Filter::kGzip), tree,
                              options, nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded);
}

TEST(ApplyLayerTest, ReadsGzipAndZstdLayers) {
  for (Filter f : {Filter::kNone, Filter::kGzip, Filter::kZstd}) {
    image::Tree tree;
    ASSERT_TRUE(ApplyLayer(MakeTar({File("a", "compressed?")}, f), tree, MemoryOptions(), nullptr));
    EXPECT_THAT(Describe(tree), ElementsAre("a file 0644 0:0 size=11 content=\"compressed?\""));
  }
}

TEST(ApplyLayerTest, AcceptsEmptyLayers) {
  // Docker's "empty layer" is an end-of-archive marker alone, usually gzip-compressed.
  image::Tree tree;
  EXPECT_TRUE(ApplyLayer(MakeTar({}), tree, MemoryOptions(), nullptr));
  EXPECT_TRUE(ApplyLayer(MakeTar({}, Filter::kGzip), tree, MemoryOptions(), nullptr));
  EXPECT_TRUE(ApplyLayer(Bytes(10240, 0), tree, MemoryOptions(), nullptr));
  EXPECT_EQ(tree.size(), 0U);
}

TEST(ApplyLayerTest, RejectsGarbageAndTruncation) {
  image::Tree tree;
  const Bytes garbage = ToBytes("this is not a tar stream at all");
  EXPECT_FALSE(ApplyLayer(garbage, tree, MemoryOptions(), nullptr));
  EXPECT_FALSE(ApplyLayer(ByteSpan(), tree, MemoryOptions(), nullptr));
  Bytes tar = MakeTar({File("a", std::string(5000, 'y'))});
  tar.resize(2048);
  Result<void> r = ApplyLayer(tar, tree, MemoryOptions(), nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kMalformed);
}

TEST(ApplyLayerTest, StagingDeduplicatesIdenticalContent) {
  const std::string staging = testing::MakeTempDir();
  ImportOptions options;
  options.staging_dir = staging;
  image::Tree tree =
      Apply({{File("a", "same"), File("b", "same", 0755), File("c", "other")}}, options);
  const auto* a = std::get_if<image::PathContent>(&tree.Find("a")->content);
  const auto* b = std::get_if<image::PathContent>(&tree.Find("b")->content);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->path, b->path);
  EXPECT_EQ(a->path, staging + "/" + testing::Sha256Hex(AsBytes("same")));
  std::vector<std::string> files;
  for (const auto& item : std::filesystem::directory_iterator(staging)) {
    files.push_back(item.path().filename().string());
    struct stat st {};
    ASSERT_EQ(::stat(item.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600U);
  }
  EXPECT_EQ(files.size(), 2U);
  EXPECT_THAT(Describe(tree), ElementsAre("a file 0644 0:0 size=4 content=\"same\"",
                                          "b file 0755 0:0 size=4 content=\"same\"",
                                          "c file 0644 0:0 size=5 content=\"other\""));
  std::filesystem::remove_all(staging);
}

TEST(ApplyLayerTest, KeepsNonAsciiAndLongNamesVerbatim) {
  const std::string long_name = "d/" + std::string(300, 'n');
  const std::string long_target = std::string(200, 't') + "/" + std::string(200, 'u');
  image::Tree tree = Apply({{File("caf\xc3\xa9/\xe2\x9c\x93.txt", "utf8"), File(long_name, "long"),
                             Symlink("link", long_target)}});
  ASSERT_TRUE(ApplyLayer(testing::MakeTarWithBinaryNames({File("raw\xff", "latin")}), tree,
                         MemoryOptions(), nullptr));
  ASSERT_NE(tree.Find("caf\xc3\xa9/\xe2\x9c\x93.txt"), nullptr);
  ASSERT_NE(tree.Find("raw\xff"), nullptr);
  ASSERT_NE(tree.Find(long_name), nullptr);
  ASSERT_NE(tree.Find("link"), nullptr);
  EXPECT_EQ(tree.Find("link")->link_target, long_target);
}

TEST(ApplyLayerTest, IgnoresRootEntryAndStripsLeadingSlashes) {
  image::Tree tree =
      Apply({{Dir("./"), Dir("/"), File("./a", "1"), File("/b", "2"), File(".//c//d", "3")}});
  EXPECT_THAT(Describe(tree), ElementsAre("a file 0644 0:0 size=1 content=\"1\"",
                                          "b file 0644 0:0 size=1 content=\"2\"", "c dir 0755 0:0",
                                          "c/d file 0644 0:0 size=1 content=\"3\""));
}

}  // namespace
}  // namespace enclavia::oci
