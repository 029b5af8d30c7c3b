// SPDX-License-Identifier: Apache-2.0
#include "lib/net/address.h"

#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstddef>
#include <cstring>

namespace enclavia::net {
namespace {

Error Bad(std::string_view text, std::string_view why) {
  return Error(Code::kInvalidArgument,
               "address \"" + std::string(text.substr(0, 120)) + "\": " + std::string(why));
}

Result<uint32_t> ParseNumber(std::string_view s, uint32_t max) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > max) {
    return Error(Code::kInvalidArgument, "bad number");
  }
  return v;
}

}  // namespace

std::string Address::ToString() const {
  switch (family) {
    case Family::kUnix:
      return "unix:" + host;
    case Family::kVsock:
      return "vsock:" + std::to_string(cid) + ":" + std::to_string(port);
    case Family::kTcp:
      break;
  }
  if (host.find(':') != std::string::npos) {
    return "tcp:[" + host + "]:" + std::to_string(port);
  }
  return "tcp:" + host + ":" + std::to_string(port);
}

Result<Address> ParseAddress(std::string_view text) {
  Address a;
  if (text.starts_with("unix:")) {
    a.family = Family::kUnix;
    a.host = std::string(text.substr(5));
    if (a.host.empty()) {
      return Bad(text, "empty socket path");
    }
    if (a.host.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return Bad(text, "socket path too long");
    }
    return a;
  }
  if (text.starts_with("vsock:")) {
    a.family = Family::kVsock;
    std::string_view rest = text.substr(6);
    size_t colon = rest.find(':');
    if (colon == std::string_view::npos) {
      return Bad(text, "expected vsock:CID:PORT");
    }
    auto cid = ParseNumber(rest.substr(0, colon), UINT32_MAX);
    auto port = ParseNumber(rest.substr(colon + 1), UINT32_MAX);
    if (!cid || !port) {
      return Bad(text, "CID and PORT must be decimal numbers");
    }
    a.cid = *cid;
    a.port = *port;
    return a;
  }
  std::string_view rest = text.starts_with("tcp:") ? text.substr(4) : text;
  a.family = Family::kTcp;
  std::string_view host;
  std::string_view port;
  if (rest.starts_with("[")) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return Bad(text, "expected [IPv6]:PORT");
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return Bad(text, "expected HOST:PORT, unix:PATH or vsock:CID:PORT");
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  auto p = ParseNumber(port, 65535);
  if (!p) {
    return Bad(text, "port must be 0..65535");
  }
  a.port = *p;
  a.host = host.empty() ? std::string("0.0.0.0") : std::string(host);
  if (a.host == "localhost") {
    a.host = "127.0.0.1";
  }
  in6_addr six{};
  in_addr four{};
  if (inet_pton(AF_INET, a.host.c_str(), &four) != 1 &&
      inet_pton(AF_INET6, a.host.c_str(), &six) != 1) {
    return Bad(text, "host must be an IP literal or localhost (no DNS)");
  }
  return a;
}

Result<SocketAddress> Resolve(const Address& address) {
  SocketAddress out;
  switch (address.family) {
    case Family::kUnix: {
      sockaddr_un un{};
      un.sun_family = AF_UNIX;
      if (address.host.size() >= sizeof(un.sun_path)) {
        return Error(Code::kInvalidArgument, "unix socket path too long");
      }
      std::memcpy(un.sun_path, address.host.data(), address.host.size());
      std::memcpy(&out.storage, &un, sizeof(un));
      out.size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.host.size() + 1);
      return out;
    }
    case Family::kVsock: {
      sockaddr_vm vm{};
      vm.svm_family = AF_VSOCK;
      vm.svm_cid = address.cid;
      vm.svm_port = address.port;
      std::memcpy(&out.storage, &vm, sizeof(vm));
      out.size = sizeof(vm);
      return out;
    }
    case Family::kTcp:
      break;
  }
  in_addr four{};
  if (inet_pton(AF_INET, address.host.c_str(), &four) == 1) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<uint16_t>(address.port));
    in.sin_addr = four;
    std::memcpy(&out.storage, &in, sizeof(in));
    out.size = sizeof(in);
    return out;
  }
  in6_addr six{};
  if (inet_pton(AF_INET6, address.host.c_str(), &six) == 1) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(static_cast<uint16_t>(address.port));
    in6.sin6_addr = six;
    std::memcpy(&out.storage, &in6, sizeof(in6));
    out.size = sizeof(in6);
    return out;
  }
  return Error(Code::kInvalidArgument, "not an IP literal: " + address.host);
}

}  // namespace enclavia::net
