// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_SYS_PROCESS_H_
#define ENCLAVIA_LIB_SYS_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "lib/base/result.h"

namespace enclavia::sys {

// RunCommand runs argv (argv[0] looked up in PATH) with stdin from /dev/null and stdout/stderr
// captured, waits at most `timeout` (then SIGKILL) and returns its exit status, or 128 + the
// signal. `output` (if set) receives at most 64 KiB of what it printed. kIo if it cannot start.
Result<int> RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                       std::string* output = nullptr);

// Spawn starts argv in the background (stdin /dev/null, stdout and stderr to `log_fd`, or
// /dev/null when -1) and returns its pid. The caller reaps it. With `die_with_parent` the child
// gets SIGKILL when the thread that spawned it ends (PR_SET_PDEATHSIG), so it cannot outlive a
// killed supervisor.
Result<pid_t> Spawn(const std::vector<std::string>& argv, int log_fd = -1,
                    bool die_with_parent = false);

// Process-wide settings a daemon's `main` chooses (never a library).

// TuneAllocatorForStreaming keeps glibc's heap from shrinking and regrowing around every
// 64 KiB channel message: by default a freed top-of-heap chunk over 128 KiB is returned with
// brk() and the next message faults its pages back in, which cost the channel's data path more
// than its encryption (bench/channel.sh). Afterwards up to 32 MiB of free heap is kept.
void TuneAllocatorForStreaming();

}  // namespace enclavia::sys

#endif  // ENCLAVIA_LIB_SYS_PROCESS_H_
