// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_EIF_WRITER_H_
#define ENCLAVIA_LIB_EIF_WRITER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/base/sink.h"
#include "lib/eif/format.h"
#include "lib/eif/signature.h"

namespace enclavia::eif {

// ImageSpec describes an image to write. It borrows everything: the sources and the signer must
// outlive the WriteEif/MeasureImage call.
struct ImageSpec {
  const ByteSource* kernel = nullptr;
  std::string cmdline;  // Stored without a NUL terminator; may not contain NUL.
  Bytes metadata;       // EncodeMetadata's output; must decode (DecodeMetadata).
  std::vector<const ByteSource*> ramdisks;  // At least one; ramdisk 1 is PCR1's, the rest PCR2's.
  const SigningKey* signer = nullptr;       // Optional: adds the signature section and PCR8.
  uint16_t flags = 0;                       // kFlagAarch64 for aarch64 images.
  uint64_t default_mem = 1073741824;        // Bytes (nitro-cli writes 1 GiB).
  uint64_t default_cpus = 2;
  // progress, when set, is called on the calling thread every few MiB with the bytes of the
  // image produced so far and the total (the signature section excluded), and once at the end.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

// WriteEif writes the image to `path`, as nitro-cli's EifBuilder lays it out (header, kernel,
// cmdline, metadata, ramdisks, signature), and returns its measurements. Every source is read
// exactly once, in large chunks, and each chunk is hashed for PCR0, hashed for PCR1/PCR2,
// CRC'd and written concurrently on worker threads, with a bounded amount (~32 MiB) in flight.
// The file appears atomically: it is written to a temporary file beside `path`, fsynced and
// renamed over `path`; on any error the temporary file is removed and `path` is untouched.
// Errors: kInvalidArgument for a bad spec (no kernel, no ramdisk, more than 32 sections, NUL in
// the cmdline, metadata that does not decode, a source that produces more or fewer bytes than
// its size()), SigningCertificateDer's errors, kIo, or a source's own error.
// Sources' WriteTo and `progress` run on the calling thread. Calls for different specs may run
// concurrently.
Result<Measurements> WriteEif(const ImageSpec& spec, const std::string& path);

// MeasureImage returns the measurements WriteEif would, without writing anything (the image
// bytes that are not measured are not produced at all). Same errors, minus kIo.
Result<Measurements> MeasureImage(const ImageSpec& spec);

}  // namespace enclavia::eif

#endif  // ENCLAVIA_LIB_EIF_WRITER_H_
