// SPDX-License-Identifier: Apache-2.0
// NitroProvider against tests/tools/fake-nitro-cli (a real subprocess that keeps state in a
// directory and logs its argv), and its JSON parsers against hostile output.
#include "host/launcher/nitro_provider.h"

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lib/base/encoding.h"
#include "lib/crypto/random.h"
#include "lib/eif/test_util.h"
#include "lib/eif/writer.h"

namespace enclavia::host {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Argv = std::vector<std::string>;

constexpr const char* kFakeEnv[] = {"FAKE_NITRO_FAIL",        "FAKE_NITRO_FAIL_CODE",
                                    "FAKE_NITRO_GARBAGE",     "FAKE_NITRO_GARBAGE_TEXT",
                                    "FAKE_NITRO_HANG",        "FAKE_NITRO_MEASUREMENTS",
                                    "FAKE_NITRO_CONSOLE_HANG"};

void ExpectOneLine(const Error& e) {
  EXPECT_EQ(e.message().find('\n'), std::string::npos) << e.message();
  EXPECT_FALSE(e.message().empty());
}

class NitroProviderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(crypto::Init()); }

  void SetUp() override {
    ::setenv("FAKE_NITRO_STATE", state_.path().c_str(), 1);
    for (const char* var : kFakeEnv) {
      ::unsetenv(var);
    }
    options_.nitro_cli = ENCLAVIA_FAKE_NITRO_CLI;
    options_.command_timeout_ms = 20000;
    options_.console_seconds = 0;
    options_.console_grace_ms = 2000;
    eif_path_ = images_.File("app.eif");
    measurements_ = WriteImage(eif_path_);
  }

  void TearDown() override {
    ::unsetenv("FAKE_NITRO_STATE");
    for (const char* var : kFakeEnv) {
      ::unsetenv(var);
    }
  }

  eif::Measurements WriteImage(const std::string& path, uint64_t default_mem = uint64_t{1} << 30,
                               uint64_t default_cpus = 2, const eif::SigningKey* signer = nullptr) {
    eif::testing::TestImage image;
    image.kernel = eif::testing::Random(4096, 1);
    image.cmdline = "console=ttyS0";
    image.ramdisks = {eif::testing::Random(2048, 2), eif::testing::Random(1024, 3)};
    eif::ImageSpec spec = image.Spec(signer);
    spec.default_mem = default_mem;
    spec.default_cpus = default_cpus;
    auto m = eif::WriteEif(spec, path);
    EXPECT_TRUE(m) << m.error().message();
    return m ? *m : eif::Measurements{};
  }

  // Calls returns every argv the fake was run with, in order.
  std::vector<Argv> Calls() const {
    std::vector<Argv> out;
    std::ifstream in(state_.File("argv.log"));
    std::string line;
    while (std::getline(in, line)) {
      out.push_back(nlohmann::json::parse(line).get<Argv>());
    }
    return out;
  }

  // SetState overwrites the State the fake reports for enclave `id`.
  void SetState(const std::string& id, const std::string& state) {
    std::ofstream(state_.File("enclaves/" + id + "/state")) << state << "\n";
  }

  LaunchSpec Spec(const std::string& name, bool debug = false) const {
    LaunchSpec spec;
    spec.name = name;
    spec.eif_path = eif_path_;
    spec.debug = debug;
    spec.cpus = 2;
    spec.memory_mib = 1024;
    return spec;
  }

  eif::testing::TempDir state_;
  eif::testing::TempDir images_;
  NitroOptions options_;
  std::string eif_path_;
  eif::Measurements measurements_;
};

