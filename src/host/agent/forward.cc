// SPDX-License-Identifier: Apache-2.0
#include "host/agent/forward.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "lib/net/pipe.h"
#include "lib/net/socket.h"

namespace enclavia::host {
namespace {

using sys::UniqueFd;

constexpr int kMaxActive = 16;

}  // namespace

PortForward::PortForward(UniqueFd listener, UniqueFd wake, Target target)
    : listener_(std::move(listener)), wake_(std::move(wake)), target_(std::move(target)) {}

Result<std::unique_ptr<PortForward>> PortForward::Start(const net::Address& listen,
                                                        Target target) {
  ASSIGN_OR_RETURN(UniqueFd fd, net::ListenOn(listen));
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) {
    return sys::IoError("eventfd", errno);
  }
  std::unique_ptr<PortForward> forward(
      new PortForward(std::move(fd), std::move(wake), std::move(target)));
  forward->accept_thread_ = std::thread([raw = forward.get()] { raw->AcceptLoop(); });
  return forward;
}

PortForward::~PortForward() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  if (accept_thread_.joinable()) {
    accept_thread_.join();
  }
  std::list<PipeThread> pipes;
  {
    std::lock_guard lock(mu_);
    pipes.swap(pipes_);
  }
  for (PipeThread& p : pipes) {
    p.thread.join();
  }
}

void PortForward::AcceptLoop() {
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
    if (active_.load() >= kMaxActive) {
      continue;  // Closed at once.
    }
    std::optional<net::Address> target = target_ ? target_() : std::nullopt;
    if (!target) {
      continue;
    }
    auto out = net::Connect(*target);
    if (!out) {
      continue;
    }
    connections_.fetch_add(1);
    active_.fetch_add(1);
    std::lock_guard lock(mu_);
    for (auto it = pipes_.begin(); it != pipes_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = pipes_.erase(it);
      } else {
        ++it;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    pipes_.push_back(PipeThread{
        std::thread([this, done, a = in.Release(), b = out->Release()] {
          Pipe(a, b);
          done->store(true);
        }),
        done});
  }
}

void PortForward::Pipe(int a, int b) {
  UniqueFd fa(a);
  UniqueFd fb(b);
  net::PipeBoth(a, b, wake_.get(), bytes_);
  active_.fetch_sub(1);
}

}  // namespace enclavia::host
