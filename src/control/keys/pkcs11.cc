// SPDX-License-Identifier: Apache-2.0
#include "control/keys/pkcs11.h"

#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include <p11-kit/pkcs11.h>

#include "lib/base/encoding.h"
#include "lib/crypto/hash.h"

namespace enclavia::control {

namespace {

constexpr std::string_view kScheme = "pkcs11:";
constexpr size_t kMaxUriSize = 4096;
constexpr CK_ULONG kMaxAttributeSize = 8192;
constexpr CK_ULONG kMaxSlots = 256;

// DER of the namedCurve OIDs (RFC 5480 §2.1.1.1) as CKA_EC_PARAMS holds them.
constexpr std::array<uint8_t, 10> kP256Oid = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                              0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::array<uint8_t, 7> kP384Oid = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
constexpr std::array<uint8_t, 7> kP521Oid = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};

Error UriError(std::string_view what) {
  return Error(Code::kInvalidArgument, std::string("pkcs11 URI: ").append(what));
}

// CkError is the one-line error for a failed PKCS#11 call.
Error CkError(std::string_view function, CK_RV rv) {
  Code code = Code::kFailedPrecondition;
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
      code = Code::kVerifyFailed;
      break;
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_TOKEN_NOT_RECOGNIZED:
      code = Code::kUnavailable;
      break;
    default:
      break;
  }
  return Error(code,
               std::string("pkcs11: ").append(function).append(": ").append(Pkcs11ReturnName(rv)));
}

Result<Bytes> PercentDecode(std::string_view text) {
  Bytes out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(static_cast<uint8_t>(text[i]));
      continue;
    }
    if (i + 2 >= text.size()) {
      return UriError("truncated percent-escape");
    }
    const int hi = HexDigitValue(text[i + 1]);
    const int lo = HexDigitValue(text[i + 2]);
    if (hi < 0 || lo < 0) {
      return UriError("bad percent-escape");
    }
    out.push_back(static_cast<uint8_t>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Result<std::string> DecodeText(std::string_view name, std::string_view value) {
  ASSIGN_OR_RETURN(Bytes bytes, PercentDecode(value));
  for (uint8_t b : bytes) {
    if (b == 0) {
      return UriError(std::string("NUL byte in ").append(name));
    }
  }
  return std::string(AsString(bytes));
}

// Split calls `fn(name, value)` for each "name=value" in `text`, separated by `sep`.
template <typename Fn>
Result<void> ForEachAttribute(std::string_view text, char sep, Fn fn) {
  while (!text.empty()) {
    const size_t end = text.find(sep);
    std::string_view item = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (item.empty()) {
      continue;
    }
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return UriError("expected name=value");
    }
    RETURN_IF_ERROR(fn(item.substr(0, eq), item.substr(eq + 1)));
  }
  return {};
}

// TokenField is a blank-padded CK_TOKEN_INFO field without its padding.
template <size_t N>
std::string TokenField(const unsigned char (&field)[N]) {
  size_t end = N;
  while (end > 0 && (field[end - 1] == ' ' || field[end - 1] == 0)) {
    --end;
  }
  return std::string(reinterpret_cast<const char*>(field), end);
}

std::string CurveName(ByteSpan params) {
  auto is = [&](auto oid) {
    return params.size() == oid.size() && std::equal(oid.begin(), oid.end(), params.begin());
  };
  if (is(kP256Oid)) {
    return "P-256";
  }
  if (is(kP384Oid)) {
    return "P-384 (secp384r1)";
  }
  if (is(kP521Oid)) {
    return "P-521 (secp521r1)";
  }
  return "an unknown curve (EC params " +
         HexEncode(params.first(std::min<size_t>(params.size(), 32))) + ")";
}

