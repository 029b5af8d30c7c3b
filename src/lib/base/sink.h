// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BASE_SINK_H_
#define ENCLAVIA_LIB_BASE_SINK_H_

#include "lib/base/bytes.h"
#include "lib/base/result.h"

namespace enclavia {

// ByteSink receives a byte stream in order, one chunk at a time. Write either consumes all of
// `data` or fails; after a failure the sink is unusable. `data` is only valid during the call.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Result<void> Write(ByteSpan data) = 0;
};

// CountingSink discards what it receives and counts it.
class CountingSink final : public ByteSink {
 public:
  Result<void> Write(ByteSpan data) override {
    count_ += data.size();
    return {};
  }
  uint64_t count() const { return count_; }

 private:
  uint64_t count_ = 0;
};

// BytesSink appends what it receives to a Bytes.
class BytesSink final : public ByteSink {
 public:
  Result<void> Write(ByteSpan data) override {
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    return {};
  }
  const Bytes& bytes() const { return bytes_; }
  Bytes Take() { return std::move(bytes_); }

 private:
  Bytes bytes_;
};

// ByteSource is a stream whose length is known before it is produced: an EIF section, a cpio
// archive. WriteTo writes exactly size() bytes to `sink` (or fails), and may be called again.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  virtual Result<void> WriteTo(ByteSink& sink) const = 0;
};

// BytesSource is a ByteSource over bytes the caller keeps alive.
class BytesSource final : public ByteSource {
 public:
  explicit BytesSource(ByteSpan data) : data_(data) {}
  uint64_t size() const override { return data_.size(); }
  Result<void> WriteTo(ByteSink& sink) const override { return sink.Write(data_); }

 private:
  ByteSpan data_;
};

}  // namespace enclavia

#endif  // ENCLAVIA_LIB_BASE_SINK_H_
