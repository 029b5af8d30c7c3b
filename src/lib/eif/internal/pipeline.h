// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EIF_INTERNAL_PIPELINE_H_
#define ENCLAVIA_LIB_EIF_INTERNAL_PIPELINE_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// The fan-out that lets the writer and the reader touch every byte of an image once: one
// producer (the caller's thread) hands an ordered byte stream to several consumers (SHA-384 for
// PCR0, SHA-384 for PCR1/PCR2, CRC-32, the output file), each on its own thread, through a small
// ring of shared read-only chunks.
namespace enclavia::eif::internal {

// Stream says what a run of bytes feeds.
enum class Stream : uint8_t {
  kBoot,        // kernel, cmdline, first ramdisk: PCR0 and PCR1
  kApp,         // the other ramdisks: PCR0 and PCR2
  kUnmeasured,  // EIF header, section headers, metadata, signature: CRC and file only
};

// Consumer processes the stream in order. Consume is called from one thread at a time (in
// threaded mode always the same one); `data` is valid only during the call. An error stops the
// pipeline: Consume is not called again and the producer's next call returns that error.
class Consumer {
 public:
  virtual ~Consumer() = default;
  virtual bool Wants(Stream stream) const = 0;
  virtual Result<void> Consume(ByteSpan data, Stream stream) = 0;
};

struct PipelineOptions {
  // threaded runs each consumer on its own thread; otherwise Write calls them inline, which is
  // cheaper for small images (and keeps fuzzing single-threaded).
  bool threaded = true;
  size_t chunk_size = size_t{4} << 20;
  size_t depth = 8;  // Chunks in flight; memory use is about depth * chunk_size.
  // progress, when set, is called on the producer's thread with the count of bytes just taken
  // by Write or Fill (wanted or not): at least once per chunk of a large in-place span or Fill.
  std::function<void(uint64_t bytes)> progress;
};

// Pipeline is driven by one producer thread; it is not otherwise thread-safe. Consumers must
// outlive it. Call Start, then Write/Fill any number of times, then Finish (the destructor
// finishes too, dropping the result).
class Pipeline {
 public:
  Pipeline(std::vector<Consumer*> consumers, PipelineOptions options);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Start launches the consumer threads (kInternal if the system refuses a thread).
  Result<void> Start();

  // Write appends `data` to the stream. Small writes are copied into the ring and Write returns
  // as soon as they are queued; a span of at least depth * chunk_size bytes is shared in place
  // (no copy) and Write returns once every consumer is done with it. Bytes that no consumer
  // wants are dropped.
  Result<void> Write(ByteSpan data, Stream stream);

  // ReadFn fills `out` with the stream's bytes starting `offset` bytes into this Fill.
  using ReadFn = std::function<Result<void>(uint64_t offset, std::span<uint8_t> out)>;
  // Fill appends `size` bytes that `read` writes straight into ring buffers of at most
  // chunk_size bytes (so a file is read into the ring with no further copy).
  Result<void> Fill(uint64_t size, Stream stream, const ReadFn& read);

  // Finish hands over the last partial chunk, waits for every consumer to process everything,
  // stops the threads, and returns the first error any consumer or the producer met.
  Result<void> Finish();

 private:
  struct Slot {
    // Allocated on first use and never zero-filled (a vector would be): every byte is written
    // before it is read.
    std::unique_ptr<uint8_t[]> storage;  // NOLINT(modernize-avoid-c-arrays)
    const uint8_t* data = nullptr;
    size_t size = 0;
    Stream stream = Stream::kUnmeasured;
    size_t pending = 0;  // Consumers yet to release this chunk; 0 means free.
  };

  bool Wanted(Stream stream) const;
  void Progress(uint64_t bytes) const;
  Result<void> Dispatch(ByteSpan data, Stream stream);  // Unthreaded mode.
  Result<void> CurrentError();
  Result<Slot*> AcquireSlot();
  void Publish(Slot& slot, const uint8_t* data, size_t size, Stream stream);
  void FlushPartial();
  Result<void> WaitDrained();
  void Run(Consumer* consumer);

  std::vector<Consumer*> consumers_;
  PipelineOptions options_;
  bool started_ = false;
  bool finished_producer_ = false;

  // Unthreaded state.
  std::optional<Error> inline_error_;
  Bytes scratch_;

  // Threaded state. Slot `n % depth` holds chunk n. A slot's fields are written by the producer
  // while its pending count is 0 and read by consumers after they see published_ > n; the mutex
  // orders the two.
  std::vector<Slot> slots_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable producer_cv_;
  std::condition_variable consumer_cv_;
  uint64_t published_ = 0;      // Guarded by mu_.
  uint64_t outstanding_ = 0;    // Published chunks some consumer still holds. Guarded by mu_.
  bool finished_ = false;       // No more chunks will come. Guarded by mu_.
  bool aborted_ = false;        // A consumer failed. Guarded by mu_.
  std::optional<Error> error_;  // Guarded by mu_.
  // The chunk the producer is filling (it owns slot published_ % depth meanwhile).
  Slot* partial_ = nullptr;
};

}  // namespace enclavia::eif::internal

#endif  // ENCLAVIA_LIB_EIF_INTERNAL_PIPELINE_H_
