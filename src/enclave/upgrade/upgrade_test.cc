// SPDX-License-Identifier: Apache-2.0
// The enclave's upgrade decisions (UpgradeState) with the NSM simulator and in-memory control
// keys, and a whole handover between two in-process ingress daemons through a fake host.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "enclave/ingress/daemon.h"
#include "enclave/upgrade/handover.h"
#include "enclave/upgrade/service.h"
#include "enclave/upgrade/state.h"
#include "host/nsm/simulator.h"
#include "lib/attestation/document.h"
#include "lib/crypto/random.h"
#include "lib/net/socket.h"
#include "lib/upgrade/chain.h"
#include "lib/upgrade/wire.h"

namespace enclavia::enclave {
namespace {

using upgrade::PcrMap;

constexpr uint64_t kWindow = 3600;

Bytes Pcr(uint8_t fill) { return Bytes(48, fill); }
PcrMap Pcrs(uint8_t base) { return {{0, Pcr(base)}, {1, Pcr(base + 1)}, {2, Pcr(base + 2)}}; }

uint64_t WallNow() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/enclave_upgrade_test.XXXXXX";
    ENCLAVIA_CHECK(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// World holds the simulator CA, control keys and a settable enclave clock.
class World {
 public:
  World() {
    auto ca = host::SimulatorCa::LoadOrCreate(dir_.path() + "/ca", {});
    ENCLAVIA_CHECK(ca.has_value());
    ca_ = std::make_shared<const host::SimulatorCa>(std::move(*ca));
    auto verifier = attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {ca_->root()});
    ENCLAVIA_CHECK(verifier.has_value());
    verifier_ = std::make_shared<const attestation::Verifier>(std::move(*verifier));
    now_ = WallNow();
  }

  std::shared_ptr<attestation::Nsm> Nsm(const PcrMap& pcrs) {
    host::SimulatorOptions options;
    for (const auto& [index, value] : pcrs) {
      options.boot_pcrs[static_cast<uint16_t>(index)] = value;
    }
    auto nsm = host::NsmSimulator::Create(ca_, options);
    ENCLAVIA_CHECK(nsm.has_value());
    return std::shared_ptr<attestation::Nsm>(std::move(*nsm));
  }

  std::shared_ptr<channel::AttestationSource> Source(const PcrMap& pcrs,
                                                     crypto::X25519PublicKey key = {}) {
    return std::make_shared<channel::AttestationSource>(Nsm(pcrs), key);
  }

  Bytes Genesis(const PcrMap& pcrs, bool upgradable = true) {
    upgrade::Genesis g;
    g.enclave_id = "app";
    g.first_pcrs = pcrs;
    g.control_keys = {control_.public_key().ToSpki()};
    g.upgradable = upgradable;
    g.min_staging_window_s = kWindow;
    g.created_unix = now_;
    auto entry = upgrade::SignGenesis(g, control_);
    ENCLAVIA_CHECK(entry.has_value());
    return *entry;
  }

  Bytes Request(const Bytes& genesis, const upgrade::Digest& head, const PcrMap& new_pcrs,
                const crypto::Signer* signer = nullptr, std::string id = "v2") {
    upgrade::UpgradeRequest r;
    r.genesis = upgrade::GenesisHash(genesis);
    r.previous_head = head;
    r.new_pcrs = new_pcrs;
    r.not_before_unix = now_;
    r.id = std::move(id);
    auto entry = upgrade::SignRequest(r, signer != nullptr ? *signer : control_);
    ENCLAVIA_CHECK(entry.has_value());
    return *entry;
  }

  Bytes Revocation(const Bytes& request) {
    auto entry = upgrade::SignRevocation({upgrade::RequestHash(request)}, control_);
    ENCLAVIA_CHECK(entry.has_value());
    return *entry;
  }

  UpgradeOptions Options(std::shared_ptr<channel::AttestationSource> source) {
    UpgradeOptions options;
    options.source = std::move(source);
    options.verifier = verifier_;
    options.now_unix = [this] { return now_.load(); };
    return options;
  }

  TempDir dir_;
  std::shared_ptr<const host::SimulatorCa> ca_;
  std::shared_ptr<const attestation::Verifier> verifier_;
  crypto::MemorySigner control_{crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519)};
  crypto::MemorySigner stranger_{
      crypto::PrivateKey::Generate(crypto::SignatureAlgorithm::kEd25519)};
  std::atomic<uint64_t> now_{0};
};

upgrade::Digest Head(const Bytes& genesis) { return upgrade::GenesisHash(genesis); }

Bytes UserDataOf(channel::AttestationSource& source) {
  auto document = source.Cached();
  ENCLAVIA_CHECK(document.has_value());
  auto parsed = attestation::ParseUnverified(*document);
  ENCLAVIA_CHECK(parsed.has_value());
  return parsed->document.user_data.value_or(Bytes{});
}

TEST(UpgradeStateTest, EmptyChainLeavesTheEnclaveUnchained) {
  World world;
  auto source = world.Source(Pcrs(1));
  auto state = UpgradeState::Boot({}, world.Options(source));
  ASSERT_TRUE(state) << state.error().message();
  EXPECT_EQ((*state)->phase(), UpgradePhase::kUnchained);
  EXPECT_TRUE(source->chain().empty());
  EXPECT_TRUE(UserDataOf(*source).empty());
  Bytes genesis = world.Genesis(Pcrs(1));
  auto staged = (*state)->Stage(world.Request(genesis, Head(genesis), Pcrs(10)));
  ASSERT_FALSE(staged);
  EXPECT_EQ(staged.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(staged.error().message().find("no genesis"), std::string::npos);
}

TEST(UpgradeStateTest, ChainedEnclaveBindsItsHeadAndServesItsChain) {
  World world;
  auto source = world.Source(Pcrs(1));
  Bytes genesis = world.Genesis(Pcrs(1));
  auto state = UpgradeState::Boot({{genesis}, {}, {}}, world.Options(source));
  ASSERT_TRUE(state) << state.error().message();
  EXPECT_EQ((*state)->phase(), UpgradePhase::kServing);
  EXPECT_EQ(source->chain(), std::vector<Bytes>{genesis});
  upgrade::Digest head = Head(genesis);
  EXPECT_EQ(UserDataOf(*source), Bytes(head.begin(), head.end()));
  EXPECT_EQ((*state)->ChainView().chain, std::vector<Bytes>{genesis});
}

TEST(UpgradeStateTest, RefusesAChainWhoseHeadIsNotItsImage) {
  World world;
  Bytes genesis = world.Genesis(Pcrs(1));
  auto state = UpgradeState::Boot({{genesis}, {}, {}}, world.Options(world.Source(Pcrs(50))));
  ASSERT_FALSE(state);
  EXPECT_EQ(state.error().code(), Code::kPolicyViolation);
}

TEST(UpgradeStateTest, RefusesAGenesisWithUnpinnedKeys) {
  World world;
  Bytes genesis = world.Genesis(Pcrs(1));
  UpgradeOptions options = world.Options(world.Source(Pcrs(1)));
  options.pinned_control_keys = {world.stranger_.public_key().ToSpki()};
  auto state = UpgradeState::Boot({{genesis}, {}, {}}, options);
  ASSERT_FALSE(state);
  EXPECT_EQ(state.error().code(), Code::kPolicyViolation);
  // And an image that pins keys refuses to run unchained.
  UpgradeOptions pinned = world.Options(world.Source(Pcrs(1)));
  pinned.pinned_control_keys = {world.control_.public_key().ToSpki()};
  EXPECT_FALSE(UpgradeState::Boot({}, pinned));
  EXPECT_TRUE(UpgradeState::Boot({{genesis}, {}, {}}, pinned));
}

class StagedFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = world_.Source(Pcrs(1));
    genesis_ = world_.Genesis(Pcrs(1));
    auto state = UpgradeState::Boot({{genesis_}, {}, {}}, world_.Options(source_));
    ASSERT_TRUE(state) << state.error().message();
    state_ = std::move(*state);
    request_ = world_.Request(genesis_, Head(genesis_), Pcrs(10));
  }
  World world_;
  std::shared_ptr<channel::AttestationSource> source_;
  Bytes genesis_;
  Bytes request_;
  std::unique_ptr<UpgradeState> state_;
};

