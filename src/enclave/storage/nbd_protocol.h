// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_ENCLAVE_STORAGE_NBD_PROTOCOL_H_
#define ENCLAVIA_ENCLAVE_STORAGE_NBD_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// The server side of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md), sans I/O: the fixed
// newstyle handshake, option haggling and the transmission-phase request/simple-reply framing.
// Everything here is values in, bytes out; nbd_server.h drives it over a socket, and the fuzzer
// and tests drive it directly. All integers on the wire are big-endian.
//
// Deliberately not implemented (each refused the way the spec allows, so clients fall back):
// TLS (NBD_OPT_STARTTLS → NBD_REP_ERR_UNSUP), structured replies and everything that needs them
// (meta contexts, block status, extended headers → NBD_REP_ERR_UNSUP), NBD_CMD_CACHE and
// NBD_CMD_FLAG_FAST_ZERO (not advertised; EINVAL if sent anyway), oldstyle negotiation.
namespace enclavia::enclave::nbd {

// Magic numbers.
inline constexpr uint64_t kNbdMagic = 0x4e42444d41474943;          // "NBDMAGIC"
inline constexpr uint64_t kOptionMagic = 0x49484156454f5054;       // "IHAVEOPT"
inline constexpr uint64_t kOptionReplyMagic = 0x0003e889045565a9;  // Option replies.
inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;

// Handshake flags (server, 16 bits) and client flags (32 bits).
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFlagFixedNewstyle = 1 << 0;
inline constexpr uint32_t kClientFlagNoZeroes = 1 << 1;

// Options.
inline constexpr uint32_t kOptExportName = 1;
inline constexpr uint32_t kOptAbort = 2;
inline constexpr uint32_t kOptList = 3;
inline constexpr uint32_t kOptStartTls = 5;
inline constexpr uint32_t kOptInfo = 6;
inline constexpr uint32_t kOptGo = 7;
inline constexpr uint32_t kOptStructuredReply = 8;

// Option reply types; errors have bit 31 set.
inline constexpr uint32_t kRepAck = 1;
inline constexpr uint32_t kRepServer = 2;
inline constexpr uint32_t kRepInfo = 3;
inline constexpr uint32_t kRepErrUnsup = 0x80000001;
inline constexpr uint32_t kRepErrPolicy = 0x80000002;
inline constexpr uint32_t kRepErrInvalid = 0x80000003;
inline constexpr uint32_t kRepErrUnknown = 0x80000006;
inline constexpr uint32_t kRepErrTooBig = 0x80000009;

// NBD_REP_INFO types (NBD_OPT_INFO / NBD_OPT_GO).
inline constexpr uint16_t kInfoExport = 0;
inline constexpr uint16_t kInfoName = 1;
inline constexpr uint16_t kInfoDescription = 2;
inline constexpr uint16_t kInfoBlockSize = 3;

// Transmission flags (16 bits).
inline constexpr uint16_t kTxHasFlags = 1 << 0;
inline constexpr uint16_t kTxReadOnly = 1 << 1;
inline constexpr uint16_t kTxSendFlush = 1 << 2;
inline constexpr uint16_t kTxSendFua = 1 << 3;
inline constexpr uint16_t kTxSendTrim = 1 << 5;
inline constexpr uint16_t kTxSendWriteZeroes = 1 << 6;
inline constexpr uint16_t kTxCanMultiConn = 1 << 8;

// Commands and command flags.
inline constexpr uint16_t kCmdRead = 0;
inline constexpr uint16_t kCmdWrite = 1;
inline constexpr uint16_t kCmdDisc = 2;
inline constexpr uint16_t kCmdFlush = 3;
inline constexpr uint16_t kCmdTrim = 4;
inline constexpr uint16_t kCmdWriteZeroes = 6;
inline constexpr uint16_t kCmdFlagFua = 1 << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1 << 1;

// Error values of the simple reply (not the host's errno: the spec fixes them).
inline constexpr uint32_t kEperm = 1;
inline constexpr uint32_t kEio = 5;
inline constexpr uint32_t kEinval = 22;
inline constexpr uint32_t kEnospc = 28;

// Sizes of the fixed-length messages.
inline constexpr size_t kGreetingSize = 18;  // NBDMAGIC, IHAVEOPT, handshake flags.
inline constexpr size_t kClientFlagsSize = 4;
inline constexpr size_t kOptionHeaderSize = 16;  // IHAVEOPT, option, length.
inline constexpr size_t kRequestHeaderSize = 28;
inline constexpr size_t kSimpleReplyHeaderSize = 16;
inline constexpr size_t kExportNamePadding = 124;  // Zeroes after NBD_OPT_EXPORT_NAME's reply.

// Limits. Strings (export names) are at most 4096 bytes per the spec. Option data longer than
// kMaxOptionLength is answered NBD_REP_ERR_TOO_BIG (the server drains it first, see
// nbd_server.cc). kMaxPayload is the advertised maximum block size: the longest READ or WRITE.
inline constexpr uint32_t kMaxStringLength = 4096;
inline constexpr uint32_t kMaxOptionLength = 16 * 1024;
inline constexpr uint32_t kMaxPayload = 32 * 1024 * 1024;

// Export describes the one export a server offers. The name "" (the default export) also
// selects it.
struct Export {
  std::string name;
  uint64_t size = 0;
  uint16_t transmission_flags = 0;
  uint32_t min_block_size = 1;
  uint32_t preferred_block_size = 4096;
  uint32_t max_block_size = kMaxPayload;
};

// DefaultTransmissionFlags is what Enclavia's server advertises: flush, FUA, trim, write-zeroes
// and multi-conn (every connection calls the same BlockDevice, whose Flush commits every write
// completed before it, whichever connection made it — the spec's condition for CAN_MULTI_CONN).
inline constexpr uint16_t kDefaultTransmissionFlags =
    kTxHasFlags | kTxSendFlush | kTxSendFua | kTxSendTrim | kTxSendWriteZeroes | kTxCanMultiConn;

// EncodeGreeting returns the server's first 18 bytes: NBDMAGIC, IHAVEOPT and the handshake flags
// NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES.
Bytes EncodeGreeting();

// DecodeClientFlags parses the client's 4-byte flags. Only NBD_FLAG_C_FIXED_NEWSTYLE and
// NBD_FLAG_C_NO_ZEROES are known; any other bit is kMalformed and the server must drop the
// connection (spec: "Client flags").
Result<uint32_t> DecodeClientFlags(ByteSpan data);

// OptionHeader is the 16-byte header of one client option; `length` bytes of data follow it.
struct OptionHeader {
  uint32_t option = 0;
  uint32_t length = 0;
};

// DecodeOptionHeader parses 16 bytes; kMalformed unless they start with IHAVEOPT (the server then
// drops the connection: the stream cannot be resynchronised).
Result<OptionHeader> DecodeOptionHeader(ByteSpan data);

// EncodeOptionReply frames one fixed-newstyle option reply: magic, option, type, length, data.
Bytes EncodeOptionReply(uint32_t option, uint32_t type, ByteSpan data);

// InfoRequest is the data of NBD_OPT_INFO and NBD_OPT_GO: an export name and the NBD_INFO_*
// types the client asks for.
struct InfoRequest {
  std::string name;
  std::vector<uint16_t> infos;
};

// DecodeInfoRequest parses NBD_OPT_INFO / NBD_OPT_GO data (u32 name length, name, u16 count,
// count × u16). kMalformed if the lengths disagree with the data or the name is over 4096 bytes.
Result<InfoRequest> DecodeInfoRequest(ByteSpan data);

// Request is one transmission-phase request header. For NBD_CMD_WRITE, `length` bytes of payload
// follow it on the wire.
struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t cookie = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};

