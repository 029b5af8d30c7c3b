// SPDX-License-Identifier: Apache-2.0
#include "enclave/egress/nic.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "enclave/egress/tun.h"
#include "lib/base/reader.h"
#include "lib/egress/dial.h"
#include "lib/sys/fd.h"
#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

// lwIP's platform hooks (lwipopts.h, arch/cc.h): the clock its timers run on and its random
// numbers (initial sequence numbers, ephemeral ports).
extern "C" u32_t sys_now(void) {
  auto now = std::chrono::steady_clock::now().time_since_epoch();
  return static_cast<u32_t>(
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()));
}

extern "C" uint32_t enclavia_lwip_rand(void) {
  uint32_t value = 0;
  // getrandom of 4 bytes from the initialized pool never blocks and never returns short.
  while (::getrandom(&value, sizeof(value), 0) != static_cast<ssize_t>(sizeof(value))) {
  }
  return value;
}

namespace enclavia::enclave {

// --- ParsePacket ---------------------------------------------------------------------------

namespace {

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr int kMaxIpv6ExtensionHeaders = 8;

// ParseTransport fills ports (and TCP fields) from the transport header at the start of `rest`.
Result<void> ParseTransport(uint8_t protocol, ByteSpan rest, ParsedPacket& out) {
  if (protocol != kProtoTcp && protocol != kProtoUdp) {
    out.kind = PacketKind::kOther;
    return Ok();
  }
  Reader r(rest);
  ASSIGN_OR_RETURN(out.source.port, r.ReadU16Be());
  ASSIGN_OR_RETURN(out.destination.port, r.ReadU16Be());
  if (protocol == kProtoUdp) {
    RETURN_IF_ERROR(r.Skip(4));  // length, checksum
    out.kind = PacketKind::kUdp;
    return Ok();
  }
  ASSIGN_OR_RETURN(out.tcp_seq, r.ReadU32Be());
  RETURN_IF_ERROR(r.Skip(4));  // ack
  ASSIGN_OR_RETURN(uint8_t offset, r.ReadU8());
  ASSIGN_OR_RETURN(out.tcp_flags, r.ReadU8());
  size_t header_length = static_cast<size_t>(offset >> 4) * 4;
  if (header_length < 20 || header_length > rest.size()) {
    return Error(Code::kMalformed, "TCP header length out of range");
  }
  out.kind = PacketKind::kTcp;
  return Ok();
}

Result<void> ParseV4(ByteSpan packet, ParsedPacket& out) {
  Reader r(packet);
  ASSIGN_OR_RETURN(uint8_t version_ihl, r.ReadU8());
  size_t header_length = static_cast<size_t>(version_ihl & 0x0f) * 4;
  RETURN_IF_ERROR(r.Skip(1));  // DSCP/ECN
  ASSIGN_OR_RETURN(uint16_t total_length, r.ReadU16Be());
  RETURN_IF_ERROR(r.Skip(2));  // identification
  ASSIGN_OR_RETURN(uint16_t fragment, r.ReadU16Be());
  RETURN_IF_ERROR(r.Skip(1));  // TTL
  ASSIGN_OR_RETURN(uint8_t protocol, r.ReadU8());
  RETURN_IF_ERROR(r.Skip(2));  // checksum
  ASSIGN_OR_RETURN(ByteSpan source, r.ReadBytes(4));
  ASSIGN_OR_RETURN(ByteSpan destination, r.ReadBytes(4));
  if (header_length < 20 || total_length < header_length || total_length > packet.size()) {
    return Error(Code::kMalformed, "IPv4 lengths out of range");
  }
  ASSIGN_OR_RETURN(out.source.ip, egress::FromBytes(source));
  ASSIGN_OR_RETURN(out.destination.ip, egress::FromBytes(destination));
  if ((fragment & 0x3fff) != 0) {  // MF set or a nonzero offset
    out.kind = PacketKind::kOther;
    return Ok();
  }
  return ParseTransport(protocol, packet.subspan(header_length, total_length - header_length),
                        out);
}

Result<void> ParseV6(ByteSpan packet, ParsedPacket& out) {
  Reader r(packet);
  RETURN_IF_ERROR(r.Skip(4));  // version, traffic class, flow label
  ASSIGN_OR_RETURN(uint16_t payload_length, r.ReadU16Be());
  ASSIGN_OR_RETURN(uint8_t next, r.ReadU8());
  RETURN_IF_ERROR(r.Skip(1));  // hop limit
  ASSIGN_OR_RETURN(ByteSpan source, r.ReadBytes(16));
  ASSIGN_OR_RETURN(ByteSpan destination, r.ReadBytes(16));
  ASSIGN_OR_RETURN(out.source.ip, egress::FromBytes(source));
  ASSIGN_OR_RETURN(out.destination.ip, egress::FromBytes(destination));
  ASSIGN_OR_RETURN(ByteSpan payload, r.ReadBytes(payload_length));
  for (int i = 0; i <= kMaxIpv6ExtensionHeaders; ++i) {
    switch (next) {
      case 0:    // hop-by-hop options
      case 43:   // routing
      case 60: {  // destination options
        Reader ext(payload);
        ASSIGN_OR_RETURN(uint8_t following, ext.ReadU8());
        ASSIGN_OR_RETURN(uint8_t length, ext.ReadU8());
        size_t size = (static_cast<size_t>(length) + 1) * 8;
        if (size > payload.size()) {
          return Error(Code::kMalformed, "IPv6 extension header past the packet");
        }
        payload = payload.subspan(size);
        next = following;
        break;
      }
      case 44:  // fragment: not reassembled
        out.kind = PacketKind::kOther;
        return Ok();
      default:
        return ParseTransport(next, payload, out);
    }
  }
  out.kind = PacketKind::kOther;  // too many extension headers: dropped as "other"
  return Ok();
}

}  // namespace

Result<ParsedPacket> ParsePacket(ByteSpan packet) {
  if (packet.empty()) {
    return Error(Code::kMalformed, "empty packet");
  }
  ParsedPacket out;
  switch (packet[0] >> 4) {
    case 4:
      RETURN_IF_ERROR(ParseV4(packet, out));
      break;
    case 6:
      RETURN_IF_ERROR(ParseV6(packet, out));
      break;
    default:
      return Error(Code::kMalformed, "not an IPv4 or IPv6 packet");
  }
  return out;
}

// --- the NIC ---------------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxPacket = 65535;            // one packet from the device (the largest MTU)
constexpr size_t kZeroCopyMin = 4096;           // smaller packets are copied out of `spare_`
constexpr size_t kSpliceBufferSize = 256 * 1024;  // one read from a dial stream
constexpr int kMaxPacketsPerWake = 256;
constexpr size_t kMaxDialResponse = 3 + 255;
constexpr uint64_t kTunEvent = 0;
constexpr uint64_t kWakeEvent = 1;
constexpr uint64_t kFirstFlowId = 2;

std::atomic<bool> g_nic_running{false};
std::once_flag g_lwip_once;
u8_t g_ext_arg_id = LWIP_TCP_PCB_NUM_EXT_ARG_ID_INVALID;
// g_current is the NIC whose lwIP callbacks run (one Nic per process: lwIP is global).
Nic::Impl* g_current = nullptr;

// FlowKey identifies a connection by the app's address and port and the destination's.
struct FlowKey {
  egress::Endpoint app;
  egress::Endpoint destination;
  friend auto operator<=>(const FlowKey&, const FlowKey&) = default;
};

enum class FlowState {
  kConnecting,  // nonblocking connect to the dialer under way; the app's SYN is held
  kRequested,   // dial request sent, waiting for the host's answer; the SYN is held
  kOpen,        // the host connected and lwIP has the SYN: splicing
};

struct Flow {
  uint64_t id = 0;
  FlowKey key;
  FlowState state = FlowState::kConnecting;
  sys::UniqueFd fd;  // the dial stream
  Bytes syn;         // the app's first SYN, held until the host answers
  uint32_t syn_seq = 0;
  Bytes request;
  size_t request_sent = 0;
  Bytes response;
  Clock::time_point deadline;
  tcp_pcb* pcb = nullptr;
  bool accepted = false;    // the app completed the handshake; nothing is sent to it before
  uint32_t epoll_events = 0;
  bool registered = false;
  bool dirty = false;       // an lwIP callback changed it: Service runs after lwIP returns
  bool reset = false;       // lwIP dropped the connection (RST from the app, or an abort)
  // app → host
  // Received from lwIP, not yet written to the dial stream: lwIP's own buffers (no copy), the
  // first `to_host_offset` bytes of the front one already written.
  std::deque<struct pbuf*> to_host;
  size_t to_host_offset = 0;
  size_t to_host_bytes = 0;
  bool app_fin = false;     // the app closed its sending side (lwIP recv NULL)
  bool host_shut = false;   // shutdown(SHUT_WR) done on the dial stream
  bool host_gone = false;   // the dial stream refuses writes: app bytes are discarded
  // host → app
  Bytes from_host;          // read from the dial stream, not yet taken by tcp_write
  size_t from_host_offset = 0;
  bool host_eof = false;    // the dial stream reached end of file
  bool app_shut = false;    // FIN queued to the app (tcp_shutdown)