TEST_F(StagedFixture, StagesARequestWithAnAttestedReceipt) {
  auto receipt = state_->Stage(request_);
  ASSERT_TRUE(receipt) << receipt.error().message();
  auto entry = upgrade::ParseEntry(*receipt);
  ASSERT_TRUE(entry) << entry.error().message();
  ASSERT_EQ(entry->type, upgrade::EntryType::kStaging);
  const auto& staging = std::get<upgrade::StagingReceipt>(entry->body);
  EXPECT_EQ(staging.request, upgrade::RequestHash(request_));
  EXPECT_EQ(staging.staged_at_unix, world_.now_.load());
  auto document = attestation::ParseUnverified(staging.attestation);
  ASSERT_TRUE(document);
  upgrade::Digest head = Head(genesis_);
  EXPECT_EQ(document->document.user_data, Bytes(head.begin(), head.end()));
  EXPECT_EQ(document->document.public_key->size(), 32u);
  // The host's view lists the request and its receipt.
  upgrade::Message view = state_->ChainView();
  EXPECT_EQ(view.staged, (std::vector<Bytes>{request_, *receipt}));
}

TEST_F(StagedFixture, RefusesAReplayedRequest) {
  ASSERT_TRUE(state_->Stage(request_));
  auto again = state_->Stage(request_);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Code::kAlreadyExists);
  // A request for another head (an old one replayed after an upgrade) is refused too.
  upgrade::Digest other{};
  other.fill(7);
  auto stale = state_->Stage(world_.Request(genesis_, other, Pcrs(10), nullptr, "old"));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code(), Code::kPolicyViolation);
}