// DecodeRequest parses a 28-byte request header; kMalformed on a wrong size or magic (the server
// then drops the connection).
Result<Request> DecodeRequest(ByteSpan data);

// EncodeRequest is the client side of DecodeRequest (for tests and the fuzzer's round trip).
Bytes EncodeRequest(const Request& request);

// EncodeSimpleReply returns a simple reply header: magic, error, cookie. For a successful
// NBD_CMD_READ, the `length` bytes read follow it.
Bytes EncodeSimpleReply(uint32_t error, uint64_t cookie);

// RequestCheck is the verdict on a request header before any device call.
struct RequestCheck {
  enum class Action {
    kExecute,  // Call the device.
    kReject,   // Reply `error` without calling the device (after draining a WRITE payload).
    kClose,    // Hard disconnect: NBD_CMD_DISC, or a WRITE whose payload is over the limit.
  };
  Action action = Action::kExecute;
  uint32_t error = 0;
};

// CheckRequest decides what to do with `request` against `export_info`: unknown commands or
// flags, READ over max_block_size, offset + length overflow and ranges past the end are kReject
// (EINVAL; ENOSPC for writes past the end, as the spec asks); a WRITE over max_block_size is
// kClose (the server will not read its payload); NBD_CMD_DISC is kClose. When it says kExecute,
// offset + length <= size holds and, for READ and WRITE, length <= max_block_size.
RequestCheck CheckRequest(const Request& request, const Export& export_info);

// Negotiator runs the server side of fixed-newstyle option haggling for one connection: it is
// given each option in turn and says what to send and what to do next. No I/O; not thread-safe.
class Negotiator {
 public:
  // After says what the server does once it has sent a Step's reply.
  enum class After {
    kContinue,      // Read the next option.
    kClose,         // Close the connection (NBD_OPT_ABORT, or an unknown NBD_OPT_EXPORT_NAME).
    kTransmission,  // The handshake is over: read requests.
  };
  struct Step {
    Bytes reply;  // May be empty (an unknown NBD_OPT_EXPORT_NAME gets no reply).
    After after = After::kContinue;
  };

  explicit Negotiator(Export export_info) : export_(std::move(export_info)) {}

  // SetClientFlags records the client's flags (already checked by DecodeClientFlags).
  void SetClientFlags(uint32_t client_flags) { client_flags_ = client_flags; }

  // HandleOption answers one option whose data is `data` (at most kMaxOptionLength bytes).
  Step HandleOption(uint32_t option, ByteSpan data) const;

  // RejectTooBig answers an option whose data was longer than kMaxOptionLength (and skipped).
  Step RejectTooBig(uint32_t option) const;

  const Export& export_info() const { return export_; }

 private:
  bool KnownName(std::string_view name) const { return name.empty() || name == export_.name; }
  Step HandleInfo(uint32_t option, ByteSpan data) const;

  Export export_;
  uint32_t client_flags_ = 0;
};

}  // namespace enclavia::enclave::nbd

#endif  // ENCLAVIA_ENCLAVE_STORAGE_NBD_PROTOCOL_H_
