// SPDX-License-Identifier: Apache-2.0
#include "lib/storage/wire.h"

#include <errno.h>
#include <string.h>

#include <algorithm>

#include <sys/socket.h>

#include "lib/base/reader.h"

namespace enclavia::storage::wire {

namespace {

Error Malformed(std::string_view what) {
  return Error(Code::kMalformed, "storage wire: " + std::string(what));
}

bool IsPrintable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// A prefix is what List takes: up to kMaxObjectNameSize characters a name may hold (it may be
// empty and may end with '/').
bool ValidPrefix(std::string_view p) {
  return p.size() <= kMaxObjectNameSize && std::all_of(p.begin(), p.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-' || c == '/';
         });
}

bool ValidLabel(std::string_view l) {
  return !l.empty() && l.size() <= kMaxLabelSize && std::all_of(l.begin(), l.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

// Codes a host may answer with: those an ObjectStore returns. Verification codes are the
// enclave's to decide, never the host's.
bool HostMayAnswer(Code code) {
  switch (code) {
    case Code::kInvalidArgument:
    case Code::kMalformed:
    case Code::kPolicyViolation:
    case Code::kLimitExceeded:
    case Code::kNotFound:
    case Code::kAlreadyExists:
    case Code::kUnsupported:
    case Code::kIo:
    case Code::kFailedPrecondition:
    case Code::kInternal:
    case Code::kUnavailable:
      return true;
    default:
      return false;
  }
}

std::optional<Type> ParseType(uint8_t b) {
  if (b >= static_cast<uint8_t>(Type::kHello) && b <= static_cast<uint8_t>(Type::kReport)) {
    return static_cast<Type>(b);
  }
  return std::nullopt;
}

// OneLine makes an error message printable and bounded, for the wire.
std::string OneLine(std::string_view message) {
  std::string out;
  for (char c : message.substr(0, kMaxErrorMessageSize)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

Result<std::string> ReadName(Reader& r, std::string_view what) {
  ASSIGN_OR_RETURN(ByteSpan raw, r.ReadPrefixed8());
  std::string name(AsString(raw));
  if (!ValidObjectName(name)) {
    return Malformed(std::string(what) + ": invalid object name");
  }
  return name;
}

Result<void> CheckName(std::string_view name) {
  if (!ValidObjectName(name)) {
    return Error(Code::kInvalidArgument, "storage wire: invalid object name");
  }
  return Ok();
}

Result<void> WriteAttachment(Writer& w, const Attachment& a) {
  if (!ValidLabel(a.label) || a.size_bytes == 0 || a.size_bytes % 4096 != 0 ||
      a.kms_key_id.size() > kMaxKmsKeyIdSize || !IsPrintable(a.kms_key_id) ||
      a.witnesses > kMaxWitnesses ||
      (a.recovery_statement && a.recovery_statement->size() > kMaxRecoveryStatementSize)) {
    return Error(Code::kInvalidArgument, "storage wire: attachment field out of bounds");
  }
  RETURN_IF_ERROR(w.WritePrefixed8(AsBytes(a.label)));
  w.WriteU64Be(a.size_bytes);
  RETURN_IF_ERROR(w.WritePrefixed16(AsBytes(a.kms_key_id)));
  w.WriteU8(a.witnesses);
  w.WriteU8(a.recovery_statement ? 1 : 0);
  if (a.recovery_statement) {
    RETURN_IF_ERROR(w.WritePrefixed32(*a.recovery_statement));
  }
  return Ok();
}

Result<Attachment> ReadAttachment(Reader& r) {
  Attachment a;
  ASSIGN_OR_RETURN(ByteSpan label, r.ReadPrefixed8());
  a.label = std::string(AsString(label));
  if (!ValidLabel(a.label)) {
    return Malformed("hello: invalid volume label");
  }
  ASSIGN_OR_RETURN(a.size_bytes, r.ReadU64Be());
  if (a.size_bytes == 0 || a.size_bytes % 4096 != 0) {
    return Malformed("hello: volume size is not a non-zero multiple of 4096");
  }
  ASSIGN_OR_RETURN(ByteSpan key_id, r.ReadPrefixed16());
  a.kms_key_id = std::string(AsString(key_id));
  if (a.kms_key_id.size() > kMaxKmsKeyIdSize || !IsPrintable(a.kms_key_id)) {
    return Malformed("hello: invalid kms key id");
  }
  ASSIGN_OR_RETURN(a.witnesses, r.ReadU8());
  if (a.witnesses > kMaxWitnesses) {
    return Malformed("hello: too many witnesses");
  }
  ASSIGN_OR_RETURN(uint8_t has_recovery, r.ReadU8());
  if (has_recovery > 1) {
    return Malformed("hello: bad recovery flag");
  }
  if (has_recovery == 1) {
    ASSIGN_OR_RETURN(ByteSpan statement, r.ReadPrefixed32());
    if (statement.size() > kMaxRecoveryStatementSize) {
      return Malformed("hello: recovery statement too large");
    }
    a.recovery_statement = ToBytes(statement);
  }
  return a;
}

}  // namespace

std::string_view TypeName(Type type) {
  switch (type) {
    case Type::kHello:
      return "hello";
    case Type::kPut:
      return "put";
    case Type::kGet:
      return "get";
    case Type::kGetRange:
      return "get-range";
    case Type::kDelete:
      return "delete";
    case Type::kList:
      return "list";
    case Type::kReport:
      return "report";
  }
  return "unknown";
}

Result<Bytes> EncodePutRequest(std::string_view name, ByteSpan data) {
  RETURN_IF_ERROR(CheckName(name));
  if (data.size() > kMaxObjectSize) {
    return Error(Code::kLimitExceeded,
                 "object " + std::string(name) + " is over the object size limit");
  }
  Writer w;
  w.WriteU8(static_cast<uint8_t>(Type::kPut));
  RETURN_IF_ERROR(w.WritePrefixed8(AsBytes(name)));
  RETURN_IF_ERROR(w.WritePrefixed32(data));
  return w.Finish();
}

Result<Bytes> EncodeRequest(const Request& request) {
  if (!ParseType(static_cast<uint8_t>(request.type))) {
    return Error(Code::kInvalidArgument, "storage wire: unknown request type");
  }
  if (request.type == Type::kPut) {
    return EncodePutRequest(request.name, request.data);
  }
  Writer w;
  w.WriteU8(static_cast<uint8_t>(request.type));
  switch (request.type) {
    case Type::kHello:
      w.WriteU16Be(request.version);
      break;
    case Type::kGet:
    case Type::kDelete:
      RETURN_IF_ERROR(CheckName(request.name));
      RETURN_IF_ERROR(w.WritePrefixed8(AsBytes(request.name)));
      break;
    case Type::kGetRange: {
      RETURN_IF_ERROR(CheckName(request.name));
      auto end = CheckedAdd(request.offset, request.length);
      if (request.length > kMaxObjectSize || !end) {
        return Error(Code::kLimitExceeded, "storage wire: range over the object size limit");
      }
      RETURN_IF_ERROR(w.WritePrefixed8(AsBytes(request.name)));
      w.WriteU64Be(request.offset);
      w.WriteU64Be(request.length);
      break;
    }
    case Type::kList:
      if (!ValidPrefix(request.name)) {
        return Error(Code::kInvalidArgument, "storage wire: invalid list prefix");
      }
      RETURN_IF_ERROR(w.WritePrefixed8(AsBytes(request.name)));
      break;
    case Type::kReport:
      if (request.status.size() > kMaxReportSize || !IsPrintable(request.status)) {
        return Error(Code::kInvalidArgument,
                     "storage wire: a report is at most 4096 printable characters");
      }
      RETURN_IF_ERROR(w.WritePrefixed16(AsBytes(request.status)));
      break;
    case Type::kPut:
      break;
  }
  return w.Finish();
}

Result<Request> DecodeRequest(ByteSpan body) {
  if (body.size() > kMaxFrameBody) {
    return Malformed("request too large");
  }
  Reader r(body);
  ASSIGN_OR_RETURN(uint8_t type_byte, r.ReadU8());
  auto type = ParseType(type_byte);
  if (!type) {
    return Malformed("unknown request type " + std::to_string(type_byte));
  }
  Request req;
  req.type = *type;
  std::string_view what = TypeName(*type);
  switch (*type) {
    case Type::kHello: {
      ASSIGN_OR_RETURN(req.version, r.ReadU16Be());
      break;
    }
    case Type::kPut: {
      ASSIGN_OR_RETURN(req.name, ReadName(r, what));
      ASSIGN_OR_RETURN(ByteSpan data, r.ReadPrefixed32());
      if (data.size() > kMaxObjectSize) {
        return Malformed("put: object over the size limit");
      }
      req.data = ToBytes(data);
      break;
    }
    case Type::kGet:
    case Type::kDelete: {
      ASSIGN_OR_RETURN(req.name, ReadName(r, what));
      break;
    }
    case Type::kGetRange: {
      ASSIGN_OR_RETURN(req.name, ReadName(r, what));
      ASSIGN_OR_RETURN(req.offset, r.ReadU64Be());
      ASSIGN_OR_RETURN(req.length, r.ReadU64Be());
      if (req.length > kMaxObjectSize || !CheckedAdd(req.offset, req.length)) {
        return Malformed("get-range: range out of bounds");
      }
      break;
    }
    case Type::kList: {
      ASSIGN_OR_RETURN(ByteSpan prefix, r.ReadPrefixed8());
      req.name = std::string(AsString(prefix));
      if (!ValidPrefix(req.name)) {
        return Malformed("list: invalid prefix");
      }
      break;
    }
    case Type::kReport: {
      ASSIGN_OR_RETURN(ByteSpan status, r.ReadPrefixed16());
      req.status = std::string(AsString(status));
      if (req.status.size() > kMaxReportSize || !IsPrintable(req.status)) {
        return Malformed("report: status too long or not printable");
      }
      break;
    }
  }
  if (!r.empty()) {
    return Malformed(std::string(what) + " request: trailing bytes");
  }
  return req;
}

Result<Bytes> EncodeResponse(const Response& response) {
  if (!ParseType(static_cast<uint8_t>(response.type))) {
    return Error(Code::kInvalidArgument, "storage wire: unknown response type");
  }
  Writer w;
  w.WriteU8(static_cast<uint8_t>(static_cast<uint8_t>(response.type) | kResponseBit));
  if (response.error) {
    Code code = response.error->code();
    // A code the enclave would refuse travels as kInternal rather than break the stream.
    w.WriteU8(static_cast<uint8_t>(HostMayAnswer(code) ? code : Code::kInternal));
    RETURN_IF_ERROR(w.WritePrefixed16(AsBytes(OneLine(response.error->message()))));
    return w.Finish();
  }
  w.WriteU8(0);
  switch (response.type) {
    case Type::kHello:
      w.WriteU16Be(response.version);
      w.WriteU8(response.attachment ? 1 : 0);
      if (response.attachment) {
        RETURN_IF_ERROR(WriteAttachment(w, *response.attachment));
      }
      break;
    case Type::kGet:
    case Type::kGetRange:
      if (response.data.size() > kMaxObjectSize) {
        return Error(Code::kLimitExceeded, "storage wire: object over the size limit");
      }
      RETURN_IF_ERROR(w.WritePrefixed32(response.data));
      break;
    case Type::kList: {
      if (response.names.size() > UINT32_MAX) {
        return Error(Code::kLimitExceeded, "storage wire: too many names");
      }
      w.WriteU32Be(static_cast<uint32_t>(response.names.size()));
      for (size_t i = 0; i < response.names.size(); ++i) {
        const std::string& name = response.names[i];
        RETURN_IF_ERROR(CheckName(name));
        if (i > 0 && !(response.names[i - 1] < name)) {
          return Error(Code::kInvalidArgument, "storage wire: list names not strictly sorted");
        }
        RETURN_IF_ERROR(w.WritePrefixed8(AsBytes(name)));
      }
      if (w.size() > kMaxFrameBody) {
        return Error(Code::kLimitExceeded, "storage wire: list too long for one frame");
      }
      break;
    }
    case Type::kPut:
    case Type::kDelete:
    case Type::kReport:
      break;
  }
  return w.Finish();
}

Result<Response> DecodeResponse(ByteSpan body) {
  if (body.size() > kMaxFrameBody) {
    return Malformed("response too large");
  }
  Reader r(body);
  ASSIGN_OR_RETURN(uint8_t type_byte, r.ReadU8());
  auto type = (type_byte & kResponseBit) != 0
                  ? ParseType(static_cast<uint8_t>(type_byte & ~kResponseBit))
                  : std::nullopt;
  if (!type) {
    return Malformed("unknown response type " + std::to_string(type_byte));
  }
  Response resp;
  resp.type = *type;
  std::string_view what = TypeName(*type);
  ASSIGN_OR_RETURN(uint8_t code_byte, r.ReadU8());
  if (code_byte != 0) {
    auto code = static_cast<Code>(code_byte);
    if (!HostMayAnswer(code)) {
      return Malformed(std::string(what) + " response: unexpected error code " +
                       std::to_string(code_byte));
    }
    ASSIGN_OR_RETURN(ByteSpan message, r.ReadPrefixed16());
    std::string_view text = AsString(message);
    if (text.size() > kMaxErrorMessageSize || !IsPrintable(text)) {
      return Malformed(std::string(what) + " response: error message too long or not printable");
    }
    resp.error = Error(code, std::string(text));
  } else {
    switch (*type) {
      case Type::kHello: {
        ASSIGN_OR_RETURN(resp.version, r.ReadU16Be());
        ASSIGN_OR_RETURN(uint8_t present, r.ReadU8());
        if (present > 1) {
          return Malformed("hello: bad volume flag");
        }
        if (present == 1) {
          ASSIGN_OR_RETURN(resp.attachment, ReadAttachment(r));
        }
        break;
      }
      case Type::kGet:
      case Type::kGetRange: {
        ASSIGN_OR_RETURN(ByteSpan data, r.ReadPrefixed32());
        if (data.size() > kMaxObjectSize) {
          return Malformed(std::string(what) + ": object over the size limit");
        }
        resp.data = ToBytes(data);
        break;
      }
      case Type::kList: {
        ASSIGN_OR_RETURN(uint32_t count, r.ReadU32Be());
        // Each name takes at least two bytes: a count larger than that cannot be honest, and
        // checking first keeps reserve() bounded by the frame.
        if (count > r.remaining() / 2) {
          return Malformed("list: count larger than the frame");
        }
        resp.names.reserve(count);
        for (uint32_t i = 0; i < count; ++i) {
          ASSIGN_OR_RETURN(std::string name, ReadName(r, what));
          if (!resp.names.empty() && !(resp.names.back() < name)) {
            return Malformed("list: names not strictly sorted");
          }
          resp.names.push_back(std::move(name));
        }
        break;
      }
      case Type::kPut:
      case Type::kDelete:
      case Type::kReport:
        break;
    }
  }
  if (!r.empty()) {
    return Malformed(std::string(what) + " response: trailing bytes");
  }
  return resp;
}

std::array<uint8_t, kFrameHeaderSize> FrameHeader(size_t size) {
  ENCLAVIA_CHECK(size <= kMaxFrameBody);
  auto n = static_cast<uint32_t>(size);
  return {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
          static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
}

Result<size_t> ParseFrameHeader(ByteSpan header) {
  if (header.size() != kFrameHeaderSize) {
    return Malformed("short frame header");
  }
  uint32_t n = (uint32_t{header[0]} << 24) | (uint32_t{header[1]} << 16) |
               (uint32_t{header[2]} << 8) | uint32_t{header[3]};
  if (n > kMaxFrameBody) {
    return Malformed("frame of " + std::to_string(n) + " bytes is over the limit");
  }
  return size_t{n};
}

namespace {

Error SocketError(std::string_view what, int err) {
  if (err == EAGAIN || err == EWOULDBLOCK) {
    return Error(Code::kUnavailable, "storage connection: " + std::string(what) + " timed out");
  }
  return Error(Code::kUnavailable,
               "storage connection: " + std::string(what) + ": " + strerror(err));
}

Result<void> SendAll(int fd, ByteSpan data, int flags) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), flags | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return SocketError("send", errno);
    }
    data = data.subspan(static_cast<size_t>(n));
  }
  return Ok();
}

// RecvAll fills `out`; returns the number of bytes read before the peer closed (== size when
// complete).
Result<size_t> RecvAll(int fd, std::span<uint8_t> out) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = recv(fd, out.data() + got, out.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return SocketError("receive", errno);
    }
    if (n == 0) {
      break;
    }
    got += static_cast<size_t>(n);
  }
  return got;
}

}  // namespace

