// SPDX-License-Identifier: Apache-2.0
// Decode: libcbor's streaming decoder reads one item head at a time; an explicit stack of open
// containers builds the Value, so the depth of the C++ stack does not depend on the input.
#include <cbor.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/base/encoding.h"
#include "lib/cbor/cbor.h"
#include "lib/cbor/internal/keys.h"

namespace enclavia::cbor {
namespace {

Error Malformed(std::string_view message) {
  return {Code::kMalformed, "cbor: " + std::string(message)};
}

std::string HexByte(uint8_t b) { return "0x" + HexEncode(ByteSpan(&b, 1)); }

// IsValidUtf8 accepts exactly the well-formed UTF-8 of RFC 3629: no overlong forms, no
// surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
bool IsValidUtf8(ByteSpan s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t need = 0;
    uint8_t lo = 0x80;
    uint8_t hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c == 0xe0) {
        lo = 0xa0;  // Overlong below U+0800.
      } else if (c == 0xed) {
        hi = 0x9f;  // Surrogates.
      }
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c == 0xf0) {
        lo = 0x90;  // Overlong below U+10000.
      } else if (c == 0xf4) {
        hi = 0x8f;  // Above U+10FFFF.
      }
    } else {
      return false;  // Continuation byte, 0xc0/0xc1 (overlong) or 0xf5..0xff.
    }
    if (s.size() - i - 1 < need) {
      return false;
    }
    if (s[i + 1] < lo || s[i + 1] > hi) {
      return false;
    }
    for (size_t k = 2; k <= need; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xbf) {
        return false;
      }
    }
    i += need + 1;
  }
  return true;
}

// Event is what one call of cbor_stream_decode reported.
struct Event {
  enum class Kind {
    kNone,
    kUnsigned,
    kNegative,
    kBytes,
    kText,
    kBytesStart,
    kTextStart,
    kArray,
    kIndefiniteArray,
    kMap,
    kIndefiniteMap,
    kTag,
    kFloat,
    kBool,
    kNull,
    kUndefined,
    kSimple,
    kBreak,
  };
  Kind kind = Kind::kNone;
  uint64_t arg = 0;  // Integer, length or tag; bool and simple values.
  double number = 0;
  ByteSpan data;  // Definite string contents (points into the input).
};

void Set(void* context, Event::Kind kind, uint64_t arg = 0) {
  auto& ev = *static_cast<Event*>(context);
  ev.kind = kind;
  ev.arg = arg;
}
void SetString(void* context, Event::Kind kind, cbor_data data, size_t size) {
  Set(context, kind);
  static_cast<Event*>(context)->data = ByteSpan(data, size);
}
void SetNumber(void* context, double d) {
  Set(context, Event::Kind::kFloat);
  static_cast<Event*>(context)->number = d;
}
void OnUint8(void* c, uint8_t v) { Set(c, Event::Kind::kUnsigned, v); }
void OnUint16(void* c, uint16_t v) { Set(c, Event::Kind::kUnsigned, v); }
void OnUint32(void* c, uint32_t v) { Set(c, Event::Kind::kUnsigned, v); }
void OnUint64(void* c, uint64_t v) { Set(c, Event::Kind::kUnsigned, v); }
void OnNeg8(void* c, uint8_t v) { Set(c, Event::Kind::kNegative, v); }
void OnNeg16(void* c, uint16_t v) { Set(c, Event::Kind::kNegative, v); }
void OnNeg32(void* c, uint32_t v) { Set(c, Event::Kind::kNegative, v); }
void OnNeg64(void* c, uint64_t v) { Set(c, Event::Kind::kNegative, v); }
void OnBytesStart(void* c) { Set(c, Event::Kind::kBytesStart); }
void OnBytes(void* c, cbor_data d, size_t n) { SetString(c, Event::Kind::kBytes, d, n); }
void OnText(void* c, cbor_data d, size_t n) { SetString(c, Event::Kind::kText, d, n); }
void OnTextStart(void* c) { Set(c, Event::Kind::kTextStart); }
void OnIndefArray(void* c) { Set(c, Event::Kind::kIndefiniteArray); }
void OnArray(void* c, size_t n) { Set(c, Event::Kind::kArray, n); }
void OnIndefMap(void* c) { Set(c, Event::Kind::kIndefiniteMap); }
void OnMap(void* c, size_t n) { Set(c, Event::Kind::kMap, n); }
void OnTag(void* c, uint64_t tag) { Set(c, Event::Kind::kTag, tag); }
// Half and single floats widen to double exactly (libcbor decodes halves exactly too).
void OnFloat(void* c, float f) { SetNumber(c, static_cast<double>(f)); }
void OnDouble(void* c, double d) { SetNumber(c, d); }
void OnUndefined(void* c) { Set(c, Event::Kind::kUndefined); }
void OnNull(void* c) { Set(c, Event::Kind::kNull); }
void OnBool(void* c, bool b) { Set(c, Event::Kind::kBool, b ? 1U : 0U); }
void OnBreak(void* c) { Set(c, Event::Kind::kBreak); }

