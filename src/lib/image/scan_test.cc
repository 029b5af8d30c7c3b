// SPDX-License-Identifier: Apache-2.0
#include "lib/image/scan.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "lib/base/sink.h"
#include "lib/image/cpio.h"
#include "lib/image/internal/test_util.h"

namespace enclavia::image {
namespace {

using testing::PatternBytes;
using testing::TempDir;
using testing::WriteTestFile;

std::string ErrorOf(const Result<Tree>& r) { return r ? std::string() : r.error().message(); }

TEST(ScanTest, NormalizesMetadata) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(::mkdir((dir / "bin").c_str(), 0700), 0);
  ASSERT_TRUE(WriteTestFile(dir / "bin/tool", "#!/bin/sh\n", 0710));
  ASSERT_TRUE(WriteTestFile(dir / "bin/suid", "x", 0644));
  ASSERT_EQ(::chmod((dir / "bin/suid").c_str(), 06755), 0);
  ASSERT_TRUE(WriteTestFile(dir / "data", PatternBytes(1234), 0600));
  ASSERT_EQ(::mkdir((dir / "tmp").c_str(), 0777), 0);
  ASSERT_EQ(::chmod((dir / "tmp").c_str(), 01777), 0);
  ASSERT_EQ(::symlink("../data", (dir / "bin/rel").c_str()), 0);
  ASSERT_EQ(::symlink("/nonexistent/abs", (dir / "abs").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);

  Result<Tree> tree = ScanDirectory(dir.path());
  ASSERT_TRUE(tree.has_value()) << ErrorOf(tree);
  std::vector<std::string> paths;
  for (const auto& [path, entry] : tree->entries()) {
    paths.push_back(path);
    EXPECT_EQ(entry.uid, 0U) << path;
    EXPECT_EQ(entry.gid, 0U) << path;
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"abs", "bin", "bin/rel", "bin/suid", "bin/tool",
                                             "data", "fifo", "tmp"}));
  EXPECT_EQ(tree->Find("bin")->mode, 0755U);
  EXPECT_EQ(tree->Find("bin/tool")->mode, 0755U);
  EXPECT_EQ(tree->Find("bin/suid")->mode, 0755U);
  EXPECT_EQ(tree->Find("data")->mode, 0644U);
  EXPECT_EQ(tree->Find("tmp")->mode, 0755U);
  EXPECT_EQ(tree->Find("fifo")->type, EntryType::kFifo);
  EXPECT_EQ(tree->Find("fifo")->mode, 0644U);
  EXPECT_EQ(tree->Find("bin/rel")->type, EntryType::kSymlink);
  EXPECT_EQ(tree->Find("bin/rel")->mode, 0777U);
  EXPECT_EQ(tree->Find("bin/rel")->link_target, "../data");
  EXPECT_EQ(tree->Find("abs")->link_target, "/nonexistent/abs");
  const Entry* data = tree->Find("data");
  EXPECT_EQ(data->size, 1234U);
  const auto* content = std::get_if<PathContent>(&data->content);
  ASSERT_NE(content, nullptr);
  EXPECT_EQ(content->path[0], '/');
  EXPECT_TRUE(content->path.ends_with("/data"));
  EXPECT_TRUE(tree->Validate().has_value());
}

TEST(ScanTest, DetectsHardLinksWithTheBytewiseFirstPathAsLeader) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(::mkdir((dir / "z").c_str(), 0755), 0);
  ASSERT_TRUE(WriteTestFile(dir / "z/orig", "shared"));
  ASSERT_EQ(::link((dir / "z/orig").c_str(), (dir / "b").c_str()), 0);
  ASSERT_EQ(::link((dir / "z/orig").c_str(), (dir / "a-link").c_str()), 0);
  ASSERT_TRUE(WriteTestFile(dir / "single", "one"));
  Result<Tree> tree = ScanDirectory(dir.path());
  ASSERT_TRUE(tree.has_value()) << ErrorOf(tree);
  EXPECT_EQ(tree->Find("a-link")->hardlink_to, "");
  EXPECT_EQ(tree->Find("b")->hardlink_to, "a-link");
  EXPECT_EQ(tree->Find("z/orig")->hardlink_to, "a-link");
  EXPECT_EQ(tree->Find("single")->hardlink_to, "");
}

