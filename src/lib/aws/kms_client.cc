// SPDX-License-Identifier: Apache-2.0
#include "lib/aws/kms_client.h"

#include <limits>

#include <nlohmann/json.hpp>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "lib/crypto/ossl.h"

namespace enclavia::aws {

namespace {

using Json = nlohmann::json;

constexpr size_t kMaxReplySize = 1 << 20;
constexpr size_t kMaxShownMessage = 200;

// CMS_ContentInfo is freed here only: lib/crypto/ossl.h does not list the CMS types.
struct CmsFree {
  void operator()(CMS_ContentInfo* p) const noexcept { CMS_ContentInfo_free(p); }
};
using CmsPtr = std::unique_ptr<CMS_ContentInfo, CmsFree>;

// Printable keeps printable ASCII of an untrusted string, truncated, for one-line errors.
std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxShownMessage)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

Error OpensslFailure(Code code, std::string message) {
  ERR_clear_error();
  return Error(code, std::move(message));
}

// RecipientKey is the per-call RSA-2048 key pair of the Recipient parameter.
Result<ossl::Ptr<EVP_PKEY>> NewRecipientKey() {
  ossl::Ptr<EVP_PKEY> key(EVP_RSA_gen(2048));
  if (!key) {
    return OpensslFailure(Code::kInternal, "kms: cannot generate the recipient RSA key");
  }
  return key;
}

Result<Bytes> SpkiDer(EVP_PKEY* key) {
  int n = i2d_PUBKEY(key, nullptr);
  if (n <= 0) {
    return OpensslFailure(Code::kInternal, "kms: cannot encode the recipient public key");
  }
  Bytes out(static_cast<size_t>(n));
  uint8_t* p = out.data();
  if (i2d_PUBKEY(key, &p) != n) {
    return OpensslFailure(Code::kInternal, "kms: cannot encode the recipient public key");
  }
  return out;
}

// OpenEnvelope decrypts a CMS EnvelopedData (DER or BER ContentInfo) with `key`. Every failure is
// the same kVerifyFailed: the host chose these bytes.
Result<crypto::SecretBytes> OpenEnvelope(ByteSpan der, EVP_PKEY* key) {
  const Error failed(Code::kVerifyFailed, "kms: CiphertextForRecipient does not open");
  if (der.size() > static_cast<size_t>(std::numeric_limits<long>::max())) {
    return failed;
  }
  const uint8_t* p = der.data();
  CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));
  if (!cms || p != der.data() + der.size() ||
      OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_enveloped) {
    ERR_clear_error();
    return failed;
  }
  // A secure-memory BIO: the plaintext key is cleansed when the BIO is freed.
  ossl::Ptr<BIO> out(BIO_new(BIO_s_secmem()));
  if (!out) {
    return OpensslFailure(Code::kInternal, "kms: out of memory");
  }
  // cert == nullptr: try every recipient with `key` (OpenSSL then answers a random key for a
  // recipient that does not open, so this is no padding oracle; the key is single-use anyway).
  if (CMS_decrypt(cms.get(), key, nullptr, nullptr, out.get(), CMS_BINARY) != 1) {
    ERR_clear_error();
    return failed;
  }
  const uint8_t* data = nullptr;
  long size = BIO_get_mem_data(out.get(), &data);
  if (size <= 0 || size > static_cast<long>(kms::kMaxPlaintextSize) || data == nullptr) {
    return failed;
  }
  return crypto::SecretBytes(ByteSpan(data, static_cast<size_t>(size)));
}

// KmsError turns a KMS error reply ({"__type": "...#AccessDeniedException", "message": ...}) into
// an Error.
Error KmsError(std::string_view operation, const HttpResponse& response) {
  std::string type;
  std::string message;
  Json reply = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_object()) {
    auto t = reply.find("__type");
    if (t != reply.end() && t->is_string()) {
      type = t->get<std::string>();
      if (size_t hash = type.rfind('#'); hash != std::string::npos) {
        type = type.substr(hash + 1);
      }
    }
    for (const char* field : {"message", "Message"}) {
      auto m = reply.find(field);
      if (m != reply.end() && m->is_string()) {
        message = m->get<std::string>();
        break;
      }
    }
  }
  Code code = Code::kUnavailable;
  if (type == "AccessDeniedException") {
    code = Code::kPolicyViolation;
  } else if (type == "InvalidCiphertextException" || type == "IncorrectKeyException") {
    code = Code::kVerifyFailed;
  } else if (type == "NotFoundException") {
    code = Code::kNotFound;
  } else if (type == "DisabledException" || type == "KMSInvalidStateException" ||
             type == "KeyUnavailableException") {
    code = Code::kFailedPrecondition;
  } else if (type == "ValidationException" || type == "InvalidKeyUsageException" ||
             type == "InvalidGrantTokenException") {
    code = Code::kInvalidArgument;
  } else if (type.empty() && response.status >= 400 && response.status < 500 &&
             response.status != 429) {
    code = Code::kInternal;
  }
  std::string text = "kms " + std::string(operation) + ": HTTP " + std::to_string(response.status);
  if (!type.empty()) {
    text.append(" ").append(Printable(type));
  }
  if (!message.empty()) {
    text.append(": ").append(Printable(message));
  }
  return Error(code, std::move(text));
}

