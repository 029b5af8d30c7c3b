// SPDX-License-Identifier: Apache-2.0
#include "lib/aws/kms_client.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/cms.h>
#include <openssl/rsa.h>

#include "lib/base/encoding.h"
#include "lib/crypto/ossl.h"
#include "lib/crypto/random.h"

namespace enclavia::aws {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kDocPrefix = "fake-attestation:";

// FakeNsm returns "fake-attestation:" + the requested public key as its "document", so the fake
// KMS can find the recipient key (a real document is CBOR; the client treats it as opaque).
class FakeNsm : public attestation::Nsm {
 public:
  Result<Bytes> Attestation(const attestation::AttestationRequest& request) override {
    ++calls;
    if (!request.public_key) {
      return Error(Code::kInvalidArgument, "no public key");
    }
    last_public_key = *request.public_key;
    return Concat({AsBytes(kDocPrefix), *request.public_key});
  }
  Result<attestation::PcrDescription> DescribePcr(uint16_t) override {
    return Error(Code::kUnsupported, "fake");
  }
  Result<Bytes> ExtendPcr(uint16_t, ByteSpan) override { return Error(Code::kUnsupported, "fake"); }
  Result<void> LockPcr(uint16_t) override { return Error(Code::kUnsupported, "fake"); }
  Result<void> LockPcrs(uint16_t) override { return Error(Code::kUnsupported, "fake"); }
  Result<attestation::NsmDescription> DescribeNsm() override {
    return Error(Code::kUnsupported, "fake");
  }
  Result<Bytes> GetRandom() override { return Error(Code::kUnsupported, "fake"); }

  int calls = 0;
  Bytes last_public_key;
};

struct CmsFree {
  void operator()(CMS_ContentInfo* p) const noexcept { CMS_ContentInfo_free(p); }
};

// Envelope builds what AWS KMS returns as CiphertextForRecipient: a CMS EnvelopedData to the RSA
// key `spki`, RSAES-OAEP with SHA-256, AES-256-CBC content. CMS names recipients by certificate,
// so the key goes into a throwaway certificate signed by an unrelated key (CMS does not check it).
Bytes Envelope(ByteSpan spki, ByteSpan plaintext) {
  const uint8_t* p = spki.data();
  ossl::Ptr<EVP_PKEY> pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
  ENCLAVIA_CHECK(pub != nullptr);
  ossl::Ptr<EVP_PKEY> signer(EVP_EC_gen("P-256"));
  ossl::Ptr<X509> cert(X509_new());
  ENCLAVIA_CHECK(X509_set_version(cert.get(), 2) == 1);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("recipient"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  ENCLAVIA_CHECK(X509_set_pubkey(cert.get(), pub.get()) == 1);
  ENCLAVIA_CHECK(X509_sign(cert.get(), signer.get(), EVP_sha256()) > 0);

  std::unique_ptr<CMS_ContentInfo, CmsFree> cms(
      CMS_encrypt(nullptr, nullptr, EVP_aes_256_cbc(), CMS_PARTIAL | CMS_BINARY));
  ENCLAVIA_CHECK(cms != nullptr);
  CMS_RecipientInfo* ri = CMS_add1_recipient_cert(cms.get(), cert.get(), CMS_KEY_PARAM);
  ENCLAVIA_CHECK(ri != nullptr);
  EVP_PKEY_CTX* pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
  ENCLAVIA_CHECK(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0);
  ENCLAVIA_CHECK(EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) > 0);
  ENCLAVIA_CHECK(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0);
  ossl::Ptr<BIO> in(BIO_new_mem_buf(plaintext.data(), static_cast<int>(plaintext.size())));
  ENCLAVIA_CHECK(CMS_final(cms.get(), in.get(), nullptr, CMS_BINARY) == 1);
  int n = i2d_CMS_ContentInfo(cms.get(), nullptr);
  ENCLAVIA_CHECK(n > 0);
  Bytes out(static_cast<size_t>(n));
  uint8_t* q = out.data();
  i2d_CMS_ContentInfo(cms.get(), &q);
  return out;
}

Bytes FreshRsaSpki() {
  ossl::Ptr<EVP_PKEY> key(EVP_RSA_gen(2048));
  int n = i2d_PUBKEY(key.get(), nullptr);
  Bytes out(static_cast<size_t>(n));
  uint8_t* p = out.data();
  i2d_PUBKEY(key.get(), &p);
  return out;
}

std::string HeaderOf(const HttpRequest& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) {
      return v;
    }
  }
  return "";
}