constexpr cbor_callbacks kCallbacks = {
    .uint8 = OnUint8,
    .uint16 = OnUint16,
    .uint32 = OnUint32,
    .uint64 = OnUint64,
    .negint64 = OnNeg64,
    .negint32 = OnNeg32,
    .negint16 = OnNeg16,
    .negint8 = OnNeg8,
    .byte_string_start = OnBytesStart,
    .byte_string = OnBytes,
    .string = OnText,
    .string_start = OnTextStart,
    .indef_array_start = OnIndefArray,
    .array_start = OnArray,
    .indef_map_start = OnIndefMap,
    .map_start = OnMap,
    .tag = OnTag,
    .float2 = OnFloat,
    .float4 = OnFloat,
    .float8 = OnDouble,
    .undefined = OnUndefined,
    .null = OnNull,
    .boolean = OnBool,
    .indef_break = OnBreak,
};

// Frame is an open container or indefinite-length string.
struct Frame {
  enum class Kind { kArray, kMap, kTag, kByteChunks, kTextChunks };
  Kind kind = Kind::kArray;
  bool indefinite = false;
  uint64_t remaining = 0;  // Definite arrays and maps: entries (maps: keys + values) still due.
  uint64_t tag = 0;
  Value::Array items;
  Value::Map entries;
  std::optional<Value> key;  // A map key waiting for its value.
  Bytes bytes;
  std::string text;
};

Frame DefiniteFrame(Frame::Kind kind, uint64_t remaining) {
  Frame f;
  f.kind = kind;
  f.remaining = remaining;
  return f;
}

Frame IndefiniteFrame(Frame::Kind kind) {
  Frame f;
  f.kind = kind;
  f.indefinite = true;
  return f;
}

Frame TagFrame(uint64_t tag) {
  Frame f;
  f.kind = Frame::Kind::kTag;
  f.tag = tag;
  return f;
}

class Decoder {
 public:
  Decoder(ByteSpan data, const DecodeOptions& options) : data_(data), options_(options) {}

  Result<std::pair<Value, size_t>> Run() {
    while (!result_) {
      ASSIGN_OR_RETURN(Event ev, ReadHead());
      RETURN_IF_ERROR(Handle(ev));
    }
    return std::make_pair(std::move(*result_), pos_);
  }

