// SPDX-License-Identifier: Apache-2.0
// Decode: internal::ReadHead reads one item head at a time; an explicit stack of open containers
// builds the Value, so the depth of the C++ stack does not depend on the input.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/cbor/cbor.h"
#include "lib/cbor/internal/head.h"
#include "lib/cbor/internal/keys.h"

namespace enclavia::cbor {
namespace {

Error Malformed(std::string_view message) {
  return {Code::kMalformed, "cbor: " + std::string(message)};
}

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

using Event = internal::Head;

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
    ASSIGN_OR_RETURN(Event ev, internal::ReadHead(data_.subspan(pos_)));
    ENCLAVIA_CHECK(ev.size > 0 && ev.size <= data_.size() - pos_);
    pos_ += ev.size;
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

Result<Value> DecodeDeterministicMap(ByteSpan data, DecodeOptions limits) {
  limits.allow_indefinite = false;
  limits.allow_undefined = false;
  auto value = Decode(data, limits);
  if (!value) {
    if (value.error().code() == Code::kLimitExceeded) {
      return std::move(value).error();
    }
    return Error(Code::kMalformed, "is not CBOR: " + value.error().message());
  }
  if (!value->is_map()) {
    return Error(Code::kMalformed, "is not a map");
  }
  if (Encode(*value) != Bytes(data.begin(), data.end())) {
    return Error(Code::kMalformed, "is not in deterministic encoding");
  }
  return value;
}

}  // namespace enclavia::cbor
