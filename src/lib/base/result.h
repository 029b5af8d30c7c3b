// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BASE_RESULT_H_
#define ENCLAVIA_LIB_BASE_RESULT_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace enclavia {

// Code classifies an Error. The values map 1:1 onto the C ABI's enclavia_status; never renumber.
enum class Code : int {
  kOk = 0,
  kInvalidArgument = 1,    // The caller passed something unusable (flags, sizes, options).
  kMalformed = 2,          // Untrusted bytes do not parse.
  kVerifyFailed = 3,       // A signature, MAC or AEAD tag did not verify.
  kUntrusted = 4,          // A chain does not end at a trusted root.
  kExpired = 5,            // Outside a validity window (too old or not yet valid).
  kPolicyViolation = 6,    // Verified, but the trust policy rejects it.
  kLimitExceeded = 7,      // An input or a count is over a configured cap.
  kNotFound = 8,
  kAlreadyExists = 9,
  kUnsupported = 10,
  kIo = 11,                // A system call or the file system failed.
  kFailedPrecondition = 12,
  kInternal = 13,          // A library we call failed unexpectedly.
  kUnavailable = 14,
};

// CodeName returns a stable lowercase name for `code`, e.g. "verify_failed".
std::string_view CodeName(Code code);

// Error is a failure: a code and a one-line message for humans. Messages never contain secrets.
class Error {
 public:
  Error(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // WithContext returns this error with "context: " prepended to the message.
  Error WithContext(std::string_view context) const&;
  Error WithContext(std::string_view context) &&;

  // ToString renders "message" (the code is for programs; the message is for people).
  std::string ToString() const { return message_; }

 private:
  Code code_;
  std::string message_;
};

namespace internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr);
[[noreturn]] void BadResultAccess(const Error& error);
}  // namespace internal

// ENCLAVIA_CHECK aborts on a broken invariant, in every build. Never use it on anything the host,
// the network or a file controls: those get an Error.
#define ENCLAVIA_CHECK(cond)                                              \
  do {                                                                    \
    if (!(cond)) {                                                        \
      ::enclavia::internal::CheckFailed(__FILE__, __LINE__, #cond);      \
    }                                                                     \
  } while (false)

// Result<T> holds a T or an Error. It is the subset of std::expected<T, Error> we need, so that
// moving to C++23 is an alias swap. Accessing the value of an error Result aborts.
template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  // NOLINTNEXTLINE(google-explicit-constructor): implicit, as std::expected.
  Result(T value) : storage_(std::in_place_index<0>, std::move(value)) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  Result(Error error) : storage_(std::in_place_index<1>, std::move(error)) {}
  template <typename U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
             !std::is_same_v<std::decay_t<U>, Error> &&
             !std::is_same_v<std::decay_t<U>, Result<T>>)
  // NOLINTNEXTLINE(google-explicit-constructor)
  Result(U&& value) : storage_(std::in_place_index<0>, T(std::forward<U>(value))) {}

  bool has_value() const { return storage_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    Check();
    return std::get<0>(storage_);
  }
  const T& value() const& {
    Check();
    return std::get<0>(storage_);
  }
  T&& value() && {
    Check();
    return std::get<0>(std::move(storage_));
  }
  const Error& error() const& {
    ENCLAVIA_CHECK(!has_value());
    return std::get<1>(storage_);
  }
  Error&& error() && {
    ENCLAVIA_CHECK(!has_value());
    return std::get<1>(std::move(storage_));
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void Check() const {
    if (!has_value()) {
      internal::BadResultAccess(std::get<1>(storage_));
    }
  }
  std::variant<T, Error> storage_;
};

// Result<void> is success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;
  Result() = default;
  // NOLINTNEXTLINE(google-explicit-constructor)
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  void value() const {
    if (!ok_) {
      internal::BadResultAccess(error_);
    }
  }
  const Error& error() const& {
    ENCLAVIA_CHECK(!ok_);
    return error_;
  }
  Error&& error() && {
    ENCLAVIA_CHECK(!ok_);
    return std::move(error_);
  }

 private:
  Error error_{Code::kOk, ""};
  bool ok_ = true;
};

// Ok returns a successful Result<void>.
inline Result<void> Ok() { return {}; }

}  // namespace enclavia

#define ENCLAVIA_CONCAT_INNER_(a, b) a##b
#define ENCLAVIA_CONCAT_(a, b) ENCLAVIA_CONCAT_INNER_(a, b)

// RETURN_IF_ERROR(expr) returns the Error of `expr` (any Result) from the enclosing function.
#define RETURN_IF_ERROR(expr)                                          \
  do {                                                                 \
    auto enclavia_result_ = (expr);                                    \
    if (!enclavia_result_.has_value()) {                               \
      return std::move(enclavia_result_).error();                      \
    }                                                                  \
  } while (false)

// ASSIGN_OR_RETURN(lhs, expr) evaluates `expr` (a Result<T>); on error returns it, otherwise
// assigns the value to `lhs`, which may declare a variable: ASSIGN_OR_RETURN(Bytes b, Read());
#define ASSIGN_OR_RETURN(lhs, expr) \
  ENCLAVIA_ASSIGN_OR_RETURN_IMPL_(ENCLAVIA_CONCAT_(enclavia_result_, __LINE__), lhs, expr)
#define ENCLAVIA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.has_value()) {                                \
    return std::move(tmp).error();                       \
  }                                                      \
  lhs = std::move(tmp).value()

#endif  // ENCLAVIA_LIB_BASE_RESULT_H_
