/* SPDX-License-Identifier: Apache-2.0 */
/* lwIP configuration of the enclave's emulated NIC (docs/egress.md, "The emulated NIC").
 *
 * One netif (the TUN device), no link layer, TCP only: lwIP terminates the app's outbound TCP
 * connections and the NIC (nic.cc) splices each into a dial stream to the host. No threads
 * (NO_SYS): the NIC's single thread calls lwIP. Memory comes from malloc, so the only limits are
 * the NIC's own (connections) and TCP's windows. */
#ifndef ENCLAVIA_LWIPOPTS_H_
#define ENCLAVIA_LWIPOPTS_H_

/* --- system: no OS abstraction, no locking (one thread owns lwIP) --- */
#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_NETCONN 0
#define LWIP_SOCKET 0
#define LWIP_NETIF_API 0
#define LWIP_TIMERS 1

/* --- memory: libc malloc for the heap and for every pool --- */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 1
#define MEM_ALIGNMENT 8
/* Only the width of mem_size_t depends on this with MEM_LIBC_MALLOC (> 64000: 32 bits). */
#define MEM_SIZE (64 * 1024 * 1024)
/* Nominal pool sizes; with MEMP_MEM_MALLOC they only feed lwIP's configuration checks. */
#define MEMP_NUM_TCP_PCB 4096
#define MEMP_NUM_TCP_PCB_LISTEN 1024
#define MEMP_NUM_TCP_SEG 65535
#define MEMP_NUM_PBUF 1024
#define PBUF_POOL_SIZE 64
#define MEMP_NUM_SYS_TIMEOUT 16

/* --- protocols --- */
#define LWIP_IPV4 1
#define LWIP_IPV6 1
#define LWIP_TCP 1
#define LWIP_UDP 0
#define LWIP_RAW 0
#define LWIP_ICMP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_ARP 0
#define LWIP_ETHERNET 0
#define LWIP_IPV6_MLD 0
#define LWIP_IPV6_AUTOCONFIG 0
#define LWIP_IPV6_DHCP6 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 0
#define LWIP_IPV6_SCOPES 0
/* IPv6 needs ICMPv6 (lwIP sends parameter problems); the NIC never hands ICMP to lwIP. */
#define LWIP_ICMP6 1
#define LWIP_IPV6_FRAG 0
#define LWIP_IPV6_REASS 0
#define IP_REASSEMBLY 0
#define IP_FRAG 0
#define LWIP_HAVE_LOOPIF 0
#define LWIP_NETIF_LOOPBACK 0
/* One netif: ip4_route/ip6_route return it for every destination (the app's addresses). */
#define LWIP_SINGLE_NETIF 1

/* --- TCP, sized for throughput on a TUN device with MTU 65535 (tun.h kTunMtu) --- */
/* The MSS lwIP offers and the largest segment it sends; tcp_eff_send_mss clamps it to the
 * netif's MTU (65535 - 40 for IPv4, - 60 for IPv6) and the app's own MSS option. */
#define TCP_MSS 65475
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 7
/* Receive window per connection: bytes the app may send before the NIC has written them to the
 * dial stream (tcp_recved runs only after that write). */
/* 1 MiB each: windows far beyond the in-enclave round trip; 2 MiB measured no better. */
#define TCP_WND (1024 * 1024)
/* Send buffer per connection: bytes from the host not yet acknowledged by the app. */
#define TCP_SND_BUF (1024 * 1024)
#define TCP_SND_QUEUELEN 8192
/* TCP_SNDLOWAT only matters to the netconn API (not built). lwIP's configuration check wants it
 * 4 MSS below 0xFFFF, impossible with a 64 KiB MSS; the check predates window scaling (snd_buf
 * is 32 bits here), so the TCP checks are off and these values were reviewed by hand. */
#define TCP_SNDLOWAT (TCP_SND_BUF / 4)
#define LWIP_DISABLE_TCP_SANITY_CHECKS 1
#define TCP_SNDQUEUELOWAT (TCP_SND_QUEUELEN / 2)
#define TCP_OVERSIZE TCP_MSS
#define TCP_QUEUE_OOSEQ 1
#define LWIP_TCP_SACK_OUT 0
#define TCP_LISTEN_BACKLOG 0
#define LWIP_TCP_KEEPALIVE 0
#define LWIP_TCP_TIMESTAMPS 0
#define TCP_CALCULATE_EFF_SEND_MSS 1
/* One extension slot: the NIC's passive-open hook binds each new PCB to its flow before the
 * handshake completes, so an app reset in SYN_RCVD reaches the NIC (tcp_err). */
#define LWIP_TCP_PCB_NUM_EXT_ARGS 1
#define LWIP_CALLBACK_API 1
#define LWIP_EVENT_API 0
#define SO_REUSE 0

/* --- checksums: generated on output (the kernel checks them); the kernel's own packets are not
 * re-checked on input --- */
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_CHECK_IP 0
#define CHECKSUM_CHECK_TCP 0
#define LWIP_CHECKSUM_ON_COPY 1

/* --- netif --- */
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_NETIF_HOSTNAME 0
#define LWIP_NUM_NETIF_CLIENT_DATA 0
#define PBUF_LINK_HLEN 0
#define PBUF_LINK_ENCAPSULATION_HLEN 0

/* --- no statistics, no debug output --- */
#define LWIP_STATS 0
/* LWIP_DEBUG stays undefined (lwIP tests it with #ifdef); LWIP_ASSERT aborts on a broken
 * invariant inside lwIP. */

#endif /* ENCLAVIA_LWIPOPTS_H_ */
