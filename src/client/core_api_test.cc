// SPDX-License-Identifier: Apache-2.0
// The C ABI's sans-I/O half (core_api.cc) against a real enclave side: channel::ServerHandshake
// over an NSM-simulator-backed AttestationSource, and a server mux::Session that echoes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "enclavia/client.h"
#include "host/nsm/simulator.h"
#include "lib/base/encoding.h"
#include "lib/channel/handshake.h"
#include "lib/crypto/random.h"
#include "lib/crypto/x25519.h"
#include "lib/mux/mux.h"

namespace enclavia {
namespace {

Bytes Pcr(uint8_t fill) { return Bytes(48, fill); }

// Owned C objects, freed at scope exit.
struct TrustDeleter {
  void operator()(enclavia_trust* t) const { enclavia_trust_free(t); }
};
struct AttestationDeleter {
  void operator()(enclavia_attestation* a) const { enclavia_attestation_free(a); }
};
struct SessionDeleter {
  void operator()(enclavia_session* s) const { enclavia_session_free(s); }
};
using TrustPtr = std::unique_ptr<enclavia_trust, TrustDeleter>;
using AttestationPtr = std::unique_ptr<enclavia_attestation, AttestationDeleter>;
using SessionPtr = std::unique_ptr<enclavia_session, SessionDeleter>;

// Server is the enclave's end of one channel: handshake, then an echoing mux session.
struct Server {
  std::optional<channel::ServerHandshake> handshake;
  std::optional<channel::SecureChannel> channel;
  mux::Session mux{mux::Side::kServer};
  std::vector<uint16_t> opened_ports;
  std::map<mux::StreamId, Bytes> pending;  // Echo bytes not yet taken by Write (no credit).
  std::map<mux::StreamId, bool> fin_pending;

  // Receive takes one message from the client and reacts (echo, fin).
  void Receive(ByteSpan message) {
    if (handshake) {
      if (!channel.has_value() && !sent_hello) {
        auto m2 = handshake->ReadClientHello(message);
        ASSERT_TRUE(m2.has_value()) << m2.error().message();
        out.push_back(std::move(*m2));
        sent_hello = true;
        return;
      }
      auto established = std::move(*handshake).ReadClientFinish(message);
      handshake.reset();
      ASSERT_TRUE(established.has_value()) << established.error().message();
      channel.emplace(std::move(*established));
      return;
    }
    auto plaintext = channel->Open(message);
    ASSERT_TRUE(plaintext.has_value()) << plaintext.error().message();
    ASSERT_TRUE(mux.Receive(*plaintext).has_value());
    while (auto event = mux.PollEvent()) {
      if (auto* opened = std::get_if<mux::event::Opened>(&*event)) {
        opened_ports.push_back(opened->port);
      } else if (auto* data = std::get_if<mux::event::Data>(&*event)) {
        mux.Consumed(data->id, data->bytes.size());
        Bytes& p = pending[data->id];
        p.insert(p.end(), data->bytes.begin(), data->bytes.end());
      } else if (auto* fin = std::get_if<mux::event::Fin>(&*event)) {
        fin_pending[fin->id] = true;
      }
    }
    Echo();
  }
  void Echo() {
    for (auto& [id, bytes] : pending) {
      auto taken = mux.Write(id, bytes);
      ASSERT_TRUE(taken.has_value());
      bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(*taken));
      if (bytes.empty() && fin_pending[id]) {
        fin_pending[id] = false;
        ASSERT_TRUE(mux.Fin(id).has_value());
      }
    }
  }
  // Outgoing returns the next sealed (or handshake) message for the client.
  std::optional<Bytes> Outgoing() {
    if (!out.empty()) {
      Bytes m = std::move(out.front());
      out.erase(out.begin());
      return m;
    }
    if (!channel) {
      return std::nullopt;
    }
    auto plaintext = mux.PollOutgoing();
    if (!plaintext) {
      return std::nullopt;
    }
    auto sealed = channel->Seal(*plaintext);
    ENCLAVIA_CHECK(sealed.has_value());
    return std::move(sealed).value();
  }

