// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "lib/config/enclave_config.h"
#include "lib/config/enclaviafile.h"
#include "lib/config/lock.h"

namespace enclavia::config {
namespace {

constexpr std::string_view kHello = R"(
[image]
name = "hello"
version = "1"
[app]
rootfs = "rootfs"
cmd = ["/bin/hello", "--port", "8080"]
env = { GREETING = "hi" }
workdir = "/"
port = 8080
[kernel]
path = "vmlinuz"
cmdline = "console=ttyS0"
)";

TEST(Enclaviafile, ParsesTheIssueExample) {
  auto f = ParseEnclaviafile(kHello, "/src/hello");
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->name, "hello");
  EXPECT_EQ(f->version, "1");
  EXPECT_EQ(f->app.rootfs, "/src/hello/rootfs");
  EXPECT_TRUE(f->app.oci.empty());
  ASSERT_TRUE(f->app.cmd.has_value());
  EXPECT_EQ(*f->app.cmd, (std::vector<std::string>{"/bin/hello", "--port", "8080"}));
  EXPECT_EQ(f->app.env->at("GREETING"), "hi");
  EXPECT_EQ(f->app.port, 8080);
  EXPECT_EQ(f->kernel.source, KernelSource::kPath);
  EXPECT_EQ(f->kernel.path, "/src/hello/vmlinuz");
  EXPECT_EQ(f->kernel.cmdline, "console=ttyS0");
  EXPECT_EQ(f->eif.memory_mib, 1024u);
}

TEST(Enclaviafile, UnknownKeysAreNamed) {
  std::string text(kHello);
  text.replace(text.find("workdir"), 7, "wrkdir");
  auto f = ParseEnclaviafile(text, "/d");
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find("unknown key app.wrkdir"), std::string::npos)
      << f.error().message();
  EXPECT_NE(f.error().message().find("line 9"), std::string::npos) << f.error().message();

  auto top = ParseEnclaviafile(std::string(kHello) + "\n[network]\nx = 1\n", "/d");
  ASSERT_FALSE(top);
  EXPECT_NE(top.error().message().find("unknown key network"), std::string::npos);
}

TEST(Enclaviafile, KernelForms) {
  std::string base = R"([image]
name = "x"
[app]
oci = "/abs/image.tar"
port = 1
)";
  auto nitro = ParseEnclaviafile("kernel = \"nitro\"\n" + base, "/d");
  ASSERT_TRUE(nitro) << nitro.error().message();
  EXPECT_EQ(nitro->kernel.source, KernelSource::kNitro);
  EXPECT_EQ(nitro->app.oci, "/abs/image.tar");
  EXPECT_FALSE(nitro->app.cmd.has_value());
  auto def = ParseEnclaviafile(base, "/d");
  ASSERT_TRUE(def);
  EXPECT_EQ(def->kernel.source, KernelSource::kDebian);
  EXPECT_FALSE(def->kernel.cmdline.has_value());
  EXPECT_FALSE(ParseEnclaviafile("kernel = \"windows\"\n" + base, "/d"));
  EXPECT_FALSE(ParseEnclaviafile(base + "[kernel]\npath = \"a\"\nbuiltin = \"nitro\"\n", "/d"));
}

TEST(Enclaviafile, Rejects) {
  struct Case {
    std::string text;
    std::string message;
  } cases[] = {
      {"[app]\nrootfs='r'\ncmd=['/a']\nport=1\n", "missing section [image]"},
      {"[image]\nname='x'\n[app]\nrootfs='r'\noci='o'\ncmd=['/a']\nport=1\n", "exactly one"},
      {"[image]\nname='x'\n[app]\nrootfs='r'\nport=1\n", "missing key app.cmd"},
      {"[image]\nname='x'\n[app]\nrootfs='r'\ncmd=['a']\nport=1\n", "absolute path"},
      {"[image]\nname='x'\n[app]\nrootfs='r'\ncmd=['/a']\nport=70000\n", "app.port"},
      {"[image]\nname='x'\n[app]\nrootfs='r'\ncmd=['/a']\nport='80'\n", "app.port must be an integer"},
      {"[image]\nname='x'\n[app]\nrootfs='r'\ncmd=['/a']\n", "missing key app.port"},
      {"[image]\nname='x'\n[app]\nrootfs='r'\ncmd=['/a']\nport=1\nenv={A=1}\n", "app.env.A"},
      {"[image\nname='x'\n", "line 1"},
  };
  for (const auto& c : cases) {
    auto f = ParseEnclaviafile(c.text, "/d");
    ASSERT_FALSE(f) << c.text;
    EXPECT_NE(f.error().message().find(c.message), std::string::npos)
        << c.text << " -> " << f.error().message();
  }
}

