# SPDX-License-Identifier: Apache-2.0
# enclavia-egress: NIC + firewall + resolver in one daemon, part of the runtime.
add_library(enclavia_egress_daemon ${CMAKE_CURRENT_LIST_DIR}/daemon.cc)
add_library(enclavia::egress_daemon ALIAS enclavia_egress_daemon)
target_link_libraries(enclavia_egress_daemon
  PUBLIC enclavia::base enclavia::net
  PRIVATE enclavia::egress_nic enclavia::egress_resolver enclavia::egress enclavia::config
          enclavia::transport enclavia::sys enclavia::warnings)

add_executable(enclavia-egress ${CMAKE_CURRENT_LIST_DIR}/main.cc)
target_link_libraries(enclavia-egress PRIVATE enclavia::egress_daemon enclavia::warnings)
enclavia_runtime_binary(enclavia-egress NAME usr/bin/enclavia-egress)