Credentials TestCredentials() {
  return Credentials{"AKIDEXAMPLE", crypto::SecretBytes(AsBytes("secret-key-for-tests")), ""};
}

class AwsKmsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = crypto::RandomBytes(kms::kDataKeySize);
    blob_ = ToBytes("opaque-ciphertext-blob");
    AwsKmsOptions options;
    options.region = "eu-west-1";
    options.credentials = [] { return TestCredentials(); };
    options.nsm = &nsm_;
    options.clock = [] { return FromUnixMillis(1700000000000); };
    options.transport = [this](const HttpRequest& r) { return Serve(r); };
    auto client = AwsKmsClient::Create(std::move(options));
    ASSERT_TRUE(client) << client.error().message();
    client_ = std::move(client).value();
  }

  // Serve is the fake AWS KMS: it checks the request and answers `reply_` (a function of the
  // request's recipient key).
  Result<HttpResponse> Serve(const HttpRequest& r) {
    ++requests_;
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.url, "https://kms.eu-west-1.amazonaws.com/");
    EXPECT_EQ(HeaderOf(r, "Host"), "kms.eu-west-1.amazonaws.com");
    EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/x-amz-json-1.1");
    target_ = HeaderOf(r, "X-Amz-Target");
    // The Authorization header must be the SigV4 signature of exactly this request.
    SigningRequest s;
    s.method = r.method;
    s.payload_hash = HexSha256(AsBytes(r.body));
    std::string authorization;
    for (const auto& h : r.headers) {
      if (h.first == "Authorization") {
        authorization = h.second;
      } else {
        s.headers.push_back(h);
      }
    }
    EXPECT_EQ(authorization.rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/kms/"
                                  "aws4_request, SignedHeaders=content-type;host;"
                                  "x-amz-content-sha256;x-amz-date;x-amz-target, Signature=",
                                  0),
              0u)
        << authorization;
    auto expected =
        Sign(TestCredentials(), Scope{HeaderOf(r, "X-Amz-Date"), "eu-west-1", "kms"}, s);
    EXPECT_TRUE(expected && expected->authorization == authorization);

    request_ = Json::parse(r.body, nullptr, false);
    EXPECT_TRUE(request_.is_object());
    if (target_ == "TrentService.Encrypt") {
      // KMS Encrypt takes no Recipient: no attestation, no key pair.
      EXPECT_FALSE(request_.contains("Recipient"));
      return reply_({});
    }
    const Json& recipient = request_["Recipient"];
    EXPECT_EQ(recipient["KeyEncryptionAlgorithm"], "RSAES_OAEP_SHA_256");
    auto doc = Base64Decode(recipient["AttestationDocument"].get<std::string>());
    EXPECT_TRUE(doc);
    EXPECT_EQ(AsString(*doc).substr(0, kDocPrefix.size()), kDocPrefix);
    Bytes spki(doc->begin() + static_cast<std::ptrdiff_t>(kDocPrefix.size()), doc->end());
    EXPECT_EQ(spki, nsm_.last_public_key);
    return reply_(spki);
  }

  // Good answers like AWS KMS does with Recipient: Plaintext null, the key in the envelope.
  std::function<Result<HttpResponse>(ByteSpan)> Good() {
    return [this](ByteSpan spki) -> Result<HttpResponse> {
      Json reply = {{"KeyId", "arn:aws:kms:eu-west-1:111122223333:key/abc"},
                    {"Plaintext", nullptr},
                    {"CiphertextForRecipient", Base64Encode(Envelope(spki, key_))}};
      if (target_ == "TrentService.GenerateDataKey") {
        reply["CiphertextBlob"] = Base64Encode(blob_);
      }
      return HttpResponse{200, {}, reply.dump()};
    };
  }

  FakeNsm nsm_;
  std::unique_ptr<AwsKmsClient> client_;
  Bytes key_;
  Bytes blob_;
  int requests_ = 0;
  std::string target_;
  Json request_;
  std::function<Result<HttpResponse>(ByteSpan)> reply_;
};

