// SPDX-License-Identifier: Apache-2.0
#include "testing/fixtures.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "lib/base/file.h"

namespace enclavia::testing {

std::optional<std::string> SharedFixturesDir() {
  // An explicit $ENCLAVIA_FIXTURES wins even when it points nowhere.
  const char* env = std::getenv("ENCLAVIA_FIXTURES");
  std::string dir = env != nullptr && *env != '\0' ? env : ENCLAVIA_FIXTURES_BUILTIN;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return std::nullopt;
  }
  return dir;
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
