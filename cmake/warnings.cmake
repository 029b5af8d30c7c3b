# SPDX-License-Identifier: Apache-2.0
# enclavia::warnings carries BoringSSL's warning set and the hardening flags; every target links
# it. enclavia::strict_conversions adds -Wconversion for src/lib.
add_library(enclavia_warnings INTERFACE)
add_library(enclavia::warnings ALIAS enclavia_warnings)
target_compile_options(enclavia_warnings INTERFACE
  -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wimplicit-fallthrough
  -Wmissing-declarations
  -fstack-protector-strong -fstack-clash-protection)
if(NOT ENCLAVIA_SANITIZE AND NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
  target_compile_options(enclavia_warnings INTERFACE -D_FORTIFY_SOURCE=3)
endif()
target_link_options(enclavia_warnings INTERFACE -Wl,-z,relro,-z,now -pie)

add_library(enclavia_strict_conversions INTERFACE)
add_library(enclavia::strict_conversions ALIAS enclavia_strict_conversions)
target_compile_options(enclavia_strict_conversions INTERFACE -Wconversion -Wsign-conversion)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  target_compile_options(enclavia_warnings INTERFACE -Wthread-safety)
endif()