  std::vector<Bytes> out;
  bool sent_hello = false;
};

class CoreApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init());
    char tmpl[] = "/tmp/enclavia-core-api-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto clock = [] { return SystemTime(std::chrono::system_clock::now()); };
    auto ca = host::SimulatorCa::LoadOrCreate(dir_ + "/ca", clock);
    ASSERT_TRUE(ca.has_value());
    ca_ = std::make_shared<const host::SimulatorCa>(std::move(ca).value());
    host::SimulatorOptions options;
    options.boot_pcrs = {{0, Pcr(0xa0)}, {1, Pcr(0xa1)}, {2, Pcr(0xa2)}};
    options.module_id = "i-core-api-test-enc0";
    auto sim = host::NsmSimulator::Create(ca_, std::move(options));
    ASSERT_TRUE(sim.has_value());
    std::shared_ptr<attestation::Nsm> nsm(std::move(sim).value());
    source_ = std::make_unique<channel::AttestationSource>(nsm, key_.public_key);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Trust parses a trust file naming the simulator root (relative to dir_) and PCR0 = `pcr0`.
  TrustPtr Trust(uint8_t pcr0 = 0xa0, const std::string& extra = "") {
    std::string text = std::string("roots = [\"ca/root.pem\"]\n")
                           .append(extra)
                           .append("[[accept]]\nPCR0 = \"")
                           .append(HexEncode(Pcr(pcr0)))
                           .append("\"\nPCR2 = \"")
                           .append(HexEncode(Pcr(0xa2)))
                           .append("\"\n");
    enclavia_trust* trust = nullptr;
    enclavia_status st = enclavia_trust_parse(&trust, text.c_str(), dir_.c_str());
    EXPECT_EQ(st, ENCLAVIA_OK) << enclavia_last_error();
    return TrustPtr(trust);
  }

  std::unique_ptr<Server> NewServer() {
    auto server = std::make_unique<Server>();
    auto handshake = channel::ServerHandshake::Create(key_, *source_);
    ENCLAVIA_CHECK(handshake.has_value());
    server->handshake.emplace(std::move(*handshake));
    return server;
  }

  // FromClient moves every message the session has to the server.
  static void FromClient(enclavia_session* session, Server& server) {
    for (;;) {
      const uint8_t* message = nullptr;
      size_t size = 0;
      ASSERT_EQ(enclavia_session_poll_outgoing(session, &message, &size), ENCLAVIA_OK)
          << enclavia_last_error();
      if (size == 0) {
        return;
      }
      server.Receive(ByteSpan(message, size));
    }
  }
  // ToClient moves every message the server has to the session.
  static void ToClient(Server& server, enclavia_session* session) {
    while (auto message = server.Outgoing()) {
      ASSERT_EQ(enclavia_session_receive(session, message->data(), message->size()), ENCLAVIA_OK)
          << enclavia_last_error();
    }
  }

  // Establish runs the handshake to ESTABLISHED and message 3 delivered.
  SessionPtr Establish(const enclavia_trust* trust, Server& server) {
    enclavia_session* raw = nullptr;
    EXPECT_EQ(enclavia_session_new(&raw, trust), ENCLAVIA_OK) << enclavia_last_error();
    SessionPtr session(raw);
    FromClient(session.get(), server);
    ToClient(server, session.get());
    FromClient(session.get(), server);
    return session;
  }

  std::string dir_;
  std::shared_ptr<const host::SimulatorCa> ca_;
  crypto::X25519Keypair key_ = crypto::X25519Keypair::Generate();
  std::unique_ptr<channel::AttestationSource> source_;
};