TEST(EnclaveConfig, RoundTripsAndIsDeterministic) {
  EnclaveConfig c;
  c.name = "hello \"quoted\"";
  c.version = "1";
  c.app.cmd = {"/bin/hello", "--port", "8080", "tab\there"};
  c.app.env = {{"Z", "last"}, {"A", "first"}, {"WITH SPACE", "x\ny"}};
  c.app.workdir = "/srv";
  c.app.port = 8080;
  c.app.uid = 1000;
  c.app.gid = 100;
  std::string text = SerializeEnclaveConfig(c);
  EXPECT_EQ(text, SerializeEnclaveConfig(c));
  EXPECT_LT(text.find("A = "), text.find("Z = "));
  auto back = ParseEnclaveConfig(text);
  ASSERT_TRUE(back) << back.error().message() << "\n" << text;
  EXPECT_EQ(back->name, c.name);
  EXPECT_EQ(back->app.cmd, c.app.cmd);
  EXPECT_EQ(back->app.env, c.app.env);
  EXPECT_EQ(back->app.workdir, "/srv");
  EXPECT_EQ(back->app.port, 8080);
  EXPECT_EQ(back->app.uid, 1000u);
  EXPECT_EQ(back->app.gid, 100u);
}

TEST(EnclaveConfig, StrictInEverySection) {
  // [upgrade] is parsed here (upgrade_config_test.cc), strictly.
  EXPECT_FALSE(ParseEnclaveConfig(
      "version = 1\n[enclave]\nname='a'\n[app]\ncmd=['/a']\n[upgrade]\nanything=1\n"));
  // [egress] is parsed here (egress_config_test.cc), strictly.
  EXPECT_FALSE(ParseEnclaveConfig(
      "version = 1\n[enclave]\nname='a'\n[app]\ncmd=['/a']\n[egress]\nanything=1\n"));
  auto bad = ParseEnclaveConfig("version = 1\n[enclave]\nname='a'\n[app]\ncmd=['/a']\nfoo=1\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("unknown key app.foo"), std::string::npos);
  EXPECT_FALSE(ParseEnclaveConfig("version = 2\n[enclave]\n[app]\ncmd=['/a']\n"));
  EXPECT_FALSE(ParseEnclaveConfig("version = 1\n[enclave]\n[app]\ncmd=[]\n"));
}

TEST(EnclaveConfig, DefaultsAreUnprivilegedAndRestartOnFailure) {
  auto c = ParseEnclaveConfig("version = 1\n[enclave]\nname='a'\n[app]\ncmd=['/a']\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->app.uid, 65534u);
  EXPECT_EQ(c->app.gid, 65534u);
  EXPECT_EQ(c->app.restart, RestartPolicy::kOnFailure);
  EXPECT_EQ(c->app.restart_limit, 5u);
  auto root = ParseEnclaveConfig("version = 1\n[enclave]\nname='a'\n[app]\ncmd=['/a']\nuid=0\n");
  ASSERT_TRUE(root) << root.error().message();
  EXPECT_EQ(root->app.uid, 0u);  // Root only when asked for.
  EXPECT_EQ(root->app.gid, 65534u);
}

TEST(EnclaveConfig, RestartKeys) {
  const std::string base = "version = 1\n[enclave]\nname='a'\n[app]\ncmd=['/a']\n";
  for (auto [text, policy] : {std::pair{"always", RestartPolicy::kAlways},
                              std::pair{"never", RestartPolicy::kNever},
                              std::pair{"on-failure", RestartPolicy::kOnFailure}}) {
    EnclaveConfig c;
    c.app.cmd = {"/a"};
    c.app.restart = policy;
    c.app.restart_limit = 9;
    std::string serialized = SerializeEnclaveConfig(c);
    EXPECT_NE(serialized.find("restart = \"" + std::string(text) + "\"\nrestart_limit = 9\n"),
              std::string::npos)
        << serialized;
    auto back = ParseEnclaveConfig(serialized);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(back->app.restart, policy);
    EXPECT_EQ(back->app.restart_limit, 9u);
    EXPECT_EQ(SerializeEnclaveConfig(*back), serialized);
  }
  auto bad = ParseEnclaveConfig(base + "restart = 'sometimes'\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("app.restart must be"), std::string::npos)
      << bad.error().message();
  EXPECT_FALSE(ParseEnclaveConfig(base + "restart_limit = 0\n"));
  EXPECT_FALSE(ParseEnclaveConfig(base + "restart_limit = 1001\n"));
  EXPECT_FALSE(ParseEnclaveConfig(base + "restart = 1\n"));
}

TEST(Enclaviafile, RestartKeysAndDefaults) {
  auto plain = ParseEnclaviafile(kHello, "/d");
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_EQ(plain->app.restart, RestartPolicy::kOnFailure);
  EXPECT_EQ(plain->app.restart_limit, 5u);
  EXPECT_FALSE(plain->app.uid.has_value());
  std::string text(kHello);
  text.insert(text.find("[kernel]"), "restart = \"never\"\nrestart_limit = 2\n");
  auto f = ParseEnclaviafile(text, "/d");
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->app.restart, RestartPolicy::kNever);
  EXPECT_EQ(f->app.restart_limit, 2u);
  text.replace(text.find("\"never\""), 7, "\"twice\"");
  auto bad = ParseEnclaviafile(text, "/d");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("Enclaviafile: app.restart must be"), std::string::npos)
      << bad.error().message();
}

TEST(Lock, RoundTripAndDiff) {
  Lock lock;
  lock.source_date_epoch = 1700000000;
  lock.kernel_source = "debian";
  lock.kernel_sha256 = std::string(64, 'a');
  lock.toolchain = {{"compiler", "GNU 12.2.0"}, {"libc", "glibc 2.36"}};
  lock.runtime_files = {{"init", std::string(64, 'b')}};
  lock.app_source = "rootfs";
  lock.app_files = {{"bin/hello", std::string(64, 'c')}, {"etc/x y", std::string(64, 'd')}};
  std::string text = SerializeLock(lock);
  auto back = ParseLock(text);
  ASSERT_TRUE(back) << back.error().message() << "\n" << text;
  EXPECT_TRUE(DiffLocks(lock, *back).empty());
  EXPECT_EQ(SerializeLock(*back), text);

  Lock changed = *back;
  changed.app_files["bin/hello"] = std::string(64, 'e');
  changed.app_files["new"] = std::string(64, 'f');
  changed.kernel_sha256 = std::string(64, '0');
  auto diffs = DiffLocks(lock, changed);
  ASSERT_EQ(diffs.size(), 3u);
  EXPECT_NE(diffs[0].find("kernel: sha256 aaaaaaaaaaaa"), std::string::npos) << diffs[0];
  EXPECT_NE(diffs[1].find("app file bin/hello"), std::string::npos) << diffs[1];
  EXPECT_NE(diffs[2].find("app file new: new, not in the lock"), std::string::npos) << diffs[2];
}

TEST(Lock, OciAndLimits) {
  Lock lock;
  lock.app_source = "oci";
  lock.oci_config_digest = "sha256:" + std::string(64, '1');
  lock.oci_layers = {"sha256:" + std::string(64, '2'), "sha256:" + std::string(64, '3')};
  auto back = ParseLock(SerializeLock(lock));
  ASSERT_TRUE(back) << SerializeLock(lock);
  EXPECT_EQ(back->oci_layers, lock.oci_layers);
  Lock other = *back;
  other.oci_layers.pop_back();
  auto diffs = DiffLocks(lock, other);
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_NE(diffs[0].find("oci layer 2"), std::string::npos);

  Lock many;
  for (int i = 0; i < 50; ++i) {
    std::string name = "f";
    name += std::to_string(i);  // Not "f" + …: GCC 12 -O3 warns falsely (-Wrestrict).
    many.app_files[name] = "x";
  }
  auto capped = DiffLocks(Lock{}, many, 20);
  ASSERT_EQ(capped.size(), 21u);
  EXPECT_NE(capped.back().find("30 more"), std::string::npos);
  EXPECT_FALSE(ParseLock("version = 7\n"));
  EXPECT_FALSE(ParseLock("version = 1\n[app]\nsecret = 1\n"));
}

TEST(RuntimeManifest, Parses) {
  auto m = ParseRuntimeManifest(R"(
[toolchain]
compiler = "GNU 12.2.0"
[[file]]
path = "init"
source = "enclavia-init"
mode = 0o755
)");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->toolchain.at("compiler"), "GNU 12.2.0");
  ASSERT_EQ(m->files.size(), 1u);
  EXPECT_EQ(m->files[0].mode, 0755u);
  EXPECT_FALSE(ParseRuntimeManifest("[toolchain]\n"));
  EXPECT_FALSE(ParseRuntimeManifest("[[file]]\npath='a'\nsource='../x'\n"));
}

}  // namespace
}  // namespace enclavia::config