TEST_F(NitroProviderTest, LaunchPassesExactFlagsAndReportsTheImagePcrs) {
  NitroProvider provider(options_);
  const int64_t before = std::time(nullptr);
  auto info = provider.Launch(Spec("web"));
  ASSERT_TRUE(info) << info.error().message();

  EXPECT_THAT(Calls(), ElementsAre(Argv{"describe-enclaves"},
                                   Argv{"run-enclave", "--eif-path", eif_path_, "--cpu-count", "2",
                                        "--memory", "1024", "--enclave-name", "web"}));
  EXPECT_EQ(info->name, "web");
  EXPECT_EQ(info->id, "i-0123456789abcdef0-enc17a2");
  EXPECT_EQ(info->state, EnclaveState::kRunning);
  EXPECT_EQ(info->endpoint.cid, 16U + 0x17a2 % 1000);
  EXPECT_TRUE(info->endpoint.local_dir.empty());
  EXPECT_FALSE(info->debug);
  EXPECT_EQ(info->cpus, 2U);
  EXPECT_EQ(info->memory_mib, 1024U);
  EXPECT_GE(info->started_unix, before);
  ASSERT_EQ(info->pcrs.size(), 3U);
  EXPECT_EQ(info->pcrs.at(0), HexEncode(measurements_.pcr0));
  EXPECT_EQ(info->pcrs.at(1), HexEncode(measurements_.pcr1));
  EXPECT_EQ(info->pcrs.at(2), HexEncode(measurements_.pcr2));
  EXPECT_EQ(info->pcrs.at(0).size(), 96U);
}

TEST_F(NitroProviderTest, LaunchTakesDefaultsFromTheImageHeaderAndPassesDebugMode) {
  // 300 MiB and one byte round up to 301 MiB.
  WriteImage(eif_path_, (uint64_t{300} << 20) + 1, 3);
  NitroProvider provider(options_);
  LaunchSpec spec = Spec("dbg", /*debug=*/true);
  spec.cpus = 0;
  spec.memory_mib = 0;
  auto info = provider.Launch(spec);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(Calls().back(), (Argv{"run-enclave", "--eif-path", eif_path_, "--cpu-count", "3",
                                  "--memory", "301", "--debug-mode", "--enclave-name", "dbg"}));
  EXPECT_TRUE(info->debug);
  EXPECT_EQ(info->cpus, 3U);
  EXPECT_EQ(info->memory_mib, 301U);
}

TEST_F(NitroProviderTest, SignedImageReportsPcr8) {
  eif::SigningKey signer = eif::testing::MakeSigner(crypto::SignatureAlgorithm::kEcdsaP384Sha384);
  eif::Measurements m = WriteImage(eif_path_, uint64_t{1} << 30, 2, &signer);
  ASSERT_TRUE(m.pcr8.has_value());
  NitroProvider provider(options_);
  auto info = provider.Launch(Spec("signed"));
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_EQ(info->pcrs.count(8), 1U);
  EXPECT_EQ(info->pcrs.at(8), HexEncode(*m.pcr8));
  // Describe remembers them (this nitro-cli reports no Measurements).
  auto described = provider.Describe("signed");
  ASSERT_TRUE(described) << described.error().message();
  EXPECT_EQ(described->pcrs, info->pcrs);
  EXPECT_EQ(described->started_unix, info->started_unix);
}

TEST_F(NitroProviderTest, ListAndDescribeParseStateFlagsAndCids) {
  NitroProvider provider(options_);
  auto zeta = provider.Launch(Spec("zeta"));
  ASSERT_TRUE(zeta) << zeta.error().message();
  ASSERT_TRUE(provider.Launch(Spec("alpha", /*debug=*/true)));
  SetState(zeta->id, "TERMINATING");

  auto list = provider.List();
  ASSERT_TRUE(list) << list.error().message();
  ASSERT_EQ(list->size(), 2U);
  EXPECT_EQ((*list)[0].name, "alpha");  // Sorted by name.
  EXPECT_EQ((*list)[0].state, EnclaveState::kRunning);
  EXPECT_TRUE((*list)[0].debug);
  EXPECT_EQ((*list)[1].name, "zeta");
  EXPECT_EQ((*list)[1].state, EnclaveState::kStopped);
  EXPECT_FALSE((*list)[1].debug);
  EXPECT_NE((*list)[0].endpoint.cid, (*list)[1].endpoint.cid);
  EXPECT_NE((*list)[0].id, (*list)[1].id);

  auto alpha = provider.Describe("alpha");
  ASSERT_TRUE(alpha) << alpha.error().message();
  EXPECT_EQ(alpha->id, (*list)[0].id);
  EXPECT_EQ(alpha->memory_mib, 1024U);
  auto missing = provider.Describe("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
}

TEST_F(NitroProviderTest, ReattachingProviderTakesPcrsFromDescribeMeasurements) {
  const std::string upper = "ABCDEF" + std::string(90, '0');
  nlohmann::json m = {{"HashAlgorithm", "Sha384 { ... }"},
                      {"PCR0", upper},
                      {"PCR1", std::string(96, '1')},
                      {"PCR2", std::string(96, '2')}};
  ::setenv("FAKE_NITRO_MEASUREMENTS", m.dump().c_str(), 1);
  {
    NitroProvider first(options_);
    ASSERT_TRUE(first.Launch(Spec("web")));
  }
  // A new provider (the host agent restarted) knows only what nitro-cli says.
  NitroProvider second(options_);
  auto info = second.Describe("web");
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->state, EnclaveState::kRunning);
  EXPECT_EQ(info->started_unix, 0);
  ASSERT_EQ(info->pcrs.size(), 3U);
  EXPECT_EQ(info->pcrs.at(0), "abcdef" + std::string(90, '0'));
  EXPECT_EQ(info->pcrs.at(2), std::string(96, '2'));
}

