// SPDX-License-Identifier: Apache-2.0
// LocalProvider and enclavia-sandbox with real processes: test images whose /init is
// tests/tools/sandbox_probe.cc, booted into namespaces as root. Tests that need root and
// namespaces skip (with the reason) where they are not available.
#include "host/launcher/local_provider.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "host/launcher/sandbox.h"
#include "lib/config/names.h"
#include "lib/attestation/verifier.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/base/sink.h"
#include "lib/crypto/random.h"
#include "lib/crypto/x509.h"
#include "lib/eif/reader.h"
#include "lib/eif/test_util.h"
#include "lib/eif/writer.h"
#include "lib/image/cpio.h"
#include "lib/image/tree.h"
#include "lib/transport/transport.h"

namespace enclavia::host {
namespace {

namespace fs = std::filesystem;
using eif::testing::TempDir;

// NamespacesAvailable reports why booting cannot be tested here, or "" if it can.
std::string CannotBoot() {
  if (::geteuid() != 0) {
    return "needs root (namespaces, mounts, cgroups)";
  }
  if (!ENCLAVIA_PROBE_STATIC) {
    return "the probe is not linked statically in this build (sanitizers)";
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::_exit(::unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) ==
                    0
                ? 0
                : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return "unshare of mount/PID/network/IPC/UTS namespaces fails here";
  }
  return "";
}

#define REQUIRE_BOOT()                              \
  do {                                              \
    std::string why = CannotBoot();                 \
    if (!why.empty()) {                             \
      GTEST_SKIP() << "sandbox boot test: " << why; \
    }                                               \
  } while (false)

Bytes Cpio(const image::Tree& tree) {
  BytesSink sink;
  auto written = image::WriteCpio(tree, {}, sink);
  ENCLAVIA_CHECK(written.has_value());
  return sink.Take();
}

// RawCpio writes a newc archive of regular files by hand, without the parent directory entries a
// Tree would add, the way a hostile image could.
Bytes RawCpio(const std::vector<std::pair<std::string, std::string>>& files) {
  Bytes out;
  auto pad = [&out] {
    while (out.size() % 4 != 0) {
      out.push_back(0);
    }
  };
  auto entry = [&](const std::string& name, const std::string& data, uint32_t mode, uint32_t ino) {
    char header[111];
    std::snprintf(header, sizeof(header),
                  "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino, mode, 0U, 0U,
                  1U, 0U, static_cast<unsigned>(data.size()), 0U, 0U, 0U, 0U,
                  static_cast<unsigned>(name.size() + 1), 0U);
    out.insert(out.end(), header, header + 110);
    out.insert(out.end(), name.begin(), name.end());
    out.push_back(0);
    pad();
    out.insert(out.end(), data.begin(), data.end());
    pad();
  };
  uint32_t ino = 1;
  for (const auto& [name, data] : files) {
    entry(name, data, 0100644, ino++);
  }
  entry("TRAILER!!!", "", 0, 0);
  return out;
}

image::Entry File(std::string content, uint32_t mode = 0644) {
  image::Entry e;
  e.type = image::EntryType::kFile;
  e.mode = mode;
  e.size = content.size();
  e.content = Bytes(content.begin(), content.end());
  return e;
}

image::Entry Symlink(const std::string& target) {
  image::Entry e;
  e.type = image::EntryType::kSymlink;
  e.mode = 0777;
  e.link_target = target;
  return e;
}

// ProbeImage is an EIF whose ramdisk 1 holds the probe as /init and ramdisk 2 the "app".
struct ProbeImage {
  std::string path;
  eif::Measurements measurements;
};

class LocalProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    marker_ = dir_.File("host-marker");
    eif::testing::WriteAll(marker_, Bytes{'x'});
    // A host loopback listener the enclave must not reach.
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(listener_, 4), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  void TearDown() override {
    if (provider_) {
      if (auto all = provider_->List()) {
        for (const EnclaveInfo& e : *all) {
          (void)provider_->Terminate(e.name, 0);
        }
      }
    }
    ::close(listener_);
  }

