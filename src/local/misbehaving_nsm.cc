// SPDX-License-Identifier: Apache-2.0
#include "local/misbehaving_nsm.h"

#include "lib/crypto/random.h"

namespace enclavia::local {

Result<Bytes> MisbehavingNsm::Attestation(const attestation::AttestationRequest& request) {
  switch (mode_) {
    case Misbehaviour::kNone:
      break;
    case Misbehaviour::kWrongPublicKey: {
      attestation::AttestationRequest changed = request;
      Bytes other(32);
      crypto::RandomFill(other);
      changed.public_key = other;
      return inner_->Attestation(changed);
    }
    case Misbehaviour::kReplayFresh:
      if (request.nonce) {
        if (!first_fresh_) {
          ASSIGN_OR_RETURN(first_fresh_, inner_->Attestation(request));
        }
        return *first_fresh_;
      }
      break;
  }
  return inner_->Attestation(request);
}

}  // namespace enclavia::local
