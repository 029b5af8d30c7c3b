// SPDX-License-Identifier: Apache-2.0
#include "lib/noise/noise.h"

#include <sodium.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <algorithm>
#include <openssl/evp.h>

#include "lib/base/encoding.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"
#include "lib/noise/internal/hash.h"

namespace enclavia::noise {
namespace {

class CryptoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(crypto::Init()); }
};
class HandshakeTest : public CryptoTest {};
class TransportSessionTest : public CryptoTest {};
class CipherStateTest : public CryptoTest {};
class NoiseHashTest : public CryptoTest {};

// Config builds a HandshakeConfig field by field: GCC 12's -Wmissing-field-initializers fires on
// designated initializers that leave members to their defaults.
HandshakeConfig Config(Pattern pattern, Role role, const crypto::X25519Keypair* local_static,
                       std::optional<crypto::X25519PublicKey> remote_static = std::nullopt,
                       std::string_view prologue = "", Hash hash = Hash::kBlake2b) {
  HandshakeConfig config;
  config.pattern = pattern;
  config.hash = hash;
  config.role = role;
  config.prologue = AsBytes(prologue);
  config.local_static = local_static;
  config.remote_static = remote_static;
  return config;
}

// Peers holds both sides' static keys.
struct Peers {
  crypto::X25519Keypair initiator_static = crypto::X25519Keypair::Generate();
  crypto::X25519Keypair responder_static = crypto::X25519Keypair::Generate();
};

// Initiator and Responder build the two sides of a handshake between `peers`.
Handshake Initiator(const Peers& peers, Pattern pattern = Pattern::kXX,
                    std::string_view prologue = "enclavia", Hash hash = Hash::kBlake2b) {
  return Handshake::Create(Config(pattern, Role::kInitiator,
                                  pattern != Pattern::kNX ? &peers.initiator_static : nullptr,
                                  pattern == Pattern::kIK
                                      ? std::optional(peers.responder_static.public_key)
                                      : std::nullopt,
                                  prologue, hash))
      .value();
}

Handshake Responder(const Peers& peers, Pattern pattern = Pattern::kXX,
                    std::string_view prologue = "enclavia", Hash hash = Hash::kBlake2b) {
  return Handshake::Create(Config(pattern, Role::kResponder, &peers.responder_static, std::nullopt,
                                  prologue, hash))
      .value();
}

struct Sessions {
  TransportSession initiator;
  TransportSession responder;
};

// RunXX completes an XX handshake and splits both sides.
Sessions RunXX(const Peers& peers, Hash hash = Hash::kBlake2b) {
  Handshake i = Initiator(peers, Pattern::kXX, "enclavia", hash);
  Handshake r = Responder(peers, Pattern::kXX, "enclavia", hash);
  Bytes m1 = i.WriteMessage(AsBytes("hello")).value();
  EXPECT_EQ(AsString(r.ReadMessage(m1).value()), "hello");
  Bytes m2 = r.WriteMessage(AsBytes("server")).value();
  EXPECT_EQ(AsString(i.ReadMessage(m2).value()), "server");
  Bytes m3 = i.WriteMessage(AsBytes("client")).value();
  EXPECT_EQ(AsString(r.ReadMessage(m3).value()), "client");
  return {std::move(i).Split().value(), std::move(r).Split().value()};
}

// XXUpToMessage2 returns an initiator waiting for message 2, and message 2.
std::pair<Handshake, Bytes> XXUpToMessage2(const Peers& peers) {
  Handshake i = Initiator(peers);
  Handshake r = Responder(peers);
  Bytes m1 = i.WriteMessage({}).value();
  EXPECT_TRUE(r.ReadMessage(m1));
  Bytes m2 = r.WriteMessage(AsBytes("payload")).value();
  return {std::move(i), std::move(m2)};
}

TEST(ProtocolNameTest, NamesFollowSection8) {
  EXPECT_EQ(ProtocolName(Pattern::kXX, Hash::kBlake2b), "Noise_XX_25519_ChaChaPoly_BLAKE2b");
  EXPECT_EQ(ProtocolName(Pattern::kNX, Hash::kBlake2s), "Noise_NX_25519_ChaChaPoly_BLAKE2s");
  EXPECT_EQ(ProtocolName(Pattern::kIK, Hash::kSha256), "Noise_IK_25519_ChaChaPoly_SHA256");
  EXPECT_EQ(ProtocolName(Pattern::kXX, Hash::kSha512), "Noise_XX_25519_ChaChaPoly_SHA512");
}

