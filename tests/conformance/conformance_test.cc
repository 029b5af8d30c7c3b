// SPDX-License-Identifier: Apache-2.0
// The C++ runner of the conformance vectors (README.md beside this file): one gtest per case,
// named conformance.<case name with '/' as '.'>, each comparing the client core's verdict (and
// PCR0) with the vector's. ENCLAVIA_CONFORMANCE_VECTORS overrides the vectors file; cases reading
// a real AWS document skip when the shared fixtures are absent (ENCLAVIA_FIXTURES). With
// ENCLAVIA_VERDICTS_OUT set, every case run appends "<name> <verdict>\n" to that file.
#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "conformance/runner.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/crypto/random.h"
#include "testing/fixtures.h"

namespace enclavia::conformance {
namespace {

void RecordVerdict(const std::string& name, const std::string& verdict) {
  const char* path = getenv("ENCLAVIA_VERDICTS_OUT");
  if (path == nullptr || *path == '\0') {
    return;
  }
  std::ofstream out(path, std::ios::app);
  out << name << " " << verdict << "\n";
  ASSERT_TRUE(out.flush()) << "cannot append to " << path;
}

class CaseTest : public ::testing::Test {
 public:
  explicit CaseTest(nlohmann::json c) : case_(std::move(c)) {}

  void TestBody() override {
    const std::string name = case_["name"].get<std::string>();
    std::string fixtures;
    if (NeedsFixture(case_)) {
      auto dir = testing::SharedFixturesDir();
      if (!dir) {
        GTEST_SKIP() << name << " reads the real AWS document "
                     << case_["document_fixture"].get<std::string>()
                     << ": shared fixtures not found, set ENCLAVIA_FIXTURES to the folder holding "
                        "nitro/ (../shared/fixtures)";
      }
      fixtures = *dir;
    }
    auto outcome = RunCase(case_, fixtures);
    ASSERT_TRUE(outcome) << name << ": " << outcome.error().message();
    RecordVerdict(name, outcome->verdict);
    const std::string expect = case_["expect"].get<std::string>();
    EXPECT_EQ(outcome->verdict, expect) << name << ": " << outcome->message;
    if (expect == "ok" && outcome->verdict == "ok") {
      ASSERT_TRUE(outcome->pcr0.has_value()) << name << ": no PCR0";
      EXPECT_EQ(HexEncode(*outcome->pcr0), case_["expect_pcr0"].get<std::string>()) << name;
    }
  }

 private:
  nlohmann::json case_;
};

// The file itself: a version we know, enough cases, unique names, every verdict kind covered.
class WellFormedTest : public ::testing::Test {
 public:
  explicit WellFormedTest(nlohmann::json vectors) : vectors_(std::move(vectors)) {}
  void TestBody() override {
    EXPECT_EQ(vectors_["version"], 1);
    const auto& cases = vectors_["cases"];
    EXPECT_GE(cases.size(), 30u);
    std::set<std::string> names;
    std::set<std::string> verdicts;
    std::set<std::string> kinds;
    for (const auto& c : cases) {
      EXPECT_TRUE(names.insert(c["name"].get<std::string>()).second) << c["name"];
      verdicts.insert(c["expect"].get<std::string>());
      kinds.insert(c["kind"].get<std::string>());
      if (c["expect"] == "ok") {
        EXPECT_TRUE(c.contains("expect_pcr0")) << c["name"];
      }
    }
    for (const char* v : {"ok", "malformed", "verify_failed", "untrusted", "expired",
                          "policy_violation", "invalid_argument"}) {
      EXPECT_TRUE(verdicts.count(v)) << "no case expects " << v;
    }
    EXPECT_EQ(kinds, (std::set<std::string>{"attestation", "handshake"}));
  }

 private:
  nlohmann::json vectors_;
};

class BrokenFileTest : public ::testing::Test {
 public:
  explicit BrokenFileTest(std::string problem) : problem_(std::move(problem)) {}
  void TestBody() override { FAIL() << "cannot use the vectors: " << problem_; }

 private:
  std::string problem_;
};

}  // namespace
}  // namespace enclavia::conformance

int main(int argc, char** argv) {
  using namespace enclavia;
  ::testing::InitGoogleTest(&argc, argv);
  if (!crypto::Init()) {
    std::cerr << "crypto init failed\n";
    return 1;
  }
  const char* env = getenv("ENCLAVIA_CONFORMANCE_VECTORS");
  const std::string path = env != nullptr && *env != '\0' ? env : ENCLAVIA_CONFORMANCE_VECTORS;
  // An unreadable file is one failing test, so that test discovery still works.
  nlohmann::json vectors;
  std::string problem;
  if (auto text = ReadFile(path, 64 << 20); !text) {
    problem = text.error().message();
  } else {
    vectors = nlohmann::json::parse(AsString(*text), nullptr, false);
    if (vectors.is_discarded() || !vectors.contains("cases") || !vectors["cases"].is_array()) {
      problem = path + ": not a vectors file";
    }
  }
  if (!problem.empty()) {
    ::testing::RegisterTest(
        "conformance", "vectors_file", nullptr, nullptr, __FILE__, __LINE__,
        [problem]() -> ::testing::Test* { return new conformance::BrokenFileTest(problem); });
    return RUN_ALL_TESTS();
  }
  ::testing::RegisterTest(
      "conformance", "vectors_file", nullptr, nullptr, __FILE__, __LINE__,
      [vectors]() -> ::testing::Test* { return new conformance::WellFormedTest(vectors); });
  for (const auto& c : vectors["cases"]) {
    std::string name = c["name"].get<std::string>();
    std::replace(name.begin(), name.end(), '/', '.');
    ::testing::RegisterTest("conformance", name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                            [c]() -> ::testing::Test* { return new conformance::CaseTest(c); });
  }
  return RUN_ALL_TESTS();
}
