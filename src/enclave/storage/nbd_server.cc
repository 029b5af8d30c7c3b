// SPDX-License-Identifier: Apache-2.0
#include "enclave/storage/nbd_server.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

namespace enclavia::enclave {

namespace {

// A client may send at most this many options before the server calls it a denial of service
// (spec "Termination of the session during option haggling" allows the hard disconnect).
constexpr int kMaxOptions = 1024;
// Option data over kMaxOptionLength and up to this is read and dropped, then answered
// NBD_REP_ERR_TOO_BIG; longer option data closes the connection.
constexpr uint32_t kMaxOptionDrain = 1024 * 1024;

// RecvFull reads exactly `out.size()` bytes. kUnavailable when the peer closes first (cleanly at
// a message boundary if nothing was read: `at_boundary` tells), kIo on a socket error.
Result<void> RecvFull(int fd, std::span<uint8_t> out, bool* at_boundary = nullptr) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::recv(fd, out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sys::IoError("nbd recv", errno);
    }
    if (n == 0) {
      if (at_boundary != nullptr) {
        *at_boundary = done == 0;
      }
      return Error(Code::kUnavailable, "nbd: peer closed the connection");
    }
    done += static_cast<size_t>(n);
  }
  return Ok();
}

// SendAll writes every byte of `parts`, in order (MSG_NOSIGNAL: a closed peer is an error, not
// SIGPIPE for the whole enclave process).
Result<void> SendAll(int fd, std::initializer_list<ByteSpan> parts) {
  for (ByteSpan part : parts) {
    size_t done = 0;
    while (done < part.size()) {
      ssize_t n = ::send(fd, part.data() + done, part.size() - done, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return sys::IoError("nbd send", errno);
      }
      done += static_cast<size_t>(n);
    }
  }
  return Ok();
}

// Drain reads and drops `length` bytes.
Result<void> Drain(int fd, uint64_t length) {
  uint8_t scratch[4096];
  while (length > 0) {
    size_t n = length < sizeof(scratch) ? static_cast<size_t>(length) : sizeof(scratch);
    RETURN_IF_ERROR(RecvFull(fd, std::span<uint8_t>(scratch, n)));
    length -= n;
  }
  return Ok();
}

uint32_t NbdErrorFor(const Error& error) {
  // A failed device call is EIO for this request (BlockDevice: "a failed Read is an I/O error,
  // never wrong data"); a range the device calls invalid is EINVAL.
  return error.code() == Code::kInvalidArgument ? nbd::kEinval : nbd::kEio;
}

}  // namespace

NbdServer::NbdServer(Key /*key*/, std::string path, storage::BlockDevice& device,
                     NbdOptions options, sys::UniqueFd listen_fd, sys::UniqueFd wake_read,
                     sys::UniqueFd wake_write)
    : path_(std::move(path)),
      device_(device),
      options_(std::move(options)),
      listen_fd_(std::move(listen_fd)),
      wake_read_(std::move(wake_read)),
      wake_write_(std::move(wake_write)) {}