TEST_F(HandshakeTest, XXCompletesWithEqualHashesAndPeerStaticKeys) {
  for (Hash hash : {Hash::kBlake2b, Hash::kBlake2s, Hash::kSha256, Hash::kSha512}) {
    SCOPED_TRACE(ProtocolName(Pattern::kXX, hash));
    Peers peers;
    Handshake i = Initiator(peers, Pattern::kXX, "p", hash);
    Handshake r = Responder(peers, Pattern::kXX, "p", hash);
    EXPECT_TRUE(i.is_my_turn());
    EXPECT_FALSE(r.is_my_turn());
    EXPECT_FALSE(i.local_ephemeral());
    EXPECT_FALSE(i.remote_static());
    ASSERT_TRUE(r.ReadMessage(i.WriteMessage({}).value()));
    ASSERT_TRUE(i.ReadMessage(r.WriteMessage({}).value()));
    EXPECT_FALSE(r.complete());
    ASSERT_TRUE(r.ReadMessage(i.WriteMessage({}).value()));
    ASSERT_TRUE(i.complete() && r.complete());
    EXPECT_FALSE(i.is_my_turn() || r.is_my_turn());
    EXPECT_EQ(i.remote_static(), peers.responder_static.public_key);
    EXPECT_EQ(r.remote_static(), peers.initiator_static.public_key);
    EXPECT_EQ(i.local_ephemeral(), r.remote_ephemeral());
    EXPECT_EQ(r.local_ephemeral(), i.remote_ephemeral());
    EXPECT_NE(i.local_ephemeral(), r.local_ephemeral());
    EXPECT_EQ(i.handshake_hash(), r.handshake_hash());
    EXPECT_EQ(i.handshake_hash().size(), internal::HashLen(hash));
    auto si = std::move(i).Split();
    auto sr = std::move(r).Split();
    ASSERT_TRUE(si && sr);
    EXPECT_EQ(si->handshake_hash(), sr->handshake_hash());
    EXPECT_EQ(si->remote_static(), peers.responder_static.public_key);
    EXPECT_EQ(sr->remote_static(), peers.initiator_static.public_key);
    EXPECT_EQ(AsString(sr->Decrypt(si->Encrypt(AsBytes("ping")).value()).value()), "ping");
    EXPECT_EQ(AsString(si->Decrypt(sr->Encrypt(AsBytes("pong")).value()).value()), "pong");
  }
}

TEST_F(HandshakeTest, NXAndIKComplete) {
  for (Pattern pattern : {Pattern::kNX, Pattern::kIK}) {
    SCOPED_TRACE(ProtocolName(pattern, Hash::kBlake2b));
    Peers peers;
    Handshake i = Initiator(peers, pattern);
    Handshake r = Responder(peers, pattern);
    EXPECT_EQ(AsString(r.ReadMessage(i.WriteMessage(AsBytes("1")).value()).value()), "1");
    EXPECT_EQ(AsString(i.ReadMessage(r.WriteMessage(AsBytes("2")).value()).value()), "2");
    ASSERT_TRUE(i.complete() && r.complete());
    EXPECT_EQ(i.handshake_hash(), r.handshake_hash());
    EXPECT_EQ(i.remote_static(), peers.responder_static.public_key);
    if (pattern == Pattern::kIK) {
      EXPECT_EQ(r.remote_static(), peers.initiator_static.public_key);
    } else {
      EXPECT_FALSE(r.remote_static());
    }
    auto si = std::move(i).Split();
    auto sr = std::move(r).Split();
    ASSERT_TRUE(si && sr);
    EXPECT_EQ(AsString(sr->Decrypt(si->Encrypt(AsBytes("x")).value()).value()), "x");
  }
}

