// SPDX-License-Identifier: Apache-2.0
#include "lib/storage/object_store.h"

#include <gtest/gtest.h>

namespace enclavia::storage {
namespace {

TEST(ValidObjectNameTest, AcceptsSafeRelativeNamesOnly) {
  EXPECT_TRUE(ValidObjectName("seg/0000000000000001"));
  EXPECT_TRUE(ValidObjectName("sb/00000000000000000042"));
  EXPECT_TRUE(ValidObjectName("key.blob"));
  for (const char* bad : {"", "/a", "a/", "a//b", "../a", "a/./b", "A", "a b", "a\\b", "a%2f"}) {
    EXPECT_FALSE(ValidObjectName(bad)) << bad;
  }
  EXPECT_FALSE(ValidObjectName(std::string(201, 'a')));
  EXPECT_TRUE(ValidObjectName(std::string(200, 'a')));
}

TEST(MemoryObjectStoreTest, PutGetRangeListDelete) {
  MemoryObjectStore store;
  ASSERT_TRUE(store.Put("seg/2", Bytes{1, 2, 3, 4}));
  ASSERT_TRUE(store.Put("seg/1", Bytes{9}));
  ASSERT_TRUE(store.Put("sb/1", Bytes{}));
  EXPECT_EQ(*store.Get("seg/2"), (Bytes{1, 2, 3, 4}));
  EXPECT_EQ(*store.GetRange("seg/2", 1, 2), (Bytes{2, 3}));
  EXPECT_EQ(store.GetRange("seg/2", 3, 2).error().code(), Code::kMalformed);
  EXPECT_EQ(store.Get("seg/3").error().code(), Code::kNotFound);
  EXPECT_EQ(*store.List("seg/"), (std::vector<std::string>{"seg/1", "seg/2"}));
  ASSERT_TRUE(store.Delete("seg/1"));
  ASSERT_TRUE(store.Delete("seg/1"));
  EXPECT_EQ(*store.List(""), (std::vector<std::string>{"sb/1", "seg/2"}));
  EXPECT_EQ(store.Put("../x", Bytes{}).error().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace enclavia::storage
