// SPDX-License-Identifier: Apache-2.0
#include "enclave/storage/nbd_test_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

extern char** environ;

namespace enclavia::enclave::nbd_testing {

namespace {

// PutBe and Append grow with resize(): GCC 12 -O3 warns falsely (-Wstringop-overflow) about
// push_back/insert sequences on a fresh vector.
void PutBe(Bytes& out, uint64_t v, int n) {
  size_t at = out.size();
  out.resize(at + static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    out[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
  }
}

void Append(Bytes& out, ByteSpan data) {
  size_t at = out.size();
  out.resize(at + data.size());
  if (!data.empty()) {
    std::memcpy(out.data() + at, data.data(), data.size());
  }
}

uint64_t GetBe(ByteSpan in, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    v = (v << 8) | in[at + static_cast<size_t>(i)];
  }
  return v;
}

}  // namespace

Result<void> MemoryDevice::CheckRange(uint64_t offset, uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return Error(Code::kInvalidArgument, "memory device: range past the end");
  }
  return Ok();
}

Result<void> MemoryDevice::Read(uint64_t offset, std::span<uint8_t> out) {
  RETURN_IF_ERROR(CheckRange(offset, out.size()));
  std::lock_guard lock(mu_);
  size_t done = 0;
  while (done < out.size()) {
    uint64_t pos = offset + done;
    uint64_t in_chunk = pos % kChunk;
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk - in_chunk, out.size() - done));
    auto it = chunks_.find(pos / kChunk);
    if (it == chunks_.end()) {
      std::memset(out.data() + done, 0, n);
    } else {
      std::memcpy(out.data() + done, it->second.data() + in_chunk, n);
    }
    done += n;
  }
  return Ok();
}

Result<void> MemoryDevice::Write(uint64_t offset, ByteSpan data, bool /*fua*/) {
  RETURN_IF_ERROR(CheckRange(offset, data.size()));
  std::lock_guard lock(mu_);
  size_t done = 0;
  while (done < data.size()) {
    uint64_t pos = offset + done;
    uint64_t in_chunk = pos % kChunk;
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk - in_chunk, data.size() - done));
    Bytes& chunk = chunks_[pos / kChunk];
    chunk.resize(kChunk);
    std::memcpy(chunk.data() + in_chunk, data.data() + done, n);
    done += n;
  }
  return Ok();
}

void MemoryDevice::Zero(uint64_t offset, uint64_t length) {
  std::lock_guard lock(mu_);
  uint64_t done = 0;
  while (done < length) {
    uint64_t pos = offset + done;
    uint64_t in_chunk = pos % kChunk;
    uint64_t n = std::min<uint64_t>(kChunk - in_chunk, length - done);
    auto it = chunks_.find(pos / kChunk);
    if (it != chunks_.end()) {
      if (n == kChunk) {
        chunks_.erase(it);
      } else {
        std::memset(it->second.data() + in_chunk, 0, n);
      }
    }
    done += n;
  }
}

Result<void> MemoryDevice::Trim(uint64_t offset, uint64_t length, bool /*fua*/) {
  RETURN_IF_ERROR(CheckRange(offset, length));
  Zero(offset, length);
  return Ok();
}

Result<void> MemoryDevice::WriteZeroes(uint64_t offset, uint64_t length, bool /*fua*/) {
  RETURN_IF_ERROR(CheckRange(offset, length));
  Zero(offset, length);
  return Ok();
}

void FaultyDevice::Record(std::string event) {
  std::lock_guard lock(mu_);
  events_.push_back(std::move(event));
  cv_.notify_all();
}

Result<void> FaultyDevice::Read(uint64_t offset, std::span<uint8_t> out) {
  {
    std::lock_guard lock(mu_);
    events_.push_back("read");
    for (auto [start, length] : failing_) {
      if (offset < start + length && start < offset + out.size()) {
        return Error(Code::kIo, "faulty device: injected read error");
      }
    }
  }
  return inner_.Read(offset, out);
}

