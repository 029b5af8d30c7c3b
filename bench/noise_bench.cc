// SPDX-License-Identifier: Apache-2.0
// Noise_XX_25519_ChaChaPoly_BLAKE2b: a whole handshake (both sides in one thread), the responder's
// share of it alone (goal: >= 5,000 handshakes/s per core), the X25519 floor under both, and
// transport encryption + decryption of 16 KiB.
#include <cstdio>

#include <benchmark/benchmark.h>

#include "lib/crypto/random.h"
#include "lib/crypto/x25519.h"
#include "lib/noise/noise.h"

namespace enclavia::noise {
namespace {

struct Keys {
  crypto::X25519Keypair initiator = crypto::X25519Keypair::Generate();
  crypto::X25519Keypair responder = crypto::X25519Keypair::Generate();
};

HandshakeConfig Config(Role role, const crypto::X25519Keypair& local_static) {
  HandshakeConfig config;
  config.role = role;
  config.prologue = AsBytes("enclavia bench");
  config.local_static = &local_static;
  return config;
}

// BM_XXHandshake: both sides, three messages with empty payloads, and Split on both.
void BM_XXHandshake(benchmark::State& state) {
  Keys keys;
  for (auto _ : state) {
    Handshake i = Handshake::Create(Config(Role::kInitiator, keys.initiator)).value();
    Handshake r = Handshake::Create(Config(Role::kResponder, keys.responder)).value();
    ENCLAVIA_CHECK(r.ReadMessage(i.WriteMessage({}).value()).has_value());
    ENCLAVIA_CHECK(i.ReadMessage(r.WriteMessage({}).value()).has_value());
    ENCLAVIA_CHECK(r.ReadMessage(i.WriteMessage({}).value()).has_value());
    auto si = std::move(i).Split();
    auto sr = std::move(r).Split();
    ENCLAVIA_CHECK(si.has_value() && sr.has_value());
    benchmark::DoNotOptimize(si);
    benchmark::DoNotOptimize(sr);
  }
  state.counters["handshakes/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// BM_XXResponder: the same handshake with the clock stopped during the initiator's work, so the
// rate is what one core serving clients sustains (Create, read 1, write 2, read 3, Split).
void BM_XXResponder(benchmark::State& state) {
  Keys keys;
  for (auto _ : state) {
    state.PauseTiming();
    Handshake i = Handshake::Create(Config(Role::kInitiator, keys.initiator)).value();
    Bytes m1 = i.WriteMessage({}).value();
    state.ResumeTiming();
    Handshake r = Handshake::Create(Config(Role::kResponder, keys.responder)).value();
    ENCLAVIA_CHECK(r.ReadMessage(m1).has_value());
    Bytes m2 = r.WriteMessage({}).value();
    state.PauseTiming();
    ENCLAVIA_CHECK(i.ReadMessage(m2).has_value());
    Bytes m3 = i.WriteMessage({}).value();
    state.ResumeTiming();
    ENCLAVIA_CHECK(r.ReadMessage(m3).has_value());
    auto sr = std::move(r).Split();
    ENCLAVIA_CHECK(sr.has_value());
    benchmark::DoNotOptimize(sr);
  }
  state.counters["handshakes/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// BM_X25519: one variable-base scalar multiplication (a DH); the responder does three.
void BM_X25519(benchmark::State& state) {
  Keys keys;
  for (auto _ : state) {
    auto shared = crypto::X25519(keys.initiator.private_key, keys.responder.public_key);
    ENCLAVIA_CHECK(shared.has_value());
    benchmark::DoNotOptimize(shared);
  }
}

// BM_X25519Generate: an ephemeral key pair (random scalar, fixed-base multiplication).
void BM_X25519Generate(benchmark::State& state) {
  for (auto _ : state) {
    auto pair = crypto::X25519Keypair::Generate();
    benchmark::DoNotOptimize(pair);
  }
}

// BM_Transport: Encrypt on one side and Decrypt on the other of one message.
void BM_Transport(benchmark::State& state) {
  Keys keys;
  Handshake i = Handshake::Create(Config(Role::kInitiator, keys.initiator)).value();
  Handshake r = Handshake::Create(Config(Role::kResponder, keys.responder)).value();
  ENCLAVIA_CHECK(r.ReadMessage(i.WriteMessage({}).value()).has_value());
  ENCLAVIA_CHECK(i.ReadMessage(r.WriteMessage({}).value()).has_value());
  ENCLAVIA_CHECK(r.ReadMessage(i.WriteMessage({}).value()).has_value());
  TransportSession sender = std::move(i).Split().value();
  TransportSession receiver = std::move(r).Split().value();
  Bytes plaintext = crypto::RandomBytes(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    auto message = sender.Encrypt(plaintext);
    ENCLAVIA_CHECK(message.has_value());
    auto opened = receiver.Decrypt(*message);
    ENCLAVIA_CHECK(opened.has_value());
    benchmark::DoNotOptimize(opened);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

BENCHMARK(BM_XXHandshake)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_XXResponder)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_X25519)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_X25519Generate)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Transport)->Arg(16 << 10)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace enclavia::noise

int main(int argc, char** argv) {
  // crypto::Init picks libsodium's fastest X25519 and ChaCha20 code for this CPU.
  ENCLAVIA_CHECK(enclavia::crypto::Init().has_value());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