TEST_F(HandshakeTest, IKInitiatorWithWrongResponderKeyFails) {
  Peers peers;
  Peers other;
  Handshake i = Handshake::Create(Config(Pattern::kIK, Role::kInitiator, &peers.initiator_static,
                                         other.responder_static.public_key))
                    .value();
  Handshake r = Responder(peers, Pattern::kIK, "");
  auto read = r.ReadMessage(i.WriteMessage({}).value());
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code(), Code::kVerifyFailed);
}

TEST_F(HandshakeTest, CreateRejectsMissingAndSuperfluousKeys) {
  Peers peers;
  auto code = [](const HandshakeConfig& c) {
    auto h = Handshake::Create(c);
    return h ? Code::kOk : h.error().code();
  };
  // XX: both sides need a static key.
  EXPECT_EQ(code(Config(Pattern::kXX, Role::kInitiator, nullptr)), Code::kInvalidArgument);
  EXPECT_EQ(code(Config(Pattern::kXX, Role::kResponder, nullptr)), Code::kInvalidArgument);
  EXPECT_EQ(code(Config(Pattern::kXX, Role::kResponder, &peers.responder_static)), Code::kOk);
  // XX takes no pre-known remote key.
  EXPECT_EQ(code(Config(Pattern::kXX, Role::kInitiator, &peers.initiator_static,
                        peers.responder_static.public_key)),
            Code::kInvalidArgument);
  // NX: the initiator has no static key.
  EXPECT_EQ(code(Config(Pattern::kNX, Role::kInitiator, &peers.initiator_static)),
            Code::kInvalidArgument);
  EXPECT_EQ(code(Config(Pattern::kNX, Role::kInitiator, nullptr)), Code::kOk);
  EXPECT_EQ(code(Config(Pattern::kNX, Role::kResponder, nullptr)), Code::kInvalidArgument);
  // IK: the initiator must know the responder's key; the responder must not be given one.
  EXPECT_EQ(code(Config(Pattern::kIK, Role::kInitiator, &peers.initiator_static)),
            Code::kInvalidArgument);
  EXPECT_EQ(code(Config(Pattern::kIK, Role::kResponder, &peers.responder_static,
                        peers.initiator_static.public_key)),
            Code::kInvalidArgument);
  EXPECT_EQ(code(Config(static_cast<Pattern>(99), Role::kInitiator, &peers.initiator_static)),
            Code::kInvalidArgument);
  EXPECT_EQ(code(Config(Pattern::kXX, Role::kInitiator, &peers.initiator_static, std::nullopt, "",
                        static_cast<Hash>(99))),
            Code::kInvalidArgument);
}

TEST_F(HandshakeTest, WrongDirectionFailsAndKillsTheHandshake) {
  Peers peers;
  Handshake i = Initiator(peers);
  auto read = i.ReadMessage(Bytes(32));
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code(), Code::kFailedPrecondition);
  auto write = i.WriteMessage({});
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code(), Code::kFailedPrecondition);

  Handshake r = Responder(peers);
  write = r.WriteMessage({});
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code(), Code::kFailedPrecondition);
  Handshake i2 = Initiator(peers);
  EXPECT_FALSE(r.ReadMessage(i2.WriteMessage({}).value()));
}

TEST_F(HandshakeTest, CallsAfterCompletionFail) {
  Peers peers;
  Handshake i = Initiator(peers, Pattern::kNX);
  Handshake r = Responder(peers, Pattern::kNX);
  ASSERT_TRUE(r.ReadMessage(i.WriteMessage({}).value()));
  Bytes m2 = r.WriteMessage({}).value();
  ASSERT_TRUE(i.ReadMessage(m2));
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.WriteMessage({}).error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(i.ReadMessage(m2).error().code(), Code::kFailedPrecondition);
}

TEST_F(HandshakeTest, EveryFlippedByteOfMessage2FailsVerification) {
  Peers peers;
  auto [unused, genuine] = XXUpToMessage2(peers);
  // e (32) + encrypted s (48) + payload "payload" (7) + tag (16).
  ASSERT_EQ(genuine.size(), 32U + 48U + 7U + 16U);
  for (size_t pos = 0; pos < genuine.size(); ++pos) {
    SCOPED_TRACE(pos);
    auto [initiator, m2] = XXUpToMessage2(peers);
    m2[pos] ^= 0x01;
    auto read = initiator.ReadMessage(m2);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().code(), Code::kVerifyFailed);
  }
}

