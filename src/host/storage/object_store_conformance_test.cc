// SPDX-License-Identifier: Apache-2.0
// One ObjectStore contract, run against every implementation: memory, directory, S3 (a real
// s3rver), and the enclave's RemoteObjectStore through the host's StorageService (over memory,
// a directory and S3).
#include <gtest/gtest.h>

#include "host/storage/storage_test_util.h"
#include "lib/crypto/random.h"

namespace enclavia::host::testing {
namespace {

template <typename Env>
class ObjectStoreConformanceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Env::SetUpSuite(); }
  static void TearDownTestSuite() { Env::TearDownSuite(); }
  void SetUp() override {
    env_ = std::make_unique<Env>();
    if (auto why = env_->SkipReason()) {
      GTEST_SKIP() << *why;
    }
  }
  storage::ObjectStore& store() { return env_->store(); }

  std::unique_ptr<Env> env_;
};

using Envs = ::testing::Types<MemoryEnv, DirectoryEnv, S3Env, RemoteEnv<MemoryEnv>,
                              RemoteEnv<DirectoryEnv>, RemoteEnv<S3Env>>;

class EnvNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if (std::is_same_v<T, MemoryEnv>)
      return "Memory";
    if (std::is_same_v<T, DirectoryEnv>)
      return "Directory";
    if (std::is_same_v<T, S3Env>)
      return "S3";
    if (std::is_same_v<T, RemoteEnv<MemoryEnv>>)
      return "RemoteMemory";
    if (std::is_same_v<T, RemoteEnv<DirectoryEnv>>)
      return "RemoteDirectory";
    return "RemoteS3";
  }
};
TYPED_TEST_SUITE(ObjectStoreConformanceTest, Envs, EnvNames);

TYPED_TEST(ObjectStoreConformanceTest, PutThenGetReturnsTheSameBytes) {
  Bytes big = crypto::RandomBytes(3 << 20);
  ASSERT_TRUE(this->store().Put("seg/000001", big));
  ASSERT_TRUE(this->store().Put("empty", {}));
  auto got = this->store().Get("seg/000001");
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, big);
  auto empty = this->store().Get("empty");
  ASSERT_TRUE(empty) << empty.error().message();
  EXPECT_TRUE(empty->empty());
}

TYPED_TEST(ObjectStoreConformanceTest, GetRangeReturnsTheSliceOrMalformed) {
  ASSERT_TRUE(this->store().Put("obj", AsBytes("0123456789")));
  auto mid = this->store().GetRange("obj", 3, 4);
  ASSERT_TRUE(mid) << mid.error().message();
  EXPECT_EQ(*mid, ToBytes("3456"));
  EXPECT_EQ(*this->store().GetRange("obj", 0, 10), ToBytes("0123456789"));
  auto at_end = this->store().GetRange("obj", 10, 0);
  ASSERT_TRUE(at_end) << at_end.error().message();
  EXPECT_TRUE(at_end->empty());
  for (auto [offset, length] : {std::pair<uint64_t, uint64_t>{8, 3}, {11, 0}, {20, 1}}) {
    auto r = this->store().GetRange("obj", offset, length);
    ASSERT_FALSE(r) << offset << "+" << length;
    EXPECT_EQ(r.error().code(), Code::kMalformed) << r.error().message();
  }
}

TYPED_TEST(ObjectStoreConformanceTest, MissingObjectsAreNotFoundAndDeletingThemSucceeds) {
  auto get = this->store().Get("nothing/here");
  ASSERT_FALSE(get);
  EXPECT_EQ(get.error().code(), Code::kNotFound);
  EXPECT_NE(get.error().message().find("nothing/here"), std::string::npos);
  auto range = this->store().GetRange("nothing", 0, 1);
  ASSERT_FALSE(range);
  EXPECT_EQ(range.error().code(), Code::kNotFound);
  EXPECT_TRUE(this->store().Delete("nothing/here"));
}

TYPED_TEST(ObjectStoreConformanceTest, PutOverwritesAndDeleteRemoves) {
  ASSERT_TRUE(this->store().Put("sb/0", AsBytes("old")));
  ASSERT_TRUE(this->store().Put("sb/0", AsBytes("newer")));
  EXPECT_EQ(*this->store().Get("sb/0"), ToBytes("newer"));
  ASSERT_TRUE(this->store().Delete("sb/0"));
  auto gone = this->store().Get("sb/0");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Code::kNotFound);
  EXPECT_TRUE(this->store().List("")->empty());
}

TYPED_TEST(ObjectStoreConformanceTest, ListIsSortedAndFilteredByPrefix) {
  for (const char* name : {"b", "a/b/c", "ab", "a/b2", "a/a", "c.d"}) {
    ASSERT_TRUE(this->store().Put(name, AsBytes(name)));
  }
  auto all = this->store().List("");
  ASSERT_TRUE(all) << all.error().message();
  EXPECT_EQ(*all, (std::vector<std::string>{"a/a", "a/b/c", "a/b2", "ab", "b", "c.d"}));
  EXPECT_EQ(*this->store().List("a/"), (std::vector<std::string>{"a/a", "a/b/c", "a/b2"}));
  EXPECT_EQ(*this->store().List("a/b"), (std::vector<std::string>{"a/b/c", "a/b2"}));
  EXPECT_EQ(*this->store().List("a"), (std::vector<std::string>{"a/a", "a/b/c", "a/b2", "ab"}));
  EXPECT_TRUE(this->store().List("zzz")->empty());
}

TYPED_TEST(ObjectStoreConformanceTest, ListPagesThroughMoreThanAThousandNames) {
  std::vector<std::string> expected;
  for (int i = 0; i < 1005; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "many/%05d", i);
    expected.emplace_back(name);
    ASSERT_TRUE(this->store().Put(name, AsBytes("x")));
  }
  ASSERT_TRUE(this->store().Put("other", AsBytes("y")));
  auto listed = this->store().List("many/");
  ASSERT_TRUE(listed) << listed.error().message();
  EXPECT_EQ(*listed, expected);
}

TYPED_TEST(ObjectStoreConformanceTest, InvalidNamesAreRefused) {
  for (std::string name : {std::string(), std::string("/a"), std::string("a/"), std::string("a//b"),
                           std::string(".."), std::string("a/../b"), std::string("./a"),
                           std::string("UPPER"), std::string("sp ace"), std::string(201, 'a')}) {
    auto put = this->store().Put(name, AsBytes("x"));
    ASSERT_FALSE(put) << name;
    EXPECT_EQ(put.error().code(), Code::kInvalidArgument) << name;
    EXPECT_EQ(this->store().Get(name).error().code(), Code::kInvalidArgument) << name;
    EXPECT_EQ(this->store().GetRange(name, 0, 1).error().code(), Code::kInvalidArgument) << name;
    EXPECT_EQ(this->store().Delete(name).error().code(), Code::kInvalidArgument) << name;
  }
}

TYPED_TEST(ObjectStoreConformanceTest, OversizedObjectsAreRefused) {
  Bytes too_big(storage::kMaxObjectSize + 1);
  auto put = this->store().Put("huge", too_big);
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), Code::kLimitExceeded);
  EXPECT_EQ(this->store().Get("huge").error().code(), Code::kNotFound);
}

}  // namespace
}  // namespace enclavia::host::testing
