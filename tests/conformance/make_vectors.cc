// SPDX-License-Identifier: Apache-2.0
// enclavia_make_vectors writes tests/conformance/vectors.json (format: README.md beside this
// file): simulator documents, the real AWS documents of the shared fixtures (by file name),
// upgrade chains and recorded handshakes, each with the verdict it is meant to get. Every case is
// run through the client core before anything is written; a case whose verdict (or PCR0) is not
// the intended one stops the tool, so the file never holds an accidental verdict.
//
//   enclavia_make_vectors OUT.json [FIXTURES_DIR]     (default: $ENCLAVIA_FIXTURES or ../shared)
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "conformance/runner.h"
#include "host/nsm/simulator.h"
#include "lib/attestation/verifier.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/channel/handshake.h"
#include "lib/crypto/random.h"
#include "lib/crypto/x25519.h"
#include "testing/fixtures.h"
#include "testing/upgrade_chain.h"

namespace enclavia::conformance {
namespace {

using ojson = nlohmann::ordered_json;
using upgrade::PcrMap;
using upgrade::testing::Pcrs;

// kT0 is the simulator's "now" for its documents: 2026-01-01T00:00:00Z. The simulator CA was
// made a day before, so its root is valid for 30 years around every time used here.
constexpr int64_t kT0 = 1767225600000;
constexpr int64_t kSecond = 1000;
constexpr int64_t kHour = 3600 * kSecond;
constexpr int64_t kDay = 24 * kHour;

Bytes Pcr(uint8_t fill) { return Bytes(48, fill); }
std::string Hex(ByteSpan b) { return HexEncode(b); }

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "enclavia_make_vectors: " << what << "\n";
  exit(1);
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r) {
    Die(std::string(what).append(": ").append(r.error().message()));
  }
  return std::move(r).value();
}

// TrustSpec renders a trust file (docs/trust-file.md).
struct TrustSpec {
  std::vector<std::string> roots = {"root.pem"};
  std::vector<PcrMap> accept = {};
  std::vector<std::string> genesis = {};  // Hex.
  std::string max_age = {};               // "" = the default (1h).
  bool fresh = false;
  bool allow_debug = false;
};

std::string TrustText(const TrustSpec& t) {
  std::string out = "roots = [";
  for (size_t i = 0; i < t.roots.size(); ++i) {
    out.append(i == 0 ? "\"" : ", \"").append(t.roots[i]).append("\"");
  }
  out.append("]\n");
  if (!t.max_age.empty()) {
    out.append("max_age = \"").append(t.max_age).append("\"\n");
  }
  if (t.fresh) {
    out.append("fresh = true\n");
  }
  if (t.allow_debug) {
    out.append("allow_debug = true\n");
  }
  if (!t.genesis.empty()) {
    out.append("genesis = [");
    for (size_t i = 0; i < t.genesis.size(); ++i) {
      out.append(i == 0 ? "\"" : ", \"").append(t.genesis[i]).append("\"");
    }
    out.append("]\n");
  }
  for (const PcrMap& set : t.accept) {
    out.append("\n[[accept]]\n");
    for (const auto& [index, value] : set) {
      out.append("PCR")
          .append(std::to_string(index))
          .append(" = \"")
          .append(Hex(value))
          .append("\"\n");
    }
  }
  return out;
}

class Writer {
 public:
  explicit Writer(std::string fixtures_dir) : fixtures_dir_(std::move(fixtures_dir)) {}

  // Add appends a case after checking that the core gives it the intended verdict.
  void Add(ojson c) {
    auto outcome = RunCase(nlohmann::json::parse(c.dump()), fixtures_dir_);
    const std::string name = c["name"].get<std::string>();
    if (!outcome) {
      Die(std::string(name).append(": broken vector: ").append(outcome.error().message()));
    }
    const std::string expect = c["expect"].get<std::string>();
    if (outcome->verdict != expect) {
      Die(std::string(name)
              .append(": intended ")
              .append(expect)
              .append(", got ")
              .append(outcome->verdict)
              .append(" (")
              .append(outcome->message)
              .append(")"));
    }
    if (expect == "ok") {
      if (!outcome->pcr0 || Hex(*outcome->pcr0) != c["expect_pcr0"].get<std::string>()) {
        Die(std::string(name).append(": PCR0 differs from expect_pcr0"));
      }
    }
    std::cerr << "  " << name << " " << outcome->verdict
              << (outcome->message.empty() ? "" : "  (" + outcome->message + ")") << "\n";
    cases_.push_back(std::move(c));
  }

