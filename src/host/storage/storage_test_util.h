// SPDX-License-Identifier: Apache-2.0
// Test-only helpers for the host storage tests: temporary directories, a real s3rver on loopback,
// and one environment per ObjectStore implementation for the shared conformance suite.
#ifndef ENCLAVIA_HOST_STORAGE_STORAGE_TEST_UTIL_H_
#define ENCLAVIA_HOST_STORAGE_STORAGE_TEST_UTIL_H_

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <sys/wait.h>

#include "host/storage/directory_store.h"
#include "host/storage/s3_store.h"
#include "host/storage/service.h"
#include "lib/aws/sigv4.h"
#include "lib/base/encoding.h"
#include "lib/storage/object_store.h"
#include "lib/storage/remote_store.h"
#include "lib/sys/process.h"

namespace enclavia::host::testing {

// TempDir is a fresh directory under /tmp (short, so Unix socket paths fit), removed at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/enclavia-hs-XXXXXX";
    ENCLAVIA_CHECK(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline constexpr char kS3Bucket[] = "test-bucket";
inline aws::HttpTransport VerifySigV4(std::string secret);  // Below.
inline constexpr char kS3AccessKey[] = "S3RVER";
inline constexpr char kS3Secret[] = "S3RVER";

// S3rver runs the s3rver npm package on 127.0.0.1 with an ephemeral port and a temporary data
// directory, bucket kS3Bucket created at startup; it checks SigV4 with S3RVER / S3RVER.
class S3rver {
 public:
  // Start returns nullopt-like kUnavailable with the reason to skip when node or s3rver is missing.
  static Result<std::unique_ptr<S3rver>> Start() {
    std::string script = ENCLAVIA_S3RVER;
    if (access(script.c_str(), R_OK) != 0) {
      return Error(Code::kUnavailable, "s3rver is not installed (scripts/install-deps)");
    }
    if (std::system("command -v node >/dev/null 2>&1") != 0) {
      return Error(Code::kUnavailable, "node is not installed");
    }
    auto server = std::unique_ptr<S3rver>(new S3rver());
    std::string data = server->dir_.path() + "/data";
    std::filesystem::create_directory(data);
    std::string log = server->dir_.path() + "/log";
    sys::UniqueFd log_fd(open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    // s3rver 3.7.1 makes continuation tokens with DES, which Node >= 17 only has in OpenSSL's
    // legacy provider: without it every truncated listing is a 500.
    ASSIGN_OR_RETURN(server->pid_,
                     sys::Spawn({"node", "--openssl-legacy-provider", script, "-d", data, "-a",
                                 "127.0.0.1", "-p", "0", "--configure-bucket", kS3Bucket},
                                log_fd.get()));
    constexpr std::string_view kReady = "listening on 127.0.0.1:";
    for (int i = 0; i < 600; ++i) {
      std::ifstream in(log);
      std::stringstream text;
      text << in.rdbuf();
      std::string s = text.str();
      if (size_t at = s.find(kReady); at != std::string::npos) {
        size_t end = s.find_first_not_of("0123456789", at + kReady.size());
        if (end != std::string::npos) {
          server->port_ = std::stoi(s.substr(at + kReady.size(), end - at - kReady.size()));
          return server;
        }
      }
      int status = 0;
      if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
        server->pid_ = -1;
        return Error(Code::kUnavailable, "s3rver exited at startup: " + s.substr(0, 300));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Error(Code::kUnavailable, "s3rver did not start within 30 s");
  }

  ~S3rver() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  S3Config Config(std::string key_prefix) const {
    S3Config config;
    config.endpoint = endpoint();
    config.bucket = kS3Bucket;
    config.key_prefix = std::move(key_prefix);
    config.credentials =
        aws::Credentials{kS3AccessKey, crypto::SecretBytes(AsBytes(kS3Secret)), ""};
    config.transport = VerifySigV4(kS3Secret);
    config.max_attempts = 2;
    config.first_backoff = std::chrono::milliseconds(10);
    return config;
  }

 private:
  S3rver() = default;
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// PercentDecode undoes URI encoding (test helper; invalid escapes are kept as they are).
inline std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexDigitValue(s[i + 1]) >= 0 &&
        HexDigitValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigitValue(s[i + 1]) * 16 + HexDigitValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// VerifySigV4 plays the part of S3's authentication for s3rver, which checks only that the access
// key exists: it recomputes the signature of the request exactly as it goes on the wire (path and
// query decoded from the URL, every signed header, the body's hash) with `secret`, and answers
// 403 SignatureDoesNotMatch on a mismatch, like S3; matching requests go to s3rver.
inline aws::HttpTransport VerifySigV4(std::string secret) {
  return [secret](const aws::HttpRequest& request) -> Result<aws::HttpResponse> {
    aws::SigningRequest s;
    s.method = request.method;
    std::string_view url = request.url;
    url.remove_prefix(url.find("://") + 3);
    url.remove_prefix(url.find('/'));
    std::string_view query;
    if (size_t q = url.find('?'); q != std::string_view::npos) {
      query = url.substr(q + 1);
      url = url.substr(0, q);
    }
    s.path = PercentDecode(url);
    while (!query.empty()) {
      std::string_view pair = query.substr(0, query.find('&'));
      query.remove_prefix(std::min(query.size(), pair.size() + 1));
      size_t eq = pair.find('=');
      s.query.emplace_back(PercentDecode(pair.substr(0, eq)),
                           eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1)));
    }
    std::string authorization;
    std::string date;
    for (const auto& [name, value] : request.headers) {
      if (name == "Authorization") {
        authorization = value;
        continue;
      }
      if (name == "X-Amz-Date") {
        date = value;
      }
      if (name == "X-Amz-Content-Sha256") {
        s.payload_hash = value;
      }
      s.headers.emplace_back(name, value);
    }
    aws::Credentials credentials{kS3AccessKey, crypto::SecretBytes(AsBytes(secret)), ""};
    auto expected = aws::Sign(credentials, aws::Scope{date, "us-east-1", "s3"}, s);
    bool body_ok = s.payload_hash == aws::HexSha256(AsBytes(request.body));
    if (!expected || !body_ok || expected->authorization != authorization) {
      return aws::HttpResponse{
          403,
          {},
          "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request "
          "signature we calculated does not match the signature you provided.</Message></Error>"};
    }
    return CurlFetch(request, CurlOptions{});
  };
}

// Environments for the conformance suite: each makes one store; SkipReason says why it cannot.

class MemoryEnv {
 public:
  static void SetUpSuite() {}
  static void TearDownSuite() {}
  std::optional<std::string> SkipReason() const { return std::nullopt; }
  storage::ObjectStore& store() { return store_; }

 private:
  storage::MemoryObjectStore store_;
};

class DirectoryEnv {
 public:
  static void SetUpSuite() {}
  static void TearDownSuite() {}
  DirectoryEnv() : store_(*DirectoryObjectStore::Open(dir_.path() + "/objects")) {}
  std::optional<std::string> SkipReason() const { return std::nullopt; }
  storage::ObjectStore& store() { return *store_; }

 private:
  TempDir dir_;
  std::unique_ptr<DirectoryObjectStore> store_;
};

// S3Env shares one s3rver per test suite; each test gets its own key prefix.
class S3Env {
 public:
  static void SetUpSuite() {
    auto started = S3rver::Start();
    if (started) {
      Server() = std::move(started).value();
    } else {
      Failure() = started.error().message();
    }
  }
  static void TearDownSuite() { Server().reset(); }

  S3Env() {
    if (Server()) {
      auto store = S3ObjectStore::Create(Server()->Config("t" + std::to_string(++Counter()) + "/"));
      ENCLAVIA_CHECK(store.has_value());
      store_ = std::move(store).value();
    }
  }
  std::optional<std::string> SkipReason() const {
    if (!Server()) {
      return Failure();
    }
    return std::nullopt;
  }
  storage::ObjectStore& store() { return *store_; }

 private:
  static std::unique_ptr<S3rver>& Server() {
    static std::unique_ptr<S3rver> server;
    return server;
  }
  static std::string& Failure() {
    static std::string failure;
    return failure;
  }
  static int& Counter() {
    static int counter = 0;
    return counter;
  }
  std::unique_ptr<S3ObjectStore> store_;
};

// RemoteEnv: RemoteObjectStore → StorageService on a Unix socket → `Backend`'s store.
template <typename Backend>
class RemoteEnv {
 public:
  static void SetUpSuite() { Backend::SetUpSuite(); }
  static void TearDownSuite() { Backend::TearDownSuite(); }
  RemoteEnv() {
    if (backend_.SkipReason()) {
      return;
    }
    net::Address address{net::Family::kUnix, dir_.path() + "/storage.sock", 0, 0};
    auto service = StorageService::Start(address, backend_.store(), ServiceOptions{});
    ENCLAVIA_CHECK(service.has_value());
    service_ = std::move(service).value();
    client_ = std::make_unique<storage::RemoteObjectStore>(address);
  }
  std::optional<std::string> SkipReason() const { return backend_.SkipReason(); }
  storage::ObjectStore& store() { return *client_; }

 private:
  TempDir dir_;
  Backend backend_;
  std::unique_ptr<StorageService> service_;
  std::unique_ptr<storage::RemoteObjectStore> client_;
};

}  // namespace enclavia::host::testing

#endif  // ENCLAVIA_HOST_STORAGE_STORAGE_TEST_UTIL_H_