 private:
  // ReadHead decodes the head at pos_ (and a definite string's contents) and advances past it.
  Result<Event> ReadHead() {
    if (pos_ >= data_.size()) {
      return Malformed("truncated");
    }
    const uint8_t initial = data_[pos_];
    const uint8_t info = initial & 0x1f;
    // RFC 8949 §3: additional information 28..30 is reserved in every major type.
    if (info >= 28 && info <= 30) {
      return Malformed("reserved additional information in " + HexByte(initial));
    }
    // libcbor 0.8 rejects tags 6..20 in the initial byte (0xc6..0xd4), and all simple values
    // other than false/true/null/undefined (0xe0..0xf3, 0xf8); decode those heads here.
    if (initial >= 0xc6 && initial <= 0xd4) {
      ++pos_;
      Event ev;
      Set(&ev, Event::Kind::kTag, info);
      return ev;
    }
    if (initial >= 0xe0 && initial <= 0xf3) {
      ++pos_;
      Event ev;
      Set(&ev, Event::Kind::kSimple, info);
      return ev;
    }
    if (initial == 0xf8) {
      if (data_.size() - pos_ < 2) {
        return Malformed("truncated");
      }
      const uint8_t simple = data_[pos_ + 1];
      // RFC 8949 §3.3: simple values below 32 must use the one-byte form.
      if (simple < 32) {
        return Malformed("two-byte simple value " + std::to_string(simple) + " below 32");
      }
      pos_ += 2;
      Event ev;
      Set(&ev, Event::Kind::kSimple, simple);
      return ev;
    }
    Event ev;
    const cbor_decoder_result r =
        cbor_stream_decode(data_.data() + pos_, data_.size() - pos_, &kCallbacks, &ev);
    switch (r.status) {
      case CBOR_DECODER_FINISHED:
        break;
      case CBOR_DECODER_NEDATA:
        return Malformed("truncated");
      case CBOR_DECODER_ERROR:
        // After the checks above, only info 31 on major types 0, 1 and 6 is left.
        if (info == 31) {
          return Malformed("indefinite length not allowed in " + HexByte(initial));
        }
        return Malformed("malformed head " + HexByte(initial));
    }
    // A libcbor bug must not crash the enclave, nor advance past the input.
    if (ev.kind == Event::Kind::kNone || r.read == 0 || r.read > data_.size() - pos_) {
      return Error(Code::kInternal, "cbor: libcbor reported no item at " + HexByte(initial));
    }
    pos_ += r.read;
    return ev;
  }

  Result<void> CountItem() {
    if (++items_ > options_.max_items) {
      return Error(Code::kLimitExceeded,
                   "cbor: more than " + std::to_string(options_.max_items) + " data items");
    }
    return Ok();
  }

  Result<void> CheckIndefiniteAllowed() const {
    if (!options_.allow_indefinite) {
      return Malformed("indefinite-length item not allowed");
    }
    return Ok();
  }

  // OpenContainer pushes an array, map or tag, enforcing max_depth.
  Result<void> OpenContainer(Frame frame) {
    if (depth_ >= options_.max_depth) {
      return Error(Code::kLimitExceeded,
                   "cbor: nesting deeper than " + std::to_string(options_.max_depth));
    }
    ++depth_;
    stack_.push_back(std::move(frame));
    return Ok();
  }

  // CheckCount fails fast when a declared count cannot fit in the bytes left: every item takes
  // at least one byte. Nothing is reserved from the count.
  Result<void> CheckCount(uint64_t count, uint64_t per_entry) const {
    const uint64_t left = data_.size() - pos_;
    if (count > left / per_entry) {
      return Malformed("truncated: declared " + std::to_string(count) + " entries, " +
                       std::to_string(left) + " bytes left");
    }
    if (count > options_.max_items / per_entry) {
      return Error(Code::kLimitExceeded,
                   "cbor: more than " + std::to_string(options_.max_items) + " data items");
    }
    return Ok();
  }