TEST_F(AwsKmsClientTest, GenerateDataKeyOpensTheRecipientEnvelope) {
  reply_ = Good();
  auto key = client_->GenerateDataKey("alias/enclavia-volume");
  ASSERT_TRUE(key) << key.error().message();
  EXPECT_EQ(target_, "TrentService.GenerateDataKey");
  EXPECT_EQ(request_["KeyId"], "alias/enclavia-volume");
  EXPECT_EQ(request_["KeySpec"], "AES_256");
  EXPECT_EQ(ToBytes(key->plaintext.Expose()), key_);
  EXPECT_EQ(key->ciphertext_blob, blob_);
  EXPECT_EQ(nsm_.calls, 1);
}

TEST_F(AwsKmsClientTest, DecryptSendsTheBlobAndUsesAFreshKeyPerCall) {
  reply_ = Good();
  auto first = client_->Decrypt(blob_);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(target_, "TrentService.Decrypt");
  EXPECT_EQ(request_["CiphertextBlob"], Base64Encode(blob_));
  EXPECT_EQ(ToBytes(first->Expose()), key_);
  Bytes first_spki = nsm_.last_public_key;
  ASSERT_TRUE(client_->Decrypt(blob_));
  EXPECT_NE(nsm_.last_public_key, first_spki);
}

TEST_F(AwsKmsClientTest, EncryptSendsThePlaintextAndReturnsTheBlob) {
  Bytes ring = crypto::RandomBytes(101);
  reply_ = [](ByteSpan) -> Result<HttpResponse> {
    Json reply = {{"KeyId", "arn:aws:kms:eu-west-1:111122223333:key/def"},
                  {"CiphertextBlob", Base64Encode(ToBytes("wrapped-ring"))},
                  {"EncryptionAlgorithm", "SYMMETRIC_DEFAULT"}};
    return HttpResponse{200, {}, reply.dump()};
  };
  auto blob = client_->Encrypt("alias/enclavia-successor", ring);
  ASSERT_TRUE(blob) << blob.error().message();
  EXPECT_EQ(*blob, ToBytes("wrapped-ring"));
  EXPECT_EQ(target_, "TrentService.Encrypt");
  EXPECT_EQ(request_["KeyId"], "alias/enclavia-successor");
  EXPECT_EQ(request_["Plaintext"], Base64Encode(ring));
  EXPECT_EQ(request_["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
  EXPECT_EQ(request_.size(), 3u);
  EXPECT_EQ(nsm_.calls, 0);

  EXPECT_EQ(client_->Encrypt("", ring).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(client_->Encrypt("k", {}).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(client_->Encrypt("k", Bytes(kms::kMaxPlaintextSize + 1)).error().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(requests_, 1);

  reply_ = [](ByteSpan) -> Result<HttpResponse> {
    return HttpResponse{400, {}, R"({"__type": "AccessDeniedException", "message": "no"})"};
  };
  EXPECT_EQ(client_->Encrypt("k", ring).error().code(), Code::kPolicyViolation);
  reply_ = [](ByteSpan) -> Result<HttpResponse> { return HttpResponse{200, {}, R"({"x": 1})"}; };
  EXPECT_EQ(client_->Encrypt("k", ring).error().code(), Code::kMalformed);
}

TEST_F(AwsKmsClientTest, DecryptOpensAKeyRingLargerThanADataKey) {
  key_ = crypto::RandomBytes(141);  // A key ring of three entries.
  reply_ = Good();
  auto ring = client_->Decrypt(blob_);
  ASSERT_TRUE(ring) << ring.error().message();
  EXPECT_EQ(ToBytes(ring->Expose()), key_);
  // GenerateDataKey still insists on 32 bytes.
  auto key = client_->GenerateDataKey("k");
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), Code::kVerifyFailed);
}

TEST_F(AwsKmsClientTest, TamperedEnvelopeIsVerifyFailed) {
  reply_ = [this](ByteSpan spki) -> Result<HttpResponse> {
    Bytes env = Envelope(spki, key_);
    env[env.size() - 17] ^= 0x01;  // Last byte of the penultimate AES block: breaks the padding.
    Json reply = {{"CiphertextForRecipient", Base64Encode(env)}, {"CiphertextBlob", "YWJj"}};
    return HttpResponse{200, {}, reply.dump()};
  };
  auto key = client_->GenerateDataKey("k");
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), Code::kVerifyFailed);
}

TEST_F(AwsKmsClientTest, EnvelopeToAnotherKeyIsVerifyFailed) {
  reply_ = [this](ByteSpan) -> Result<HttpResponse> {
    Json reply = {{"CiphertextForRecipient", Base64Encode(Envelope(FreshRsaSpki(), key_))}};
    return HttpResponse{200, {}, reply.dump()};
  };
  auto key = client_->Decrypt(blob_);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), Code::kVerifyFailed);
}