Result<void> FaultyDevice::Write(uint64_t offset, ByteSpan data, bool fua) {
  RETURN_IF_ERROR(inner_.Write(offset, data, fua));
  Record(fua ? "write+fua" : "write");
  return Ok();
}

Result<void> FaultyDevice::Trim(uint64_t offset, uint64_t length, bool fua) {
  RETURN_IF_ERROR(inner_.Trim(offset, length, fua));
  Record("trim");
  return Ok();
}

Result<void> FaultyDevice::WriteZeroes(uint64_t offset, uint64_t length, bool fua) {
  RETURN_IF_ERROR(inner_.WriteZeroes(offset, length, fua));
  Record("zero");
  return Ok();
}

Result<void> FaultyDevice::Flush() {
  {
    std::unique_lock lock(mu_);
    events_.push_back("flush-begin");
    cv_.notify_all();
    cv_.wait(lock, [this] { return !gate_closed_; });
  }
  RETURN_IF_ERROR(inner_.Flush());
  Record("flush");
  return Ok();
}

void FaultyDevice::FailReads(uint64_t offset, uint64_t length) {
  std::lock_guard lock(mu_);
  failing_.emplace_back(offset, length);
}

void FaultyDevice::CloseFlushGate() {
  std::lock_guard lock(mu_);
  gate_closed_ = true;
}

void FaultyDevice::OpenFlushGate() {
  std::lock_guard lock(mu_);
  gate_closed_ = false;
  cv_.notify_all();
}

std::vector<std::string> FaultyDevice::events() {
  std::lock_guard lock(mu_);
  return events_;
}

bool FaultyDevice::WaitForEvent(const std::string& event) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::seconds(10), [&] {
    return std::find(events_.begin(), events_.end(), event) != events_.end();
  });
}

Result<RawClient> RawClient::Connect(const std::string& path) {
  sys::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return sys::IoError("socket", errno);
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return Error(Code::kInvalidArgument, "path too long");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return sys::IoError("connect " + path, errno);
  }
  return RawClient(std::move(fd));
}

Result<void> RawClient::Send(ByteSpan bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sys::IoError("send", errno);
    }
    done += static_cast<size_t>(n);
  }
  return Ok();
}

Result<Bytes> RawClient::Recv(size_t n) {
  Bytes out(n);
  size_t done = 0;
  while (done < n) {
    ssize_t got = ::recv(fd_.get(), out.data() + done, n - done, 0);
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sys::IoError("recv", errno);
    }
    if (got == 0) {
      return Error(Code::kUnavailable, "server closed the connection");
    }
    done += static_cast<size_t>(got);
  }
  return out;
}

Result<Bytes> RawClient::Greeting(uint32_t client_flags) {
  ASSIGN_OR_RETURN(Bytes greeting, Recv(18));
  Bytes flags;
  PutBe(flags, client_flags, 4);
  RETURN_IF_ERROR(Send(flags));
  return greeting;
}

Result<void> RawClient::SendOption(uint32_t option, ByteSpan data) {
  Bytes out;
  PutBe(out, 0x49484156454f5054, 8);
  PutBe(out, option, 4);
  PutBe(out, data.size(), 4);
  Append(out, data);
  return Send(out);
}

Result<std::pair<uint32_t, Bytes>> RawClient::RecvOptionReply(uint32_t option) {
  ASSIGN_OR_RETURN(Bytes header, Recv(20));
  if (GetBe(header, 0, 8) != 0x3e889045565a9 || GetBe(header, 8, 4) != option) {
    return Error(Code::kMalformed, "bad option reply header");
  }
  auto type = static_cast<uint32_t>(GetBe(header, 12, 4));
  ASSIGN_OR_RETURN(Bytes data, Recv(static_cast<size_t>(GetBe(header, 16, 4))));
  return std::make_pair(type, std::move(data));
}

