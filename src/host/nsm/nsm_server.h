// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_NSM_NSM_SERVER_H_
#define ENCLAVIA_HOST_NSM_NSM_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lib/attestation/nsm.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/sys/fd.h"

// The host side of the local provider's /dev/nsm: an Nsm (the simulator) served over a Unix
// stream socket with the framing of lib/attestation/nsm_socket.h. Everything read from the socket
// comes from inside the enclave and is untrusted: a malformed request gets the module's Error
// response, a frame over kNsmSocketMaxRequest closes that connection, nothing crashes the server.
namespace enclavia::host {

// HandleNsmRequest answers one CBOR request (attestation::DecodeRequest → `nsm` →
// attestation::EncodeResponse). It never fails: a request that does not decode is answered
// {"Error": "InvalidArgument"}; an error from `nsm` becomes the Error variant its message names
// ("nsm: ReadOnlyIndex"), else InvalidArgument or InternalError by its code.
Bytes HandleNsmRequest(ByteSpan request, attestation::Nsm& nsm);

// ServeNsmRequest reads one framed request from the blocking socket `fd` and writes the framed
// answer. It returns false when the peer closed the connection before a request, true after an
// answer; kLimitExceeded for a frame over the limit (close the connection) and kIo for socket
// errors or a stream ending inside a frame.
Result<bool> ServeNsmRequest(int fd, attestation::Nsm& nsm);

// NsmServer serves an Nsm on a listening Unix socket from a single-threaded poll loop that the
// caller drives, so that it can wait on its own descriptors (a signalfd, a pidfd) in the same
// poll. Each connection's bytes are buffered until a whole frame is there; answers are written
// with a 1 s budget (a client that does not read loses its connection). At most
// kMaxConnections connections are open at once; more are accepted and closed. Not thread-safe.
class NsmServer {
 public:
  static constexpr size_t kMaxConnections = 64;

  // Listen creates the socket at `path` (replacing a stale socket file there), mode 0666, and
  // serves `nsm`, which must outlive the server. kIo on failure.
  static Result<NsmServer> Listen(const std::string& path, attestation::Nsm& nsm);

  // Poll waits up to `timeout_ms` (-1: forever) for the listening socket, the connections and
  // `extra_fds`; accepts and answers what is ready; and returns those of `extra_fds` that are
  // readable (or hung up). kIo only if poll itself fails.
  Result<std::vector<int>> Poll(std::span<const int> extra_fds, int timeout_ms);

  size_t connections() const { return clients_.size(); }

 private:
  struct Client {
    sys::UniqueFd fd;
    Bytes buffer;
  };
  NsmServer(sys::UniqueFd listener, attestation::Nsm& nsm)
      : listener_(std::move(listener)), nsm_(&nsm) {}
  void Accept();
  // OnReadable reads what is there and answers every whole frame; false: close the connection.
  bool OnReadable(Client& client);

  sys::UniqueFd listener_;
  attestation::Nsm* nsm_;
  std::vector<Client> clients_;
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_NSM_NSM_SERVER_H_
