// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_NET_ACCEPT_RETRY_H_
#define ENCLAVIA_LIB_NET_ACCEPT_RETRY_H_

#include <chrono>
#include <utility>

#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

// What every acceptor of the project (relay, ingress, attestation service, proxy, HTTP server)
// does when accept fails — out of descriptors, say: wait a little on its own timer and accept
// again, rather than spin on the same error or stop serving.
namespace enclavia::net {

inline constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

// RetryAcceptSoon calls `again()` after kAcceptRetryDelay on `timer`, unless the wait is
// cancelled or `stopped()` is then true. `timer` must outlive the wait (it is the acceptor
// owner's); the callables are copied into the handler.
template <typename Stopped, typename Again>
void RetryAcceptSoon(boost::asio::steady_timer& timer, Stopped stopped, Again again) {
  timer.expires_after(kAcceptRetryDelay);
  timer.async_wait([stopped = std::move(stopped), again = std::move(again)](
                       const boost::system::error_code& ec) {
    if (!ec && !stopped()) {
      again();
    }
  });
}

}  // namespace enclavia::net

#endif  // ENCLAVIA_LIB_NET_ACCEPT_RETRY_H_
