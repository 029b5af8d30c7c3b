// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_TESTS_TESTING_FIXTURES_H_
#define ENCLAVIA_TESTS_TESTING_FIXTURES_H_

#include <optional>
#include <string>

#include "lib/base/bytes.h"

namespace enclavia::testing {

// SharedFixturesDir returns the third-party fixtures folder: $ENCLAVIA_FIXTURES if set, else the
// folder CMake recorded (ENCLAVIA_SHARED_FIXTURES, by default ../shared/fixtures beside the
// project). nullopt when it does not exist. Tests, benchmarks and tools all find fixtures here.
std::optional<std::string> SharedFixturesDir();

// ReadFixture reads `relative` under SharedFixturesDir(), or aborts the test binary with a message.
Bytes ReadFixture(const std::string& relative);

}  // namespace enclavia::testing

// SKIP_WITHOUT_FIXTURES() skips the current test, saying why, when the shared fixtures are absent.
#define SKIP_WITHOUT_FIXTURES()                                                          \
  do {                                                                                   \
    if (!::enclavia::testing::SharedFixturesDir()) {                                     \
      GTEST_SKIP() << "shared fixtures not found: set ENCLAVIA_FIXTURES to the folder "  \
                      "holding nitro/ and noise/ (../shared/fixtures)";                  \
    }                                                                                    \
  } while (false)

#endif  // ENCLAVIA_TESTS_TESTING_FIXTURES_H_
