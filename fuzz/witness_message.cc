// SPDX-License-Identifier: Apache-2.0
// Fuzzes the witness protocol decoder (untrusted both ways: the witness reads what any attested
// client sends, the client reads what a witness answers) and the witness's session on it.
#include <cstddef>
#include <cstdint>

#include "lib/witness/protocol.h"
#include "lib/witness/state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  enclavia::ByteSpan input(data, size);
  auto message = enclavia::witness::DecodeMessage(input);
  if (message) {
    // Decoding is canonical: a decoded message re-encodes to exactly the input.
    ENCLAVIA_CHECK(enclavia::witness::EncodeMessage(*message) ==
                   enclavia::Bytes(input.begin(), input.end()));
  }
  (void)enclavia::witness::DecodeRequest(input);
  (void)enclavia::witness::DecodeResponse(input);
  // A session without a verifier refuses every Hello; anything else must not crash it either.
  enclavia::witness::WitnessState state(4);
  enclavia::witness::WitnessSession session(state, {});
  (void)session.Start();
  auto step = session.OnMessage(input);
  ENCLAVIA_CHECK(step.close && !step.reply.empty());
  return 0;
}
