// SPDX-License-Identifier: Apache-2.0
#include "lib/oci/import.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lib/oci/test_archive.h"

namespace enclavia::oci {
namespace {

using testing::Dir;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using testing::File;
using testing::Filter;
using testing::Hardlink;
using ::testing::HasSubstr;
using testing::MakeTar;
using testing::Sha256Hex;
using testing::Symlink;
using testing::TarEntry;
using Json = nlohmann::json;

constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kOciConfig = "application/vnd.oci.image.config.v1+json";
constexpr const char* kLayerTar = "application/vnd.oci.image.layer.v1.tar";
constexpr const char* kLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

std::string Digest(ByteSpan data) { return "sha256:" + Sha256Hex(data); }
std::string Digest(const std::string& s) { return Digest(AsBytes(s)); }

// TestImage is an image's layers and config; the writers below lay it out on disk.
struct TestImage {
  std::vector<Bytes> blobs;  // as stored
  std::vector<std::string> media_types;
  std::vector<std::string> diff_ids;
  std::string architecture = "amd64";
};

void AddLayer(TestImage& image, const std::vector<TarEntry>& entries, Filter filter) {
  image.blobs.push_back(MakeTar(entries, filter));
  image.media_types.emplace_back(filter == Filter::kGzip ? kLayerGzip : kLayerTar);
  image.diff_ids.push_back(Digest(MakeTar(entries, Filter::kNone)));
}

std::string ConfigOf(const TestImage& image) {
  Json j;
  j["architecture"] = image.architecture;
  j["os"] = "linux";
  j["config"] = {{"Entrypoint", {"/bin/tool"}},
                 {"Cmd", {"--serve"}},
                 {"Env", {"PATH=/usr/bin:/bin", "A=b=c"}},
                 {"WorkingDir", "/opt/app"},
                 {"User", "1000:1000"},
                 {"Labels", nullptr}};
  j["rootfs"] = {{"type", "layers"}, {"diff_ids", image.diff_ids}};
  j["history"] = Json::array();
  return j.dump();
}

std::string ManifestOf(const TestImage& image) {
  const std::string config = ConfigOf(image);
  Json layers = Json::array();
  for (size_t i = 0; i < image.blobs.size(); ++i) {
    layers.push_back({{"mediaType", image.media_types[i]},
                      {"digest", Digest(image.blobs[i])},
                      {"size", image.blobs[i].size()}});
  }
  Json j = {
      {"schemaVersion", 2},
      {"mediaType", kOciManifest},
      {"config", {{"mediaType", kOciConfig}, {"digest", Digest(config)}, {"size", config.size()}}},
      {"layers", layers}};
  return j.dump();
}

// The image the import tests share: three layers, gzip, plain, gzip.
TestImage ThreeLayerImage() {
  TestImage image;
  AddLayer(image,
           {Dir("./"), Dir("bin/"), File("bin/tool", "tool-v1", 0755), Dir("data/", 0711),
            File("data/a.txt", "same"), File("data/b.txt", "same"), Dir("etc/"),
            File("etc/passwd", "root:x:0:0::/root:/bin/sh"), File("etc/remove-me", "bye", 0600),
            Dir("opt/"), Dir("opt/app/", 0750, 5, 6), File("opt/app/old.txt", "old"),
            File("opt/app/sub/deep.txt", "deep")},
           Filter::kGzip);
  AddLayer(
      image,
      {File("etc/.wh.remove-me", ""), Dir("opt/app/", 0770, 7, 8), File("opt/app/.wh..wh..opq", ""),
       File("opt/app/new.txt", "new", 0640), File("bin/tool", "tool-v2", 0755)},
      Filter::kNone);
  AddLayer(
      image,
      {Symlink("bin/sh", "/bin/busybox"), Symlink("usr/bin/tool", "../../bin/tool"),
       File("usr/lib/libx.so", "ELF-ish", 0755), Hardlink("usr/lib/libx.so.1", "usr/lib/libx.so"),
       File("bin/su", "su-binary", 04755, 1000, 1000)},
      Filter::kGzip);
  return image;
}

const std::vector<std::string>& ExpectedTree() {
  static const std::vector<std::string> expected = {
      "bin dir 0755 0:0",
      "bin/sh symlink 0777 0:0 -> /bin/busybox",
      "bin/su file 4755 1000:1000 size=9 content=\"su-binary\"",
      "bin/tool file 0755 0:0 size=7 content=\"tool-v2\"",
      "data dir 0711 0:0",
      "data/a.txt file 0644 0:0 size=4 content=\"same\"",
      "data/b.txt file 0644 0:0 size=4 content=\"same\"",
      "etc dir 0755 0:0",
      "etc/passwd file 0644 0:0 size=25 content=\"root:x:0:0::/root:/bin/sh\"",
      "opt dir 0755 0:0",
      "opt/app dir 0770 7:8",
      "opt/app/new.txt file 0640 0:0 size=3 content=\"new\"",
      "usr dir 0755 0:0",
      "usr/bin dir 0755 0:0",
      "usr/bin/tool symlink 0777 0:0 -> ../../bin/tool",
      "usr/lib dir 0755 0:0",
      "usr/lib/libx.so file 0755 0:0 size=7 content=\"ELF-ish\"",
      "usr/lib/libx.so.1 file 0755 0:0 size=7 content=\"ELF-ish\" hardlink_to=usr/lib/libx.so",
  };
  return expected;
}

void WriteString(const std::string& path, const std::string& s) {
  testing::WriteBytes(path, AsBytes(s));
}

std::string BlobPath(const std::string& dir, const std::string& digest) {
  return dir + "/blobs/sha256/" + digest.substr(7);
}

Json IndexEntry(const std::string& manifest, const char* type = kOciManifest) {
  return {{"mediaType", type}, {"digest", Digest(manifest)}, {"size", manifest.size()}};
}

// WriteBlobs writes the image's layers, config and manifest into dir/blobs and returns the
// manifest.
std::string WriteBlobs(const std::string& dir, const TestImage& image) {
  for (const Bytes& blob : image.blobs) {
    testing::WriteBytes(BlobPath(dir, Digest(blob)), blob);
  }
  const std::string config = ConfigOf(image);
  WriteString(BlobPath(dir, Digest(config)), config);
  std::string manifest = ManifestOf(image);
  WriteString(BlobPath(dir, Digest(manifest)), manifest);
  return manifest;
}

void WriteIndex(const std::string& dir, const Json& manifests) {
  WriteString(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  Json index = {{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", manifests}};
  WriteString(dir + "/index.json", index.dump());
}

// WriteOciLayout lays `image` out as an OCI image layout in `dir`.
void WriteOciLayout(const std::string& dir, const TestImage& image) {
  const std::string manifest = WriteBlobs(dir, image);
  Json entry = IndexEntry(manifest);
  entry["annotations"] = {{"org.opencontainers.image.ref.name", "latest"}};
  WriteIndex(dir, Json::array({entry}));
}

std::string AsText(const Bytes& b) { return std::string(AsString(b)); }

// DockerArchive returns the members of a `docker save` (pre-25) archive of `image`: layers are
// <id>/layer.tar, the config is <image id>.json.
std::vector<TarEntry> DockerArchive(const TestImage& image) {
  std::vector<TarEntry> members;
  const std::string config = ConfigOf(image);
  const std::string config_name = Sha256Hex(AsBytes(config)) + ".json";
  Json layers = Json::array();
  for (size_t i = 0; i < image.blobs.size(); ++i) {
    const std::string id = Sha256Hex(AsBytes("layer id " + std::to_string(i)));
    members.push_back(Dir(id + "/"));
    members.push_back(File(id + "/VERSION", "1.0"));
    members.push_back(File(id + "/layer.tar", AsText(image.blobs[i])));
    layers.push_back(id + "/layer.tar");
  }
  members.push_back(File(config_name, config));
  Json manifest = Json::array(
      {{{"Config", config_name}, {"RepoTags", {"example:latest"}}, {"Layers", layers}}});
  members.push_back(File("manifest.json", manifest.dump()));
  members.push_back(File("repositories", R"({"example":{"latest":"x"}})"));
  return members;
}

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir(); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  [[nodiscard]] std::string Path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

void ExpectImageConfig(const Image& image) {
  EXPECT_THAT(image.config.entrypoint, ElementsAre("/bin/tool"));
  EXPECT_THAT(image.config.cmd, ElementsAre("--serve"));
  EXPECT_THAT(image.config.env, ElementsAre("PATH=/usr/bin:/bin", "A=b=c"));
  EXPECT_EQ(image.config.workdir, "/opt/app");
  EXPECT_EQ(image.config.user, "1000:1000");
}

TEST_F(ImportTest, DockerArchiveWithThreeLayers) {
  const TestImage test = ThreeLayerImage();
  testing::WriteBytes(Path("image.tar"), MakeTar(DockerArchive(test)));
  Result<Image> image = ImportImage(Path("image.tar"), ImportOptions{});
  ASSERT_TRUE(image.has_value()) << image.error().message();
  EXPECT_EQ(image->format, "docker-archive");
  EXPECT_EQ(image->config_digest, Digest(ConfigOf(test)));
  EXPECT_EQ(image->manifest_digest, "");
  EXPECT_THAT(testing::Describe(image->tree), ElementsAreArray(ExpectedTree()));
  ASSERT_EQ(image->layers.size(), 3U);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(image->layers[i].digest, Digest(test.blobs[i]));
    EXPECT_EQ(image->layers[i].diff_id, test.diff_ids[i]);
    EXPECT_EQ(image->layers[i].size, test.blobs[i].size());
  }
  EXPECT_EQ(image->layers[0].media_type, "application/vnd.docker.image.rootfs.diff.tar.gzip");
  EXPECT_EQ(image->layers[1].media_type, "application/vnd.docker.image.rootfs.diff.tar");
  EXPECT_EQ(image->layers[1].digest, image->layers[1].diff_id);
  ExpectImageConfig(*image);
  EXPECT_TRUE(image->warnings.empty());
}

TEST_F(ImportTest, OciLayoutDirectoryAndTarballGiveTheSameTree) {
  const TestImage test = ThreeLayerImage();
  WriteOciLayout(Path("layout"), test);
  testing::WriteBytes(Path("layout.tar"), testing::TarDirectory(Path("layout")));

  for (const std::string& input : {Path("layout"), Path("layout.tar")}) {
    SCOPED_TRACE(input);
    Result<Image> image = ImportImage(input, ImportOptions{});
    ASSERT_TRUE(image.has_value()) << image.error().message();
    EXPECT_EQ(image->format, "oci-layout");
    EXPECT_EQ(image->manifest_digest, Digest(ManifestOf(test)));
    EXPECT_EQ(image->config_digest, Digest(ConfigOf(test)));
    EXPECT_THAT(testing::Describe(image->tree), ElementsAreArray(ExpectedTree()));
    ASSERT_EQ(image->layers.size(), 3U);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(image->layers[i].digest, Digest(test.blobs[i]));
      EXPECT_EQ(image->layers[i].diff_id, test.diff_ids[i]);
      EXPECT_EQ(image->layers[i].media_type, test.media_types[i]);
      EXPECT_EQ(image->layers[i].size, test.blobs[i].size());
    }
    ExpectImageConfig(*image);
  }
}

TEST_F(ImportTest, StagedImportLeavesOnlyContentAddressedFiles) {
  const TestImage test = ThreeLayerImage();
  WriteOciLayout(Path("layout"), test);
  // A gzip-compressed tarball of the layout, as `tar czf` would make.
  {
    std::vector<TarEntry> members;
    for (const auto& item : std::filesystem::recursive_directory_iterator(Path("layout"))) {
      if (item.is_regular_file()) {
        std::ifstream in(item.path(), std::ios::binary);
        std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        members.push_back(
            File(std::filesystem::relative(item.path(), Path("layout")).string(), data));
      }
    }
    testing::WriteBytes(Path("layout.tar.gz"), MakeTar(members, Filter::kGzip));
  }
  ImportOptions options;
  options.staging_dir = Path("staging");
  Result<Image> image = ImportImage(Path("layout.tar.gz"), options);
  ASSERT_TRUE(image.has_value()) << image.error().message();
  EXPECT_THAT(testing::Describe(image->tree), ElementsAreArray(ExpectedTree()));

  std::set<std::string> staged;
  for (const auto& item : std::filesystem::directory_iterator(Path("staging"))) {
    staged.insert(item.path().filename().string());
  }
  // One file per distinct content, named by its digest; no temporary files or directories.
  std::set<std::string> expected;
  for (const char* content : {"tool-v2", "same", "root:x:0:0::/root:/bin/sh", "new", "ELF-ish",
                              "su-binary", "tool-v1", "bye", "old", "deep"}) {
    expected.insert(Sha256Hex(AsBytes(content)));
  }
  EXPECT_EQ(staged, expected);
  const auto& a = std::get<image::PathContent>(image->tree.Find("data/a.txt")->content);
  const auto& b = std::get<image::PathContent>(image->tree.Find("data/b.txt")->content);
  EXPECT_EQ(a.path, b.path);
}

TEST_F(ImportTest, BlobDigestMismatchNamesTheBlob) {
  const TestImage test = ThreeLayerImage();
  WriteOciLayout(Path("layout"), test);
  const std::string layer = Digest(test.blobs[1]);
  // Same size, different bytes.
  Bytes tampered = test.blobs[1];
  tampered[600] ^= 1;
  testing::WriteBytes(BlobPath(Path("layout"), layer), tampered);
  Result<Image> image = ImportImage(Path("layout"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kVerifyFailed);
  EXPECT_THAT(image.error().message(), HasSubstr(layer));
}

TEST_F(ImportTest, ValidButDifferentLayerBlobIsDigestMismatch) {
  const TestImage test = ThreeLayerImage();
  WriteOciLayout(Path("layout"), test);
  const std::string layer = Digest(test.blobs[2]);
  testing::WriteBytes(BlobPath(Path("layout"), layer),
                      MakeTar({File("bin/su", "evil", 04755)}, Filter::kGzip));
  Result<Image> image = ImportImage(Path("layout"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kVerifyFailed);
  EXPECT_THAT(image.error().message(), HasSubstr(layer));
}

TEST_F(ImportTest, ConfigDigestMismatchNamesTheBlob) {
  const TestImage test = ThreeLayerImage();
  WriteOciLayout(Path("layout"), test);
  const std::string config = ConfigOf(test);
  std::string tampered = config;
  tampered[tampered.find("1000:1000")] = '0';
  WriteString(BlobPath(Path("layout"), Digest(config)), tampered);
  Result<Image> image = ImportImage(Path("layout"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kVerifyFailed);
  EXPECT_THAT(image.error().message(), HasSubstr(Digest(config)));
}

TEST_F(ImportTest, DiffIdMismatchFails) {
  TestImage test = ThreeLayerImage();
  test.diff_ids[2] = test.diff_ids[1];
  WriteOciLayout(Path("layout"), test);
  Result<Image> image = ImportImage(Path("layout"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kVerifyFailed);
  EXPECT_THAT(image.error().message(), HasSubstr("diff_id"));
  EXPECT_THAT(image.error().message(), HasSubstr(Digest(test.blobs[2])));

  testing::WriteBytes(Path("image.tar"), MakeTar(DockerArchive(test)));
  Result<Image> docker = ImportImage(Path("image.tar"), ImportOptions{});
  ASSERT_FALSE(docker.has_value());
  EXPECT_EQ(docker.error().code(), Code::kVerifyFailed);
}

TEST_F(ImportTest, MissingBlobIsNotFound) {
  const TestImage test = ThreeLayerImage();
  WriteOciLayout(Path("layout"), test);
  const std::string layer = Digest(test.blobs[0]);
  std::filesystem::remove(BlobPath(Path("layout"), layer));
  Result<Image> image = ImportImage(Path("layout"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kNotFound);
  EXPECT_THAT(image.error().message(), HasSubstr(layer));
}

TEST_F(ImportTest, FollowsSymlinksBetweenArchiveMembers) {
  TestImage test = ThreeLayerImage();
  std::vector<TarEntry> members = DockerArchive(test);
  // Store the first layer under another name and make its layer.tar a relative symlink to it.
  for (TarEntry& m : members) {
    if (m.path.size() > 10 && m.path.substr(m.path.size() - 10) == "/layer.tar") {
      TarEntry real = m;
      real.path = "shared/blob.tar";
      m = Symlink(m.path, "../shared/blob.tar");
      members.push_back(real);
      break;
    }
  }
  testing::WriteBytes(Path("image.tar"), MakeTar(members));
  Result<Image> image = ImportImage(Path("image.tar"), ImportOptions{});
  ASSERT_TRUE(image.has_value()) << image.error().message();
  EXPECT_THAT(testing::Describe(image->tree), ElementsAreArray(ExpectedTree()));
}

TEST_F(ImportTest, DockerConfigNamedByWrongDigestFails) {
  const TestImage test = ThreeLayerImage();
  std::vector<TarEntry> members = DockerArchive(test);
  for (TarEntry& m : members) {
    if (m.path.size() > 5 && m.path.substr(m.path.size() - 5) == ".json" &&
        m.path != "manifest.json") {
      m.data += " ";
    }
  }
  testing::WriteBytes(Path("image.tar"), MakeTar(members));
  Result<Image> image = ImportImage(Path("image.tar"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kVerifyFailed);
}

TEST_F(ImportTest, DockerArchiveWithSeveralImagesFails) {
  const TestImage test = ThreeLayerImage();
  std::vector<TarEntry> members = DockerArchive(test);
  for (TarEntry& m : members) {
    if (m.path == "manifest.json") {
      Json j = Json::parse(m.data);
      j.push_back(j[0]);
      m.data = j.dump();
    }
  }
  testing::WriteBytes(Path("image.tar"), MakeTar(members));
  Result<Image> image = ImportImage(Path("image.tar"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(image.error().message(), HasSubstr("lists 2 images"));
}

TEST_F(ImportTest, DockerArchiveWithOciIndexUsesTheIndex) {
  // docker 25+ writes an OCI layout and a manifest.json pointing into blobs/.
  const TestImage test = ThreeLayerImage();
  WriteOciLayout(Path("layout"), test);
  Json layers = Json::array();
  for (const Bytes& blob : test.blobs) {
    layers.push_back("blobs/sha256/" + Sha256Hex(blob));
  }
  Json manifest = Json::array({{{"Config", "blobs/sha256/" + Sha256Hex(AsBytes(ConfigOf(test)))},
                                {"RepoTags", {"example:latest"}},
                                {"Layers", layers}}});
  WriteString(Path("layout/manifest.json"), manifest.dump());
  testing::WriteBytes(Path("image.tar"), testing::TarDirectory(Path("layout")));
  Result<Image> image = ImportImage(Path("image.tar"), ImportOptions{});
  ASSERT_TRUE(image.has_value()) << image.error().message();
  EXPECT_EQ(image->format, "oci-layout");
  EXPECT_THAT(testing::Describe(image->tree), ElementsAreArray(ExpectedTree()));

  // Without the index, the same archive imports through manifest.json.
  std::filesystem::remove(Path("layout/index.json"));
  Result<Image> docker = ImportImage(Path("layout"), ImportOptions{});
  ASSERT_TRUE(docker.has_value()) << docker.error().message();
  EXPECT_EQ(docker->format, "docker-archive");
  EXPECT_THAT(testing::Describe(docker->tree), ElementsAreArray(ExpectedTree()));
}

TestImage SingleLayerImage(const std::string& arch) {
  TestImage image;
  image.architecture = arch;
  AddLayer(image, {File("arch", arch)}, Filter::kGzip);
  return image;
}

TEST_F(ImportTest, PicksThePlatformFromAnIndex) {
  const TestImage amd = SingleLayerImage("amd64");
  const TestImage arm = SingleLayerImage("arm64");
  const std::string dir = Path("layout");
  Json a = IndexEntry(WriteBlobs(dir, amd));
  a["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
  Json b = IndexEntry(WriteBlobs(dir, arm));
  b["platform"] = {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}};
  Json attestation = IndexEntry(WriteBlobs(dir, SingleLayerImage("unknown")));
  attestation["platform"] = {{"os", "unknown"}, {"architecture", "unknown"}};
  // Nest them in an image index, as `docker buildx --output type=oci` does.
  const std::string nested =
      Json{{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", {b, attestation, a}}}
          .dump();
  WriteString(BlobPath(dir, Digest(nested)), nested);
  WriteIndex(dir, Json::array({IndexEntry(nested, kOciIndex)}));

  Result<Image> image = ImportImage(dir, ImportOptions{});
  ASSERT_TRUE(image.has_value()) << image.error().message();
  EXPECT_THAT(testing::Describe(image->tree),
              ElementsAre("arch file 0644 0:0 size=5 content=\"amd64\""));
  EXPECT_EQ(image->manifest_digest, Digest(ManifestOf(amd)));

  ImportOptions options;
  options.platform = "linux/arm64";
  image = ImportImage(dir, options);
  ASSERT_TRUE(image.has_value()) << image.error().message();
  EXPECT_THAT(testing::Describe(image->tree),
              ElementsAre("arch file 0644 0:0 size=5 content=\"arm64\""));

  options.platform = "linux/s390x";
  image = ImportImage(dir, options);
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kNotFound);
  EXPECT_THAT(image.error().message(), HasSubstr("linux/arm64/v8"));

  options.platform = "amd64";
  image = ImportImage(dir, options);
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kInvalidArgument);
}

TEST_F(ImportTest, RejectsImageForAnotherArchitecture) {
  WriteOciLayout(Path("layout"), SingleLayerImage("arm64"));
  Result<Image> image = ImportImage(Path("layout"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kFailedPrecondition);
  EXPECT_THAT(image.error().message(), HasSubstr("linux/arm64"));
}

TEST_F(ImportTest, RejectsForeignLayers) {
  TestImage test = SingleLayerImage("amd64");
  test.media_types[0] = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
  WriteOciLayout(Path("layout"), test);
  Result<Image> image = ImportImage(Path("layout"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kUnsupported);

  test.media_types[0] = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
  WriteOciLayout(Path("layout2"), test);
  image = ImportImage(Path("layout2"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kUnsupported);
}

TEST_F(ImportTest, MaxLayersExceeded) {
  WriteOciLayout(Path("layout"), ThreeLayerImage());
  ImportOptions options;
  options.max_layers = 2;
  Result<Image> image = ImportImage(Path("layout"), options);
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kLimitExceeded);
}

TEST_F(ImportTest, MaxEntriesExceeded) {
  WriteOciLayout(Path("layout"), ThreeLayerImage());
  ImportOptions options;
  options.max_entries = 10;
  Result<Image> image = ImportImage(Path("layout"), options);
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kLimitExceeded);
}

TEST_F(ImportTest, WarningsNameTheLayer) {
  TestImage test;
  AddLayer(test, {testing::Device(testing::Kind::kCharDevice, "dev/kmsg", 1, 11)}, Filter::kNone);
  WriteOciLayout(Path("layout"), test);
  Result<Image> image = ImportImage(Path("layout"), ImportOptions{});
  ASSERT_TRUE(image.has_value()) << image.error().message();
  EXPECT_THAT(image->warnings, ElementsAre(HasSubstr("layer 0 (" + Digest(test.blobs[0]))));
}

TEST_F(ImportTest, RejectsDotDotInAnArchiveMember) {
  std::vector<TarEntry> members = DockerArchive(ThreeLayerImage());
  members.push_back(File("../escape", "x"));
  testing::WriteBytes(Path("image.tar"), MakeTar(members));
  Result<Image> image = ImportImage(Path("image.tar"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kMalformed);
  EXPECT_THAT(image.error().message(), HasSubstr("../escape"));
}

TEST_F(ImportTest, RejectsInputsThatAreNotImages) {
  std::filesystem::create_directories(Path("empty"));
  Result<Image> image = ImportImage(Path("empty"), ImportOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code(), Code::kMalformed);

  EXPECT_EQ(ImportImage(Path("missing"), ImportOptions{}).error().code(), Code::kNotFound);

  WriteString(Path("garbage.tar"), "not a tar file");
  EXPECT_EQ(ImportImage(Path("garbage.tar"), ImportOptions{}).error().code(), Code::kMalformed);

  WriteOciLayout(Path("layout"), SingleLayerImage("amd64"));
  WriteString(Path("layout/oci-layout"), R"({"imageLayoutVersion":"2.0.0"})");
  EXPECT_EQ(ImportImage(Path("layout"), ImportOptions{}).error().code(), Code::kUnsupported);
  WriteString(Path("layout/oci-layout"), R"({"imageLayoutVersion":"1.0.0"})");
  WriteString(Path("layout/index.json"), R"({"manifests": [{"digest": 5}]})");
  EXPECT_EQ(ImportImage(Path("layout"), ImportOptions{}).error().code(), Code::kMalformed);
  WriteString(Path("layout/index.json"),
              R"({"manifests": [{"digest": "sha256:../../../etc/passwd", "size": 1}]})");
  EXPECT_EQ(ImportImage(Path("layout"), ImportOptions{}).error().code(), Code::kMalformed);
}

}  // namespace
}  // namespace enclavia::oci
