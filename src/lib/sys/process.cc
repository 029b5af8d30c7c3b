// SPDX-License-Identifier: Apache-2.0
#include "lib/sys/process.h"

#include <malloc.h>

namespace enclavia::sys {

void TuneAllocatorForStreaming() {
  // Fixed values also turn off glibc's dynamic mmap threshold, which would otherwise raise the
  // trim threshold only after the first large free.
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  mallopt(M_TOP_PAD, 1 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
}

}  // namespace enclavia::sys