  size_t to_host_pending() const { return to_host_bytes; }

  void DropToHost() {
    for (struct pbuf* p : to_host) {
      pbuf_free(p);
    }
    to_host.clear();
    to_host_offset = 0;
    to_host_bytes = 0;
  }

  Flow() = default;
  Flow(const Flow&) = delete;
  Flow& operator=(const Flow&) = delete;
  ~Flow() { DropToHost(); }
  size_t from_host_pending() const { return from_host.size() - from_host_offset; }
};

std::string FlowName(const Flow& flow) { return egress::FormatEndpoint(flow.key.destination); }

void ToLwip(const egress::IpAddress& ip, ip_addr_t& out) {
  if (ip.family == egress::IpFamily::kV4) {
    IP_SET_TYPE_VAL(out, IPADDR_TYPE_V4);
    std::memcpy(&ip_2_ip4(&out)->addr, ip.bytes.data(), 4);
  } else {
    IP_SET_TYPE_VAL(out, IPADDR_TYPE_V6);
    std::memcpy(ip_2_ip6(&out)->addr, ip.bytes.data(), 16);
#if LWIP_IPV6_SCOPES
    ip6_addr_clear_zone(ip_2_ip6(&out));
#endif
  }
}

}  // namespace

class Nic::Impl {
 public:
  explicit Impl(NicOptions options) : options_(std::move(options)) {}

  Result<void> Init(sys::UniqueFd tun);
  void Run();
  void Wake();
  void Teardown();
  NicStats Stats() const;

  std::thread thread;

