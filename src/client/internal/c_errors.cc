// SPDX-License-Identifier: Apache-2.0
#include "client/internal/c_errors.h"

#include <utility>

namespace enclavia::client::internal {

std::string& LastError() {
  thread_local std::string last_error;
  return last_error;
}

enclavia_status Fail(const Error& error) {
  LastError() = error.message();
  return static_cast<enclavia_status>(error.code());
}

enclavia_status FailWith(enclavia_status status, std::string message) {
  LastError() = std::move(message);
  return status;
}

enclavia_status Invalid(const char* function) {
  LastError() = std::string(function).append(": NULL argument");
  return ENCLAVIA_INVALID_ARGUMENT;
}

enclavia_status Succeed() {
  LastError().clear();
  return ENCLAVIA_OK;
}

}  // namespace enclavia::client::internal