TEST_F(NitroProviderTest, ReattachingWithoutMeasurementsHasNoPcrs) {
  {
    NitroProvider first(options_);
    ASSERT_TRUE(first.Launch(Spec("web")));
  }
  NitroProvider second(options_);
  auto info = second.Describe("web");
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_TRUE(info->pcrs.empty());
}

TEST_F(NitroProviderTest, TerminateRunsTerminateEnclaveWithTheId) {
  NitroProvider provider(options_);
  auto info = provider.Launch(Spec("web"));
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_TRUE(provider.Terminate("web"));
  EXPECT_EQ(Calls().back(), (Argv{"terminate-enclave", "--enclave-id", info->id}));
  auto list = provider.List();
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
  auto again = provider.Terminate("web");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Code::kNotFound);
}

TEST_F(NitroProviderTest, TerminateRefusesAReplyForAnotherEnclave) {
  NitroProvider provider(options_);
  ASSERT_TRUE(provider.Launch(Spec("web")));
  ::setenv("FAKE_NITRO_GARBAGE", "terminate-enclave", 1);
  ::setenv("FAKE_NITRO_GARBAGE_TEXT",
           R"({"EnclaveName": "web", "EnclaveID": "i-1-enc1", "Terminated": true})", 1);
  auto r = provider.Terminate("web");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kMalformed);
  EXPECT_THAT(r.error().message(), StartsWith("nitro-cli: terminate-enclave: reported enclave"));
}

TEST_F(NitroProviderTest, ConsoleReturnsOutputFromOffset) {
  options_.console_seconds = 1;
  NitroProvider provider(options_);
  auto info = provider.Launch(Spec("dbg", /*debug=*/true));
  ASSERT_TRUE(info) << info.error().message();
  const std::string boot = "[    0.000000] Linux version 6.1.0 (fake)\nenclavia-init: hello\n";

  auto all = provider.Console("dbg", 0);
  ASSERT_TRUE(all) << all.error().message();
  EXPECT_EQ(*all, boot);  // nitro-cli's "Connecting..." lines removed.
  EXPECT_EQ(Calls().back(),
            (Argv{"console", "--enclave-id", info->id, "--disconnect-timeout", "1"}));
  auto tail = provider.Console("dbg", 42);
  ASSERT_TRUE(tail) << tail.error().message();
  EXPECT_EQ(*tail, boot.substr(42));
  auto past = provider.Console("dbg", 1000);
  ASSERT_TRUE(past);
  EXPECT_EQ(*past, "");
}