 private:
  // lwIP callbacks (static trampolines).
  static err_t NetifInit(struct netif* netif);
  static err_t OutputV4(struct netif* netif, struct pbuf* p, const ip4_addr_t* ipaddr);
  static err_t OutputV6(struct netif* netif, struct pbuf* p, const ip6_addr_t* ipaddr);
  static err_t OnPassiveOpen(u8_t id, struct tcp_pcb_listen* lpcb, struct tcp_pcb* pcb);
  static err_t OnAccept(void* arg, struct tcp_pcb* pcb, err_t err);
  static err_t OnRecv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t err);
  static err_t OnSent(void* arg, struct tcp_pcb* pcb, u16_t len);
  static void OnErr(void* arg, err_t err);

  void Log(std::string_view line) {
    if (options_.log) {
      options_.log(line);
    }
  }

  err_t WritePacket(struct pbuf* p);
  void ReadDevice();
  void HandlePacket(ByteSpan packet);
  void InputToLwip(ByteSpan packet, const egress::IpAddress& destination);
  void CountDropped(const ParsedPacket* parsed);
  void SendReset(const ParsedPacket& syn);
  void NewFlow(const ParsedPacket& syn, ByteSpan packet);
  Result<void> StartDial(Flow& flow);
  void OnFlowEvent(Flow& flow, uint32_t events);
  Result<void> SendRequest(Flow& flow);
  Result<bool> ReadResponse(Flow& flow);
  void FailPending(Flow& flow, std::string_view why);
  Result<void> EnsureListener(uint16_t port);
  void PumpToHost(Flow& flow);
  void PumpToApp(Flow& flow);
  void MaybeFinish(Flow& flow);
  void MarkDirty(Flow& flow);
  void ServiceDirty();
  bool CanSendToApp(const Flow& flow) const {
    return flow.pcb != nullptr && flow.pcb->snd_buf > 0 &&
           tcp_sndqueuelen(flow.pcb) < TCP_SND_QUEUELEN - 4;
  }
  void AbortPcb(Flow& flow);
  tcp_pcb* DetachPcb(Flow& flow);
  void CloseFlow(Flow& flow);
  void UpdateInterest(Flow& flow);
  void CheckDeadlines();

  NicOptions options_;
  sys::UniqueFd tun_;
  sys::UniqueFd epoll_;
  sys::UniqueFd wake_;
  struct netif netif_ {};
  bool netif_added_ = false;
  std::atomic<bool> stopping_{false};

  uint64_t next_flow_id_ = kFirstFlowId;
  std::map<FlowKey, Flow*> flows_by_key_;
  std::unordered_map<uint64_t, std::unique_ptr<Flow>> flows_;
  std::vector<std::unique_ptr<Flow>> graveyard_;  // closed inside lwIP callbacks; freed later
  std::unordered_map<uint16_t, tcp_pcb*> listeners_;
  std::vector<uint64_t> dirty_;
  Flow* feeding_ = nullptr;  // the flow whose held SYN lwIP is processing (OnPassiveOpen)

  struct pbuf* spare_ = nullptr;  // the next packet is read into it
  std::vector<uint8_t> splice_buffer_ = std::vector<uint8_t>(kSpliceBufferSize);

  Clock::time_point last_drop_log_{};
  uint64_t drops_since_log_ = 0;
  std::string last_drop_example_;
  Clock::time_point last_deadline_check_{};

  std::atomic<uint64_t> allowed_{0}, denied_{0}, failed_{0}, over_limit_{0}, open_{0},
      udp_dropped_{0}, other_dropped_{0}, packets_in_{0}, packets_out_{0};
};

// --- setup and teardown ----------------------------------------------------------------------

err_t Nic::Impl::NetifInit(struct netif* netif) {
  netif->name[0] = 't';
  netif->name[1] = 'n';
  auto* self = static_cast<Impl*>(netif->state);
  netif->mtu = static_cast<u16_t>(self->options_.mtu);
#if LWIP_ND6_ALLOW_RA_UPDATES
  netif->mtu6 = netif->mtu;
#endif
  netif->output = &Impl::OutputV4;
  netif->output_ip6 = &Impl::OutputV6;
  netif->flags = 0;  // point-to-point: no broadcast, no ARP, no multicast
  return ERR_OK;
}

Result<void> Nic::Impl::Init(sys::UniqueFd tun) {
  tun_ = std::move(tun);
  epoll_ = sys::UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) {
    return sys::IoError("epoll_create1", errno);
  }
  wake_ = sys::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_.valid()) {
    return sys::IoError("eventfd", errno);
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kTunEvent;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, tun_.get(), &event) != 0) {
    return sys::IoError("epoll_ctl(tun)", errno);
  }
  event.data.u64 = kWakeEvent;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &event) != 0) {
    return sys::IoError("epoll_ctl(eventfd)", errno);
  }

  std::call_once(g_lwip_once, [] {
    lwip_init();
    g_ext_arg_id = tcp_ext_arg_alloc_id();
  });
  // lwIP's side of the link: the gateway addresses. They only matter until the first packet;
  // from then on InputToLwip points them at each packet's destination.
  ip4_addr_t address;
  ip4_addr_t netmask;
  IP4_ADDR(&address, 10, 0, 2, 2);
  IP4_ADDR(&netmask, 255, 255, 255, 0);
  if (netif_add(&netif_, &address, &netmask, IP4_ADDR_ANY4, this, &Impl::NetifInit, ip_input) ==
      nullptr) {
    return Error(Code::kInternal, "lwIP: netif_add failed");
  }
  netif_added_ = true;
  ip6_addr_t address6;
  IP6_ADDR(&address6, PP_HTONL(0xfd00e9c1UL), 0, 0, PP_HTONL(0x2UL));
  netif_ip6_addr_set(&netif_, 0, &address6);
  netif_ip6_addr_set_state(&netif_, 0, IP6_ADDR_PREFERRED);
  netif_set_default(&netif_);
  netif_set_link_up(&netif_);
  netif_set_up(&netif_);
  return Ok();
}

void Nic::Impl::Teardown() {
  for (auto& [id, flow] : flows_) {
    AbortPcb(*flow);
    flow->fd = sys::UniqueFd();
  }
  flows_.clear();
  flows_by_key_.clear();
  graveyard_.clear();
  for (auto& [port, listener] : listeners_) {
    tcp_close(listener);
  }
  listeners_.clear();
  // Connections lwIP still holds on its own (closing, TIME_WAIT) go with the device.
  while (tcp_active_pcbs != nullptr) {
    tcp_abort(tcp_active_pcbs);
  }
  while (tcp_tw_pcbs != nullptr) {
    tcp_abort(tcp_tw_pcbs);
  }
  if (spare_ != nullptr) {
    pbuf_free(spare_);
    spare_ = nullptr;
  }
  if (netif_added_) {
    netif_remove(&netif_);
    netif_added_ = false;
  }
  tun_ = sys::UniqueFd();
}

void Nic::Impl::Wake() {
  stopping_ = true;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof(one));
}

NicStats Nic::Impl::Stats() const {
  NicStats s;
  s.connections_allowed = allowed_;
  s.connections_denied = denied_;
  s.connections_failed = failed_;
  s.connections_over_limit = over_limit_;
  s.connections_open = open_;
  s.udp_dropped = udp_dropped_;
  s.other_dropped = other_dropped_;
  s.packets_in = packets_in_;
  s.packets_out = packets_out_;
  return s;
}

