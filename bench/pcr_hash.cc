// SPDX-License-Identifier: Apache-2.0
// enclavia_pcr_hash_bench [--image] FILE
//   default:  one PCR over FILE the way the EIF pipeline computes each PCR: the file streamed in
//             4 MiB chunks (image::StreamContent) into crypto::Hasher SHA-384, then ExtendPcr.
//             bench/build.sh times it against `openssl dgst -sha384 FILE` (the same work).
//   --image:  the whole measurement of an image whose kernel is FILE (eif::MeasureImage: PCR0 and
//             PCR1 both cover the kernel, on two threads, plus the CRC) — for reference.
// Prints the PCR so the work cannot be optimised away.
#include <cstdio>
#include <string>

#include "lib/base/encoding.h"
#include "lib/base/sink.h"
#include "lib/crypto/hash.h"
#include "lib/eif/format.h"
#include "lib/eif/metadata.h"
#include "lib/eif/writer.h"
#include "lib/image/tree.h"

namespace {

class HashSink final : public enclavia::ByteSink {
 public:
  enclavia::Result<void> Write(enclavia::ByteSpan data) override {
    hasher_.Update(data);
    return {};
  }
  enclavia::crypto::Hasher& hasher() { return hasher_; }

 private:
  enclavia::crypto::Hasher hasher_{enclavia::crypto::HashAlgorithm::kSha384};
};

}  // namespace

int main(int argc, char** argv) {
  bool image = argc == 3 && std::string(argv[1]) == "--image";
  if (argc != 2 && !image) {
    std::fprintf(stderr, "usage: enclavia_pcr_hash_bench [--image] FILE\n");
    return 2;
  }
  const char* path = argv[argc - 1];
  auto opened = enclavia::image::FileSource::Open(path);
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.error().message().c_str());
    return 1;
  }
  const enclavia::image::FileSource& kernel = *opened;
  if (!image) {
    HashSink sink;
    if (auto r = kernel.WriteTo(sink); !r) {
      std::fprintf(stderr, "%s\n", r.error().message().c_str());
      return 1;
    }
    auto digest = sink.hasher().Finish();
    std::printf("PCR %s\n", enclavia::HexEncode(enclavia::eif::ExtendPcr(digest)).c_str());
    return 0;
  }
  enclavia::Bytes empty_ramdisk;
  enclavia::BytesSource ramdisk(empty_ramdisk);
  enclavia::eif::IdentityInfo identity;
  identity.image_name = "bench";
  enclavia::eif::ImageSpec spec;
  spec.kernel = &kernel;
  spec.metadata = enclavia::eif::EncodeMetadata(identity);
  spec.ramdisks = {&ramdisk};
  auto m = enclavia::eif::MeasureImage(spec);
  if (!m) {
    std::fprintf(stderr, "%s\n", m.error().message().c_str());
    return 1;
  }
  std::printf("PCR0 %s\n", enclavia::HexEncode(m->pcr0).c_str());
  return 0;
}
