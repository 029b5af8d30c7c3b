// SPDX-License-Identifier: Apache-2.0
// enclavia-init: the enclave's /init. Flags → configuration → run the application.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <sys/prctl.h>

#include "enclave/init/init.h"

namespace {

int Fail(const enclavia::Error& error, int code) {
  std::fprintf(stderr, "enclavia-init: %s\n", error.message().c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace enclavia::init;  // NOLINT(google-build-using-namespace): main only.
  ::prctl(PR_SET_DUMPABLE, 0);
  auto flags = ParseFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags) {
    return Fail(flags.error(), kExitUsage);
  }
  if (flags->help) {
    std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
    return 0;
  }
  auto config = LoadConfig(flags->config_path);
  if (!config) {
    return Fail(config.error(), kExitError);
  }
  Reaping reaping = ::getpid() == 1 ? Reaping::kAllChildren : Reaping::kAppOnly;
  auto exit = RunApp(config->app, reaping);
  if (!exit) {
    return Fail(exit.error(), kExitError);
  }
  if (!exit->exec_error.empty()) {
    std::fprintf(stderr, "enclavia-init: %s\n", exit->exec_error.c_str());
  }
  return exit->exit_code;
}