// --- the event loop --------------------------------------------------------------------------

void Nic::Impl::Run() {
  std::array<epoll_event, 64> events{};
  while (!stopping_) {
    u32_t sleep_ms = sys_timeouts_sleeptime();
    int timeout = static_cast<int>(std::min<u32_t>(sleep_ms, 250));
    int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) {
      Log(std::string("nic: epoll_wait failed: ").append(std::strerror(errno)));
      break;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[static_cast<size_t>(i)].data.u64;
      if (tag == kTunEvent) {
        ReadDevice();
      } else if (tag == kWakeEvent) {
        uint64_t value = 0;
        [[maybe_unused]] ssize_t r = ::read(wake_.get(), &value, sizeof(value));
      } else {
        auto it = flows_.find(tag);
        if (it != flows_.end()) {
          OnFlowEvent(*it->second, events[static_cast<size_t>(i)].events);
        }
      }
      ServiceDirty();
    }
    sys_check_timeouts();
    ServiceDirty();
    CheckDeadlines();
    graveyard_.clear();
  }
}

void Nic::Impl::CheckDeadlines() {
  Clock::time_point now = Clock::now();
  if (now - last_deadline_check_ < std::chrono::milliseconds(250)) {
    return;
  }
  last_deadline_check_ = now;
  std::vector<Flow*> expired;
  for (auto& [id, flow] : flows_) {
    if (flow->state != FlowState::kOpen && now >= flow->deadline) {
      expired.push_back(flow.get());
    }
  }
  for (Flow* flow : expired) {
    FailPending(*flow, "the host did not answer in time");
  }
  if (drops_since_log_ > 0 && now - last_drop_log_ >= std::chrono::seconds(1)) {
    CountDropped(nullptr);
  }
}

// --- the device ------------------------------------------------------------------------------

err_t Nic::Impl::OutputV4(struct netif* netif, struct pbuf* p, const ip4_addr_t*) {
  return static_cast<Impl*>(netif->state)->WritePacket(p);
}

err_t Nic::Impl::OutputV6(struct netif* netif, struct pbuf* p, const ip6_addr_t*) {
  return static_cast<Impl*>(netif->state)->WritePacket(p);
}

err_t Nic::Impl::WritePacket(struct pbuf* p) {
  std::array<iovec, 16> iov{};
  size_t count = 0;
  for (struct pbuf* q = p; q != nullptr; q = q->next) {
    if (count == iov.size()) {
      // Longer chains than lwIP builds for TCP: flatten.
      std::vector<uint8_t> flat(p->tot_len);
      pbuf_copy_partial(p, flat.data(), p->tot_len, 0);
      ssize_t n = ::write(tun_.get(), flat.data(), flat.size());
      if (n >= 0) {
        ++packets_out_;
      }
      return ERR_OK;
    }
    iov[count].iov_base = q->payload;
    iov[count].iov_len = q->len;
    ++count;
  }
  // A full device queue drops the packet; TCP retransmits it.
  ssize_t n = ::writev(tun_.get(), iov.data(), static_cast<int>(count));
  if (n >= 0) {
    ++packets_out_;
  }
  return ERR_OK;
}

void Nic::Impl::ReadDevice() {
  for (int i = 0; i < kMaxPacketsPerWake; ++i) {
    // Packets are read straight into an lwIP buffer; InputToLwip hands big ones over as they
    // are (small ones are copied into a buffer of their size, so queued ACKs stay small).
    if (spare_ == nullptr) {
      spare_ = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(kMaxPacket), PBUF_RAM);
      if (spare_ == nullptr) {
        return;
      }
    }
    ssize_t n = ::read(tun_.get(), spare_->payload, kMaxPacket);
    if (n <= 0) {
      return;  // EAGAIN (drained), EINTR (next wake) or a device error (nothing to do)
    }
    ++packets_in_;
    HandlePacket(ByteSpan(static_cast<const uint8_t*>(spare_->payload), static_cast<size_t>(n)));
    ServiceDirty();
  }
}

void Nic::Impl::HandlePacket(ByteSpan packet) {
  Result<ParsedPacket> parsed = ParsePacket(packet);
  if (!parsed) {
    CountDropped(nullptr);
    return;
  }
  if (parsed->kind != PacketKind::kTcp) {
    CountDropped(&*parsed);
    return;
  }
  FlowKey key{parsed->source, parsed->destination};
  auto it = flows_by_key_.find(key);
  if (it != flows_by_key_.end()) {
    if (it->second->state != FlowState::kOpen) {
      return;  // a retransmitted SYN (or anything else) while the host dials: dropped
    }
    InputToLwip(packet, parsed->destination.ip);
    return;
  }
  uint8_t flags = parsed->tcp_flags;
  if ((flags & (kTcpSyn | kTcpAck | kTcpRst)) == kTcpSyn) {
    NewFlow(*parsed, packet);
    return;
  }
  // Segments of connections lwIP closes on its own, or of none: lwIP answers (ACK or RST).
  InputToLwip(packet, parsed->destination.ip);
}

void Nic::Impl::InputToLwip(ByteSpan packet, const egress::IpAddress& destination) {
  if (packet.size() > 0xffff) {
    return;
  }
  struct pbuf* p = nullptr;
  if (spare_ != nullptr && packet.data() == spare_->payload && packet.size() >= kZeroCopyMin) {
    p = spare_;
    spare_ = nullptr;
    pbuf_realloc(p, static_cast<u16_t>(packet.size()));
  } else {
    p = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(packet.size()), PBUF_RAM);
    if (p == nullptr) {
      return;
    }
    pbuf_take(p, packet.data(), static_cast<u16_t>(packet.size()));
  }
  // lwIP accepts only packets addressed to its netif. The app connects anywhere, so the netif
  // takes each packet's destination as its address first. The fields are written directly:
  // netif_set_ipaddr would abort the PCBs bound to the previous address. Active PCBs match on
  // their own 4-tuple, and ip4_route/ip6_route return the single netif whatever its address.
  if (destination.family == egress::IpFamily::kV4) {
    ToLwip(destination, netif_.ip_addr);
  } else {
    ToLwip(destination, netif_.ip6_addr[0]);
  }
  if (netif_.input(p, &netif_) != ERR_OK) {
    pbuf_free(p);
  }
}