  ojson Json() const {
    ojson out;
    out["version"] = 1;
    out["cases"] = cases_;
    return out;
  }
  size_t size() const { return cases_.size(); }

 private:
  std::string fixtures_dir_;
  ojson cases_ = ojson::array();
};

// Attestation makes an attestation case; the document is set by the caller.
ojson Attestation(const std::string& name, const std::string& description, const TrustSpec& trust,
                  const std::string& root_pem, int64_t at_ms, const std::string& expect,
                  const std::optional<Bytes>& pcr0) {
  ojson c;
  c["name"] = name;
  c["kind"] = "attestation";
  c["description"] = description;
  c["trust"] = TrustText(trust);
  c["files"] = ojson::object();
  if (!root_pem.empty()) {
    c["files"]["root.pem"] = root_pem;
  }
  c["at_ms"] = at_ms;
  c["chain"] = ojson::array();
  c["public_key"] = nullptr;
  c["nonce"] = nullptr;
  c["expect"] = expect;
  if (pcr0) {
    c["expect_pcr0"] = Hex(*pcr0);
  }
  return c;
}

ojson WithDocument(ojson c, ByteSpan document) {
  c["document"] = Hex(document);
  return c;
}

std::shared_ptr<const host::SimulatorCa> MakeCa(const std::string& dir) {
  auto ca = host::SimulatorCa::LoadOrCreate(dir, [] { return FromUnixMillis(kT0 - kDay); });
  return std::make_shared<const host::SimulatorCa>(Must(std::move(ca), "simulator CA"));
}

std::shared_ptr<attestation::Nsm> Simulator(std::shared_ptr<const host::SimulatorCa> ca,
                                            bool debug) {
  host::SimulatorOptions options;
  options.boot_pcrs = {{0, Pcr(0xa0)}, {1, Pcr(0xa1)}, {2, Pcr(0xa2)}};
  options.debug = debug;
  options.module_id =
      debug ? "i-0c0f0a0b0c0d0e0f0-enc0000000000000002" : "i-0c0f0a0b0c0d0e0f0-enc0000000000000001";
  options.clock = [] { return FromUnixMillis(kT0); };
  return Must(host::NsmSimulator::Create(std::move(ca), std::move(options)), "simulator");
}

Bytes Attest(attestation::Nsm& nsm, std::optional<Bytes> public_key, std::optional<Bytes> nonce) {
  attestation::AttestationRequest request;
  request.public_key = std::move(public_key);
  request.nonce = std::move(nonce);
  return Must(nsm.Attestation(request), "attestation");
}

// FindAndFlip flips one byte inside the first occurrence of `needle` in `doc`.
Bytes FindAndFlip(Bytes doc, ByteSpan needle) {
  auto it = std::search(doc.begin(), doc.end(), needle.begin(), needle.end());
  if (it == doc.end()) {
    Die("tampering: the PCR value is not in the document");
  }
  it[static_cast<ptrdiff_t>(needle.size() / 2)] ^= 0x01;
  return doc;
}