  LocalProviderOptions Options() const {
    return {dir_.File("host"), dir_.File("nsm"), ENCLAVIA_SANDBOX_BINARY};
  }
  LocalProvider& Provider() {
    if (!provider_) {
      auto p = LocalProvider::Create(Options());
      ENCLAVIA_CHECK(p.has_value());
      provider_ = std::move(p).value();
    }
    return *provider_;
  }

  image::Tree RuntimeTree() const {
    image::Tree tree;
    image::Entry init;
    init.type = image::EntryType::kFile;
    init.mode = 0755;
    init.size = fs::file_size(ENCLAVIA_SANDBOX_PROBE);
    init.content = image::PathContent{ENCLAVIA_SANDBOX_PROBE};
    ENCLAVIA_CHECK(tree.Put("init", init).has_value());
    ENCLAVIA_CHECK(
        tree.Put("probe.conf", File("marker=" + marker_ + "\nport=" + std::to_string(port_) + "\n"))
            .has_value());
    ENCLAVIA_CHECK(tree.Put("version", File("runtime\n")).has_value());
    return tree;
  }

  ProbeImage Build(const std::string& file, const image::Tree& ramdisk1,
                   const image::Tree& ramdisk2) const {
    return Build(file, Cpio(ramdisk1), Cpio(ramdisk2));
  }
  ProbeImage Build(const std::string& file, Bytes ramdisk1, Bytes ramdisk2) const {
    eif::testing::TestImage image;
    image.kernel = eif::testing::Random(4096, 1);
    image.cmdline = "console=ttyS0";
    image.ramdisks = {std::move(ramdisk1), std::move(ramdisk2)};
    eif::ImageSpec spec = image.Spec();
    ProbeImage out;
    out.path = dir_.File(file);
    auto m = eif::WriteEif(spec, out.path);
    ENCLAVIA_CHECK(m.has_value());
    out.measurements = *m;
    return out;
  }

  ProbeImage ProbeEif() const {
    image::Tree app;
    ENCLAVIA_CHECK(app.Put("version", File("app\n")).has_value());
    ENCLAVIA_CHECK(app.Put("app/hello.txt", File("hi\n")).has_value());
    image::Entry dev;
    dev.type = image::EntryType::kCharDevice;
    dev.mode = 0666;
    dev.rdev_major = 1;
    dev.rdev_minor = 3;
    ENCLAVIA_CHECK(app.Put("app/null", dev).has_value());  // Skipped: the sandbox owns /dev.
    return Build("probe.eif", RuntimeTree(), app);
  }

  // Ask sends one command to the probe on vsock port 5000 and returns its answer up to `until`
  // (a line), or what came before the connection closed.
  static std::string Ask(const EnclaveInfo& info, const std::string& command,
                         const std::string& until = "") {
    std::string path = transport::HostToEnclave(info.endpoint, transport::kIngressPort).host;
    int fd = -1;
    for (int i = 0; i < 500; ++i) {  // The probe binds its socket right after it starts.
      fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::memcpy(addr.sun_path, path.data(), path.size());
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        break;
      }
      ::close(fd);
      fd = -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (fd < 0) {
      return "<no connection to " + path + ">";
    }
    timeval timeout{.tv_sec = 20, .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    std::string line = command + "\n";
    (void)!::write(fd, line.data(), line.size());
    std::string answer;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) {
        break;
      }
      answer.append(buf, static_cast<size_t>(n));
      if (until.empty() ? answer.ends_with("\n") : answer.ends_with(until + "\n")) {
        break;
      }
    }
    ::close(fd);
    return answer;
  }