// Module owns a loaded PKCS#11 module: dlclose and, if this object initialized it, C_Finalize.
class Module {
 public:
  static Result<std::unique_ptr<Module>> Load(const std::string& path) {
    // RTLD_LOCAL|RTLD_NOW: a module's symbols never satisfy ours or another module's.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      return Error(Code::kNotFound, std::string("pkcs11: cannot load module ")
                                        .append(path)
                                        .append(": ")
                                        .append(why != nullptr ? why : "dlopen failed"));
    }
    auto module = std::make_unique<Module>(handle, path);
    void* sym = dlsym(handle, "C_GetFunctionList");
    if (sym == nullptr) {
      return Error(Code::kUnsupported, "pkcs11: " + path + " has no C_GetFunctionList");
    }
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(sym);
    CK_FUNCTION_LIST_PTR list = nullptr;
    if (CK_RV rv = get_list(&list); rv != CKR_OK) {
      return CkError("C_GetFunctionList", rv);
    }
    if (list == nullptr) {
      return Error(Code::kInternal, "pkcs11: C_GetFunctionList returned no list");
    }
    module->fn_ = list;
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = list->C_Initialize(&args);
    if (rv == CKR_OK) {
      module->finalize_ = true;
    } else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      return CkError("C_Initialize", rv);
    }
    return module;
  }

  Module(void* handle, std::string path) : handle_(handle), path_(std::move(path)) {}
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  ~Module() {
    if (finalize_ && fn_ != nullptr) {
      (void)fn_->C_Finalize(nullptr);
    }
    dlclose(handle_);
  }

  CK_FUNCTION_LIST_PTR fn() const { return fn_; }
  const std::string& path() const { return path_; }

 private:
  void* handle_;
  std::string path_;
  CK_FUNCTION_LIST_PTR fn_ = nullptr;
  bool finalize_ = false;
};

// Session owns a PKCS#11 session handle.
class Session {
 public:
  Session(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE handle) : fn_(fn), handle_(handle) {}
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() { (void)fn_->C_CloseSession(handle_); }
  CK_SESSION_HANDLE get() const { return handle_; }

 private:
  CK_FUNCTION_LIST_PTR fn_;
  CK_SESSION_HANDLE handle_;
};

// GetAttribute reads one attribute of `object`; nullopt when the object does not have it or it
// is sensitive.
Result<std::optional<Bytes>> GetAttribute(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE session,
                                          CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  CK_ATTRIBUTE attr{type, nullptr, 0};
  CK_RV rv = fn->C_GetAttributeValue(session, object, &attr, 1);
  if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
      attr.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
    return std::optional<Bytes>();
  }
  if (rv != CKR_OK) {
    return CkError("C_GetAttributeValue", rv);
  }
  if (attr.ulValueLen > kMaxAttributeSize) {
    return Error(Code::kLimitExceeded, "pkcs11: attribute too large");
  }
  Bytes value(attr.ulValueLen);
  attr.pValue = value.data();
  rv = fn->C_GetAttributeValue(session, object, &attr, 1);
  if (rv != CKR_OK) {
    return CkError("C_GetAttributeValue", rv);
  }
  value.resize(std::min<size_t>(value.size(), attr.ulValueLen));
  return std::optional<Bytes>(std::move(value));
}

// FindObjects returns up to `max` objects matching `tmpl`.
Result<std::vector<CK_OBJECT_HANDLE>> FindObjects(CK_FUNCTION_LIST_PTR fn,
                                                  CK_SESSION_HANDLE session,
                                                  std::vector<CK_ATTRIBUTE>& tmpl, CK_ULONG max) {
  CK_RV rv = fn->C_FindObjectsInit(session, tmpl.data(), static_cast<CK_ULONG>(tmpl.size()));
  if (rv != CKR_OK) {
    return CkError("C_FindObjectsInit", rv);
  }
  std::vector<CK_OBJECT_HANDLE> found(max);
  CK_ULONG count = 0;
  rv = fn->C_FindObjects(session, found.data(), max, &count);
  (void)fn->C_FindObjectsFinal(session);
  if (rv != CKR_OK) {
    return CkError("C_FindObjects", rv);
  }
  found.resize(std::min(count, max));
  return found;
}

// EcPointToRaw unwraps CKA_EC_POINT: a DER OCTET STRING holding 0x04||X||Y (PKCS#11 §2.3.3);
// some modules return the bare point.
Result<Bytes> EcPointToRaw(ByteSpan point) {
  if (point.size() == 65 && point[0] == 0x04) {
    return ToBytes(point);
  }
  if (point.size() == 67 && point[0] == 0x04 && point[1] == 0x41 && point[2] == 0x04) {
    return ToBytes(point.subspan(2));
  }
  return Error(Code::kMalformed,
               "pkcs11: unreadable CKA_EC_POINT (not an uncompressed P-256 point)");
}