Result<std::unique_ptr<NbdServer>> NbdServer::Start(const std::string& unix_socket_path,
                                                    storage::BlockDevice& device,
                                                    NbdOptions options) {
  if (options.export_name.size() > nbd::kMaxStringLength ||
      options.export_name.find('\0') != std::string::npos) {
    return Error(Code::kInvalidArgument, "nbd: export name over 4096 bytes or with NUL");
  }
  if (options.max_connections == 0) {
    return Error(Code::kInvalidArgument, "nbd: max_connections must be at least 1");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (unix_socket_path.empty() || unix_socket_path.size() >= sizeof(addr.sun_path)) {
    return Error(Code::kInvalidArgument, "nbd: socket path empty or too long: " + unix_socket_path);
  }
  std::memcpy(addr.sun_path, unix_socket_path.data(), unix_socket_path.size());

  struct stat st {};
  if (::lstat(unix_socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Error(Code::kAlreadyExists,
                   "nbd: " + unix_socket_path + " exists and is not a socket");
    }
    // Replace the socket only if nobody listens on it (a crashed server's leftover).
    sys::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.valid() &&
        ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
      return Error(Code::kAlreadyExists, "nbd: " + unix_socket_path + " is in use");
    }
    if (::unlink(unix_socket_path.c_str()) != 0) {
      return sys::IoError("nbd: cannot remove stale socket " + unix_socket_path, errno);
    }
  }

  sys::UniqueFd listen_fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_fd.valid()) {
    return sys::IoError("nbd: socket", errno);
  }
  if (::bind(listen_fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return sys::IoError("nbd: cannot bind " + unix_socket_path, errno);
  }
  // Mode 0600 before listen(): until listen() every connect() is refused, so no client can get
  // in through a window where the file still had the umask's mode.
  if (::chmod(unix_socket_path.c_str(), 0600) != 0 || ::listen(listen_fd.get(), 16) != 0) {
    int err = errno;
    ::unlink(unix_socket_path.c_str());
    return sys::IoError("nbd: cannot chmod or listen on " + unix_socket_path, err);
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    int err = errno;
    ::unlink(unix_socket_path.c_str());
    return sys::IoError("nbd: pipe2", err);
  }
  auto server = std::make_unique<NbdServer>(Key(), unix_socket_path, device, std::move(options),
                                            std::move(listen_fd), sys::UniqueFd(pipe_fds[0]),
                                            sys::UniqueFd(pipe_fds[1]));
  server->accept_thread_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

NbdServer::~NbdServer() { Stop(); }

void NbdServer::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) {
      return;
    }
    stopped_ = true;
  }
  uint8_t byte = 1;
  while (::write(wake_write_.get(), &byte, 1) < 0 && errno == EINTR) {
  }
  if (accept_thread_.joinable()) {
    accept_thread_.join();
  }
  // The accept loop is gone, so no connection is added any more. shutdown() wakes a thread
  // blocked in recv()/send() on its socket; the descriptors stay open (and their numbers
  // unused by anyone else) until the threads are joined.
  std::list<Connection> connections;
  {
    std::lock_guard lock(mu_);
    for (Connection& c : connections_) {
      ::shutdown(c.fd, SHUT_RDWR);
    }
    connections.splice(connections.begin(), connections_);
  }
  for (Connection& c : connections) {
    c.thread.join();
    ::close(c.fd);
  }
  listen_fd_ = sys::UniqueFd();
  ::unlink(path_.c_str());
}

NbdStats NbdServer::stats() const {
  NbdStats s;
  s.connections = connections_count_.load();
  s.requests = requests_.load();
  s.bytes_read = bytes_read_.load();
  s.bytes_written = bytes_written_.load();
  s.errors = errors_.load();
  return s;
}

void NbdServer::ReapFinished() {
  std::lock_guard lock(mu_);
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done.load()) {
      it->thread.join();  // The thread has set `done` as its last act: this returns at once.
      ::close(it->fd);
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void NbdServer::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      continue;  // EINTR; poll has no other transient failure with valid descriptors.
    }
    if (fds[1].revents != 0) {
      return;
    }
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) {
        continue;
      }
      // Out of descriptors or memory: wait a little (or for Stop) rather than spin.
      pollfd wake{wake_read_.get(), POLLIN, 0};
      if (::poll(&wake, 1, 100) > 0) {
        return;
      }
      continue;
    }
    connections_count_.fetch_add(1);
    ReapFinished();
    std::lock_guard lock(mu_);
    if (stopped_ || connections_.size() >= options_.max_connections) {
      ::close(fd);
      continue;
    }
    Connection& c = connections_.emplace_back();
    c.fd = fd;
    c.thread = std::thread([this, &c] { Serve(c); });
  }
}

void NbdServer::Serve(Connection& connection) {
  nbd::Export export_info{.name = options_.export_name,
                          .size = device_.size(),
                          .transmission_flags = nbd::kDefaultTransmissionFlags};
  nbd::Negotiator negotiator(export_info);
  // Errors end this connection only; the server has no one to report them to (the client sees
  // the disconnect), so they are dropped here.
  Result<bool> transmission = Handshake(connection.fd, negotiator);
  if (transmission && *transmission) {
    (void)Transmit(connection.fd, export_info);
  }
  // Send FIN now; the descriptor is closed by whoever joins this thread.
  ::shutdown(connection.fd, SHUT_RDWR);
  connection.done.store(true);
}