  static std::map<std::string, std::string> Facts(const EnclaveInfo& info) {
    std::map<std::string, std::string> facts;
    std::istringstream in(Ask(info, "facts", "end"));
    std::string line;
    while (std::getline(in, line)) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) {
        facts[line.substr(0, eq)] = line.substr(eq + 1);
      }
    }
    return facts;
  }

  Result<attestation::VerifiedAttestation> AttestAndVerify(const EnclaveInfo& info,
                                                           attestation::TrustPolicy policy) const {
    Bytes nonce = crypto::RandomBytes(16);
    std::string answer = Ask(info, "attest " + HexEncode(nonce));
    if (!answer.starts_with("doc ")) {
      return Error(Code::kInternal, "probe: " + answer);
    }
    auto doc = HexDecode(answer.substr(4, answer.size() - 5));
    ENCLAVIA_CHECK(doc.has_value());
    auto pem = ReadFile(dir_.File("nsm") + "/root.pem", 1 << 20);
    ENCLAVIA_CHECK(pem.has_value());
    auto roots = crypto::Certificate::AllFromPem(
        std::string_view(reinterpret_cast<const char*>(pem->data()), pem->size()));
    ENCLAVIA_CHECK(roots.has_value());
    auto verifier = attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, *roots);
    ENCLAVIA_CHECK(verifier.has_value());
    policy.expected_nonce = nonce;
    return verifier->Verify(*doc, std::chrono::system_clock::now(), policy);
  }

  std::string InstanceId() const {
    std::ifstream in(dir_.File("host") + "/instance-id");
    std::string id;
    std::getline(in, id);
    return id;
  }

  // WaitStopped polls until the enclave is reported stopped (up to 10 s).
  EnclaveInfo WaitStopped(const std::string& name) {
    for (int i = 0; i < 1000; ++i) {
      auto info = Provider().Describe(name);
      ENCLAVIA_CHECK(info.has_value());
      if (info->state == EnclaveState::kStopped) {
        return *info;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return *Provider().Describe(name);
  }

  static bool MountedUnder(const std::string& dir) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(" " + dir) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  // NOLINTBEGIN(misc-non-private-member-variables-in-classes)
  TempDir dir_;
  std::string marker_;
  int listener_ = -1;
  int port_ = 0;
  std::unique_ptr<LocalProvider> provider_;
  // NOLINTEND(misc-non-private-member-variables-in-classes)
};

TEST_F(LocalProviderTest, BootsTheImageIsolatedAndAttestsItsPcrs) {
  REQUIRE_BOOT();
  ProbeImage image = ProbeEif();
  auto info = Provider().Launch({.name = "web", .eif_path = image.path, .debug = false,
                                 .cpus = 1, .memory_mib = 128});
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->state, EnclaveState::kRunning);
  EXPECT_TRUE(info->id.starts_with("local-web-")) << info->id;
  EXPECT_EQ(info->endpoint.local_dir, Provider().EnclaveDir("web") + "/vsock");
  EXPECT_EQ(info->pcrs[0], HexEncode(image.measurements.pcr0));
  EXPECT_EQ(info->pcrs[1], HexEncode(image.measurements.pcr1));
  EXPECT_EQ(info->pcrs[2], HexEncode(image.measurements.pcr2));
  EXPECT_EQ(info->cpus, 1U);
  EXPECT_EQ(info->memory_mib, 128U);

  auto facts = Facts(*info);
  EXPECT_EQ(facts["pid"], "1");
  EXPECT_EQ(facts["hostname"], "enclave");
  // Only the image and the sandbox's mount points: no host file system.
  EXPECT_EQ(facts["root"], "app,dev,init,probe.conf,proc,run,sys,tmp,version");
  EXPECT_EQ(facts["netifs"], "lo");
  EXPECT_EQ(facts["host_marker"], "absent");
  EXPECT_EQ(facts["etc_hostname"], "absent");
  EXPECT_EQ(facts["outbound"], "refused");
  EXPECT_EQ(facts["nsm_is_socket"], "yes");
  EXPECT_EQ(facts["dev_null"], "yes");
  EXPECT_EQ(facts["version"], "app") << "ramdisk 2 overwrites ramdisk 1";

  attestation::TrustPolicy policy;
  policy.expected_pcrs = {{0, image.measurements.pcr0},
                          {1, image.measurements.pcr1},
                          {2, image.measurements.pcr2},
                          {4, Pcr4ForInstance(InstanceId())}};
  auto verified = AttestAndVerify(*info, policy);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_FALSE(verified->debug());
  EXPECT_TRUE(verified->document().module_id.starts_with(InstanceId() + "-enc"));

  auto console = Provider().Console("web", 0);
  ASSERT_FALSE(console);
  EXPECT_EQ(console.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(console.error().message(),
            "enclave web is not in debug mode; its console is closed (as on Nitro)");

  // Terminate leaves no process, mount, socket, cgroup or directory.
  const std::string dir = Provider().EnclaveDir("web");
  auto state = ReadSandboxState(dir);
  ASSERT_TRUE(state) << state.error().message();
  EXPECT_NE(state->cgroup, CgroupMode::kRlimit) << "this machine has cgroups";
  ASSERT_TRUE(IsAlive(state->init_pid, state->init_starttime));
  ASSERT_TRUE(Provider().Terminate("web", 2000));
  EXPECT_FALSE(IsAlive(state->supervisor_pid, state->supervisor_starttime));
  EXPECT_FALSE(IsAlive(state->init_pid, state->init_starttime));
  EXPECT_FALSE(MountedUnder(dir));
  for (const std::string& cgroup : state->cgroup_paths) {
    EXPECT_FALSE(fs::exists(cgroup)) << cgroup;
  }
  EXPECT_FALSE(fs::exists(dir));
  auto gone = Provider().Describe("web");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Code::kNotFound);
}