TEST_F(CoreApiTest, SessionEchoes200KiBThroughAnEstablishedChannel) {
  TrustPtr trust = Trust();
  auto server = NewServer();
  enclavia_session* raw = nullptr;
  ASSERT_EQ(enclavia_session_new(&raw, trust.get()), ENCLAVIA_OK) << enclavia_last_error();
  SessionPtr session(raw);
  EXPECT_EQ(enclavia_session_attestation(session.get()), nullptr);
  uint32_t id = 0;
  EXPECT_EQ(enclavia_session_open(session.get(), &id, 8080), ENCLAVIA_FAILED_PRECONDITION);

  // Message 1 leaves unsealed; the ServerHello establishes; message 3 follows.
  const uint8_t* m1 = nullptr;
  size_t m1_size = 0;
  ASSERT_EQ(enclavia_session_poll_outgoing(session.get(), &m1, &m1_size), ENCLAVIA_OK);
  ASSERT_GT(m1_size, 0u);
  server->Receive(ByteSpan(m1, m1_size));
  enclavia_event event{};
  ASSERT_EQ(enclavia_session_poll_event(session.get(), &event), ENCLAVIA_OK);
  EXPECT_EQ(event.kind, ENCLAVIA_EVENT_NONE);
  ToClient(*server, session.get());
  ASSERT_EQ(enclavia_session_poll_event(session.get(), &event), ENCLAVIA_OK);
  EXPECT_EQ(event.kind, ENCLAVIA_EVENT_ESTABLISHED);
  const enclavia_attestation* att = enclavia_session_attestation(session.get());
  ASSERT_NE(att, nullptr);
  uint8_t pcr0[48];
  ASSERT_EQ(enclavia_attestation_pcr(att, pcr0, 0), ENCLAVIA_OK);
  EXPECT_EQ(Bytes(pcr0, pcr0 + 48), Pcr(0xa0));
  EXPECT_STREQ(enclavia_attestation_module_id(att), "i-core-api-test-enc0");
  size_t pk_size = 0;
  const uint8_t* pk = enclavia_attestation_public_key(att, &pk_size);
  ASSERT_EQ(pk_size, 32u);
  EXPECT_EQ(Bytes(pk, pk + 32), Bytes(key_.public_key.begin(), key_.public_key.end()));
  FromClient(session.get(), *server);
  ASSERT_TRUE(server->channel.has_value());  // Message 3 completed the server's handshake.

  // A stream to port 8080: 200 KiB out, the echo back through DATA events.
  ASSERT_EQ(enclavia_session_open(session.get(), &id, 8080), ENCLAVIA_OK);
  Bytes sent(200 * 1024);
  for (size_t i = 0; i < sent.size(); ++i) {
    sent[i] = static_cast<uint8_t>(i * 7 + i / 251);
  }
  Bytes received;
  size_t offset = 0;
  bool closed_write = false;
  bool fin = false;
  bool closed = false;
  size_t data_events = 0;
  for (int round = 0; round < 1000 && !closed; ++round) {
    if (offset < sent.size()) {
      size_t accepted = 0;
      ASSERT_EQ(enclavia_session_write(session.get(), id, sent.data() + offset,
                                       sent.size() - offset, &accepted),
                ENCLAVIA_OK)
          << enclavia_last_error();
      offset += accepted;
    } else if (!closed_write) {
      ASSERT_EQ(enclavia_session_close_write(session.get(), id), ENCLAVIA_OK);
      closed_write = true;
    }
    FromClient(session.get(), *server);
    ToClient(*server, session.get());
    for (;;) {
      ASSERT_EQ(enclavia_session_poll_event(session.get(), &event), ENCLAVIA_OK);
      if (event.kind == ENCLAVIA_EVENT_NONE) {
        break;
      }
      ASSERT_EQ(event.stream, id);
      if (event.kind == ENCLAVIA_EVENT_DATA) {
        ASSERT_GT(event.size, 0u);
        received.insert(received.end(), event.data, event.data + event.size);
        ASSERT_EQ(enclavia_session_consumed(session.get(), id, event.size), ENCLAVIA_OK);
        ++data_events;
      } else if (event.kind == ENCLAVIA_EVENT_FIN) {
        fin = true;
      } else if (event.kind == ENCLAVIA_EVENT_CLOSED) {
        closed = true;
      } else {
        ASSERT_EQ(event.kind, ENCLAVIA_EVENT_WRITABLE);
      }
    }
  }
  EXPECT_EQ(server->opened_ports, std::vector<uint16_t>{8080});
  EXPECT_TRUE(fin);
  EXPECT_TRUE(closed);
  EXPECT_GT(data_events, 1u);  // 200 KiB does not fit one message.
  EXPECT_EQ(received.size(), sent.size());
  EXPECT_TRUE(received == sent);
  // The stream is gone after CLOSED.
  size_t accepted = 0;
  EXPECT_NE(enclavia_session_write(session.get(), id, sent.data(), 1, &accepted), ENCLAVIA_OK);
}