TEST_F(NitroProviderTest, ConsoleThatDoesNotDisconnectIsStoppedAndKeepsItsOutput) {
  options_.console_grace_ms = 1000;
  NitroProvider provider(options_);
  ASSERT_TRUE(provider.Launch(Spec("dbg", /*debug=*/true)));
  ::setenv("FAKE_NITRO_CONSOLE_HANG", "1", 1);
  const auto start = std::chrono::steady_clock::now();
  auto out = provider.Console("dbg", 0);
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_THAT(*out, HasSubstr("enclavia-init: hello"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(NitroProviderTest, ConsoleOfANonDebugEnclaveIsClosed) {
  NitroProvider provider(options_);
  ASSERT_TRUE(provider.Launch(Spec("web")));
  auto out = provider.Console("web", 0);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(out.error().message(),
            "enclave web is not in debug mode; its console is closed (as on Nitro)");
  for (const Argv& call : Calls()) {
    EXPECT_NE(call.front(), "console");
  }
}

TEST_F(NitroProviderTest, NitroCliErrorIsOneLineWithItsMessage) {
  ::setenv("FAKE_NITRO_FAIL", "run-enclave", 1);
  NitroProvider provider(options_);
  auto r = provider.Launch(Spec("web"));
  ASSERT_FALSE(r);
  ExpectOneLine(r.error());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.error().message(),
            "nitro-cli run-enclave failed (exit 25): [ E26 ] Insufficient memory requested. User "
            "provided `memory` is 64 MB, but based on the EIF file size, the minimum memory "
            "should be 512 MB");

  ::setenv("FAKE_NITRO_FAIL_CODE", "E27", 1);
  r = provider.Launch(Spec("web"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kLimitExceeded);
  EXPECT_THAT(r.error().message(), HasSubstr("[ E27 ] Insufficient memory available."));
  ExpectOneLine(r.error());

  ::setenv("FAKE_NITRO_FAIL", "describe-enclaves", 1);
  ::setenv("FAKE_NITRO_FAIL_CODE", "E07", 1);
  auto list = provider.List();
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().code(), Code::kInternal);
  EXPECT_THAT(list.error().message(), StartsWith("nitro-cli describe-enclaves failed (exit 1): [ E07 ]"));
}

TEST_F(NitroProviderTest, GarbageJsonIsMalformed) {
  NitroProvider provider(options_);
  ASSERT_TRUE(provider.Launch(Spec("web")));
  ::setenv("FAKE_NITRO_GARBAGE", "describe-enclaves", 1);
  auto list = provider.List();
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().code(), Code::kMalformed);
  EXPECT_EQ(list.error().message(), "nitro-cli: describe-enclaves: output is not JSON");

  // Valid JSON with a bad field.
  ::setenv("FAKE_NITRO_GARBAGE_TEXT",
           R"([{"EnclaveName": "web", "EnclaveID": "i-1-enc1", "ProcessID": 7, "EnclaveCID": 3,
               "NumberOfCPUs": 2, "CPUIDs": [1, 3], "MemoryMiB": 512, "State": "RUNNING",
               "Flags": "NONE"}])",
           1);
  list = provider.List();
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().code(), Code::kMalformed);
  EXPECT_EQ(list.error().message(), "nitro-cli: describe-enclaves: EnclaveCID 3 is out of range");
}

TEST_F(NitroProviderTest, GarbageFromRunEnclaveIsMalformedAndTheEnclaveIsStopped) {
  ::setenv("FAKE_NITRO_GARBAGE", "run-enclave", 1);
  NitroProvider provider(options_);
  auto r = provider.Launch(Spec("web"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kMalformed);
  EXPECT_THAT(r.error().message(), StartsWith("nitro-cli: run-enclave: "));
  ExpectOneLine(r.error());
  // Nothing left behind: the enclave the fake started was terminated.
  const std::vector<Argv> calls = Calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back().front(), "terminate-enclave");
  auto list = provider.List();
  ASSERT_TRUE(list) << list.error().message();
  EXPECT_TRUE(list->empty());
}

TEST_F(NitroProviderTest, BadImagesAndSpecsAreRefusedBeforeAnyNitroCliCall) {
  NitroProvider provider(options_);
  // A flipped byte in the kernel: CRC mismatch.
  Bytes image = eif::testing::ReadAll(eif_path_);
  image[image.size() / 2] ^= 0x01;
  eif::testing::WriteAll(images_.File("crc.eif"), image);
  // Truncated.
  eif::testing::WriteAll(images_.File("short.eif"),
                         ByteSpan(eif::testing::ReadAll(eif_path_)).first(600));

  for (const std::string& path :
       {images_.File("crc.eif"), images_.File("short.eif"), images_.File("missing.eif")}) {
    LaunchSpec spec = Spec("web");
    spec.eif_path = path;
    auto r = provider.Launch(spec);
    ASSERT_FALSE(r) << path;
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << r.error().message();
    EXPECT_THAT(r.error().message(), HasSubstr("eif: "));
    ExpectOneLine(r.error());
  }
  LaunchSpec relative = Spec("web");
  relative.eif_path = "app.eif";
  LaunchSpec bad_name = Spec("Web_1");
  LaunchSpec long_name = Spec(std::string(64, 'a'));
  LaunchSpec huge = Spec("web");
  huge.cpus = 100000;
  for (const LaunchSpec& spec : {relative, bad_name, long_name, huge}) {
    auto r = provider.Launch(spec);
    ASSERT_FALSE(r) << spec.name;
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << r.error().message();
  }
  EXPECT_TRUE(Calls().empty());
  EXPECT_FALSE(std::filesystem::exists(state_.File("argv.log")));
}

