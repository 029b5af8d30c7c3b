// SPDX-License-Identifier: Apache-2.0
// Test-only helpers for enclavia_nbd_test: in-memory and fault-injecting BlockDevices, a raw NBD
// client written from the spec (not from nbd_protocol.h, so the two cannot share a mistake), and
// a way to run the libnbd tools.
#ifndef ENCLAVIA_ENCLAVE_STORAGE_NBD_TEST_UTIL_H_
#define ENCLAVIA_ENCLAVE_STORAGE_NBD_TEST_UTIL_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <sys/types.h>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/storage/block_device.h"
#include "lib/sys/fd.h"

namespace enclavia::enclave::nbd_testing {

// MemoryDevice is a sparse in-memory disk (64 KiB chunks, unwritten chunks read as zeros).
// Thread-safe (one mutex). Flush does nothing: memory is as durable as it gets.
class MemoryDevice : public storage::BlockDevice {
 public:
  explicit MemoryDevice(uint64_t size) : size_(size) {}
  uint64_t size() const override { return size_; }
  Result<void> Read(uint64_t offset, std::span<uint8_t> out) override;
  Result<void> Write(uint64_t offset, ByteSpan data, bool fua) override;
  Result<void> Trim(uint64_t offset, uint64_t length, bool fua) override;
  Result<void> WriteZeroes(uint64_t offset, uint64_t length, bool fua) override;
  Result<void> Flush() override { return Ok(); }

 private:
  static constexpr uint64_t kChunk = 64 * 1024;
  Result<void> CheckRange(uint64_t offset, uint64_t length) const;
  void Zero(uint64_t offset, uint64_t length);

  const uint64_t size_;
  std::mutex mu_;
  std::map<uint64_t, Bytes> chunks_;  // Guarded by mu_; key = chunk index.
};

// FaultyDevice forwards to `inner` and records an event per call ("read", "write", "write+fua",
// "flush", "trim", "zero"). Reads overlapping a failing range fail with kIo. A closed flush gate
// makes Flush block (after recording "flush-begin") until OpenFlushGate; "flush" is recorded when
// it returns. Thread-safe.
class FaultyDevice : public storage::BlockDevice {
 public:
  explicit FaultyDevice(storage::BlockDevice& inner) : inner_(inner) {}
  uint64_t size() const override { return inner_.size(); }
  Result<void> Read(uint64_t offset, std::span<uint8_t> out) override;
  Result<void> Write(uint64_t offset, ByteSpan data, bool fua) override;
  Result<void> Trim(uint64_t offset, uint64_t length, bool fua) override;
  Result<void> WriteZeroes(uint64_t offset, uint64_t length, bool fua) override;
  Result<void> Flush() override;

  void FailReads(uint64_t offset, uint64_t length);
  void CloseFlushGate();
  void OpenFlushGate();
  std::vector<std::string> events();
  // WaitForEvent blocks until `event` has been recorded (or ~10 s passed); true if it was.
  bool WaitForEvent(const std::string& event);

 private:
  void Record(std::string event);

  storage::BlockDevice& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<uint64_t, uint64_t>> failing_;  // Guarded by mu_.
  bool gate_closed_ = false;                            // Guarded by mu_.
  std::vector<std::string> events_;                     // Guarded by mu_.
};

// RawReply is a simple reply as a client sees it.
struct RawReply {
  uint32_t error = 0;
  uint64_t cookie = 0;
  Bytes data;  // For a successful READ.
};

// RawClient speaks NBD over a Unix socket, byte by byte from the spec.
class RawClient {
 public:
  static Result<RawClient> Connect(const std::string& path);

  Result<void> Send(ByteSpan bytes);
  Result<Bytes> Recv(size_t n);
  // Greeting reads the server's 18 bytes and sends the client flags.
  Result<Bytes> Greeting(uint32_t client_flags);
  // SendOption sends one option (IHAVEOPT, option, length, data).
  Result<void> SendOption(uint32_t option, ByteSpan data);
  // RecvOptionReply reads one option reply: returns {type, data} after checking the magic and
  // that it answers `option`.
  Result<std::pair<uint32_t, Bytes>> RecvOptionReply(uint32_t option);
  // Go does the handshake with NBD_OPT_GO for `name`; returns {size, transmission flags}.
  Result<std::pair<uint64_t, uint16_t>> Go(const std::string& name);
  // SendRequest sends one request (and `payload` after it).
  Result<void> SendRequest(uint16_t flags, uint16_t type, uint64_t cookie, uint64_t offset,
                           uint32_t length, ByteSpan payload = {});
  // RecvReply reads a simple reply; `read_length` bytes of data follow a successful READ.
  Result<RawReply> RecvReply(size_t read_length);
  // Call is SendRequest then RecvReply.
  Result<RawReply> Call(uint16_t flags, uint16_t type, uint64_t offset, uint32_t length,
                        ByteSpan payload = {});
  // Readable waits up to `timeout_ms` for bytes (or EOF) to arrive.
  bool Readable(int timeout_ms);
  // ClosedByPeer waits (≤ 10 s) for the server to close the connection; true if it did.
  bool ClosedByPeer();

 private:
  explicit RawClient(sys::UniqueFd fd) : fd_(std::move(fd)) {}
  sys::UniqueFd fd_;
  uint64_t next_cookie_ = 1;
};

// CommandResult is the exit status (or -1 if killed by a signal) and combined stdout+stderr.
struct CommandResult {
  int status = -1;
  std::string output;
};

// Run runs argv[0] (searched in PATH) and waits for it.
CommandResult RunCommand(const std::vector<std::string>& argv);
// Spawn starts argv in the background with output appended to `log_path`; -1 on failure.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path);
// WaitOrKill waits up to ~10 s for `pid`, then SIGKILLs and reaps it; returns its status.
int WaitOrKill(pid_t pid);
// HaveTool reports whether `name` is an executable in PATH.
bool HaveTool(const std::string& name);
// MakeTempDir creates a fresh directory under $TMPDIR or /tmp.
std::string MakeTempDir();
// RandomBytes returns `n` pseudo-random bytes (deterministic for a seed).
Bytes RandomBytes(size_t n, uint64_t seed);

}  // namespace enclavia::enclave::nbd_testing

#endif  // ENCLAVIA_ENCLAVE_STORAGE_NBD_TEST_UTIL_H_