Result<bool> NbdServer::Handshake(int fd, nbd::Negotiator& negotiator) {
  RETURN_IF_ERROR(SendAll(fd, {nbd::EncodeGreeting()}));
  uint8_t flags_bytes[nbd::kClientFlagsSize];
  RETURN_IF_ERROR(RecvFull(fd, flags_bytes));
  ASSIGN_OR_RETURN(uint32_t client_flags, nbd::DecodeClientFlags(flags_bytes));
  negotiator.SetClientFlags(client_flags);

  Bytes data;
  for (int i = 0; i < kMaxOptions; ++i) {
    uint8_t header_bytes[nbd::kOptionHeaderSize];
    RETURN_IF_ERROR(RecvFull(fd, header_bytes));
    ASSIGN_OR_RETURN(nbd::OptionHeader header, nbd::DecodeOptionHeader(header_bytes));
    nbd::Negotiator::Step step;
    if (header.length > nbd::kMaxOptionLength) {
      if (header.length > kMaxOptionDrain) {
        return Error(Code::kLimitExceeded, "nbd: option data too long");
      }
      RETURN_IF_ERROR(Drain(fd, header.length));
      step = negotiator.RejectTooBig(header.option);
    } else {
      data.resize(header.length);
      RETURN_IF_ERROR(RecvFull(fd, data));
      step = negotiator.HandleOption(header.option, data);
    }
    if (!step.reply.empty()) {
      RETURN_IF_ERROR(SendAll(fd, {step.reply}));
    }
    switch (step.after) {
      case nbd::Negotiator::After::kContinue:
        break;
      case nbd::Negotiator::After::kClose:
        return false;
      case nbd::Negotiator::After::kTransmission:
        return true;
    }
  }
  return Error(Code::kLimitExceeded, "nbd: too many options");
}

Result<void> NbdServer::Transmit(int fd, const nbd::Export& export_info) {
  // One buffer per connection, grown to the largest request seen (≤ max_block_size), and not
  // zero-filled: every byte sent back was first written by recv() or the device.
  std::unique_ptr<uint8_t[]> buffer;
  size_t capacity = 0;
  for (;;) {
    uint8_t header_bytes[nbd::kRequestHeaderSize];
    bool at_boundary = false;
    Result<void> got = RecvFull(fd, header_bytes, &at_boundary);
    if (!got) {
      // A client that closes between requests without NBD_CMD_DISC did a hard disconnect.
      return at_boundary ? Ok() : got;
    }
    ASSIGN_OR_RETURN(nbd::Request request, nbd::DecodeRequest(header_bytes));
    nbd::RequestCheck check = nbd::CheckRequest(request, export_info);
    if (check.action == nbd::RequestCheck::Action::kClose) {
      return Ok();
    }
    requests_.fetch_add(1);
    size_t payload = 0;
    if (request.type == nbd::kCmdWrite ||
        (request.type == nbd::kCmdRead && check.action == nbd::RequestCheck::Action::kExecute)) {
      payload = request.length;  // ≤ max_block_size: CheckRequest closes or rejects otherwise.
    }
    if (payload > capacity) {
      buffer = std::make_unique_for_overwrite<uint8_t[]>(payload);
      capacity = payload;
    }
    std::span<uint8_t> data(buffer.get(), payload);
    if (request.type == nbd::kCmdWrite) {
      // Read the payload even for a rejected write, so the next header is where we look.
      RETURN_IF_ERROR(RecvFull(fd, data));
    }
    uint32_t error = check.error;
    if (check.action == nbd::RequestCheck::Action::kExecute) {
      error = Execute(request, data);
    }
    Bytes reply = nbd::EncodeSimpleReply(error, request.cookie);
    if (error != 0) {
      errors_.fetch_add(1);
      RETURN_IF_ERROR(SendAll(fd, {reply}));
    } else if (request.type == nbd::kCmdRead) {
      RETURN_IF_ERROR(SendAll(fd, {reply, data}));
    } else {
      RETURN_IF_ERROR(SendAll(fd, {reply}));
    }
  }
}

uint32_t NbdServer::Execute(const nbd::Request& request, std::span<uint8_t> buffer) {
  bool fua = (request.flags & nbd::kCmdFlagFua) != 0;
  Result<void> result;
  switch (request.type) {
    case nbd::kCmdRead:
      if (!buffer.empty()) {
        result = device_.Read(request.offset, buffer);
        if (result) {
          bytes_read_.fetch_add(buffer.size());
        }
      }
      break;
    case nbd::kCmdWrite:
      if (!buffer.empty()) {
        result = device_.Write(request.offset, buffer, fua);
        if (result) {
          bytes_written_.fetch_add(buffer.size());
        }
      } else if (fua) {
        result = device_.Flush();
      }
      break;
    case nbd::kCmdFlush:
      result = device_.Flush();
      break;
    case nbd::kCmdTrim:
      if (request.length > 0) {
        result = device_.Trim(request.offset, request.length, fua);
      }
      break;
    case nbd::kCmdWriteZeroes:
      // NBD_CMD_FLAG_NO_HOLE asks for allocated zeroes; BlockDevice only promises "reads as
      // zeros", which is all a client can observe, so the flag needs nothing more.
      if (request.length > 0) {
        result = device_.WriteZeroes(request.offset, request.length, fua);
      }
      break;
    default:
      return nbd::kEinval;  // CheckRequest lets no other command through.
  }
  return result ? 0 : NbdErrorFor(result.error());
}

}  // namespace enclavia::enclave
