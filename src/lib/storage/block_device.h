// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_STORAGE_BLOCK_DEVICE_H_
#define ENCLAVIA_LIB_STORAGE_BLOCK_DEVICE_H_

#include <cstdint>
#include <span>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

namespace enclavia::storage {

// BlockDevice is what the NBD server exports (src/enclave/storage): a byte-addressed disk of
// size() bytes. Offsets and lengths need not be block-aligned; ranges past size() are
// kInvalidArgument. A failed Read is an I/O error for the app (EIO), never wrong data.
// Calls may come from several threads; implementations serialize as they need.
class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  virtual uint64_t size() const = 0;
  // Read fills `out` with the bytes at `offset`.
  virtual Result<void> Read(uint64_t offset, std::span<uint8_t> out) = 0;
  // Write stores `data` at `offset`. With `fua`, it returns only once this write is committed
  // (as after Flush).
  virtual Result<void> Write(uint64_t offset, ByteSpan data, bool fua) = 0;
  // Trim discards a range (later reads return zeros).
  virtual Result<void> Trim(uint64_t offset, uint64_t length, bool fua) = 0;
  // WriteZeroes makes a range read as zeros.
  virtual Result<void> WriteZeroes(uint64_t offset, uint64_t length, bool fua) = 0;
  // Flush commits every write that completed before it: when it returns, they are durable at the
  // backend and acknowledged by a majority of witnesses.
  virtual Result<void> Flush() = 0;
};

}  // namespace enclavia::storage

#endif  // ENCLAVIA_LIB_STORAGE_BLOCK_DEVICE_H_
