// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_HOST_NSM_SIMULATOR_H_
#define ENCLAVIA_HOST_NSM_SIMULATOR_H_

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/attestation/document.h"
#include "lib/attestation/nsm.h"
#include "lib/base/encoding.h"
#include "lib/base/result.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/x509.h"

// The NSM simulator plays the part of the Nitro hypervisor on a developer machine: it holds a
// local root CA (the stand-in for the AWS root) and signs attestation documents in the exact AWS
// format. It runs OUTSIDE the enclave sandbox, as the hypervisor would. Verifiers trust its root
// only when told to; production trusts only AWS.
namespace enclavia::host {

using Clock = std::function<SystemTime()>;

// SimulatorCa is the simulator's root certificate authority, kept in a state directory as
// root.pem (the certificate, to hand to verifiers) and root.key (P-384 PKCS#8, mode 0600).
class SimulatorCa {
 public:
  // LoadOrCreate loads the CA from `state_dir`, or creates the directory (0700) and a new CA,
  // valid for 30 years, on first use. A half-written or mismatched pair is an error, never
  // silently replaced.
  static Result<SimulatorCa> LoadOrCreate(const std::string& state_dir, const Clock& clock);

  const crypto::Certificate& root() const { return root_; }
  const crypto::PrivateKey& key() const { return key_; }

 private:
  SimulatorCa(crypto::Certificate root, crypto::PrivateKey key)
      : root_(std::move(root)), key_(std::move(key)) {}
  crypto::Certificate root_;
  crypto::PrivateKey key_;
};

struct SimulatorOptions {
  // PCR values set at boot (48 bytes each), e.g. PCR0/1/2/8 from the EIF and PCR4 from the
  // instance id. Unset PCRs are zero.
  std::map<uint16_t, Bytes> boot_pcrs;
  // debug zeroes PCR0, 1, 2 and 8 in every document, as Nitro does for debug-mode enclaves.
  bool debug = false;
  // module_id; empty means a random one shaped like AWS's ("i-…-enc…").
  std::string module_id;
  attestation::PayloadMapEncoding encoding = attestation::PayloadMapEncoding::kIndefinite;
  Clock clock;  // Defaults to the system clock.
};

// NsmSimulator implements the Nsm interface with Nitro's semantics: 32 SHA-384 PCRs, PCRs 0..15
// locked at boot, extend = SHA384(old || data), lock until the enclave ends. Documents are signed
// root → three intermediates → a short-lived (3 h) leaf, all P-384, cabundle root first, exactly
// as AWS's NSM signs them. Not thread-safe; the host serialises requests.
class NsmSimulator : public attestation::Nsm {
  struct Passkey {
    explicit Passkey() = default;
  };

 public:
  static Result<std::unique_ptr<NsmSimulator>> Create(std::shared_ptr<const SimulatorCa> ca,
                                                      SimulatorOptions options);

  Result<Bytes> Attestation(const attestation::AttestationRequest& request) override;
  Result<attestation::PcrDescription> DescribePcr(uint16_t index) override;
  Result<Bytes> ExtendPcr(uint16_t index, ByteSpan data) override;
  Result<void> LockPcr(uint16_t index) override;
  Result<void> LockPcrs(uint16_t range) override;
  Result<attestation::NsmDescription> DescribeNsm() override;
  Result<Bytes> GetRandom() override;

  // Use Create; the Passkey keeps construction inside this class.
  NsmSimulator(Passkey, std::shared_ptr<const SimulatorCa> ca, SimulatorOptions options);

 private:
  struct Issuer {
    crypto::Certificate cert;
    crypto::PrivateKey key;
  };
  // EnsureChain renews intermediates and the leaf well before they expire.
  Result<void> EnsureChain(SystemTime now);

  std::shared_ptr<const SimulatorCa> ca_;
  SimulatorOptions options_;
  std::array<Bytes, attestation::kNsmMaxPcrs> pcrs_;
  std::array<bool, attestation::kNsmMaxPcrs> locked_{};
  std::vector<Issuer> intermediates_;
  std::optional<Issuer> leaf_;
};

}  // namespace enclavia::host

#endif  // ENCLAVIA_HOST_NSM_SIMULATOR_H_
