// SPDX-License-Identifier: Apache-2.0
#include "host/upgrade/service.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <utility>

#include "lib/net/pipe.h"
#include "lib/net/socket.h"

namespace enclavia::host {
namespace {

using sys::UniqueFd;

upgrade::Message ErrorMessage(const Error& error) {
  upgrade::Message m;
  m.type = upgrade::MessageType::kError;
  m.code = static_cast<uint32_t>(error.code());
  m.message = error.message();
  return m;
}

}  // namespace

UpgradeHostService::UpgradeHostService(UniqueFd listener, UniqueFd wake, Handlers handlers)
    : listener_(std::move(listener)), wake_(std::move(wake)), handlers_(std::move(handlers)) {}

Result<std::unique_ptr<UpgradeHostService>> UpgradeHostService::Start(const net::Address& listen,
                                                                      Handlers handlers) {
  ASSIGN_OR_RETURN(UniqueFd fd, net::ListenOn(listen));
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) {
    return sys::IoError("eventfd", errno);
  }
  std::unique_ptr<UpgradeHostService> service(
      new UpgradeHostService(std::move(fd), std::move(wake), std::move(handlers)));
  service->accept_thread_ = std::thread([raw = service.get()] { raw->AcceptLoop(); });
  return service;
}

UpgradeHostService::~UpgradeHostService() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  if (accept_thread_.joinable()) {
    accept_thread_.join();
  }
  std::list<Connection> connections;
  {
    std::lock_guard lock(mu_);
    for (int fd : open_fds_) {
      ::shutdown(fd, SHUT_RDWR);  // A connection blocked reading its request ends now.
    }
    connections.swap(connections_);
  }
  for (Connection& c : connections) {
    c.thread.join();
  }
}

void UpgradeHostService::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{.fd = listener_.get(), .events = POLLIN, .revents = 0},
                     {.fd = wake_.get(), .events = POLLIN, .revents = 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 || (fds[1].revents & POLLIN) != 0) {
      return;
    }
    UniqueFd in(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!in.valid()) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        ::usleep(100000);  // Out of descriptors: back off rather than spin.
      }
      continue;
    }
    if (active_.load() >= kMaxConnections) {
      continue;  // Closed at once.
    }
    active_.fetch_add(1);
    std::lock_guard lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
    open_fds_.insert(in.get());
    auto done = std::make_shared<std::atomic<bool>>(false);
    connections_.push_back(Connection{std::thread([this, done, fd = in.Release()] {
                                        Serve(UniqueFd(fd));
                                        done->store(true);
                                      }),
                                      done});
  }
}

namespace {

// ConnectWhileBooting connects to the successor's ingress, which the provider launched a moment
// ago and which listens only once its init has started it: refused connections are retried for
// up to kSuccessorBootTimeout.
Result<UniqueFd> ConnectWhileBooting(const net::Address& target) {
  auto deadline = std::chrono::steady_clock::now() + UpgradeHostService::kSuccessorBootTimeout;
  while (true) {
    auto out = net::Connect(target);
    if (out || std::chrono::steady_clock::now() >= deadline) {
      return out;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

void UpgradeHostService::Serve(UniqueFd fd) {
  int raw = fd.get();
  auto request = upgrade::ReadMessage(raw, kRequestTimeout);
  if (request) {
    requests_.fetch_add(1);
    if (request->type == upgrade::MessageType::kChain && handlers_.chain) {
      upgrade::HostChain chain = handlers_.chain();
      upgrade::Message answer;
      answer.type = upgrade::MessageType::kChain;
      answer.chain = std::move(chain.chain);
      answer.staged = std::move(chain.staged);
      answer.pending = std::move(chain.pending);
      (void)upgrade::WriteMessage(raw, answer);
    } else if (request->type == upgrade::MessageType::kSuccessor) {
      std::optional<net::Address> target =
          handlers_.successor ? handlers_.successor() : std::nullopt;
      if (!target) {
        (void)upgrade::WriteMessage(
            raw, ErrorMessage(Error(Code::kFailedPrecondition, "no activation is running")));
      } else if (auto out = ConnectWhileBooting(*target); !out) {
        (void)upgrade::WriteMessage(
            raw, ErrorMessage(Error(Code::kUnavailable, "the successor does not answer")));
      } else {
        upgrade::Message ok;
        ok.type = upgrade::MessageType::kOk;
        if (upgrade::WriteMessage(raw, ok)) {
          {
            std::lock_guard lock(mu_);
            open_fds_.insert(out->get());
          }
          Pipe(raw, out->get());
          std::lock_guard lock(mu_);
          open_fds_.erase(out->get());
        }
      }
    } else {
      (void)upgrade::WriteMessage(
          raw, ErrorMessage(Error(Code::kInvalidArgument,
                                  "the host's upgrade service answers chain and successor")));
    }
  }
  {
    std::lock_guard lock(mu_);
    open_fds_.erase(raw);
  }
  fd = UniqueFd();
  active_.fetch_sub(1);
}

void UpgradeHostService::Pipe(int a, int b) { net::PipeBoth(a, b, wake_.get(), piped_bytes_); }

}  // namespace enclavia::host
