# SPDX-License-Identifier: Apache-2.0
# ENCLAVIA_BUILD_FUZZ instruments every target for libFuzzer with ASan + UBSan (clang only).
if(ENCLAVIA_BUILD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ENCLAVIA_BUILD_FUZZ needs clang (CC=clang-14 CXX=clang++-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -gline-tables-only)
  add_link_options(-fsanitize=address,undefined)
endif()