TEST_F(HandshakeTest, HandshakeIsDeadAfterAnError) {
  Peers peers;
  auto [initiator, m2] = XXUpToMessage2(peers);
  Bytes forged = m2;
  forged.back() ^= 0x80;
  EXPECT_EQ(initiator.ReadMessage(forged).error().code(), Code::kVerifyFailed);
  // The genuine message no longer helps: the state is gone for good.
  EXPECT_EQ(initiator.ReadMessage(m2).error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(initiator.WriteMessage({}).error().code(), Code::kFailedPrecondition);
  EXPECT_FALSE(initiator.is_my_turn());
  EXPECT_FALSE(initiator.complete());
  auto split = std::move(initiator).Split();
  ASSERT_FALSE(split);
  EXPECT_EQ(split.error().code(), Code::kFailedPrecondition);
}

TEST_F(HandshakeTest, TruncatedMessagesAreMalformed) {
  Peers peers;
  {
    Handshake r = Responder(peers);
    auto read = r.ReadMessage(Bytes(31));
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().code(), Code::kMalformed);
  }
  // Message 2 needs e (32) + s (32 + 16) + the payload's tag (16).
  for (size_t size = 0; size < 96; ++size) {
    SCOPED_TRACE(size);
    auto [initiator, m2] = XXUpToMessage2(peers);
    auto read = initiator.ReadMessage(ByteSpan(m2).first(size));
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().code(), Code::kMalformed);
  }
  // Message 3 needs s (32 + 16) + tag (16).
  Handshake i = Initiator(peers);
  Handshake r = Responder(peers);
  ASSERT_TRUE(r.ReadMessage(i.WriteMessage({}).value()));
  ASSERT_TRUE(i.ReadMessage(r.WriteMessage({}).value()));
  Bytes m3 = i.WriteMessage({}).value();
  ASSERT_EQ(m3.size(), 64U);
  auto read = r.ReadMessage(ByteSpan(m3).first(63));
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code(), Code::kMalformed);
}

TEST_F(HandshakeTest, LongEnoughButCutMessageFailsVerification) {
  Peers peers;
  auto [initiator, m2] = XXUpToMessage2(peers);
  auto read = initiator.ReadMessage(ByteSpan(m2).first(m2.size() - 1));
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code(), Code::kVerifyFailed);
}

// Low-order points (RFC 7748 §6.1 / libsodium's blocklist): 0 and 1 as little-endian u.
constexpr std::array<crypto::X25519PublicKey, 2> kLowOrder = {crypto::X25519PublicKey{},
                                                              crypto::X25519PublicKey{1}};

TEST_F(HandshakeTest, LowOrderEphemeralFromInitiatorFailsResponder) {
  Peers peers;
  for (const auto& point : kLowOrder) {
    Handshake r = Responder(peers);
    // Message 1 is only "e": nothing to verify yet, but the responder's "ee" must refuse it.
    ASSERT_TRUE(r.ReadMessage(point));
    auto write = r.WriteMessage({});
    ASSERT_FALSE(write);
    EXPECT_EQ(write.error().code(), Code::kVerifyFailed);
    EXPECT_EQ(r.WriteMessage({}).error().code(), Code::kFailedPrecondition);
  }
}

TEST_F(HandshakeTest, LowOrderEphemeralFromResponderFailsInitiator) {
  Peers peers;
  for (const auto& point : kLowOrder) {
    auto [initiator, m2] = XXUpToMessage2(peers);
    std::copy(point.begin(), point.end(), m2.begin());
    auto read = initiator.ReadMessage(m2);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().code(), Code::kVerifyFailed);
  }
}

TEST_F(HandshakeTest, PrologueMismatchFails) {
  Peers peers;
  Handshake i = Initiator(peers, Pattern::kXX, "version 1");
  Handshake r = Responder(peers, Pattern::kXX, "version 2");
  // Message 1 carries no tag, so the mismatch shows at the first authenticated message.
  ASSERT_TRUE(r.ReadMessage(i.WriteMessage({}).value()));
  auto read = i.ReadMessage(r.WriteMessage({}).value());
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code(), Code::kVerifyFailed);
}

