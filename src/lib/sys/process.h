// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_SYS_PROCESS_H_
#define ENCLAVIA_LIB_SYS_PROCESS_H_

// Process-wide settings a daemon's `main` chooses (never a library).
namespace enclavia::sys {

// TuneAllocatorForStreaming keeps glibc's heap from shrinking and regrowing around every
// 64 KiB channel message: by default a freed top-of-heap chunk over 128 KiB is returned with
// brk() and the next message faults its pages back in, which cost the channel's data path more
// than its encryption (bench/channel.sh). Afterwards up to 32 MiB of free heap is kept.
void TuneAllocatorForStreaming();

}  // namespace enclavia::sys

#endif  // ENCLAVIA_LIB_SYS_PROCESS_H_