Result<Json> ParseReply(std::string_view operation, const std::string& body) {
  Json reply = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!reply.is_object()) {
    return Error(Code::kMalformed, "kms " + std::string(operation) + ": the reply is not JSON");
  }
  return reply;
}

Result<Bytes> Base64Field(const Json& reply, const char* name) {
  auto it = reply.find(name);
  if (it == reply.end() || !it->is_string()) {
    return Error(Code::kMalformed, std::string("kms: the reply has no ") + name);
  }
  auto decoded = Base64Decode(it->get_ref<const std::string&>());
  if (!decoded) {
    return Error(Code::kMalformed, std::string("kms: ") + name + " is not base64");
  }
  return std::move(decoded).value();
}

}  // namespace

Result<std::unique_ptr<AwsKmsClient>> AwsKmsClient::Create(AwsKmsOptions options) {
  if (options.region.empty() || !options.transport || !options.credentials ||
      options.nsm == nullptr) {
    return Error(Code::kInvalidArgument,
                 "kms: AwsKmsClient needs a region, a transport, credentials and an NSM");
  }
  if (options.endpoint.empty()) {
    options.endpoint = "https://kms." + options.region + ".amazonaws.com/";
  }
  std::string_view endpoint = options.endpoint;
  size_t scheme_end = endpoint.find("://");
  if (scheme_end == std::string_view::npos ||
      (endpoint.substr(0, scheme_end) != "https" && endpoint.substr(0, scheme_end) != "http")) {
    return Error(Code::kInvalidArgument, "kms: the endpoint must be an http(s) URL");
  }
  std::string_view rest = endpoint.substr(scheme_end + 3);
  std::string_view host = rest.substr(0, rest.find('/'));
  if (host.empty()) {
    return Error(Code::kInvalidArgument, "kms: the endpoint has no host");
  }
  if (!options.clock) {
    options.clock = [] { return std::chrono::system_clock::now(); };
  }
  auto client = std::unique_ptr<AwsKmsClient>(new AwsKmsClient(std::move(options)));
  client->host_ = std::string(host);
  client->url_ = std::string(endpoint.substr(0, scheme_end + 3)) + client->host_ + "/";
  return client;
}

Result<kms::DataKey> AwsKmsClient::Call(
    std::string_view operation, const std::vector<std::pair<std::string, std::string>>& fields) {
  ASSIGN_OR_RETURN(ossl::Ptr<EVP_PKEY> key, NewRecipientKey());
  ASSIGN_OR_RETURN(Bytes spki, SpkiDer(key.get()));
  Bytes document;
  {
    std::lock_guard lock(nsm_mu_);
    attestation::AttestationRequest request;
    request.public_key = std::move(spki);
    auto attested = options_.nsm->Attestation(request);
    if (!attested) {
      return std::move(attested).error().WithContext("kms: attestation");
    }
    document = std::move(attested).value();
  }

  Json body = Json::object();
  for (const auto& [name, value] : fields) {
    body[name] = value;
  }
  body["Recipient"] = {{"KeyEncryptionAlgorithm", "RSAES_OAEP_SHA_256"},
                       {"AttestationDocument", Base64Encode(document)}};
  ASSIGN_OR_RETURN(std::string text,
                   Post(operation, body.dump(-1, ' ', false, Json::error_handler_t::replace)));
  ASSIGN_OR_RETURN(Json reply, ParseReply(operation, text));
  // With Recipient, KMS leaves Plaintext null. A plaintext here crossed the host in the clear (or
  // the host made it up): never use it.
  if (auto plain = reply.find("Plaintext"); plain != reply.end() && !plain->is_null()) {
    return Error(Code::kPolicyViolation,
                 "kms " + std::string(operation) + ": the reply carries the key in the clear");
  }
  ASSIGN_OR_RETURN(Bytes envelope, Base64Field(reply, "CiphertextForRecipient"));
  ASSIGN_OR_RETURN(crypto::SecretBytes plaintext, OpenEnvelope(envelope, key.get()));
  kms::DataKey out{std::move(plaintext), {}};
  if (reply.contains("CiphertextBlob")) {
    ASSIGN_OR_RETURN(out.ciphertext_blob, Base64Field(reply, "CiphertextBlob"));
  }
  return out;
}