TEST_F(HandshakeTest, SplitBeforeCompleteFails) {
  Peers peers;
  Handshake i = Initiator(peers);
  Handshake r = Responder(peers);
  ASSERT_TRUE(r.ReadMessage(i.WriteMessage({}).value()));
  auto split = std::move(r).Split();
  ASSERT_FALSE(split);
  EXPECT_EQ(split.error().code(), Code::kFailedPrecondition);
}

TEST_F(HandshakeTest, MessagesOverTheLimitAreRefused) {
  Peers peers;
  // Message 1 is 32 bytes of e plus the plaintext payload.
  Handshake i = Initiator(peers);
  Bytes max_payload(kMaxMessageSize - 32);
  auto m1 = i.WriteMessage(max_payload);
  ASSERT_TRUE(m1);
  EXPECT_EQ(m1->size(), kMaxMessageSize);
  Handshake r = Responder(peers);
  EXPECT_TRUE(r.ReadMessage(*m1));

  Handshake i2 = Initiator(peers);
  auto too_big = i2.WriteMessage(Bytes(kMaxMessageSize - 31));
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code(), Code::kLimitExceeded);

  Handshake r2 = Responder(peers);
  auto read = r2.ReadMessage(Bytes(kMaxMessageSize + 1));
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code(), Code::kMalformed);
}

TEST_F(TransportSessionTest, ForgedMessageDoesNotAdvanceTheNonce) {
  Peers peers;
  Sessions s = RunXX(peers);
  Bytes m = s.initiator.Encrypt(AsBytes("first")).value();
  for (size_t pos = 0; pos < m.size(); ++pos) {
    Bytes forged = m;
    forged[pos] ^= 0x20;
    auto opened = s.responder.Decrypt(forged);
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().code(), Code::kVerifyFailed);
    EXPECT_EQ(s.responder.receive_nonce(), 0U);
  }
  EXPECT_FALSE(s.responder.Decrypt(ByteSpan(m).first(kTagSize - 1)));
  EXPECT_EQ(s.responder.receive_nonce(), 0U);
  auto genuine = s.responder.Decrypt(m);
  ASSERT_TRUE(genuine) << "a forged message desynchronised the session";
  EXPECT_EQ(AsString(*genuine), "first");
  EXPECT_EQ(s.responder.receive_nonce(), 1U);
}

