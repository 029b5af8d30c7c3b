# SPDX-License-Identifier: Apache-2.0
# The emulated NIC: a TUN device as the enclave's default route and lwIP on it; each allowed
# outbound TCP connection becomes a dial stream to the host (docs/egress.md, "The emulated NIC").
include(${PROJECT_SOURCE_DIR}/cmake/lwip.cmake)

add_library(enclavia_egress_nic tun.cc nic.cc)
add_library(enclavia::egress_nic ALIAS enclavia_egress_nic)
target_link_libraries(enclavia_egress_nic PUBLIC enclavia::egress enclavia::net enclavia::sys
                      enclavia::base
                      PRIVATE enclavia::lwip Threads::Threads enclavia::warnings
                      enclavia::strict_conversions)

enclavia_test(enclavia_egress_nic_test SOURCES nic_test.cc LIBS enclavia::egress_nic)