TEST_F(LocalProviderTest, DebugEnclaveHasAConsoleAndAttestsZeroPcrs) {
  REQUIRE_BOOT();
  ProbeImage image = ProbeEif();
  auto info = Provider().Launch(
      {.name = "dbg", .eif_path = image.path, .debug = true, .cpus = 1, .memory_mib = 128});
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_TRUE(info->debug);
  EXPECT_EQ(Ask(*info, "say hello from inside"), "said\n");
  auto console = Provider().Console("dbg", 0);
  ASSERT_TRUE(console) << console.error().message();
  EXPECT_NE(console->find("probe: started as pid 1"), std::string::npos) << *console;
  EXPECT_NE(console->find("hello from inside"), std::string::npos) << *console;
  auto tail = Provider().Console("dbg", console->size() - 6);
  ASSERT_TRUE(tail);
  EXPECT_EQ(*tail, "nside\n");

  attestation::TrustPolicy policy;
  EXPECT_FALSE(AttestAndVerify(*info, policy)) << "a default policy refuses debug enclaves";
  policy.allow_debug = true;
  Bytes zero(48, 0);
  policy.expected_pcrs = {{0, zero}, {1, zero}, {2, zero}};
  auto verified = AttestAndVerify(*info, policy);
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_TRUE(verified->debug());
  ASSERT_TRUE(Provider().Terminate("dbg", 1000));
}

TEST_F(LocalProviderTest, MemoryLimitHoldsTheEnclave) {
  REQUIRE_BOOT();
  ProbeImage image = ProbeEif();
  auto info = Provider().Launch(
      {.name = "small", .eif_path = image.path, .debug = false, .cpus = 1, .memory_mib = 64});
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(Ask(*info, "alloc 8"), "allocated\n") << "a small allocation fits";
  std::string answer = Ask(*info, "alloc 512");
  EXPECT_NE(answer, "allocated\n") << "512 MiB must not fit in a 64 MiB enclave";
  if (answer.empty()) {
    // Killed by the OOM killer: init (PID 1 of the enclave) died, so the enclave stopped.
    EnclaveInfo stopped = WaitStopped("small");
    EXPECT_EQ(stopped.state, EnclaveState::kStopped);
    EXPECT_EQ(stopped.exit_status, 128 + SIGKILL);
  } else {
    EXPECT_EQ(answer, "failed\n");
  }
  ASSERT_TRUE(Provider().Terminate("small", 0));
}

