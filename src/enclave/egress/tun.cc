// SPDX-License-Identifier: Apache-2.0
#include "enclave/egress/tun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <vector>

namespace enclavia::enclave {
namespace {

constexpr std::array<uint8_t, 4> kAppV4 = {10, 0, 2, 15};
constexpr uint8_t kAppV4PrefixLength = 24;
constexpr std::array<uint8_t, 16> kAppV6 = {0xfd, 0x00, 0xe9, 0xc1, 0, 0, 0, 0,
                                            0,    0,    0,    0,    0, 0, 0, 0x15};
constexpr uint8_t kAppV6PrefixLength = 64;

Result<void> CopyName(const std::string& name, ifreq& request) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return Error(Code::kInvalidArgument, "bad interface name \"" + name + "\"");
  }
  std::memcpy(request.ifr_name, name.data(), name.size());
  return Ok();
}

// SetLink applies the MTU (if nonzero) and IFF_UP to `name` with the classic ioctls.
Result<void> SetLink(const std::string& name, uint32_t mtu) {
  sys::UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    return sys::IoError("socket for interface ioctls", errno);
  }
  ifreq request{};
  RETURN_IF_ERROR(CopyName(name, request));
  if (mtu != 0) {
    request.ifr_mtu = static_cast<int>(mtu);
    if (::ioctl(sock.get(), SIOCSIFMTU, &request) != 0) {
      return sys::IoError("set the MTU of " + name, errno);
    }
  }
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &request) != 0) {
    return sys::IoError("read the flags of " + name, errno);
  }
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &request) != 0) {
    return sys::IoError("bring " + name + " up", errno);
  }
  return Ok();
}

Result<int> InterfaceIndex(const std::string& name) {
  sys::UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    return sys::IoError("socket for interface ioctls", errno);
  }
  ifreq request{};
  RETURN_IF_ERROR(CopyName(name, request));
  if (::ioctl(sock.get(), SIOCGIFINDEX, &request) != 0) {
    return sys::IoError("find interface " + name, errno);
  }
  return request.ifr_ifindex;
}

// NetlinkRequest builds one rtnetlink request, sends it and reads the kernel's acknowledgement.
class NetlinkRequest {
 public:
  NetlinkRequest(uint16_t type, uint16_t flags) {
    nlmsghdr header{};
    header.nlmsg_type = type;
    header.nlmsg_flags = static_cast<uint16_t>(flags | NLM_F_REQUEST | NLM_F_ACK);
    header.nlmsg_seq = 1;
    Append(&header, sizeof(header));
  }

  // Append adds `size` bytes, padded to NLMSG_ALIGNTO.
  void Append(const void* data, size_t size) {
    const auto* bytes = static_cast<const uint8_t*>(data);
    buffer_.insert(buffer_.end(), bytes, bytes + size);
    buffer_.resize(NLMSG_ALIGN(buffer_.size()), 0);
  }

  void AddAttribute(uint16_t type, const void* data, size_t size) {
    rtattr attribute{};
    attribute.rta_type = type;
    attribute.rta_len = static_cast<uint16_t>(RTA_LENGTH(size));
    size_t start = buffer_.size();
    buffer_.resize(start + RTA_SPACE(size), 0);
    std::memcpy(buffer_.data() + start, &attribute, sizeof(attribute));
    std::memcpy(buffer_.data() + start + RTA_LENGTH(0), data, size);
  }

