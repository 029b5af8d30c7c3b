// SPDX-License-Identifier: Apache-2.0
#include "lib/eif/metadata.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/eif/test_util.h"

namespace enclavia::eif {
namespace {

using ::testing::HasSubstr;

TEST(MetadataTest, EncodesExactlyAsSerdeJson) {
  // serde_json::to_vec(&EifIdentityInfo): struct fields in declaration order, compact, and the
  // serde_json::Value members with sorted keys.
  EXPECT_EQ(AsString(EncodeMetadata(testing::SampleIdentity())),
            R"({"ImageName":"hello","ImageVersion":"1.0","BuildMetadata":{)"
            R"("BuildTime":"1970-01-01T00:00:00+00:00","BuildTool":"enclavia",)"
            R"("BuildToolVersion":"0.1.0","OperatingSystem":"Linux","KernelVersion":"6.1.0"},)"
            R"("DockerInfo":{"a":[true,null],"b":1},"CustomMetadata":{"Enclavia":{"Port":8080}}})");
  IdentityInfo empty;
  EXPECT_EQ(AsString(EncodeMetadata(empty)),
            R"({"ImageName":"","ImageVersion":"","BuildMetadata":{"BuildTime":"","BuildTool":"",)"
            R"("BuildToolVersion":"","OperatingSystem":"","KernelVersion":""},)"
            R"("DockerInfo":null,"CustomMetadata":null})");
}

TEST(MetadataTest, EscapesStringsAsSerdeJson) {
  IdentityInfo info;
  // serde_json escapes " \ and control characters (short forms where JSON has them, else
  // \u00xx in lowercase); DEL, '/' and non-ASCII stay raw.
  info.image_name = "a\"b\\c\n\t\r\b\f\x01\x1f\x7f/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  info.custom_metadata_json = " { \"z\" : \"\\u00e9\\/\" , \"Z\": 1.5, \"a\": 2 } ";
  std::string out(AsString(EncodeMetadata(info)));
  EXPECT_THAT(out, HasSubstr(R"("ImageName":"a\"b\\c\n\t\r\b\f\u0001\u001f)"
                             "\x7f/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""));
  EXPECT_THAT(out, HasSubstr("\"CustomMetadata\":{\"Z\":1.5,\"a\":2,\"z\":\"\xc3\xa9/\"}}"));
}

TEST(MetadataTest, DecodesWhatItEncodes) {
  IdentityInfo info = testing::SampleIdentity();
  auto decoded = DecodeMetadata(EncodeMetadata(info));
  ASSERT_TRUE(decoded) << decoded.error().message();
  info.docker_info_json = R"({"a":[true,null],"b":1})";
  EXPECT_EQ(*decoded, info);
}

TEST(MetadataTest, DecodeIgnoresUnknownMembersAndWhitespace) {
  auto decoded = DecodeMetadata(AsBytes(
      " \n{\"Extra\": [1, 2], \"ImageName\": \"n\", \"ImageVersion\": \"v\", \"BuildMetadata\": "
      "{\"BuildTime\": \"t\", \"BuildTool\": \"b\", \"BuildToolVersion\": \"1\", "
      "\"OperatingSystem\": \"o\", \"KernelVersion\": \"k\", \"More\": 1}, \"DockerInfo\": "
      "{\"x\": {\"y\": 1, \"x\": 2}}, \"CustomMetadata\": \"s\"}\r\n"));
  ASSERT_TRUE(decoded) << decoded.error().message();
  EXPECT_EQ(decoded->image_name, "n");
  EXPECT_EQ(decoded->kernel_version, "k");
  EXPECT_EQ(decoded->docker_info_json, R"({"x":{"x":2,"y":1}})");
  EXPECT_EQ(decoded->custom_metadata_json, R"("s")");
}

TEST(MetadataTest, DecodeIsStrict) {
  std::string good(AsString(EncodeMetadata(testing::SampleIdentity())));
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  struct Case {
    std::string json;
    const char* message;
  };
  std::vector<Case> cases = {
      {"", "invalid JSON"},
      {"[]", "not a JSON object"},
      {good + "x", "invalid JSON near byte"},
      {"\xef\xbb\xbf" + good, "byte order mark"},
      {replace("\"ImageName\":\"hello\",", ""), "missing ImageName"},
      {replace("\"hello\"", "1"), "ImageName is not a string"},
      {replace("\"1.0\"", "null"), "ImageVersion is not a string"},
      {replace("\"BuildTool\":\"enclavia\",", ""), "missing BuildMetadata.BuildTool"},
      {replace("\"Linux\"", "[]"), "BuildMetadata.OperatingSystem is not a string"},
      {replace(",\"DockerInfo\":{\"a\":[true,null],\"b\":1}", ""), "missing DockerInfo"},
      {replace(",\"CustomMetadata\":{\"Enclavia\":{\"Port\":8080}}", ""), "missing CustomMetadata"},
      {replace("{\"ImageName\"", "{\"ImageName\":\"x\",\"ImageName\""),
       "duplicate member ImageName"},
      {replace("\"KernelVersion\"", "\"BuildTime\":\"y\",\"KernelVersion\""),
       "duplicate member BuildMetadata.BuildTime"},
      {replace("\"hello\"", "\"\xff\""), "invalid JSON"},
      {replace("8080", "1e999"), "invalid JSON"},  // serde_json refuses it too.
      {replace("8080", std::string(200, '[') + std::string(200, ']')), "nested more than 128"},
      {replace("8080", "/* c */ 1"), "invalid JSON"},
  };
  for (const Case& c : cases) {
    auto r = DecodeMetadata(AsBytes(c.json));
    ASSERT_FALSE(r) << c.json;
    EXPECT_EQ(r.error().code(), Code::kMalformed) << c.json;
    EXPECT_THAT(r.error().message(), HasSubstr(c.message)) << c.json;
    EXPECT_EQ(r.error().message().rfind("eif: metadata: ", 0), 0u) << r.error().message();
  }
  // Duplicates of members we do not know, or inside DockerInfo, are serde_json's business.
  EXPECT_TRUE(DecodeMetadata(AsBytes(replace("{\"ImageName\"", "{\"X\":1,\"X\":2,\"ImageName\""))));
}

TEST(MetadataTest, ValidateIdentityNamesTheBadMember) {
  IdentityInfo info = testing::SampleIdentity();
  EXPECT_TRUE(ValidateIdentity(info));
  info.docker_info_json = "{";
  auto r = ValidateIdentity(info);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("DockerInfo is not valid JSON"));
  info = testing::SampleIdentity();
  info.image_version = "\xc3";
  r = ValidateIdentity(info);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("ImageVersion is not UTF-8"));
  info = testing::SampleIdentity();
  info.custom_metadata_json = "";
  r = ValidateIdentity(info);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("CustomMetadata is not valid JSON"));
}

}  // namespace
}  // namespace enclavia::eif