TEST_F(LocalProviderTest, ASecondProviderReattachesAndAnExitIsRecorded) {
  REQUIRE_BOOT();
  ProbeImage image = ProbeEif();
  auto first = Provider().Launch(
      {.name = "keep", .eif_path = image.path, .debug = false, .cpus = 1, .memory_mib = 96});
  ASSERT_TRUE(first) << first.error().message();
  auto again = Provider().Launch(
      {.name = "keep", .eif_path = image.path, .debug = false, .cpus = 1, .memory_mib = 96});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Code::kAlreadyExists);

  // A restarted host agent: a new provider on the same state directory.
  auto second = LocalProvider::Create(Options());
  ASSERT_TRUE(second) << second.error().message();
  auto listed = (*second)->List();
  ASSERT_TRUE(listed) << listed.error().message();
  ASSERT_EQ(listed->size(), 1U);
  EXPECT_EQ((*listed)[0].id, first->id);
  EXPECT_EQ((*listed)[0].state, EnclaveState::kRunning);
  EXPECT_EQ((*listed)[0].pcrs, first->pcrs);
  EXPECT_EQ(Facts((*listed)[0])["pid"], "1") << "reachable through the re-attached endpoint";

  // The enclave's init exits by itself: stopped, with its status; the name can be reused.
  EXPECT_EQ(Ask(*first, "exit 7"), "bye\n");
  EnclaveInfo stopped = WaitStopped("keep");
  EXPECT_EQ(stopped.state, EnclaveState::kStopped);
  EXPECT_EQ(stopped.exit_status, 7);
  auto relaunched = (*second)->Launch(
      {.name = "keep", .eif_path = image.path, .debug = false, .cpus = 1, .memory_mib = 96});
  ASSERT_TRUE(relaunched) << relaunched.error().message();
  EXPECT_NE(relaunched->id, first->id);
  ASSERT_TRUE((*second)->Terminate("keep", 1000));
  auto none = Provider().List();
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(LocalProviderTest, ARamdiskSymlinkCannotRedirectWrites) {
  REQUIRE_BOOT();
  TempDir outside;
  image::Tree runtime = RuntimeTree();
  ASSERT_TRUE(runtime.Put("evil", Symlink(outside.path())));
  ProbeImage image = Build("evil.eif", Cpio(runtime), RawCpio({{"evil/pwned", "gotcha\n"}}));
  auto info = Provider().Launch(
      {.name = "evil", .eif_path = image.path, .debug = false, .cpus = 1, .memory_mib = 64});
  ASSERT_FALSE(info);
  EXPECT_NE(info.error().message().find("symlinks are not followed"), std::string::npos)
      << info.error().message();
  EXPECT_FALSE(fs::exists(outside.File("pwned")));
  EXPECT_FALSE(fs::exists(Provider().EnclaveDir("evil")));
}

// --- Refusals before anything starts (no root needed) ---

TEST_F(LocalProviderTest, BadImagesAreRefusedWithNothingCreated) {
  if (!fs::exists(ENCLAVIA_SANDBOX_PROBE)) {
    GTEST_SKIP() << "no probe binary";
  }
  using eif::testing::BuildRaw;
  using eif::testing::RawSection;
  const Bytes kernel = eif::testing::Random(1024, 2);
  const Bytes cmdline = {'c', 'o', 'n'};
  const Bytes ramdisk = Cpio(RuntimeTree());
  auto raw = [&](std::vector<RawSection> sections) { return BuildRaw(sections, 3); };
  const Bytes good = raw({{1, kernel}, {2, cmdline}, {3, ramdisk}});
  ASSERT_TRUE(eif::ParseEif(good)) << "the control image is valid";

  std::map<std::string, Bytes> bad;
  bad["bad-crc"] = good;
  bad["bad-crc"][good.size() - 100] ^= 1;
  bad["truncated"] = Bytes(good.begin(), good.begin() + static_cast<long>(good.size() / 2));
  bad["no-kernel"] = raw({{2, cmdline}, {3, ramdisk}});
  bad["no-ramdisk"] = raw({{1, kernel}, {2, cmdline}});
  bad["oversized"] = good;
  // The ramdisk's size in the header's table and in its section header: 1 TiB.
  eif::testing::Put64(bad["oversized"], eif::testing::kSizesOffset + 2 * 8, uint64_t{1} << 40);
  eif::testing::FixCrc(bad["oversized"]);
  for (auto& [name, bytes] : bad) {
    std::string path = dir_.File(name + ".eif");
    eif::testing::WriteAll(path, bytes);
    auto info = Provider().Launch({.name = name, .eif_path = path});
    ASSERT_FALSE(info) << name;
    EXPECT_EQ(info.error().code(), Code::kInvalidArgument) << name;
    EXPECT_TRUE(info.error().message().starts_with("refusing image " + path + ": eif: "))
        << name << ": " << info.error().message();
    EXPECT_EQ(info.error().message().find('\n'), std::string::npos) << "one line";
    EXPECT_FALSE(fs::exists(Provider().EnclaveDir(name))) << name;
  }
  EXPECT_TRUE(fs::is_empty(dir_.File("host") + "/enclaves"));
}

