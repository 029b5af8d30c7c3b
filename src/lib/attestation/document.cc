// SPDX-License-Identifier: Apache-2.0
#include "lib/attestation/document.h"

#include <set>
#include <string>

#include "lib/cbor/cbor.h"

namespace enclavia::attestation {
namespace {

Error Bad(const std::string& what) { return Error(Code::kMalformed, "attestation: " + what); }

// Quoted renders attacker-chosen text for a one-line error message: at most `max` bytes, each
// byte outside printable ASCII (newlines, terminal escapes, UTF-8) shown as '?'.
std::string Quoted(const std::string& text, size_t max) {
  std::string out = text.substr(0, max);
  for (char& c : out) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7e) {
      c = '?';
    }
  }
  return "\"" + out + "\"";
}

Result<Bytes> RequireBytes(const cbor::Value& v, const char* field, size_t min, size_t max) {
  if (!v.is_bytes()) {
    return Bad(std::string(field) + ": not a byte string");
  }
  size_t n = v.as_bytes().size();
  if (n < min || n > max) {
    return Bad(std::string(field) + ": length " + std::to_string(n) + " outside " +
               std::to_string(min) + ".." + std::to_string(max));
  }
  return v.as_bytes();
}

Result<std::optional<Bytes>> OptionalBytes(const cbor::Value& v, const char* field) {
  if (v.is_null()) {
    return std::optional<Bytes>();
  }
  ASSIGN_OR_RETURN(Bytes b, RequireBytes(v, field, 0, kMaxOptionalFieldSize));
  return std::optional<Bytes>(std::move(b));
}

Result<std::map<uint32_t, Bytes>> ParsePcrs(const cbor::Value& v) {
  if (!v.is_map()) {
    return Bad("pcrs: not a map");
  }
  const auto& entries = v.as_map();
  if (entries.empty() || entries.size() > kMaxPcrIndex + 1) {
    return Bad("pcrs: " + std::to_string(entries.size()) + " entries (want 1..32)");
  }
  std::map<uint32_t, Bytes> pcrs;
  for (const auto& [key, value] : entries) {
    if (!key.is_unsigned()) {
      return Bad("pcrs: index is not an unsigned integer");
    }
    if (key.as_uint() > kMaxPcrIndex) {
      return Bad("pcrs: index " + std::to_string(key.as_uint()) + " out of range");
    }
    auto index = static_cast<uint32_t>(key.as_uint());
    if (!value.is_bytes()) {
      return Bad("pcrs: PCR" + std::to_string(index) + " is not a byte string");
    }
    size_t n = value.as_bytes().size();
    if (n != 32 && n != 48 && n != 64) {
      return Bad("pcrs: PCR" + std::to_string(index) + " has length " + std::to_string(n) +
                 " (want 32, 48 or 64)");
    }
    if (!pcrs.emplace(index, value.as_bytes()).second) {
      return Bad("pcrs: duplicate index " + std::to_string(index));
    }
  }
  return pcrs;
}

}  // namespace

