// SPDX-License-Identifier: Apache-2.0
#include "host/storage/directory_store.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <sys/resource.h>

#include "host/storage/storage_test_util.h"

namespace enclavia::host::testing {
namespace {

namespace fs = std::filesystem;

class DirectoryObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path() + "/objects";
    auto store = DirectoryObjectStore::Open(root_);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(store).value();
  }
  TempDir dir_;
  std::string root_;
  std::unique_ptr<DirectoryObjectStore> store_;
};

TEST_F(DirectoryObjectStoreTest, ObjectsAreFilesUnderTheRoot) {
  ASSERT_TRUE(store_->Put("seg/0001", AsBytes("data")));
  std::ifstream in(root_ + "/seg/0001");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "data");
  // No temporary file is left behind.
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(root_ + "/seg")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
}

TEST_F(DirectoryObjectStoreTest, SymlinkedObjectIsNeverFollowed) {
  std::string secret = dir_.path() + "/secret";
  std::ofstream(secret) << "host secret";
  fs::create_symlink(secret, root_ + "/evil");
  auto got = store_->Get("evil");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Code::kIo);
  EXPECT_NE(got.error().message().find("evil"), std::string::npos);
  EXPECT_TRUE(store_->List("")->empty());
}

TEST_F(DirectoryObjectStoreTest, SymlinkedDirectoryIsNeverFollowed) {
  std::string outside = dir_.path() + "/outside";
  fs::create_directory(outside);
  fs::create_directory_symlink(outside, root_ + "/d");
  auto put = store_->Put("d/x", AsBytes("escaped?"));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), Code::kIo);
  EXPECT_FALSE(fs::exists(outside + "/x"));
  EXPECT_FALSE(store_->Get("d/x"));
  EXPECT_TRUE(store_->List("")->empty());
}

TEST_F(DirectoryObjectStoreTest, FailedPutLeavesTheOldObjectAndNoTemporaryFile) {
  ASSERT_TRUE(store_->Put("obj", AsBytes("old")));
  // A file size limit makes the write of the new object fail half way (EFBIG).
  struct sigaction ignore {};
  struct sigaction old_action {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);
  rlimit old_limit{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit small = old_limit;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  Bytes big(1 << 20, 0x42);
  auto put = store_->Put("obj", big);
  setrlimit(RLIMIT_FSIZE, &old_limit);
  sigaction(SIGXFSZ, &old_action, nullptr);
  ASSERT_FALSE(put);
  EXPECT_NE(put.error().message().find("object obj"), std::string::npos);
  EXPECT_EQ(put.error().message().find('\n'), std::string::npos);
  EXPECT_EQ(*store_->Get("obj"), ToBytes("old"));
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(root_)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
}

TEST_F(DirectoryObjectStoreTest, ForeignFilesAreNotListed) {
  ASSERT_TRUE(store_->Put("ok", AsBytes("1")));
  std::ofstream(root_ + "/~tmp.deadbeef") << "half-written";
  std::ofstream(root_ + "/Not-Valid") << "foreign";
  EXPECT_EQ(*store_->List(""), (std::vector<std::string>{"ok"}));
}

TEST_F(DirectoryObjectStoreTest, ADirectoryInTheWayIsAnIoError) {
  fs::create_directories(root_ + "/taken/child");
  auto put = store_->Put("taken", AsBytes("x"));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), Code::kIo);
  auto get = store_->Get("taken");
  ASSERT_FALSE(get);
  EXPECT_EQ(get.error().code(), Code::kIo);
  EXPECT_TRUE(fs::is_directory(root_ + "/taken/child"));
}

TEST_F(DirectoryObjectStoreTest, OpenFailsClearlyWhenTheParentIsMissing) {
  auto store = DirectoryObjectStore::Open(dir_.path() + "/no/such/parent");
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), Code::kIo);
  EXPECT_NE(store.error().message().find("no/such/parent"), std::string::npos);
}

}  // namespace
}  // namespace enclavia::host::testing
