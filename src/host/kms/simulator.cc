// SPDX-License-Identifier: Apache-2.0
#include "host/kms/simulator.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include <sys/socket.h>
#include <sys/stat.h>

#include "lib/base/file.h"
#include "lib/base/reader.h"
#include "lib/cbor/cbor.h"
#include "lib/crypto/aead.h"
#include "lib/crypto/random.h"
#include "lib/crypto/secret.h"

namespace enclavia::host {
namespace {

using cbor::Value;

constexpr uint8_t kBlobVersion = 1;
constexpr size_t kMaxKeyFileSize = 16 * 1024;

Error BadBlob() { return Error(Code::kVerifyFailed, "kms: ciphertext blob does not verify"); }

// BlobHeader is version || u8 length || key id: the blob's clear part, bound as associated data.
Bytes BlobHeader(const std::string& key_id) {
  Writer writer;
  writer.WriteU8(kBlobVersion);
  // Key ids are at most 64 bytes (ValidKeyId), so the u8 prefix always fits.
  ENCLAVIA_CHECK(writer.WritePrefixed8(AsBytes(key_id)).has_value());
  return writer.Finish();
}

Result<void> CheckPolicy(const KeyPolicy& policy) {
  if (policy.pcrs.empty()) {
    return Error(Code::kInvalidArgument, "kms: a key policy needs at least one PCR");
  }
  for (const auto& [index, value] : policy.pcrs) {
    if (index > attestation::kMaxPcrIndex || value.size() != attestation::kPcrSize) {
      return Error(Code::kInvalidArgument,
                   "kms: policy PCR" + std::to_string(index) + " must be 48 bytes, index < 32");
    }
  }
  return Ok();
}

std::string Short(ByteSpan value) {
  return HexEncode(value.first(std::min<size_t>(value.size(), 6))) + "...";
}

}  // namespace

Result<KeyPolicy> ImagePolicy(ByteSpan pcr0, bool debug) {
  if (pcr0.size() != attestation::kPcrSize) {
    return Error(Code::kInvalidArgument, "kms: PCR0 must be 48 bytes");
  }
  KeyPolicy policy;
  policy.pcrs[0] = debug ? Bytes(attestation::kPcrSize, 0) : Bytes(pcr0.begin(), pcr0.end());
  policy.allow_debug = debug;
  return policy;
}

std::string ImageKeyId(std::string_view name, ByteSpan pcr0) {
  std::string id;
  for (char c : name.substr(0, 40)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    id.push_back(ok ? c : '_');
  }
  if (id.empty() || id[0] == '.') {
    id.insert(id.begin(), 'k');
  }
  id.append("-").append(HexEncode(pcr0.first(std::min<size_t>(pcr0.size(), 8))));
  return id;
}

struct KmsSimulator::Key {
  crypto::AeadKey master;
  KeyPolicy policy;
};

Result<std::unique_ptr<KmsSimulator>> KmsSimulator::Open(const std::string& dir,
                                                         const crypto::Certificate& root,
                                                         KmsSimulatorOptions options) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return sys::IoError("kms: mkdir " + dir, errno);
  }
  ASSIGN_OR_RETURN(attestation::Verifier verifier,
                   attestation::Verifier::Create(attestation::AwsRoot::kDoNotTrust, {root}));
  if (!options.clock) {
    options.clock = [] { return SystemTime(std::chrono::system_clock::now()); };
  }
  return std::unique_ptr<KmsSimulator>(
      new KmsSimulator(dir, std::move(verifier), std::move(options)));
}

std::string KmsSimulator::KeyPath(const std::string& key_id) const {
  return dir_ + "/" + key_id + ".key";
}

Result<void> KmsSimulator::CreateKey(const std::string& key_id, const KeyPolicy& policy) {
  if (!kms::ValidKeyId(key_id)) {
    return Error(Code::kInvalidArgument, "kms: invalid key id");
  }
  RETURN_IF_ERROR(CheckPolicy(policy));
  std::lock_guard lock(mu_);
  struct stat st {};
  if (::stat(KeyPath(key_id).c_str(), &st) == 0) {
    return Error(Code::kAlreadyExists, "kms: key " + key_id + " exists");
  }
  crypto::SecretBytes master(crypto::kAeadKeySize);
  crypto::RandomFill(master.MutableBytes());
  Value::Map pcrs;
  for (const auto& [index, value] : policy.pcrs) {
    pcrs.emplace_back(Value::Uint(index), Value::ByteString(ByteSpan(value)));
  }
  Value::Map file;
  file.emplace_back(Value::TextString("v"), Value::Uint(1));
  file.emplace_back(Value::TextString("master"), Value::ByteString(master.Expose()));
  file.emplace_back(Value::TextString("pcrs"), Value::MakeMap(std::move(pcrs)));
  file.emplace_back(Value::TextString("allow_debug"), Value::Boolean(policy.allow_debug));
  Bytes encoded = cbor::Encode(Value::MakeMap(std::move(file)));
  auto written = WriteFileAtomic(KeyPath(key_id), encoded, 0600);
  crypto::Cleanse(encoded.data(), encoded.size());
  return written;
}

