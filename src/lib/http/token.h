// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_HTTP_TOKEN_H_
#define ENCLAVIA_LIB_HTTP_TOKEN_H_

#include <string>

#include "lib/base/result.h"

// The bearer tokens of the platform's local APIs (docs/platform-api.md) and where they live.
namespace enclavia::http {

// LoadOrCreateToken reads the token in `path` (64 lowercase hex digits and a newline), or, when
// the file does not exist, creates it once: 32 random bytes, hex, mode 0600, written atomically.
// A file that holds anything else is kFailedPrecondition naming it ("remove it to make a new
// one"): a token is never silently replaced.
Result<std::string> LoadOrCreateToken(const std::string& path);

// DefaultDataDir is the platform's data directory when none is given: $ENCLAVIA_HOME, else
// /var/lib/enclavia for root, else ~/.local/share/enclavia.
std::string DefaultDataDir();

}  // namespace enclavia::http

#endif  // ENCLAVIA_LIB_HTTP_TOKEN_H_
