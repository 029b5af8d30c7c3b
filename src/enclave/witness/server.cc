// SPDX-License-Identifier: Apache-2.0
#include "enclave/witness/server.h"

#include <errno.h>

#include <cstdio>
#include <utility>

#include <netinet/in.h>
#include <sys/socket.h>

#include "lib/base/flags.h"
#include "lib/witness/link.h"
#include "lib/witness/protocol.h"

namespace enclavia::enclave {

Result<std::unique_ptr<WitnessServer>> WitnessServer::Start(witness::WitnessState& state,
                                                            WitnessServerOptions options) {
  ASSIGN_OR_RETURN(net::SocketAddress resolved, net::Resolve(options.listen));
  std::unique_ptr<WitnessServer> server(new WitnessServer(state, std::move(options)));
  const std::string name = server->options_.listen.ToString();
  sys::UniqueFd fd(::socket(resolved.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return sys::IoError("socket for " + name, errno);
  }
  int one = 1;
  if (resolved.family() != AF_UNIX &&
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return sys::IoError("SO_REUSEADDR on " + name, errno);
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&resolved.storage), resolved.size) != 0) {
    return sys::IoError("cannot bind " + name, errno);
  }
  if (::listen(fd.get(), 64) != 0) {
    return sys::IoError("cannot listen on " + name, errno);
  }
  server->local_address_ = server->options_.listen;
  if (resolved.family() == AF_INET || resolved.family() == AF_INET6) {
    sockaddr_storage bound{};
    socklen_t size = sizeof(bound);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &size) != 0) {
      return sys::IoError("getsockname", errno);
    }
    uint16_t port_be = bound.ss_family == AF_INET
                           ? reinterpret_cast<const sockaddr_in*>(&bound)->sin_port
                           : reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port;
    server->local_address_.port = ntohs(port_be);
  }
  server->listener_ = std::move(fd);
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

WitnessServer::~WitnessServer() { Stop(); }

void WitnessServer::Stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  ::shutdown(listener_.get(), SHUT_RDWR);  // Wakes accept().
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  std::unique_lock lock(mu_);
  for (int fd : connections_) {
    ::shutdown(fd, SHUT_RDWR);
  }
  idle_.wait(lock, [&] { return active_ == 0; });
}

void WitnessServer::Log(std::string_view line) const {
  if (options_.log) {
    options_.log(line);
  }
}

void WitnessServer::AcceptLoop() {
  while (!stopping_) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      if (!stopping_) {
        Log(sys::IoError("accept", errno).message());
      }
      return;
    }
    std::lock_guard lock(mu_);
    if (stopping_ || active_ >= options_.max_connections) {
      sys::UniqueFd refused(fd);
      continue;
    }
    connections_.insert(fd);
    ++active_;
    std::thread([this, fd] { Serve(fd); }).detach();
  }
}

void WitnessServer::Serve(int fd) {
  {
    witness::FdByteStream stream{sys::UniqueFd(fd)};
    witness::WitnessSession session(state_, options_.session);
    auto run = [&]() -> Result<void> {
      RETURN_IF_ERROR(witness::WriteFrame(stream, session.Start()));
      while (true) {
        auto message = witness::ReadFrame(stream);
        if (!message) {
          if (message.error().code() == Code::kLimitExceeded) {
            // Tell the client why, then hang up.
            (void)witness::WriteFrame(stream, witness::EncodeMessage(witness::Message(
                                                  witness::Refused{message.error().message()})));
          }
          return std::move(message).error();
        }
        witness::WitnessSession::Step step = session.OnMessage(*message);
        if (!step.event.empty()) {
          Log(step.event);
        }
        RETURN_IF_ERROR(witness::WriteFrame(stream, step.reply));
        if (step.close) {
          auto refused = witness::DecodeMessage(step.reply);
          if (refused) {
            if (const auto* r = std::get_if<witness::Refused>(&*refused)) {
              Log("connection refused: " + r->reason);
            }
          }
          return Ok();
        }
      }
    };
    (void)run();  // Errors end this connection only; the client sees the close.
    std::lock_guard lock(mu_);
    connections_.erase(fd);  // Before the descriptor closes, so Stop never touches a reused one.
  }
  std::lock_guard lock(mu_);
  --active_;
  idle_.notify_all();
}

Result<std::shared_ptr<const attestation::Verifier>> VerifierFromOwnNsm(attestation::Nsm& nsm) {
  ASSIGN_OR_RETURN(Bytes document, nsm.Attestation({}));
  ASSIGN_OR_RETURN(attestation::ParsedDocument parsed, attestation::ParseUnverified(document));
  if (parsed.document.cabundle.empty()) {
    return Error(Code::kMalformed, "own attestation document has an empty cabundle");
  }
  ASSIGN_OR_RETURN(crypto::Certificate root,
                   crypto::Certificate::FromDer(parsed.document.cabundle.front()));
  ASSIGN_OR_RETURN(attestation::Verifier verifier,
                   attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {root}));
  // Our own document must pass with that root: a check that the NSM is what we think it is.
  attestation::TrustPolicy self_policy;
  self_policy.allow_debug = true;
  auto self = verifier.Verify(document, SystemTime(std::chrono::system_clock::now()), self_policy);
  if (!self) {
    return Error(Code::kUntrusted,
                 "own attestation document does not verify: " + self.error().message());
  }
  return std::shared_ptr<const attestation::Verifier>(
      std::make_shared<attestation::Verifier>(std::move(verifier)));
}

Result<WitnessFlags> ParseWitnessFlags(const std::vector<std::string>& args) {
  WitnessFlags flags;
  ASSIGN_OR_RETURN(std::vector<Flag> parsed, SplitFlags(args, {"--help", "-h", "--allow-debug"}));
  for (const Flag& flag : parsed) {
    if (flag.name == "--allow-debug") {
      flags.allow_debug = true;
    } else if (flag.value.empty()) {
      flags.help = true;
    } else if (flag.name == "--listen") {
      auto address = net::ParseAddress(flag.value);
      if (!address) {
        return std::move(address).error().WithContext(flag.name);
      }
      flags.listen = address->ToString();
    } else if (flag.name == "--nsm") {
      flags.nsm_path = flag.value;
    } else {
      return UnexpectedFlag(flag);
    }
  }
  return flags;
}

}  // namespace enclavia::enclave
