/* SPDX-License-Identifier: Apache-2.0 */
/* lwIP's compiler/platform port for the enclave's emulated NIC (Linux, GCC or clang, x86-64 or
 * arm64). lwIP includes it through lwip/arch.h. */
#ifndef ENCLAVIA_LWIP_ARCH_CC_H_
#define ENCLAVIA_LWIP_ARCH_CC_H_

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

/* Linux's errno values and struct timeval come from libc, not from lwIP's copies. */
#define LWIP_ERRNO_STDINCLUDE 1
#define LWIP_TIMEVAL_PRIVATE 0

/* The random numbers lwIP draws: initial sequence numbers and ephemeral ports. They come from
 * the kernel's CSPRNG (enclavia_lwip_rand in nic.cc), so the app's peers cannot predict them. */
#ifdef __cplusplus
extern "C" {
#endif
uint32_t enclavia_lwip_rand(void);
#ifdef __cplusplus
}
#endif
#define LWIP_RAND() (enclavia_lwip_rand())

/* Diagnostics go to stderr; a failed assertion is a broken invariant inside lwIP: abort. */
#define LWIP_PLATFORM_DIAG(x) \
  do {                        \
    printf x;                 \
  } while (0)
#define LWIP_PLATFORM_ASSERT(x)                                                   \
  do {                                                                            \
    fprintf(stderr, "lwIP assertion \"%s\" failed at %s:%d\n", x, __FILE__, __LINE__); \
    abort();                                                                      \
  } while (0)

#endif /* ENCLAVIA_LWIP_ARCH_CC_H_ */
