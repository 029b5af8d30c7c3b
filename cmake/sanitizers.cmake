# SPDX-License-Identifier: Apache-2.0
# ENCLAVIA_SANITIZE builds everything with AddressSanitizer and UndefinedBehaviorSanitizer; any
# report aborts the test that caused it. Debug information is line tables only (-g1): enough for
# the sanitizers' stack traces, and much cheaper to compile and link than full -g.
if(ENCLAVIA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -O1 -g1)
  add_link_options(-fsanitize=address,undefined)
endif()
