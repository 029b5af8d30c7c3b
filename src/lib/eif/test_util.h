// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EIF_TEST_UTIL_H_
#define ENCLAVIA_LIB_EIF_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/sink.h"
#include "lib/crypto/keys.h"
#include "lib/eif/metadata.h"
#include "lib/eif/signature.h"
#include "lib/eif/writer.h"

// Helpers for the eif tests only (linked into enclavia_eif_test, not the library).
namespace enclavia::eif::testing {

// TempDir is a fresh directory removed (with its contents) at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Entries lists the names in the directory.
  std::vector<std::string> Entries() const;

 private:
  std::string path_;
};

// Random returns `n` pseudo-random bytes from `seed` (deterministic, fast).
Bytes Random(size_t n, uint64_t seed);

IdentityInfo SampleIdentity();

// TestImage owns an image's contents and builds an ImageSpec over them.
struct TestImage {
  Bytes kernel;
  std::string cmdline;
  std::vector<Bytes> ramdisks;
  IdentityInfo identity = SampleIdentity();

  // Spec returns a spec borrowing this image (and `sources_`, rebuilt on each call).
  ImageSpec Spec(const SigningKey* signer = nullptr);

 private:
  std::vector<BytesSource> sources_;
  Bytes metadata_;
};

// MakeSigner creates an ECDSA key and a self-signed certificate for it.
SigningKey MakeSigner(crypto::SignatureAlgorithm alg, const std::string& common_name = "signer");

Bytes ReadAll(const std::string& path);
void WriteAll(const std::string& path, ByteSpan data);

// RawSection is one section for BuildRaw.
struct RawSection {
  uint16_t type;
  Bytes data;
};

// BuildRaw assembles an EIF by hand, independently of the library's writer: header (with a
// table listing `sections` in order), sections back to back, CRC over everything. Used to craft
// malformed images.
Bytes BuildRaw(const std::vector<RawSection>& sections, uint16_t version = 4);

// FixCrc recomputes the header CRC of `image` in place (zlib, in the test).
void FixCrc(Bytes& image);

// Put64/Put16 store big-endian integers (header surgery).
void Put64(Bytes& b, size_t offset, uint64_t v);
void Put16(Bytes& b, size_t offset, uint16_t v);

// Header field offsets.
inline constexpr size_t kNumSectionsOffset = 26;
inline constexpr size_t kOffsetsOffset = 28;
inline constexpr size_t kSizesOffset = 28 + 8 * 32;

}  // namespace enclavia::eif::testing

#endif  // ENCLAVIA_LIB_EIF_TEST_UTIL_H_