TEST(ScanTest, DoesNotFollowSymlinksToDirectories) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(::mkdir((dir / "real").c_str(), 0755), 0);
  ASSERT_TRUE(WriteTestFile(dir / "real/x", "x"));
  ASSERT_EQ(::symlink("real", (dir / "link").c_str()), 0);
  ASSERT_EQ(::symlink("/", (dir / "root").c_str()), 0);
  Result<Tree> tree = ScanDirectory(dir.path());
  ASSERT_TRUE(tree.has_value()) << ErrorOf(tree);
  EXPECT_EQ(tree->size(), 4U);
  EXPECT_EQ(tree->Find("link")->type, EntryType::kSymlink);
  EXPECT_EQ(tree->Find("link/x"), nullptr);
  EXPECT_EQ(tree->Find("root")->link_target, "/");
}

TEST(ScanTest, RefusesSocketsNamingThePath) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(::mkdir((dir / "run").c_str(), 0755), 0);
  const std::string path = dir / "run/app.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  Result<Tree> tree = ScanDirectory(dir.path());
  ASSERT_FALSE(tree.has_value());
  EXPECT_EQ(tree.error().code(), Code::kUnsupported);
  EXPECT_NE(tree.error().message().find(path + ": is a socket"), std::string::npos)
      << tree.error().message();
}

TEST(ScanTest, DeviceNodesMustBeDeclared) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(::mkdir((dir / "dev").c_str(), 0755), 0);
  if (::mknod((dir / "dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
    GTEST_SKIP() << "mknod needs CAP_MKNOD: " << std::generic_category().message(errno);
  }
  ::chmod((dir / "dev/null").c_str(), 0666);
  Result<Tree> tree = ScanDirectory(dir.path());
  ASSERT_FALSE(tree.has_value());
  EXPECT_EQ(tree.error().code(), Code::kInvalidArgument);
  EXPECT_NE(tree.error().message().find(dir / "dev/null"), std::string::npos);

  ScanOptions options;
  options.devices = {"./dev/null"};
  tree = ScanDirectory(dir.path(), options);
  ASSERT_TRUE(tree.has_value()) << ErrorOf(tree);
  const Entry* null = tree->Find("dev/null");
  ASSERT_NE(null, nullptr);
  EXPECT_EQ(null->type, EntryType::kCharDevice);
  EXPECT_EQ(null->mode, 0666U);
  EXPECT_EQ(null->rdev_major, 1U);
  EXPECT_EQ(null->rdev_minor, 3U);

  options.devices = {"../dev/null"};
  EXPECT_EQ(ScanDirectory(dir.path(), options).error().code(), Code::kInvalidArgument);
}

TEST(ScanTest, MissingRootIsAnIoError) {
  Result<Tree> tree = ScanDirectory("/nonexistent/enclavia/rootfs");
  ASSERT_FALSE(tree.has_value());
  EXPECT_EQ(tree.error().code(), Code::kIo);
  EXPECT_NE(tree.error().message().find("/nonexistent/enclavia/rootfs"), std::string::npos);
}

TEST(ScanTest, UnreadableFilesAndDirectoriesAreIoErrors) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root reads everything; permission errors cannot be provoked";
  }
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(WriteTestFile(dir / "secret", "x", 0000));
  Result<Tree> tree = ScanDirectory(dir.path());
  ASSERT_FALSE(tree.has_value());
  EXPECT_EQ(tree.error().code(), Code::kIo);
  EXPECT_NE(tree.error().message().find(dir / "secret"), std::string::npos);
  ASSERT_EQ(::unlink((dir / "secret").c_str()), 0);
  ASSERT_EQ(::mkdir((dir / "closed").c_str(), 0000), 0);
  tree = ScanDirectory(dir.path());
  ASSERT_FALSE(tree.has_value());
  EXPECT_EQ(tree.error().code(), Code::kIo);
  EXPECT_NE(tree.error().message().find(dir / "closed"), std::string::npos);
}