Result<AttestationDocument> ParsePayload(ByteSpan payload) {
  cbor::DecodeOptions options;
  options.max_input_size = kMaxDocumentSize;
  options.max_depth = 4;
  options.allow_undefined = false;
  auto decoded = cbor::Decode(payload, options);
  if (!decoded) {
    return std::move(decoded).error().WithContext("attestation: payload");
  }
  if (!decoded->is_map()) {
    return Bad("payload is not a map");
  }
  AttestationDocument doc;
  std::set<std::string> seen;
  for (const auto& [key, value] : decoded->as_map()) {
    if (!key.is_text()) {
      return Bad("payload key is not a text string");
    }
    const std::string& name = key.as_text();
    if (!seen.insert(name).second) {
      return Bad("duplicate field " + name);
    }
    if (name == "module_id") {
      if (!value.is_text() || value.as_text().empty()) {
        return Bad("module_id: not a non-empty text string");
      }
      doc.module_id = value.as_text();
    } else if (name == "digest") {
      if (!value.is_text()) {
        return Bad("digest: not a text string");
      }
      if (value.as_text() != "SHA384") {
        return Bad("digest: " + Quoted(value.as_text(), 16) + " is not SHA384");
      }
      doc.digest = value.as_text();
    } else if (name == "timestamp") {
      if (!value.is_unsigned() || value.as_uint() == 0) {
        return Bad("timestamp: not a positive integer");
      }
      doc.timestamp_ms = value.as_uint();
    } else if (name == "pcrs") {
      ASSIGN_OR_RETURN(doc.pcrs, ParsePcrs(value));
    } else if (name == "certificate") {
      ASSIGN_OR_RETURN(doc.certificate, RequireBytes(value, "certificate", 1, kMaxCertificateSize));
    } else if (name == "cabundle") {
      if (!value.is_array() || value.as_array().empty()) {
        return Bad("cabundle: not a non-empty array");
      }
      for (const cbor::Value& cert : value.as_array()) {
        ASSIGN_OR_RETURN(Bytes der, RequireBytes(cert, "cabundle entry", 1, kMaxCertificateSize));
        doc.cabundle.push_back(std::move(der));
      }
    } else if (name == "public_key") {
      ASSIGN_OR_RETURN(doc.public_key, OptionalBytes(value, "public_key"));
      if (doc.public_key && doc.public_key->empty()) {
        return Bad("public_key: empty");
      }
    } else if (name == "user_data") {
      ASSIGN_OR_RETURN(doc.user_data, OptionalBytes(value, "user_data"));
    } else if (name == "nonce") {
      ASSIGN_OR_RETURN(doc.nonce, OptionalBytes(value, "nonce"));
    } else {
      return Bad("unknown field " + Quoted(name, 32));
    }
  }
  for (const char* required : {"module_id", "digest", "timestamp", "pcrs", "certificate",
                               "cabundle"}) {
    if (seen.count(required) == 0) {
      return Bad(std::string("missing field ") + required);
    }
  }
  return doc;
}

cbor::Value::Map PayloadFields(const AttestationDocument& doc) {
  auto optional = [](const std::optional<Bytes>& b) {
    return b ? cbor::Value::ByteString(*b) : cbor::Value::Null();
  };
  cbor::Value::Map pcrs;
  for (const auto& [index, value] : doc.pcrs) {
    pcrs.emplace_back(cbor::Value::Uint(index), cbor::Value::ByteString(value));
  }
  cbor::Value::Array cabundle;
  for (const Bytes& der : doc.cabundle) {
    cabundle.push_back(cbor::Value::ByteString(der));
  }
  cbor::Value::Map map;
  auto add = [&map](std::string_view name, cbor::Value value) {
    map.emplace_back(cbor::Value::TextString(name), std::move(value));
  };
  add("module_id", cbor::Value::TextString(doc.module_id));
  add("digest", cbor::Value::TextString(doc.digest));
  add("timestamp", cbor::Value::Uint(doc.timestamp_ms));
  add("pcrs", cbor::Value::MakeMap(std::move(pcrs)));
  add("certificate", cbor::Value::ByteString(doc.certificate));
  add("cabundle", cbor::Value::MakeArray(std::move(cabundle)));
  add("public_key", optional(doc.public_key));
  add("user_data", optional(doc.user_data));
  add("nonce", optional(doc.nonce));
  return map;
}

Bytes EncodePayload(const AttestationDocument& doc, PayloadMapEncoding encoding) {
  Bytes out = cbor::Encode(cbor::Value::MakeMap(PayloadFields(doc)), cbor::MapOrder::kAsGiven);
  if (encoding == PayloadMapEncoding::kIndefinite) {
    // A definite map of 9 entries starts with the single head byte 0xa9; the indefinite form
    // replaces it with 0xbf and appends a break (RFC 8949 §3.2.2). Entries are unchanged.
    ENCLAVIA_CHECK(!out.empty() && out[0] == 0xa9);
    out[0] = 0xbf;
    out.push_back(0xff);
  }
  return out;
}

}  // namespace enclavia::attestation