TEST_F(CoreApiTest, SessionWithAWrongPcrRefusesTheServerHelloForGood) {
  TrustPtr trust = Trust(0xb0);
  auto server = NewServer();
  enclavia_session* raw = nullptr;
  ASSERT_EQ(enclavia_session_new(&raw, trust.get()), ENCLAVIA_OK);
  SessionPtr session(raw);
  FromClient(session.get(), *server);
  auto m2 = server->Outgoing();
  ASSERT_TRUE(m2.has_value());
  EXPECT_EQ(enclavia_session_receive(session.get(), m2->data(), m2->size()),
            ENCLAVIA_POLICY_VIOLATION);
  std::string first = enclavia_last_error();
  EXPECT_NE(first.find("PCRs match no accepted set"), std::string::npos) << first;
  EXPECT_EQ(enclavia_session_attestation(session.get()), nullptr);
  // No ESTABLISHED, no message 3, and every later call repeats the first error.
  enclavia_event event{};
  event.kind = ENCLAVIA_EVENT_ESTABLISHED;
  EXPECT_EQ(enclavia_session_poll_event(session.get(), &event), ENCLAVIA_FAILED_PRECONDITION);
  EXPECT_EQ(event.kind, ENCLAVIA_EVENT_NONE);
  const uint8_t* message = nullptr;
  size_t size = 1;
  EXPECT_EQ(enclavia_session_poll_outgoing(session.get(), &message, &size),
            ENCLAVIA_FAILED_PRECONDITION);
  EXPECT_EQ(size, 0u);
  EXPECT_EQ(enclavia_session_receive(session.get(), m2->data(), m2->size()),
            ENCLAVIA_FAILED_PRECONDITION);
  EXPECT_NE(std::string(enclavia_last_error()).find(first), std::string::npos);
}

TEST_F(CoreApiTest, AFlippedByteInATransportMessageEndsTheSession) {
  TrustPtr trust = Trust();
  auto server = NewServer();
  SessionPtr session = Establish(trust.get(), *server);
  ASSERT_TRUE(server->channel.has_value());
  uint32_t id = 0;
  ASSERT_EQ(enclavia_session_open(session.get(), &id, 8080), ENCLAVIA_OK);
  const uint8_t hello[] = "hello";
  size_t accepted = 0;
  ASSERT_EQ(enclavia_session_write(session.get(), id, hello, 5, &accepted), ENCLAVIA_OK);
  FromClient(session.get(), *server);
  auto echo = server->Outgoing();
  ASSERT_TRUE(echo.has_value());
  Bytes tampered = *echo;
  tampered[tampered.size() / 2] ^= 0x01;
  EXPECT_EQ(enclavia_session_receive(session.get(), tampered.data(), tampered.size()),
            ENCLAVIA_VERIFY_FAILED);
  // Final: not even the genuine message is accepted now.
  EXPECT_EQ(enclavia_session_receive(session.get(), echo->data(), echo->size()),
            ENCLAVIA_FAILED_PRECONDITION);
  EXPECT_NE(std::string(enclavia_last_error()).find("failed authentication"), std::string::npos);
  EXPECT_EQ(enclavia_session_write(session.get(), id, hello, 5, &accepted),
            ENCLAVIA_FAILED_PRECONDITION);
  EXPECT_EQ(accepted, 0u);
}

TEST_F(CoreApiTest, NullArgumentsAreInvalidAndNamed) {
  EXPECT_EQ(enclavia_session_new(nullptr, nullptr), ENCLAVIA_INVALID_ARGUMENT);
  EXPECT_STREQ(enclavia_last_error(), "enclavia_session_new: NULL argument");
  enclavia_trust* trust = nullptr;
  EXPECT_EQ(enclavia_trust_parse(&trust, nullptr, nullptr), ENCLAVIA_INVALID_ARGUMENT);
  EXPECT_EQ(enclavia_trust_parse(&trust, "roots = [", nullptr), ENCLAVIA_MALFORMED)
      << enclavia_last_error();
  EXPECT_EQ(trust, nullptr);
  EXPECT_EQ(enclavia_trust_load(&trust, (dir_ + "/absent.toml").c_str()), ENCLAVIA_IO)
      << enclavia_last_error();
  EXPECT_EQ(enclavia_session_receive(nullptr, nullptr, 0), ENCLAVIA_INVALID_ARGUMENT);
  EXPECT_STREQ(enclavia_last_error(), "enclavia_session_receive: NULL argument");
  enclavia_trust_free(nullptr);
  enclavia_attestation_free(nullptr);
  enclavia_session_free(nullptr);
  EXPECT_STREQ(enclavia_attestation_module_id(nullptr), "");
}

