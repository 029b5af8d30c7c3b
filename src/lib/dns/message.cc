// SPDX-License-Identifier: Apache-2.0
#include "lib/dns/message.h"

#include <cstring>
#include <utility>

#include "lib/base/reader.h"

namespace enclavia::dns {
namespace {

Error Malformed(std::string_view what) {
  return Error(Code::kMalformed, std::string("dns: ").append(what));
}

uint16_t U16At(ByteSpan m, size_t at) { return static_cast<uint16_t>((m[at] << 8) | m[at + 1]); }

uint32_t U32At(ByteSpan m, size_t at) {
  return (uint32_t{m[at]} << 24) | (uint32_t{m[at + 1]} << 16) | (uint32_t{m[at + 2]} << 8) |
         uint32_t{m[at + 3]};
}

uint8_t FoldCase(uint8_t c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c - 'A' + 'a') : c;
}

bool PlainLabelByte(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '*';
}

void AppendLabelText(std::string& out, ByteSpan label) {
  for (uint8_t raw : label) {
    uint8_t c = FoldCase(raw);
    if (PlainLabelByte(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      // RFC 1035 §5.1: \DDD, three decimal digits.
      out.push_back('\\');
      out.push_back(static_cast<char>('0' + c / 100));
      out.push_back(static_cast<char>('0' + (c / 10) % 10));
      out.push_back(static_cast<char>('0' + c % 10));
    }
  }
}

struct Name {
  std::string text;  // lowercase presentation form
  Bytes wire;        // uncompressed, case kept
};

// ReadName decodes the name at `*offset` and moves `*offset` past it (past the first pointer,
// if any). RFC 1035 §4.1.4: a pointer must point backwards, to after the header; the jump count
// and the 255-byte limit bound the work whatever the message holds.
Result<Name> ReadName(ByteSpan m, size_t* offset) {
  Name name;
  size_t pos = *offset;
  std::optional<size_t> resume;
  size_t jumps = 0;
  while (true) {
    if (pos >= m.size()) {
      return Malformed("name runs past the end of the message");
    }
    uint8_t len = m[pos];
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= m.size()) {
        return Malformed("truncated compression pointer");
      }
      size_t target = (size_t{len & 0x3fu} << 8) | m[pos + 1];
      if (target >= pos || target < kHeaderSize) {
        return Malformed("compression pointer does not point backwards into the message");
      }
      if (++jumps > kMaxPointers) {
        return Malformed("too many compression pointers");
      }
      if (!resume) {
        resume = pos + 2;
      }
      pos = target;
      continue;
    }
    if ((len & 0xc0) != 0) {
      return Malformed("unsupported label type");
    }
    if (name.wire.size() + 1 + len > kMaxNameWireSize) {
      return Malformed("name longer than 255 bytes");
    }
    name.wire.push_back(len);
    if (len == 0) {
      pos += 1;
      break;
    }
    if (pos + 1 + len > m.size()) {
      return Malformed("label runs past the end of the message");
    }
    ByteSpan label = m.subspan(pos + 1, len);
    name.wire.insert(name.wire.end(), label.begin(), label.end());
    if (!name.text.empty() || name.wire.size() > size_t{1} + len) {
      name.text.push_back('.');
    }
    AppendLabelText(name.text, label);
    pos += 1 + size_t{len};
  }
  *offset = resume.value_or(pos);
  return name;
}

struct RecordHead {
  Name owner;
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  size_t rdata_offset = 0;
  uint16_t rdlength = 0;
};

// ReadRecord reads one resource record (RFC 1035 §4.1.3) and moves `*offset` past its RDATA.
Result<RecordHead> ReadRecord(ByteSpan m, size_t* offset) {
  RecordHead rr;
  ASSIGN_OR_RETURN(rr.owner, ReadName(m, offset));
  if (m.size() - *offset < 10) {
    return Malformed("truncated resource record");
  }
  rr.type = U16At(m, *offset);
  rr.rclass = U16At(m, *offset + 2);
  rr.ttl = U32At(m, *offset + 4);
  rr.rdlength = U16At(m, *offset + 8);
  *offset += 10;
  if (m.size() - *offset < rr.rdlength) {
    return Malformed("record data runs past the end of the message");
  }
  rr.rdata_offset = *offset;
  *offset += rr.rdlength;
  return rr;
}

struct Question {
  Name name;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
};

Result<Question> ReadQuestion(ByteSpan m, size_t* offset) {
  Question q;
  ASSIGN_OR_RETURN(q.name, ReadName(m, offset));
  if (m.size() - *offset < 4) {
    return Malformed("truncated question");
  }
  q.qtype = U16At(m, *offset);
  q.qclass = U16At(m, *offset + 2);
  *offset += 4;
  return q;
}

void WriteHeader(Writer& w, const Header& h) {
  w.WriteU16Be(h.id);
  w.WriteU16Be(h.flags);
  w.WriteU16Be(h.qdcount);
  w.WriteU16Be(h.ancount);
  w.WriteU16Be(h.nscount);
  w.WriteU16Be(h.arcount);
}

