// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BUILDER_WITNESS_H_
#define ENCLAVIA_LIB_BUILDER_WITNESS_H_

#include <map>
#include <string>

#include "lib/base/result.h"
#include "lib/builder/builder.h"

// The built-in anti-rollback witness image (docs/witness.md): the Enclavia runtime plus
// enclavia-witness (found beside the runtime, in env.runtime_dir) as its application, listening
// on 127.0.0.1:7000 behind the ingress. It is built like any image, so anyone with the same
// Enclavia release and kernel rebuilds the same PCRs. An application image whose Enclaviafile
// has a [storage] section without witness_pcrs gets this image's PCR0 written into its measured
// configuration, so its volume trusts exactly these witnesses.
namespace enclavia::builder {

inline constexpr std::string_view kWitnessBinary = "enclavia-witness";
inline constexpr uint16_t kWitnessAppPort = 7000;

// BuildWitnessImage builds the witness image to `output` ("" measures only) and returns its
// build result. kNotFound when env.runtime_dir has no enclavia-witness.
Result<BuildResult> BuildWitnessImage(const Environment& env, const std::string& output);

// WitnessPcrs is what [storage] trusts by default: PCR0 of BuildWitnessImage, as lowercase hex.
Result<std::map<uint16_t, std::string>> WitnessPcrs(const Environment& env);

}  // namespace enclavia::builder

#endif  // ENCLAVIA_LIB_BUILDER_WITNESS_H_