  Result<void> Run(std::string_view what) {
    nlmsghdr header{};
    std::memcpy(&header, buffer_.data(), sizeof(header));
    header.nlmsg_len = static_cast<uint32_t>(buffer_.size());
    std::memcpy(buffer_.data(), &header, sizeof(header));

    sys::UniqueFd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!sock.valid()) {
      return sys::IoError("netlink socket", errno);
    }
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    ssize_t sent = ::sendto(sock.get(), buffer_.data(), buffer_.size(), 0,
                            reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel));
    if (sent < 0 || static_cast<size_t>(sent) != buffer_.size()) {
      return sys::IoError(what, sent < 0 ? errno : EIO);
    }
    std::array<uint8_t, 4096> reply{};
    ssize_t n;
    do {
      n = ::recv(sock.get(), reply.data(), reply.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      return sys::IoError(what, errno);
    }
    // The acknowledgement is one NLMSG_ERROR message; error 0 means success.
    if (static_cast<size_t>(n) < NLMSG_LENGTH(sizeof(nlmsgerr))) {
      return Error(Code::kIo, std::string(what) + ": short netlink reply");
    }
    nlmsghdr reply_header{};
    std::memcpy(&reply_header, reply.data(), sizeof(reply_header));
    if (reply_header.nlmsg_type != NLMSG_ERROR) {
      return Error(Code::kIo, std::string(what) + ": unexpected netlink reply");
    }
    nlmsgerr ack{};
    std::memcpy(&ack, reply.data() + NLMSG_HDRLEN, sizeof(ack));
    if (ack.error != 0) {
      return sys::IoError(what, -ack.error);
    }
    return Ok();
  }

 private:
  std::vector<uint8_t> buffer_;
};

Result<void> AddAddress(int index, int family, const uint8_t* address, size_t size,
                        uint8_t prefix_length, const std::string& what) {
  NetlinkRequest request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg message{};
  message.ifa_family = static_cast<uint8_t>(family);
  message.ifa_prefixlen = prefix_length;
  message.ifa_scope = RT_SCOPE_UNIVERSE;
  message.ifa_index = static_cast<uint32_t>(index);
  // Without DAD the IPv6 address is usable at once (tentative addresses cannot be bound).
  message.ifa_flags = family == AF_INET6 ? IFA_F_NODAD : 0;
  request.Append(&message, sizeof(message));
  request.AddAttribute(IFA_LOCAL, address, size);
  request.AddAttribute(IFA_ADDRESS, address, size);
  if (family == AF_INET6) {
    uint32_t flags = IFA_F_NODAD;
    request.AddAttribute(IFA_FLAGS, &flags, sizeof(flags));
  }
  return request.Run(what);
}

Result<void> AddDefaultRoute(int index, int family, const std::string& what) {
  NetlinkRequest request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  rtmsg message{};
  message.rtm_family = static_cast<uint8_t>(family);
  message.rtm_dst_len = 0;
  message.rtm_table = RT_TABLE_MAIN;
  message.rtm_protocol = RTPROT_BOOT;
  // A route through a point-to-point device without a gateway: every destination is on-link.
  message.rtm_scope = family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  message.rtm_type = RTN_UNICAST;
  request.Append(&message, sizeof(message));
  auto oif = static_cast<uint32_t>(index);
  request.AddAttribute(RTA_OIF, &oif, sizeof(oif));
  return request.Run(what);
}

}  // namespace

Result<sys::UniqueFd> OpenTun(const TunOptions& options) {
  ASSIGN_OR_RETURN(sys::UniqueFd fd, sys::Open("/dev/net/tun", O_RDWR | O_NONBLOCK));
  ifreq request{};
  RETURN_IF_ERROR(CopyName(options.name, request));
  request.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (::ioctl(fd.get(), TUNSETIFF, &request) != 0) {
    return sys::IoError("create TUN device " + options.name, errno);
  }
  return fd;
}

Result<void> ConfigureTun(const TunOptions& options) {
  RETURN_IF_ERROR(SetLink(options.name, options.mtu));
  ASSIGN_OR_RETURN(int i, InterfaceIndex(options.name));
  RETURN_IF_ERROR(AddAddress(i, AF_INET, kAppV4.data(), kAppV4.size(), kAppV4PrefixLength,
                             "add 10.0.2.15/24 to " + options.name));
  RETURN_IF_ERROR(AddAddress(i, AF_INET6, kAppV6.data(), kAppV6.size(), kAppV6PrefixLength,
                             "add fd00:e9c1::15/64 to " + options.name));
  RETURN_IF_ERROR(AddDefaultRoute(i, AF_INET, "add the IPv4 default route via " + options.name));
  RETURN_IF_ERROR(AddDefaultRoute(i, AF_INET6, "add the IPv6 default route via " + options.name));
  return Ok();
}

Result<void> BringLoopbackUp() { return SetLink("lo", 0); }

}  // namespace enclavia::enclave
