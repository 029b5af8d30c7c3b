// SPDX-License-Identifier: Apache-2.0
#include "lib/transport/transport.h"

#include <sys/stat.h>

#include <string>

namespace enclavia::transport {
namespace {

net::Address Unix(std::string path) {
  net::Address a;
  a.family = net::Family::kUnix;
  a.host = std::move(path);
  return a;
}

net::Address Vsock(uint32_t cid, uint32_t port) {
  net::Address a;
  a.family = net::Family::kVsock;
  a.cid = cid;
  a.port = port;
  return a;
}

std::string PortSocket(std::string_view dir, uint32_t port) {
  return std::string(dir) + "/" + std::to_string(port) + ".sock";
}

std::string ParentSocket(std::string_view dir, uint32_t port) {
  return std::string(dir) + "/parent-" + std::to_string(port) + ".sock";
}

}  // namespace

Result<Mode> DetectMode() {
  struct stat st {};
  if (::stat(std::string(kLocalVsockDir).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Mode::kLocal;
  }
  if (::stat("/dev/vsock", &st) == 0) {
    return Mode::kVsock;
  }
  return Error(Code::kFailedPrecondition, "transport: neither " + std::string(kLocalVsockDir) +
                                              " (local sandbox) nor /dev/vsock (Nitro) exists");
}

net::Address EnclaveListen(Mode mode, uint32_t port) {
  if (mode == Mode::kLocal) {
    return Unix(PortSocket(kLocalVsockDir, port));
  }
  return Vsock(kAnyCid, port);
}

net::Address EnclaveToParent(Mode mode, uint32_t port) {
  if (mode == Mode::kLocal) {
    return Unix(ParentSocket(kLocalVsockDir, port));
  }
  return Vsock(kParentCid, port);
}

net::Address HostToEnclave(const Endpoint& endpoint, uint32_t port) {
  if (!endpoint.local_dir.empty()) {
    return Unix(PortSocket(endpoint.local_dir, port));
  }
  return Vsock(endpoint.cid, port);
}

net::Address HostListenForEnclave(const Endpoint& endpoint, uint32_t port) {
  if (!endpoint.local_dir.empty()) {
    return Unix(ParentSocket(endpoint.local_dir, port));
  }
  return Vsock(kAnyCid, port);
}

}  // namespace enclavia::transport
