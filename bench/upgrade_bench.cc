// SPDX-License-Identifier: Apache-2.0
// What following an upgrade chain costs a client, against the floor in the same run: verifying
// the one attestation document every handshake already verifies. VerifyChain checks the genesis,
// each request's control signature, and each step's receipt document (its certificate path and
// COSE signature at its own time) and receipt signatures; a chain of N steps should cost about N
// documents. Prints the ratio of medians per chain length.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "lib/upgrade/chain.h"
#include "testing/upgrade_chain.h"

namespace enclavia {
namespace {

using upgrade::testing::ChainBuilder;

// Chains of 0..10 steps from one builder (a simulator CA in a temporary directory).
struct Chains {
  std::unique_ptr<ChainBuilder> builder;
  std::map<int, std::vector<Bytes>> by_steps;
  Bytes document;  // A head document, as a handshake presents it.
};

const Chains& GetChains() {
  static const Chains* chains = [] {
    auto* c = new Chains;
    c->builder = ChainBuilder::Create("/tmp/enclavia-bench-upgrade").value();
    c->by_steps[0] = c->builder->chain();
    for (int i = 1; i <= 10; ++i) {
      upgrade::testing::StepSpec spec;
      spec.new_pcrs = upgrade::testing::Pcrs(static_cast<uint8_t>(i + 1));
      spec.id = std::string("v").append(std::to_string(i + 1));
      c->builder->Step(spec).value();
      c->by_steps[i] = c->builder->chain();
    }
    Bytes head(c->builder->head().begin(), c->builder->head().end());
    c->document = c->builder->Document(c->builder->pcrs(), Bytes(32, 7), head).value();
    return c;
  }();
  return *chains;
}

void BM_VerifyOneDocument(benchmark::State& state) {
  const Chains& c = GetChains();
  attestation::TrustPolicy policy;
  for (auto _ : state) {
    auto verified = c.builder->verifier()->Verify(c.document, std::chrono::system_clock::now(),
                                                  policy);
    benchmark::DoNotOptimize(verified);
    if (!verified) {
      state.SkipWithError(verified.error().message().c_str());
    }
  }
}
BENCHMARK(BM_VerifyOneDocument)->Unit(benchmark::kMicrosecond);

void BM_VerifyChain(benchmark::State& state) {
  const Chains& c = GetChains();
  const auto& chain = c.by_steps.at(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto verified = upgrade::VerifyChain(chain, c.builder->chain_options());
    benchmark::DoNotOptimize(verified);
    if (!verified) {
      state.SkipWithError(verified.error().message().c_str());
    }
  }
  state.counters["steps"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_VerifyChain)->Arg(0)->Arg(1)->Arg(3)->Arg(10)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace enclavia

BENCHMARK_MAIN();