TEST_F(StagedFixture, RefusesARequestForAnotherGenesis) {
  Bytes other = world_.Genesis(Pcrs(20));
  auto staged = state_->Stage(world_.Request(other, Head(genesis_), Pcrs(10)));
  ASSERT_FALSE(staged);
  EXPECT_EQ(staged.error().code(), Code::kPolicyViolation);
}

TEST_F(StagedFixture, RefusesAForgedRequest) {
  auto staged =
      state_->Stage(world_.Request(genesis_, Head(genesis_), Pcrs(10), &world_.stranger_));
  ASSERT_FALSE(staged);
  EXPECT_EQ(staged.error().code(), Code::kVerifyFailed);
}

TEST(UpgradeStateTest, RefusesAnyUpgradeOfAnImmutableEnclave) {
  World world;
  Bytes genesis = world.Genesis(Pcrs(1), /*upgradable=*/false);
  auto state = UpgradeState::Boot({{genesis}, {}, {}}, world.Options(world.Source(Pcrs(1))));
  ASSERT_TRUE(state) << state.error().message();
  auto staged = (*state)->Stage(world.Request(genesis, Head(genesis), Pcrs(10)));
  ASSERT_FALSE(staged);
  EXPECT_EQ(staged.error().code(), Code::kPolicyViolation);
  EXPECT_NE(staged.error().message().find("immutable"), std::string::npos);
}

TEST_F(StagedFixture, ActivationWaitsForTheWindow) {
  ASSERT_TRUE(state_->Stage(request_));
  upgrade::Digest hash = upgrade::RequestHash(request_);
  world_.now_ += kWindow - 1;
  auto early = state_->BeginActivation(hash);
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(early.error().message().find("not due"), std::string::npos);
  world_.now_ += 1;
  auto due = state_->BeginActivation(hash);
  ASSERT_TRUE(due) << due.error().message();
  // One at a time.
  auto twice = state_->BeginActivation(hash);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), Code::kFailedPrecondition);
  state_->FinishActivation(/*handed_over=*/false);
  EXPECT_EQ(state_->phase(), UpgradePhase::kServing);
  EXPECT_TRUE(state_->BeginActivation(hash));
}

TEST_F(StagedFixture, ARevokedRequestNeverActivates) {
  ASSERT_TRUE(state_->Stage(request_));
  // A revocation for something not staged, or signed by a stranger, is refused.
  Bytes unknown = world_.Revocation(world_.Request(genesis_, Head(genesis_), Pcrs(30), nullptr,
                                                   "other"));
  EXPECT_EQ(state_->Revoke(unknown).error().code(), Code::kNotFound);
  auto forged = upgrade::SignRevocation({upgrade::RequestHash(request_)}, world_.stranger_);
  ASSERT_TRUE(forged);
  EXPECT_EQ(state_->Revoke(*forged).error().code(), Code::kVerifyFailed);
  ASSERT_TRUE(state_->Revoke(world_.Revocation(request_)));
  world_.now_ += kWindow;
  auto activation = state_->BeginActivation(upgrade::RequestHash(request_));
  ASSERT_FALSE(activation);
  EXPECT_EQ(activation.error().code(), Code::kPolicyViolation);
  EXPECT_NE(activation.error().message().find("revoked"), std::string::npos);
}

