// SPDX-License-Identifier: Apache-2.0
#include "lib/eif/internal/pipeline.h"

#include <algorithm>
#include <cstring>
#include <system_error>

namespace enclavia::eif::internal {
namespace {

// NewBuffer allocates without zero-filling: 32 MiB of memset per image would be wasted work.
std::unique_ptr<uint8_t[]> NewBuffer(size_t size) {        // NOLINT(modernize-avoid-c-arrays)
  return std::make_unique_for_overwrite<uint8_t[]>(size);  // NOLINT(modernize-avoid-c-arrays)
}

}  // namespace

Pipeline::Pipeline(std::vector<Consumer*> consumers, PipelineOptions options)
    : consumers_(std::move(consumers)), options_(std::move(options)) {
  ENCLAVIA_CHECK(options_.chunk_size > 0 && options_.depth > 0);
}

Pipeline::~Pipeline() { (void)Finish(); }

Result<void> Pipeline::Start() {
  ENCLAVIA_CHECK(!started_);
  started_ = true;
  if (!options_.threaded || consumers_.empty()) {
    options_.threaded = false;
    return Ok();
  }
  slots_.resize(options_.depth);
  try {
    threads_.reserve(consumers_.size());
    for (Consumer* consumer : consumers_) {
      threads_.emplace_back([this, consumer] { Run(consumer); });
    }
  } catch (const std::system_error& e) {
    {
      std::lock_guard lock(mu_);
      finished_ = true;
    }
    consumer_cv_.notify_all();
    for (std::thread& t : threads_) {
      t.join();
    }
    threads_.clear();
    finished_producer_ = true;
    return Error(Code::kInternal, std::string("eif: cannot start a worker thread: ") + e.what());
  }
  return Ok();
}

bool Pipeline::Wanted(Stream stream) const {
  return std::any_of(consumers_.begin(), consumers_.end(),
                     [stream](const Consumer* c) { return c->Wants(stream); });
}

void Pipeline::Progress(uint64_t bytes) const {
  if (options_.progress && bytes > 0) {
    options_.progress(bytes);
  }
}

Result<void> Pipeline::Dispatch(ByteSpan data, Stream stream) {
  if (inline_error_) {
    return *inline_error_;
  }
  for (Consumer* consumer : consumers_) {
    if (!consumer->Wants(stream)) {
      continue;
    }
    auto r = consumer->Consume(data, stream);
    if (!r) {
      inline_error_ = r.error();
      return r;
    }
  }
  return Ok();
}

Result<void> Pipeline::CurrentError() {
  if (inline_error_) {
    return *inline_error_;
  }
  std::lock_guard lock(mu_);
  if (error_) {
    return *error_;
  }
  return Ok();
}

Result<Pipeline::Slot*> Pipeline::AcquireSlot() {
  std::unique_lock lock(mu_);
  Slot& slot = slots_[published_ % options_.depth];
  producer_cv_.wait(lock, [&] { return slot.pending == 0 || aborted_; });
  if (aborted_) {
    return *error_;
  }
  return &slot;
}

void Pipeline::Publish(Slot& slot, const uint8_t* data, size_t size, Stream stream) {
  slot.data = data;
  slot.size = size;
  slot.stream = stream;
  {
    std::lock_guard lock(mu_);
    slot.pending = consumers_.size();
    ++published_;
    ++outstanding_;
  }
  consumer_cv_.notify_all();
}

void Pipeline::FlushPartial() {
  if (partial_ != nullptr) {
    Slot& slot = *partial_;
    partial_ = nullptr;
    Publish(slot, slot.storage.get(), slot.size, slot.stream);
  }
}

Result<void> Pipeline::WaitDrained() {
  std::unique_lock lock(mu_);
  producer_cv_.wait(lock, [&] { return outstanding_ == 0; });
  if (error_) {
    return *error_;
  }
  return Ok();
}

Result<void> Pipeline::Write(ByteSpan data, Stream stream) {
  ENCLAVIA_CHECK(started_ && !finished_producer_);
  if (data.empty() || !Wanted(stream)) {
    Progress(data.size());
    return CurrentError();
  }
  if (!options_.threaded) {
    RETURN_IF_ERROR(Dispatch(data, stream));
    Progress(data.size());
    return Ok();
  }
  const size_t chunk = options_.chunk_size;
  if (data.size() / options_.depth >= chunk) {
    // Larger than the whole ring: share it in place rather than copy it, and wait before
    // returning, since `data` is only valid during this call. Consumers keep releasing chunks
    // after an error, so the wait always ends.
    FlushPartial();
    while (!data.empty()) {
      auto slot = AcquireSlot();
      if (!slot) {
        (void)WaitDrained();
        return slot.error();
      }
      size_t n = std::min(data.size(), chunk);
      Publish(**slot, data.data(), n, stream);
      data = data.subspan(n);
      Progress(n);
    }
    return WaitDrained();
  }
  Progress(data.size());
  while (!data.empty()) {
    if (partial_ != nullptr && partial_->stream != stream) {
      FlushPartial();
    }
    if (partial_ == nullptr) {
      ASSIGN_OR_RETURN(Slot * slot, AcquireSlot());
      if (!slot->storage) {
        slot->storage = NewBuffer(chunk);
      }
      slot->size = 0;
      slot->stream = stream;
      partial_ = slot;
    }
    size_t n = std::min(data.size(), chunk - partial_->size);
    std::memcpy(partial_->storage.get() + partial_->size, data.data(), n);
    partial_->size += n;
    data = data.subspan(n);
    if (partial_->size == chunk) {
      FlushPartial();
    }
  }
  return CurrentError();
}

Result<void> Pipeline::Fill(uint64_t size, Stream stream, const ReadFn& read) {
  ENCLAVIA_CHECK(started_ && !finished_producer_);
  if (!Wanted(stream)) {
    Progress(size);
    return CurrentError();
  }
  const size_t chunk = options_.chunk_size;
  uint64_t done = 0;
  if (!options_.threaded) {
    if (scratch_.size() < std::min<uint64_t>(size, chunk)) {
      scratch_.resize(static_cast<size_t>(std::min<uint64_t>(size, chunk)));
    }
    while (done < size) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(size - done, chunk));
      std::span<uint8_t> buf(scratch_.data(), n);
      RETURN_IF_ERROR(read(done, buf));
      RETURN_IF_ERROR(Dispatch(buf, stream));
      done += n;
      Progress(n);
    }
    return Ok();
  }
  FlushPartial();
  while (done < size) {
    ASSIGN_OR_RETURN(Slot * slot, AcquireSlot());
    if (!slot->storage) {
      slot->storage = NewBuffer(chunk);
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(size - done, chunk));
    RETURN_IF_ERROR(read(done, std::span<uint8_t>(slot->storage.get(), n)));
    Publish(*slot, slot->storage.get(), n, stream);
    done += n;
    Progress(n);
  }
  return CurrentError();
}

