// SPDX-License-Identifier: Apache-2.0
#include "lib/witness/link.h"


#include <errno.h>
#include <unistd.h>

#include <utility>

#include <sys/socket.h>

#include "lib/net/socket.h"

namespace enclavia::witness {

Result<size_t> FdByteStream::Read(std::span<uint8_t> out) {
  while (true) {
    ssize_t n = ::recv(fd_.get(), out.data(), out.size(), 0);
    if (n >= 0) {
      return static_cast<size_t>(n);
    }
    if (errno != EINTR) {
      return Error(Code::kUnavailable, sys::IoError("read", errno).message());
    }
  }
}

Result<void> FdByteStream::Write(ByteSpan data) {
  if (auto sent = sys::SendFull(fd_.get(), data); !sent) {
    return Error(Code::kUnavailable, sent.error().message());
  }
  return Ok();
}

void FdByteStream::Close() { ::shutdown(fd_.get(), SHUT_RDWR); }

Result<std::unique_ptr<ByteStream>> ConnectStream(const net::Address& address) {
  ASSIGN_OR_RETURN(sys::UniqueFd fd, net::Connect(address));
  return std::unique_ptr<ByteStream>(std::make_unique<FdByteStream>(std::move(fd)));
}

namespace {

Result<void> ReadExact(ByteStream& stream, std::span<uint8_t> out) {
  size_t got = 0;
  while (got < out.size()) {
    ASSIGN_OR_RETURN(size_t n, stream.Read(out.subspan(got)));
    if (n == 0) {
      return Error(Code::kUnavailable, "witness: connection closed");
    }
    got += n;
  }
  return Ok();
}

}  // namespace

Result<Bytes> ReadFrame(ByteStream& stream) {
  std::array<uint8_t, kFrameHeaderSize> header{};
  RETURN_IF_ERROR(ReadExact(stream, header));
  ASSIGN_OR_RETURN(size_t size, ParseFrameHeader(header));
  Bytes body(size);
  RETURN_IF_ERROR(ReadExact(stream, body));
  return body;
}

Result<void> WriteFrame(ByteStream& stream, ByteSpan message) {
  return stream.Write(Frame(message));
}

Result<Hello> MakeHello(attestation::Nsm& nsm, const Challenge& challenge,
                        const HelloOptions& options) {
  attestation::AttestationRequest request;
  request.nonce = Bytes(challenge.nonce.begin(), challenge.nonce.end());
  request.user_data = options.user_data;
  ASSIGN_OR_RETURN(Bytes document, nsm.Attestation(request));
  return Hello{std::move(document), options.chain};
}

bool IsSuperseded(std::string_view reason) { return reason.rfind("superseded:", 0) == 0; }

Result<Bytes> SerializedNsm::Attestation(const attestation::AttestationRequest& request) {
  std::lock_guard lock(mu_);
  return nsm_->Attestation(request);
}
Result<attestation::PcrDescription> SerializedNsm::DescribePcr(uint16_t index) {
  std::lock_guard lock(mu_);
  return nsm_->DescribePcr(index);
}
Result<Bytes> SerializedNsm::ExtendPcr(uint16_t index, ByteSpan data) {
  std::lock_guard lock(mu_);
  return nsm_->ExtendPcr(index, data);
}
Result<void> SerializedNsm::LockPcr(uint16_t index) {
  std::lock_guard lock(mu_);
  return nsm_->LockPcr(index);
}
Result<void> SerializedNsm::LockPcrs(uint16_t range) {
  std::lock_guard lock(mu_);
  return nsm_->LockPcrs(range);
}
Result<attestation::NsmDescription> SerializedNsm::DescribeNsm() {
  std::lock_guard lock(mu_);
  return nsm_->DescribeNsm();
}
Result<Bytes> SerializedNsm::GetRandom() {
  std::lock_guard lock(mu_);
  return nsm_->GetRandom();
}

StreamWitnessLink::StreamWitnessLink(std::string name, Dialer dial,
                                     std::shared_ptr<attestation::Nsm> nsm, HelloOptions hello)
    : name_(std::move(name)),
      dial_(std::move(dial)),
      nsm_(std::move(nsm)),
      hello_(std::move(hello)) {}

StreamWitnessLink::~StreamWitnessLink() { Abort(); }

void StreamWitnessLink::Abort() {
  std::lock_guard lock(conn_mu_);
  ++abort_epoch_;
  if (connection_) {
    connection_->stream->Close();
  }
}

void StreamWitnessLink::Drop() {
  std::lock_guard lock(conn_mu_);
  if (connection_) {
    connection_->stream->Close();
    connection_.reset();
  }
}

Result<StreamWitnessLink::Connection> StreamWitnessLink::Connect() {
  ASSIGN_OR_RETURN(std::unique_ptr<ByteStream> dialed, dial_());
  Connection connection;
  connection.stream = std::shared_ptr<ByteStream>(std::move(dialed));
  {
    std::lock_guard lock(conn_mu_);  // Visible to Abort while the handshake runs.
    connection_ = connection;
  }
  auto handshake = [&]() -> Result<void> {
    ASSIGN_OR_RETURN(Bytes first, ReadFrame(*connection.stream));
    ASSIGN_OR_RETURN(Message message, DecodeMessage(first));
    const auto* challenge = std::get_if<Challenge>(&message);
    if (challenge == nullptr) {
      return Error(Code::kMalformed, "witness: expected challenge, got " + MessageName(message));
    }
    connection.witness_key = challenge->witness_key;
    ASSIGN_OR_RETURN(Hello hello, MakeHello(*nsm_, *challenge, hello_));
    RETURN_IF_ERROR(WriteFrame(*connection.stream, EncodeMessage(Message(std::move(hello)))));
    ASSIGN_OR_RETURN(Bytes answer, ReadFrame(*connection.stream));
    ASSIGN_OR_RETURN(Message reply, DecodeMessage(answer));
    if (const auto* refused = std::get_if<Refused>(&reply)) {
      if (IsSuperseded(refused->reason)) {
        return Error(Code::kPolicyViolation, refused->reason + " (" + name_ + ")");
      }
      return Error(Code::kPolicyViolation, "witness refused our attestation: " + refused->reason);
    }
    if (!std::holds_alternative<Ready>(reply)) {
      return Error(Code::kMalformed, "witness: expected ready, got " + MessageName(reply));
    }
    return Ok();
  };
  if (auto done = handshake(); !done) {
    Drop();
    return std::move(done).error();
  }
  std::lock_guard lock(conn_mu_);
  connection_ = connection;
  return connection;
}

Result<LinkReply> StreamWitnessLink::CallOn(const Connection& connection, const Request& request) {
  RETURN_IF_ERROR(WriteFrame(*connection.stream, EncodeMessage(request)));
  ASSIGN_OR_RETURN(Bytes answer, ReadFrame(*connection.stream));
  ASSIGN_OR_RETURN(Response response, DecodeResponse(answer));
  return LinkReply{std::move(response), connection.witness_key};
}

Result<LinkReply> StreamWitnessLink::Call(const Request& request) {
  std::lock_guard call_lock(call_mu_);
  std::optional<Connection> existing;
  uint64_t epoch = 0;
  {
    std::lock_guard lock(conn_mu_);
    existing = connection_;
    epoch = abort_epoch_;
  }
  auto aborted = [&] {
    std::lock_guard lock(conn_mu_);
    return abort_epoch_ != epoch;
  };
  if (existing) {
    auto reply = CallOn(*existing, request);
    if (reply || reply.error().code() != Code::kUnavailable) {
      if (!reply) {
        Drop();
      }
      return reply;
    }
    Drop();  // The connection broke (e.g. the witness restarted): one more try on a new one.
    if (aborted()) {
      return std::move(reply).error();
    }
  }
  ASSIGN_OR_RETURN(Connection connection, Connect());
  auto reply = CallOn(connection, request);
  if (!reply) {
    Drop();
  }
  return reply;
}

}  // namespace enclavia::witness
