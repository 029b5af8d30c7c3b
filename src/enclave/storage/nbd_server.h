// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_STORAGE_NBD_SERVER_H_
#define ENCLAVIA_ENCLAVE_STORAGE_NBD_SERVER_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "enclave/storage/nbd_protocol.h"
#include "lib/base/result.h"
#include "lib/storage/block_device.h"
#include "lib/sys/fd.h"

namespace enclavia::enclave {

// NbdOptions configures an NbdServer.
struct NbdOptions {
  // export_name is the name clients may ask for besides "" (the default export). At most 4096
  // bytes, no NUL.
  std::string export_name = "enclavia";
  // max_connections caps concurrent connections; further ones are accepted and closed at once.
  // Each connection may hold one request buffer of up to 32 MiB.
  uint32_t max_connections = 8;
};

// NbdStats counts what the server has done since Start. Each field is read atomically, but the
// fields are not a consistent snapshot of one instant.
struct NbdStats {
  uint64_t connections = 0;    // Accepted (including those closed for max_connections).
  uint64_t requests = 0;       // Transmission-phase requests, excluding NBD_CMD_DISC.
  uint64_t bytes_read = 0;     // Payload bytes of successful READs.
  uint64_t bytes_written = 0;  // Payload bytes of successful WRITEs.
  uint64_t errors = 0;         // Requests answered with a nonzero error.
};

// NbdServer exports one storage::BlockDevice over the NBD protocol (fixed newstyle, simple
// replies; docs/nbd.md) on a Unix stream socket. One thread accepts; each connection gets a
// thread with blocking I/O that handles its requests one at a time, in order, and replies to
// each only after the device call returned — so a FLUSH reply, or the reply to a FUA request,
// means the device committed. Connections call the device concurrently: the server relies on
// BlockDevice's thread safety and adds no lock of its own. Device errors are replied as EIO (or
// EINVAL for kInvalidArgument) for that request only; malformed framing closes the connection.
class NbdServer {
 public:
  // Start binds `unix_socket_path` (mode 0600, set before listen(), so no other user can ever
  // connect) and serves `device`, which must outlive the server. A socket file nobody listens
  // on (a crashed server's) is replaced; a live socket or any other file there is
  // kAlreadyExists. kInvalidArgument for bad options or a path too long for sockaddr_un; kIo if
  // the socket cannot be set up.
  static Result<std::unique_ptr<NbdServer>> Start(const std::string& unix_socket_path,
                                                  storage::BlockDevice& device, NbdOptions options);

  // Key restricts construction to Start (the constructor is public only for std::make_unique).
  class Key {
    friend class NbdServer;
    Key() = default;
  };
  NbdServer(Key key, std::string path, storage::BlockDevice& device, NbdOptions options,
            sys::UniqueFd listen_fd, sys::UniqueFd wake_read, sys::UniqueFd wake_write);

  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;
  // The destructor calls Stop().
  ~NbdServer();

  // Stop closes the listener, shuts down every connection (a request already in the device
  // completes there, but its reply may be lost: clients see a hard disconnect), joins all threads
  // and removes the socket file. Idempotent; safe to call from any thread but a connection's.
  void Stop();

  NbdStats stats() const;
  const std::string& socket_path() const { return path_; }

 private:
  struct Connection {
    int fd = -1;  // Closed by whoever joins `thread`, never by the thread itself.
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void AcceptLoop();
  void ReapFinished();
  void Serve(Connection& connection);
  // Handshake runs option haggling; true when the client entered transmission, false when the
  // session ended cleanly (NBD_OPT_ABORT); an error closes the connection.
  Result<bool> Handshake(int fd, nbd::Negotiator& negotiator);
  Result<void> Transmit(int fd, const nbd::Export& export_info);
  // Execute runs one checked request on the device and returns its NBD error (0 on success).
  // For a READ, `buffer` receives the data.
  uint32_t Execute(const nbd::Request& request, std::span<uint8_t> buffer);

  const std::string path_;
  storage::BlockDevice& device_;
  const NbdOptions options_;
  sys::UniqueFd listen_fd_;
  sys::UniqueFd wake_read_;  // A pipe: Stop writes a byte to wake the accept loop's poll().
  sys::UniqueFd wake_write_;
  std::thread accept_thread_;

  std::mutex mu_;
  bool stopped_ = false;               // Guarded by mu_.
  std::list<Connection> connections_;  // Guarded by mu_; stable addresses for the threads.

  std::atomic<uint64_t> connections_count_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> bytes_written_{0};
  std::atomic<uint64_t> errors_{0};
};

}  // namespace enclavia::enclave

#endif  // ENCLAVIA_ENCLAVE_STORAGE_NBD_SERVER_H_
