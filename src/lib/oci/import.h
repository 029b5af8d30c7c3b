// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_OCI_IMPORT_H_
#define ENCLAVIA_LIB_OCI_IMPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/image/tree.h"

// Importing a container image (an OCI image layout, as a directory or a tarball, or a `docker
// save` tarball) into an image::Tree: layers are applied in order with OCI whiteouts, and every
// blob is checked against its digest. The accepted inputs and the exact rules are in
// docs/formats/oci-import.md.
namespace enclavia::oci {

// ImageConfig is the part of the image configuration (config.Entrypoint, Cmd, Env, WorkingDir,
// User) the builder uses as defaults. Absent or null fields are empty.
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "K=V"
  std::string workdir;
  std::string user;
};

// LayerInfo describes one layer as it was found in the image.
struct LayerInfo {
  std::string digest;      // "sha256:<hex>" of the blob as stored (possibly compressed)
  std::string diff_id;     // "sha256:<hex>" of the uncompressed tar stream
  std::string media_type;  // from the manifest; for legacy docker archives derived from the
                           // detected compression (application/vnd.docker.image.rootfs.diff.tar…)
  uint64_t size = 0;       // bytes of the blob as stored
};

// Image is an imported image: the merged root file system and where it came from.
struct Image {
  image::Tree tree;               // the merged root file system
  std::vector<LayerInfo> layers;  // in application order
  std::string config_digest;      // "sha256:..."
  std::string manifest_digest;    // "sha256:..." when known (OCI layout), else ""
  std::string format;             // "oci-layout" or "docker-archive"
  ImageConfig config;
  // Things dropped on the way that a user may want to know about (device nodes not listed in
  // ImportOptions::devices, sockets, extended attributes), one line each, naming the layer.
  std::vector<std::string> warnings;
};

// ImportOptions controls where file contents go and bounds the work an image can cause.
struct ImportOptions {
  // Regular-file contents are written to <staging_dir>/<sha256 hex> (mode 0600, deduplicated by
  // digest; the directory is created if missing) and entries get a PathContent naming that file;
  // the files must outlive the Tree. If empty, contents are kept in memory (Bytes): for fuzzing
  // and small images.
  std::string staging_dir;
  // Device nodes to keep, as normalized paths ("dev/null"); other device nodes are dropped and
  // listed in the warnings.
  std::vector<std::string> devices;
  // Which manifest to pick from an image index with several: "os/arch" or "os/arch/variant".
  std::string platform = "linux/amd64";
  // Caps on the sum of uncompressed layer bytes (and, for a tarball input, of its member bytes;
  // in memory mode, of file bytes held in memory), on the tar entries of one layer and on the
  // entries of the resulting tree, and on the number of layers. Exceeding one is kLimitExceeded.
  uint64_t max_total_bytes = uint64_t{16} << 30;
  size_t max_entries = size_t{1} << 20;
  size_t max_layers = 128;
};

// ImportImage reads `path`: an OCI image layout directory, or a tar file (optionally gzip or zstd
// compressed) holding an OCI layout (oci-layout + index.json + blobs/sha256/...) or a `docker
// save` archive (manifest.json + <config>.json + layer tars). When both an OCI index and a docker
// manifest.json are present (docker 25+), the OCI index is used. Each blob's sha256 and size are
// checked against its descriptor or name, and each layer's uncompressed digest against the
// config's rootfs.diff_ids, before the layer changes the tree. Errors name the blob or the entry:
// kVerifyFailed for a digest or size mismatch, kNotFound for a missing blob, kMalformed for bad
// JSON or tar data, kUnsupported for foreign layers and unknown media types, kLimitExceeded past
// a cap, kIo for file system failures. Reading a tarball extracts its members first, to a
// temporary directory inside `staging_dir` (removed before returning) or to memory.
Result<Image> ImportImage(const std::string& path, const ImportOptions& options);

// ApplyLayer applies one layer (a tar stream, optionally gzip or zstd compressed, detected from
// the bytes) on top of `tree`, implementing OCI whiteouts: ".wh.<name>" deletes <name> from lower
// layers and ".wh..wh..opq" in a directory hides everything lower layers put in it; whiteouts in a
// layer never affect that layer's own entries and never appear in the tree. Later entries replace
// earlier ones at the same path. A hard link records its group's leader in hardlink_to and copies
// its metadata, size and content reference; when a later layer removes or replaces a leader, the
// first remaining member (in path order) becomes the leader. Dropped device nodes, sockets and
// extended attributes are appended to `warnings` (may be null). On error (naming the entry) `tree`
// may be partly modified. `options.max_entries` bounds this layer's tar entries and the tree's
// size; `options.max_total_bytes` this layer's uncompressed bytes.
Result<void> ApplyLayer(ByteSpan layer_bytes, image::Tree& tree, const ImportOptions& options,
                        std::vector<std::string>* warnings);

}  // namespace enclavia::oci

#endif  // ENCLAVIA_LIB_OCI_IMPORT_H_