void SimulatorCases(Writer& w, const std::string& dir) {
  auto ca = MakeCa(dir + "/ca");
  auto other_ca = MakeCa(dir + "/other");
  const std::string root = ca->root().ToPem();
  const std::string other_root = other_ca->root().ToPem();
  auto nsm = Simulator(ca, false);
  auto debug_nsm = Simulator(ca, true);

  const Bytes key = crypto::RandomBytes(32);
  const Bytes nonce = crypto::RandomBytes(32);
  const Bytes plain = Attest(*nsm, std::nullopt, std::nullopt);
  const Bytes with_key = Attest(*nsm, key, std::nullopt);
  const Bytes with_nonce = Attest(*nsm, key, nonce);
  const Bytes debug = Attest(*debug_nsm, std::nullopt, std::nullopt);
  const int64_t at = kT0 + kSecond;
  const PcrMap pcr0 = {{0, Pcr(0xa0)}};
  const Bytes p0 = Pcr(0xa0);

  auto sim = [&](const std::string& name, const std::string& description, const TrustSpec& trust,
                 int64_t at_ms, ByteSpan document, const std::string& expect,
                 const std::string& pem) {
    w.Add(
        WithDocument(Attestation("attestation/sim/" + name, description, trust, pem, at_ms, expect,
                                 expect == "ok" ? std::optional<Bytes>(p0) : std::nullopt),
                     document));
  };
  TrustSpec t0{.accept = {pcr0}};
  sim("ok", "a simulator document, its root trusted, PCR0 accepted", t0, at, plain, "ok", root);
  sim("wrong_pcr0", "PCR0 differs from the only accepted set", {.accept = {{{0, Pcr(0xb0)}}}}, at,
      plain, "policy_violation", root);
  sim("second_set_matches", "the first accepted set differs, the second matches",
      {.accept = {{{0, Pcr(0xb0)}}, pcr0}}, at, plain, "ok", root);
  sim("pcr1_pcr2_ok", "a set naming PCR1 and PCR2 only",
      {.accept = {{{1, Pcr(0xa1)}, {2, Pcr(0xa2)}}}}, at, plain, "ok", root);
  sim("pcr1_pcr2_mismatch", "a set naming PCR1 and PCR2 only, PCR2 differs",
      {.accept = {{{1, Pcr(0xa1)}, {2, Pcr(0xb2)}}}}, at, plain, "policy_violation", root);
  sim("pcr3_missing_value", "a set naming PCR3 (zero in the document) with another value",
      {.accept = {{{0, Pcr(0xa0)}, {3, Pcr(0x03)}}}}, at, plain, "policy_violation", root);
  sim("too_old", "2 h after the document, max_age 1 h (the leaf is still valid)", t0,
      kT0 + 2 * kHour, plain, "expired", root);
  sim("max_age_3h", "2 h after the document, max_age 3 h", {.accept = {pcr0}, .max_age = "3h"},
      kT0 + 2 * kHour, plain, "ok", root);
  sim("leaf_expired", "4 h after the document (the leaf lives 3 h), max_age 1 d",
      {.accept = {pcr0}, .max_age = "1d"}, kT0 + 4 * kHour, plain, "expired", root);
  sim("before_validity", "10 min before the leaf certificate's validity", t0, kT0 - 10 * 60000,
      plain, "expired", root);
  Bytes bad_signature = plain;
  bad_signature.back() ^= 0x01;
  sim("tampered_signature", "the last byte of the ES384 signature flipped", t0, at, bad_signature,
      "verify_failed", root);
  sim("tampered_payload", "one byte of PCR0 flipped inside the signed payload", t0, at,
      FindAndFlip(plain, Pcr(0xa0)), "verify_failed", root);
  sim("truncated", "the document cut in half", t0, at, ByteSpan(plain.data(), plain.size() / 2),
      "malformed", root);
  Bytes trailing = plain;
  trailing.push_back(0x00);
  sim("trailing_byte", "one byte appended after the COSE_Sign1", t0, at, trailing, "malformed",
      root);
  sim("wrong_root", "root.pem is another simulator's root", t0, at, plain, "untrusted", other_root);
  sim("aws_root_only", "only the AWS root is trusted", {.roots = {"aws-nitro"}, .accept = {pcr0}},
      at, plain, "untrusted", "");
  {
    TrustSpec zero{.accept = {{{0, Bytes(48, 0)}}}};
    w.Add(WithDocument(Attestation("attestation/sim/debug_refused",
                                   "a debug-mode document (PCR0 zero) without allow_debug", zero,
                                   root, at, "policy_violation", std::nullopt),
                       debug));
    zero.allow_debug = true;
    w.Add(WithDocument(Attestation("attestation/sim/debug_allowed",
                                   "a debug-mode document with allow_debug = true", zero, root, at,
                                   "ok", Bytes(48, 0)),
                       debug));
  }
  auto keyed = [&](const std::string& name, const std::string& description, const TrustSpec& trust,
                   ByteSpan document, std::optional<Bytes> pk, std::optional<Bytes> n,
                   const std::string& expect) {
    ojson c =
        WithDocument(Attestation("attestation/sim/" + name, description, trust, root, at, expect,
                                 expect == "ok" ? std::optional<Bytes>(p0) : std::nullopt),
                     document);
    c["public_key"] = pk ? ojson(Hex(*pk)) : ojson(nullptr);
    c["nonce"] = n ? ojson(Hex(*n)) : ojson(nullptr);
    w.Add(std::move(c));
  };
  Bytes other_key = key;
  other_key[0] ^= 0xff;
  Bytes other_nonce = nonce;
  other_nonce[31] ^= 0xff;
  keyed("public_key_match", "public_key given and equal to the document's", t0, with_key, key,
        std::nullopt, "ok");
  keyed("public_key_mismatch", "public_key given and different", t0, with_key, other_key,
        std::nullopt, "policy_violation");
  keyed("public_key_absent", "public_key given, the document binds none", t0, plain, key,
        std::nullopt, "policy_violation");
  TrustSpec fresh{.accept = {pcr0}, .fresh = true};
  keyed("fresh_nonce_match", "fresh = true, the nonce equals the document's", fresh, with_nonce,
        key, nonce, "ok");
  keyed("fresh_nonce_mismatch", "fresh = true, another nonce", fresh, with_nonce, key, other_nonce,
        "policy_violation");
  keyed("fresh_nonce_absent", "fresh = true, the document carries no nonce", fresh, with_key, key,
        nonce, "policy_violation");
  keyed("fresh_without_nonce", "fresh = true and no nonce given: the caller's mistake", fresh,
        with_nonce, key, std::nullopt, "invalid_argument");

  // Trust files that must not parse: the verdict is the parse error's.
  auto bad_trust = [&](const std::string& name, const std::string& description,
                       const std::string& text) {
    ojson c = WithDocument(
        Attestation("trust/" + name, description, t0, root, at, "invalid_argument", std::nullopt),
        plain);
    c["trust"] = text;
    w.Add(std::move(c));
  };
  bad_trust("no_accept", "a trust file naming no PCR set and no genesis",
            "roots = [\"root.pem\"]\n");
  bad_trust("short_pcr", "a PCR of 95 hex digits",
            "roots = [\"root.pem\"]\n\n[[accept]]\nPCR0 = \"" + Hex(p0).substr(1) + "\"\n");
  bad_trust("empty_set", "an [[accept]] set with no PCR", "roots = [\"root.pem\"]\n\n[[accept]]\n");
  bad_trust("unknown_key", "an unknown key",
            "roots = [\"root.pem\"]\nallow_everything = true\n\n[[accept]]\nPCR0 = \"" + Hex(p0) +
                "\"\n");
  bad_trust("no_roots", "no trusted root",
            "roots = []\n\n[[accept]]\nPCR0 = \"" + Hex(p0) + "\"\n");
}