void Nic::Impl::CountDropped(const ParsedPacket* parsed) {
  Clock::time_point now = Clock::now();
  if (parsed != nullptr) {
    if (parsed->kind == PacketKind::kUdp) {
      ++udp_dropped_;
      last_drop_example_ = "UDP to " + egress::FormatEndpoint(parsed->destination);
    } else {
      ++other_dropped_;
      last_drop_example_ = "non-TCP to " + egress::FormatIp(parsed->destination.ip);
    }
    ++drops_since_log_;
  } else if (drops_since_log_ == 0) {
    ++other_dropped_;
    ++drops_since_log_;
    last_drop_example_ = "a malformed packet";
  }
  if (now - last_drop_log_ >= std::chrono::seconds(1)) {
    Log(std::string("drop ")
            .append(std::to_string(drops_since_log_))
            .append(" packet(s) that are not TCP (last: ")
            .append(last_drop_example_)
            .append(")"));
    last_drop_log_ = now;
    drops_since_log_ = 0;
  }
}

void Nic::Impl::SendReset(const ParsedPacket& syn) {
  ip_addr_t local;
  ip_addr_t remote;
  ToLwip(syn.destination.ip, local);
  ToLwip(syn.source.ip, remote);
  // RST|ACK acknowledging the SYN: the app's connect() fails with ECONNREFUSED at once.
  tcp_rst(nullptr, 0, syn.tcp_seq + 1, &local, &remote, syn.destination.port, syn.source.port);
}

// --- new connections -------------------------------------------------------------------------

void Nic::Impl::NewFlow(const ParsedPacket& syn, ByteSpan packet) {
  std::string name = egress::FormatEndpoint(syn.destination);
  if (flows_.size() >= options_.max_connections) {
    ++over_limit_;
    Log(std::string("refuse ").append(name).append(" (")
            .append(std::to_string(flows_.size()))
            .append(" connections open: the limit)"));
    SendReset(syn);
    return;
  }
  egress::Verdict verdict = options_.decide(syn.destination);
  if (!verdict.allowed) {
    ++denied_;
    Log(std::string("deny ").append(name).append(" (").append(verdict.reason).append(")"));
    SendReset(syn);
    return;
  }
  ++allowed_;
  std::string line = std::string("allow ").append(name).append(" (rule ").append(verdict.rule);
  if (!verdict.name.empty()) {
    line.append(", name ").append(verdict.name);
  }
  Log(line.append(")"));

  auto flow = std::make_unique<Flow>();
  flow->id = next_flow_id_++;
  flow->key = FlowKey{syn.source, syn.destination};
  flow->syn = ToBytes(packet);
  flow->syn_seq = syn.tcp_seq;
  flow->deadline = Clock::now() + std::chrono::milliseconds(options_.dial_timeout_ms);
  Flow& ref = *flow;
  flows_by_key_[flow->key] = flow.get();
  flows_[flow->id] = std::move(flow);
  ++open_;
  if (Result<void> started = StartDial(ref); !started) {
    FailPending(ref, started.error().message());
  }
}

Result<void> Nic::Impl::StartDial(Flow& flow) {
  ASSIGN_OR_RETURN(net::SocketAddress address, net::Resolve(options_.dialer));
  flow.fd = sys::UniqueFd(
      ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!flow.fd.valid()) {
    return sys::IoError("dial socket", errno);
  }
  flow.request = egress::EncodeDialRequest(flow.key.destination);
  if (::connect(flow.fd.get(), reinterpret_cast<const sockaddr*>(&address.storage),
                address.size) != 0 &&
      errno != EINPROGRESS) {
    return sys::IoError("connect to the host's dialer " + options_.dialer.ToString(), errno);
  }
  flow.state = FlowState::kConnecting;
  UpdateInterest(flow);
  return Ok();
}

void Nic::Impl::OnFlowEvent(Flow& flow, uint32_t events) {
  if (flow.state == FlowState::kConnecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) {
      return;
    }
    int error = 0;
    socklen_t size = sizeof(error);
    if (::getsockopt(flow.fd.get(), SOL_SOCKET, SO_ERROR, &error, &size) != 0) {
      error = errno;
    }
    if (error != 0) {
      FailPending(flow, std::string("cannot reach the host's dialer: ").append(std::strerror(error)));
      return;
    }
    flow.state = FlowState::kRequested;
    if (Result<void> sent = SendRequest(flow); !sent) {
      FailPending(flow, sent.error().message());
      return;
    }
    UpdateInterest(flow);
    return;
  }
  if (flow.state == FlowState::kRequested) {
    if (flow.request_sent < flow.request.size()) {
      if (Result<void> sent = SendRequest(flow); !sent) {
        FailPending(flow, sent.error().message());
        return;
      }
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
      Result<bool> connected = ReadResponse(flow);
      if (!connected) {
        FailPending(flow, connected.error().message());
        return;
      }
      if (!*connected) {
        UpdateInterest(flow);
        return;
      }
      // The host connected: lwIP gets the held SYN now and answers it.
      Result<void> listening = EnsureListener(flow.key.destination.port);
      if (!listening) {
        FailPending(flow, listening.error().message());
        return;
      }
      flow.state = FlowState::kOpen;
      feeding_ = &flow;
      Bytes syn = std::move(flow.syn);
      InputToLwip(syn, flow.key.destination.ip);
      feeding_ = nullptr;
      if (flow.pcb == nullptr) {
        flow.state = FlowState::kRequested;  // so FailPending resets the app
        FailPending(flow, "lwIP did not take the connection");
        return;
      }
      // The host's bytes (some may have come right behind its answer) wait for the handshake:
      // OnAccept marks the flow and ServiceDirty pumps them.
      UpdateInterest(flow);
      return;
    }
    UpdateInterest(flow);
    return;
  }
  if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 && flow.to_host_pending() > 0) {
    PumpToHost(flow);
    if (flows_.count(flow.id) == 0) {
      return;
    }
  }
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
    PumpToApp(flow);
  }
}

