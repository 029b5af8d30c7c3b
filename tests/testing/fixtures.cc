// SPDX-License-Identifier: Apache-2.0
#include "testing/fixtures.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "lib/base/file.h"

namespace enclavia::testing {

std::optional<std::string> SharedFixturesDir() {
  for (const char* var : {"ENCLAVIA_FIXTURES", "ENCLAVIA_FIXTURES_DEFAULT"}) {
    const char* dir = std::getenv(var);
    if (dir != nullptr && *dir != '\0') {
      std::error_code ec;
      if (std::filesystem::is_directory(dir, ec)) {
        return std::string(dir);
      }
      if (std::string(var) == "ENCLAVIA_FIXTURES") {
        return std::nullopt;  // An explicit setting wins even when it points nowhere.
      }
    }
  }
  return std::nullopt;
}

Bytes ReadFixture(const std::string& relative) {
  auto dir = SharedFixturesDir();
  if (!dir) {
    std::fprintf(stderr, "ReadFixture(%s): shared fixtures not found\n", relative.c_str());
    std::abort();
  }
  auto data = ReadFile(*dir + "/" + relative, 16 << 20);
  if (!data) {
    std::fprintf(stderr, "ReadFixture: %s\n", data.error().message().c_str());
    std::abort();
  }
  return std::move(data).value();
}

}  // namespace enclavia::testing