void FixtureCases(Writer& w, const std::string& fixtures_dir) {
  Bytes json_text = Must(ReadFile(fixtures_dir + "/nitro/expected.json", 1 << 22), "expected.json");
  auto expected = nlohmann::json::parse(AsString(json_text));
  Bytes sim_root;
  for (const auto& doc : expected["documents"]) {
    const std::string file = doc["file"].get<std::string>();
    std::string label = file.substr(4);  // Without "att_".
    label = label.substr(0, label.find(".cose"));
    const int64_t at = doc["verify_at_ms"].get<int64_t>();
    PcrMap pcrs;
    for (const auto& [index, value] : doc["pcrs"].items()) {
      pcrs[static_cast<uint32_t>(std::stoul(index))] =
          Must(HexDecode(value.get<std::string>()), "pcr");
    }
    const Bytes p0 = pcrs.at(0);
    const bool debug = p0 == Bytes(48, 0);
    auto add = [&](const std::string& what, const std::string& description, const TrustSpec& t,
                   int64_t at_ms, const std::string& expect, const std::string& pem = "") {
      ojson c = Attestation("attestation/aws/" + label + "/" + what, description, t, pem, at_ms,
                            expect, expect == "ok" ? std::optional<Bytes>(p0) : std::nullopt);
      c["document_fixture"] = file;
      w.Add(std::move(c));
    };
    TrustSpec ok{.roots = {"aws-nitro"}, .accept = {{{0, p0}}}, .allow_debug = debug};
    add("ok", "a real AWS document at its own timestamp, its PCR0 accepted", ok, at, "ok");
    if (debug) {
      TrustSpec strict = ok;
      strict.allow_debug = false;
      add("debug_refused", "a real debug-mode document without allow_debug", strict, at,
          "policy_violation");
      continue;
    }
    Bytes wrong = p0;
    wrong[47] ^= 0x01;
    add("wrong_pcr0", "PCR0 with its last byte changed",
        {.roots = {"aws-nitro"}, .accept = {{{0, wrong}}}}, at, "policy_violation");
    add("year_later", "365 days after its timestamp (the leaf lives 3 h), max_age 400 d",
        {.roots = {"aws-nitro"}, .accept = {{{0, p0}}}, .max_age = "400d"}, at + 365 * kDay,
        "expired");
    add("pcr1_pcr2", "a set naming its PCR1 and PCR2",
        {.roots = {"aws-nitro"}, .accept = {{{1, pcrs.at(1)}, {2, pcrs.at(2)}}}}, at, "ok");
  }
}

