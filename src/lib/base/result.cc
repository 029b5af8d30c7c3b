// SPDX-License-Identifier: Apache-2.0
#include "lib/base/result.h"

#include <cstdio>
#include <cstdlib>

namespace enclavia {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kMalformed: return "malformed";
    case Code::kVerifyFailed: return "verify_failed";
    case Code::kUntrusted: return "untrusted";
    case Code::kExpired: return "expired";
    case Code::kPolicyViolation: return "policy_violation";
    case Code::kLimitExceeded: return "limit_exceeded";
    case Code::kNotFound: return "not_found";
    case Code::kAlreadyExists: return "already_exists";
    case Code::kUnsupported: return "unsupported";
    case Code::kIo: return "io";
    case Code::kFailedPrecondition: return "failed_precondition";
    case Code::kInternal: return "internal";
    case Code::kUnavailable: return "unavailable";
  }
  return "unknown";
}

Error Error::WithContext(std::string_view context) const& {
  return Error(code_, std::string(context) + ": " + message_);
}

Error Error::WithContext(std::string_view context) && {
  message_.insert(0, std::string(context) + ": ");
  return std::move(*this);
}

namespace internal {

void CheckFailed(const char* file, int line, const char* expr) {
  std::fprintf(stderr, "%s:%d: ENCLAVIA_CHECK failed: %s\n", file, line, expr);
  std::abort();
}

void BadResultAccess(const Error& error) {
  std::fprintf(stderr, "value() of an error Result: %s\n", error.message().c_str());
  std::abort();
}

}  // namespace internal
}  // namespace enclavia
