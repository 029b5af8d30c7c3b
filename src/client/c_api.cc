// SPDX-License-Identifier: Apache-2.0
// The C ABI's blocking half: a thin shell over client::Channel (core_api.cc has the rest).
// No exception or C++ type crosses it.
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "client/channel.h"
#include "client/internal/c_errors.h"
#include "client/internal/c_objects.h"
#include "client/trust.h"
#include "enclavia/client.h"
#include "lib/crypto/random.h"

struct enclavia_channel {
  std::unique_ptr<enclavia::client::Channel> channel;
};

struct enclavia_stream {
  std::unique_ptr<enclavia::client::Stream> stream;
};

using enclavia::client::internal::Fail;
using enclavia::client::internal::FailWith;
using enclavia::client::internal::Invalid;
using enclavia::client::internal::Succeed;
using enclavia::client::internal::CopyPcr;

namespace {

enclavia_status Connect(enclavia_channel** out, const char* url,
                        enclavia::channel::TrustPolicy policy) {
  auto channel = enclavia::client::Channel::Connect(url, std::move(policy));
  if (!channel) {
    return Fail(channel.error());
  }
  *out = new (std::nothrow) enclavia_channel{std::move(*channel)};
  if (*out == nullptr) {
    return FailWith(ENCLAVIA_INTERNAL, "out of memory");
  }
  return Succeed();
}

}  // namespace

extern "C" {

enclavia_status enclavia_channel_connect(enclavia_channel** out, const char* url,
                                         const char* trust_file) {
  if (out == nullptr || url == nullptr || trust_file == nullptr) {
    return Invalid("enclavia_channel_connect");
  }
  *out = nullptr;
  if (auto init = enclavia::crypto::Init(); !init) {
    return Fail(init.error());
  }
  auto policy = enclavia::client::LoadTrustPolicy(trust_file);
  if (!policy) {
    return Fail(policy.error());
  }
  return Connect(out, url, std::move(*policy));
}

enclavia_status enclavia_channel_connect_trust(enclavia_channel** out, const char* url,
                                               const enclavia_trust* trust) {
  if (out == nullptr || url == nullptr || trust == nullptr) {
    return Invalid("enclavia_channel_connect_trust");
  }
  *out = nullptr;
  if (auto init = enclavia::crypto::Init(); !init) {
    return Fail(init.error());
  }
  return Connect(out, url, trust->policy);
}

enclavia_status enclavia_channel_attestation(const enclavia_channel* channel,
                                             enclavia_attestation** out) {
  if (channel == nullptr || out == nullptr) {
    return Invalid("enclavia_channel_attestation");
  }
  *out = new (std::nothrow)
      enclavia_attestation{channel->channel->attestation(), channel->channel->chain()};
  if (*out == nullptr) {
    return FailWith(ENCLAVIA_INTERNAL, "out of memory");
  }
  return Succeed();
}

void enclavia_channel_free(enclavia_channel* channel) { delete channel; }

enclavia_status enclavia_channel_pcr(const enclavia_channel* channel, uint8_t out[48],
                                     uint32_t index) {
  if (channel == nullptr || out == nullptr) {
    return Invalid("enclavia_channel_pcr");
  }
  return CopyPcr(channel->channel->attestation().document(), out, index);
}

const char* enclavia_channel_module_id(const enclavia_channel* channel) {
  if (channel == nullptr) {
    return "";
  }
  return channel->channel->attestation().document().module_id.c_str();
}

enclavia_status enclavia_stream_open(enclavia_channel* channel, enclavia_stream** out,
                                     uint16_t port) {
  if (channel == nullptr || out == nullptr) {
    return Invalid("enclavia_stream_open");
  }
  *out = nullptr;
  auto stream = channel->channel->OpenStream(port);
  if (!stream) {
    return Fail(stream.error());
  }
  *out = new (std::nothrow) enclavia_stream{std::move(*stream)};
  if (*out == nullptr) {
    return FailWith(ENCLAVIA_INTERNAL, "out of memory");
  }
  return Succeed();
}

enclavia_status enclavia_stream_write(enclavia_stream* stream, const uint8_t* data, size_t size) {
  if (stream == nullptr || (data == nullptr && size > 0)) {
    return Invalid("enclavia_stream_write");
  }
  auto written = stream->stream->Write(enclavia::ByteSpan(data, size));
  return written ? Succeed() : Fail(written.error());
}

enclavia_status enclavia_stream_read(enclavia_stream* stream, size_t* out_size, uint8_t* buffer,
                                     size_t capacity) {
  if (stream == nullptr || out_size == nullptr || buffer == nullptr || capacity == 0) {
    return FailWith(ENCLAVIA_INVALID_ARGUMENT,
                    "enclavia_stream_read: NULL argument or zero capacity");
  }
  *out_size = 0;
  auto n = stream->stream->Read(std::span<uint8_t>(buffer, capacity));
  if (!n) {
    return Fail(n.error());
  }
  *out_size = *n;
  return Succeed();
}

enclavia_status enclavia_stream_close_write(enclavia_stream* stream) {
  if (stream == nullptr) {
    return Invalid("enclavia_stream_close_write");
  }
  auto closed = stream->stream->CloseWrite();
  return closed ? Succeed() : Fail(closed.error());
}

void enclavia_stream_free(enclavia_stream* stream) { delete stream; }

}  // extern "C"