// Populate creates the same logical tree in `root`, in one of two orders, from a child process
// with umask `mask`, with every mtime set to `mtime`.
void Populate(const std::string& root, mode_t mask, bool reverse, time_t mtime) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::umask(mask);
    std::vector<std::function<bool()>> steps = {
        [&] { return ::mkdir((root + "/etc").c_str(), 0777) == 0; },
        [&] { return ::mkdir((root + "/usr").c_str(), 0777) == 0; },
        [&] { return ::mkdir((root + "/usr/bin").c_str(), 0777) == 0; },
        [&] { return ::mkdir((root + "/usr/lib").c_str(), 0777) == 0; },
    };
    std::vector<std::function<bool()>> leaves = {
        [&] { return WriteTestFile(root + "/etc/hosts", "127.0.0.1 localhost\n", 0666); },
        [&] { return WriteTestFile(root + "/usr/bin/app", PatternBytes(300000), 0777); },
        [&] { return WriteTestFile(root + "/usr/lib/libx.so", PatternBytes(7000, 3), 0777); },
        [&] { return ::symlink("usr/bin", (root + "/bin").c_str()) == 0; },
        [&] { return ::mkfifo((root + "/usr/fifo").c_str(), 0666) == 0; },
        [&] { return WriteTestFile(root + "/empty", "", 0666); },
    };
    for (const auto& step : steps) {
      if (!step()) {
        ::_exit(1);
      }
    }
    if (reverse) {
      std::reverse(leaves.begin(), leaves.end());
    }
    for (const auto& leaf : leaves) {
      if (!leaf()) {
        ::_exit(1);
      }
    }
    // Hard links, created from either end.
    const std::string first = reverse ? "/usr/bin/app2" : "/usr/bin/app";
    const std::string second = reverse ? "/usr/bin/app" : "/usr/bin/app2";
    if (reverse && (::rename((root + "/usr/bin/app").c_str(), (root + first).c_str()) != 0)) {
      ::_exit(1);
    }
    if (::link((root + first).c_str(), (root + second).c_str()) != 0) {
      ::_exit(1);
    }
    // Let the owner read everything back, whatever the umask took away.
    for (const char* p : {"", "/etc", "/usr", "/usr/bin", "/usr/lib"}) {
      ::chmod((root + p).c_str(), 0700 | (mask == 0 ? 0777 : 0));
    }
    const std::array<timespec, 2> times = {{{mtime, 0}, {mtime, 0}}};
    for (const char* p : {"/etc/hosts", "/usr/bin/app", "/usr/lib/libx.so", "/bin", "/usr/fifo",
                          "/empty", "/etc", "/usr/bin", "/usr/lib", "/usr"}) {
      ::utimensat(AT_FDCWD, (root + p).c_str(), times.data(), AT_SYMLINK_NOFOLLOW);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "populating " << root;
}

Bytes ArchiveOf(const std::string& root) {
  Result<Tree> tree = ScanDirectory(root);
  EXPECT_TRUE(tree.has_value()) << ErrorOf(tree);
  BytesSink sink;
  EXPECT_TRUE(WriteCpio(*tree, {}, sink).has_value());
  return sink.Take();
}

TEST(ScanTest, ArchiveDoesNotDependOnUmaskOrderOrMtimes) {
  TempDir a;
  TempDir b;
  ASSERT_TRUE(a.ok() && b.ok());
  Populate(a.path(), 0, /*reverse=*/false, 1000000000);
  Populate(b.path(), 077, /*reverse=*/true, 1600000000);
  struct stat st {};
  ASSERT_EQ(::stat((b / "etc/hosts").c_str(), &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600U);  // the umask did apply
  const Bytes archive_a = ArchiveOf(a.path());
  const Bytes archive_b = ArchiveOf(b.path());
  ASSERT_FALSE(archive_a.empty());
  EXPECT_EQ(archive_a, archive_b);
  Result<std::vector<CpioEntry>> listing = ListCpio(archive_a);
  ASSERT_TRUE(listing.has_value());
  EXPECT_EQ(listing->size(), 11U);
}

}  // namespace
}  // namespace enclavia::image
