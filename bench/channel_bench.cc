// SPDX-License-Identifier: Apache-2.0
// The enclave's cost per attested handshake, against the floor the issue names (its X25519 and
// AEAD work), in one run:
//   BM_EnclaveHandshake/cached   the responder side of channel::ServerHandshake, with the
//                                cached document (CBOR payloads, Noise XX, Split). The client
//                                side runs untimed, as a plain Noise initiator.
//   BM_EnclaveHandshake/fresh    the same with a fresh document per handshake (NSM simulator
//                                signing included: what `fresh = true` costs the enclave).
//   BM_Floor                     one fixed-base and three variable-base X25519 plus
//                                ChaCha20-Poly1305 over the same bytes: nothing can do less.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "host/nsm/simulator.h"
#include "lib/channel/handshake.h"
#include "lib/channel/protocol.h"
#include "lib/crypto/random.h"
#include "lib/noise/noise.h"

namespace enclavia {
namespace {

struct Enclave {
  crypto::X25519Keypair key = crypto::X25519Keypair::Generate();
  std::shared_ptr<channel::AttestationSource> source;
  size_t document_size = 0;
};

Enclave& TheEnclave() {
  static Enclave* enclave = [] {
    auto* e = new Enclave;
    std::string dir = (std::filesystem::temp_directory_path() / "enclavia-channel-bench").string();
    std::filesystem::remove_all(dir);
    auto ca = host::SimulatorCa::LoadOrCreate(dir, nullptr);
    ENCLAVIA_CHECK(ca.has_value());
    host::SimulatorOptions options;
    options.boot_pcrs = {{0, Bytes(48, 1)}, {1, Bytes(48, 2)}, {2, Bytes(48, 3)}};
    auto sim = host::NsmSimulator::Create(
        std::make_shared<const host::SimulatorCa>(std::move(ca).value()), options);
    ENCLAVIA_CHECK(sim.has_value());
    e->source = std::make_shared<channel::AttestationSource>(
        std::shared_ptr<attestation::Nsm>(std::move(sim).value()), e->key.public_key);
    auto doc = e->source->Cached();
    ENCLAVIA_CHECK(doc.has_value());
    e->document_size = doc->size();
    return e;
  }();
  return *enclave;
}

void BM_EnclaveHandshake(benchmark::State& state) {
  Enclave& enclave = TheEnclave();
  const bool fresh = state.range(0) == 1;
  // Only the enclave's two steps are timed, with the steady clock (PauseTiming reads the
  // process CPU clock, a system call that would cost more than what is measured here).
  using Clock = std::chrono::steady_clock;
  for (auto _ : state) {
    crypto::X25519Keypair client_static = crypto::X25519Keypair::Generate();
    noise::HandshakeConfig config;
    config.role = noise::Role::kInitiator;
    config.prologue = AsBytes(channel::kPrologue);
    config.local_static = &client_static;
    auto client = noise::Handshake::Create(config);
    auto m1 = client->WriteMessage(channel::EncodeClientHello({.fresh = fresh}));
    ENCLAVIA_CHECK(m1.has_value());

    auto t0 = Clock::now();
    auto server = channel::ServerHandshake::Create(enclave.key, *enclave.source);
    auto m2 = server->ReadClientHello(*m1);
    auto t1 = Clock::now();
    ENCLAVIA_CHECK(m2.has_value());

    ENCLAVIA_CHECK(client->ReadMessage(*m2).has_value());
    auto m3 = client->WriteMessage(channel::EncodeClientFinish());
    ENCLAVIA_CHECK(m3.has_value());

    auto t2 = Clock::now();
    auto channel = std::move(*server).ReadClientFinish(*m3);
    auto t3 = Clock::now();
    ENCLAVIA_CHECK(channel.has_value());
    benchmark::DoNotOptimize(channel);
    state.SetIterationTime(std::chrono::duration<double>((t1 - t0) + (t3 - t2)).count());
  }
  state.counters["handshakes/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Floor(benchmark::State& state) {
  Enclave& enclave = TheEnclave();
  crypto::X25519Keypair peer = crypto::X25519Keypair::Generate();
  crypto::Secret<32> key;
  crypto::RandomFill(key.MutableBytes());
  // Message 2 encrypts s (32) and the payload (document + a few bytes); message 3 carries s (32)
  // and a 4-byte payload. Each AEAD here stands for one of those.
  Bytes payload(enclave.document_size + 32, 7);
  for (auto _ : state) {
    auto e = crypto::X25519Keypair::Generate();
    for (int i = 0; i < 3; ++i) {
      auto dh = crypto::X25519(e.private_key, peer.public_key);
      benchmark::DoNotOptimize(dh);
    }
    noise::CipherState c(std::move(key));
    auto sealed_s = c.EncryptWithAd({}, ByteSpan(peer.public_key));
    auto sealed_payload = c.EncryptWithAd({}, payload);
    noise::CipherState d(crypto::Secret<32>{});
    auto opened = d.DecryptWithAd({}, *sealed_s);
    benchmark::DoNotOptimize(sealed_payload);
    benchmark::DoNotOptimize(opened);
    key = crypto::Secret<32>{};
  }
}

BENCHMARK(BM_EnclaveHandshake)
    ->ArgName("fresh")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Floor)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace enclavia

int main(int argc, char** argv) {
  ENCLAVIA_CHECK(enclavia::crypto::Init().has_value());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
