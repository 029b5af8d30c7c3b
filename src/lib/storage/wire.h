// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_STORAGE_WIRE_H_
#define ENCLAVIA_LIB_STORAGE_WIRE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/storage/object_store.h"

// The storage wire protocol (docs/formats/storage-wire.md): how the enclave's block store talks
// to the host's storage service over one stream (AF_VSOCK on Nitro, a Unix socket locally).
// Each message is a frame, u32 BE body length then the body; a body is a type byte and fields.
// The enclave sends requests and the host answers each, in order. Both sides parse bytes the
// other controls, so the decoders are strict (canonical encodings only, every length bounded,
// no trailing bytes) and never crash: the fuzz target fuzz/storage_wire.cc feeds them anything.
namespace enclavia::storage::wire {

inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderSize = 4;
// kMaxFrameBody bounds every frame: the largest object plus room for the header fields.
inline constexpr size_t kMaxFrameBody = kMaxObjectSize + 4096;
inline constexpr size_t kMaxReportSize = 4096;
inline constexpr size_t kMaxErrorMessageSize = 512;
inline constexpr size_t kMaxLabelSize = 64;
inline constexpr size_t kMaxKmsKeyIdSize = 2048;
inline constexpr size_t kMaxRecoveryStatementSize = 64 * 1024;
inline constexpr uint8_t kMaxWitnesses = 15;

// Type says what a request asks; its response carries the same type with kResponseBit set.
enum class Type : uint8_t {
  kHello = 1,
  kPut = 2,
  kGet = 3,
  kGetRange = 4,
  kDelete = 5,
  kList = 6,
  kReport = 7,
};
inline constexpr uint8_t kResponseBit = 0x80;

// TypeName is "hello", "put", ... for messages.
std::string_view TypeName(Type type);

// Request is one request; only the fields of its type are meaningful (and encoded):
//   Hello: version · Put: name, data · Get, Delete: name · GetRange: name, offset, length ·
//   List: name (the prefix, may be empty) · Report: status (at most kMaxReportSize bytes).
struct Request {
  Type type = Type::kHello;
  uint16_t version = kProtocolVersion;
  std::string name;
  Bytes data;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string status;
};

// Attachment describes the volume the host attached to this enclave at deploy time.
struct Attachment {
  std::string label;        // 1..64 characters of [a-z0-9._-].
  uint64_t size_bytes = 0;  // Volume size: a non-zero multiple of 4096.
  std::string kms_key_id;   // The KMS key wrapping the volume key; printable ASCII, may be empty.
  uint8_t witnesses = 0;    // Number of anti-rollback witnesses, 0..15.
  // recovery_statement: an owner-signed recovery statement (storage::CommitStatement bytes) the
  // host passes along after `enclavia storage recover`; verified inside, never trusted here.
  std::optional<Bytes> recovery_statement;

  bool operator==(const Attachment&) const = default;
};

// Response answers one request. When `error` is set the request failed and no other field is
// meaningful; otherwise: Hello: version, attachment (nullopt: no volume) · Get, GetRange: data ·
// List: names (valid object names, strictly ascending) · Put, Delete, Report: nothing.
struct Response {
  Type type = Type::kHello;
  std::optional<Error> error;
  uint16_t version = kProtocolVersion;
  std::optional<Attachment> attachment;
  Bytes data;
  std::vector<std::string> names;
};

// EncodeRequest returns the frame body of `request`; kInvalidArgument when a field is out of
// bounds (invalid object name, data over kMaxObjectSize, oversized status...).
Result<Bytes> EncodeRequest(const Request& request);
// EncodePutRequest encodes a Put without copying `data` into a Request first.
Result<Bytes> EncodePutRequest(std::string_view name, ByteSpan data);
// DecodeRequest parses a frame body strictly; kMalformed with a one-line reason otherwise.
Result<Request> DecodeRequest(ByteSpan body);

// EncodeResponse returns the frame body of `response` (errors are carried with their code and
// a one-line, truncated message). kInvalidArgument for out-of-bounds fields.
Result<Bytes> EncodeResponse(const Response& response);
// DecodeResponse parses a frame body strictly. The error codes a host may send are limited to
// those an ObjectStore returns; the message is made printable and truncated.
Result<Response> DecodeResponse(ByteSpan body);

// FrameHeader returns the 4-byte header for a body of `size` bytes (size <= kMaxFrameBody).
std::array<uint8_t, kFrameHeaderSize> FrameHeader(size_t size);
// ParseFrameHeader returns the body length; kMalformed when it is over kMaxFrameBody.
Result<size_t> ParseFrameHeader(ByteSpan header);

// Blocking frame I/O on a connected stream socket (used by RemoteObjectStore and the host's
// StorageService). Writes use MSG_NOSIGNAL, so a closed peer is an error, not SIGPIPE.
// kUnavailable when the peer closed or the socket failed or timed out (SO_RCVTIMEO/SO_SNDTIMEO
// set by the caller); kMalformed for an oversized length.
Result<void> WriteFrame(int fd, ByteSpan body);
// ReadFrame reads one frame. `clean_eof`, if given, is set when the peer closed before sending
// any byte of a new frame (an orderly end, not an error in the middle of a frame).
Result<Bytes> ReadFrame(int fd, bool* clean_eof = nullptr);

}  // namespace enclavia::storage::wire

#endif  // ENCLAVIA_LIB_STORAGE_WIRE_H_
