// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BASE_FLAGS_H_
#define ENCLAVIA_LIB_BASE_FLAGS_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/result.h"

// The enclave daemons' flags (enclavia-ingress, -storage, -witness), which are too small for
// CLI11 in a static runtime: `--name VALUE`, `--name=VALUE` and switches.
namespace enclavia {

struct Flag {
  std::string name;   // "--config"; a switch as given ("--help", "-h").
  std::string value;  // Empty for a switch.
};

// SplitFlags reads `args` (argv without argv[0]). `switches` take no value ("--help", "-h",
// "--allow-debug"). Every other argument must be `--name VALUE` or `--name=VALUE` with a
// non-empty value; anything else is kInvalidArgument naming it ("--config needs a value",
// "unexpected argument 'x'"). Which names exist is the caller's business.
Result<std::vector<Flag>> SplitFlags(const std::vector<std::string>& args,
                                     std::initializer_list<std::string_view> switches);

// UnexpectedFlag is the caller's error for a name it does not know.
Error UnexpectedFlag(const Flag& flag);

// DescriptorFlag reads `flag`'s value as a file descriptor number (0..1023, e.g. --ready-fd);
// kInvalidArgument naming the flag otherwise.
Result<int> DescriptorFlag(const Flag& flag);

}  // namespace enclavia

#endif  // ENCLAVIA_LIB_BASE_FLAGS_H_
