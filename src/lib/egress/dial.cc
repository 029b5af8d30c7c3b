// SPDX-License-Identifier: Apache-2.0
#include "lib/egress/dial.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "lib/net/socket.h"

namespace enclavia::egress {
namespace {

constexpr size_t kMaxMessage = 255;

bool ValidUtf8(ByteSpan s) {
  size_t i = 0;
  while (i < s.size()) {
    uint8_t c = s[i];
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) {  // The sequence runs past the end.
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

Error Malformed(std::string what) {
  return Error(Code::kMalformed, "egress dial: " + what);
}

// Waits until `fd` is ready for `events` or the deadline passes.
Result<void> WaitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return Error(Code::kUnavailable, "egress dial: the host's dialer did not answer in time");
    }
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60'000)));
    if (r > 0) {
      return {};
    }
    if (r < 0 && errno != EINTR) {
      return sys::IoError("poll", errno);
    }
  }
}

}  // namespace

std::string_view DialStatusName(DialStatus status) {
  switch (status) {
    case DialStatus::kConnected:
      return "connected";
    case DialStatus::kRefusedByHost:
      return "refused by host";
    case DialStatus::kConnectionRefused:
      return "connection refused";
    case DialStatus::kUnreachable:
      return "unreachable";
    case DialStatus::kTimedOut:
      return "timed out";
    case DialStatus::kMalformedRequest:
      return "malformed request";
    case DialStatus::kFailed:
      return "failed";
  }
  return "unknown";
}

Bytes EncodeDialRequest(const Endpoint& to) {
  Bytes out;
  out.reserve(2 + 16 + 2);
  out.push_back(kDialVersion);
  out.push_back(static_cast<uint8_t>(to.ip.family));
  ByteSpan ip = to.ip.view();
  out.insert(out.end(), ip.begin(), ip.end());
  out.push_back(static_cast<uint8_t>(to.port >> 8));
  out.push_back(static_cast<uint8_t>(to.port & 0xFF));
  return out;
}

Bytes EncodeDialResponse(const DialResponse& response) {
  // The message is cut to 255 bytes at a character boundary (never inside a UTF-8 sequence).
  size_t n = std::min(response.message.size(), kMaxMessage);
  while (n > 0 && n < response.message.size() &&
         (static_cast<uint8_t>(response.message[n]) & 0xC0) == 0x80) {
    --n;
  }
  Bytes out;
  out.reserve(3 + n);
  out.push_back(kDialVersion);
  out.push_back(static_cast<uint8_t>(response.status));
  out.push_back(static_cast<uint8_t>(n));
  out.insert(out.end(), response.message.begin(),
             response.message.begin() + static_cast<std::ptrdiff_t>(n));
  return out;
}

Result<std::optional<Decoded<Endpoint>>> DecodeDialRequest(ByteSpan bytes) {
  if (bytes.empty()) {
    return std::optional<Decoded<Endpoint>>();
  }
  if (bytes[0] != kDialVersion) {
    return Malformed("unsupported request version " + std::to_string(bytes[0]));
  }
  if (bytes.size() < 2) {
    return std::optional<Decoded<Endpoint>>();
  }
  size_t ip_size = 0;
  if (bytes[1] == static_cast<uint8_t>(IpFamily::kV4)) {
    ip_size = 4;
  } else if (bytes[1] == static_cast<uint8_t>(IpFamily::kV6)) {
    ip_size = 16;
  } else {
    return Malformed("unknown address family " + std::to_string(bytes[1]));
  }
  size_t total = 2 + ip_size + 2;
  if (bytes.size() < total) {
    return std::optional<Decoded<Endpoint>>();
  }
  Decoded<Endpoint> decoded;
  ASSIGN_OR_RETURN(decoded.value.ip, FromBytes(bytes.subspan(2, ip_size)));
  decoded.value.port =
      static_cast<uint16_t>((static_cast<uint16_t>(bytes[2 + ip_size]) << 8) | bytes[3 + ip_size]);
  if (decoded.value.port == 0) {
    return Malformed("port 0");
  }
  decoded.used = total;
  return std::optional<Decoded<Endpoint>>(std::move(decoded));
}

Result<std::optional<Decoded<DialResponse>>> DecodeDialResponse(ByteSpan bytes) {
  if (bytes.empty()) {
    return std::optional<Decoded<DialResponse>>();
  }
  if (bytes[0] != kDialVersion) {
    return Malformed("unsupported response version " + std::to_string(bytes[0]));
  }
  if (bytes.size() < 2) {
    return std::optional<Decoded<DialResponse>>();
  }
  if (bytes[1] > static_cast<uint8_t>(DialStatus::kFailed)) {
    return Malformed("unknown status " + std::to_string(bytes[1]));
  }
  if (bytes.size() < 3) {
    return std::optional<Decoded<DialResponse>>();
  }
  size_t n = bytes[2];
  if (bytes.size() < 3 + n) {
    return std::optional<Decoded<DialResponse>>();
  }
  ByteSpan message = bytes.subspan(3, n);
  if (!ValidUtf8(message) || std::find(message.begin(), message.end(), 0) != message.end()) {
    return Malformed("the message is not UTF-8 text");
  }
  Decoded<DialResponse> decoded;
  decoded.value.status = static_cast<DialStatus>(bytes[1]);
  decoded.value.message.assign(message.begin(), message.end());
  decoded.used = 3 + n;
  return std::optional<Decoded<DialResponse>>(std::move(decoded));
}

Result<sys::UniqueFd> Dial(const net::Address& dialer, const Endpoint& to,
                           std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  ASSIGN_OR_RETURN(sys::UniqueFd fd, net::Connect(dialer));
  // MSG_NOSIGNAL: a dialer that refuses and closes at once must not raise SIGPIPE here.
  if (auto sent = sys::SendFull(fd.get(), EncodeDialRequest(to)); !sent) {
    return sent.error().WithContext("egress dial");
  }
  Bytes buffer;
  uint8_t chunk[3 + kMaxMessage];
  for (;;) {
    // Read only what the response can still need: the bytes after it belong to the connection.
    size_t want = 3;
    if (buffer.size() >= 3) {
      want = 3 + buffer[2];
    }
    RETURN_IF_ERROR(WaitFor(fd.get(), POLLIN, deadline));
    ssize_t n = recv(fd.get(), chunk, want - buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sys::IoError("egress dial: read", errno);
    }
    if (n == 0) {
      return Error(Code::kUnavailable, "egress dial: the host's dialer closed the stream");
    }
    buffer.insert(buffer.end(), chunk, chunk + n);
    ASSIGN_OR_RETURN(auto decoded, DecodeDialResponse(buffer));
    if (!decoded) {
      continue;
    }
    if (decoded->value.status != DialStatus::kConnected) {
      std::string message = "egress dial to " + FormatEndpoint(to) + ": " +
                            std::string(DialStatusName(decoded->value.status));
      if (!decoded->value.message.empty()) {
        message.append(" (").append(decoded->value.message).append(")");
      }
      return Error(Code::kUnavailable, message);
    }
    return fd;
  }
}

}  // namespace enclavia::egress
