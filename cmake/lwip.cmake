# SPDX-License-Identifier: Apache-2.0
# enclavia_lwip: lwIP's core (IPv4, IPv6, TCP; NO_SYS, no sockets or netconn API) compiled from
# Debian's source package, which scripts/install-deps unpacks into ENCLAVIA_LWIP_SOURCE_DIR.
# Debian's liblwip-dev is a shared library built for the GNU Hurd with its own lwipopts.h; the
# enclave's NIC needs its own options (src/enclave/egress/lwip/lwipopts.h), so we build the core.
# lwIP is third-party C: it gets none of our warning flags, and its headers are SYSTEM includes
# for the C++ that uses them.
if(TARGET enclavia_lwip)
  return()
endif()

set(ENCLAVIA_LWIP_SOURCE_DIR "/usr/local/src/enclavia/lwip" CACHE PATH
    "lwIP source tree (Debian's lwip source package; scripts/install-deps installs it)")
if(NOT EXISTS "${ENCLAVIA_LWIP_SOURCE_DIR}/src/core/tcp.c")
  message(FATAL_ERROR "lwIP source not found in ${ENCLAVIA_LWIP_SOURCE_DIR}: run scripts/install-deps")
endif()

set(enclavia_lwip_dir_ "${ENCLAVIA_LWIP_SOURCE_DIR}/src")
add_library(enclavia_lwip STATIC
  ${enclavia_lwip_dir_}/core/init.c
  ${enclavia_lwip_dir_}/core/def.c
  ${enclavia_lwip_dir_}/core/inet_chksum.c
  ${enclavia_lwip_dir_}/core/ip.c
  ${enclavia_lwip_dir_}/core/mem.c
  ${enclavia_lwip_dir_}/core/memp.c
  ${enclavia_lwip_dir_}/core/netif.c
  ${enclavia_lwip_dir_}/core/pbuf.c
  ${enclavia_lwip_dir_}/core/stats.c
  ${enclavia_lwip_dir_}/core/sys.c
  ${enclavia_lwip_dir_}/core/tcp.c
  ${enclavia_lwip_dir_}/core/tcp_in.c
  ${enclavia_lwip_dir_}/core/tcp_out.c
  ${enclavia_lwip_dir_}/core/timeouts.c
  ${enclavia_lwip_dir_}/core/ipv4/ip4.c
  ${enclavia_lwip_dir_}/core/ipv4/ip4_addr.c
  ${enclavia_lwip_dir_}/core/ipv6/ip6.c
  ${enclavia_lwip_dir_}/core/ipv6/ip6_addr.c
  ${enclavia_lwip_dir_}/core/ipv6/inet6.c
  ${enclavia_lwip_dir_}/core/ipv6/nd6.c
  ${enclavia_lwip_dir_}/core/ipv6/icmp6.c)
add_library(enclavia::lwip ALIAS enclavia_lwip)
target_include_directories(enclavia_lwip SYSTEM PUBLIC
  ${PROJECT_SOURCE_DIR}/src/enclave/egress/lwip
  ${enclavia_lwip_dir_}/include)
# No -Werror (or any of enclavia::warnings) here: lwIP's warnings are upstream's business.
target_compile_options(enclavia_lwip PRIVATE -w)
set_target_properties(enclavia_lwip PROPERTIES C_STANDARD 11 C_EXTENSIONS ON
                      POSITION_INDEPENDENT_CODE ON)
unset(enclavia_lwip_dir_)
