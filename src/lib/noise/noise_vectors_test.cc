// SPDX-License-Identifier: Apache-2.0
// The published Noise test vectors (shared fixtures noise/cacophony.txt and noise/snow.txt, two
// independent implementations): every Noise_{XX,NX,IK}_25519_ChaChaPoly_{BLAKE2b,BLAKE2s,SHA256,
// SHA512} vector, 12 per file, run through both sides with the vectors' fixed ephemeral keys.
// Every handshake and transport ciphertext is compared byte for byte, every payload after
// decryption, and the handshake hash where the file has one (noise/README.md has the conventions).
#include <array>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lib/base/encoding.h"
#include "lib/crypto/random.h"
#include "lib/noise/noise.h"
#include "testing/fixtures.h"

namespace enclavia::noise {
namespace {

constexpr std::array kPatterns = {Pattern::kXX, Pattern::kNX, Pattern::kIK};
constexpr std::array kHashes = {Hash::kBlake2b, Hash::kBlake2s, Hash::kSha256, Hash::kSha512};
constexpr std::array<const char*, 2> kFiles = {"cacophony", "snow"};
constexpr size_t kVectorsPerFile = kPatterns.size() * kHashes.size();

// Vectors returns the parsed noise/<file>.txt, read once per test binary.
const nlohmann::json& Vectors(const std::string& file) {
  static auto* cache = new std::map<std::string, nlohmann::json>();
  auto it = cache->find(file);
  if (it == cache->end()) {
    Bytes text = testing::ReadFixture("noise/" + file + ".txt");
    auto json = nlohmann::json::parse(AsString(text), nullptr, /*allow_exceptions=*/false);
    it = cache->emplace(file, std::move(json)).first;
  }
  return it->second;
}

Bytes Hex(const nlohmann::json& j) {
  auto decoded = HexDecode(j.get<std::string>());
  EXPECT_TRUE(decoded) << j;
  return decoded ? std::move(decoded).value() : Bytes();
}

std::optional<crypto::X25519Keypair> OptionalKeypair(const nlohmann::json& v, const char* field) {
  if (!v.contains(field)) {
    return std::nullopt;
  }
  Bytes raw = Hex(v[field]);
  EXPECT_EQ(raw.size(), crypto::kX25519KeySize) << field;
  if (raw.size() != crypto::kX25519KeySize) {
    return std::nullopt;
  }
  return crypto::X25519Keypair::FromPrivate(std::span<const uint8_t, 32>(raw.data(), 32));
}

struct VectorCase {
  std::string file;
  Pattern pattern;
  Hash hash;
};

// PrintTo names a case in gtest's failure output.
void PrintTo(const VectorCase& c, std::ostream* os) {
  *os << c.file << ".txt " << ProtocolName(c.pattern, c.hash);
}

std::string CaseName(const ::testing::TestParamInfo<VectorCase>& info) {
  // "cacophony_Noise_XX_25519_ChaChaPoly_BLAKE2b" is a valid gtest name (letters, digits, _).
  return info.param.file + "_" + ProtocolName(info.param.pattern, info.param.hash);
}

std::vector<VectorCase> AllCases() {
  std::vector<VectorCase> cases;
  for (const char* file : kFiles) {
    for (Pattern p : kPatterns) {
      for (Hash h : kHashes) {
        cases.push_back({file, p, h});
      }
    }
  }
  return cases;
}

// CheckVector runs vector `v` of case `c` through an initiator and a responder; failures are
// gtest failures.
void CheckVector(const nlohmann::json& v, const VectorCase& c) {
  Bytes init_prologue = Hex(v["init_prologue"]);
  Bytes resp_prologue = Hex(v["resp_prologue"]);
  auto init_static = OptionalKeypair(v, "init_static");
  auto resp_static = OptionalKeypair(v, "resp_static");
  auto init_ephemeral = OptionalKeypair(v, "init_ephemeral");
  auto resp_ephemeral = OptionalKeypair(v, "resp_ephemeral");
  ASSERT_TRUE(init_ephemeral && resp_ephemeral);
  std::optional<crypto::X25519PublicKey> init_remote_static;
  if (v.contains("init_remote_static")) {
    Bytes raw = Hex(v["init_remote_static"]);
    ASSERT_EQ(raw.size(), 32U);
    init_remote_static.emplace();
    std::copy(raw.begin(), raw.end(), init_remote_static->begin());
    ASSERT_TRUE(resp_static);
    EXPECT_EQ(*init_remote_static, resp_static->public_key);
  }

  // Field by field: GCC 12 warns about designated initializers that omit members.
  HandshakeConfig ic;
  ic.pattern = c.pattern;
  ic.hash = c.hash;
  ic.role = Role::kInitiator;
  ic.prologue = init_prologue;
  ic.local_static = init_static ? &*init_static : nullptr;
  ic.remote_static = init_remote_static;
  ic.fixed_ephemeral = &*init_ephemeral;
  HandshakeConfig rc;
  rc.pattern = c.pattern;
  rc.hash = c.hash;
  rc.role = Role::kResponder;
  rc.prologue = resp_prologue;
  rc.local_static = resp_static ? &*resp_static : nullptr;
  rc.fixed_ephemeral = &*resp_ephemeral;
  auto initiator = Handshake::Create(ic);
  auto responder = Handshake::Create(rc);
  ASSERT_TRUE(initiator) << initiator.error().message();
  ASSERT_TRUE(responder) << responder.error().message();

  const auto& messages = v["messages"];
  const size_t handshake_messages = c.pattern == Pattern::kXX ? 3 : 2;
  ASSERT_GT(messages.size(), handshake_messages) << "no transport messages to check";
  size_t i = 0;
  for (; i < handshake_messages; ++i) {
    const bool from_initiator = i % 2 == 0;
    Handshake& sender = from_initiator ? *initiator : *responder;
    Handshake& receiver = from_initiator ? *responder : *initiator;
    Bytes payload = Hex(messages[i]["payload"]);
    Bytes ciphertext = Hex(messages[i]["ciphertext"]);
    ASSERT_TRUE(sender.is_my_turn()) << "message " << i;
    auto written = sender.WriteMessage(payload);
    ASSERT_TRUE(written) << "message " << i << ": " << written.error().message();
    EXPECT_EQ(HexEncode(*written), HexEncode(ciphertext)) << "handshake message " << i;
    auto read = receiver.ReadMessage(ciphertext);
    ASSERT_TRUE(read) << "message " << i << ": " << read.error().message();
    EXPECT_EQ(HexEncode(*read), HexEncode(payload)) << "handshake message " << i;
  }
  ASSERT_TRUE(initiator->complete());
  ASSERT_TRUE(responder->complete());
  EXPECT_EQ(initiator->handshake_hash(), responder->handshake_hash());
  if (v.contains("handshake_hash")) {
    EXPECT_EQ(HexEncode(initiator->handshake_hash()), v["handshake_hash"].get<std::string>());
  } else {
    // Only cacophony.txt records h (README); make sure it is not silently unchecked there.
    EXPECT_EQ(c.file, "snow");
  }
  EXPECT_EQ(initiator->handshake_hash().size(),
            c.hash == Hash::kBlake2b || c.hash == Hash::kSha512 ? 64U : 32U);
  if (resp_static) {
    EXPECT_EQ(initiator->remote_static(), resp_static->public_key);
  }
  if (init_static) {
    EXPECT_EQ(responder->remote_static(), init_static->public_key);
  }
  EXPECT_EQ(initiator->local_ephemeral(), init_ephemeral->public_key);
  EXPECT_EQ(responder->remote_ephemeral(), init_ephemeral->public_key);
  EXPECT_EQ(initiator->remote_ephemeral(), resp_ephemeral->public_key);

  auto init_session = std::move(*initiator).Split();
  auto resp_session = std::move(*responder).Split();
  ASSERT_TRUE(init_session && resp_session);
  EXPECT_EQ(init_session->handshake_hash(), resp_session->handshake_hash());
  size_t transport = 0;
  for (; i < messages.size(); ++i) {
    const bool from_initiator = i % 2 == 0;
    TransportSession& sender = from_initiator ? *init_session : *resp_session;
    TransportSession& receiver = from_initiator ? *resp_session : *init_session;
    Bytes payload = Hex(messages[i]["payload"]);
    Bytes ciphertext = Hex(messages[i]["ciphertext"]);
    auto sealed = sender.Encrypt(payload);
    ASSERT_TRUE(sealed) << "message " << i << ": " << sealed.error().message();
    EXPECT_EQ(HexEncode(*sealed), HexEncode(ciphertext)) << "transport message " << i;
    auto opened = receiver.Decrypt(ciphertext);
    ASSERT_TRUE(opened) << "message " << i << ": " << opened.error().message();
    EXPECT_EQ(HexEncode(*opened), HexEncode(payload)) << "transport message " << i;
    ++transport;
  }
  EXPECT_EQ(handshake_messages + transport, messages.size());
}

class NoiseVectorTest : public ::testing::TestWithParam<VectorCase> {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(crypto::Init()); }
};

TEST_P(NoiseVectorTest, BothSidesReproduceEveryMessage) {
  SKIP_WITHOUT_FIXTURES();
  const VectorCase& c = GetParam();
  const std::string name = ProtocolName(c.pattern, c.hash);
  const nlohmann::json& all = Vectors(c.file);
  ASSERT_FALSE(all.is_discarded()) << c.file << ".txt is not JSON";
  const nlohmann::json* found = nullptr;
  for (const auto& v : all["vectors"]) {
    if (v.value("protocol_name", "") == name) {
      ASSERT_EQ(found, nullptr) << name << " appears twice in " << c.file;
      found = &v;
    }
  }
  ASSERT_NE(found, nullptr) << name << " missing from " << c.file;
  CheckVector(*found, c);
}

INSTANTIATE_TEST_SUITE_P(Published, NoiseVectorTest, ::testing::ValuesIn(AllCases()), CaseName);

// The parameterized cases are derived from our enums, not from the files; this checks the other
// direction. It selects vectors from each file by exact protocol name, runs every one, and requires
// exactly 12 checked per file (our 12 names once each, none with PSKs or failure fields), so a
// renamed field, a moved file or a new variant cannot make vectors go unchecked.
TEST(NoiseVectorFilesTest, ChecksExactlyTwelveVectorsPerFile) {
  SKIP_WITHOUT_FIXTURES();
  ASSERT_TRUE(crypto::Init());
  std::map<std::string, std::pair<Pattern, Hash>> ours;
  for (Pattern p : kPatterns) {
    for (Hash h : kHashes) {
      ours[ProtocolName(p, h)] = {p, h};
    }
  }
  ASSERT_EQ(ours.size(), kVectorsPerFile);
  for (const char* file : kFiles) {
    const nlohmann::json& all = Vectors(file);
    ASSERT_FALSE(all.is_discarded()) << file;
    ASSERT_TRUE(all.contains("vectors")) << file;
    std::multiset<std::string> checked;
    for (const auto& v : all["vectors"]) {
      std::string name = v.value("protocol_name", "");
      auto it = ours.find(name);
      if (it == ours.end()) {
        continue;
      }
      SCOPED_TRACE(std::string(file) + " " + name);
      for (const char* absent : {"fail", "fallback", "fallback_pattern", "hybrid"}) {
        EXPECT_FALSE(v.contains(absent)) << "has " << absent;
      }
      for (const char* psks : {"init_psks", "resp_psks"}) {
        EXPECT_TRUE(!v.contains(psks) || v[psks].empty()) << psks;
      }
      CheckVector(v, {file, it->second.first, it->second.second});
      if (!::testing::Test::HasFailure()) {
        checked.insert(name);
      }
    }
    EXPECT_EQ(checked.size(), kVectorsPerFile) << file;
    std::set<std::string> distinct(checked.begin(), checked.end());
    EXPECT_EQ(distinct.size(), kVectorsPerFile) << file;
  }
}

}  // namespace
}  // namespace enclavia::noise
