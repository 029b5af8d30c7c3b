// SPDX-License-Identifier: Apache-2.0
#include "lib/base/flags.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace enclavia {

Result<std::vector<Flag>> SplitFlags(const std::vector<std::string>& args,
                                     std::initializer_list<std::string_view> switches) {
  std::vector<Flag> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (std::find(switches.begin(), switches.end(), arg) != switches.end()) {
      out.push_back({arg, ""});
      continue;
    }
    if (!arg.starts_with("--")) {
      return Error(Code::kInvalidArgument, "unexpected argument '" + arg + "'");
    }
    Flag flag;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      flag.name = arg.substr(0, eq);
      flag.value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      flag.name = arg;
      flag.value = args[++i];
    } else {
      return Error(Code::kInvalidArgument, arg + " needs a value");
    }
    if (flag.value.empty()) {
      return Error(Code::kInvalidArgument, flag.name + " needs a non-empty value");
    }
    out.push_back(std::move(flag));
  }
  return out;
}

Error UnexpectedFlag(const Flag& flag) {
  return Error(Code::kInvalidArgument, "unexpected argument '" + flag.name + "'");
}

Result<int> DescriptorFlag(const Flag& flag) {
  char* end = nullptr;
  errno = 0;
  long fd = std::strtol(flag.value.c_str(), &end, 10);
  if (errno != 0 || end == flag.value.c_str() || *end != '\0' || fd < 0 || fd > 1023) {
    return Error(Code::kInvalidArgument, flag.name + " needs a descriptor number");
  }
  return static_cast<int>(fd);
}

}  // namespace enclavia