TEST_F(TransportSessionTest, InPlaceMatchesCopyingAndWipesOnFailure) {
  Peers peers;
  Sessions a = RunXX(peers);
  for (size_t size : {size_t{0}, size_t{1}, size_t{4096}, kMaxPlaintextSize}) {
    Bytes plaintext(size, 0x5c);
    Bytes copied = a.initiator.Encrypt(plaintext).value();
    Bytes in_place = plaintext;
    ASSERT_TRUE(a.initiator.EncryptInPlace(in_place));
    ASSERT_EQ(in_place.size(), size + kTagSize);
    // Nonce n and n+1 differ, so the two ciphertexts differ but both open, in order.
    EXPECT_NE(copied, in_place);
    EXPECT_EQ(a.responder.Decrypt(copied).value(), plaintext);
    Bytes opened = in_place;
    ASSERT_TRUE(a.responder.DecryptInPlace(opened));
    EXPECT_EQ(opened, plaintext);
  }
  Bytes too_big(kMaxPlaintextSize + 1, 0);
  EXPECT_EQ(a.initiator.EncryptInPlace(too_big).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(too_big.size(), kMaxPlaintextSize + 1);
  Bytes secret(100, 0x77);
  Bytes message = secret;
  ASSERT_TRUE(a.initiator.EncryptInPlace(message));
  message[10] ^= 1;
  uint64_t before = a.responder.receive_nonce();
  ASSERT_FALSE(a.responder.DecryptInPlace(message));
  EXPECT_EQ(a.responder.receive_nonce(), before);
  EXPECT_EQ(std::count(message.begin(), message.begin() + 100, 0x77), 0)
      << "unauthenticated plaintext left in the buffer";
}

TEST_F(TransportSessionTest, ReplayedMessageFails) {
  Peers peers;
  Sessions s = RunXX(peers);
  Bytes m1 = s.initiator.Encrypt(AsBytes("one")).value();
  Bytes m2 = s.initiator.Encrypt(AsBytes("two")).value();
  ASSERT_TRUE(s.responder.Decrypt(m1));
  auto replay = s.responder.Decrypt(m1);
  ASSERT_FALSE(replay);
  EXPECT_EQ(replay.error().code(), Code::kVerifyFailed);
  EXPECT_EQ(AsString(s.responder.Decrypt(m2).value()), "two");
}

TEST_F(TransportSessionTest, ReorderedMessageFails) {
  Peers peers;
  Sessions s = RunXX(peers);
  Bytes m1 = s.initiator.Encrypt(AsBytes("one")).value();
  Bytes m2 = s.initiator.Encrypt(AsBytes("two")).value();
  EXPECT_FALSE(s.responder.Decrypt(m2));
  EXPECT_TRUE(s.responder.Decrypt(m1));
}

TEST_F(TransportSessionTest, DirectionsUseDifferentKeys) {
  Peers peers;
  Sessions s = RunXX(peers);
  Bytes m = s.initiator.Encrypt(AsBytes("loop")).value();
  // The initiator cannot read its own message: c1 and c2 differ.
  EXPECT_FALSE(s.initiator.Decrypt(m));
}

TEST_F(TransportSessionTest, RekeyOnBothSidesKeepsWorking) {
  Peers peers;
  Sessions s = RunXX(peers);
  ASSERT_TRUE(s.responder.Decrypt(s.initiator.Encrypt(AsBytes("a")).value()));
  s.initiator.RekeySend();
  s.responder.RekeyReceive();
  // §11.3: the nonce is not reset by Rekey.
  EXPECT_EQ(s.initiator.send_nonce(), 1U);
  EXPECT_EQ(s.responder.receive_nonce(), 1U);
  for (const char* text : {"b", "c"}) {
    EXPECT_EQ(AsString(s.responder.Decrypt(s.initiator.Encrypt(AsBytes(text)).value()).value()),
              text);
  }
  // The other direction is untouched.
  EXPECT_EQ(AsString(s.initiator.Decrypt(s.responder.Encrypt(AsBytes("d")).value()).value()), "d");
}

TEST_F(TransportSessionTest, RekeyOnOneSideOnlyBreaksDecryption) {
  Peers peers;
  Sessions s = RunXX(peers);
  s.initiator.RekeySend();
  Bytes m = s.initiator.Encrypt(AsBytes("a")).value();
  auto opened = s.responder.Decrypt(m);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code(), Code::kVerifyFailed);
  // Catching up with the rekey recovers the message: the nonce did not move.
  s.responder.RekeyReceive();
  auto caught_up = s.responder.Decrypt(m);
  ASSERT_TRUE(caught_up);
  EXPECT_EQ(AsString(*caught_up), "a");

  s.responder.RekeySend();
  EXPECT_FALSE(s.initiator.Decrypt(s.responder.Encrypt(AsBytes("b")).value()));
}

TEST_F(TransportSessionTest, PlaintextOverTheLimitIsRefused) {
  Peers peers;
  Sessions s = RunXX(peers);
  auto too_big = s.initiator.Encrypt(Bytes(kMaxPlaintextSize + 1));
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(s.initiator.send_nonce(), 0U);
  auto max = s.initiator.Encrypt(Bytes(kMaxPlaintextSize, 0x42));
  ASSERT_TRUE(max);
  EXPECT_EQ(max->size(), kMaxMessageSize);
  EXPECT_EQ(s.responder.Decrypt(*max).value(), Bytes(kMaxPlaintextSize, 0x42));
  auto oversized = s.responder.Decrypt(Bytes(kMaxMessageSize + 1));
  ASSERT_FALSE(oversized);
  EXPECT_EQ(oversized.error().code(), Code::kMalformed);
}

TEST_F(TransportSessionTest, AssociatedDataIsAuthenticated) {
  Peers peers;
  Sessions s = RunXX(peers);
  Bytes m = s.initiator.Encrypt(AsBytes("body"), AsBytes("header")).value();
  EXPECT_FALSE(s.responder.Decrypt(m, AsBytes("Header")));
  EXPECT_EQ(AsString(s.responder.Decrypt(m, AsBytes("header")).value()), "body");
}

