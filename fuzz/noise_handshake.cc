// SPDX-License-Identifier: Apache-2.0
// Plays the responder of Noise_XX_25519_ChaChaPoly_BLAKE2b against arbitrary bytes, laid out as
// u16be length || message 1 || message 3: it reads message 1, writes message 2 and reads the rest
// as message 3. Its static and ephemeral keys are fixed (0x01.., 0x02..), so message 2 depends only
// on message 1 and a seed can carry a genuine message 3 that reaches Split. The whole input is also
// one transport message for a session keyed 0x03.. (a genuine one must re-encrypt to itself).
#include <algorithm>
#include <cstdint>
#include <optional>

#include "lib/base/reader.h"
#include "lib/crypto/random.h"
#include "lib/noise/noise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

enclavia::crypto::Secret<32> Filled(uint8_t fill) {
  enclavia::crypto::Secret<32> key;
  std::fill(key.MutableBytes().begin(), key.MutableBytes().end(), fill);
  return key;
}

// Keypair is a never-freed key pair from a private key of `fill` bytes, for the target's statics.
const enclavia::crypto::X25519Keypair* Keypair(uint8_t fill) {
  using enclavia::crypto::X25519Keypair;
  return new X25519Keypair(X25519Keypair::FromPrivate(Filled(fill).Expose()));
}

enclavia::noise::TransportSession Session(uint8_t send, uint8_t receive) {
  using enclavia::noise::CipherState;
  return {CipherState(Filled(send)), CipherState(Filled(receive)), {}, std::nullopt};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enclavia;
  static const bool initialized = crypto::Init().has_value();
  static const auto* s = Keypair(1);
  static const auto* e = Keypair(2);
  ENCLAVIA_CHECK(initialized);
  noise::HandshakeConfig config;
  config.role = noise::Role::kResponder;
  config.prologue = AsBytes("enclavia fuzz");
  config.local_static = s;
  config.fixed_ephemeral = e;
  noise::Handshake responder = noise::Handshake::Create(config).value();
  Reader reader(ByteSpan(data, size));
  auto message1 = reader.ReadPrefixed16();
  if (message1 && responder.ReadMessage(*message1)) {
    auto message2 = responder.WriteMessage({});
    // A low-order e in message 1 fails here (kVerifyFailed); anything else gives e, s, tag.
    ENCLAVIA_CHECK(!message2 || message2->size() == 32 + 48 + 16);
    if (message2 && responder.ReadMessage(reader.rest())) {
      ENCLAVIA_CHECK(responder.complete() && responder.remote_static().has_value());
      ENCLAVIA_CHECK(std::move(responder).Split().has_value());
    }
  }
  noise::TransportSession receiver = Session(4, 3);
  auto plaintext = receiver.Decrypt(ByteSpan(data, size));
  // The nonce moves only for a message that authenticates.
  ENCLAVIA_CHECK(receiver.receive_nonce() == (plaintext ? 1U : 0U));
  if (plaintext) {
    ENCLAVIA_CHECK(Session(3, 4).Encrypt(*plaintext).value() == Bytes(data, data + size));
  }
  return 0;
}
