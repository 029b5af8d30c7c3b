// SPDX-License-Identifier: Apache-2.0
// replay_main runs a fuzz target's LLVMFuzzerTestOneInput over files and folders named on the
// command line (folders non-recursively; missing folders are skipped with a note), so ordinary
// GCC builds keep every corpus entry as a regression test.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(data.data(), data.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t count = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        if (entry.is_regular_file()) {
          if (!RunFile(entry.path())) {
            return 1;
          }
          ++count;
        }
      }
    } else if (std::filesystem::exists(arg, ec)) {
      if (!RunFile(arg)) {
        return 1;
      }
      ++count;
    } else {
      std::fprintf(stderr, "replay: %s not found, skipped\n", argv[i]);
    }
  }
  std::printf("replay: %zu inputs ran without a crash\n", count);
  return count > 0 ? 0 : 1;
}
