// SPDX-License-Identifier: Apache-2.0
#include "enclave/storage/nbd_protocol.h"

#include <algorithm>

#include "lib/base/reader.h"

namespace enclavia::enclave::nbd {

namespace {

Bytes ErrorReply(uint32_t option, uint32_t type, std::string_view message) {
  // Error replies MAY carry a human-readable message (spec: "Option reply types").
  return EncodeOptionReply(option, type, AsBytes(message));
}

void Append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

}  // namespace

Bytes EncodeGreeting() {
  Writer w;
  w.WriteU64Be(kNbdMagic);
  w.WriteU64Be(kOptionMagic);
  w.WriteU16Be(kFlagFixedNewstyle | kFlagNoZeroes);
  return w.Finish();
}

Result<uint32_t> DecodeClientFlags(ByteSpan data) {
  Reader r(data);
  ASSIGN_OR_RETURN(uint32_t flags, r.ReadU32Be());
  RETURN_IF_ERROR(r.ExpectEnd("nbd client flags"));
  // Spec "Client flags": the server MUST drop the connection on an unknown flag. NO_ZEROES is
  // known because this server always advertises NBD_FLAG_NO_ZEROES.
  if ((flags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) != 0) {
    return Error(Code::kMalformed, "nbd client flags: unknown bits set");
  }
  return flags;
}

Result<OptionHeader> DecodeOptionHeader(ByteSpan data) {
  Reader r(data);
  ASSIGN_OR_RETURN(uint64_t magic, r.ReadU64Be());
  if (magic != kOptionMagic) {
    return Error(Code::kMalformed, "nbd option: bad magic");
  }
  OptionHeader header;
  ASSIGN_OR_RETURN(header.option, r.ReadU32Be());
  ASSIGN_OR_RETURN(header.length, r.ReadU32Be());
  RETURN_IF_ERROR(r.ExpectEnd("nbd option header"));
  return header;
}

Bytes EncodeOptionReply(uint32_t option, uint32_t type, ByteSpan data) {
  Writer w;
  w.WriteU64Be(kOptionReplyMagic);
  w.WriteU32Be(option);
  w.WriteU32Be(type);
  // Option data is bounded far below 4 GiB by construction (names ≤ 4096 bytes).
  ENCLAVIA_CHECK(data.size() <= UINT32_MAX);
  w.WriteU32Be(static_cast<uint32_t>(data.size()));
  w.WriteBytes(data);
  return w.Finish();
}

Result<InfoRequest> DecodeInfoRequest(ByteSpan data) {
  Reader r(data);
  ASSIGN_OR_RETURN(uint32_t name_length, r.ReadU32Be());
  if (name_length > kMaxStringLength) {
    return Error(Code::kMalformed, "nbd info request: export name over 4096 bytes");
  }
  InfoRequest request;
  ASSIGN_OR_RETURN(ByteSpan name, r.ReadBytes(name_length));
  request.name = std::string(AsString(name));
  ASSIGN_OR_RETURN(uint16_t count, r.ReadU16Be());
  if (r.remaining() != size_t{count} * 2) {
    return Error(Code::kMalformed, "nbd info request: count disagrees with length");
  }
  request.infos.reserve(count);
  for (uint16_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(uint16_t info, r.ReadU16Be());
    request.infos.push_back(info);
  }
  return request;
}

Result<Request> DecodeRequest(ByteSpan data) {
  Reader r(data);
  ASSIGN_OR_RETURN(uint32_t magic, r.ReadU32Be());
  if (magic != kRequestMagic) {
    return Error(Code::kMalformed, "nbd request: bad magic");
  }
  Request request;
  ASSIGN_OR_RETURN(request.flags, r.ReadU16Be());
  ASSIGN_OR_RETURN(request.type, r.ReadU16Be());
  ASSIGN_OR_RETURN(request.cookie, r.ReadU64Be());
  ASSIGN_OR_RETURN(request.offset, r.ReadU64Be());
  ASSIGN_OR_RETURN(request.length, r.ReadU32Be());
  RETURN_IF_ERROR(r.ExpectEnd("nbd request header"));
  return request;
}

Bytes EncodeRequest(const Request& request) {
  Writer w;
  w.WriteU32Be(kRequestMagic);
  w.WriteU16Be(request.flags);
  w.WriteU16Be(request.type);
  w.WriteU64Be(request.cookie);
  w.WriteU64Be(request.offset);
  w.WriteU32Be(request.length);
  return w.Finish();
}

Bytes EncodeSimpleReply(uint32_t error, uint64_t cookie) {
  Writer w;
  w.WriteU32Be(kSimpleReplyMagic);
  w.WriteU32Be(error);
  w.WriteU64Be(cookie);
  return w.Finish();
}

RequestCheck CheckRequest(const Request& request, const Export& export_info) {
  using Action = RequestCheck::Action;
  const RequestCheck reject_einval{Action::kReject, kEinval};
  // Spec "Command flags": FUA is valid on every command once NBD_FLAG_SEND_FUA is advertised;
  // NO_HOLE only on WRITE_ZEROES. Anything else is EINVAL ("Error values").
  uint16_t allowed_flags = kCmdFlagFua;
  switch (request.type) {
    case kCmdDisc:
      return {Action::kClose, 0};
    case kCmdWriteZeroes:
      allowed_flags |= kCmdFlagNoHole;
      break;
    case kCmdRead:
    case kCmdWrite:
    case kCmdFlush:
    case kCmdTrim:
      break;
    default:
      // Unknown command (CACHE, BLOCK_STATUS, …): EINVAL. A WRITE-like payload cannot follow an
      // unknown command, so the stream stays in sync.
      return reject_einval;
  }
  bool is_write = request.type == kCmdWrite;
  if (is_write && request.length > export_info.max_block_size) {
    // We will not read an oversized payload; the spec lets the server disconnect.
    return {Action::kClose, 0};
  }
  if ((request.flags & ~allowed_flags) != 0) {
    return reject_einval;
  }
  if (request.type == kCmdFlush) {
    // Offset and length are reserved (zero) for FLUSH; a flush of anything is the same flush.
    return {Action::kExecute, 0};
  }
  if (request.type == kCmdRead && request.length > export_info.max_block_size) {
    return reject_einval;
  }
  std::optional<uint64_t> end = CheckedAdd<uint64_t>(request.offset, request.length);
  if (!end) {
    return reject_einval;
  }
  if (*end > export_info.size) {
    // Spec "Error values": ENOSPC for a write past the end of the device.
    bool writes = is_write || request.type == kCmdWriteZeroes;
    return {Action::kReject, writes ? kEnospc : kEinval};
  }
  return {Action::kExecute, 0};
}

Negotiator::Step Negotiator::HandleOption(uint32_t option, ByteSpan data) const {
  switch (option) {
    case kOptExportName: {
      // Spec "NBD_OPT_EXPORT_NAME": no error reply exists, so an unknown name closes.
      if (data.size() > kMaxStringLength || !KnownName(AsString(data))) {
        return {{}, After::kClose};
      }
      Writer w;
      w.WriteU64Be(export_.size);
      w.WriteU16Be(export_.transmission_flags);
      if ((client_flags_ & kClientFlagNoZeroes) == 0) {
        w.WriteBytes(Bytes(kExportNamePadding, 0));
      }
      return {w.Finish(), After::kTransmission};
    }
    case kOptAbort:
      // Spec "NBD_OPT_ABORT": the server MUST reply with NBD_REP_ACK, then the session ends.
      return {EncodeOptionReply(option, kRepAck, {}), After::kClose};
    case kOptList: {
      if (!data.empty()) {
        return {ErrorReply(option, kRepErrInvalid, "NBD_OPT_LIST takes no data"), After::kContinue};
      }
      Writer w;
      w.WriteU32Be(static_cast<uint32_t>(export_.name.size()));
      w.WriteString(export_.name);
      Bytes reply = EncodeOptionReply(option, kRepServer, w.bytes());
      Append(reply, EncodeOptionReply(option, kRepAck, {}));
      return {std::move(reply), After::kContinue};
    }
    case kOptInfo:
    case kOptGo:
      return HandleInfo(option, data);
    case kOptStartTls:
      // NOTLS mode: NBD_REP_ERR_UNSUP is one of the permitted answers (spec "NOTLS mode").
      return {ErrorReply(option, kRepErrUnsup, "TLS is not supported"), After::kContinue};
    case kOptStructuredReply:
      // Clients must handle NBD_REP_ERR_UNSUP and then use simple replies only.
      return {ErrorReply(option, kRepErrUnsup, "structured replies are not supported"),
              After::kContinue};
    default:
      return {ErrorReply(option, kRepErrUnsup, "unsupported option"), After::kContinue};
  }
}

Negotiator::Step Negotiator::RejectTooBig(uint32_t option) const {
  return {ErrorReply(option, kRepErrTooBig, "option data too long"), After::kContinue};
}

Negotiator::Step Negotiator::HandleInfo(uint32_t option, ByteSpan data) const {
  Result<InfoRequest> request = DecodeInfoRequest(data);
  if (!request) {
    return {ErrorReply(option, kRepErrInvalid, "malformed NBD_OPT_INFO/GO data"), After::kContinue};
  }
  if (!KnownName(request->name)) {
    return {ErrorReply(option, kRepErrUnknown, "unknown export"), After::kContinue};
  }
  // NBD_INFO_EXPORT is always sent. NBD_INFO_BLOCK_SIZE is sent unasked too (the spec allows it,
  // and with a minimum of 1 it constrains no client). NBD_INFO_NAME only when asked.
  Writer info_export;
  info_export.WriteU16Be(kInfoExport);
  info_export.WriteU64Be(export_.size);
  info_export.WriteU16Be(export_.transmission_flags);
  Bytes reply = EncodeOptionReply(option, kRepInfo, info_export.bytes());

  bool wants_name =
      std::find(request->infos.begin(), request->infos.end(), kInfoName) != request->infos.end();
  if (wants_name) {
    Writer info_name;
    info_name.WriteU16Be(kInfoName);
    info_name.WriteString(export_.name);
    Append(reply, EncodeOptionReply(option, kRepInfo, info_name.bytes()));
  }

  Writer block_size;
  block_size.WriteU16Be(kInfoBlockSize);
  block_size.WriteU32Be(export_.min_block_size);
  block_size.WriteU32Be(export_.preferred_block_size);
  block_size.WriteU32Be(export_.max_block_size);
  Append(reply, EncodeOptionReply(option, kRepInfo, block_size.bytes()));

  Append(reply, EncodeOptionReply(option, kRepAck, {}));
  return {std::move(reply), option == kOptGo ? After::kTransmission : After::kContinue};
}

}  // namespace enclavia::enclave::nbd
