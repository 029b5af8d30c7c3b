// SPDX-License-Identifier: Apache-2.0
#include "lib/storage/remote_store.h"

#include <errno.h>
#include <string.h>

#include <algorithm>
#include <utility>

#include <sys/socket.h>
#include <sys/time.h>

namespace enclavia::storage {

namespace {

bool ValidPrefix(std::string_view p) {
  return p.size() <= kMaxObjectNameSize && std::all_of(p.begin(), p.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-' || c == '/';
         });
}

Error HostError(std::string_view what) {
  return Error(Code::kMalformed, "storage host: " + std::string(what));
}

}  // namespace

RemoteObjectStore::RemoteObjectStore(net::Address address, RemoteStoreOptions options)
    : address_(std::move(address)), options_(options) {}

Result<void> RemoteObjectStore::Connect() {
  const std::string where = "storage service at " + address_.ToString();
  ASSIGN_OR_RETURN(net::SocketAddress sa, net::Resolve(address_));
  sys::UniqueFd fd(socket(sa.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return Error(Code::kUnavailable,
                 "cannot create a socket for the " + where + ": " + strerror(errno));
  }
  auto ms = options_.io_timeout.count();
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
      setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    return Error(Code::kUnavailable,
                 "cannot set timeouts for the " + where + ": " + strerror(errno));
  }
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa.storage), sa.size) != 0) {
    return Error(Code::kUnavailable, "cannot connect to the " + where + ": " + strerror(errno));
  }
  fd_ = std::move(fd);
  return Ok();
}

Result<wire::Response> RemoteObjectStore::CallOnce(wire::Type type, const Bytes& body,
                                                   bool* retry) {
  *retry = false;
  if (!fd_.valid()) {
    RETURN_IF_ERROR(Connect());
  }
  auto sent = wire::WriteFrame(fd_.get(), body);
  if (!sent) {
    fd_ = sys::UniqueFd();
    *retry = true;
    return std::move(sent).error();
  }
  auto frame = wire::ReadFrame(fd_.get());
  if (!frame) {
    fd_ = sys::UniqueFd();
    // A broken connection is worth one more try; an oversized frame is a hostile host.
    *retry = frame.error().code() == Code::kUnavailable;
    return std::move(frame).error().WithContext("storage host");
  }
  auto response = wire::DecodeResponse(*frame);
  if (!response) {
    fd_ = sys::UniqueFd();  // The stream cannot be trusted to be in step any more.
    return std::move(response).error().WithContext("storage host");
  }
  if (response->type != type) {
    fd_ = sys::UniqueFd();
    return HostError("answered a " + std::string(wire::TypeName(type)) + " request with a " +
                     std::string(wire::TypeName(response->type)) + " response");
  }
  if (response->error) {
    return response->error->WithContext("storage host");
  }
  return std::move(response).value();
}

Result<wire::Response> RemoteObjectStore::Call(wire::Type type, const Bytes& body) {
  std::lock_guard lock(mu_);
  bool retry = false;
  auto first = CallOnce(type, body, &retry);
  if (first || !retry) {
    return first;
  }
  return CallOnce(type, body, &retry);
}

Result<void> RemoteObjectStore::Put(const std::string& name, ByteSpan data) {
  ASSIGN_OR_RETURN(Bytes body, wire::EncodePutRequest(name, data));
  RETURN_IF_ERROR(Call(wire::Type::kPut, body));
  return Ok();
}

Result<Bytes> RemoteObjectStore::Get(const std::string& name) {
  wire::Request req;
  req.type = wire::Type::kGet;
  req.name = name;
  ASSIGN_OR_RETURN(Bytes body, wire::EncodeRequest(req));
  ASSIGN_OR_RETURN(wire::Response resp, Call(req.type, body));
  return std::move(resp.data);
}

Result<Bytes> RemoteObjectStore::GetRange(const std::string& name, uint64_t offset,
                                          uint64_t length) {
  wire::Request req;
  req.type = wire::Type::kGetRange;
  req.name = name;
  req.offset = offset;
  req.length = length;
  ASSIGN_OR_RETURN(Bytes body, wire::EncodeRequest(req));
  ASSIGN_OR_RETURN(wire::Response resp, Call(req.type, body));
  if (resp.data.size() != length) {
    return HostError("returned " + std::to_string(resp.data.size()) + " bytes for a range of " +
                     std::to_string(length));
  }
  return std::move(resp.data);
}

Result<void> RemoteObjectStore::Delete(const std::string& name) {
  wire::Request req;
  req.type = wire::Type::kDelete;
  req.name = name;
  ASSIGN_OR_RETURN(Bytes body, wire::EncodeRequest(req));
  RETURN_IF_ERROR(Call(req.type, body));
  return Ok();
}

Result<std::vector<std::string>> RemoteObjectStore::List(const std::string& prefix) {
  if (!ValidPrefix(prefix)) {
    return std::vector<std::string>{};
  }
  wire::Request req;
  req.type = wire::Type::kList;
  req.name = prefix;
  ASSIGN_OR_RETURN(Bytes body, wire::EncodeRequest(req));
  ASSIGN_OR_RETURN(wire::Response resp, Call(req.type, body));
  // The decoder checked the names are valid and strictly sorted; the prefix is ours to check.
  for (const std::string& name : resp.names) {
    if (name.compare(0, prefix.size(), prefix) != 0) {
      return HostError("listed " + name + ", which does not start with " + prefix);
    }
  }
  return std::move(resp.names);
}

Result<std::optional<wire::Attachment>> RemoteObjectStore::Hello() {
  wire::Request req;
  req.type = wire::Type::kHello;
  req.version = wire::kProtocolVersion;
  ASSIGN_OR_RETURN(Bytes body, wire::EncodeRequest(req));
  ASSIGN_OR_RETURN(wire::Response resp, Call(req.type, body));
  if (resp.version != wire::kProtocolVersion) {
    return Error(Code::kUnsupported, "storage host speaks protocol version " +
                                         std::to_string(resp.version) + ", we speak " +
                                         std::to_string(wire::kProtocolVersion));
  }
  return std::move(resp.attachment);
}

Result<void> RemoteObjectStore::Report(std::string_view status) {
  wire::Request req;
  req.type = wire::Type::kReport;
  for (char c : status.substr(0, wire::kMaxReportSize)) {
    req.status.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  ASSIGN_OR_RETURN(Bytes body, wire::EncodeRequest(req));
  RETURN_IF_ERROR(Call(req.type, body));
  return Ok();
}

}  // namespace enclavia::storage
