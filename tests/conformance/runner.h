// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_TESTS_CONFORMANCE_RUNNER_H_
#define ENCLAVIA_TESTS_CONFORMANCE_RUNNER_H_

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// The C++ side of the conformance vectors (tests/conformance/README.md): runs one case through
// the client core exactly as an SDK would (trust file → policy → VerifyDocument or a replayed
// handshake) and gives its verdict. Shared by the runner (conformance_test.cc) and the generator
// (make_vectors.cc), which refuses to write a case whose verdict is not the intended one.
namespace enclavia::conformance {

struct Outcome {
  std::string verdict;        // "ok" or CodeName(error.code()).
  std::string message;        // The error's message ("" for ok).
  std::optional<Bytes> pcr0;  // The verified PCR0 (ok only).
};

// NeedsFixture reports whether `c` reads a document from the shared fixtures.
bool NeedsFixture(const nlohmann::json& c);

// RunCase runs case `c`. `fixtures_dir` is the shared fixtures folder (holding nitro/), used only
// by cases with "document_fixture". An error is a broken vector or harness (a missing field, a
// fixture that cannot be read), never a verdict.
Result<Outcome> RunCase(const nlohmann::json& c, const std::string& fixtures_dir);

}  // namespace enclavia::conformance

#endif  // ENCLAVIA_TESTS_CONFORMANCE_RUNNER_H_