Result<void> KmsSimulator::EnsureKey(const std::string& key_id, const KeyPolicy& policy) {
  auto existing = LoadKey(key_id);
  if (existing) {
    if (existing->policy == policy) {
      return Ok();
    }
    return Error(Code::kFailedPrecondition, "kms: key " + key_id + " exists with another policy");
  }
  if (existing.error().code() != Code::kNotFound) {
    return std::move(existing).error();
  }
  auto created = CreateKey(key_id, policy);
  if (!created && created.error().code() == Code::kAlreadyExists) {
    return EnsureKey(key_id, policy);  // Lost a race with another creator: compare again.
  }
  return created;
}

Result<KmsSimulator::Key> KmsSimulator::LoadKey(const std::string& key_id) const {
  if (!kms::ValidKeyId(key_id)) {
    return Error(Code::kInvalidArgument, "kms: invalid key id");
  }
  struct stat st {};
  if (::stat(KeyPath(key_id).c_str(), &st) != 0 && errno == ENOENT) {
    return Error(Code::kNotFound, "kms: no key " + key_id);
  }
  ASSIGN_OR_RETURN(Bytes bytes, ReadFile(KeyPath(key_id), kMaxKeyFileSize));
  auto parsed = cbor::Decode(bytes);
  crypto::Cleanse(bytes.data(), bytes.size());
  auto corrupt = [&] {
    return Error(Code::kMalformed, "kms: key file of " + key_id + " is corrupt");
  };
  if (!parsed || !parsed->is_map()) {
    return corrupt();
  }
  const Value* master = parsed->Find("master");
  const Value* pcrs = parsed->Find("pcrs");
  const Value* debug = parsed->Find("allow_debug");
  if (master == nullptr || !master->is_bytes() || pcrs == nullptr || !pcrs->is_map() ||
      debug == nullptr || !debug->is_bool()) {
    return corrupt();
  }
  auto aead = crypto::AeadKey::Create(crypto::AeadAlgorithm::kAes256Gcm, master->as_bytes());
  if (!aead) {
    return corrupt();
  }
  KeyPolicy policy;
  policy.allow_debug = debug->as_bool();
  for (const auto& [index, value] : pcrs->as_map()) {
    if (!index.is_unsigned() || index.as_uint() > attestation::kMaxPcrIndex || !value.is_bytes()) {
      return corrupt();
    }
    policy.pcrs[static_cast<uint32_t>(index.as_uint())] = value.as_bytes();
  }
  return Key{std::move(*aead), std::move(policy)};
}

Result<kms::KmsResponse> KmsSimulator::Handle(const kms::KmsRequest& request) const {
  attestation::TrustPolicy trust;
  trust.allow_debug = true;  // Decided per key below.
  trust.max_age = options_.max_age;
  auto verified = verifier_.Verify(request.attestation, options_.clock(), trust);
  if (!verified) {
    return std::move(verified).error().WithContext("kms");
  }
  const attestation::AttestationDocument& doc = verified->document();
  if (!doc.public_key || doc.public_key->size() != crypto::kX25519KeySize) {
    return Error(Code::kInvalidArgument, "kms: the document's public_key must be an X25519 key");
  }

  std::string key_id = request.key_id;
  ByteSpan blob(request.blob);
  ByteSpan nonce;
  ByteSpan sealed;
  if (request.op == kms::Operation::kDecrypt) {
    Reader reader(blob);
    auto version = reader.ReadU8();
    auto id = reader.ReadPrefixed8();
    auto n = reader.ReadBytes(crypto::kAeadNonceSize);
    if (!version || *version != kBlobVersion || !id || !n ||
        reader.remaining() < crypto::kAeadTagSize + 1) {
      return BadBlob();
    }
    key_id = std::string(AsString(*id));
    if (!kms::ValidKeyId(key_id)) {
      return BadBlob();
    }
    nonce = *n;
    sealed = reader.rest();
  }
  ASSIGN_OR_RETURN(Key key, LoadKey(key_id));

  if (verified->debug() && !key.policy.allow_debug) {
    return Error(Code::kPolicyViolation,
                 "kms: key " + key_id + " refuses debug-mode enclaves (PCR0 is all zero)");
  }
  for (const auto& [index, expected] : key.policy.pcrs) {
    auto actual = doc.pcrs.find(index);
    if (actual == doc.pcrs.end()) {
      return Error(Code::kPolicyViolation,
                   "kms: key " + key_id + ": the enclave has no PCR" + std::to_string(index));
    }
    if (actual->second != expected) {
      return Error(Code::kPolicyViolation, "kms: key " + key_id + ": PCR" + std::to_string(index) +
                                               " is " + Short(actual->second) +
                                               ", the policy wants " + Short(expected));
    }
  }

  kms::KmsResponse response;
  crypto::SecretBytes data_key;
  if (request.op == kms::Operation::kEncrypt) {
    if (request.plaintext.empty() || request.plaintext.size() > kms::kMaxPlaintextSize) {
      return Error(Code::kInvalidArgument, "kms: plaintext must be 1..4096 bytes");
    }
    ASSIGN_OR_RETURN(response.blob, SealBlob(key, key_id, request.plaintext));
    return response;  // Nothing to seal back: the caller had the plaintext.
  }
  if (request.op == kms::Operation::kGenerateDataKey) {
    data_key = crypto::SecretBytes(kms::kDataKeySize);
    crypto::RandomFill(data_key.MutableBytes());
    ASSIGN_OR_RETURN(response.blob, SealBlob(key, key_id, data_key.Expose()));
  } else {
    auto opened = key.master.Open(nonce, BlobHeader(key_id), sealed);
    if (!opened || opened->size() == 0 || opened->size() > kms::kMaxPlaintextSize) {
      return BadBlob();
    }
    data_key = std::move(*opened);
  }
  ASSIGN_OR_RETURN(response.sealed_key, kms::SealToRecipient(data_key.Expose(), *doc.public_key));
  return response;
}