Result<std::pair<uint64_t, uint16_t>> RawClient::Go(const std::string& name) {
  ASSIGN_OR_RETURN(Bytes greeting, Greeting(3));
  if (greeting.size() != 18) {
    return Error(Code::kMalformed, "short greeting");
  }
  Bytes data;
  PutBe(data, name.size(), 4);
  Append(data, AsBytes(name));
  PutBe(data, 0, 2);
  RETURN_IF_ERROR(SendOption(7, data));
  uint64_t size = 0;
  uint16_t flags = 0;
  for (;;) {
    ASSIGN_OR_RETURN(auto reply, RecvOptionReply(7));
    if (reply.first == 1) {
      return std::make_pair(size, flags);
    }
    if (reply.first != 3) {
      return Error(Code::kFailedPrecondition, "NBD_OPT_GO failed: " + std::to_string(reply.first));
    }
    if (reply.second.size() == 12 && GetBe(reply.second, 0, 2) == 0) {
      size = GetBe(reply.second, 2, 8);
      flags = static_cast<uint16_t>(GetBe(reply.second, 10, 2));
    }
  }
}

Result<void> RawClient::SendRequest(uint16_t flags, uint16_t type, uint64_t cookie, uint64_t offset,
                                    uint32_t length, ByteSpan payload) {
  Bytes out;
  PutBe(out, 0x25609513, 4);
  PutBe(out, flags, 2);
  PutBe(out, type, 2);
  PutBe(out, cookie, 8);
  PutBe(out, offset, 8);
  PutBe(out, length, 4);
  Append(out, payload);
  return Send(out);
}

Result<RawReply> RawClient::RecvReply(size_t read_length) {
  ASSIGN_OR_RETURN(Bytes header, Recv(16));
  if (GetBe(header, 0, 4) != 0x67446698) {
    return Error(Code::kMalformed, "bad simple reply magic");
  }
  RawReply reply;
  reply.error = static_cast<uint32_t>(GetBe(header, 4, 4));
  reply.cookie = GetBe(header, 8, 8);
  if (reply.error == 0 && read_length > 0) {
    ASSIGN_OR_RETURN(reply.data, Recv(read_length));
  }
  return reply;
}

Result<RawReply> RawClient::Call(uint16_t flags, uint16_t type, uint64_t offset, uint32_t length,
                                 ByteSpan payload) {
  uint64_t cookie = next_cookie_++;
  RETURN_IF_ERROR(SendRequest(flags, type, cookie, offset, length, payload));
  ASSIGN_OR_RETURN(RawReply reply, RecvReply(type == 0 ? length : 0));
  if (reply.cookie != cookie) {
    return Error(Code::kMalformed, "reply for another cookie");
  }
  return reply;
}

bool RawClient::Readable(int timeout_ms) {
  pollfd p{fd_.get(), POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

bool RawClient::ClosedByPeer() {
  for (;;) {
    if (!Readable(10000)) {
      return false;
    }
    uint8_t byte;
    ssize_t n = ::recv(fd_.get(), &byte, 1, 0);
    if (n == 0 || (n < 0 && errno != EINTR)) {
      return true;  // EOF, or ECONNRESET.
    }
  }
}

CommandResult RunCommand(const std::vector<std::string>& argv) {
  CommandResult result;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.output = "pipe2 failed";
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (rc != 0) {
    ::close(pipe_fds[0]);
    result.output = "cannot spawn " + argv[0] + ": " + std::strerror(rc);
    return result;
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(pipe_fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    result.output.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

int WaitOrKill(pid_t pid) {
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) {
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

bool HaveTool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) {
      end = dirs.size();
    }
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

std::string MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/enclavia-nbd-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return "";
  }
  return std::string(buf.data());
}

Bytes RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes out(n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < n; ++i) {
    out[i] = static_cast<uint8_t>(rng());
  }
  return out;
}

}  // namespace enclavia::enclave::nbd_testing