TEST_F(StagedFixture, ASupersededEnclaveRefusesEverything) {
  ASSERT_TRUE(state_->Stage(request_));
  world_.now_ += kWindow;
  upgrade::Digest hash = upgrade::RequestHash(request_);
  auto activation = state_->BeginActivation(hash);
  ASSERT_TRUE(activation) << activation.error().message();
  crypto::X25519PublicKey successor{};
  successor.fill(5);
  auto receipt = state_->SignActivation(*activation, successor, std::nullopt);
  ASSERT_TRUE(receipt) << receipt.error().message();
  state_->FinishActivation(/*handed_over=*/true);
  EXPECT_EQ(state_->phase(), UpgradePhase::kSuperseded);
  EXPECT_EQ(state_->BeginActivation(hash).error().code(), Code::kFailedPrecondition);
  EXPECT_EQ(state_->Stage(world_.Request(genesis_, Head(genesis_), Pcrs(40), nullptr, "v3"))
                .error()
                .code(),
            Code::kFailedPrecondition);
  // The chain with this step verifies: what the successor will check.
  std::vector<Bytes> chain = {genesis_, request_, state_->ChainView().staged[1], *receipt};
  auto verified = upgrade::VerifyChain(chain, {world_.verifier_, false});
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_EQ(verified->head_pcrs, Pcrs(10));
}

TEST_F(StagedFixture, ARestartedEnclaveRelearnsItsStagedRequests) {
  auto receipt = state_->Stage(request_);
  ASSERT_TRUE(receipt);
  Bytes bogus = *receipt;
  bogus[bogus.size() - 1] ^= 1;  // A receipt whose signature no longer verifies is dropped.
  Bytes other = world_.Request(genesis_, Head(genesis_), Pcrs(30), nullptr, "other");
  auto restarted = UpgradeState::Boot({{genesis_}, {request_, *receipt, other, bogus}, {}},
                                      world_.Options(world_.Source(Pcrs(1))));
  ASSERT_TRUE(restarted) << restarted.error().message();
  EXPECT_EQ((*restarted)->ChainView().staged, (std::vector<Bytes>{request_, *receipt}));
  world_.now_ += kWindow;
  EXPECT_TRUE((*restarted)->BeginActivation(upgrade::RequestHash(request_)));
}

// ── A whole handover: two ingress daemons and a fake host ──

class FakeRings : public RingStore {
 public:
  Result<std::optional<crypto::SecretBytes>> Load() override {
    if (ring_.empty()) {
      return std::optional<crypto::SecretBytes>();
    }
    return std::optional<crypto::SecretBytes>(crypto::SecretBytes(ByteSpan(ring_)));
  }
  Result<void> Replace(const crypto::SecretBytes& ring) override {
    std::lock_guard lock(mu_);
    replaced_ = Bytes(ring.Expose().begin(), ring.Expose().end());
    return Ok();
  }
  Bytes ring_;
  std::mutex mu_;
  Bytes replaced_;
};