// Verification without a connection: the enclave's cached document, as an auditor holds it.
class VerifyAttestationTest : public CoreApiTest {
 protected:
  enclavia_status Verify(const enclavia_trust* trust, const Bytes& document,
                         const uint8_t* public_key, const uint8_t* nonce,
                         AttestationPtr* out = nullptr) {
    enclavia_attestation* att = nullptr;
    enclavia_status st = enclavia_verify_attestation(trust, &att, document.data(),
                                                     document.size(), nullptr, nullptr, 0,
                                                     public_key, nonce);
    EXPECT_EQ(st == ENCLAVIA_OK, att != nullptr);
    if (out != nullptr) {
      out->reset(att);
    } else {
      enclavia_attestation_free(att);
    }
    return st;
  }
};

TEST_F(VerifyAttestationTest, AcceptsTheEnclavesDocumentAndExposesIt) {
  TrustPtr trust = Trust();
  auto document = source_->Cached();
  ASSERT_TRUE(document.has_value());
  AttestationPtr att;
  ASSERT_EQ(Verify(trust.get(), *document, key_.public_key.data(), nullptr, &att), ENCLAVIA_OK)
      << enclavia_last_error();
  uint8_t pcr[48];
  ASSERT_EQ(enclavia_attestation_pcr(att.get(), pcr, 2), ENCLAVIA_OK);
  EXPECT_EQ(Bytes(pcr, pcr + 48), Pcr(0xa2));
  EXPECT_EQ(enclavia_attestation_pcr(att.get(), pcr, 40), ENCLAVIA_NOT_FOUND);
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  EXPECT_LE(enclavia_attestation_timestamp_ms(att.get()), now_ms);
  EXPECT_GT(enclavia_attestation_timestamp_ms(att.get()), now_ms - 60'000);
  size_t size = 99;
  EXPECT_EQ(enclavia_attestation_user_data(att.get(), &size), nullptr);
  EXPECT_EQ(size, 0u);
  EXPECT_EQ(enclavia_attestation_upgrades(att.get()), 0u);
  uint8_t genesis[32];
  EXPECT_EQ(enclavia_attestation_genesis(att.get(), genesis), ENCLAVIA_NOT_FOUND);
  // public_key NULL: not checked.
  EXPECT_EQ(Verify(trust.get(), *document, nullptr, nullptr), ENCLAVIA_OK);
}

TEST_F(VerifyAttestationTest, RefusesAWrongPcr) {
  TrustPtr trust = Trust(0xb0);
  auto document = source_->Cached();
  ASSERT_TRUE(document.has_value());
  EXPECT_EQ(Verify(trust.get(), *document, nullptr, nullptr), ENCLAVIA_POLICY_VIOLATION);
}

TEST_F(VerifyAttestationTest, RefusesADocumentOlderThanMaxAgeAtTheSetTime) {
  TrustPtr trust = Trust(0xa0, "max_age = \"60s\"\n");
  auto document = source_->Cached();
  ASSERT_TRUE(document.has_value());
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  ASSERT_EQ(enclavia_trust_set_time(trust.get(), now_ms + 120'000), ENCLAVIA_OK);
  EXPECT_EQ(Verify(trust.get(), *document, nullptr, nullptr), ENCLAVIA_EXPIRED);
  EXPECT_NE(std::string(enclavia_last_error()).find("maximum age"), std::string::npos);
  ASSERT_EQ(enclavia_trust_set_time(trust.get(), 0), ENCLAVIA_OK);  // The system clock again.
  EXPECT_EQ(Verify(trust.get(), *document, nullptr, nullptr), ENCLAVIA_OK);
  EXPECT_EQ(enclavia_trust_set_time(trust.get(), -1), ENCLAVIA_INVALID_ARGUMENT);
}

TEST_F(VerifyAttestationTest, AFreshPolicyNeedsANonceAndChecksIt) {
  TrustPtr trust = Trust(0xa0, "fresh = true\n");
  Bytes nonce(32, 0x5a);
  auto document = source_->Fresh(nonce);
  ASSERT_TRUE(document.has_value());
  EXPECT_EQ(Verify(trust.get(), *document, nullptr, nullptr), ENCLAVIA_INVALID_ARGUMENT);
  EXPECT_EQ(Verify(trust.get(), *document, nullptr, nonce.data()), ENCLAVIA_OK)
      << enclavia_last_error();
  Bytes other(32, 0x5b);
  EXPECT_EQ(Verify(trust.get(), *document, nullptr, other.data()), ENCLAVIA_POLICY_VIOLATION);
}

TEST_F(VerifyAttestationTest, RefusesAnotherPublicKey) {
  TrustPtr trust = Trust();
  auto document = source_->Cached();
  ASSERT_TRUE(document.has_value());
  crypto::X25519Keypair other = crypto::X25519Keypair::Generate();
  EXPECT_EQ(Verify(trust.get(), *document, other.public_key.data(), nullptr),
            ENCLAVIA_POLICY_VIOLATION);
  EXPECT_NE(std::string(enclavia_last_error()).find("public_key mismatch"), std::string::npos);
}

// Replaying a recorded handshake: the ServerHello answering message 1 from a known ephemeral.
class HandshakeReplayTest : public CoreApiTest {
 protected:
  Bytes RecordServerHello(const uint8_t (&ephemeral)[32], bool fresh) {
    auto policy = std::make_shared<channel::TrustPolicy>();
    policy->verifier = std::make_shared<const attestation::Verifier>(
        attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {ca_->root()}).value());
    policy->accept = {{{0, Pcr(0xa0)}}};
    policy->freshness = fresh ? channel::Freshness::kFresh : channel::Freshness::kCached;
    auto keypair = crypto::X25519Keypair::FromPrivate(ephemeral);
    auto client = channel::ClientHandshake::CreateWithEphemeral(policy, keypair);
    ENCLAVIA_CHECK(client.has_value());
    auto m1 = client->Start();
    ENCLAVIA_CHECK(m1.has_value());
    auto server = channel::ServerHandshake::Create(key_, *source_);
    ENCLAVIA_CHECK(server.has_value());
    auto m2 = server->ReadClientHello(*m1);
    ENCLAVIA_CHECK(m2.has_value());
    return std::move(m2).value();
  }
  static constexpr uint8_t kEphemeral[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                             17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
                                             30, 31, 32};
};

TEST_F(HandshakeReplayTest, VerifiesARecordedServerHello) {
  TrustPtr trust = Trust(0xa0, "fresh = true\n");
  Bytes m2 = RecordServerHello(kEphemeral, /*fresh=*/true);
  enclavia_attestation* raw = nullptr;
  ASSERT_EQ(enclavia_handshake_replay(trust.get(), &raw, kEphemeral, m2.data(), m2.size()),
            ENCLAVIA_OK)
      << enclavia_last_error();
  AttestationPtr att(raw);
  size_t size = 0;
  const uint8_t* pk = enclavia_attestation_public_key(att.get(), &size);
  ASSERT_EQ(size, 32u);
  EXPECT_EQ(Bytes(pk, pk + 32), Bytes(key_.public_key.begin(), key_.public_key.end()));
  // Another ephemeral key cannot read this ServerHello.
  uint8_t other[32] = {9};
  EXPECT_EQ(enclavia_handshake_replay(trust.get(), &raw, other, m2.data(), m2.size()),
            ENCLAVIA_VERIFY_FAILED);
  EXPECT_EQ(raw, nullptr);
}

TEST_F(HandshakeReplayTest, RefusesATamperedServerHello) {
  TrustPtr trust = Trust();
  Bytes m2 = RecordServerHello(kEphemeral, /*fresh=*/false);
  m2[m2.size() - 40] ^= 0x80;
  enclavia_attestation* raw = nullptr;
  EXPECT_EQ(enclavia_handshake_replay(trust.get(), &raw, kEphemeral, m2.data(), m2.size()),
            ENCLAVIA_VERIFY_FAILED)
      << enclavia_last_error();
  EXPECT_EQ(raw, nullptr);
  // The same recording verifies, but not against a trust file with another PCR0.
  m2[m2.size() - 40] ^= 0x80;
  TrustPtr wrong = Trust(0xb0);
  EXPECT_EQ(enclavia_handshake_replay(wrong.get(), &raw, kEphemeral, m2.data(), m2.size()),
            ENCLAVIA_POLICY_VIOLATION);
  EXPECT_EQ(enclavia_handshake_replay(trust.get(), &raw, kEphemeral, m2.data(), m2.size()),
            ENCLAVIA_OK);
  enclavia_attestation_free(raw);
}

}  // namespace
}  // namespace enclavia