Result<void> Nic::Impl::SendRequest(Flow& flow) {
  while (flow.request_sent < flow.request.size()) {
    ssize_t n = ::send(flow.fd.get(), flow.request.data() + flow.request_sent,
                       flow.request.size() - flow.request_sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN) {
        return Ok();
      }
      return sys::IoError("send the dial request", errno);
    }
    flow.request_sent += static_cast<size_t>(n);
  }
  return Ok();
}

Result<bool> Nic::Impl::ReadResponse(Flow& flow) {
  while (true) {
    std::array<uint8_t, kMaxDialResponse> buffer{};
    size_t want = kMaxDialResponse - flow.response.size();
    ssize_t n = ::recv(flow.fd.get(), buffer.data(), std::max<size_t>(want, 1), 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN) {
        return false;
      }
      return sys::IoError("read the host's dial answer", errno);
    }
    if (n == 0) {
      return Error(Code::kUnavailable, "the host closed the dial stream without an answer");
    }
    flow.response.insert(flow.response.end(), buffer.begin(), buffer.begin() + n);
    ASSIGN_OR_RETURN(auto decoded, egress::DecodeDialResponse(flow.response));
    if (!decoded.has_value()) {
      if (flow.response.size() >= kMaxDialResponse) {
        return Error(Code::kMalformed, "the host's dial answer is too long");
      }
      continue;
    }
    if (decoded->value.status != egress::DialStatus::kConnected) {
      std::string why = std::string("host: ")
                            .append(egress::DialStatusName(decoded->value.status));
      if (!decoded->value.message.empty()) {
        // The host's text, escaped and truncated: it is untrusted.
        std::string message;
        for (char c : decoded->value.message.substr(0, 120)) {
          message.push_back(c >= 0x20 && c < 0x7f ? c : '?');
        }
        why.append(": ").append(message);
      }
      return Error(Code::kUnavailable, why);
    }
    // Bytes behind the answer already belong to the connection.
    flow.from_host.assign(flow.response.begin() + static_cast<std::ptrdiff_t>(decoded->used),
                          flow.response.end());
    flow.response.clear();
    return true;
  }
}

void Nic::Impl::FailPending(Flow& flow, std::string_view why) {
  ++failed_;
  Log(std::string("dial ").append(FlowName(flow)).append(" failed (").append(why).append(")"));
  if (flow.state != FlowState::kOpen) {
    ParsedPacket syn;
    syn.source = flow.key.app;
    syn.destination = flow.key.destination;
    syn.tcp_seq = flow.syn_seq;
    SendReset(syn);
  } else {
    AbortPcb(flow);
  }
  CloseFlow(flow);
}

Result<void> Nic::Impl::EnsureListener(uint16_t port) {
  if (listeners_.count(port) != 0) {
    return Ok();
  }
  // One listener per destination port, bound to every address of both families, kept until
  // Stop: its connections keep the port bound, so it could not be bound again while they live.
  tcp_pcb* pcb = tcp_new_ip_type(IPADDR_TYPE_ANY);
  if (pcb == nullptr) {
    return Error(Code::kInternal, "lwIP: out of memory for a listener");
  }
  if (tcp_bind(pcb, IP_ANY_TYPE, port) != ERR_OK) {
    tcp_abort(pcb);
    return Error(Code::kInternal, "lwIP: cannot bind port " + std::to_string(port));
  }
  err_t err = ERR_OK;
  tcp_pcb* listener = tcp_listen_with_backlog_and_err(pcb, TCP_DEFAULT_LISTEN_BACKLOG, &err);
  if (listener == nullptr) {
    tcp_abort(pcb);
    return Error(Code::kInternal, "lwIP: cannot listen on port " + std::to_string(port));
  }
  static const tcp_ext_arg_callbacks kCallbacks = {nullptr, &Impl::OnPassiveOpen};
  tcp_arg(listener, this);
  tcp_accept(listener, &Impl::OnAccept);
  tcp_ext_arg_set_callbacks(listener, g_ext_arg_id, &kCallbacks);
  listeners_[port] = listener;
  return Ok();
}

err_t Nic::Impl::OnPassiveOpen(u8_t, struct tcp_pcb_listen* lpcb, struct tcp_pcb* pcb) {
  auto* self = static_cast<Impl*>(lpcb->callback_arg);
  Flow* flow = self->feeding_;
  // Only a SYN the NIC fed (after the host connected) may open a connection.
  if (flow == nullptr || flow->pcb != nullptr) {
    return ERR_VAL;
  }
  flow->pcb = pcb;
  tcp_arg(pcb, flow);
  tcp_recv(pcb, &Impl::OnRecv);
  tcp_sent(pcb, &Impl::OnSent);
  tcp_err(pcb, &Impl::OnErr);
  tcp_nagle_disable(pcb);
  return ERR_OK;
}

err_t Nic::Impl::OnAccept(void* arg, struct tcp_pcb* pcb, err_t err) {
  auto* flow = static_cast<Flow*>(arg);
  if (err != ERR_OK || pcb == nullptr || flow == nullptr || g_current == nullptr) {
    return ERR_VAL;
  }
  // OnPassiveOpen bound the connection to its flow already. Only now may the host's bytes (and
  // its FIN) go to the app: with bytes and a FIN queued in SYN_RCVD (lwIP moves to FIN_WAIT_1
  // before the handshake completes) the app was seen to receive neither.
  flow->accepted = true;
  g_current->MarkDirty(*flow);
  return ERR_OK;
}

// --- splicing --------------------------------------------------------------------------------

