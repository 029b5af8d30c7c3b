// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_NET_PIPE_H_
#define ENCLAVIA_LIB_NET_PIPE_H_

#include <atomic>
#include <cstdint>

// PipeBoth copies bytes both ways between two connected stream sockets `a` and `b` (blocking
// descriptors) until both directions have ended, passing each half-close on (shutdown SHUT_WR).
// A read or write error ends both directions. It returns early, leaving the sockets open, when
// `wake_fd` (an eventfd or pipe; -1 for none) becomes readable. Every byte read is added to
// `bytes`. The caller owns and closes both sockets.
namespace enclavia::net {

void PipeBoth(int a, int b, int wake_fd, std::atomic<uint64_t>& bytes);

}  // namespace enclavia::net

#endif  // ENCLAVIA_LIB_NET_PIPE_H_