// FakeHost serves one enclave's parent port 5006: "chain" from `answer`, "successor" as a pipe
// to `successor` (an ingress address).
class FakeHost {
 public:
  FakeHost(net::Address listen, upgrade::Message answer, std::optional<net::Address> successor)
      : answer_(std::move(answer)), successor_(std::move(successor)) {
    auto fd = net::ListenOn(listen);
    ENCLAVIA_CHECK(fd.has_value());
    listener_ = std::move(*fd);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeHost() {
    stop_ = true;
    ::shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
    for (auto& t : pipes_) {
      t.join();
    }
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        return;
      }
      sys::UniqueFd conn(c);
      auto request = upgrade::ReadMessage(conn.get(), std::chrono::seconds(5));
      if (!request) {
        continue;
      }
      if (request->type == upgrade::MessageType::kChain) {
        (void)upgrade::WriteMessage(conn.get(), answer_);
        continue;
      }
      if (request->type == upgrade::MessageType::kSuccessor && successor_.has_value()) {
        auto peer = net::Connect(*successor_);
        ENCLAVIA_CHECK(peer.has_value());
        upgrade::Message ok;
        ok.type = upgrade::MessageType::kOk;
        (void)upgrade::WriteMessage(conn.get(), ok);
        pipes_.emplace_back([a = std::move(conn), b = std::move(*peer)]() mutable {
          Splice(a.get(), b.get());
        });
      }
    }
  }
  // Splice copies both ways until either side ends.
  static void Splice(int a, int b) {
    std::thread back([a, b] { Copy(b, a); });
    Copy(a, b);
    ::shutdown(a, SHUT_RDWR);
    ::shutdown(b, SHUT_RDWR);
    back.join();
  }
  static void Copy(int from, int to) {
    uint8_t buf[16384];
    for (;;) {
      ssize_t n = ::read(from, buf, sizeof(buf));
      if (n <= 0 || !sys::SendFull(to, ByteSpan(buf, static_cast<size_t>(n)))) {
        ::shutdown(to, SHUT_WR);
        return;
      }
    }
  }

  upgrade::Message answer_;
  std::optional<net::Address> successor_;
  sys::UniqueFd listener_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> pipes_;
};

net::Address Unix(const std::string& path) {
  net::Address a;
  a.family = net::Family::kUnix;
  a.host = path;
  return a;
}