Result<Bytes> KmsSimulator::SealBlob(const Key& key, const std::string& key_id,
                                     ByteSpan plaintext) {
  Bytes header = BlobHeader(key_id);
  std::array<uint8_t, crypto::kAeadNonceSize> fresh{};
  crypto::RandomFill(fresh);
  ASSIGN_OR_RETURN(Bytes ciphertext, key.master.Seal(fresh, header, plaintext));
  Writer out;
  out.WriteBytes(header);
  out.WriteBytes(fresh);
  out.WriteBytes(ciphertext);
  return out.Finish();
}

Result<std::unique_ptr<KmsServer>> KmsServer::Start(const KmsSimulator& simulator,
                                                    const net::Address& listen) {
  ASSIGN_OR_RETURN(net::SocketAddress resolved, net::Resolve(listen));
  std::unique_ptr<KmsServer> server(new KmsServer(simulator));
  sys::UniqueFd fd(::socket(resolved.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return sys::IoError("kms: socket", errno);
  }
  if (listen.family == net::Family::kUnix) {
    struct stat st {};
    if (::lstat(listen.host.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      ::unlink(listen.host.c_str());  // A stale socket from an earlier run.
    }
    server->unix_path_ = listen.host;
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&resolved.storage), resolved.size) != 0) {
    return sys::IoError("kms: cannot bind " + listen.ToString(), errno);
  }
  if (::listen(fd.get(), 64) != 0) {
    return sys::IoError("kms: cannot listen on " + listen.ToString(), errno);
  }
  server->listener_ = std::move(fd);
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

KmsServer::~KmsServer() { Stop(); }

void KmsServer::Stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  ::shutdown(listener_.get(), SHUT_RDWR);
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  {
    std::unique_lock lock(mu_);
    for (int fd : connections_) {
      ::shutdown(fd, SHUT_RDWR);
    }
    idle_.wait(lock, [&] { return active_ == 0; });
  }
  if (!unix_path_.empty()) {
    ::unlink(unix_path_.c_str());
  }
}

void KmsServer::AcceptLoop() {
  constexpr size_t kMaxConnections = 64;
  while (!stopping_) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      return;
    }
    std::lock_guard lock(mu_);
    if (stopping_ || active_ >= kMaxConnections) {
      sys::UniqueFd refused(fd);
      continue;
    }
    connections_.insert(fd);
    ++active_;
    std::thread([this, fd] { Serve(fd); }).detach();
  }
}

void KmsServer::Serve(int fd) {
  {
    sys::UniqueFd owned(fd);
    while (true) {
      auto message = kms::ReadMessage(fd);
      if (!message) {
        if (message.error().code() != Code::kUnavailable) {
          (void)kms::WriteMessage(fd, kms::EncodeError(message.error()));
        }
        break;
      }
      auto request = kms::DecodeRequest(*message);
      if (!request) {
        (void)kms::WriteMessage(fd, kms::EncodeError(request.error()));
        break;
      }
      auto response = simulator_.Handle(*request);
      Bytes reply = response ? kms::EncodeResponse(*response) : kms::EncodeError(response.error());
      if (!kms::WriteMessage(fd, reply)) {
        break;
      }
    }
    std::lock_guard lock(mu_);
    connections_.erase(fd);
  }
  std::lock_guard lock(mu_);
  --active_;
  idle_.notify_all();
}

}  // namespace enclavia::host
