// SPDX-License-Identifier: Apache-2.0
// Verifying one real AWS Nitro attestation document, against the floor in the same run: the bare
// P-384 signature verifications the document needs (one per certificate link and one over the
// COSE Sig_structure), with keys and signatures already extracted. Prints the ratio of medians.
// Without the shared fixtures it measures a simulator document instead (same chain shape).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>

#include "host/nsm/simulator.h"
#include "lib/attestation/verifier.h"
#include "lib/base/file.h"
#include "lib/cose/sign1.h"
#include "lib/crypto/random.h"
#include "lib/crypto/x509.h"
#include "testing/fixtures.h"

namespace enclavia {
namespace {

struct Input {
  std::string source;
  Bytes document;
  SystemTime at;
  std::optional<attestation::Verifier> verifier;
};

Input LoadInput() {
  auto dir = testing::SharedFixturesDir();
  auto doc = dir ? ReadFile(*dir + "/nitro/att_2022-10-13_evervault_nondebug.cose", 1 << 16)
                 : Result<Bytes>(Error(Code::kNotFound, "no shared fixtures"));
  if (doc) {
    return {"real AWS document (evervault 2022-10-13)", std::move(doc).value(),
            FromUnixMillis(1665651482136),
            attestation::Verifier::Create(attestation::AwsRoot::kTrust).value()};
  }
  std::fprintf(stderr, "shared fixtures not found (%s): measuring a simulator document\n",
               doc.error().message().c_str());
  auto ca = std::make_shared<const host::SimulatorCa>(
      host::SimulatorCa::LoadOrCreate("/tmp/enclavia-bench-sim", {}).value());
  auto sim = host::NsmSimulator::Create(ca, {}).value();
  Bytes document = sim->Attestation({}).value();
  return {"simulator document", std::move(document), std::chrono::system_clock::now(),
          attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {ca->root()}).value()};
}

const Input& GetInput() {
  static const Input* input = new Input(LoadInput());
  return *input;
}

// One signature check of the floor: message, DER or raw signature, and the key.
struct SignatureCheck {
  Bytes message;
  Bytes signature;
  bool der;
  crypto::PublicKey key;
};

std::vector<SignatureCheck> ExtractFloor(const Input& input) {
  auto parsed = attestation::ParseUnverified(input.document).value();
  const auto& doc = parsed.document;
  std::vector<crypto::Certificate> path;
  for (const Bytes& der : doc.cabundle) {
    path.push_back(crypto::Certificate::FromDer(der).value());
  }
  path.push_back(crypto::Certificate::FromDer(doc.certificate).value());
  std::vector<SignatureCheck> checks;
  for (size_t i = 1; i < path.size(); ++i) {
    unsigned char* tbs = nullptr;
    int tbs_len = i2d_re_X509_tbs(path[i].raw(), &tbs);
    ENCLAVIA_CHECK(tbs_len > 0);
    const ASN1_BIT_STRING* sig = nullptr;
    X509_get0_signature(&sig, nullptr, path[i].raw());
    checks.push_back({Bytes(tbs, tbs + tbs_len),
                      Bytes(sig->data, sig->data + sig->length), true,
                      path[i - 1].public_key().value()});
    OPENSSL_free(tbs);
  }
  auto msg = cose::ParseSign1(input.document).value();
  checks.push_back({cose::SigStructure(msg.protected_header, {}, msg.payload), msg.signature,
                    false, path.back().public_key().value()});
  return checks;
}

void BM_VerifyDocument(benchmark::State& state) {
  const Input& input = GetInput();
  attestation::TrustPolicy policy;
  policy.allow_debug = true;
  for (auto _ : state) {
    auto v = input.verifier->Verify(input.document, input.at, policy);
    ENCLAVIA_CHECK(v.has_value());
    benchmark::DoNotOptimize(v);
  }
  state.SetLabel(input.source);
}

// The same with the certificate parse cache off: every certificate is decoded again, as for the
// first document from an enclave.
void BM_VerifyDocumentUncached(benchmark::State& state) {
  const Input& input = GetInput();
  static const auto* verifier = new attestation::Verifier(
      attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, input.verifier->roots(),
                                    attestation::VerifierOptions{0})
          .value());
  attestation::TrustPolicy policy;
  policy.allow_debug = true;
  for (auto _ : state) {
    auto v = verifier->Verify(input.document, input.at, policy);
    ENCLAVIA_CHECK(v.has_value());
    benchmark::DoNotOptimize(v);
  }
  state.SetLabel(input.source + ", no certificate cache");
}

void BM_SignatureFloor(benchmark::State& state) {
  static const auto* checks = new std::vector<SignatureCheck>(ExtractFloor(GetInput()));
  for (auto _ : state) {
    for (const SignatureCheck& c : *checks) {
      bool ok = c.der ? c.key.VerifyDer(c.message, c.signature).has_value()
                      : c.key.Verify(c.message, c.signature).has_value();
      ENCLAVIA_CHECK(ok);
    }
  }
  state.SetLabel(std::to_string(checks->size()) + " P-384 verifications");
}

BENCHMARK(BM_VerifyDocument)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_VerifyDocumentUncached)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SignatureFloor)->Unit(benchmark::kMicrosecond);

// RatioReporter prints as usual and remembers each benchmark's time (the median when
// repetitions are on).
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      std::string name = run.run_name.function_name;
      if (run.run_type == Run::RT_Aggregate) {
        if (run.aggregate_name == "median") {
          times_[name] = run.GetAdjustedRealTime();
          have_median_[name] = true;
        }
      } else if (!have_median_[name]) {
        times_[name] = run.GetAdjustedRealTime();
      }
    }
  }
  std::map<std::string, double> times_;
  std::map<std::string, bool> have_median_;
};

}  // namespace
}  // namespace enclavia

int main(int argc, char** argv) {
  ENCLAVIA_CHECK(enclavia::crypto::Init().has_value());
  benchmark::Initialize(&argc, argv);
  enclavia::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto floor = reporter.times_.find("BM_SignatureFloor");
  for (const char* name : {"BM_VerifyDocument", "BM_VerifyDocumentUncached"}) {
    auto verify = reporter.times_.find(name);
    if (verify != reporter.times_.end() && floor != reporter.times_.end() && floor->second > 0) {
      std::printf("ratio %s / BM_SignatureFloor = %.3f (goal <= 1.20)\n", name,
                  verify->second / floor->second);
    }
  }
  benchmark::Shutdown();
  return 0;
}
