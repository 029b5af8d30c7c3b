// SPDX-License-Identifier: Apache-2.0
// compat.h is force-included (-include) into every C++ file of the wasm build only. Debian's
// emscripten 3.1.6 ships libc++ 13, which lacks three C++20 pieces src/lib uses and GCC 12's
// libstdc++ has: std::bit_cast, floating-point std::to_chars and operator<=> on std::array. They
// are supplied here, in namespace std, only for libc++ < 14 (a newer emscripten makes this a
// no-op).
// The OpenSSL built for wasm has no scrypt (scripts/build-wasm): the one caller, encrypted PKCS#8
// export in lib/crypto/keys.cc, which no client path reaches, gets a stub that fails cleanly.
#ifndef ENCLAVIA_BINDINGS_JS_COMPAT_H_
#define ENCLAVIA_BINDINGS_JS_COMPAT_H_

#ifdef __cplusplus
#include <version>

#if defined(_LIBCPP_VERSION) && _LIBCPP_VERSION < 14000
#include <array>
#include <charconv>
#include <compare>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <type_traits>
#include <utility>

namespace std {

#ifndef __cpp_lib_bit_cast
template <class To, class From>
  requires(sizeof(To) == sizeof(From) && is_trivially_copyable_v<To> &&
           is_trivially_copyable_v<From>)
constexpr To bit_cast(const From& from) noexcept {
  return __builtin_bit_cast(To, from);
}
#endif

// operator<=> for std::array (libc++ 14 added it): lexicographic, as the standard's.
template <class T, size_t N>
constexpr auto operator<=>(const array<T, N>& a, const array<T, N>& b)
    -> decltype(declval<const T&>() <=> declval<const T&>()) {
  for (size_t i = 0; i < N; ++i) {
    if (auto c = a[i] <=> b[i]; c != 0) {
      return c;
    }
  }
  return strong_ordering::equal;
}

// to_chars(double, scientific|fixed): the fewest digits that read back as the same double (the
// standard's shortest round-trip), found by trying precisions in increasing order.
inline to_chars_result to_chars(char* first, char* last, double value, chars_format format) {
  const bool fixed = format == chars_format::fixed;
  // %.16e (17 significant digits) always reads back; fixed may need up to ~330 decimals.
  const int max_precision = fixed ? 340 : 16;
  char buf[700];
  for (int precision = 0; precision <= max_precision; ++precision) {
    const int n = snprintf(buf, sizeof buf, fixed ? "%.*f" : "%.*e", precision, value);
    if (n < 0 || static_cast<size_t>(n) >= sizeof buf) {
      return {last, errc::value_too_large};
    }
    if (strtod(buf, nullptr) == value || precision == max_precision) {
      if (n > last - first) {
        return {last, errc::value_too_large};
      }
      memcpy(first, buf, static_cast<size_t>(n));
      return {first + n, errc()};
    }
  }
  return {last, errc::value_too_large};
}

}  // namespace std
#endif  // libc++ < 14

#include <openssl/opensslconf.h>
#ifdef OPENSSL_NO_SCRYPT
#include <cstdint>

#include <openssl/evp.h>
#include <openssl/x509.h>
inline X509_ALGOR* PKCS5_pbe2_set_scrypt(const EVP_CIPHER*, const unsigned char*, int,
                                         unsigned char*, uint64_t, uint64_t, uint64_t) {
  return nullptr;  // Encrypted key export is unavailable in the browser build.
}
#endif

#endif  // __cplusplus
#endif  // ENCLAVIA_BINDINGS_JS_COMPAT_H_