crypto::Secret<kKeySize> KeyOf(uint8_t fill) {
  crypto::Secret<kKeySize> key;
  std::fill(key.MutableBytes().begin(), key.MutableBytes().end(), fill);
  return key;
}

TEST_F(CipherStateTest, WithoutAKeyTextPassesThrough) {
  CipherState c;
  EXPECT_FALSE(c.has_key());
  EXPECT_EQ(AsString(c.EncryptWithAd(AsBytes("ad"), AsBytes("plain")).value()), "plain");
  EXPECT_EQ(AsString(c.DecryptWithAd(AsBytes("ad"), AsBytes("plain")).value()), "plain");
  EXPECT_EQ(c.nonce(), 0U);
}

TEST_F(CipherStateTest, NonceIsFourZeroBytesThenLittleEndianCounter) {
  CipherState c(KeyOf(7));
  ASSERT_TRUE(c.EncryptWithAd({}, AsBytes("skip")));
  Bytes ours = c.EncryptWithAd(AsBytes("ad"), AsBytes("msg")).value();
  EXPECT_EQ(c.nonce(), 2U);
  // §12.3: n = 1 is 00000000 01000000 00000000.
  std::array<uint8_t, 12> nonce{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  auto key = KeyOf(7);
  Bytes expected(3 + kTagSize);
  unsigned long long len = 0;  // NOLINT(google-runtime-int)
  ASSERT_EQ(crypto_aead_chacha20poly1305_ietf_encrypt(expected.data(), &len,
                                                      reinterpret_cast<const uint8_t*>("msg"), 3,
                                                      reinterpret_cast<const uint8_t*>("ad"), 2,
                                                      nullptr, nonce.data(), key.Expose().data()),
            0);
  EXPECT_EQ(HexEncode(ours), HexEncode(expected));
}

TEST_F(CipherStateTest, RekeyIsEncryptionOfZerosUnderTheMaximumNonce) {
  CipherState c(KeyOf(9));
  c.Rekey();
  EXPECT_EQ(c.nonce(), 0U);
  // §4.2: k' = ENCRYPT(k, 2^64-1, "", zeros(32))[0, 32).
  std::array<uint8_t, 12> max_nonce{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  std::array<uint8_t, 32> zeros{};
  std::array<uint8_t, 48> sealed{};
  auto old_key = KeyOf(9);
  ASSERT_EQ(crypto_aead_chacha20poly1305_ietf_encrypt(sealed.data(), nullptr, zeros.data(), 32,
                                                      nullptr, 0, nullptr, max_nonce.data(),
                                                      old_key.Expose().data()),
            0);
  crypto::Secret<kKeySize> new_key;
  std::copy_n(sealed.begin(), 32, new_key.MutableBytes().begin());
  CipherState expected(std::move(new_key));
  EXPECT_EQ(c.EncryptWithAd({}, AsBytes("after")).value(),
            expected.EncryptWithAd({}, AsBytes("after")).value());
}

TEST_F(CipherStateTest, ShortCiphertextFailsWithoutAdvancingTheNonce) {
  CipherState c(KeyOf(1));
  auto opened = c.DecryptWithAd({}, Bytes(kTagSize - 1));
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code(), Code::kVerifyFailed);
  EXPECT_FALSE(c.DecryptWithAd({}, Bytes(kTagSize)));
  EXPECT_EQ(c.nonce(), 0U);
}

TEST_F(CipherStateTest, EncryptsInPlace) {
  CipherState a(KeyOf(3));
  CipherState b(KeyOf(3));
  Bytes buffer = ToBytes(std::string_view("in place........"));
  buffer.resize(buffer.size() + kTagSize);
  std::span<uint8_t> all(buffer);
  ASSERT_TRUE(a.EncryptWithAdTo({}, all.first(buffer.size() - kTagSize), all));
  EXPECT_EQ(AsString(b.DecryptWithAd({}, buffer).value()), "in place........");
  EXPECT_EQ(a.EncryptWithAdTo({}, AsBytes("x"), all).error().code(), Code::kInvalidArgument);
}

// HMAC and HKDF (§4.3) against OpenSSL's HMAC and RFC 5869 HKDF, independent implementations.
std::string OpensslHmacHex(const char* digest, ByteSpan key, ByteSpan data) {
  std::array<uint8_t, 64> out{};
  size_t out_len = 0;
  EXPECT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, digest, nullptr, key.data(), key.size(),
                      data.data(), data.size(), out.data(), out.size(), &out_len),
            nullptr);
  return HexEncode(ByteSpan(out).first(out_len));
}

