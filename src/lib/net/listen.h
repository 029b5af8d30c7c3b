// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_NET_LISTEN_H_
#define ENCLAVIA_LIB_NET_LISTEN_H_

#include <string>
#include <string_view>

#include <boost/asio/socket_base.hpp>
#include <boost/system/error_code.hpp>

#include "lib/base/result.h"

// Listen is the one open → SO_REUSEADDR → bind → listen sequence the daemons' acceptors share
// (header-only: Asio acceptors are templates; callers link enclavia::asio).
namespace enclavia::net {

enum class ReuseAddress { kNo, kYes };

// Listen starts `acceptor` on `endpoint`. On failure it is kIo, one line naming the step and
// `name` (e.g. "cannot bind tcp:127.0.0.1:80: Permission denied").
template <typename Acceptor>
Result<void> Listen(Acceptor& acceptor, const typename Acceptor::endpoint_type& endpoint,
                    ReuseAddress reuse, std::string_view name) {
  boost::system::error_code ec;
  auto fail = [&](std::string_view step) {
    return Error(Code::kIo, "cannot " + std::string(step) + " " + std::string(name) + ": " +
                                ec.message());
  };
  acceptor.open(endpoint.protocol(), ec);
  if (ec) {
    return fail("open a socket for");
  }
  if (reuse == ReuseAddress::kYes) {
    acceptor.set_option(boost::asio::socket_base::reuse_address(true), ec);
    if (ec) {
      return fail("set SO_REUSEADDR on");
    }
  }
  acceptor.bind(endpoint, ec);
  if (ec) {
    return fail("bind");
  }
  acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail("listen on");
  }
  return Ok();
}

}  // namespace enclavia::net

#endif  // ENCLAVIA_LIB_NET_LISTEN_H_