TEST_F(NitroProviderTest, DuplicateNameIsAlreadyExistsWithoutRunEnclave) {
  NitroProvider provider(options_);
  ASSERT_TRUE(provider.Launch(Spec("web")));
  const size_t calls = Calls().size();
  auto r = provider.Launch(Spec("web", /*debug=*/true));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kAlreadyExists);
  EXPECT_THAT(r.error().message(), HasSubstr("web"));
  const std::vector<Argv> after = Calls();
  ASSERT_EQ(after.size(), calls + 1);
  EXPECT_EQ(after.back(), Argv{"describe-enclaves"});
  // A name another tool started is taken too.
  {
    NitroProvider other(options_);
    auto r2 = other.Launch(Spec("web"));
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error().code(), Code::kAlreadyExists);
  }
}

TEST_F(NitroProviderTest, HangingNitroCliTimesOut) {
  options_.command_timeout_ms = 300;
  ::setenv("FAKE_NITRO_HANG", "describe-enclaves", 1);
  NitroProvider provider(options_);
  const auto start = std::chrono::steady_clock::now();
  auto r = provider.List();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_EQ(r.error().message(), "nitro-cli describe-enclaves: no answer within 300 ms");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(NitroProviderTest, MissingNitroCliIsOneClearLine) {
  options_.nitro_cli = state_.File("no-such-nitro-cli");
  NitroProvider provider(options_);
  auto r = provider.List();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kFailedPrecondition);
  EXPECT_THAT(r.error().message(), HasSubstr("cannot run " + options_.nitro_cli));
  EXPECT_THAT(r.error().message(), HasSubstr("No such file or directory"));
}

TEST_F(NitroProviderTest, OutputOverTheCapIsMalformed) {
  options_.max_output = 64;
  NitroProvider provider(options_);
  ::setenv("FAKE_NITRO_GARBAGE", "describe-enclaves", 1);
  ::setenv("FAKE_NITRO_GARBAGE_TEXT", ("[" + std::string(100000, ' ') + "]").c_str(), 1);
  auto r = provider.List();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kMalformed);
  EXPECT_THAT(r.error().message(), HasSubstr("output longer than 64 bytes"));
}

// The parsers on their own.

std::string Entry(const std::string& overrides) {
  nlohmann::json e = {{"EnclaveName", "web"},   {"EnclaveID", "i-0123456789abcdef0-enc17a2"},
                      {"ProcessID", 4242},      {"EnclaveCID", 16},
                      {"NumberOfCPUs", 2},      {"CPUIDs", {1, 3}},
                      {"MemoryMiB", 512},       {"State", "RUNNING"},
                      {"Flags", "NONE"}};
  e.merge_patch(nlohmann::json::parse(overrides));
  return nlohmann::json::array({e}).dump();
}