Result<std::string> AwsKmsClient::Post(std::string_view operation, std::string body) {
  HttpRequest http;
  http.method = "POST";
  http.url = url_;
  http.body = std::move(body);

  ASSIGN_OR_RETURN(Credentials credentials, options_.credentials());
  SigningRequest signing;
  signing.method = "POST";
  signing.path = "/";
  signing.payload_hash = HexSha256(AsBytes(http.body));
  signing.headers = {{"Host", host_},
                     {"Content-Type", "application/x-amz-json-1.1"},
                     {"X-Amz-Target", "TrentService." + std::string(operation)}};
  RETURN_IF_ERROR(SignRequest(credentials, options_.region, "kms", options_.clock(), signing));
  http.headers = std::move(signing.headers);

  auto sent = options_.transport(http);
  // An Encrypt body carries the key ring (base64): leave no copy behind.
  crypto::Cleanse(http.body.data(), http.body.size());
  if (!sent) {
    return std::move(sent).error().WithContext("kms " + std::string(operation));
  }
  const HttpResponse& response = *sent;
  if (response.body.size() > kMaxReplySize) {
    return Error(Code::kLimitExceeded, "kms " + std::string(operation) + ": reply too large");
  }
  if (response.status != 200) {
    return KmsError(operation, response);
  }
  return response.body;
}

Result<kms::DataKey> AwsKmsClient::GenerateDataKey(const std::string& key_id) {
  if (key_id.empty()) {
    return Error(Code::kInvalidArgument, "kms: empty key id");
  }
  ASSIGN_OR_RETURN(kms::DataKey key,
                   Call("GenerateDataKey", {{"KeyId", key_id}, {"KeySpec", "AES_256"}}));
  if (key.plaintext.size() != kms::kDataKeySize) {
    return Error(Code::kVerifyFailed, "kms: CiphertextForRecipient does not open");
  }
  if (key.ciphertext_blob.empty()) {
    return Error(Code::kMalformed, "kms GenerateDataKey: the reply has no CiphertextBlob");
  }
  return key;
}

Result<crypto::SecretBytes> AwsKmsClient::Decrypt(ByteSpan ciphertext_blob) {
  if (ciphertext_blob.empty()) {
    return Error(Code::kInvalidArgument, "kms: empty ciphertext blob");
  }
  ASSIGN_OR_RETURN(kms::DataKey key,
                   Call("Decrypt", {{"CiphertextBlob", Base64Encode(ciphertext_blob)}}));
  return std::move(key.plaintext);
}

Result<Bytes> AwsKmsClient::Encrypt(const std::string& key_id, ByteSpan plaintext) {
  if (key_id.empty()) {
    return Error(Code::kInvalidArgument, "kms: empty key id");
  }
  if (plaintext.empty() || plaintext.size() > kms::kMaxPlaintextSize) {
    return Error(Code::kInvalidArgument, "kms: plaintext must be 1..4096 bytes");
  }
  // AWS KMS's Encrypt takes no Recipient (and its attestation condition keys do not apply to
  // it): the plaintext travels inside the TLS session that ends in this enclave, and the key
  // policy decides who may Encrypt (docs/storage.md, "Re-keying").
  std::string encoded = Base64Encode(plaintext);
  Json body = {{"KeyId", key_id},
               {"Plaintext", encoded},
               {"EncryptionAlgorithm", "SYMMETRIC_DEFAULT"}};
  crypto::Cleanse(encoded.data(), encoded.size());
  std::string text = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  crypto::Cleanse(body["Plaintext"].get_ref<std::string&>().data(),
                  body["Plaintext"].get_ref<std::string&>().size());
  ASSIGN_OR_RETURN(std::string answer, Post("Encrypt", std::move(text)));
  ASSIGN_OR_RETURN(Json reply, ParseReply("Encrypt", answer));
  ASSIGN_OR_RETURN(Bytes blob, Base64Field(reply, "CiphertextBlob"));
  if (blob.empty()) {
    return Error(Code::kMalformed, "kms Encrypt: the reply has an empty CiphertextBlob");
  }
  return blob;
}

}  // namespace enclavia::aws
