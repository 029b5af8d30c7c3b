// SPDX-License-Identifier: Apache-2.0
#include "lib/kms/envelope.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "lib/crypto/random.h"

namespace enclavia::kms {
namespace {

// FakeKms keeps plaintexts by blob (a counter): enough to test the envelope, which trusts the
// KMS for the attestation check and nothing else.
class FakeKms : public Kms {
 public:
  Result<DataKey> GenerateDataKey(const std::string& key_id) override {
    DataKey key;
    key.plaintext = crypto::SecretBytes(crypto::RandomBytes(kDataKeySize));
    key.ciphertext_blob = Remember(key_id, key.plaintext.Expose());
    ++generated;
    return key;
  }
  Result<crypto::SecretBytes> Decrypt(ByteSpan blob) override {
    auto it = plaintexts_.find(std::string(blob.begin(), blob.end()));
    if (it == plaintexts_.end()) {
      return Error(Code::kVerifyFailed, "kms: not a blob of ours");
    }
    return crypto::SecretBytes(it->second);
  }
  Result<Bytes> Encrypt(const std::string& key_id, ByteSpan plaintext) override {
    return Remember(key_id, plaintext);
  }
  int generated = 0;

 private:
  Bytes Remember(const std::string& key_id, ByteSpan plaintext) {
    Bytes blob(key_id.begin(), key_id.end());
    blob.push_back(static_cast<uint8_t>(plaintexts_.size()));
    plaintexts_[std::string(blob.begin(), blob.end())] = Bytes(plaintext.begin(), plaintext.end());
    return blob;
  }
  std::map<std::string, Bytes> plaintexts_;  // By blob.
};

KeyRing TwoEntryRing() {
  KeyRing ring;
  ring.entries.push_back({0, crypto::SecretBytes(Bytes(kDataKeySize, 0x11))});
  ring.entries.push_back({3, crypto::SecretBytes(Bytes(kDataKeySize, 0x22))});
  return ring;
}

TEST(KeyRingEnvelopeTest, SealsWithAFreshDataKeyAndOpens) {
  FakeKms kms;
  auto sealed = SealKeyRing(kms, "vol", TwoEntryRing());
  ASSERT_TRUE(sealed) << sealed.error().message();
  EXPECT_EQ(kms.generated, 1);
  // The ring's secrets never appear in the stored bytes.
  const std::string stored(sealed->begin(), sealed->end());
  EXPECT_EQ(stored.find(std::string(kDataKeySize, '\x22')), std::string::npos);
  auto opened = OpenKeyRing(kms, *sealed);
  ASSERT_TRUE(opened) << opened.error().message();
  ASSERT_EQ(opened->entries.size(), 2u);
  EXPECT_EQ(opened->entries[1].first_epoch, 3u);
  EXPECT_EQ(opened->entries[1].secret.Expose()[0], 0x22);
}

TEST(KeyRingEnvelopeTest, OpensABareDataKeyFromBeforeUpgrades) {
  FakeKms kms;
  auto key = kms.GenerateDataKey("vol");
  ASSERT_TRUE(key);
  auto opened = OpenKeyRing(kms, key->ciphertext_blob);
  ASSERT_TRUE(opened) << opened.error().message();
  ASSERT_EQ(opened->entries.size(), 1u);
  EXPECT_EQ(opened->entries[0].first_epoch, 0u);
}

TEST(KeyRingEnvelopeTest, RefusesABareBlobHoldingARingThatEncryptCouldHaveMade) {
  // What a host allowed to call kms:Encrypt could store: a ring of its choosing, bare.
  FakeKms kms;
  auto blob = kms.Encrypt("vol", EncodeKeyRing(TwoEntryRing()).Expose());
  ASSERT_TRUE(blob);
  auto opened = OpenKeyRing(kms, *blob);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code(), Code::kMalformed);
}

TEST(KeyRingEnvelopeTest, RefusesAlteredAndTruncatedEnvelopes) {
  FakeKms kms;
  auto sealed = SealKeyRing(kms, "vol", TwoEntryRing());
  ASSERT_TRUE(sealed);
  Bytes flipped = *sealed;
  flipped.back() ^= 1;
  auto opened = OpenKeyRing(kms, flipped);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code(), Code::kVerifyFailed);
  for (size_t cut : {size_t{10}, size_t{31}, size_t{34}, sealed->size() - 20}) {
    auto truncated = OpenKeyRing(kms, ByteSpan(*sealed).first(cut));
    ASSERT_FALSE(truncated) << cut;
    EXPECT_NE(truncated.error().code(), Code::kOk);
  }
}

}  // namespace
}  // namespace enclavia::kms
