// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLIENT_INTERNAL_C_ERRORS_H_
#define ENCLAVIA_CLIENT_INTERNAL_C_ERRORS_H_

#include <string>

#include "enclavia/client.h"
#include "lib/base/result.h"

// The C ABI's error contract, shared by c_api.cc (threads, sockets) and core_api.cc (sans-I/O):
// one thread_local last error per thread, set by every function that returns a status.
namespace enclavia::client::internal {

// LastError is the calling thread's last error message (what enclavia_last_error returns).
std::string& LastError();

// Fail records `error`'s message and returns its code as a status.
enclavia_status Fail(const Error& error);
// FailWith records `message` and returns `status`.
enclavia_status FailWith(enclavia_status status, std::string message);
// Invalid records "<function>: NULL argument" and returns ENCLAVIA_INVALID_ARGUMENT.
enclavia_status Invalid(const char* function);
// Succeed clears the last error and returns ENCLAVIA_OK.
enclavia_status Succeed();

}  // namespace enclavia::client::internal

#endif  // ENCLAVIA_CLIENT_INTERNAL_C_ERRORS_H_
