# SPDX-License-Identifier: Apache-2.0
# The resolver: the app's DNS server on 127.0.0.53, DNSSEC validation with libunbound, and the
# forwarder that relays libunbound's upstream queries over egress (docs/egress.md, "The resolver").
#
# libunbound: the shared library for dynamic (sanitizer) builds; for the static runtime the
# archives `pkg-config --static --libs libunbound` names (Debian builds it with nettle, not
# OpenSSL): libunbound.a libhogweed.a libnettle.a libgmp.a libevent.a.
if(NOT TARGET PkgConfig::UNBOUND)
  pkg_check_modules(UNBOUND REQUIRED IMPORTED_TARGET libunbound)
endif()
if(NOT TARGET enclavia_unbound_static)
  foreach(lib unbound hogweed nettle gmp event)
    string(TOUPPER ${lib} upper)
    find_library(ENCLAVIA_LIB${upper}_A NAMES lib${lib}.a REQUIRED)
  endforeach()
  add_library(enclavia_unbound_static INTERFACE)
  target_link_libraries(enclavia_unbound_static INTERFACE
    ${ENCLAVIA_LIBUNBOUND_A} ${ENCLAVIA_LIBHOGWEED_A} ${ENCLAVIA_LIBNETTLE_A} ${ENCLAVIA_LIBGMP_A}
    ${ENCLAVIA_LIBEVENT_A} Threads::Threads)
  target_include_directories(enclavia_unbound_static INTERFACE ${UNBOUND_INCLUDE_DIRS})
endif()
enclavia_system_lib(enclavia_unbound_lib_ PkgConfig::UNBOUND enclavia_unbound_static)

add_library(enclavia_egress_resolver resolver.cc)
add_library(enclavia::egress_resolver ALIAS enclavia_egress_resolver)
target_link_libraries(enclavia_egress_resolver
  PUBLIC enclavia::egress enclavia::base enclavia::sys
  PRIVATE enclavia::dns enclavia::net ${enclavia_unbound_lib_} Threads::Threads enclavia::warnings)
target_include_directories(enclavia_egress_resolver PRIVATE ${UNBOUND_INCLUDE_DIRS})

enclavia_test(enclavia_egress_resolver_test SOURCES resolver_test.cc
              LIBS enclavia::egress_resolver enclavia::dns enclavia::net enclavia::knot_server)
if(TARGET enclavia_egress_resolver_test)
  # Linked like the runtime (static in non-sanitizer builds), so the test proves libunbound and
  # its dependencies link and run statically.
  enclavia_static_binary(enclavia_egress_resolver_test)
endif()
