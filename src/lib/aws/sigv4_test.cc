// SPDX-License-Identifier: Apache-2.0
#include "lib/aws/sigv4.h"

#include <gtest/gtest.h>

namespace enclavia::aws {
namespace {

// The test inputs and expected values below are AWS's published examples: the Signature Version 4
// test suite (get-vanilla and friends: AKIDEXAMPLE, 20150830T123600Z, us-east-1, "service") and
// the S3 API reference's "GET Object" example (examplebucket, 20130524).
constexpr char kEmptyHash[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

Credentials SuiteCredentials() {
  return Credentials{"AKIDEXAMPLE",
                     crypto::SecretBytes(AsBytes("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")), ""};
}

Scope SuiteScope() { return Scope{"20150830T123600Z", "us-east-1", "service"}; }

SigningRequest SuiteRequest(std::string method, std::string path) {
  SigningRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  r.payload_hash = kEmptyHash;
  return r;
}

TEST(SigV4Test, GetVanillaMatchesTheTestSuite) {
  auto sig = Sign(SuiteCredentials(), SuiteScope(), SuiteRequest("GET", "/"));
  ASSERT_TRUE(sig) << sig.error().message();
  EXPECT_EQ(sig->canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n" +
                std::string(kEmptyHash));
  EXPECT_EQ(sig->string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(sig->authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Test, QueryParametersAreSortedAsInGetVanillaQueryOrderKeyCase) {
  SigningRequest r = SuiteRequest("GET", "/");
  r.query = {{"Param2", "value2"}, {"Param1", "value1"}};
  auto sig = Sign(SuiteCredentials(), SuiteScope(), r);
  ASSERT_TRUE(sig);
  EXPECT_NE(sig->canonical_request.find("\nParam1=value1&Param2=value2\n"), std::string::npos);
  EXPECT_EQ(sig->signature, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(SigV4Test, PostVanillaMatchesTheTestSuite) {
  auto sig = Sign(SuiteCredentials(), SuiteScope(), SuiteRequest("POST", "/"));
  ASSERT_TRUE(sig);
  EXPECT_EQ(sig->signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4Test, Utf8PathIsPercentEncodedAsInGetUtf8) {
  auto sig = Sign(SuiteCredentials(), SuiteScope(), SuiteRequest("GET", "/\xe1\x88\xb4"));
  ASSERT_TRUE(sig);
  EXPECT_EQ(sig->canonical_request.substr(0, 15), "GET\n/%E1%88%B4\n");
  EXPECT_EQ(sig->signature, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

TEST(SigV4Test, S3GetObjectExampleMatchesTheDocumentation) {
  Credentials creds{"AKIAIOSFODNN7EXAMPLE",
                    crypto::SecretBytes(AsBytes("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")), ""};
  SigningRequest r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", kEmptyHash},
               {"x-amz-date", "20130524T000000Z"}};
  r.payload_hash = kEmptyHash;
  auto sig = Sign(creds, Scope{"20130524T000000Z", "us-east-1", "s3"}, r);
  ASSERT_TRUE(sig);
  EXPECT_EQ(sig->canonical_request,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:" +
                std::string(kEmptyHash) +
                "\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n" +
                std::string(kEmptyHash));
  EXPECT_EQ(sig->string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(sig->signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, WrongSecretGivesADifferentSignature) {
  Credentials creds = SuiteCredentials();
  creds.secret_access_key = crypto::SecretBytes(AsBytes("not-the-secret"));
  auto sig = Sign(creds, SuiteScope(), SuiteRequest("GET", "/"));
  ASSERT_TRUE(sig);
  EXPECT_NE(sig->signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Test, UriEncodeFollowsAwsRules) {
  EXPECT_EQ(UriEncode("a-z_A.Z~09", false), "a-z_A.Z~09");
  EXPECT_EQ(UriEncode("a b/c+d=e*", false), "a%20b%2Fc%2Bd%3De%2A");
  EXPECT_EQ(UriEncode("dir/file name", true), "dir/file%20name");
  EXPECT_EQ(UriEncode("\xff", true), "%FF");
}

TEST(SigV4Test, CanonicalQueryEncodesAndSortsByName) {
  EXPECT_EQ(
      CanonicalQueryString({{"prefix", "a/b c"}, {"list-type", "2"}, {"continuation-token", ""}}),
      "continuation-token=&list-type=2&prefix=a%2Fb%20c");
}

TEST(SigV4Test, HeaderValuesAreTrimmedAndSpacesCollapsed) {
  SigningRequest r = SuiteRequest("GET", "/");
  r.headers.emplace_back("My-Header1", "  a   b   c  ");
  auto sig = Sign(SuiteCredentials(), SuiteScope(), r);
  ASSERT_TRUE(sig);
  EXPECT_NE(sig->canonical_request.find("\nmy-header1:a b c\n"), std::string::npos);
  EXPECT_EQ(sig->signed_headers, "host;my-header1;x-amz-date");
}

TEST(SigV4Test, RejectsInjectedHeadersAndMissingHost) {
  SigningRequest r = SuiteRequest("GET", "/");
  r.headers.emplace_back("X-Evil", "a\r\nInjected: yes");
  auto sig = Sign(SuiteCredentials(), SuiteScope(), r);
  ASSERT_FALSE(sig);
  EXPECT_EQ(sig.error().code(), Code::kInvalidArgument);

  SigningRequest no_host = SuiteRequest("GET", "/");
  no_host.headers.erase(no_host.headers.begin());
  EXPECT_FALSE(Sign(SuiteCredentials(), SuiteScope(), no_host));
  EXPECT_FALSE(
      Sign(SuiteCredentials(), Scope{"2015-08-30", "us-east-1", "s"}, SuiteRequest("GET", "/")));
}

TEST(SigV4Test, SignRequestAddsDateHashTokenAndAuthorization) {
  Credentials creds = SuiteCredentials();
  creds.session_token = "token/123";
  SigningRequest r;
  r.method = "PUT";
  r.path = "/bucket/key";
  r.headers = {{"Host", "127.0.0.1:4568"}};
  r.payload_hash = HexSha256(AsBytes("hello"));
  SystemTime t = FromUnixMillis(1440938160000);  // 2015-08-30T12:36:00Z.
  ASSERT_TRUE(SignRequest(creds, "us-east-1", "s3", t, r));
  auto find = [&](std::string_view name) -> std::string {
    for (const auto& [n, v] : r.headers) {
      if (n == name) {
        return v;
      }
    }
    return "";
  };
  EXPECT_EQ(find("X-Amz-Date"), "20150830T123600Z");
  EXPECT_EQ(find("X-Amz-Content-Sha256"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_EQ(find("X-Amz-Security-Token"), "token/123");
  std::string auth = find("Authorization");
  EXPECT_EQ(
      auth.rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, "
                 "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
                 "Signature=",
                 0),
      0u);
}

TEST(SigV4Test, FormatAmzDateIsUtc) {
  EXPECT_EQ(FormatAmzDate(FromUnixMillis(1369353600000)), "20130524T000000Z");
}

}  // namespace
}  // namespace enclavia::aws