class Pkcs11Signer final : public crypto::Signer {
 public:
  Pkcs11Signer(std::unique_ptr<Module> module, std::unique_ptr<Session> session,
               CK_OBJECT_HANDLE key, crypto::PublicKey public_key, std::string description,
               std::optional<crypto::SecretBytes> context_pin)
      : module_(std::move(module)),
        session_(std::move(session)),
        key_(key),
        public_key_(std::move(public_key)),
        description_(std::move(description)),
        context_pin_(std::move(context_pin)) {}
  ~Pkcs11Signer() override {
    session_.reset();  // Before the module finalizes.
  }
  Pkcs11Signer(const Pkcs11Signer&) = delete;
  Pkcs11Signer& operator=(const Pkcs11Signer&) = delete;

  crypto::SignatureAlgorithm algorithm() const override {
    return crypto::SignatureAlgorithm::kEcdsaP256Sha256;
  }
  const crypto::PublicKey& public_key() const override { return public_key_; }
  std::string Describe() const override { return description_; }

  Result<Bytes> Sign(ByteSpan message) const override {
    // CKM_ECDSA signs a digest the caller computed: ES256 is ECDSA over SHA-256(message).
    crypto::Sha256Digest digest = crypto::Sha256(message);
    CK_FUNCTION_LIST_PTR fn = module_->fn();
    std::lock_guard<std::mutex> lock(mu_);  // One operation at a time per session.
    CK_MECHANISM mechanism{CKM_ECDSA, nullptr, 0};
    CK_RV rv = fn->C_SignInit(session_->get(), &mechanism, key_);
    if (rv != CKR_OK) {
      return CkError("C_SignInit", rv);
    }
    if (context_pin_.has_value()) {
      // CKA_ALWAYS_AUTHENTICATE keys (a YubiKey PIV slot 9c) want the PIN for each signature.
      rv = fn->C_Login(session_->get(), CKU_CONTEXT_SPECIFIC,
                       const_cast<CK_UTF8CHAR_PTR>(context_pin_->Expose().data()),
                       static_cast<CK_ULONG>(context_pin_->size()));
      if (rv != CKR_OK) {
        (void)fn->C_SignInit(session_->get(), nullptr, key_);  // PKCS#11 3.0: cancel.
        return CkError("C_Login (context specific)", rv);
      }
    }
    std::array<uint8_t, 132> signature{};
    CK_ULONG size = signature.size();
    rv = fn->C_Sign(session_->get(), digest.data(), static_cast<CK_ULONG>(digest.size()),
                    signature.data(), &size);
    if (rv != CKR_OK) {
      return CkError("C_Sign", rv);
    }
    if (size != 64) {
      return Error(Code::kInternal,
                   "pkcs11: C_Sign returned " + std::to_string(size) + " bytes, not a P-256 r||s");
    }
    Bytes out(signature.begin(), signature.begin() + 64);
    // A module that pairs the private key with the wrong public key would make signatures that
    // no verifier accepts; say so here rather than in a genesis that never verifies.
    if (!public_key_.Verify(message, out)) {
      return Error(Code::kInternal,
                   "pkcs11: the token's signature does not verify with its public key object");
    }
    return out;
  }

 private:
  std::unique_ptr<Module> module_;
  std::unique_ptr<Session> session_;
  CK_OBJECT_HANDLE key_;
  crypto::PublicKey public_key_;
  std::string description_;
  std::optional<crypto::SecretBytes> context_pin_;
  mutable std::mutex mu_;
};

