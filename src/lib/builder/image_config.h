// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_BUILDER_IMAGE_CONFIG_H_
#define ENCLAVIA_LIB_BUILDER_IMAGE_CONFIG_H_

#include <string>

#include "lib/base/result.h"
#include "lib/config/enclave_config.h"

// Reading an image's measured configuration back out of the EIF, for tools outside the enclave
// (`enclavia describe`, the host agent deciding which services an enclave needs). The EIF is not
// secret; what is read here is exactly what PCR2 covers, so a client can check it too.
namespace enclavia::builder {

// ReadImageConfig checks the image at `path` (eif::ReadEif), finds etc/enclavia/enclave.toml in
// its ramdisks (the last one that has it) and parses it. kNotFound when no ramdisk has one;
// kMalformed / kInvalidArgument from the archive or the TOML; every error names the image.
Result<config::EnclaveConfig> ReadImageConfig(const std::string& path);

}  // namespace enclavia::builder

#endif  // ENCLAVIA_LIB_BUILDER_IMAGE_CONFIG_H_
