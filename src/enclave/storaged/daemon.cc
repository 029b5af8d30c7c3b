// SPDX-License-Identifier: Apache-2.0
#include "enclave/storaged/daemon.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "enclave/storage/nbd_server.h"
#include "enclave/storaged/attach.h"
#include "enclave/storaged/keys.h"
#include "enclave/witness/link.h"
#include "enclave/witness/server.h"
#include "lib/base/flags.h"
#include "lib/attestation/nsm_socket.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/blockstore/volume.h"
#include "lib/config/enclave_config.h"
#include "lib/kms/local_kms.h"
#include "lib/storage/remote_store.h"
#include "lib/transport/transport.h"
#include "lib/upgrade/wire.h"
#include "lib/witness/link.h"
#include "lib/witness/witness_set.h"

namespace enclavia::enclave {
namespace {

using Clock = std::chrono::steady_clock;

void Say(int fd, const std::string& line) {
  if (fd < 0) {
    return;
  }
  std::string text = line + "\n";
  (void)!::write(fd, text.data(), text.size());
}

void Log(const std::string& line) { std::fprintf(stderr, "enclavia-storage: %s\n", line.c_str()); }

// HelloWithRetry waits for the host's storage service, which the agent starts just after the
// enclave: a refused connection is retried for `budget`.
Result<std::optional<storage::wire::Attachment>> HelloWithRetry(storage::RemoteObjectStore& store,
                                                                std::chrono::seconds budget) {
  auto deadline = Clock::now() + budget;
  for (;;) {
    auto hello = store.Hello();
    if (hello || hello.error().code() != Code::kUnavailable || Clock::now() >= deadline) {
      return hello;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// FetchOwnChain asks the host for this enclave's upgrade chain and verifies it (CheckOwnChain).
// No upgrade service on the host is an unchained enclave, as for the ingress (a host that hides
// the chain gains nothing: witnesses bind a chained volume to its genesis, not to PCR0). A
// successor whose activation the host has not recorded yet is asked again for `budget`.
Result<std::optional<OwnChain>> FetchOwnChain(transport::Mode mode, attestation::Nsm& nsm,
                                              std::chrono::seconds budget) {
  auto deadline = Clock::now() + budget;
  for (;;) {
    auto host = upgrade::FetchChain(
        transport::EnclaveToParent(mode, upgrade::kParentUpgradePort), std::chrono::seconds(10));
    if (!host) {
      if (host.error().code() == Code::kUnavailable) {
        Log("no upgrade service on the host (" + host.error().message() + "): unchained");
        return std::optional<OwnChain>();
      }
      return std::move(host).error().WithContext("the host's upgrade chain");
    }
    ASSIGN_OR_RETURN(std::shared_ptr<const attestation::Verifier> verifier,
                     VerifierFromOwnNsm(nsm));
    auto own = CheckOwnChain(*host, nsm, std::move(verifier));
    if (own || own.error().code() != Code::kUnavailable || Clock::now() >= deadline) {
      return own;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Result<channel::TrustPolicy> WitnessPolicy(const config::StorageConfig& storage,
                                           attestation::Nsm& nsm) {
  if (storage.witness_pcrs.empty()) {
    return Error(Code::kFailedPrecondition,
                 "the host attached witnesses but the image trusts none (storage.witness_pcrs)");
  }
  channel::TrustPolicy policy;
  ASSIGN_OR_RETURN(policy.verifier, VerifierFromOwnNsm(nsm));
  channel::PcrSet set;
  for (const auto& [index, hex] : storage.witness_pcrs) {
    ASSIGN_OR_RETURN(Bytes value, HexDecode(hex));
    set[index] = std::move(value);
  }
  policy.accept.push_back(std::move(set));
  policy.freshness = channel::Freshness::kFresh;
  return policy;
}

std::string StatusJson(const blockstore::Volume::Status& s, std::string_view state,
                       std::string_view path) {
  return std::string("{\"state\":\"") + std::string(state) + "\",\"path\":\"" +
         std::string(path) + "\",\"volume_id\":\"" + s.volume_id + "\",\"epoch\":" +
         std::to_string(s.epoch) + ",\"version\":" + std::to_string(s.version) +
         ",\"size_bytes\":" + std::to_string(s.size_bytes) + ",\"segments\":" +
         std::to_string(s.segments) + ",\"stored_bytes\":" + std::to_string(s.stored_bytes) +
         ",\"live_bytes\":" + std::to_string(s.live_bytes) + ",\"witnesses\":" +
         std::to_string(s.witnesses) + ",\"protection\":\"" + s.state + "\"}";
}

std::string ErrorJson(std::string_view message) {
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') {
      escaped.push_back('\\');
    }
    escaped.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  }
  return "{\"state\":\"error\",\"error\":\"" + escaped + "\"}";
}

// Unmount detaches the file system so btrfs writes everything back; a busy mount (a process
// still holds a file) is retried, then lazily detached.
void Unmount(const std::string& path) {
  for (int i = 0; i < 50; ++i) {
    if (::umount2(path.c_str(), 0) == 0 || errno == EINVAL || errno == ENOENT) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::umount2(path.c_str(), MNT_DETACH);
}

class Runner {
 public:
  explicit Runner(const StorageFlags& flags) : flags_(flags) {}

  int Run() {
    auto text = ReadFile(flags_.config_path, 1 << 20);
    if (!text) {
      return Fail(text.error().message());
    }
    auto config = config::ParseEnclaveConfig(AsString(*text));
    if (!config) {
      return Fail(config.error().message());
    }
    if (!config->storage.enabled) {
      Say(flags_.ready_fd, "none");
      return 0;
    }
    auto mode = transport::DetectMode();
    if (!mode) {
      return Fail(mode.error().message());
    }
    store_ = std::make_unique<storage::RemoteObjectStore>(
        flags_.storage.value_or(transport::EnclaveToParent(*mode, transport::kStoragePort)));
    auto attachment = HelloWithRetry(*store_, std::chrono::seconds(30));
    if (!attachment) {
      return Fail("the host's storage service: " + attachment.error().message());
    }
    if (!attachment->has_value()) {
      Log("no volume attached");
      Say(flags_.ready_fd, "none");
      return 0;
    }
    const storage::wire::Attachment& volume = **attachment;
    auto mounted = Mount(*config, *mode, volume);
    if (!mounted) {
      // A witness saw a longer chain of this enclave's genesis: this image was upgraded away
      // and must not serve (init refuses to run the app on this line).
      std::string line = SupersededLine(mounted.error().message()).value_or(
          mounted.error().message());
      (void)store_->Report(ErrorJson(line));
      return Fail(line);
    }
    (void)store_->Report(StatusJson(volume_->status(), "mounted", path_));
    Say(flags_.ready_fd, "ready " + path_);
    Log("volume " + volume.label + " mounted at " + path_);
    return Serve();
  }

 private:
  int Fail(const std::string& message) {
    Log(message);
    Say(flags_.ready_fd, "error " + message);
    return 1;
  }

  Result<void> Mount(const config::EnclaveConfig& config, transport::Mode mode,
                     const storage::wire::Attachment& volume) {
    ASSIGN_OR_RETURN(std::unique_ptr<attestation::Nsm> opened, attestation::OpenNsm(flags_.nsm_path));
    nsm_ = std::make_shared<witness::SerializedNsm>(std::shared_ptr<attestation::Nsm>(std::move(opened)));
    if (mode != transport::Mode::kLocal && !flags_.kms.has_value()) {
      // AwsKmsClient (src/lib/aws) needs credentials and the parent's proxy to AWS KMS, which
      // this version does not configure yet (docs/hardware.md).
      return Error(Code::kUnsupported, "AWS KMS is not configured for this enclave");
    }
    kms_ = std::make_unique<kms::LocalKmsClient>(
        nsm_, flags_.kms.value_or(transport::EnclaveToParent(mode, transport::kKmsPort)));
    // The KMS's port comes up with the enclave; a refused connection is retried briefly.
    auto deadline = Clock::now() + std::chrono::seconds(10);
    for (;;) {
      auto ring = LoadKeyRing(*store_, *kms_, volume.kms_key_id);
      if (ring) {
        ring_ = std::move(*ring);
        break;
      }
      if (ring.error().code() != Code::kUnavailable || Clock::now() >= deadline) {
        return std::move(ring).error().WithContext("volume key");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }

    // The upgrade chain (docs/storage.md, "Upgrades"): witnesses check it, bind the volume to
    // its genesis, and refuse this enclave once a longer chain of that genesis was seen.
    ASSIGN_OR_RETURN(std::optional<OwnChain> chain,
                     FetchOwnChain(mode, *nsm_, std::chrono::seconds(30)));
    witness::HelloOptions hello;
    if (chain) {
      hello.chain = chain->chain;
      hello.user_data = Bytes(chain->head.begin(), chain->head.end());
      Log("upgrade chain of " + std::to_string(chain->chain.size()) + " entries, head " +
          upgrade::DigestHex(chain->head).substr(0, 16));
    }

    std::vector<std::unique_ptr<witness::WitnessLink>> links;
    if (volume.witnesses > 0) {
      ASSIGN_OR_RETURN(channel::TrustPolicy policy, WitnessPolicy(config.storage, *nsm_));
      for (uint32_t i = 0; i < volume.witnesses && i < transport::kMaxWitnesses; ++i) {
        ChannelWitnessLinkOptions options;
        options.url = "ws://witness-" + std::to_string(i + 1) + "/";
        options.via = transport::EnclaveToParent(mode, transport::kWitnessPortBase + i);
        options.policy = policy;
        links.push_back(std::make_unique<ChannelWitnessLink>(
            "witness " + std::to_string(i + 1), std::move(options), nsm_, hello));
      }
    }
    freshness_ = std::make_unique<witness::WitnessSet>(std::move(links));

    blockstore::VolumeOptions options;
    options.label = volume.label;
    options.size_bytes = volume.size_bytes;
    options.store = store_.get();
    options.freshness = freshness_.get();
    options.key_ring = &ring_;
    // The first mount after an upgrade gives the ring's fresh secret the next epoch; the ring
    // is wrapped again (under this image's KMS key) and stored before anything uses it.
    options.store_key_ring = [this, key_id = volume.kms_key_id](const kms::KeyRing& ring) {
      Log("key ring: a new secret keys epoch " + std::to_string(ring.entries.back().first_epoch));
      return StoreKeyRing(*store_, *kms_, key_id, ring);
    };
    if (!config.storage.recovery_key.empty()) {
      ASSIGN_OR_RETURN(Bytes raw, HexDecode(config.storage.recovery_key));
      ASSIGN_OR_RETURN(options.recovery_key,
                       crypto::PublicKey::FromRaw(crypto::SignatureAlgorithm::kEd25519, raw));
    }
    options.recovery_statement = volume.recovery_statement;
    ASSIGN_OR_RETURN(volume_, blockstore::Volume::Mount(options));

    ASSIGN_OR_RETURN(nbd_, NbdServer::Start(NbdSocketPath(mode), *volume_, NbdOptions{}));
    const bool fresh = volume_->status().created_now;
    ASSIGN_OR_RETURN(std::string device, AttachBlockDevice(mode, fresh, volume.size_bytes));
    path_ = config.storage.path;
    std::error_code ec;
    std::filesystem::create_directories(path_, ec);
    if (::mount(device.c_str(), path_.c_str(), "btrfs", MS_NOSUID | MS_NODEV, nullptr) != 0) {
      return Error(Code::kIo, "mount btrfs at " + path_ + ": " + std::strerror(errno));
    }
    if (fresh && ::chown(path_.c_str(), config.app.uid, config.app.gid) != 0) {
      return Error(Code::kIo, "chown " + path_ + ": " + std::strerror(errno));
    }
    return Ok();
  }

  int Serve() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    // The host shows the status (`enclavia inspect`): sent when it changes (a commit), checked
    // four times a second, and every 10 s regardless.
    std::string last = StatusJson(volume_->status(), "mounted", path_);
    auto last_sent = Clock::now();
    for (;;) {
      timespec timeout{.tv_sec = 0, .tv_nsec = 250'000'000};
      int sig = ::sigtimedwait(&set, nullptr, &timeout);
      if (sig == SIGTERM || sig == SIGINT) {
        break;
      }
      std::string now = StatusJson(volume_->status(), "mounted", path_);
      if (now != last || Clock::now() - last_sent > std::chrono::seconds(10)) {
        (void)store_->Report(now);
        last = std::move(now);
        last_sent = Clock::now();
      }
    }
    Log("stopping: unmounting " + path_);
    Unmount(path_);
    auto flushed = volume_->Flush();
    nbd_->Stop();
    if (!flushed) {
      (void)store_->Report(ErrorJson("final commit failed: " + flushed.error().message()));
      Log("final commit failed: " + flushed.error().message());
      return 1;
    }
    (void)store_->Report(StatusJson(volume_->status(), "stopped", path_));
    return 0;
  }

  const StorageFlags& flags_;
  std::shared_ptr<attestation::Nsm> nsm_;
  std::unique_ptr<storage::RemoteObjectStore> store_;
  std::unique_ptr<kms::LocalKmsClient> kms_;
  kms::KeyRing ring_;
  std::unique_ptr<witness::WitnessSet> freshness_;
  std::unique_ptr<blockstore::Volume> volume_;
  std::unique_ptr<NbdServer> nbd_;
  std::string path_;
};

}  // namespace

Result<StorageFlags> ParseStorageFlags(const std::vector<std::string>& args) {
  StorageFlags flags;
  ASSIGN_OR_RETURN(std::vector<Flag> parsed, SplitFlags(args, {"--help", "-h"}));
  for (const Flag& flag : parsed) {
    if (flag.value.empty()) {
      flags.help = true;
    } else if (flag.name == "--config") {
      flags.config_path = flag.value;
    } else if (flag.name == "--nsm") {
      flags.nsm_path = flag.value;
    } else if (flag.name == "--ready-fd") {
      ASSIGN_OR_RETURN(flags.ready_fd, DescriptorFlag(flag));
    } else if (flag.name == "--storage" || flag.name == "--kms") {
      ASSIGN_OR_RETURN(net::Address address, net::ParseAddress(flag.value));
      (flag.name == "--storage" ? flags.storage : flags.kms) = address;
    } else {
      return UnexpectedFlag(flag);
    }
  }
  return flags;
}

int RunStorage(const StorageFlags& flags) {
  Runner runner(flags);
  return runner.Run();
}

}  // namespace enclavia::enclave
