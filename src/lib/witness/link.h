// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_WITNESS_LINK_H_
#define ENCLAVIA_LIB_WITNESS_LINK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/attestation/nsm.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/net/address.h"
#include "lib/sys/fd.h"
#include "lib/witness/protocol.h"
#include "lib/witness/witness_set.h"

// The client end of the witness protocol over any byte stream: StreamWitnessLink dials (through
// an injected Dialer), answers the Challenge with an attestation document, then sends requests.
// src/enclave/witness/link.h dials an attested channel; tests dial a plain socket.
namespace enclavia::witness {

// ByteStream is a connected, reliable byte stream. Read and Write may block; Close may be called
// from any thread and makes blocked calls fail soon.
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Read returns how many bytes were copied into `out`; 0 means the peer finished.
  virtual Result<size_t> Read(std::span<uint8_t> out) = 0;
  virtual Result<void> Write(ByteSpan data) = 0;
  virtual void Close() = 0;
};

// FdByteStream is a ByteStream over a connected stream socket (writes never raise SIGPIPE).
class FdByteStream : public ByteStream {
 public:
  explicit FdByteStream(sys::UniqueFd fd) : fd_(std::move(fd)) {}
  Result<size_t> Read(std::span<uint8_t> out) override;
  Result<void> Write(ByteSpan data) override;
  // Close shuts the socket down (the descriptor is closed by the destructor).
  void Close() override;

 private:
  sys::UniqueFd fd_;
};

// ConnectStream connects a stream socket to `address` (unix, tcp or vsock). kUnavailable when
// nobody listens there.
Result<std::unique_ptr<ByteStream>> ConnectStream(const net::Address& address);

// ReadFrame reads one frame (ParseFrameHeader bounds it) and returns its body. A stream that ends
// between frames or inside one is kUnavailable.
Result<Bytes> ReadFrame(ByteStream& stream);
// WriteFrame writes Frame(message).
Result<void> WriteFrame(ByteStream& stream, ByteSpan message);

// HelloOptions is what a client with an upgrade chain (lib/upgrade/chain.h) adds to its Hello:
// the chain, and the chain head its document binds as user_data (the witness checks both).
struct HelloOptions {
  std::vector<Bytes> chain;
  std::optional<Bytes> user_data;
};

// MakeHello asks `nsm` for a document whose nonce is the challenge's (and whose user_data is
// options.user_data) and wraps it, with options.chain, in a Hello.
Result<Hello> MakeHello(attestation::Nsm& nsm, const Challenge& challenge,
                        const HelloOptions& options = {});

// IsSuperseded says whether an error or a witness's refusal reports that the client's upgrade
// chain is behind a longer one the witness saw ("superseded: …"): the enclave was replaced by
// its successor and must not serve.
bool IsSuperseded(std::string_view reason);

// SerializedNsm lets several threads share one Nsm (which need not be thread-safe): every call
// holds one mutex.
class SerializedNsm : public attestation::Nsm {
 public:
  explicit SerializedNsm(std::shared_ptr<attestation::Nsm> nsm) : nsm_(std::move(nsm)) {}
  Result<Bytes> Attestation(const attestation::AttestationRequest& request) override;
  Result<attestation::PcrDescription> DescribePcr(uint16_t index) override;
  Result<Bytes> ExtendPcr(uint16_t index, ByteSpan data) override;
  Result<void> LockPcr(uint16_t index) override;
  Result<void> LockPcrs(uint16_t range) override;
  Result<attestation::NsmDescription> DescribeNsm() override;
  Result<Bytes> GetRandom() override;

 private:
  std::mutex mu_;
  std::shared_ptr<attestation::Nsm> nsm_;  // Guarded by mu_.
};

using Dialer = std::function<Result<std::unique_ptr<ByteStream>>()>;

// StreamWitnessLink is a WitnessLink over streams from `dial`. On the first Call (and the first
// after a failure) it dials, reads the Challenge, sends MakeHello's Hello (with `hello`) and waits
// for Ready; a Refused Hello is kPolicyViolation with the witness's reason (a "superseded: …"
// reason is the message's start, so IsSuperseded finds it). A call on a connection kept from an
// earlier call that fails on I/O is retried once on a new connection (a restarted witness). `nsm`
// must be safe to call from the link's thread (wrap a shared one in SerializedNsm).
class StreamWitnessLink : public WitnessLink {
 public:
  StreamWitnessLink(std::string name, Dialer dial, std::shared_ptr<attestation::Nsm> nsm,
                    HelloOptions hello = {});
  ~StreamWitnessLink() override;

  Result<LinkReply> Call(const Request& request) override;
  void Abort() override;
  std::string name() const override { return name_; }

 private:
  struct Connection {
    std::shared_ptr<ByteStream> stream;
    WitnessKey witness_key{};
  };
  Result<Connection> Connect();
  Result<LinkReply> CallOn(const Connection& connection, const Request& request);
  void Drop();

  const std::string name_;
  Dialer dial_;
  std::shared_ptr<attestation::Nsm> nsm_;
  const HelloOptions hello_;
  std::mutex call_mu_;                    // One call at a time.
  std::mutex conn_mu_;                    // Guards connection_ (Abort takes only this one).
  std::optional<Connection> connection_;  // Guarded by conn_mu_.
  uint64_t abort_epoch_ = 0;              // Guarded by conn_mu_.
};

}  // namespace enclavia::witness

#endif  // ENCLAVIA_LIB_WITNESS_LINK_H_