Result<void> WriteFrame(int fd, ByteSpan body) {
  if (body.size() > kMaxFrameBody) {
    return Error(Code::kLimitExceeded, "storage wire: frame over the limit");
  }
  auto header = FrameHeader(body.size());
  RETURN_IF_ERROR(SendAll(fd, header, body.empty() ? 0 : MSG_MORE));
  return SendAll(fd, body, 0);
}

Result<Bytes> ReadFrame(int fd, bool* clean_eof) {
  if (clean_eof != nullptr) {
    *clean_eof = false;
  }
  std::array<uint8_t, kFrameHeaderSize> header{};
  ASSIGN_OR_RETURN(size_t got, RecvAll(fd, header));
  if (got == 0) {
    if (clean_eof != nullptr) {
      *clean_eof = true;
    }
    return Error(Code::kUnavailable, "storage connection: closed by the peer");
  }
  if (got < header.size()) {
    return Error(Code::kUnavailable, "storage connection: closed in the middle of a frame");
  }
  ASSIGN_OR_RETURN(size_t size, ParseFrameHeader(header));
  // Grow the buffer as bytes arrive, so a peer announcing a huge frame and sending nothing does
  // not make us commit the memory.
  constexpr size_t kStep = 1 << 20;
  Bytes body;
  while (body.size() < size) {
    size_t old = body.size();
    body.resize(old + std::min(kStep, size - old));
    ASSIGN_OR_RETURN(got, RecvAll(fd, std::span<uint8_t>(body).subspan(old)));
    if (got < body.size() - old) {
      return Error(Code::kUnavailable, "storage connection: closed in the middle of a frame");
    }
  }
  return body;
}

}  // namespace enclavia::storage::wire
