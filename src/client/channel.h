// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_CLIENT_CHANNEL_H_
#define ENCLAVIA_CLIENT_CHANNEL_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "client/connect.h"
#include "lib/attestation/verifier.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/channel/trust.h"
#include "lib/upgrade/chain.h"

// The blocking client API: an attested channel to an enclave and byte streams to its ports.
//
//   ASSIGN_OR_RETURN(auto channel, client::Channel::Connect("wss://host/", policy));
//   ASSIGN_OR_RETURN(auto stream, channel->OpenStream(8080));
//   RETURN_IF_ERROR(stream->Write(request));
//
// Each Channel runs one I/O thread. Channel and Stream methods are thread-safe; one Stream may be
// read by one thread while another writes it.
namespace enclavia::client {

class Stream {
 public:
  struct Impl;
  explicit Stream(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Read blocks until bytes arrive and returns how many were copied into `out` (0 = the enclave
  // side finished writing). A reset or a lost channel is an error naming the reason.
  Result<size_t> Read(std::span<uint8_t> out);
  // ReadAll reads until end of stream (at most `limit` bytes; kLimitExceeded beyond).
  Result<Bytes> ReadAll(size_t limit = 64 << 20);
  // Write blocks until every byte is queued within the stream's window.
  Result<void> Write(ByteSpan data);
  // CloseWrite half-closes: the app sees end of input; reading continues.
  Result<void> CloseWrite();
  // Close resets the stream if it is still open. Idempotent; the destructor calls it.
  void Close();

 private:
  std::shared_ptr<Impl> impl_;
};

class Channel {
 public:
  // Connect dials `url` (ws:// or wss://), runs the handshake and returns once the enclave's
  // attestation passed `policy`. Errors say which check failed.
  static Result<std::unique_ptr<Channel>> Connect(std::string_view url,
                                                  channel::TrustPolicy policy,
                                                  ConnectOptions options = {});
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // OpenStream opens a stream to the enclave's TCP `port`. A port the enclave does not serve is
  // reported by the first Read/Write (the enclave resets the stream with its reason).
  Result<std::unique_ptr<Stream>> OpenStream(uint16_t port);
  // attestation is what the enclave proved at connect time.
  const attestation::VerifiedAttestation& attestation() const;
  // chain is the upgrade chain the enclave presented, verified (nullopt: an unchained enclave).
  const std::optional<upgrade::VerifiedChain>& chain() const;
  // handshake_hash identifies this channel; the enclave sees the same value.
  Bytes handshake_hash() const;
  // Close ends the channel; open streams fail. Idempotent.
  void Close();

  struct Impl;

 private:
  explicit Channel(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace enclavia::client

#endif  // ENCLAVIA_CLIENT_CHANNEL_H_
