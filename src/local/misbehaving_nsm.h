// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LOCAL_MISBEHAVING_NSM_H_
#define ENCLAVIA_LOCAL_MISBEHAVING_NSM_H_

#include <memory>
#include <optional>

#include "lib/attestation/nsm.h"

// MisbehavingNsm wraps an Nsm to play a dishonest enclave in tests of the client's checks. It is
// linked only into the local development ingress, never into an image.
namespace enclavia::local {

enum class Misbehaviour {
  kNone,
  kWrongPublicKey,   // Documents bind a random key instead of the requested public_key.
  kReplayFresh,      // Every fresh request gets the first fresh document ever issued.
};

class MisbehavingNsm : public attestation::Nsm {
 public:
  MisbehavingNsm(std::unique_ptr<attestation::Nsm> inner, Misbehaviour mode)
      : inner_(std::move(inner)), mode_(mode) {}

  Result<Bytes> Attestation(const attestation::AttestationRequest& request) override;
  Result<attestation::PcrDescription> DescribePcr(uint16_t index) override {
    return inner_->DescribePcr(index);
  }
  Result<Bytes> ExtendPcr(uint16_t index, ByteSpan data) override {
    return inner_->ExtendPcr(index, data);
  }
  Result<void> LockPcr(uint16_t index) override { return inner_->LockPcr(index); }
  Result<void> LockPcrs(uint16_t range) override { return inner_->LockPcrs(range); }
  Result<attestation::NsmDescription> DescribeNsm() override { return inner_->DescribeNsm(); }
  Result<Bytes> GetRandom() override { return inner_->GetRandom(); }

 private:
  std::unique_ptr<attestation::Nsm> inner_;
  Misbehaviour mode_;
  std::optional<Bytes> first_fresh_;
};

}  // namespace enclavia::local

#endif  // ENCLAVIA_LOCAL_MISBEHAVING_NSM_H_