TEST_F(AwsKmsClientTest, GarbageEnvelopeIsVerifyFailed) {
  reply_ = [](ByteSpan) -> Result<HttpResponse> {
    return HttpResponse{200, {}, R"({"CiphertextForRecipient": "AAECAwQF"})"};
  };
  auto key = client_->Decrypt(blob_);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), Code::kVerifyFailed);
}

TEST_F(AwsKmsClientTest, AccessDeniedIsAPolicyViolationWithTheMessage) {
  reply_ = [](ByteSpan) -> Result<HttpResponse> {
    return HttpResponse{400, {}, R"({"__type": "AccessDeniedException",
        "message": "The attestation does not satisfy the key policy\n"})"};
  };
  auto key = client_->GenerateDataKey("k");
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), Code::kPolicyViolation);
  EXPECT_NE(key.error().message().find("AccessDeniedException"), std::string::npos);
  EXPECT_NE(key.error().message().find("does not satisfy"), std::string::npos);
  EXPECT_EQ(key.error().message().find('\n'), std::string::npos);
}

TEST_F(AwsKmsClientTest, InvalidCiphertextIsVerifyFailed) {
  reply_ = [](ByteSpan) -> Result<HttpResponse> {
    return HttpResponse{400, {}, R"({"__type": "com.amazonaws.kms#InvalidCiphertextException"})"};
  };
  auto key = client_->Decrypt(blob_);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), Code::kVerifyFailed);
}

TEST_F(AwsKmsClientTest, PlaintextInTheClearIsRefused) {
  reply_ = [this](ByteSpan spki) -> Result<HttpResponse> {
    Json reply = {{"Plaintext", Base64Encode(key_)},
                  {"CiphertextForRecipient", Base64Encode(Envelope(spki, key_))}};
    return HttpResponse{200, {}, reply.dump()};
  };
  auto key = client_->Decrypt(blob_);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), Code::kPolicyViolation);
}

TEST_F(AwsKmsClientTest, MalformedRepliesAreErrors) {
  for (std::string body : {"not json", "[]", R"({"CiphertextForRecipient": 5})",
                           R"({"CiphertextForRecipient": "***"})"}) {
    reply_ = [body](ByteSpan) -> Result<HttpResponse> { return HttpResponse{200, {}, body}; };
    auto key = client_->Decrypt(blob_);
    ASSERT_FALSE(key) << body;
    EXPECT_EQ(key.error().code(), Code::kMalformed) << body;
  }
}

TEST_F(AwsKmsClientTest, TransportAndServerErrorsAreUnavailable) {
  reply_ = [](ByteSpan) -> Result<HttpResponse> {
    return Error(Code::kUnavailable, "proxy: connection refused");
  };
  auto key = client_->Decrypt(blob_);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), Code::kUnavailable);
  EXPECT_NE(key.error().message().find("connection refused"), std::string::npos);

  reply_ = [](ByteSpan) -> Result<HttpResponse> { return HttpResponse{503, {}, "<html>"}; };
  key = client_->Decrypt(blob_);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code(), Code::kUnavailable);
}

TEST(AwsKmsClientCreateTest, RejectsIncompleteOptions) {
  EXPECT_FALSE(AwsKmsClient::Create(AwsKmsOptions{}));
  FakeNsm nsm;
  AwsKmsOptions options;
  options.region = "eu-west-1";
  options.credentials = [] { return TestCredentials(); };
  options.nsm = &nsm;
  options.transport = [](const HttpRequest&) -> Result<HttpResponse> { return HttpResponse{}; };
  options.endpoint = "ftp://kms";
  EXPECT_FALSE(AwsKmsClient::Create(std::move(options)));
}

}  // namespace
}  // namespace enclavia::aws