// The callbacks only record what lwIP reported and mark the flow; Service acts on it once lwIP
// has returned (closing or aborting a PCB from inside its own callbacks is where lwIP users
// go wrong).
err_t Nic::Impl::OnRecv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t) {
  auto* flow = static_cast<Flow*>(arg);
  if (flow == nullptr || g_current == nullptr) {
    if (p != nullptr) {
      tcp_recved(pcb, p->tot_len);
      pbuf_free(p);
    }
    return ERR_OK;
  }
  if (p == nullptr) {
    flow->app_fin = true;
  } else {
    if (flow->host_gone) {
      tcp_recved(pcb, p->tot_len);  // the host stopped reading: discard
      pbuf_free(p);
    } else {
      flow->to_host_bytes += p->tot_len;
      flow->to_host.push_back(p);  // ours now; freed once written
    }
  }
  g_current->MarkDirty(*flow);
  return ERR_OK;
}

err_t Nic::Impl::OnSent(void* arg, struct tcp_pcb*, u16_t) {
  auto* flow = static_cast<Flow*>(arg);
  if (flow != nullptr && g_current != nullptr) {
    g_current->MarkDirty(*flow);
  }
  return ERR_OK;
}

void Nic::Impl::OnErr(void* arg, err_t err) {
  auto* flow = static_cast<Flow*>(arg);
  if (flow == nullptr || g_current == nullptr) {
    return;
  }
  flow->pcb = nullptr;  // lwIP freed it
  if (err == ERR_CLSD) {
    // Closed in order (the app acknowledged our FIN after sending its own): what is still
    // buffered for the host is delivered, then the dial stream closes.
    flow->app_fin = true;
  } else {
    flow->reset = true;
  }
  g_current->MarkDirty(*flow);
}

void Nic::Impl::MarkDirty(Flow& flow) {
  if (!flow.dirty) {
    flow.dirty = true;
    dirty_.push_back(flow.id);
  }
}

void Nic::Impl::ServiceDirty() {
  while (!dirty_.empty()) {
    std::vector<uint64_t> ids;
    ids.swap(dirty_);
    for (uint64_t id : ids) {
      auto it = flows_.find(id);
      if (it == flows_.end()) {
        continue;
      }
      Flow& flow = *it->second;
      flow.dirty = false;
      if (flow.reset) {
        CloseFlow(flow);  // the app reset (or lwIP gave up): the dial stream closes now
        continue;
      }
      PumpToHost(flow);
      if (flows_.count(id) != 0) {
        PumpToApp(flow);
      }
    }
  }
  graveyard_.clear();
}

void Nic::Impl::PumpToHost(Flow& flow) {
  size_t written_total = 0;
  while (flow.to_host_pending() > 0 && !flow.host_gone) {
    // writev straight from lwIP's buffers.
    std::array<iovec, 64> iov{};
    size_t count = 0;
    size_t skip = flow.to_host_offset;
    for (struct pbuf* chain : flow.to_host) {
      for (struct pbuf* q = chain; q != nullptr && count < iov.size(); q = q->next) {
        if (skip >= q->len) {
          skip -= q->len;
          continue;
        }
        iov[count].iov_base = static_cast<uint8_t*>(q->payload) + skip;
        iov[count].iov_len = q->len - skip;
        skip = 0;
        ++count;
      }
      if (count == iov.size()) {
        break;
      }
    }
    msghdr message{};
    message.msg_iov = iov.data();
    message.msg_iovlen = count;
    ssize_t n = ::sendmsg(flow.fd.get(), &message, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN) {
        break;
      }
      if (!flow.host_eof) {
        Log(std::string("reset ").append(FlowName(flow)).append(" (the host's stream failed: ")
                .append(std::strerror(errno)).append(")"));
        AbortPcb(flow);
        CloseFlow(flow);
        return;
      }
      // The host closed its stream after its last bytes: keep delivering those, drop the
      // app's (as a closed socket would).
      flow.host_gone = true;
      written_total += flow.to_host_pending();
      flow.DropToHost();
      break;
    }
    auto written = static_cast<size_t>(n);
    written_total += written;
    flow.to_host_bytes -= written;
    written += flow.to_host_offset;
    while (!flow.to_host.empty() && written >= flow.to_host.front()->tot_len) {
      written -= flow.to_host.front()->tot_len;
      pbuf_free(flow.to_host.front());
      flow.to_host.pop_front();
    }
    flow.to_host_offset = written;
  }
  // Window update only for bytes the host has taken: that is the app's backpressure.
  while (written_total > 0 && flow.pcb != nullptr) {
    auto chunk = static_cast<u16_t>(std::min<size_t>(written_total, 0xffff));
    tcp_recved(flow.pcb, chunk);
    written_total -= chunk;
  }
  if (flow.app_fin && flow.to_host_pending() == 0 && !flow.host_shut) {
    ::shutdown(flow.fd.get(), SHUT_WR);
    flow.host_shut = true;
  }
  MaybeFinish(flow);
  if (flows_.count(flow.id) != 0) {
    UpdateInterest(flow);
  }
}

void Nic::Impl::PumpToApp(Flow& flow) {
  if (flow.pcb == nullptr || !flow.accepted) {
    return;
  }
  bool wrote = false;
  while (true) {
    if (flow.from_host_pending() == 0 && !flow.host_eof) {
      if (!CanSendToApp(flow)) {
        break;
      }
      size_t room = std::min<size_t>(flow.pcb->snd_buf, splice_buffer_.size());
      ssize_t n = ::recv(flow.fd.get(), splice_buffer_.data(), room, 0);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        if (errno == EAGAIN) {
          break;
        }
        Log(std::string("reset ").append(FlowName(flow)).append(" (the host's stream failed: ")
                .append(std::strerror(errno)).append(")"));
        AbortPcb(flow);
        CloseFlow(flow);
        return;
      }
      if (n == 0) {
        flow.host_eof = true;
        break;
      }
      flow.from_host.assign(splice_buffer_.begin(), splice_buffer_.begin() + n);
      flow.from_host_offset = 0;
    }
    if (flow.from_host_pending() == 0) {
      break;
    }
    bool stalled = false;
    while (flow.from_host_pending() > 0) {
      size_t chunk = std::min<size_t>({flow.from_host_pending(), flow.pcb->snd_buf, 0xffff});
      if (chunk == 0) {
        stalled = true;
        break;
      }
      err_t err = tcp_write(flow.pcb, flow.from_host.data() + flow.from_host_offset,
                            static_cast<u16_t>(chunk), TCP_WRITE_FLAG_COPY);
      if (err == ERR_MEM) {
        stalled = true;  // the send queue is full: OnSent resumes
        break;
      }
      if (err != ERR_OK) {
        AbortPcb(flow);
        CloseFlow(flow);
        return;
      }
      wrote = true;
      flow.from_host_offset += chunk;
    }
    if (stalled) {
      break;
    }
  }
  if (flow.from_host_pending() == 0) {
    flow.from_host.clear();
    flow.from_host_offset = 0;
  }
  if (flow.host_eof && flow.from_host_pending() == 0 && !flow.app_shut) {
    tcp_shutdown(flow.pcb, 0, 1);  // FIN to the app after the host's last byte
    flow.app_shut = true;
    wrote = true;
  }
  if (wrote && flow.pcb != nullptr) {
    tcp_output(flow.pcb);
  }
  MaybeFinish(flow);
  if (flows_.count(flow.id) != 0) {
    UpdateInterest(flow);
  }
}