namespace enclavia::config {
namespace {

TEST(StorageSection, RoundTripsThroughEnclaviafileAndEnclaveToml) {
  const std::string pcr(96, 'a');
  const std::string key(64, 'b');
  std::string text = std::string(kHello) + "\n[storage]\npath = \"/var/lib/app\"\nrecovery_key = \"" +
                     key + "\"\nwitness_pcrs = { \"0\" = \"" + pcr + "\" }\n";
  auto file = ParseEnclaviafile(text, "/src/hello");
  ASSERT_TRUE(file) << file.error().message();
  EXPECT_TRUE(file->storage.enabled);
  EXPECT_EQ(file->storage.path, "/var/lib/app");
  EXPECT_EQ(file->storage.recovery_key, key);
  EXPECT_EQ(file->storage.witness_pcrs.at(0), pcr);

  EnclaveConfig c;
  c.name = "hello";
  c.version = "1";
  c.app.cmd = {"/bin/hello"};
  c.storage = file->storage;
  std::string toml = SerializeEnclaveConfig(c);
  auto back = ParseEnclaveConfig(toml);
  ASSERT_TRUE(back) << back.error().message() << "\n" << toml;
  EXPECT_TRUE(back->storage.enabled);
  EXPECT_EQ(back->storage.path, "/var/lib/app");
  EXPECT_EQ(back->storage.recovery_key, key);
  EXPECT_EQ(back->storage.witness_pcrs, file->storage.witness_pcrs);
  EXPECT_EQ(SerializeEnclaveConfig(*back), toml);

  // No [storage]: disabled, and nothing is written.
  c.storage = StorageConfig{};
  auto none = ParseEnclaveConfig(SerializeEnclaveConfig(c));
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->storage.enabled);
  EXPECT_EQ(SerializeEnclaveConfig(c).find("[storage]"), std::string::npos);
}

TEST(StorageSection, DefaultsAndRejects) {
  auto plain = ParseEnclaviafile(std::string(kHello) + "\n[storage]\n", "/d");
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_EQ(plain->storage.path, "/data");
  for (const char* bad : {"path = \"relative\"", "path = \"/\"", "path = \"/a/../b\"",
                          "path = \"/a/\"", "size = 3", "recovery_key = \"abc\"",
                          "witness_pcrs = { \"32\" = \"00\" }",
                          "witness_pcrs = { \"0\" = \"XYZ\" }"}) {
    auto f = ParseEnclaviafile(std::string(kHello) + "\n[storage]\n" + bad + "\n", "/d");
    ASSERT_FALSE(f) << bad;
    EXPECT_NE(f.error().message().find("storage"), std::string::npos) << f.error().message();
  }
}

}  // namespace
}  // namespace enclavia::config