TEST_F(NoiseHashTest, HmacMatchesOpenSsl) {
  constexpr std::array<std::pair<Hash, const char*>, 4> kDigests = {
      {{Hash::kBlake2b, "BLAKE2B-512"},
       {Hash::kBlake2s, "BLAKE2S-256"},
       {Hash::kSha256, "SHA256"},
       {Hash::kSha512, "SHA512"}}};
  for (const auto& [hash, digest] : kDigests) {
    SCOPED_TRACE(digest);
    for (size_t key_len : {size_t{0}, size_t{32}, size_t{64}, internal::BlockLen(hash)}) {
      Bytes key = crypto::RandomBytes(key_len);
      Bytes data = crypto::RandomBytes(200);
      std::array<uint8_t, kMaxHashSize> out{};
      internal::Hmac(hash, key, {ByteSpan(data).first(10), ByteSpan(data).subspan(10)}, out);
      EXPECT_EQ(HexEncode(ByteSpan(out).first(internal::HashLen(hash))),
                OpensslHmacHex(digest, key, data));
    }
  }
}

TEST_F(NoiseHashTest, HkdfMatchesRfc5869) {
  // Noise's HKDF(ck, ikm, n) is RFC 5869 with salt = ck, empty info, n * HASHLEN bytes.
  for (auto [hash, alg] : {std::pair{Hash::kSha256, crypto::HashAlgorithm::kSha256},
                           std::pair{Hash::kSha512, crypto::HashAlgorithm::kSha512}}) {
    const size_t len = internal::HashLen(hash);
    Bytes ck = crypto::RandomBytes(len);
    Bytes ikm = crypto::RandomBytes(32);
    std::array<uint8_t, kMaxHashSize> o1{};
    std::array<uint8_t, kMaxHashSize> o2{};
    std::array<uint8_t, kMaxHashSize> o3{};
    internal::Hkdf(hash, ck, ikm, o1, o2, o3);
    auto expected = crypto::Hkdf(alg, ikm, ck, {}, 3 * len).value();
    Bytes ours =
        Concat({ByteSpan(o1).first(len), ByteSpan(o2).first(len), ByteSpan(o3).first(len)});
    EXPECT_EQ(HexEncode(ours), HexEncode(expected.Expose()));
    // The two-output form gives the same first two outputs, also when writing over ck.
    std::array<uint8_t, kMaxHashSize> ck_then_o1{};
    std::copy(ck.begin(), ck.end(), ck_then_o1.begin());
    internal::Hkdf(hash, ByteSpan(ck_then_o1).first(len), ikm, ck_then_o1, o2);
    EXPECT_EQ(HexEncode(ByteSpan(ck_then_o1).first(len)), HexEncode(ByteSpan(o1).first(len)));
  }
}

TEST_F(NoiseHashTest, HashesMatchKnownDigests) {
  std::array<uint8_t, kMaxHashSize> out{};
  internal::HashParts(Hash::kBlake2b, {AsBytes("a"), AsBytes("bc")}, out);
  // BLAKE2b-512("abc"), RFC 7693 Appendix A.
  EXPECT_EQ(HexEncode(out),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
            "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
  internal::HashParts(Hash::kBlake2s, {AsBytes("abc")}, out);
  // BLAKE2s-256("abc"), RFC 7693 Appendix B.
  EXPECT_EQ(HexEncode(ByteSpan(out).first(32)),
            "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  internal::HashParts(Hash::kSha256, {AsBytes("abc")}, out);
  EXPECT_EQ(HexEncode(ByteSpan(out).first(32)), HexEncode(crypto::Sha256(AsBytes("abc"))));
  internal::HashParts(Hash::kSha512, {AsBytes("ab"), {}, AsBytes("c")}, out);
  EXPECT_EQ(HexEncode(out), HexEncode(crypto::Sha512(AsBytes("abc"))));
}

}  // namespace
}  // namespace enclavia::noise