// FindSlot picks the one initialized token that matches the URI.
Result<std::pair<CK_SLOT_ID, std::string>> FindSlot(CK_FUNCTION_LIST_PTR fn, const Pkcs11Uri& uri,
                                                    const std::string& module_path) {
  CK_ULONG count = 0;
  CK_RV rv = fn->C_GetSlotList(CK_TRUE, nullptr, &count);
  if (rv != CKR_OK) {
    return CkError("C_GetSlotList", rv);
  }
  count = std::min(count, kMaxSlots);
  std::vector<CK_SLOT_ID> slots(count);
  rv = fn->C_GetSlotList(CK_TRUE, slots.data(), &count);
  if (rv != CKR_OK) {
    return CkError("C_GetSlotList", rv);
  }
  slots.resize(std::min<size_t>(count, slots.size()));
  std::vector<std::pair<CK_SLOT_ID, std::string>> matches;
  std::string seen;
  for (CK_SLOT_ID slot : slots) {
    if (uri.slot_id.has_value() && *uri.slot_id != slot) {
      continue;
    }
    CK_TOKEN_INFO info{};
    if (fn->C_GetTokenInfo(slot, &info) != CKR_OK || (info.flags & CKF_TOKEN_INITIALIZED) == 0) {
      continue;
    }
    std::string label = TokenField(info.label);
    seen.append(seen.empty() ? "'" : ", '").append(label).append("'");
    if ((!uri.token.empty() && uri.token != label) ||
        (!uri.manufacturer.empty() && uri.manufacturer != TokenField(info.manufacturerID)) ||
        (!uri.model.empty() && uri.model != TokenField(info.model)) ||
        (!uri.serial.empty() && uri.serial != TokenField(info.serialNumber))) {
      continue;
    }
    matches.emplace_back(slot, std::move(label));
  }
  if (matches.empty()) {
    std::string what = uri.token.empty() ? std::string("no initialized token")
                                         : std::string("no token '").append(uri.token).append("'");
    return Error(Code::kNotFound,
                 std::string("pkcs11: ")
                     .append(what)
                     .append(" in ")
                     .append(module_path)
                     .append(seen.empty() ? " (no tokens)" : " (tokens: " + seen + ")"));
  }
  if (matches.size() > 1) {
    return Error(Code::kInvalidArgument, "pkcs11: " + std::to_string(matches.size()) +
                                             " tokens match (" + seen +
                                             "); name one with token=… in the URI");
  }
  return matches.front();
}

// PinFor returns the PIN for `token`, or nullopt when none was given anywhere.
Result<std::optional<crypto::SecretBytes>> PinFor(const Pkcs11Uri& uri,
                                                  const PassphraseSource& source,
                                                  const std::string& token) {
  if (uri.pin_value.has_value()) {
    return std::optional<crypto::SecretBytes>(crypto::SecretBytes(uri.pin_value->Expose()));
  }
  PassphraseSource from = source;
  if (!uri.pin_source.empty()) {
    from.file = uri.pin_source;
  }
  auto pin = ReadSecret(from, kPkcs11PinEnv, "PIN for token '" + token + "'");
  if (!pin) {
    if (pin.error().code() == Code::kNotFound) {
      return std::optional<crypto::SecretBytes>();
    }
    return std::move(pin).error().WithContext("pkcs11");
  }
  return std::optional<crypto::SecretBytes>(std::move(*pin));
}

bool FileExists(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

}  // namespace

