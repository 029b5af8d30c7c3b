// SPDX-License-Identifier: Apache-2.0
#include "lib/image/tree.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "lib/base/sink.h"
#include "lib/image/internal/test_util.h"

namespace enclavia::image {
namespace {

using testing::DirEntry;
using testing::FileEntry;
using testing::SymlinkEntry;

Entry File(std::string_view content, uint32_t mode = 0644) { return FileEntry(content, mode); }
Entry Dir(uint32_t mode = 0755) { return DirEntry(mode); }
Entry Link(std::string target) { return SymlinkEntry(std::move(target)); }

std::vector<std::string> Paths(const Tree& tree) {
  std::vector<std::string> out;
  for (const auto& [path, entry] : tree.entries()) {
    out.push_back(path);
  }
  return out;
}

TEST(NormalizePathTest, NormalizesSeparatorsAndDots) {
  EXPECT_EQ(*NormalizePath("./a//b/"), "a/b");
  EXPECT_EQ(*NormalizePath("/a/b"), "a/b");
  EXPECT_EQ(*NormalizePath("a/./b"), "a/b");
  EXPECT_EQ(*NormalizePath("a"), "a");
  EXPECT_EQ(*NormalizePath("..."), "...");
  EXPECT_EQ(*NormalizePath("a/.b/c."), "a/.b/c.");
}

TEST(NormalizePathTest, RejectsDotDotNulAndRoot) {
  for (std::string_view bad : {"..", "a/../b", "../a", "a/..", "", ".", "/", "./", "//.//"}) {
    Result<std::string> r = NormalizePath(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(NormalizePath(std::string_view("a\0b", 3)).has_value());
}

TEST(TreeTest, PutCreatesMissingParents) {
  Tree tree;
  ASSERT_TRUE(tree.Put("usr/lib/x/libc.so", File("elf")).has_value());
  EXPECT_EQ(Paths(tree),
            (std::vector<std::string>{"usr", "usr/lib", "usr/lib/x", "usr/lib/x/libc.so"}));
  const Entry* parent = tree.Find("usr/lib");
  ASSERT_NE(parent, nullptr);
  EXPECT_EQ(parent->type, EntryType::kDirectory);
  EXPECT_EQ(parent->mode, 0755U);
  EXPECT_EQ(parent->uid, 0U);
  EXPECT_EQ(parent->gid, 0U);
}

TEST(TreeTest, PutNormalizesAndReplaces) {
  Tree tree;
  ASSERT_TRUE(tree.Put("./etc//hosts", File("a")).has_value());
  ASSERT_TRUE(tree.Put("/etc/hosts", File("bb", 0600)).has_value());
  const Entry* hosts = tree.Find("etc/hosts");
  ASSERT_NE(hosts, nullptr);
  EXPECT_EQ(hosts->size, 2U);
  EXPECT_EQ(hosts->mode, 0600U);
  EXPECT_EQ(tree.Find("./etc/hosts"), hosts);
  EXPECT_EQ(tree.size(), 2U);
}

TEST(TreeTest, PutKeepsChildrenWhenReplacingDirectoryWithDirectory) {
  Tree tree;
  ASSERT_TRUE(tree.Put("d/f", File("x")).has_value());
  ASSERT_TRUE(tree.Put("d", Dir(0700)).has_value());
  EXPECT_NE(tree.Find("d/f"), nullptr);
  EXPECT_EQ(tree.Find("d")->mode, 0700U);
}

TEST(TreeTest, PutReplacingDirectoryWithFileRemovesItsContents) {
  Tree tree;
  ASSERT_TRUE(tree.Put("d/e/f", File("x")).has_value());
  ASSERT_TRUE(tree.Put("d-sibling", File("y")).has_value());
  ASSERT_TRUE(tree.Put("d", Link("/elsewhere")).has_value());
  EXPECT_EQ(Paths(tree), (std::vector<std::string>{"d", "d-sibling"}));
}

TEST(TreeTest, PutFailsUnderANonDirectoryAndOnBadPaths) {
  Tree tree;
  ASSERT_TRUE(tree.Put("bin", Link("usr/bin")).has_value());
  Result<void> r = tree.Put("bin/sh", File("x"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.error().message().find("bin"), std::string::npos);
  EXPECT_EQ(tree.size(), 1U);
  EXPECT_EQ(tree.Put("../x", File("x")).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(tree.Put("/", Dir()).error().code(), Code::kInvalidArgument);
}

TEST(TreeTest, RemoveDeletesTheSubtreeOnly) {
  Tree tree;
  ASSERT_TRUE(tree.Put("a/b/c", File("x")).has_value());
  ASSERT_TRUE(tree.Put("a/b-c", File("x")).has_value());
  ASSERT_TRUE(tree.Put("a/b0", File("x")).has_value());
  ASSERT_TRUE(tree.Put("a/bb", File("x")).has_value());
  EXPECT_TRUE(tree.Remove("a/b"));
  EXPECT_EQ(Paths(tree), (std::vector<std::string>{"a", "a/b-c", "a/b0", "a/bb"}));
  EXPECT_FALSE(tree.Remove("a/b"));
  EXPECT_FALSE(tree.Remove("../a"));
  EXPECT_TRUE(tree.Remove("/a/"));
  EXPECT_EQ(tree.size(), 0U);
}

TEST(TreeTest, RemoveChildrenKeepsTheDirectory) {
  Tree tree;
  ASSERT_TRUE(tree.Put("opaque/x/y", File("x")).has_value());
  ASSERT_TRUE(tree.Put("opaque/z", File("x")).has_value());
  ASSERT_TRUE(tree.Put("opaque2", File("x")).has_value());
  tree.RemoveChildren("opaque");
  EXPECT_EQ(Paths(tree), (std::vector<std::string>{"opaque", "opaque2"}));
  tree.RemoveChildren(".");
  EXPECT_EQ(tree.size(), 0U);
}

TEST(TreeTest, MergePutsEntriesUnderThePrefixAndRewritesHardLinks) {
  Tree layer;
  ASSERT_TRUE(layer.Put("bin/busybox", File("bb", 0755)).has_value());
  Entry link;
  link.type = EntryType::kFile;
  link.hardlink_to = "bin/busybox";
  ASSERT_TRUE(layer.Put("bin/sh", link).has_value());

  Tree tree;
  ASSERT_TRUE(tree.Put("app/bin", File("conflict")).has_value());
  ASSERT_TRUE(tree.Put("etc/passwd", File("root")).has_value());
  ASSERT_TRUE(tree.Merge(layer, "app").has_value());
  EXPECT_EQ(Paths(tree), (std::vector<std::string>{"app", "app/bin", "app/bin/busybox",
                                                   "app/bin/sh", "etc", "etc/passwd"}));
  EXPECT_EQ(tree.Find("app/bin")->type, EntryType::kDirectory);
  EXPECT_EQ(tree.Find("app/bin/sh")->hardlink_to, "app/bin/busybox");
  EXPECT_TRUE(tree.Validate().has_value());

  Tree root;
  ASSERT_TRUE(root.Merge(layer).has_value());
  EXPECT_EQ(root.Find("bin/sh")->hardlink_to, "bin/busybox");
}

TEST(TreeTest, ValidateCatchesADanglingHardLink) {
  Tree tree;
  ASSERT_TRUE(tree.Put("a", File("x")).has_value());
  Entry link;
  link.hardlink_to = "a";
  ASSERT_TRUE(tree.Put("b", link).has_value());
  EXPECT_TRUE(tree.Validate().has_value());
  ASSERT_TRUE(tree.Remove("a"));
  Result<void> r = tree.Validate();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_NE(r.error().message().find("b: hard link to missing \"a\""), std::string::npos)
      << r.error().message();
}

TEST(TreeTest, ValidateCatchesLinkChainsAndSizeMismatch) {
  Tree tree;
  ASSERT_TRUE(tree.Put("a", File("x")).has_value());
  Entry link;
  link.hardlink_to = "a";
  ASSERT_TRUE(tree.Put("b", link).has_value());
  link.hardlink_to = "b";
  ASSERT_TRUE(tree.Put("c", link).has_value());
  EXPECT_FALSE(tree.Validate().has_value());
  ASSERT_TRUE(tree.Remove("c"));
  tree.Find("a")->size = 7;
  EXPECT_FALSE(tree.Validate().has_value());
  tree.Find("a")->size = 1;
  ASSERT_TRUE(tree.Put("d", Link("")).has_value());
  EXPECT_FALSE(tree.Validate().has_value());
}

TEST(TreeTest, StreamContentWritesInMemoryBytes) {
  BytesSink sink;
  ASSERT_TRUE(StreamContent(File("hello"), sink).has_value());
  EXPECT_EQ(AsString(sink.bytes()), "hello");
}

TEST(TreeTest, StreamContentReadsAPathAndNoticesASizeChange) {
  testing::TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir / "f";
  const Bytes data = testing::PatternBytes(5 * 1024 * 1024 + 3);
  ASSERT_TRUE(testing::WriteTestFile(path, data));

  Entry entry;
  entry.content = PathContent{path};
  entry.size = data.size();
  BytesSink sink;
  ASSERT_TRUE(StreamContent(entry, sink).has_value());
  EXPECT_EQ(sink.bytes(), data);

  entry.size = data.size() + 1;
  BytesSink other;
  Result<void> r = StreamContent(entry, other);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.error().message().find(path), std::string::npos);

  entry.content = PathContent{path + ".missing"};
  EXPECT_EQ(StreamContent(entry, other).error().code(), Code::kIo);
}

}  // namespace
}  // namespace enclavia::image