uint16_t ResponseFlags(const Header& query, Rcode rcode, bool truncated) {
  uint16_t flags = 0x8000 | 0x0080;                               // QR, RA
  flags = static_cast<uint16_t>(flags | (query.flags & 0x7900));  // opcode, RD
  if (truncated) {
    flags |= 0x0200;
  }
  return static_cast<uint16_t>(flags | static_cast<uint16_t>(rcode));
}

bool EqualIgnoringCase(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (FoldCase(a[i]) != FoldCase(b[i])) {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<Header> ParseHeader(ByteSpan message) {
  if (message.size() < kHeaderSize) {
    return Malformed("message shorter than a header");
  }
  Header h;
  h.id = U16At(message, 0);
  h.flags = U16At(message, 2);
  h.qdcount = U16At(message, 4);
  h.ancount = U16At(message, 6);
  h.nscount = U16At(message, 8);
  h.arcount = U16At(message, 10);
  return h;
}

Result<Query> ParseQuery(ByteSpan message) {
  Query query;
  ASSIGN_OR_RETURN(query.header, ParseHeader(message));
  if (query.header.qr()) {
    return Malformed("not a query (QR set)");
  }
  if (query.header.qdcount != 1) {
    return Malformed("query without exactly one question");
  }
  if (query.header.ancount != 0 || query.header.nscount != 0) {
    return Malformed("query with answer or authority records");
  }
  size_t offset = kHeaderSize;
  ASSIGN_OR_RETURN(Question q, ReadQuestion(message, &offset));
  query.name = std::move(q.name.text);
  query.qtype = q.qtype;
  query.qclass = q.qclass;
  query.question = std::move(q.name.wire);
  query.question.push_back(static_cast<uint8_t>(q.qtype >> 8));
  query.question.push_back(static_cast<uint8_t>(q.qtype));
  query.question.push_back(static_cast<uint8_t>(q.qclass >> 8));
  query.question.push_back(static_cast<uint8_t>(q.qclass));
  for (uint16_t i = 0; i < query.header.arcount; ++i) {
    ASSIGN_OR_RETURN(RecordHead rr, ReadRecord(message, &offset));
    if (rr.type == kTypeOpt) {
      // RFC 6891 §6.1.1: one OPT, owned by the root.
      if (query.edns_udp_size || !rr.owner.text.empty()) {
        return Malformed("bad or repeated OPT record");
      }
      query.edns_udp_size = rr.rclass;
    }
  }
  if (offset != message.size()) {
    return Malformed("trailing bytes after the query");
  }
  return query;
}

Bytes BuildResponse(const Query& query, Rcode rcode, bool truncated) {
  Writer w;
  Header h;
  h.id = query.header.id;
  h.flags = ResponseFlags(query.header, rcode, truncated);
  h.qdcount = 1;
  WriteHeader(w, h);
  w.WriteBytes(query.question);
  return w.Finish();
}

Bytes BuildHeaderResponse(const Header& header, Rcode rcode) {
  Writer w;
  Header h;
  h.id = header.id;
  h.flags = ResponseFlags(header, rcode, false);
  WriteHeader(w, h);
  return w.Finish();
}

Result<Bytes> AnswerFor(const Query& query, ByteSpan answer) {
  ASSIGN_OR_RETURN(Header h, ParseHeader(answer));
  if (!h.qr() || h.qdcount != 1) {
    return Malformed("answer is not a response with one question");
  }
  size_t offset = kHeaderSize;
  ASSIGN_OR_RETURN(Question q, ReadQuestion(answer, &offset));
  if (offset != kHeaderSize + query.question.size() || q.qtype != query.qtype ||
      q.qclass != query.qclass ||
      !EqualIgnoringCase(q.name.wire, ByteSpan(query.question).first(q.name.wire.size()))) {
    return Malformed("answer is for another question");
  }
  Bytes out(answer.begin(), answer.end());
  out[0] = static_cast<uint8_t>(query.header.id >> 8);
  out[1] = static_cast<uint8_t>(query.header.id);
  std::memcpy(out.data() + kHeaderSize, query.question.data(), query.question.size());
  return out;
}

Result<Bytes> ReplaceId(ByteSpan message, uint16_t id) {
  if (message.size() < kHeaderSize) {
    return Malformed("message shorter than a header");
  }
  Bytes out(message.begin(), message.end());
  out[0] = static_cast<uint8_t>(id >> 8);
  out[1] = static_cast<uint8_t>(id);
  return out;
}

namespace {

// ForEachAnswer checks that `response` is a whole response (QR set; questions, every record and
// nothing after them) and calls `visit` with each IN-class record of its answer section.
template <typename Visit>
Result<void> ForEachAnswer(ByteSpan response, Visit visit) {
  ASSIGN_OR_RETURN(Header h, ParseHeader(response));
  if (!h.qr()) {
    return Malformed("not a response (QR clear)");
  }
  size_t offset = kHeaderSize;
  for (uint16_t i = 0; i < h.qdcount; ++i) {
    RETURN_IF_ERROR(ReadQuestion(response, &offset));
  }
  size_t records = size_t{h.ancount} + h.nscount + h.arcount;
  for (size_t i = 0; i < records; ++i) {
    ASSIGN_OR_RETURN(RecordHead rr, ReadRecord(response, &offset));
    if (i < h.ancount && rr.rclass == kClassIn) {
      RETURN_IF_ERROR(visit(rr));
    }
  }
  if (offset != response.size()) {
    return Malformed("trailing bytes after the response");
  }
  return {};
}

// RFC 2181 §8: a TTL with the top bit set is treated as zero.
uint32_t EffectiveTtl(uint32_t ttl) { return (ttl & 0x80000000u) != 0 ? 0 : ttl; }

}  // namespace

Result<std::vector<AddressRecord>> ExtractAddresses(ByteSpan response) {
  std::vector<AddressRecord> out;
  RETURN_IF_ERROR(ForEachAnswer(response, [&](RecordHead& rr) -> Result<void> {
    if (rr.type != kTypeA && rr.type != kTypeAaaa) {
      return {};
    }
    size_t want = rr.type == kTypeA ? 4 : 16;
    if (rr.rdlength != want) {
      return Malformed("address record of the wrong size");
    }
    AddressRecord a;
    a.name = std::move(rr.owner.text);
    ByteSpan rdata = response.subspan(rr.rdata_offset, want);
    a.address.assign(rdata.begin(), rdata.end());
    a.ttl = EffectiveTtl(rr.ttl);
    out.push_back(std::move(a));
    return {};
  }));
  return out;
}

Result<std::vector<CnameRecord>> ExtractCnames(ByteSpan response) {
  std::vector<CnameRecord> out;
  RETURN_IF_ERROR(ForEachAnswer(response, [&](RecordHead& rr) -> Result<void> {
    if (rr.type != kTypeCname) {
      return {};
    }
    // The target may be compressed (RFC 1035 §4.1.4), so it is read from the whole message,
    // and must end exactly at the end of the RDATA.
    size_t at = rr.rdata_offset;
    ASSIGN_OR_RETURN(Name target, ReadName(response.first(rr.rdata_offset + rr.rdlength), &at));
    if (at != rr.rdata_offset + rr.rdlength) {
      return Malformed("CNAME data is not one name");
    }
    CnameRecord c;
    c.owner = std::move(rr.owner.text);
    c.target = std::move(target.text);
    c.ttl = EffectiveTtl(rr.ttl);
    out.push_back(std::move(c));
    return {};
  }));
  return out;
}

Result<Bytes> EncodeName(std::string_view name) {
  auto invalid = [&](std::string_view why) {
    return Error(Code::kInvalidArgument, std::string("dns name: ").append(why));
  };
  if (!name.empty() && name.back() == '.' && !(name.size() >= 2 && name[name.size() - 2] == '\\')) {
    name.remove_suffix(1);
  }
  Bytes wire;
  if (name.empty()) {
    wire.push_back(0);
    return wire;
  }
  Bytes label;
  auto end_label = [&]() -> Result<void> {
    if (label.empty()) {
      return invalid("empty label");
    }
    if (label.size() > 63) {
      return invalid("label longer than 63 bytes");
    }
    wire.push_back(static_cast<uint8_t>(label.size()));
    wire.insert(wire.end(), label.begin(), label.end());
    label.clear();
    return Ok();
  };
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      RETURN_IF_ERROR(end_label());
      continue;
    }
    if (c != '\\') {
      label.push_back(static_cast<uint8_t>(c));
      continue;
    }
    if (i + 1 >= name.size()) {
      return invalid("escape at the end");
    }
    char d = name[i + 1];
    if (d >= '0' && d <= '9') {
      if (i + 3 >= name.size()) {
        return invalid("short \\DDD escape");
      }
      int value = 0;
      for (size_t k = 1; k <= 3; ++k) {
        char digit = name[i + k];
        if (digit < '0' || digit > '9') {
          return invalid("bad \\DDD escape");
        }
        value = value * 10 + (digit - '0');
      }
      if (value > 255) {
        return invalid("\\DDD escape over 255");
      }
      label.push_back(static_cast<uint8_t>(value));
      i += 3;
    } else {
      label.push_back(static_cast<uint8_t>(d));
      i += 1;
    }
  }
  RETURN_IF_ERROR(end_label());
  wire.push_back(0);
  if (wire.size() > kMaxNameWireSize) {
    return invalid("name longer than 255 bytes");
  }
  return wire;
}

Result<Bytes> BuildQuery(uint16_t id, std::string_view name, uint16_t qtype) {
  ASSIGN_OR_RETURN(Bytes wire, EncodeName(name));
  Writer w;
  Header h;
  h.id = id;
  h.flags = 0x0100;
  h.qdcount = 1;
  WriteHeader(w, h);
  w.WriteBytes(wire);
  w.WriteU16Be(qtype);
  w.WriteU16Be(kClassIn);
  return w.Finish();
}

}  // namespace enclavia::dns