TEST_F(LocalProviderTest, RefusesBadNamesAndAnswersUnknownNames) {
  for (const char* name : {"", "Web", "-web", "web_1", "../etc", "a/b",
                           "a123456789012345678901234567890123456789012345678901234567890123"}) {
    auto info = Provider().Launch({.name = name, .eif_path = "/nonexistent.eif"});
    ASSERT_FALSE(info) << name;
    EXPECT_EQ(info.error().code(), Code::kInvalidArgument) << name;
  }
  EXPECT_TRUE(config::ValidEnclaveName("web-1"));
  EXPECT_EQ(Provider().Describe("nope").error().code(), Code::kNotFound);
  EXPECT_EQ(Provider().Terminate("nope").error().code(), Code::kNotFound);
  EXPECT_EQ(Provider().Console("nope", 0).error().code(), Code::kNotFound);
  auto relative = Provider().Launch({.name = "rel", .eif_path = "app.eif"});
  ASSERT_FALSE(relative);
  EXPECT_EQ(relative.error().code(), Code::kInvalidArgument);
}

// --- Pieces ---

TEST(SandboxStateTest, RoundTripsAndRefusesForeignCgroupPaths) {
  SandboxState s;
  s.name = "web";
  s.id = "local-web-00";
  s.supervisor_pid = 10;
  s.init_pid = 11;
  s.pcrs = {{0, "ab"}, {4, "cd"}};
  s.cgroup = CgroupMode::kV1;
  s.cgroup_paths = {"/sys/fs/cgroup/memory/enclavia/local-web-00"};
  s.state = "running";
  auto parsed = ParseSandboxState(EncodeSandboxState(s));
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->pcrs, s.pcrs);
  EXPECT_EQ(parsed->cgroup_paths, s.cgroup_paths);
  EXPECT_EQ(parsed->cgroup, CgroupMode::kV1);
  s.cgroup_paths = {"/sys/fs/cgroup/memory"};
  EXPECT_FALSE(ParseSandboxState(EncodeSandboxState(s)));
  s.cgroup_paths = {"/home/user"};
  EXPECT_FALSE(ParseSandboxState(EncodeSandboxState(s)));
  EXPECT_FALSE(ParseSandboxState("{"));
}

TEST(SandboxStateTest, ProcessStartTimeTellsReusedPids) {
  auto self = ReadProcessInfo(::getpid());
  ASSERT_TRUE(self) << self.error().message();
  EXPECT_TRUE(IsAlive(::getpid(), self->starttime));
  EXPECT_FALSE(IsAlive(::getpid(), self->starttime + 1));
  EXPECT_FALSE(ReadProcessInfo(0));
}

TEST(SandboxPcr4Test, IsOneExtendOfTheInstanceId) {
  Bytes pcr4 = Pcr4ForInstance("i-0123456789abcdef0");
  EXPECT_EQ(pcr4.size(), 48U);
  EXPECT_NE(pcr4, Pcr4ForInstance("i-0123456789abcdef1"));
  // sha384(b"\0" * 48 + b"i-0123456789abcdef0"), computed with Python's hashlib.
  EXPECT_EQ(HexEncode(Pcr4ForInstance("i-0123456789abcdef0")), "d6432900ac1c343cb40286898792c55e962aef0cc35c4910c0c286145b51af19e782cb21cc31a042671d7dfbd398251c");
}

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "unpacking sets owners: needs root";
    }
    root_ = ::open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_, 0);
  }
  void TearDown() override {
    if (root_ >= 0) {
      ::close(root_);
    }
  }
  std::string Read(const std::string& rel) const {
    std::ifstream in(dir_.File(rel));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // NOLINTBEGIN(misc-non-private-member-variables-in-classes)
  TempDir dir_;
  int root_ = -1;
  // NOLINTEND(misc-non-private-member-variables-in-classes)
};