  Result<void> Handle(const Event& ev) {
    using Kind = Event::Kind;
    if (!stack_.empty() && (stack_.back().kind == Frame::Kind::kByteChunks ||
                            stack_.back().kind == Frame::Kind::kTextChunks)) {
      return HandleChunk(ev);
    }
    if (ev.kind == Kind::kBreak) {
      return HandleBreak();
    }
    RETURN_IF_ERROR(CountItem());
    switch (ev.kind) {
      case Kind::kUnsigned:
        return Emit(Value::Uint(ev.arg));
      case Kind::kNegative:
        return Emit(Value::NegInt(ev.arg));
      case Kind::kBytes:
        return Emit(Value::ByteString(ev.data));
      case Kind::kText:
        if (!IsValidUtf8(ev.data)) {
          return Malformed("invalid UTF-8 in text string");
        }
        return Emit(Value::TextString(AsString(ev.data)));
      case Kind::kBytesStart:
        RETURN_IF_ERROR(CheckIndefiniteAllowed());
        stack_.push_back(IndefiniteFrame(Frame::Kind::kByteChunks));
        return Ok();
      case Kind::kTextStart:
        RETURN_IF_ERROR(CheckIndefiniteAllowed());
        stack_.push_back(IndefiniteFrame(Frame::Kind::kTextChunks));
        return Ok();
      case Kind::kArray:
        RETURN_IF_ERROR(CheckCount(ev.arg, 1));
        RETURN_IF_ERROR(OpenContainer(DefiniteFrame(Frame::Kind::kArray, ev.arg)));
        return ev.arg == 0 ? CloseTop() : Ok();
      case Kind::kIndefiniteArray:
        RETURN_IF_ERROR(CheckIndefiniteAllowed());
        return OpenContainer(IndefiniteFrame(Frame::Kind::kArray));
      case Kind::kMap:
        RETURN_IF_ERROR(CheckCount(ev.arg, 2));
        RETURN_IF_ERROR(OpenContainer(DefiniteFrame(Frame::Kind::kMap, ev.arg * 2)));
        return ev.arg == 0 ? CloseTop() : Ok();
      case Kind::kIndefiniteMap:
        RETURN_IF_ERROR(CheckIndefiniteAllowed());
        return OpenContainer(IndefiniteFrame(Frame::Kind::kMap));
      case Kind::kTag:
        return OpenContainer(TagFrame(ev.arg));
      case Kind::kFloat:
        return Emit(Value::Double(ev.number));
      case Kind::kBool:
        return Emit(Value::Boolean(ev.arg != 0));
      case Kind::kNull:
        return Emit(Value::Null());
      case Kind::kUndefined:
        if (!options_.allow_undefined) {
          return Malformed("undefined not allowed");
        }
        return Emit(Value::Undefined());
      case Kind::kSimple:
        return Emit(Value::Simple(static_cast<uint8_t>(ev.arg)));
      case Kind::kNone:
      case Kind::kBreak:
        break;
    }
    return Error(Code::kInternal, "cbor: unexpected decoder event");
  }

  // HandleChunk takes the next piece of an indefinite-length string: a definite string of the
  // same major type, or the break that ends it (RFC 8949 §3.2.3).
  Result<void> HandleChunk(const Event& ev) {
    Frame& top = stack_.back();
    const bool text = top.kind == Frame::Kind::kTextChunks;
    if (ev.kind == Event::Kind::kBreak) {
      Value v = text ? Value::TextString(top.text) : Value::ByteString(std::move(top.bytes));
      stack_.pop_back();
      return Emit(std::move(v));
    }
    if (text && ev.kind == Event::Kind::kText) {
      // Each chunk must be valid UTF-8 on its own: chunks cannot split a character.
      if (!IsValidUtf8(ev.data)) {
        return Malformed("invalid UTF-8 in text string");
      }
      top.text.append(AsString(ev.data));
      return Ok();
    }
    if (!text && ev.kind == Event::Kind::kBytes) {
      top.bytes.insert(top.bytes.end(), ev.data.begin(), ev.data.end());
      return Ok();
    }
    return Malformed(std::string("indefinite-length ") + (text ? "text" : "byte") +
                     " string chunk is not a definite " + (text ? "text" : "byte") + " string");
  }