std::string Pkcs11ReturnName(unsigned long rv) {
  switch (rv) {
#define ENCLAVIA_CKR(name) \
  case name:               \
    return #name;
    ENCLAVIA_CKR(CKR_OK)
    ENCLAVIA_CKR(CKR_CANCEL)
    ENCLAVIA_CKR(CKR_HOST_MEMORY)
    ENCLAVIA_CKR(CKR_SLOT_ID_INVALID)
    ENCLAVIA_CKR(CKR_GENERAL_ERROR)
    ENCLAVIA_CKR(CKR_FUNCTION_FAILED)
    ENCLAVIA_CKR(CKR_ARGUMENTS_BAD)
    ENCLAVIA_CKR(CKR_NO_EVENT)
    ENCLAVIA_CKR(CKR_NEED_TO_CREATE_THREADS)
    ENCLAVIA_CKR(CKR_CANT_LOCK)
    ENCLAVIA_CKR(CKR_ATTRIBUTE_READ_ONLY)
    ENCLAVIA_CKR(CKR_ATTRIBUTE_SENSITIVE)
    ENCLAVIA_CKR(CKR_ATTRIBUTE_TYPE_INVALID)
    ENCLAVIA_CKR(CKR_ATTRIBUTE_VALUE_INVALID)
    ENCLAVIA_CKR(CKR_DATA_INVALID)
    ENCLAVIA_CKR(CKR_DATA_LEN_RANGE)
    ENCLAVIA_CKR(CKR_DEVICE_ERROR)
    ENCLAVIA_CKR(CKR_DEVICE_MEMORY)
    ENCLAVIA_CKR(CKR_DEVICE_REMOVED)
    ENCLAVIA_CKR(CKR_FUNCTION_CANCELED)
    ENCLAVIA_CKR(CKR_FUNCTION_NOT_PARALLEL)
    ENCLAVIA_CKR(CKR_FUNCTION_NOT_SUPPORTED)
    ENCLAVIA_CKR(CKR_KEY_HANDLE_INVALID)
    ENCLAVIA_CKR(CKR_KEY_SIZE_RANGE)
    ENCLAVIA_CKR(CKR_KEY_TYPE_INCONSISTENT)
    ENCLAVIA_CKR(CKR_KEY_FUNCTION_NOT_PERMITTED)
    ENCLAVIA_CKR(CKR_MECHANISM_INVALID)
    ENCLAVIA_CKR(CKR_MECHANISM_PARAM_INVALID)
    ENCLAVIA_CKR(CKR_OBJECT_HANDLE_INVALID)
    ENCLAVIA_CKR(CKR_OPERATION_ACTIVE)
    ENCLAVIA_CKR(CKR_OPERATION_NOT_INITIALIZED)
    ENCLAVIA_CKR(CKR_PIN_INCORRECT)
    ENCLAVIA_CKR(CKR_PIN_INVALID)
    ENCLAVIA_CKR(CKR_PIN_LEN_RANGE)
    ENCLAVIA_CKR(CKR_PIN_EXPIRED)
    ENCLAVIA_CKR(CKR_PIN_LOCKED)
    ENCLAVIA_CKR(CKR_SESSION_CLOSED)
    ENCLAVIA_CKR(CKR_SESSION_COUNT)
    ENCLAVIA_CKR(CKR_SESSION_HANDLE_INVALID)
    ENCLAVIA_CKR(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
    ENCLAVIA_CKR(CKR_SESSION_READ_ONLY)
    ENCLAVIA_CKR(CKR_SESSION_EXISTS)
    ENCLAVIA_CKR(CKR_SIGNATURE_INVALID)
    ENCLAVIA_CKR(CKR_SIGNATURE_LEN_RANGE)
    ENCLAVIA_CKR(CKR_TEMPLATE_INCOMPLETE)
    ENCLAVIA_CKR(CKR_TEMPLATE_INCONSISTENT)
    ENCLAVIA_CKR(CKR_TOKEN_NOT_PRESENT)
    ENCLAVIA_CKR(CKR_TOKEN_NOT_RECOGNIZED)
    ENCLAVIA_CKR(CKR_TOKEN_WRITE_PROTECTED)
    ENCLAVIA_CKR(CKR_USER_ALREADY_LOGGED_IN)
    ENCLAVIA_CKR(CKR_USER_NOT_LOGGED_IN)
    ENCLAVIA_CKR(CKR_USER_PIN_NOT_INITIALIZED)
    ENCLAVIA_CKR(CKR_USER_TYPE_INVALID)
    ENCLAVIA_CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
    ENCLAVIA_CKR(CKR_USER_TOO_MANY_TYPES)
    ENCLAVIA_CKR(CKR_BUFFER_TOO_SMALL)
    ENCLAVIA_CKR(CKR_CRYPTOKI_NOT_INITIALIZED)
    ENCLAVIA_CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED)
    ENCLAVIA_CKR(CKR_FUNCTION_REJECTED)
#undef ENCLAVIA_CKR
    default:
      break;
  }
  char hex[32];
  std::snprintf(hex, sizeof(hex), "CKR_0x%lx", rv);
  return hex;
}

Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view uri) {
  if (uri.size() > kMaxUriSize) {
    return UriError("too long");
  }
  if (uri.size() < kScheme.size() || strncasecmp(uri.data(), kScheme.data(), kScheme.size()) != 0) {
    return UriError("must start with pkcs11:");
  }
  uri.remove_prefix(kScheme.size());
  const size_t q = uri.find('?');
  std::string_view path = uri.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : uri.substr(q + 1);
  Pkcs11Uri out;
  std::vector<std::string> seen;
  auto once = [&](std::string_view name) -> Result<void> {
    for (const std::string& s : seen) {
      if (s == name) {
        return UriError(std::string("attribute '").append(name).append("' given twice"));
      }
    }
    seen.emplace_back(name);
    return {};
  };
  auto on_path = [&](std::string_view name, std::string_view value) -> Result<void> {
    RETURN_IF_ERROR(once(name));
    if (name == "token") {
      ASSIGN_OR_RETURN(out.token, DecodeText(name, value));
    } else if (name == "object") {
      ASSIGN_OR_RETURN(out.object, DecodeText(name, value));
    } else if (name == "id") {
      ASSIGN_OR_RETURN(Bytes id, PercentDecode(value));
      out.id = std::move(id);
    } else if (name == "manufacturer") {
      ASSIGN_OR_RETURN(out.manufacturer, DecodeText(name, value));
    } else if (name == "model") {
      ASSIGN_OR_RETURN(out.model, DecodeText(name, value));
    } else if (name == "serial") {
      ASSIGN_OR_RETURN(out.serial, DecodeText(name, value));
    } else if (name == "slot-id") {
      ASSIGN_OR_RETURN(std::string text, DecodeText(name, value));
      char* end = nullptr;
      errno = 0;
      const unsigned long id = std::strtoul(text.c_str(), &end, 10);
      if (text.empty() || end == nullptr || *end != '\0' || errno != 0 || text[0] == '-') {
        return UriError("slot-id must be a decimal number");
      }
      out.slot_id = id;
    } else if (name == "type") {
      if (value != "private") {
        return UriError("type must be 'private' (a control key is a private key)");
      }
    } else if (name == "library-description" || name == "library-manufacturer" ||
               name == "library-version" || name == "slot-description" ||
               name == "slot-manufacturer" || name.substr(0, 2) == "x-") {
      // Informational for our purposes: the module is chosen by module-path/module-name.
    } else {
      return UriError(std::string("unknown attribute '").append(name).append("'"));
    }
    return {};
  };
  auto on_query = [&](std::string_view name, std::string_view value) -> Result<void> {
    RETURN_IF_ERROR(once(name));
    if (name == "pin-value") {
      ASSIGN_OR_RETURN(Bytes pin, PercentDecode(value));
      out.pin_value = crypto::SecretBytes(pin);
      crypto::Cleanse(pin.data(), pin.size());
    } else if (name == "pin-source") {
      ASSIGN_OR_RETURN(std::string source, DecodeText(name, value));
      if (source.rfind("file://", 0) == 0) {
        source.erase(0, 7);
      } else if (source.rfind("file:", 0) == 0) {
        source.erase(0, 5);
      }
      if (source.empty() || source[0] != '/') {
        return UriError("pin-source must be file:/ABSOLUTE/PATH");
      }
      out.pin_source = std::move(source);
    } else if (name == "module-path") {
      ASSIGN_OR_RETURN(out.module_path, DecodeText(name, value));
    } else if (name == "module-name") {
      ASSIGN_OR_RETURN(out.module_name, DecodeText(name, value));
      if (out.module_name.find('/') != std::string::npos) {
        return UriError("module-name is a name, not a path (use module-path=)");
      }
    } else if (name.substr(0, 2) != "x-") {
      return UriError(std::string("unknown query attribute '").append(name).append("'"));
    }
    return {};
  };
  RETURN_IF_ERROR(ForEachAttribute(path, ';', on_path));
  RETURN_IF_ERROR(ForEachAttribute(query, '&', on_query));
  return out;
}

