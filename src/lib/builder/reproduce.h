// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BUILDER_REPRODUCE_H_
#define ENCLAVIA_LIB_BUILDER_REPRODUCE_H_

#include <map>
#include <string>
#include <vector>

#include "lib/attestation/verifier.h"
#include "lib/base/encoding.h"
#include "lib/base/result.h"
#include "lib/builder/builder.h"

// `enclavia reproduce`: rebuild an image from its Enclaviafile and lock, and compare the PCRs
// with an image file, a PCR list, or what a running enclave attests. When an image file is
// given, the differing ramdisks are opened and compared file by file.
namespace enclavia::builder {

// Expected is what the rebuild is compared with.
struct Expected {
  std::string description;     // "image.eif", "pcrs.json", "attestation doc.cbor"
  std::map<int, Bytes> pcrs;   // index -> 48-byte value; at least one of 0, 1, 2
  std::string eif_path;        // set for an image file: enables ramdisk and file comparisons
};

// ExpectFromEif reads PCRs from an image (checking its CRC).
Result<Expected> ExpectFromEif(const std::string& path);
// ExpectFromPcrJson accepts nitro-cli's build/describe output ({"Measurements": {"PCR0": ...}})
// or a plain {"PCR0": hex, ...} object.
Result<Expected> ExpectFromPcrJson(const std::string& path);
// ExpectFromAttestation verifies an attestation document at `at` with `verifier` and takes its
// PCR0/1/2; `description` names it in messages. A debug-mode document (zero PCRs) is refused.
Result<Expected> ExpectFromAttestation(ByteSpan document, const std::string& description,
                                       const attestation::Verifier& verifier, SystemTime at);

struct PcrCheck {
  int index = 0;
  std::string names;  // what the PCR covers: "kernel, cmdline and all ramdisks", ...
  Bytes expected;
  Bytes actual;
  bool match = false;
};

struct FileDifference {
  std::string path;
  std::string what;      // "content differs", "only in the expected image", "mode 0644 != 0755"
  std::string expected;  // "size 12, sha256 3f2a…" or ""
  std::string actual;
};

struct RamdiskReport {
  int ramdisk = 0;  // 1-based, as in the image
  std::vector<FileDifference> files;
};

struct ReproduceReport {
  bool match = false;
  std::vector<PcrCheck> pcrs;
  std::vector<std::string> notes;  // kernel or cmdline differences, section count differences
  std::vector<RamdiskReport> ramdisks;
  BuildResult build;
};

// Reproduce rebuilds `path` (the lock must exist and match its inputs) and compares.
Result<ReproduceReport> Reproduce(const std::string& path, const Expected& expected,
                                  const Environment& env);

}  // namespace enclavia::builder

#endif  // ENCLAVIA_LIB_BUILDER_REPRODUCE_H_