TEST(HandoverTest, OldEnclaveActivatesItsSuccessor) {
  World world;
  TempDir dir;
  Bytes genesis = world.Genesis(Pcrs(1));

  // The old enclave: chained at genesis, a request staged, the window over.
  auto old_nsm = world.Nsm(Pcrs(1));
  auto old_rings = std::make_shared<FakeRings>();
  old_rings->ring_ = Bytes(32, 0x42);
  boost::asio::io_context io;
  auto host_old = std::make_unique<FakeHost>(Unix(dir.path() + "/old-5006.sock"),
                                             upgrade::Message{upgrade::MessageType::kChain,
                                                              {genesis}, {}, {}, {}, 0, {}},
                                             Unix(dir.path() + "/new-5000.sock"));
  std::atomic<int> quiesced{0};
  std::atomic<int> superseded{0};
  DaemonOptions old_options;
  old_options.ingress_listen = Unix(dir.path() + "/old-5000.sock");
  old_options.attestation_listen = Unix(dir.path() + "/old-5001.sock");
  UpgradeDaemonOptions old_upgrade;
  old_upgrade.service_listen = Unix(dir.path() + "/old-5005.sock");
  old_upgrade.parent_upgrade = Unix(dir.path() + "/old-5006.sock");
  old_upgrade.verifier = world.verifier_;
  old_upgrade.rings = old_rings;
  old_upgrade.quiesce = [&] {
    ++quiesced;
    return Result<void>(Ok());
  };
  old_upgrade.on_superseded = [&] { ++superseded; };
  old_upgrade.now_unix = [&world] { return world.now_.load(); };
  old_options.upgrade = old_upgrade;
  auto old_daemon = Daemon::Create(io, old_nsm, old_options);
  ASSERT_TRUE(old_daemon) << old_daemon.error().message();
  auto& old_state = (*old_daemon)->upgrade_state();
  ASSERT_EQ(old_state->phase(), UpgradePhase::kServing);
  // The old enclave's clock is the test's.
  Bytes request = world.Request(genesis, Head(genesis), Pcrs(10));
  auto staged = upgrade::Call((*old_daemon)->upgrade_address(),
                              upgrade::Message{upgrade::MessageType::kStage, {}, {}, {}, request,
                                               0, {}},
                              std::chrono::seconds(10));
  ASSERT_TRUE(staged) << staged.error().message();
  ASSERT_EQ(staged->type, upgrade::MessageType::kStaged);

  // The successor: launched with pending = the request, the staged list from the old one.
  auto new_rings = std::make_shared<FakeRings>();
  upgrade::Message successor_view{upgrade::MessageType::kChain, {genesis}, {request, staged->entry},
                                  request, {}, 0, {}};
  auto host_new = std::make_unique<FakeHost>(Unix(dir.path() + "/new-5006.sock"), successor_view,
                                             std::nullopt);
  std::promise<void> ready;
  DaemonOptions new_options;
  new_options.ingress_listen = Unix(dir.path() + "/new-5000.sock");
  new_options.attestation_listen = Unix(dir.path() + "/new-5001.sock");
  new_options.allowed_ports = {8080};
  UpgradeDaemonOptions new_upgrade;
  new_upgrade.service_listen = Unix(dir.path() + "/new-5005.sock");
  new_upgrade.parent_upgrade = Unix(dir.path() + "/new-5006.sock");
  new_upgrade.verifier = world.verifier_;
  new_upgrade.rings = new_rings;
  new_upgrade.on_ready = [&] { ready.set_value(); };
  new_upgrade.now_unix = [&world] { return world.now_.load(); };
  new_options.upgrade = new_upgrade;
  auto new_daemon = Daemon::Create(io, world.Nsm(Pcrs(10)), new_options);
  ASSERT_TRUE(new_daemon) << new_daemon.error().message();
  auto& new_state = (*new_daemon)->upgrade_state();
  ASSERT_EQ(new_state->phase(), UpgradePhase::kAwaitingHandover);

  // Runners run `io` until the end of the test, however it ends.
  struct Runners {
    explicit Runners(boost::asio::io_context& io) : io_(io), guard_(io.get_executor()) {
      for (int i = 0; i < 2; ++i) {
        threads_.emplace_back([&io] { io.run(); });
      }
    }
    ~Runners() {
      guard_.reset();
      io_.stop();
      for (auto& t : threads_) {
        t.join();
      }
    }
    boost::asio::io_context& io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
    std::vector<std::thread> threads_;
  };
  Runners runners(io);

  // Before the window ends the old enclave refuses; afterwards it hands over.
  upgrade::Digest request_hash = upgrade::RequestHash(request);
  upgrade::Message activate{upgrade::MessageType::kActivate, {}, {}, {},
                            Bytes(request_hash.begin(), request_hash.end()), 0, {}};
  auto early = upgrade::Call((*old_daemon)->upgrade_address(), activate, std::chrono::seconds(30));
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code(), Code::kFailedPrecondition);
  world.now_ += kWindow;
  auto activated =
      upgrade::Call((*old_daemon)->upgrade_address(), activate, std::chrono::seconds(60));
  ASSERT_TRUE(activated) << activated.error().message();
  EXPECT_EQ(activated->type, upgrade::MessageType::kActivated);
  ASSERT_EQ(ready.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);

  // The old enclave tells init it is superseded after it has answered the host.
  for (int i = 0; i < 500 && superseded.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(quiesced.load(), 1);
  EXPECT_EQ(superseded.load(), 1);
  EXPECT_EQ(old_state->phase(), UpgradePhase::kSuperseded);
  EXPECT_EQ(new_state->phase(), UpgradePhase::kServing);
  EXPECT_EQ(new_rings->replaced_, old_rings->ring_);
  std::vector<Bytes> chain = {genesis, request, staged->entry, activated->entry};
  EXPECT_EQ(new_state->chain(), chain);
  upgrade::Digest head = upgrade::HeadAfterActivation(activated->entry);
  EXPECT_EQ(new_state->head(), head);
  // The old one refuses everything now.
  auto after = upgrade::Call((*old_daemon)->upgrade_address(),
                             upgrade::Message{upgrade::MessageType::kChain, {}, {}, {}, {}, 0, {}},
                             std::chrono::seconds(10));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code(), Code::kFailedPrecondition);

  (*old_daemon)->Stop();
  (*new_daemon)->Stop();
}

