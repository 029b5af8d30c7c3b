// SPDX-License-Identifier: Apache-2.0
#include "lib/http/token.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/crypto/random.h"

namespace enclavia::http {

namespace {
constexpr size_t kMaxTokenFile = 1024;
}  // namespace

Result<std::string> LoadOrCreateToken(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    ASSIGN_OR_RETURN(Bytes bytes, ReadFile(path, kMaxTokenFile));
    std::string token(bytes.begin(), bytes.end());
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
      token.pop_back();
    }
    if (token.size() != 64 || !HexDecode(token)) {
      return Error(Code::kFailedPrecondition,
                   path + " is not a 64-digit hex token: remove it to make a new one");
    }
    return token;
  }
  std::string token = HexEncode(crypto::RandomBytes(32));
  std::string text = token + "\n";
  RETURN_IF_ERROR(WriteFileAtomic(path, AsBytes(text), 0600));
  return token;
}

std::string DefaultDataDir() {
  if (const char* env = std::getenv("ENCLAVIA_HOME"); env != nullptr && *env != '\0') {
    return env;
  }
  if (::geteuid() == 0) {
    return "/var/lib/enclavia";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.local/share/enclavia";
}

}  // namespace enclavia::http
