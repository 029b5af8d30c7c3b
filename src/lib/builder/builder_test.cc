// SPDX-License-Identifier: Apache-2.0
#include "lib/builder/builder.h"
#include "lib/builder/image_config.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "lib/base/file.h"
#include "testing/temp_dir.h"

namespace enclavia::builder {
namespace {

constexpr std::string_view kAnchor =
    "; a test zone's anchor\n"
    "example. 3600 IN DS 12345 13 2 "
    "49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE49E6A9A2F0E2A1C4A4F0A1B2\n";

// Source is a minimal image source: a synthetic kernel and runtime, a one-file rootfs and an
// Enclaviafile whose [egress] section the test chooses.
class Source {
 public:
  Source() {
    Write("kernel/vmlinuz", std::string(4096, 'k'));
    Write("runtime/init", "#!/bin/sh\n");
    Write("runtime/runtime.toml",
          "[toolchain]\ncc = \"test\"\n\n[[file]]\npath = \"init\"\n"
          "source = \"init\"\nmode = 493\n");
    Write("src/rootfs/bin/hello", "hello\n");
    env_.runtime_dir = dir_.path() + "/runtime";
    env_.debian_kernel_dir = dir_.path() + "/kernel";
    env_.temp_dir = dir_.path();
    env_.source_date_epoch = 0;
  }

  void Write(const std::string& relative, std::string_view text) {
    std::string path = dir_.path() + "/" + relative;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  }

  void SetEgress(std::string_view section) {
    Write("src/Enclaviafile", std::string("[image]\nname = \"egress-test\"\nversion = \"1\"\n\n"
                                          "[app]\nrootfs = \"rootfs\"\ncmd = [\"/bin/hello\"]\n"
                                          "port = 8080\n")
                                  .append(section));
  }

  Result<BuildResult> Build(const std::string& output = "") {
    BuildRequest request;
    request.path = dir_.path() + "/src";
    request.output = output;
    request.lock_mode = LockMode::kUpdate;  // every test changes inputs on purpose
    return builder::Build(request, env_);
  }

  const std::string& path() const { return dir_.path(); }

 private:
  testing::TempDir dir_{"builder_test"};
  Environment env_;
};

constexpr std::string_view kEgressOn =
    "\n[egress]\nenabled = true\nresolvers = [\"192.0.2.53\"]\nallow = [\"api.example:443\"]\n"
    "trust_anchor = \"anchor.key\"\n";

TEST(BuilderEgressTest, BakesTheTrustAnchorIntoTheAppRamdisk) {
  Source src;
  src.Write("src/anchor.key", kAnchor);
  src.SetEgress(kEgressOn);
  auto built = src.Build();
  ASSERT_TRUE(built) << built.error().message();
  const image::Entry* anchor = built->app.Find(config::kTrustAnchorPath);
  ASSERT_NE(anchor, nullptr);
  EXPECT_EQ(anchor->type, image::EntryType::kFile);
  EXPECT_EQ(anchor->mode, 0644u);
  EXPECT_EQ(anchor->size, kAnchor.size());
  const auto* bytes = std::get_if<Bytes>(&anchor->content);
  ASSERT_NE(bytes, nullptr);
  EXPECT_EQ(AsString(*bytes), kAnchor);
  const image::Entry* dir = built->app.Find("etc/enclavia/egress");
  ASSERT_NE(dir, nullptr);
  EXPECT_EQ(dir->type, image::EntryType::kDirectory);
  EXPECT_TRUE(built->enclave_config.egress.enabled);
  EXPECT_EQ(built->enclave_config.egress.allow, (std::vector<std::string>{"api.example:443"}));
  // The lock pins the anchor like the application's files.
  EXPECT_EQ(built->lock.app_files.count(std::string(config::kTrustAnchorPath)), 1u);

  // The anchor is measured: another anchor, another PCR2 (and PCR0), same PCR1.
  src.Write("src/anchor.key", std::string(kAnchor).append("example. IN DNSKEY 257 3 13 AAAA\n"));
  auto other = src.Build();
  ASSERT_TRUE(other) << other.error().message();
  EXPECT_NE(other->measurements.pcr2, built->measurements.pcr2);
  EXPECT_NE(other->measurements.pcr0, built->measurements.pcr0);
  EXPECT_EQ(other->measurements.pcr1, built->measurements.pcr1);

  // Same inputs, same image.
  src.Write("src/anchor.key", kAnchor);
  auto again = src.Build();
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->measurements, built->measurements);
}

TEST(BuilderEgressTest, RefusesAMissingOrEmptyAnchorNamingIt) {
  Source src;
  src.SetEgress(kEgressOn);
  auto missing = src.Build();
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_EQ(missing.error().message(),
            "egress.trust_anchor: no such file: " + src.path() +
                "/src/anchor.key (install Debian's dns-root-data or set trust_anchor in [egress])");
  EXPECT_EQ(missing.error().message().find('\n'), std::string::npos);

  for (std::string_view bad :
       {std::string_view(""), std::string_view("; only a comment\n"),
        std::string_view("example. IN A 192.0.2.1\n"), std::string_view("example. IN DS\n"),
        std::string_view("garbage ; DS DNSKEY\n")}) {
    src.Write("src/anchor.key", bad);
    auto refused = src.Build();
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().message(),
              "egress.trust_anchor: " + src.path() + "/src/anchor.key holds no DS or DNSKEY record")
        << bad;
  }
}