  Result<void> HandleBreak() {
    if (stack_.empty() || !stack_.back().indefinite) {
      return Malformed("break outside indefinite-length item");
    }
    if (stack_.back().key.has_value()) {
      return Malformed("break after a map key without its value");
    }
    return CloseTop();
  }

  // PopTop pops the finished array or map on top of the stack and returns it as a Value.
  Result<Value> PopTop() {
    Frame& top = stack_.back();
    Value v;
    if (top.kind == Frame::Kind::kArray) {
      v = Value::MakeArray(std::move(top.items));
    } else {
      ENCLAVIA_CHECK(top.kind == Frame::Kind::kMap);
      // Keys are compared by their deterministic encodings, so that keys equal in the data
      // model (e.g. maps with entries in another order) count as duplicates and a decoded map
      // always re-encodes to a valid one.
      if (!options_.allow_duplicate_keys && internal::HasDuplicateKeys(top.entries)) {
        return Malformed("duplicate map key");
      }
      v = Value::MakeMap(std::move(top.entries));
    }
    stack_.pop_back();
    --depth_;
    return v;
  }

  Result<void> CloseTop() {
    ASSIGN_OR_RETURN(Value v, PopTop());
    return Emit(std::move(v));
  }

  // Emit hands a complete item to the innermost open container, closing every container it
  // completes; with no container open, it is the result.
  Result<void> Emit(Value v) {
    while (!stack_.empty()) {
      Frame& top = stack_.back();
      switch (top.kind) {
        case Frame::Kind::kTag:
          v = Value::Tagged(top.tag, std::move(v));
          stack_.pop_back();
          --depth_;
          continue;
        case Frame::Kind::kArray:
          top.items.push_back(std::move(v));
          break;
        case Frame::Kind::kMap:
          if (!top.key.has_value()) {
            top.key = std::move(v);
          } else {
            top.entries.emplace_back(std::move(*top.key), std::move(v));
            top.key.reset();
          }
          break;
        case Frame::Kind::kByteChunks:
        case Frame::Kind::kTextChunks:
          return Error(Code::kInternal, "cbor: item inside a string");
      }
      if (top.indefinite || --top.remaining > 0) {
        return Ok();
      }
      ASSIGN_OR_RETURN(v, PopTop());
    }
    result_ = std::move(v);
    return Ok();
  }

  ByteSpan data_;
  const DecodeOptions& options_;
  size_t pos_ = 0;
  size_t items_ = 0;
  size_t depth_ = 0;  // Open arrays, maps and tags.
  std::vector<Frame> stack_;
  std::optional<Value> result_;
};

}  // namespace

Result<std::pair<Value, size_t>> DecodePrefix(ByteSpan data, const DecodeOptions& options) {
  // Only the first max_input_size bytes are looked at; an item running past them is over the
  // limit rather than truncated.
  const bool clipped = data.size() > options.max_input_size;
  auto result = Decoder(data.first(std::min(data.size(), options.max_input_size)), options).Run();
  if (!result && clipped && result.error().message().starts_with("cbor: truncated")) {
    return Error(Code::kLimitExceeded, "cbor: item longer than the limit of " +
                                           std::to_string(options.max_input_size) + " bytes");
  }
  return result;
}

Result<Value> Decode(ByteSpan data, const DecodeOptions& options) {
  if (data.size() > options.max_input_size) {
    return Error(Code::kLimitExceeded, "cbor: input of " + std::to_string(data.size()) +
                                           " bytes exceeds the limit of " +
                                           std::to_string(options.max_input_size));
  }
  ASSIGN_OR_RETURN(auto decoded, Decoder(data, options).Run());
  if (decoded.second != data.size()) {
    return Malformed("trailing bytes");
  }
  return std::move(decoded.first);
}

}  // namespace enclavia::cbor