// A host that launches other code as the successor: the old enclave's fresh-attestation handshake
// refuses its PCRs, so nothing is quiesced, signed or handed over, and the old enclave serves on.
TEST(HandoverTest, ASuccessorWithOtherPcrsGetsNothing) {
  World world;
  TempDir dir;
  Bytes genesis = world.Genesis(Pcrs(1));
  auto old_rings = std::make_shared<FakeRings>();
  old_rings->ring_ = Bytes(32, 0x42);
  boost::asio::io_context io;
  auto host_old = std::make_unique<FakeHost>(Unix(dir.path() + "/old-5006.sock"),
                                             upgrade::Message{upgrade::MessageType::kChain,
                                                              {genesis}, {}, {}, {}, 0, {}},
                                             Unix(dir.path() + "/evil-5000.sock"));
  std::atomic<int> quiesced{0};
  std::atomic<int> superseded{0};
  DaemonOptions old_options;
  old_options.ingress_listen = Unix(dir.path() + "/old-5000.sock");
  old_options.attestation_listen = Unix(dir.path() + "/old-5001.sock");
  UpgradeDaemonOptions old_upgrade;
  old_upgrade.service_listen = Unix(dir.path() + "/old-5005.sock");
  old_upgrade.parent_upgrade = Unix(dir.path() + "/old-5006.sock");
  old_upgrade.verifier = world.verifier_;
  old_upgrade.rings = old_rings;
  old_upgrade.quiesce = [&] {
    ++quiesced;
    return Result<void>(Ok());
  };
  old_upgrade.on_superseded = [&] { ++superseded; };
  old_upgrade.now_unix = [&world] { return world.now_.load(); };
  old_options.upgrade = old_upgrade;
  auto old_daemon = Daemon::Create(io, world.Nsm(Pcrs(1)), old_options);
  ASSERT_TRUE(old_daemon) << old_daemon.error().message();
  Bytes request = world.Request(genesis, Head(genesis), Pcrs(10));
  auto staged = upgrade::Call((*old_daemon)->upgrade_address(),
                              upgrade::Message{upgrade::MessageType::kStage, {}, {}, {}, request,
                                               0, {}},
                              std::chrono::seconds(10));
  ASSERT_TRUE(staged) << staged.error().message();

  // The "successor" the host launched runs PCRs 20, not the staged 10 (an unchained enclave:
  // its host answers no chain).
  auto evil_rings = std::make_shared<FakeRings>();
  auto host_evil = std::make_unique<FakeHost>(
      Unix(dir.path() + "/evil-5006.sock"),
      upgrade::Message{upgrade::MessageType::kChain, {}, {}, {}, {}, 0, {}}, std::nullopt);
  DaemonOptions evil_options;
  evil_options.ingress_listen = Unix(dir.path() + "/evil-5000.sock");
  evil_options.attestation_listen = Unix(dir.path() + "/evil-5001.sock");
  UpgradeDaemonOptions evil_upgrade;
  evil_upgrade.service_listen = Unix(dir.path() + "/evil-5005.sock");
  evil_upgrade.parent_upgrade = Unix(dir.path() + "/evil-5006.sock");
  evil_upgrade.verifier = world.verifier_;
  evil_upgrade.rings = evil_rings;
  evil_upgrade.now_unix = [&world] { return world.now_.load(); };
  evil_options.upgrade = evil_upgrade;
  auto evil_daemon = Daemon::Create(io, world.Nsm(Pcrs(20)), evil_options);
  ASSERT_TRUE(evil_daemon) << evil_daemon.error().message();

  std::vector<std::thread> runners;
  auto guard = boost::asio::make_work_guard(io);
  for (int i = 0; i < 2; ++i) {
    runners.emplace_back([&io] { io.run(); });
  }
  world.now_ += kWindow;
  upgrade::Digest request_hash = upgrade::RequestHash(request);
  auto activated = upgrade::Call(
      (*old_daemon)->upgrade_address(),
      upgrade::Message{upgrade::MessageType::kActivate, {}, {}, {},
                       Bytes(request_hash.begin(), request_hash.end()), 0, {}},
      std::chrono::seconds(60));
  EXPECT_FALSE(activated);
  if (!activated) {
    EXPECT_NE(activated.error().message().find("PCR"), std::string::npos)
        << activated.error().message();
  }
  EXPECT_EQ(quiesced.load(), 0);
  EXPECT_EQ(superseded.load(), 0);
  EXPECT_TRUE(evil_rings->replaced_.empty());
  EXPECT_EQ((*old_daemon)->upgrade_state()->phase(), UpgradePhase::kServing);

  (*old_daemon)->Stop();
  (*evil_daemon)->Stop();
  guard.reset();
  io.stop();
  for (auto& t : runners) {
    t.join();
  }
}

}  // namespace
}  // namespace enclavia::enclave
