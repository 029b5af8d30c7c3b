// SPDX-License-Identifier: Apache-2.0
#include "enclave/witness/link.h"

#include <utility>

#include "client/channel.h"

namespace enclavia::enclave {
namespace {

// ChannelByteStream is one stream of an attested channel; it owns the channel.
class ChannelByteStream : public witness::ByteStream {
 public:
  ChannelByteStream(std::unique_ptr<client::Channel> channel,
                    std::unique_ptr<client::Stream> stream)
      : channel_(std::move(channel)), stream_(std::move(stream)) {}
  ~ChannelByteStream() override {
    stream_.reset();
    channel_->Close();
  }
  Result<size_t> Read(std::span<uint8_t> out) override { return stream_->Read(out); }
  Result<void> Write(ByteSpan data) override { return stream_->Write(data); }
  // Close ends the whole channel (thread-safe): blocked reads and writes fail.
  void Close() override { channel_->Close(); }

 private:
  std::unique_ptr<client::Channel> channel_;
  std::unique_ptr<client::Stream> stream_;
};

}  // namespace

Result<std::unique_ptr<witness::ByteStream>> DialWitness(const ChannelWitnessLinkOptions& options) {
  client::ConnectOptions connect = options.connect;
  connect.dial.via = options.via;
  auto channel = client::Channel::Connect(options.url, options.policy, connect);
  if (!channel) {
    // A witness that cannot be reached or does not attest is, to the set, not answering.
    return std::move(channel).error().WithContext("channel to " + options.url);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<client::Stream> stream, (*channel)->OpenStream(options.port));
  return std::unique_ptr<witness::ByteStream>(
      std::make_unique<ChannelByteStream>(std::move(*channel), std::move(stream)));
}

ChannelWitnessLink::ChannelWitnessLink(std::string name, ChannelWitnessLinkOptions options,
                                       std::shared_ptr<attestation::Nsm> nsm,
                                       witness::HelloOptions hello)
    : witness::StreamWitnessLink(
          std::move(name), [options = std::move(options)] { return DialWitness(options); },
          std::move(nsm), std::move(hello)) {}

}  // namespace enclavia::enclave
