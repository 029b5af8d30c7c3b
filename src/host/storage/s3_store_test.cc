// SPDX-License-Identifier: Apache-2.0
#include "host/storage/s3_store.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "host/storage/storage_test_util.h"

namespace enclavia::host::testing {
namespace {

TEST(S3ListParseTest, ReadsKeysTokensAndEntities) {
  auto page = ParseListPage(
      "<?xml version=\"1.0\"?><ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated>"
      "<Contents><Key>a&amp;b</Key><Size>1</Size></Contents>"
      "<Contents><Key>c&#x2F;d&#47;e</Key></Contents>"
      "<NextContinuationToken>tok&lt;1&gt;</NextContinuationToken></ListBucketResult>");
  ASSERT_TRUE(page) << page.error().message();
  EXPECT_EQ(page->keys, (std::vector<std::string>{"a&b", "c/d/e"}));
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_token, "tok<1>");
}

TEST(S3ListParseTest, RejectsBrokenDocuments) {
  EXPECT_FALSE(ParseListPage("<Error><Code>x</Code></Error>"));
  EXPECT_FALSE(ParseListPage("<ListBucketResult><Key>unterminated"));
  EXPECT_FALSE(ParseListPage("<ListBucketResult><Key>a&bogus;</Key></ListBucketResult>"));
  EXPECT_FALSE(
      ParseListPage("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"));
  EXPECT_FALSE(XmlUnescape("&#0;"));
  EXPECT_FALSE(XmlUnescape("&#x110000;"));
  EXPECT_FALSE(XmlUnescape("a & b"));
  EXPECT_EQ(*XmlUnescape("&quot;&apos;"), "\"'");
}

TEST(S3ObjectStoreTest, ConfigurationIsChecked) {
  S3Config config;
  config.endpoint = "ftp://x";
  config.bucket = "bucket";
  config.credentials = aws::Credentials{"a", crypto::SecretBytes(AsBytes("b")), ""};
  EXPECT_EQ(S3ObjectStore::Create(std::move(config)).error().code(), Code::kInvalidArgument);
  S3Config bad_bucket;
  bad_bucket.endpoint = "http://127.0.0.1:1";
  bad_bucket.bucket = "No_Such";
  bad_bucket.credentials = aws::Credentials{"a", crypto::SecretBytes(AsBytes("b")), ""};
  EXPECT_FALSE(S3ObjectStore::Create(std::move(bad_bucket)));
  S3Config bad_prefix;
  bad_prefix.endpoint = "http://127.0.0.1:1";
  bad_prefix.bucket = "bucket";
  bad_prefix.key_prefix = "no-slash";
  bad_prefix.credentials = aws::Credentials{"a", crypto::SecretBytes(AsBytes("b")), ""};
  EXPECT_FALSE(S3ObjectStore::Create(std::move(bad_prefix)));
}

TEST(S3ObjectStoreTest, UnreachableEndpointIsUnavailableAfterRetries) {
  // A port nobody listens on: bind one, note it, close it.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  S3Config config;
  config.endpoint = "http://127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  config.bucket = "bucket";
  config.credentials = aws::Credentials{"a", crypto::SecretBytes(AsBytes("b")), ""};
  config.max_attempts = 2;
  config.first_backoff = std::chrono::milliseconds(1);
  auto store = S3ObjectStore::Create(std::move(config));
  ASSERT_TRUE(store);
  auto got = (*store)->Get("x");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Code::kUnavailable);
  EXPECT_EQ(got.error().message().find('\n'), std::string::npos);
}

class S3ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = S3rver::Start();
    if (!server) {
      GTEST_SKIP() << server.error().message();
    }
    server_ = std::move(server).value();
  }
  std::unique_ptr<S3rver> server_;
};

TEST_F(S3ServerTest, WrongSecretIsAClearAuthenticationError) {
  S3Config config = server_->Config("");
  config.credentials = aws::Credentials{kS3AccessKey, crypto::SecretBytes(AsBytes("wrong")), ""};
  auto store = S3ObjectStore::Create(std::move(config));
  ASSERT_TRUE(store);
  auto put = (*store)->Put("x", AsBytes("v"));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code(), Code::kPolicyViolation);
  EXPECT_NE(put.error().message().find("SignatureDoesNotMatch"), std::string::npos)
      << put.error().message();
  EXPECT_NE(put.error().message().find("credentials were refused"), std::string::npos);
  EXPECT_EQ(put.error().message().find('\n'), std::string::npos);
}

TEST_F(S3ServerTest, UnknownAccessKeyIsAClearAuthenticationError) {
  S3Config config = server_->Config("");
  config.credentials = aws::Credentials{"NOBODY", crypto::SecretBytes(AsBytes(kS3Secret)), ""};
  config.transport = nullptr;  // Straight to s3rver, which knows only the S3RVER key.
  auto store = S3ObjectStore::Create(std::move(config));
  ASSERT_TRUE(store);
  auto got = (*store)->Get("x");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Code::kPolicyViolation);
  EXPECT_NE(got.error().message().find("InvalidAccessKeyId"), std::string::npos)
      << got.error().message();
}

TEST_F(S3ServerTest, KeyPrefixesKeepStoresApart) {
  auto a = S3ObjectStore::Create(server_->Config("vol-a/"));
  auto b = S3ObjectStore::Create(server_->Config("vol-b/"));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*a)->Put("sb", AsBytes("a")));
  ASSERT_TRUE((*b)->Put("sb", AsBytes("b")));
  EXPECT_EQ(*(*a)->Get("sb"), ToBytes("a"));
  EXPECT_EQ(*(*b)->Get("sb"), ToBytes("b"));
  EXPECT_EQ(*(*a)->List(""), (std::vector<std::string>{"sb"}));
  auto whole = S3ObjectStore::Create(server_->Config(""));
  ASSERT_TRUE(whole);
  EXPECT_EQ(*(*whole)->List("vol-"), (std::vector<std::string>{"vol-a/sb", "vol-b/sb"}));
}

TEST_F(S3ServerTest, MissingBucketIsAFailedPrecondition) {
  S3Config config = server_->Config("");
  config.bucket = "no-such-bucket";
  auto store = S3ObjectStore::Create(std::move(config));
  ASSERT_TRUE(store);
  auto got = (*store)->Get("x");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Code::kFailedPrecondition) << got.error().message();
  EXPECT_NE(got.error().message().find("no-such-bucket"), std::string::npos);
}

}  // namespace
}  // namespace enclavia::host::testing
