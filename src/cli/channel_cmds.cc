// SPDX-License-Identifier: Apache-2.0
#include "cli/channel_cmds.h"

#include <unistd.h>

#include <csignal>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <nlohmann/json.hpp>

#include "client/channel.h"
#include "client/proxy.h"
#include "client/trust.h"
#include "lib/base/encoding.h"
#include "lib/sys/fd.h"

namespace enclavia::cli {

namespace {

client::ConnectOptions MakeConnectOptions(const TlsFlags& tls) {
  client::ConnectOptions options;
  options.dial.ca_file = tls.ca_file;
  options.dial.insecure_tls = tls.insecure;
  return options;
}

std::string Timestamp() {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json AttestationJson(const attestation::VerifiedAttestation& verified) {
  const auto& doc = verified.document();
  nlohmann::json pcrs = nlohmann::json::object();
  for (const auto& [index, value] : doc.pcrs) {
    bool zero = std::all_of(value.begin(), value.end(), [](uint8_t b) { return b == 0; });
    if (!zero || index <= 2 || index == 8) {
      pcrs["PCR" + std::to_string(index)] = HexEncode(value);
    }
  }
  return nlohmann::json{
      {"module_id", doc.module_id},
      {"timestamp", FormatRfc3339(SystemTime(std::chrono::milliseconds(doc.timestamp_ms)))},
      {"debug", verified.debug()},
      {"root_sha256", HexEncode(verified.root_fingerprint())},
      {"public_key", doc.public_key ? HexEncode(*doc.public_key) : ""},
      {"nonce", doc.nonce ? HexEncode(*doc.nonce) : ""},
      {"pcrs", pcrs},
  };
}

}  // namespace

int RunProxy(const ProxyFlags& flags, std::ostream& out, std::ostream& err) {
  auto listen = net::ParseAddress(flags.listen);
  if (!listen) {
    err << "enclavia proxy: --listen: " << listen.error().message() << "\n";
    return 2;
  }
  auto policy = client::LoadTrustPolicy(flags.trust);
  if (!policy) {
    err << "enclavia proxy: " << policy.error().message() << "\n";
    return 1;
  }
  boost::asio::io_context io;
  std::mutex log_mu;
  client::ProxyOptions options;
  options.listen = *listen;
  options.url = flags.enclave;
  options.policy = std::make_shared<const channel::TrustPolicy>(std::move(*policy));
  options.port = flags.port;
  options.connect = MakeConnectOptions(flags.tls);
  options.log = [&](std::string_view line) {
    std::lock_guard lock(log_mu);
    err << Timestamp() << " enclavia proxy: " << line << std::endl;
  };
  int exit_code = 0;
  auto proxy = client::Proxy::Start(io, options, [&](Result<net::Address> ready) {
    if (!ready) {
      std::lock_guard lock(log_mu);
      err << "enclavia proxy: not starting: " << ready.error().message() << std::endl;
      exit_code = 1;
      io.stop();
      return;
    }
    std::lock_guard lock(log_mu);
    out << "enclavia proxy: listening on " << ready->ToString() << " → " << flags.enclave
        << " port " << flags.port << std::endl;
  });
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) {
      proxy->Stop();
      io.stop();
    }
  });
  io.run();
  return exit_code;
}

int RunConnect(const ConnectFlags& flags, std::ostream& out, std::ostream& err) {
  auto policy = client::LoadTrustPolicy(flags.trust);
  if (!policy) {
    err << "enclavia connect: " << policy.error().message() << "\n";
    return 1;
  }
  auto channel = client::Channel::Connect(flags.enclave, std::move(*policy),
                                          MakeConnectOptions(flags.tls));
  if (!channel) {
    err << "enclavia connect: " << channel.error().message() << "\n";
    return 1;
  }
  if (flags.attestation_only) {
    out << AttestationJson((*channel)->attestation()).dump(2) << "\n";
    return 0;
  }
  if (flags.print_attestation) {
    err << AttestationJson((*channel)->attestation()).dump(2) << "\n";
  }
  auto stream = (*channel)->OpenStream(flags.port);
  if (!stream) {
    err << "enclavia connect: " << stream.error().message() << "\n";
    return 1;
  }
  client::Stream* s = stream->get();
  // stdin → stream on its own thread; at end of input the enclave's app sees EOF.
  std::thread writer([s] {
    std::array<uint8_t, 64 * 1024> buffer;
    for (;;) {
      auto n = sys::ReadSome(STDIN_FILENO, buffer);
      if (!n || *n == 0) {
        break;
      }
      if (!s->Write(ByteSpan(buffer.data(), *n))) {
        return;
      }
    }
    (void)s->CloseWrite();
  });
  writer.detach();  // A blocked stdin read must not keep us alive after the stream ends.
  std::array<uint8_t, 64 * 1024> buffer;
  for (;;) {
    auto n = s->Read(buffer);
    if (!n) {
      err << "enclavia connect: " << n.error().message() << "\n";
      std::_Exit(1);
    }
    if (*n == 0) {
      break;
    }
    if (!sys::WriteFull(STDOUT_FILENO, ByteSpan(buffer.data(), *n))) {
      std::_Exit(1);
    }
  }
  std::cout.flush();
  std::_Exit(0);  // The writer thread may still be blocked on stdin.
}

int RunVerify(const VerifyFlags& flags, std::ostream& out, std::ostream& err) {
  auto policy = client::LoadTrustPolicy(flags.trust);
  if (!policy) {
    err << "enclavia verify: " << policy.error().message() << "\n";
    return 1;
  }
  auto channel = client::Channel::Connect(flags.enclave, std::move(*policy),
                                          MakeConnectOptions(flags.tls));
  if (!channel) {
    err << "enclavia verify: " << flags.enclave << ": " << channel.error().message() << "\n";
    return 1;
  }
  nlohmann::json verified = AttestationJson((*channel)->attestation());
  if (flags.json) {
    out << verified.dump(2) << "\n";
    return 0;
  }
  out << "enclavia verify: " << flags.enclave << " is an enclave your trust file accepts\n"
      << "  chain:      ends at the trusted root with SHA-256 "
      << verified["root_sha256"].get<std::string>() << "\n"
      << "  module:     " << verified["module_id"].get<std::string>() << "\n"
      << "  signed at:  " << verified["timestamp"].get<std::string>() << "\n"
      << "  debug mode: " << (verified["debug"].get<bool>() ? "yes (allowed by allow_debug)" : "no")
      << "\n"
      << "  channel key " << verified["public_key"].get<std::string>()
      << " (the Noise static key it proved it holds)\n";
  for (const auto& [name, value] : verified["pcrs"].items()) {
    out << "  " << std::left << std::setw(11) << (name + ":") << value.get<std::string>() << "\n";
  }
  return 0;
}

}  // namespace enclavia::cli
