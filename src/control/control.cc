// SPDX-License-Identifier: Apache-2.0
#include "control/control.h"

#include <sys/stat.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "control/agent_client.h"
#include "control/api.h"
#include "control/store.h"
#include "lib/base/encoding.h"
#include "lib/base/file.h"
#include "lib/crypto/random.h"
#include "lib/http/http.h"
#include "lib/http/token.h"

namespace enclavia::control {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

Result<void> MakeDir(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) {
    return Error(Code::kIo, "cannot create " + path + ": " + ec.message());
  }
  ::chmod(path.c_str(), 0700);
  return Ok();
}

}  // namespace

struct Control::Impl {
  ControlOptions options;
  std::string control_dir;
  std::string token;
  std::unique_ptr<Store> store;
  std::unique_ptr<AgentClient> agent;
  std::unique_ptr<Api> api;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{asio::make_work_guard(io)};
  std::unique_ptr<asio::thread_pool> workers;
  std::unique_ptr<http::Server> server;
  std::vector<std::thread> threads;
  std::string address_text;
  bool stopped = false;
  // The automatic activation of due upgrades: one thread, woken to stop.
  std::thread activator;
  std::mutex activator_mu;
  std::condition_variable activator_cv;
  bool activator_stop = false;
};

Result<std::unique_ptr<Control>> Control::Create(ControlOptions options) {
  if (options.data_dir.empty()) {
    return Error(Code::kInvalidArgument, "no data directory");
  }
  std::error_code ec;
  std::string data_dir = fs::absolute(options.data_dir, ec).lexically_normal().string();
  if (ec) {
    return Error(Code::kInvalidArgument, "bad data directory " + options.data_dir);
  }
  while (data_dir.size() > 1 && data_dir.back() == '/') {
    data_dir.pop_back();
  }
  options.data_dir = data_dir;
  if (options.listen.host.empty()) {
    options.listen.family = net::Family::kTcp;
    options.listen.host = "127.0.0.1";
    options.listen.port = 0;
  }
  if (options.host.empty()) {
    options.host = data_dir + "/host/address";
  }
  if (options.host_token.empty()) {
    options.host_token = data_dir + "/host/token";
  }
  if (options.io_threads == 0 || options.workers == 0) {
    return Error(Code::kInvalidArgument, "io_threads and workers must be at least 1");
  }

  RETURN_IF_ERROR(crypto::Init());  // Idempotent; the token and upload names are random.
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->control_dir = data_dir + "/control";
  RETURN_IF_ERROR(MakeDir(impl->control_dir));
  RETURN_IF_ERROR(MakeDir(impl->control_dir + "/images"));
  RETURN_IF_ERROR(MakeDir(impl->control_dir + "/roots"));
  // Uploads that a crash interrupted.
  for (const auto& entry : fs::directory_iterator(impl->control_dir + "/images", ec)) {
    std::string file = entry.path().filename().string();
    if (file.rfind("upload-", 0) == 0 && entry.path().extension() == ".tmp") {
      fs::remove(entry.path(), ec);
    }
  }
  ASSIGN_OR_RETURN(impl->token, http::LoadOrCreateToken(impl->control_dir + "/token"));
  ASSIGN_OR_RETURN(impl->store, Store::Open(impl->control_dir + "/control.db"));
  impl->agent = std::make_unique<AgentClient>(AgentLocation{options.host, options.host_token});
  impl->api = std::make_unique<Api>(data_dir, *impl->store, *impl->agent);
  impl->workers = std::make_unique<asio::thread_pool>(options.workers);

  http::ServerOptions server_options;
  server_options.listen = options.listen;
  server_options.max_body = 1 << 20;
  // Reading an 8 GiB image (CRC and PCRs) takes a while; the upload itself is bounded per read.
  server_options.timeout = std::chrono::minutes(5);
  server_options.bearer_token = impl->token;
  server_options.public_paths = {"/healthz"};
  server_options.spool_max_body = Api::kMaxImageSize;
  Api* api = impl->api.get();
  server_options.spool = [api](const http::Request& head) { return api->SpoolPath(head); };
  asio::thread_pool* workers = impl->workers.get();
  server_options.handler = [api, workers](http::Request request, http::Reply reply) {
    asio::post(*workers, [api, request = std::move(request), reply = std::move(reply)] {
      reply(api->Handle(request));
    });
  };
  ASSIGN_OR_RETURN(impl->server, http::Server::Create(impl->io, std::move(server_options)));
  for (unsigned i = 0; i < options.io_threads; ++i) {
    impl->threads.emplace_back([io = &impl->io] { io->run(); });
  }
  impl->address_text = impl->server->local_address().ToString();
  std::string text = impl->address_text + "\n";
  auto written = WriteFileAtomic(impl->control_dir + "/address",
                                 ByteSpan(reinterpret_cast<const uint8_t*>(text.data()),
                                          text.size()),
                                 0644);
  auto control = std::unique_ptr<Control>(new Control(std::move(impl)));
  if (!written) {
    return written.error();  // The destructor stops what started.
  }
  if (control->impl_->options.auto_activate_interval.count() > 0) {
    Impl* self = control->impl_.get();
    self->activator = std::thread([self] {
      std::unique_lock<std::mutex> lock(self->activator_mu);
      while (!self->activator_cv.wait_for(lock, self->options.auto_activate_interval,
                                          [self] { return self->activator_stop; })) {
        lock.unlock();
        self->api->ActivateDue(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
        lock.lock();
      }
    });
  }
  return control;
}

Control::Control(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Control::~Control() { Stop(); }

net::Address Control::address() const { return impl_->server->local_address(); }

const std::string& Control::token() const { return impl_->token; }

void Control::Stop() {
  if (impl_->stopped) {
    return;
  }
  impl_->stopped = true;
  if (impl_->activator.joinable()) {
    {
      std::lock_guard<std::mutex> lock(impl_->activator_mu);
      impl_->activator_stop = true;
    }
    impl_->activator_cv.notify_all();
    impl_->activator.join();
  }
  impl_->server->Stop();
  impl_->workers->join();  // Requests in progress finish (their replies are posted to io).
  impl_->work.reset();
  // Let the io threads write the last replies, then stop them.
  for (int i = 0; i < 50 && !impl_->io.stopped(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  impl_->io.stop();
  for (auto& thread : impl_->threads) {
    thread.join();
  }
  impl_->threads.clear();
  // Remove the address file only if it is still ours (a newer instance may have replaced it).
  std::string path = impl_->control_dir + "/address";
  if (auto bytes = ReadFile(path, 1024)) {
    std::string text(bytes->begin(), bytes->end());
    if (text == impl_->address_text + "\n") {
      std::error_code ec;
      fs::remove(path, ec);
    }
  }
}

}  // namespace enclavia::control