// SimRootOnlyForAws: a real AWS document when only a simulator root is trusted.
void SimRootOnlyForAws(Writer& w, const std::string& dir) {
  auto ca = MakeCa(dir + "/ca");
  Bytes p0 = Must(HexDecode("f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d55999363326"
                            "87e6f66fc890ac8cf150142d8b"),
                  "pcr0");
  ojson c =
      Attestation("attestation/aws/2022-10-13_evervault_nondebug/sim_root_only",
                  "a real AWS document, only a simulator root trusted", {.accept = {{{0, p0}}}},
                  ca->root().ToPem(), 1665651482136, "untrusted", std::nullopt);
  c["document_fixture"] = "att_2022-10-13_evervault_nondebug.cose";
  w.Add(std::move(c));
}

upgrade::testing::StepSpec Upgrade(uint8_t version, const crypto::Signer* control = nullptr) {
  upgrade::testing::StepSpec spec;
  spec.new_pcrs = Pcrs(version);
  spec.id = std::string("v").append(std::to_string(version));
  spec.control = control;
  return spec;
}

void ChainCases(Writer& w, const std::string& dir) {
  using upgrade::testing::ChainBuilder;
  auto b = Must(ChainBuilder::Create(dir + "/chain"), "chain builder");
  const std::string root = b->ca()->root().ToPem();
  const Bytes key = crypto::RandomBytes(32);
  auto head_bytes = [](const upgrade::Digest& d) { return Bytes(d.begin(), d.end()); };
  const std::string genesis = Hex(b->genesis_hash());

  const std::vector<Bytes> chain0 = b->chain();
  const Bytes doc0 = Must(b->Document(Pcrs(1), key, head_bytes(b->head())), "doc0");
  Must(b->Step(Upgrade(2)), "step 1");
  const std::vector<Bytes> chain1 = b->chain();
  const upgrade::Digest head1 = b->head();
  const Bytes doc1 = Must(b->Document(Pcrs(2), key, head_bytes(head1)), "doc1");
  Must(b->Step(Upgrade(3)), "step 2");
  const std::vector<Bytes> chain2 = b->chain();
  const Bytes doc2 = Must(b->Document(Pcrs(3), key, head_bytes(b->head())), "doc2");
  const Bytes doc2_old_head = Must(b->Document(Pcrs(3), key, head_bytes(head1)), "doc2 old");
  Must(b->Step(Upgrade(4)), "step 3");
  const std::vector<Bytes> chain3 = b->chain();
  const Bytes doc3 = Must(b->Document(Pcrs(4), key, head_bytes(b->head())), "doc3");

  // A second chain (same simulator CA) whose one step is signed by a key its genesis does not name.
  auto forged = Must(ChainBuilder::Create(dir + "/chain"), "forged builder");
  Must(forged->Step(Upgrade(2, &forged->other_control())), "forged step");
  const Bytes forged_doc = Must(forged->Document(Pcrs(2), key, head_bytes(forged->head())), "doc");

  auto add = [&](const std::string& name, const std::string& description, const TrustSpec& t,
                 const std::vector<Bytes>& chain, const Bytes& doc, const std::string& expect,
                 std::optional<Bytes> pcr0) {
    auto parsed = Must(attestation::ParseUnverified(doc), "parse");
    ojson c = WithDocument(Attestation("chain/" + name, description, t, root,
                                       static_cast<int64_t>(parsed.document.timestamp_ms) + kSecond,
                                       expect, std::move(pcr0)),
                           doc);
    c["chain"] = ojson::array();
    for (const Bytes& entry : chain) {
      c["chain"].push_back(Hex(entry));
    }
    c["public_key"] = Hex(key);
    w.Add(std::move(c));
  };
  TrustSpec by_genesis{.genesis = {genesis}};
  add("genesis_0_steps_ok", "genesis-only trust, a chain of just the genesis", by_genesis, chain0,
      doc0, "ok", Pcrs(1).at(0));
  add("genesis_1_step_ok", "genesis-only trust, one upgrade", by_genesis, chain1, doc1, "ok",
      Pcrs(2).at(0));
  add("genesis_3_steps_ok", "genesis-only trust, three upgrades", by_genesis, chain3, doc3, "ok",
      Pcrs(4).at(0));
  add("accept_v1_ok", "[[accept]] of the first release's PCRs, two upgrades later",
      {.accept = {Pcrs(1)}}, chain2, doc2, "ok", Pcrs(3).at(0));
  add("accept_other_pcrs", "[[accept]] of PCRs the chain never passes through",
      {.accept = {Pcrs(9)}}, chain2, doc2, "policy_violation", std::nullopt);
  std::string other_genesis = genesis;
  other_genesis[0] = other_genesis[0] == '0' ? '1' : '0';
  add("untrusted_genesis", "trust names another genesis", {.genesis = {other_genesis}}, chain2,
      doc2, "policy_violation", std::nullopt);
  add("no_chain", "genesis-only trust, the enclave presents no chain", by_genesis, {}, doc1,
      "policy_violation", std::nullopt);
  std::vector<Bytes> missing_step = {chain2[0], chain2[4], chain2[5], chain2[6]};
  add("gap_missing_step", "the first upgrade's three entries left out", by_genesis, missing_step,
      doc2, "policy_violation", std::nullopt);
  std::vector<Bytes> missing_entry = chain2;
  missing_entry.erase(missing_entry.begin() + 2);
  add("gap_missing_entry", "the first staging receipt left out", by_genesis, missing_entry, doc2,
      "malformed", std::nullopt);
  std::vector<Bytes> reordered = {chain2[0], chain2[4], chain2[5], chain2[6],
                                  chain2[1], chain2[2], chain2[3]};
  add("reordered_steps", "the two upgrades in the wrong order", by_genesis, reordered, doc2,
      "policy_violation", std::nullopt);
  std::vector<Bytes> swapped = chain2;
  std::swap(swapped[1], swapped[2]);
  add("swapped_entries", "a request and its staging receipt swapped", by_genesis, swapped, doc2,
      "malformed", std::nullopt);
  add("forged_control", "an upgrade request signed by a key the genesis does not name",
      {.genesis = {Hex(forged->genesis_hash())}}, forged->chain(), forged_doc, "verify_failed",
      std::nullopt);
  add("not_at_head", "the document binds the head before the last upgrade", by_genesis, chain2,
      doc2_old_head, "policy_violation", std::nullopt);
  add("old_image", "the document of the image before the last upgrade", by_genesis, chain2, doc1,
      "policy_violation", std::nullopt);
}

