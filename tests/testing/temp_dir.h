// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_TESTS_TESTING_TEMP_DIR_H_
#define ENCLAVIA_TESTS_TESTING_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "lib/base/result.h"

namespace enclavia::testing {

// TempDir is a fresh directory under gtest's temporary directory, removed with its contents at
// the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "enclavia") {
    std::string pattern = ::testing::TempDir() + prefix + "_XXXXXX";
    ENCLAVIA_CHECK(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace enclavia::testing

#endif  // ENCLAVIA_TESTS_TESTING_TEMP_DIR_H_