Result<std::string> ResolvePkcs11Module(const Pkcs11Uri& uri) {
  if (!uri.module_path.empty()) {
    return uri.module_path;
  }
  if (!uri.module_name.empty()) {
    std::string file = uri.module_name;
    if (file.size() < 3 || file.compare(file.size() - 3, 3, ".so") != 0) {
      file.append(".so");
    }
    for (const char* dir :
         {"/usr/lib/x86_64-linux-gnu/pkcs11/", "/usr/lib/aarch64-linux-gnu/pkcs11/",
          "/usr/lib/pkcs11/", "/usr/local/lib/pkcs11/"}) {
      std::string candidate = std::string(dir).append(file);
      if (FileExists(candidate)) {
        return candidate;
      }
    }
    return Error(Code::kNotFound,
                 "pkcs11: module-name=" + uri.module_name +
                     " not found in the p11-kit module directories; use module-path=");
  }
  if (const char* env = std::getenv(kPkcs11ModuleEnv); env != nullptr && env[0] != '\0') {
    return std::string(env);
  }
  for (const char* candidate :
       {"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"}) {
    if (FileExists(candidate)) {
      return std::string(candidate);
    }
  }
  return Error(Code::kNotFound,
               std::string("pkcs11: no module: add module-path=… to the URI or set ")
                   .append(kPkcs11ModuleEnv));
}

