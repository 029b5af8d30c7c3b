// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_CRYPTO_SECRET_H_
#define ENCLAVIA_LIB_CRYPTO_SECRET_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "lib/base/bytes.h"

namespace enclavia::crypto {

// Cleanse overwrites `data` with zeros in a way the compiler cannot elide (OPENSSL_cleanse).
void Cleanse(void* data, size_t size);

// ConstantTimeEqual reports whether `a` and `b` are equal, in time that depends only on their
// lengths (CRYPTO_memcmp). Different lengths compare unequal. Use it for every MAC, tag, key or
// probe-able hash.
bool ConstantTimeEqual(ByteSpan a, ByteSpan b);

// Secret holds N bytes of key material. It is move-only, wiped on destruction, and has no
// operator== and no formatter. Every Expose() call site is a place a reviewer must look at.
template <std::size_t N>
class Secret {
 public:
  Secret() = default;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  Secret(Secret&& other) noexcept : bytes_(other.bytes_) { other.Wipe(); }
  Secret& operator=(Secret&& other) noexcept {
    if (this != &other) {
      bytes_ = other.bytes_;
      other.Wipe();
    }
    return *this;
  }
  ~Secret() { Wipe(); }

  static constexpr std::size_t kSize = N;
  std::span<const uint8_t, N> Expose() const { return bytes_; }
  std::span<uint8_t, N> MutableBytes() { return bytes_; }

 private:
  void Wipe() noexcept { Cleanse(bytes_.data(), N); }
  std::array<uint8_t, N> bytes_{};
};

// CleansingAllocator wipes memory before returning it to the heap.
template <typename T>
struct CleansingAllocator {
  using value_type = T;
  CleansingAllocator() = default;
  template <typename U>
  explicit CleansingAllocator(const CleansingAllocator<U>& /*unused*/) {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) {
    Cleanse(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  template <typename U>
  bool operator==(const CleansingAllocator<U>& /*unused*/) const {
    return true;
  }
};

// SecretBytes is a variable-length secret with the same rules as Secret<N>.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size) : bytes_(size) {}
  explicit SecretBytes(ByteSpan data) : bytes_(data.begin(), data.end()) {}
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&&) noexcept = default;
  SecretBytes& operator=(SecretBytes&&) noexcept = default;
  ~SecretBytes() = default;

  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  ByteSpan Expose() const { return {bytes_.data(), bytes_.size()}; }
  std::span<uint8_t> MutableBytes() { return {bytes_.data(), bytes_.size()}; }

 private:
  std::vector<uint8_t, CleansingAllocator<uint8_t>> bytes_;
};

}  // namespace enclavia::crypto

#endif  // ENCLAVIA_LIB_CRYPTO_SECRET_H_