void HandshakeCases(Writer& w, const std::string& dir) {
  auto ca = MakeCa(dir + "/ca");
  auto other_ca = MakeCa(dir + "/other");
  const std::string root = ca->root().ToPem();
  auto nsm = Simulator(ca, false);
  const crypto::X25519Keypair server_key = crypto::X25519Keypair::Generate();
  const crypto::X25519Keypair stranger = crypto::X25519Keypair::Generate();
  channel::AttestationSource::Options options;
  options.clock = [] { return FromUnixMillis(kT0); };
  channel::AttestationSource source(nsm, server_key.public_key, options);
  channel::AttestationSource misbound(nsm, stranger.public_key, options);

  // Record returns message 2 for a client with ephemeral key `eph` (its ClientHello asks for a
  // fresh document when `fresh`), answered by an enclave with `server_key` and `src`.
  auto record = [&](const crypto::X25519Keypair& eph, bool fresh, channel::AttestationSource& src) {
    auto policy = std::make_shared<channel::TrustPolicy>();
    policy->verifier = std::make_shared<const attestation::Verifier>(
        Must(attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {ca->root()}),
             "verifier"));
    policy->accept = {{{0, Pcr(0xa0)}}};
    policy->freshness = fresh ? channel::Freshness::kFresh : channel::Freshness::kCached;
    auto client = Must(channel::ClientHandshake::CreateWithEphemeral(policy, eph), "client");
    Bytes m1 = Must(client.Start(), "message 1");
    auto server = Must(channel::ServerHandshake::Create(server_key, src), "server");
    return Must(server.ReadClientHello(m1), "message 2");
  };
  auto add = [&](const std::string& name, const std::string& description, const TrustSpec& t,
                 const std::string& pem, int64_t at_ms, const crypto::X25519Keypair& eph,
                 ByteSpan m2, const std::string& expect) {
    ojson c;
    c["name"] = "handshake/" + name;
    c["kind"] = "handshake";
    c["description"] = description;
    c["trust"] = TrustText(t);
    c["files"] = ojson::object();
    c["files"]["root.pem"] = pem;
    c["at_ms"] = at_ms;
    c["ephemeral"] = Hex(eph.private_key.Expose());
    c["message2"] = Hex(m2);
    c["expect"] = expect;
    if (expect == "ok") {
      c["expect_pcr0"] = Hex(Pcr(0xa0));
    }
    w.Add(std::move(c));
  };
  const crypto::X25519Keypair eph = crypto::X25519Keypair::Generate();
  const crypto::X25519Keypair eph_fresh = crypto::X25519Keypair::Generate();
  const Bytes cached = record(eph, false, source);
  const Bytes fresh = record(eph_fresh, true, source);
  const Bytes bound_elsewhere = record(eph, false, misbound);
  const int64_t at = kT0 + kSecond;
  const TrustSpec t0{.accept = {{{0, Pcr(0xa0)}}}};
  add("cached_ok", "a ServerHello with the enclave's cached document", t0, root, at, eph, cached,
      "ok");
  add("fresh_ok", "fresh = true: the document's nonce is the client's ephemeral key",
      {.accept = {{{0, Pcr(0xa0)}}}, .fresh = true}, root, at, eph_fresh, fresh, "ok");
  add("wrong_pcr0", "PCR0 differs from the only accepted set", {.accept = {{{0, Pcr(0xb0)}}}}, root,
      at, eph, cached, "policy_violation");
  add("wrong_root", "root.pem is another simulator's root", t0, other_ca->root().ToPem(), at, eph,
      cached, "untrusted");
  add("too_old", "2 h after the document, max_age 1 h", t0, root, kT0 + 2 * kHour, eph, cached,
      "expired");
  add("other_static_key", "the document binds another key than the enclave's Noise static key", t0,
      root, at, eph, bound_elsewhere, "policy_violation");
  Bytes flipped = cached;
  flipped[flipped.size() - 1] ^= 0x01;
  add("flipped_byte", "the last byte (the AEAD tag) of message 2 flipped", t0, root, at, eph,
      flipped, "verify_failed");
  Bytes flipped_payload = cached;
  flipped_payload[flipped_payload.size() / 2] ^= 0x01;
  add("flipped_payload_byte", "a byte in the middle of the encrypted payload flipped", t0, root, at,
      eph, flipped_payload, "verify_failed");
  add("truncated", "message 2 cut to 16 bytes (less than the server's ephemeral key)", t0, root, at,
      eph, ByteSpan(cached.data(), 16), "malformed");
  add("wrong_ephemeral", "replayed with another client ephemeral key than it was made for", t0,
      root, at, eph_fresh, cached, "verify_failed");
}

}  // namespace
}  // namespace enclavia::conformance