void Nic::Impl::MaybeFinish(Flow& flow) {
  if (flows_.count(flow.id) == 0) {
    return;
  }
  bool app_done = flow.app_fin && flow.to_host_pending() == 0;
  bool host_done = flow.host_eof && flow.from_host_pending() == 0 && (flow.app_shut ||
                                                                      flow.pcb == nullptr);
  if (flow.pcb == nullptr && app_done) {
    CloseFlow(flow);
    return;
  }
  if (!app_done || !host_done) {
    return;
  }
  if (flow.pcb != nullptr) {
    // lwIP finishes the exchange (retransmits, the last ACK) on its own.
    tcp_pcb* pcb = DetachPcb(flow);
    if (tcp_close(pcb) != ERR_OK) {
      tcp_abort(pcb);
    }
  }
  CloseFlow(flow);
}

// DetachPcb unhooks the flow's lwIP connection (no more callbacks reach the flow) and hands it
// to the caller, who closes or aborts it.
tcp_pcb* Nic::Impl::DetachPcb(Flow& flow) {
  tcp_pcb* pcb = flow.pcb;
  tcp_arg(pcb, nullptr);
  tcp_recv(pcb, nullptr);
  tcp_sent(pcb, nullptr);
  tcp_err(pcb, nullptr);
  flow.pcb = nullptr;
  return pcb;
}

void Nic::Impl::AbortPcb(Flow& flow) {
  if (flow.pcb == nullptr) {
    return;
  }
  tcp_abort(DetachPcb(flow));  // RST to the app
}

void Nic::Impl::CloseFlow(Flow& flow) {
  auto it = flows_.find(flow.id);
  if (it == flows_.end()) {
    return;
  }
  AbortPcb(flow);
  if (flow.registered) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, flow.fd.get(), nullptr);
    flow.registered = false;
  }
  flow.fd = sys::UniqueFd();
  flows_by_key_.erase(flow.key);
  graveyard_.push_back(std::move(it->second));  // the caller may still hold `flow`
  flows_.erase(it);
  --open_;
}

void Nic::Impl::UpdateInterest(Flow& flow) {
  uint32_t want = 0;
  switch (flow.state) {
    case FlowState::kConnecting:
      want = EPOLLOUT;
      break;
    case FlowState::kRequested:
      want = EPOLLIN | (flow.request_sent < flow.request.size() ? EPOLLOUT : 0u);
      break;
    case FlowState::kOpen:
      if (flow.to_host_pending() > 0) {
        want |= EPOLLOUT;
      }
      if (flow.accepted && !flow.host_eof && flow.from_host_pending() == 0 &&
          CanSendToApp(flow)) {
        want |= EPOLLIN;
      }
      break;
  }
  if (want == 0) {
    // Nothing to wait for (OnSent or OnRecv resumes). Deregistered so that a hung-up stream
    // cannot wake the loop in a circle.
    if (flow.registered) {
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, flow.fd.get(), nullptr);
      flow.registered = false;
    }
    return;
  }
  if (flow.registered && want == flow.epoll_events) {
    return;
  }
  epoll_event event{};
  event.events = want;
  event.data.u64 = flow.id;
  int op = flow.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (::epoll_ctl(epoll_.get(), op, flow.fd.get(), &event) == 0) {
    flow.registered = true;
    flow.epoll_events = want;
  }
}

// --- Nic -------------------------------------------------------------------------------------

Nic::Nic(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Nic::~Nic() { Stop(); }

Result<std::unique_ptr<Nic>> Nic::Start(NicOptions options) {
  if (!options.decide) {
    return Error(Code::kInvalidArgument, "nic: no decide callback");
  }
  if (options.mtu < 1280 || options.mtu > kTunMtu) {
    return Error(Code::kInvalidArgument, "nic: the MTU must be 1280..65535 (IPv6 needs 1280)");
  }
  bool expected = false;
  if (!g_nic_running.compare_exchange_strong(expected, true)) {
    return Error(Code::kFailedPrecondition, "nic: another NIC runs in this process (lwIP is global)");
  }
  TunOptions tun_options;
  tun_options.name = options.interface;
  tun_options.mtu = options.mtu;
  Result<sys::UniqueFd> tun = OpenTun(tun_options);
  if (!tun) {
    g_nic_running = false;
    return std::move(tun).error();
  }
  if (Result<void> configured = ConfigureTun(tun_options); !configured) {
    g_nic_running = false;
    return std::move(configured).error();
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  g_current = impl.get();
  if (Result<void> init = impl->Init(std::move(*tun)); !init) {
    impl->Teardown();
    g_current = nullptr;
    g_nic_running = false;
    return std::move(init).error();
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<Nic>(new Nic(std::move(impl)));
}

void Nic::Stop() {
  if (impl_ == nullptr) {
    return;
  }
  impl_->Wake();
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
  impl_->Teardown();
  impl_.reset();
  g_current = nullptr;
  g_nic_running = false;
}

NicStats Nic::stats() const { return impl_ == nullptr ? NicStats{} : impl_->Stats(); }

}  // namespace enclavia::enclave