Result<void> Pipeline::Finish() {
  if (!started_ || finished_producer_ || !options_.threaded) {
    finished_producer_ = started_;
    return CurrentError();
  }
  finished_producer_ = true;
  bool aborted = false;
  {
    std::lock_guard lock(mu_);
    aborted = aborted_;
  }
  if (!aborted) {
    FlushPartial();
  }
  partial_ = nullptr;
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  consumer_cv_.notify_all();
  for (std::thread& t : threads_) {
    t.join();
  }
  threads_.clear();
  std::lock_guard lock(mu_);
  if (error_) {
    return *error_;
  }
  return Ok();
}

void Pipeline::Run(Consumer* consumer) {
  uint64_t next = 0;
  for (;;) {
    Slot* slot = nullptr;
    bool skip = false;
    {
      std::unique_lock lock(mu_);
      consumer_cv_.wait(lock, [&] { return next < published_ || finished_; });
      if (next >= published_) {
        return;
      }
      slot = &slots_[next % options_.depth];
      skip = aborted_;
    }
    if (!skip && consumer->Wants(slot->stream)) {
      auto r = consumer->Consume(ByteSpan(slot->data, slot->size), slot->stream);
      if (!r) {
        {
          std::lock_guard lock(mu_);
          if (!error_) {
            error_ = std::move(r).error();
          }
          aborted_ = true;
        }
        producer_cv_.notify_all();
      }
    }
    bool freed = false;
    {
      std::lock_guard lock(mu_);
      if (--slot->pending == 0) {
        --outstanding_;
        freed = true;
      }
    }
    if (freed) {
      producer_cv_.notify_all();
    }
    ++next;
  }
}

}  // namespace enclavia::eif::internal