int main(int argc, char** argv) {
  using namespace enclavia;
  using namespace enclavia::conformance;
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: enclavia_make_vectors OUT.json [FIXTURES_DIR]\n";
    return 2;
  }
  if (!crypto::Init()) {
    Die("crypto init failed");
  }
  std::string fixtures;
  if (argc == 3) {
    fixtures = argv[2];
  } else if (auto found = testing::SharedFixturesDir()) {
    fixtures = *found;
  } else {
    Die("the shared fixtures (nitro/) are needed: set ENCLAVIA_FIXTURES or pass FIXTURES_DIR");
  }
  char tmpl[] = "/tmp/enclavia-make-vectors-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    Die("mkdtemp failed");
  }
  const std::string dir = tmpl;
  Writer w(fixtures);
  SimulatorCases(w, dir);
  FixtureCases(w, fixtures);
  SimRootOnlyForAws(w, dir);
  ChainCases(w, dir);
  HandshakeCases(w, dir);
  std::filesystem::remove_all(dir);

  std::ofstream out(argv[1], std::ios::binary | std::ios::trunc);
  out << w.Json().dump(1) << "\n";
  if (!out.flush()) {
    Die(std::string("cannot write ").append(argv[1]));
  }
  std::cerr << "wrote " << w.size() << " cases to " << argv[1] << "\n";
  return 0;
}
