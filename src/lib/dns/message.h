// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_DNS_MESSAGE_H_
#define ENCLAVIA_LIB_DNS_MESSAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/result.h"

// DNS wire messages (RFC 1035 §4), the subset the enclave's resolver needs: parse the app's (and
// libunbound's) queries, build error responses, hand a full answer back under the asker's ID and
// question, and pull A/AAAA records out of an answer. Every function is bounded: it reads only
// inside the message, follows compression pointers only backwards and at most kMaxPointers
// times, and fails with kMalformed (one line) on anything else. No I/O, no state; thread-safe.
//
// Names are returned in presentation form, lowercase, without the trailing dot ("" is the
// root). A label byte outside [a-z0-9-_*] (after ASCII case folding) is written as \DDD
// (RFC 1035 §5.1), so the text is unambiguous: "a.b" inside one label reads "a\046b".
namespace enclavia::dns {

enum class Rcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
};

// Resource record types and the class the resolver cares about.
inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeCname = 5;
inline constexpr uint16_t kTypeAaaa = 28;
inline constexpr uint16_t kTypeOpt = 41;
inline constexpr uint16_t kTypeDs = 43;
inline constexpr uint16_t kTypeRrsig = 46;
inline constexpr uint16_t kTypeDnskey = 48;
inline constexpr uint16_t kTypeIxfr = 251;
inline constexpr uint16_t kTypeAxfr = 252;
inline constexpr uint16_t kClassIn = 1;

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxNameWireSize = 255;  // RFC 1035 §2.3.4
inline constexpr size_t kMaxPointers = 64;       // compression jumps followed per name
inline constexpr size_t kUdpPlainSize = 512;     // RFC 1035 §4.2.1, without EDNS

// Header is the fixed 12-byte header (RFC 1035 §4.1.1).
struct Header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  uint16_t nscount = 0;
  uint16_t arcount = 0;

  bool qr() const { return (flags & 0x8000) != 0; }
  uint8_t opcode() const { return static_cast<uint8_t>((flags >> 11) & 0xf); }
  bool tc() const { return (flags & 0x0200) != 0; }
  bool rd() const { return (flags & 0x0100) != 0; }
  uint8_t rcode() const { return static_cast<uint8_t>(flags & 0xf); }
};

// ParseHeader reads the header; kMalformed when the message is shorter than 12 bytes.
Result<Header> ParseHeader(ByteSpan message);

// Query is a parsed query: one question, possibly an EDNS OPT record.
struct Query {
  Header header;
  std::string name;  // lowercase presentation form, no trailing dot
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  // edns_udp_size is the OPT record's requestor payload size (RFC 6891 §6.2.3), if present.
  std::optional<uint16_t> edns_udp_size;
  // question is the question as the asker wrote it (case kept), uncompressed: name, type, class.
  Bytes question;
};

// ParseQuery parses a query: QR clear, exactly one question, no answer or authority records;
// additional records are skipped (at most one OPT, whose size is kept). kMalformed otherwise,
// naming the first problem. The opcode is not checked (the caller answers NOTIMP).
Result<Query> ParseQuery(ByteSpan message);

// BuildResponse builds a response without records to `query`: its ID, opcode and RD, QR and RA
// set, `rcode`, the question echoed. `truncated` sets TC (for an answer too big for UDP).
Bytes BuildResponse(const Query& query, Rcode rcode, bool truncated = false);

// BuildHeaderResponse answers a message whose header parsed but whose question did not: its ID
// and opcode, QR set, `rcode` (FORMERR, RFC 1035 §4.1.1), no sections.
Bytes BuildHeaderResponse(const Header& header, Rcode rcode);

// AnswerFor turns `answer` (a full response to the same question, e.g. libunbound's
// answer_packet) into the response to `query`: the query's ID, and its question bytes in place of
// the answer's (so the asker sees its own letter case; lengths are equal, so compression
// pointers stay valid). kMalformed when `answer` is not a response with exactly that question
// (name compared case-insensitively, type and class exactly).
Result<Bytes> AnswerFor(const Query& query, ByteSpan answer);

// ReplaceId returns a copy of `message` with its ID replaced; kMalformed if shorter than a header.
Result<Bytes> ReplaceId(ByteSpan message, uint16_t id);

// AddressRecord is one A or AAAA record of an answer section.
struct AddressRecord {
  std::string name;  // the record's owner, as above
  Bytes address;     // 4 (A) or 16 (AAAA) bytes, network order
  uint32_t ttl = 0;
};

// ExtractAddresses parses a whole response (QR set, every section walked) and returns the
// class-IN A and AAAA records of its answer section, in order. Records of other types are
// skipped; an A with rdlength != 4 or an AAAA with rdlength != 16 is kMalformed.
Result<std::vector<AddressRecord>> ExtractAddresses(ByteSpan response);

// CnameRecord is one CNAME record of an answer section.
struct CnameRecord {
  std::string owner;   // as above
  std::string target;  // the canonical name (RDATA), as above
  uint32_t ttl = 0;
};

// ExtractCnames parses a whole response like ExtractAddresses and returns the class-IN CNAME
// records of its answer section, in order; kMalformed if one's RDATA is not exactly one name.
Result<std::vector<CnameRecord>> ExtractCnames(ByteSpan response);

// EncodeName writes `name` (presentation form as above, \DDD escapes allowed, with or without
// the trailing dot) in uncompressed wire form; kInvalidArgument for an empty label, a label over
// 63 bytes, a name over 255 bytes or a bad escape.
Result<Bytes> EncodeName(std::string_view name);

// BuildQuery builds a query for (name, qtype, class IN) with `id` and RD set, without EDNS.
// For tests and tools.
Result<Bytes> BuildQuery(uint16_t id, std::string_view name, uint16_t qtype);

}  // namespace enclavia::dns

#endif  // ENCLAVIA_LIB_DNS_MESSAGE_H_