TEST(NitroJsonTest, ParsesADescribeEntry) {
  auto list = ParseDescribeEnclaves(Entry("{}"));
  ASSERT_TRUE(list) << list.error().message();
  ASSERT_EQ(list->size(), 1U);
  EXPECT_EQ((*list)[0].name, "web");
  EXPECT_EQ((*list)[0].endpoint.cid, 16U);
  EXPECT_EQ((*list)[0].cpus, 2U);
  EXPECT_EQ((*list)[0].memory_mib, 512U);
  // Old nitro-cli: no name, no ProcessID, no CPUIDs; named by its id.
  auto old = ParseDescribeEnclaves(
      Entry(R"({"EnclaveName": null, "ProcessID": null, "CPUIDs": null})"));
  ASSERT_TRUE(old) << old.error().message();
  EXPECT_EQ((*old)[0].name, "i-0123456789abcdef0-enc17a2");
  auto empty = ParseDescribeEnclaves("[]");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(NitroJsonTest, RejectsEveryBadField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"EnclaveCID": 0})", "EnclaveCID 0 is out of range"},
      {R"({"EnclaveCID": 4294967295})", "EnclaveCID 4294967295 is out of range"},
      {R"({"EnclaveCID": -16})", "EnclaveCID is not an unsigned integer"},
      {R"({"EnclaveCID": 16.5})", "EnclaveCID is not an unsigned integer"},
      {R"({"EnclaveCID": "16"})", "EnclaveCID is not an unsigned integer"},
      {R"({"EnclaveCID": null})", "missing EnclaveCID"},
      {R"({"EnclaveID": "i-1 enc; rm"})", "bad EnclaveID"},
      {R"({"EnclaveID": ""})", "bad EnclaveID"},
      {R"({"EnclaveID": 7})", "EnclaveID is not a string"},
      {R"({"EnclaveName": "a\nb"})", "bad EnclaveName"},
      {R"({"NumberOfCPUs": 0})", "NumberOfCPUs 0 is out of range"},
      {R"({"CPUIDs": [1]})", "CPUIDs does not list NumberOfCPUs CPUs"},
      {R"({"CPUIDs": [1, -3]})", "bad CPU id in CPUIDs"},
      {R"({"MemoryMiB": 0})", "MemoryMiB 0 is out of range"},
      {R"({"ProcessID": 0})", "ProcessID 0 is out of range"},
      {R"({"State": "PAUSED"})", "unknown State \"PAUSED\""},
      {R"({"State": null})", "missing State"},
      {R"({"Flags": "DEBUG"})", "unknown Flags \"DEBUG\""},
      {R"({"Measurements": []})", "Measurements is not an object"},
      {R"({"Measurements": {"PCR0": "00"}})", "PCR0 is not a SHA-384 digest"},
      {R"({"Measurements": {"PCR0": "zz"}})", "bad PCR0"},
  };
  for (const auto& [patch, message] : cases) {
    auto r = ParseDescribeEnclaves(Entry(patch));
    ASSERT_FALSE(r) << patch;
    EXPECT_EQ(r.error().code(), Code::kMalformed) << patch;
    EXPECT_EQ(r.error().message(), std::string("nitro-cli: describe-enclaves: ") + message)
        << patch;
  }
  for (const char* text : {"", "{}", "[1]", "[[]]", "null", "[{}] trailing", "\xff"}) {
    auto r = ParseDescribeEnclaves(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code(), Code::kMalformed);
    ExpectOneLine(r.error());
  }
  // Two entries with one name.
  nlohmann::json two = nlohmann::json::parse(Entry("{}"));
  two.push_back(two[0]);
  two[1]["EnclaveID"] = "i-0123456789abcdef0-enc17a3";
  auto dup = ParseDescribeEnclaves(two.dump());
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().message(), "nitro-cli: describe-enclaves: two enclaves named web");
}

TEST(NitroJsonTest, ParsesRunAndTerminateReplies) {
  auto run = ParseRunEnclave(
      R"({"EnclaveName": "web", "EnclaveID": "i-1-enc2", "ProcessID": 9, "EnclaveCID": 23,
          "NumberOfCPUs": 1, "CPUIDs": [5], "MemoryMiB": 256})");
  ASSERT_TRUE(run) << run.error().message();
  EXPECT_EQ(run->id, "i-1-enc2");
  EXPECT_EQ(run->endpoint.cid, 23U);
  EXPECT_EQ(run->state, EnclaveState::kRunning);
  auto bad = ParseRunEnclave(R"({"EnclaveID": "i-1-enc2"})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "nitro-cli: run-enclave: missing EnclaveCID");

  EXPECT_TRUE(ParseTerminateEnclave(R"({"EnclaveID": "i-1-enc2", "Terminated": true})",
                                    "i-1-enc2"));
  auto not_done =
      ParseTerminateEnclave(R"({"EnclaveID": "i-1-enc2", "Terminated": false})", "i-1-enc2");
  ASSERT_FALSE(not_done);
  EXPECT_EQ(not_done.error().code(), Code::kInternal);
  auto no_flag = ParseTerminateEnclave(R"({"EnclaveID": "i-1-enc2", "Terminated": "yes"})",
                                       "i-1-enc2");
  ASSERT_FALSE(no_flag);
  EXPECT_EQ(no_flag.error().code(), Code::kMalformed);
}

}  // namespace
}  // namespace enclavia::host