TEST(BuilderEgressTest, ReadsDebiansRootKeyByDefault) {
  struct stat st {};
  if (::stat(std::string(config::kDefaultTrustAnchor).c_str(), &st) != 0) {
    GTEST_SKIP() << config::kDefaultTrustAnchor << " is missing (Debian package dns-root-data)";
  }
  Source src;
  src.SetEgress("\n[egress]\nenabled = true\nallow = [\"203.0.113.7:443\"]\n");
  auto built = src.Build();
  ASSERT_TRUE(built) << built.error().message();
  const image::Entry* anchor = built->app.Find(config::kTrustAnchorPath);
  ASSERT_NE(anchor, nullptr);
  EXPECT_EQ(anchor->size, static_cast<uint64_t>(st.st_size));
}

TEST(BuilderEgressTest, BakesNothingWithDnssecOffOrEgressDisabled) {
  Source src;
  // No anchor file exists: neither build may need one.
  src.SetEgress(
      "\n[egress]\nenabled = true\ndnssec = \"off\"\nallow = [\"203.0.113.7:443\"]\n"
      "trust_anchor = \"missing.key\"\n");
  auto off = src.Build();
  ASSERT_TRUE(off) << off.error().message();
  EXPECT_EQ(off->app.Find(config::kTrustAnchorPath), nullptr);
  EXPECT_EQ(off->enclave_config.egress.dnssec, egress::DnssecMode::kOff);

  src.SetEgress(
      "\n[egress]\nenabled = false\nallow = [\"203.0.113.7:443\"]\n"
      "trust_anchor = \"missing.key\"\n");
  auto disabled = src.Build();
  ASSERT_TRUE(disabled) << disabled.error().message();
  EXPECT_EQ(disabled->app.Find(config::kTrustAnchorPath), nullptr);
  EXPECT_EQ(disabled->app.Find("etc/enclavia/egress"), nullptr);
}

TEST(BuilderEgressTest, EgressOffLeavesTheImageAsBefore) {
  Source src;
  src.SetEgress("");
  auto plain = src.Build();
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_EQ(plain->app.Find("etc/enclavia/egress"), nullptr);
  std::string toml(AsString(std::get<Bytes>(plain->app.Find(config::kEnclaveConfigPath)->content)));
  EXPECT_EQ(toml.find("[egress]"), std::string::npos);
  // Only the rootfs and enclave.toml: nothing egress adds.
  std::vector<std::string> paths;
  for (const auto& [path, entry] : plain->app.entries()) {
    paths.push_back(path);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"bin", "bin/hello", "etc", "etc/enclavia",
                                             "etc/enclavia/enclave.toml"}));
  // A section that only states the defaults changes nothing: same configuration, same image.
  src.SetEgress("\n[egress]\nenabled = false\n");
  auto defaults = src.Build();
  ASSERT_TRUE(defaults) << defaults.error().message();
  EXPECT_EQ(defaults->measurements, plain->measurements);
  ASSERT_TRUE(WriteRamdisk(defaults->app, 0));
  EXPECT_EQ(WriteRamdisk(defaults->app, 0).value(), WriteRamdisk(plain->app, 0).value());
}

TEST(BuilderEgressTest, RefusesAnAppThatShipsItsOwnAnchor) {
  Source src;
  src.Write("src/anchor.key", kAnchor);
  src.Write("src/rootfs/etc/enclavia/egress/trust-anchor", kAnchor);
  src.SetEgress(kEgressOn);
  auto built = src.Build();
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message().find("must not contain /etc/enclavia/egress/trust-anchor"),
            std::string::npos)
      << built.error().message();
}

TEST(ImageConfigTest, ReadsTheMeasuredConfigurationBackOutOfTheEif) {
  Source src;
  src.Write("src/anchor.key", kAnchor);
  src.SetEgress(kEgressOn);
  std::string eif = src.path() + "/egress.eif";
  auto built = src.Build(eif);
  ASSERT_TRUE(built) << built.error().message();
  auto config = ReadImageConfig(eif);
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_TRUE(config->egress.enabled);
  EXPECT_EQ(config->egress, built->enclave_config.egress);
  EXPECT_EQ(config->app.cmd, built->enclave_config.app.cmd);

  src.SetEgress("");
  std::string plain = src.path() + "/plain.eif";
  ASSERT_TRUE(src.Build(plain));
  auto off = ReadImageConfig(plain);
  ASSERT_TRUE(off) << off.error().message();
  EXPECT_FALSE(off->egress.enabled);

  src.Write("junk.eif", "not an image");
  auto junk = ReadImageConfig(src.path() + "/junk.eif");
  ASSERT_FALSE(junk);
  EXPECT_NE(junk.error().message().find("junk.eif"), std::string::npos);
}

}  // namespace
}  // namespace enclavia::builder
