# SPDX-License-Identifier: Apache-2.0
# ENCLAVIA_SANITIZE builds everything with AddressSanitizer and UndefinedBehaviorSanitizer; any
# report aborts the test that caused it.
if(ENCLAVIA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -O1 -g)
  add_link_options(-fsanitize=address,undefined)
endif()
