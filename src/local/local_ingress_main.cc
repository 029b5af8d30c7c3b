// SPDX-License-Identifier: Apache-2.0
// enclavia-local-ingress: the enclave's channel terminator (src/enclave/ingress) run as a plain
// process, with the NSM simulator (src/host/nsm) standing in for /dev/nsm. For tests and local
// development only: in a deployment the ingress runs inside the enclave (sandbox or Nitro) and
// the simulator, or the real NSM, stays outside it.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "enclave/ingress/ingress.h"
#include "host/nsm/simulator.h"
#include "lib/base/encoding.h"
#include "lib/crypto/random.h"
#include "lib/eif/reader.h"
#include "local/misbehaving_nsm.h"
#include "lib/sys/process.h"

namespace {

using namespace enclavia;  // NOLINT(google-build-using-namespace): a main.

int Die(const std::string& message) {
  std::cerr << "enclavia-local-ingress: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  enclavia::sys::TuneAllocatorForStreaming();
  CLI::App app{"Run the enclave's channel ingress with the NSM simulator (tests, development)"};
  std::string listen, state_dir, eif, misbehave = "none";
  std::vector<uint16_t> ports;
  std::vector<std::string> pcrs;
  bool debug = false;
  int threads = 1;
  int64_t clock_offset_s = 0;
  int64_t refresh_s = 300;
  app.add_option("--listen", listen, "Where the relay connects: unix:PATH, tcp:IP:PORT")
      ->required();
  app.add_option("--port", ports, "Application port streams may open (repeatable)")->required();
  app.add_option("--simulator-state", state_dir, "NSM simulator state (root CA)")->required();
  app.add_option("--eif", eif, "Boot PCRs 0/1/2/8 from this image");
  app.add_option("--pcr", pcrs, "Set PCR N to HEX at boot (N=HEX)");
  app.add_flag("--debug-mode", debug, "Simulate a debug-mode enclave (PCR0/1/2/8 zero)");
  app.add_option("--threads", threads, "I/O threads")->check(CLI::Range(1, 64));
  app.add_option("--refresh", refresh_s, "Replace the cached document after SECONDS")
      ->check(CLI::Range(1, 86400));
  app.add_option("--clock-offset", clock_offset_s,
                 "Testing: the simulator's clock runs SECONDS ahead (negative: behind)");
  app.add_option("--misbehave", misbehave,
                 "Testing: none | wrong-public-key | replay-fresh (a dishonest enclave)")
      ->check(CLI::IsMember({"none", "wrong-public-key", "replay-fresh"}));
  CLI11_PARSE(app, argc, argv);

  if (auto init = crypto::Init(); !init) {
    return Die(init.error().message());
  }
  auto address = net::ParseAddress(listen);
  if (!address) {
    return Die(address.error().message());
  }
  host::Clock clock = [clock_offset_s] {
    return SystemTime(std::chrono::system_clock::now() + std::chrono::seconds(clock_offset_s));
  };
  auto ca = host::SimulatorCa::LoadOrCreate(state_dir, clock);
  if (!ca) {
    return Die(ca.error().message());
  }
  host::SimulatorOptions sim;
  sim.clock = clock;
  sim.debug = debug;
  if (!eif.empty()) {
    auto info = eif::ReadEif(eif);
    if (!info) {
      return Die(info.error().message());
    }
    sim.boot_pcrs[0] = info->measurements.pcr0;
    sim.boot_pcrs[1] = info->measurements.pcr1;
    sim.boot_pcrs[2] = info->measurements.pcr2;
    if (info->measurements.pcr8) {
      sim.boot_pcrs[8] = *info->measurements.pcr8;
    }
  }
  for (const std::string& spec : pcrs) {
    size_t eq = spec.find('=');
    auto value = eq == std::string::npos ? Result<Bytes>(Error(Code::kMalformed, "no '='"))
                                         : HexDecode(spec.substr(eq + 1));
    int index = eq == std::string::npos ? -1 : std::atoi(spec.substr(0, eq).c_str());
    if (!value || value->size() != 48 || index < 0 || index > 31) {
      return Die("--pcr " + spec + ": want N=<96 hex digits>, N < 32");
    }
    sim.boot_pcrs[static_cast<uint16_t>(index)] = *value;
  }
  auto simulator = host::NsmSimulator::Create(
      std::make_shared<const host::SimulatorCa>(std::move(*ca)), std::move(sim));
  if (!simulator) {
    return Die(simulator.error().message());
  }
  local::Misbehaviour mode = misbehave == "wrong-public-key" ? local::Misbehaviour::kWrongPublicKey
                             : misbehave == "replay-fresh"   ? local::Misbehaviour::kReplayFresh
                                                             : local::Misbehaviour::kNone;
  auto nsm = std::make_shared<local::MisbehavingNsm>(std::move(*simulator), mode);

  crypto::X25519Keypair static_key = crypto::X25519Keypair::Generate();
  channel::AttestationSource::Options source_options;
  source_options.refresh_after = std::chrono::seconds(refresh_s);
  source_options.clock = clock;
  auto source = std::make_shared<channel::AttestationSource>(nsm, static_key.public_key,
                                                             source_options);
  // Prime the cache so a broken simulator setup fails here, not in the first handshake.
  if (auto doc = source->Cached(); !doc) {
    return Die(doc.error().message());
  }

  boost::asio::io_context io;
  enclave::IngressOptions options;
  options.listen = *address;
  options.allowed_ports.insert(ports.begin(), ports.end());
  options.log = [](std::string_view line) {
    std::fprintf(stderr, "enclavia-local-ingress: %.*s\n", static_cast<int>(line.size()),
                 line.data());
  };
  std::string key_hex = HexEncode(static_key.public_key);
  auto ingress = enclave::Ingress::Create(io, options, std::move(static_key), source);
  if (!ingress) {
    return Die(ingress.error().message());
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    (*ingress)->Stop();
    io.stop();
  });
  std::printf("enclavia-local-ingress: listening on %s (static key %s)\n",
              (*ingress)->local_address().ToString().c_str(), key_hex.c_str());
  std::fflush(stdout);
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) {
    pool.emplace_back([&io] { io.run(); });
  }
  io.run();
  for (auto& t : pool) {
    t.join();
  }
  auto stats = (*ingress)->stats();
  std::fprintf(stderr,
               "enclavia-local-ingress: channels %llu accepted, %llu handshakes failed, %llu "
               "dropped; streams %llu opened, %llu refused\n",
               static_cast<unsigned long long>(stats.channels_accepted),
               static_cast<unsigned long long>(stats.handshakes_failed),
               static_cast<unsigned long long>(stats.channels_dropped),
               static_cast<unsigned long long>(stats.streams_opened),
               static_cast<unsigned long long>(stats.streams_refused));
  return 0;
}