Result<std::unique_ptr<crypto::Signer>> OpenPkcs11Key(std::string_view uri_text,
                                                      const PassphraseSource& passphrase) {
  ASSIGN_OR_RETURN(Pkcs11Uri uri, ParsePkcs11Uri(uri_text));
  ASSIGN_OR_RETURN(std::string module_path, ResolvePkcs11Module(uri));
  ASSIGN_OR_RETURN(std::unique_ptr<Module> module, Module::Load(module_path));
  CK_FUNCTION_LIST_PTR fn = module->fn();
  ASSIGN_OR_RETURN(auto slot, FindSlot(fn, uri, module_path));
  const std::string& token = slot.second;

  CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
  if (CK_RV rv = fn->C_OpenSession(slot.first, CKF_SERIAL_SESSION, nullptr, nullptr, &handle);
      rv != CKR_OK) {
    return CkError("C_OpenSession", rv);
  }
  auto session = std::make_unique<Session>(fn, handle);

  CK_TOKEN_INFO info{};
  if (CK_RV rv = fn->C_GetTokenInfo(slot.first, &info); rv != CKR_OK) {
    return CkError("C_GetTokenInfo", rv);
  }
  ASSIGN_OR_RETURN(std::optional<crypto::SecretBytes> pin, PinFor(uri, passphrase, token));
  if (pin.has_value()) {
    CK_RV rv =
        fn->C_Login(session->get(), CKU_USER, const_cast<CK_UTF8CHAR_PTR>(pin->Expose().data()),
                    static_cast<CK_ULONG>(pin->size()));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
      return CkError("C_Login", rv);
    }
  } else if ((info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0) {
    // A PIN pad or a touch: the token asks for itself.
    CK_RV rv = fn->C_Login(session->get(), CKU_USER, nullptr, 0);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
      return CkError("C_Login", rv);
    }
  } else if ((info.flags & CKF_LOGIN_REQUIRED) != 0) {
    return Error(Code::kFailedPrecondition,
                 std::string("pkcs11: token '")
                     .append(token)
                     .append("' needs a PIN: add pin-value= or pin-source= to the URI, or set ")
                     .append(kPkcs11PinEnv));
  }

  // The private key: by label and/or id.
  CK_OBJECT_CLASS private_class = CKO_PRIVATE_KEY;
  std::vector<CK_ATTRIBUTE> tmpl{{CKA_CLASS, &private_class, sizeof(private_class)}};
  Bytes id_copy = uri.id.value_or(Bytes());
  std::string label_copy = uri.object;
  if (!label_copy.empty()) {
    tmpl.push_back({CKA_LABEL, label_copy.data(), static_cast<CK_ULONG>(label_copy.size())});
  }
  if (uri.id.has_value()) {
    tmpl.push_back({CKA_ID, id_copy.data(), static_cast<CK_ULONG>(id_copy.size())});
  }
  std::string key_name;
  if (!uri.object.empty()) {
    key_name = "object=" + uri.object;
  }
  if (uri.id.has_value()) {
    key_name.append(key_name.empty() ? "" : " ").append("id=").append(HexEncode(*uri.id));
  }
  if (key_name.empty()) {
    key_name = "(any)";
  }
  ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> keys, FindObjects(fn, session->get(), tmpl, 2));
  if (keys.empty()) {
    return Error(Code::kNotFound, "pkcs11: no private key " + key_name + " on token '" + token +
                                      "'" + (pin.has_value() ? "" : " (not logged in: no PIN)"));
  }
  if (keys.size() > 1) {
    return Error(Code::kInvalidArgument, "pkcs11: several private keys match " + key_name +
                                             " on token '" + token + "'; add object= or id=");
  }
  const CK_OBJECT_HANDLE key = keys.front();

  ASSIGN_OR_RETURN(std::optional<Bytes> key_type,
                   GetAttribute(fn, session->get(), key, CKA_KEY_TYPE));
  CK_KEY_TYPE type = CKK_EC + 1;
  if (key_type.has_value() && key_type->size() == sizeof(CK_KEY_TYPE)) {
    std::memcpy(&type, key_type->data(), sizeof(type));
  }
  if (type != CKK_EC) {
    return Error(Code::kUnsupported, "pkcs11: key " + key_name +
                                         " is not an EC key (only P-256 keys are control keys)");
  }
  ASSIGN_OR_RETURN(std::optional<Bytes> key_id, GetAttribute(fn, session->get(), key, CKA_ID));
  ASSIGN_OR_RETURN(std::optional<Bytes> key_label,
                   GetAttribute(fn, session->get(), key, CKA_LABEL));
  ASSIGN_OR_RETURN(std::optional<Bytes> always_auth,
                   GetAttribute(fn, session->get(), key, CKA_ALWAYS_AUTHENTICATE));
  const bool needs_context_login =
      always_auth.has_value() && always_auth->size() == 1 && (*always_auth)[0] != 0;
  if (needs_context_login && !pin.has_value()) {
    return Error(Code::kFailedPrecondition,
                 "pkcs11: key " + key_name + " needs the PIN for every signature; give a PIN");
  }

  // Its public half: the CKO_PUBLIC_KEY with the same CKA_ID (else the same label).
  CK_OBJECT_CLASS public_class = CKO_PUBLIC_KEY;
  std::vector<CK_ATTRIBUTE> pub_tmpl{{CKA_CLASS, &public_class, sizeof(public_class)}};
  if (key_id.has_value() && !key_id->empty()) {
    pub_tmpl.push_back({CKA_ID, key_id->data(), static_cast<CK_ULONG>(key_id->size())});
  } else if (key_label.has_value() && !key_label->empty()) {
    pub_tmpl.push_back({CKA_LABEL, key_label->data(), static_cast<CK_ULONG>(key_label->size())});
  } else {
    return Error(
        Code::kNotFound,
        "pkcs11: key " + key_name + " has neither CKA_ID nor CKA_LABEL to find its public key by");
  }
  ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> pubs,
                   FindObjects(fn, session->get(), pub_tmpl, 2));
  if (pubs.size() != 1) {
    return Error(Code::kNotFound, std::string("pkcs11: ")
                                      .append(pubs.empty() ? "no" : "more than one")
                                      .append(" public key object for ")
                                      .append(key_name)
                                      .append(" on token '")
                                      .append(token)
                                      .append("'"));
  }
  ASSIGN_OR_RETURN(std::optional<Bytes> params,
                   GetAttribute(fn, session->get(), pubs.front(), CKA_EC_PARAMS));
  if (!params.has_value()) {
    return Error(Code::kMalformed, "pkcs11: public key " + key_name + " has no CKA_EC_PARAMS");
  }
  if (!(params->size() == kP256Oid.size() &&
        std::equal(kP256Oid.begin(), kP256Oid.end(), params->begin()))) {
    return Error(Code::kUnsupported, "pkcs11: key " + key_name + " is on " + CurveName(*params) +
                                         "; control keys must be P-256");
  }
  ASSIGN_OR_RETURN(std::optional<Bytes> point,
                   GetAttribute(fn, session->get(), pubs.front(), CKA_EC_POINT));
  if (!point.has_value()) {
    return Error(Code::kMalformed, "pkcs11: public key " + key_name + " has no CKA_EC_POINT");
  }
  ASSIGN_OR_RETURN(Bytes raw_point, EcPointToRaw(*point));
  auto public_key =
      crypto::PublicKey::FromRaw(crypto::SignatureAlgorithm::kEcdsaP256Sha256, raw_point);
  if (!public_key) {
    return Error(Code::kMalformed,
                 "pkcs11: public key " + key_name + ": " + public_key.error().message());
  }

  std::string description = "pkcs11 token '" + token + "' " + key_name;
  std::optional<crypto::SecretBytes> context_pin;
  if (needs_context_login) {
    context_pin = std::move(pin);
  }
  return std::unique_ptr<crypto::Signer>(std::make_unique<Pkcs11Signer>(
      std::move(module), std::move(session), key, std::move(*public_key), std::move(description),
      std::move(context_pin)));
}

}  // namespace enclavia::control