TEST_F(UnpackTest, LaterArchivesOverwriteAndHardLinksShareAnInode) {
  image::Tree first;
  ASSERT_TRUE(first.Put("etc/conf", File("one\n")));
  ASSERT_TRUE(first.Put("bin/tool", File("#!tool\n", 04755)));
  ASSERT_TRUE(first.Put("thing", File("a file\n")));
  image::Entry link;
  link.type = image::EntryType::kFile;
  link.hardlink_to = "bin/tool";
  ASSERT_TRUE(first.Put("bin/alias", link));
  ASSERT_TRUE(UnpackArchive(root_, Cpio(first), 1));
  image::Tree second;
  ASSERT_TRUE(second.Put("etc/conf", File("two\n", 0600)));
  image::Entry dir;
  dir.type = image::EntryType::kDirectory;
  dir.mode = 0700;
  ASSERT_TRUE(second.Put("thing", dir));  // A file replaced by a directory.
  image::Entry dev;
  dev.type = image::EntryType::kBlockDevice;
  dev.mode = 0600;
  dev.rdev_major = 8;
  ASSERT_TRUE(second.Put("sda", dev));
  ASSERT_TRUE(UnpackArchive(root_, Cpio(second), 2));

  EXPECT_EQ(Read("etc/conf"), "two\n");
  struct stat conf {};
  ASSERT_EQ(::stat(dir_.File("etc/conf").c_str(), &conf), 0);
  EXPECT_EQ(conf.st_mode & 07777, 0600U);
  struct stat tool {}, alias {};
  ASSERT_EQ(::stat(dir_.File("bin/tool").c_str(), &tool), 0);
  ASSERT_EQ(::stat(dir_.File("bin/alias").c_str(), &alias), 0);
  EXPECT_EQ(tool.st_ino, alias.st_ino);
  EXPECT_EQ(tool.st_mode & 07777, 04755U) << "set-user-id survives the chown";
  EXPECT_EQ(Read("bin/alias"), "#!tool\n");
  EXPECT_TRUE(fs::is_directory(dir_.File("thing")));
  EXPECT_FALSE(fs::exists(dir_.File("sda"))) << "device nodes are skipped";
}

TEST_F(UnpackTest, NeverFollowsASymlinkOutOfTheRoot) {
  TempDir outside;
  image::Tree first;
  ASSERT_TRUE(first.Put("escape", Symlink(outside.path())));
  ASSERT_TRUE(first.Put("relative", Symlink("../../..")));
  ASSERT_TRUE(UnpackArchive(root_, Cpio(first), 1));
  for (const char* path : {"escape/x", "relative/x", "escape/deeper/x"}) {
    auto unpacked = UnpackArchive(root_, RawCpio({{path, "no\n"}}), 2);
    ASSERT_FALSE(unpacked) << path;
    EXPECT_TRUE(unpacked.error().message().starts_with("ramdisk 2: " + std::string(path)))
        << unpacked.error().message();
    EXPECT_NE(unpacked.error().message().find("symlinks are not followed"), std::string::npos);
  }
  // A directory entry for the same path replaces the symlink: the archive's own tree wins.
  image::Tree tree;
  ASSERT_TRUE(tree.Put("escape/y", File("inside\n")));
  ASSERT_TRUE(UnpackArchive(root_, Cpio(tree), 2));
  EXPECT_FALSE(fs::is_symlink(dir_.File("escape")));
  EXPECT_EQ(Read("escape/y"), "inside\n");
  // A symlink replaced by a file is replaced, not written through.
  ASSERT_TRUE(UnpackArchive(root_, RawCpio({{"relative", "plain\n"}}), 3));
  EXPECT_EQ(Read("relative"), "plain\n");
  EXPECT_TRUE(fs::is_empty(outside.path()));
}

TEST_F(UnpackTest, GarbageIsMalformed) {
  Bytes garbage = {'0', '7', '0', '7', '0', '1', 'x'};
  auto unpacked = UnpackArchive(root_, garbage, 1);
  ASSERT_FALSE(unpacked);
  EXPECT_EQ(unpacked.error().code(), Code::kMalformed);
  EXPECT_TRUE(unpacked.error().message().starts_with("ramdisk 1: "));
}

}  // namespace
}  // namespace enclavia::host
