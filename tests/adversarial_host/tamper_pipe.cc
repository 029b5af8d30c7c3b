// SPDX-License-Identifier: Apache-2.0
// enclavia-tamper-pipe: a malicious host between the relay and the enclave, on the record stream
// (u16 BE length + bytes; lib/net/framing.h). It forwards every record unchanged except the one
// its single action names, and prints one line per action taken, so a test can prove that the
// channel inside detects each kind of tampering. Records are counted from 0, per connection and
// per direction: "up" is relay → enclave, "down" is enclave → relay.
#include <unistd.h>

#include <array>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <sys/stat.h>

#include "lib/base/file.h"
#include "lib/base/result.h"
#include "lib/net/address.h"
#include "lib/net/framing.h"

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using Protocol = asio::generic::stream_protocol;
using Socket = Protocol::socket;
using Acceptor = asio::basic_socket_acceptor<Protocol>;
using Record = std::vector<uint8_t>;

constexpr std::chrono::seconds kReplayWait{2};
constexpr size_t kMaxRecordFile = size_t{256} << 20;

enum class Dir { kUp, kDown };
enum class Kind { kFlip, kDrop, kSwap, kTruncate, kCut, kRecord, kReplay };

std::string_view DirName(Dir dir) { return dir == Dir::kUp ? "up" : "down"; }

struct Action {
  Kind kind = Kind::kRecord;
  Dir dir = Dir::kUp;
  uint64_t n = 0;    // Record index.
  uint64_t arg = 0;  // flip: byte index; truncate: new length.
  std::string file;  // record / replay.
};

std::optional<uint64_t> ParseNumber(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

// ParseSpec parses DIR:N (args == 1) or DIR:N:X (args == 2).
enclavia::Result<Action> ParseSpec(Kind kind, std::string_view flag, std::string_view spec,
                                   int args) {
  auto bad = [&] {
    return enclavia::Error(enclavia::Code::kInvalidArgument,
                           std::string(flag) + ": expected " + (args == 1 ? "DIR:N" : "DIR:N:X") +
                               " with DIR up or down, got \"" + std::string(spec) + "\"");
  };
  std::vector<std::string_view> parts;
  while (true) {
    size_t colon = spec.find(':');
    parts.push_back(spec.substr(0, colon));
    if (colon == std::string_view::npos) {
      break;
    }
    spec.remove_prefix(colon + 1);
  }
  if (parts.size() != static_cast<size_t>(args) + 1) {
    return bad();
  }
  Action action;
  action.kind = kind;
  if (parts[0] == "up") {
    action.dir = Dir::kUp;
  } else if (parts[0] == "down") {
    action.dir = Dir::kDown;
  } else {
    return bad();
  }
  auto n = ParseNumber(parts[1]);
  if (!n) {
    return bad();
  }
  action.n = *n;
  if (args == 2) {
    auto x = ParseNumber(parts[2]);
    if (!x) {
      return bad();
    }
    action.arg = *x;
  }
  return action;
}

Record Frame(const Record& body) {
  Record out;
  out.reserve(enclavia::net::kRecordHeaderSize + body.size());
  out.push_back(static_cast<uint8_t>(body.size() >> 8));
  out.push_back(static_cast<uint8_t>(body.size() & 0xff));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

void Say(const std::string& line) { std::cout << line << std::endl; }

// Context is what every connection shares. Single-threaded: one io_context, one thread.
struct Context {
  asio::io_context& io;
  Action action;
  Protocol::endpoint upstream;
  std::ofstream record_file;    // --record.
  bool record_claimed = false;  // The first connection took the recording.
  std::vector<Record> replay;   // --replay.
};

void CloseSocket(Socket& socket) {
  error_code ignored;
  socket.shutdown(asio::socket_base::shutdown_both, ignored);
  socket.close(ignored);
}

// Pipe forwards one relay connection to its own upstream connection, applying the action.
class Pipe : public std::enable_shared_from_this<Pipe> {
 public:
  Pipe(Context& ctx, Socket downstream, bool recording)
      : ctx_(ctx), down_(std::move(downstream)), up_(ctx.io), recording_(recording) {}

  void Start() {
    up_.async_connect(ctx_.upstream, [self = shared_from_this()](error_code ec) {
      if (ec) {
        self->Close();
        return;
      }
      self->Read(Dir::kUp);
      self->Read(Dir::kDown);
    });
  }

 private:
  struct Flow {
    std::array<uint8_t, 2> header{};
    Record body;
    uint64_t index = 0;
    std::optional<Record> held;  // --swap: record N, waiting for N+1.
    Record out;
    bool done = false;
  };

  Flow& flow(Dir dir) { return dir == Dir::kUp ? up_flow_ : down_flow_; }
  Socket& from(Dir dir) { return dir == Dir::kUp ? down_ : up_; }
  Socket& to(Dir dir) { return dir == Dir::kUp ? up_ : down_; }

  void Read(Dir dir) {
    asio::async_read(from(dir), asio::buffer(flow(dir).header),
                     [self = shared_from_this(), dir](error_code ec, size_t got) {
                       self->OnHeader(dir, ec, got);
                     });
  }

  void OnHeader(Dir dir, error_code ec, size_t got) {
    if (closed_) {
      return;
    }
    Flow& f = flow(dir);
    if (ec) {
      if (ec == asio::error::eof && got == 0) {
        OnEnd(dir);
      } else {
        Close();
      }
      return;
    }
    f.body.resize((size_t{f.header[0]} << 8) | f.header[1]);
    asio::async_read(from(dir), asio::buffer(f.body),
                     [self = shared_from_this(), dir](error_code body_ec, size_t) {
                       if (self->closed_) {
                         return;
                       }
                       if (body_ec) {
                         self->Close();
                         return;
                       }
                       self->OnRecord(dir);
                     });
  }

  void OnRecord(Dir dir) {
    Flow& f = flow(dir);
    uint64_t index = f.index++;
    const Action& a = ctx_.action;
    bool target = a.dir == dir && index == a.n;
    std::string where = std::string(DirName(dir)) + " record " + std::to_string(index);
    f.out.clear();
    auto append = [&f](const Record& body) {
      Record framed = Frame(body);
      f.out.insert(f.out.end(), framed.begin(), framed.end());
    };
    switch (a.kind) {
      case Kind::kFlip:
        if (target) {
          if (a.arg < f.body.size()) {
            f.body[a.arg] ^= 1;
            Say("tamper: flipped " + where + " byte " + std::to_string(a.arg));
          } else {
            std::cerr << "enclavia-tamper-pipe: " << where << " has only " << f.body.size()
                      << " bytes; nothing flipped\n";
          }
        }
        append(f.body);
        break;
      case Kind::kDrop:
        if (target) {
          Say("tamper: dropped " + where);
        } else {
          append(f.body);
        }
        break;
      case Kind::kSwap:
        if (target) {
          f.held = f.body;
        } else if (a.dir == dir && index == a.n + 1 && f.held) {
          append(f.body);
          append(*f.held);
          f.held.reset();
          Say("tamper: swapped " + std::string(DirName(dir)) + " records " + std::to_string(a.n) +
              " and " + std::to_string(a.n + 1));
        } else {
          append(f.body);
        }
        break;
      case Kind::kTruncate:
        if (target && a.arg < f.body.size()) {
          f.body.resize(a.arg);
          Say("tamper: truncated " + where + " to " + std::to_string(a.arg) + " bytes");
        }
        append(f.body);
        break;
      case Kind::kCut:
        if (target) {
          Say("tamper: cut connection at " + where);
          Close();
          return;
        }
        append(f.body);
        break;
      case Kind::kRecord:
        if (recording_ && dir == Dir::kUp) {
          Record framed = Frame(f.body);
          ctx_.record_file.write(reinterpret_cast<const char*>(framed.data()),
                                 static_cast<std::streamsize>(framed.size()));
          ctx_.record_file.flush();
          Say("record: saved " + where + " (" + std::to_string(f.body.size()) + " bytes)");
        }
        append(f.body);
        break;
      case Kind::kReplay:
        break;  // Handled by Replayer.
    }
    if (f.out.empty()) {
      Read(dir);
      return;
    }
    Write(dir, /*then_end=*/false);
  }

  void Write(Dir dir, bool then_end) {
    asio::async_write(to(dir), asio::buffer(flow(dir).out),
                      [self = shared_from_this(), dir, then_end](error_code ec, size_t) {
                        if (self->closed_) {
                          return;
                        }
                        if (ec) {
                          self->Close();
                          return;
                        }
                        if (then_end) {
                          self->OnEnd(dir);
                        } else {
                          self->Read(dir);
                        }
                      });
  }

  // OnEnd: the source of `dir` closed cleanly. Forward a held record, then the end of stream.
  void OnEnd(Dir dir) {
    Flow& f = flow(dir);
    if (f.held) {
      f.out = Frame(*f.held);
      f.held.reset();
      Write(dir, /*then_end=*/true);
      return;
    }
    f.done = true;
    error_code ignored;
    to(dir).shutdown(asio::socket_base::shutdown_send, ignored);
    if (up_flow_.done && down_flow_.done) {
      Close();
    }
  }

  void Close() {
    closed_ = true;
    CloseSocket(down_);
    CloseSocket(up_);
  }

  Context& ctx_;
  Socket down_;  // From the relay.
  Socket up_;    // To the enclave.
  bool recording_;
  Flow up_flow_;
  Flow down_flow_;
  bool closed_ = false;
};

// Replayer ignores its relay connection and plays the recorded client records to the enclave.
class Replayer : public std::enable_shared_from_this<Replayer> {
 public:
  Replayer(Context& ctx, Socket downstream)
      : ctx_(ctx), down_(std::move(downstream)), up_(ctx.io), timer_(ctx.io) {}

  void Start() {
    Discard();
    up_.async_connect(ctx_.upstream, [self = shared_from_this()](error_code ec) {
      if (ec) {
        self->upstream_closed_ = true;
        self->Finish();
        return;
      }
      self->ReadUpstream();
      self->SendNext();
    });
  }

 private:
  void Discard() {
    down_.async_read_some(asio::buffer(scratch_),
                          [self = shared_from_this()](error_code ec, size_t) {
                            if (!ec && !self->finished_) {
                              self->Discard();
                            }
                          });
  }

  void ReadUpstream() {
    asio::async_read(
        up_, asio::buffer(header_), [self = shared_from_this()](error_code ec, size_t) {
          if (ec) {
            self->OnUpstreamClosed();
            return;
          }
          self->body_.resize((size_t{self->header_[0]} << 8) | self->header_[1]);
          asio::async_read(self->up_, asio::buffer(self->body_),
                           [self](error_code body_ec, size_t) {
                             if (body_ec) {
                               self->OnUpstreamClosed();
                               return;
                             }
                             ++self->received_;
                             if (self->waiting_ && self->received_ > self->received_before_wait_) {
                               self->waiting_ = false;
                               self->timer_.cancel();
                               self->SendNext();
                             }
                             self->ReadUpstream();
                           });
        });
  }

  void OnUpstreamClosed() {
    upstream_closed_ = true;
    if (waiting_) {
      waiting_ = false;
      timer_.cancel();
      Finish();
    }
  }

  void SendNext() {
    if (finished_) {
      return;
    }
    if (upstream_closed_ || sent_ == ctx_.replay.size()) {
      Finish();
      return;
    }
    out_ = Frame(ctx_.replay[sent_]);
    asio::async_write(up_, asio::buffer(out_), [self = shared_from_this()](error_code ec, size_t) {
      if (ec) {
        self->upstream_closed_ = true;
        self->Finish();
        return;
      }
      ++self->sent_;
      if (self->upstream_closed_) {
        self->Finish();
        return;
      }
      // Wait for up to one answer, as the original client did.
      self->waiting_ = true;
      self->received_before_wait_ = self->received_;
      self->timer_.expires_after(kReplayWait);
      self->timer_.async_wait([self](error_code wait_ec) {
        if (wait_ec || !self->waiting_) {
          return;
        }
        self->waiting_ = false;
        self->SendNext();
      });
    });
  }

  void Finish() {
    if (finished_) {
      return;
    }
    finished_ = true;
    Say("replay: sent " + std::to_string(sent_) + " records, received " +
        std::to_string(received_) + ", upstream " + (upstream_closed_ ? "closed" : "open"));
    timer_.cancel();
    CloseSocket(up_);
    CloseSocket(down_);
  }

  Context& ctx_;
  Socket down_;
  Socket up_;
  asio::steady_timer timer_;
  std::array<uint8_t, 4096> scratch_{};
  std::array<uint8_t, 2> header_{};
  Record body_;
  Record out_;
  size_t sent_ = 0;
  size_t received_ = 0;
  size_t received_before_wait_ = 0;
  bool waiting_ = false;
  bool upstream_closed_ = false;
  bool finished_ = false;
};

void Accept(Context& ctx, Acceptor& acceptor) {
  acceptor.async_accept([&ctx, &acceptor](error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted) {
      return;
    }
    if (!ec) {
      if (ctx.action.kind == Kind::kReplay) {
        std::make_shared<Replayer>(ctx, std::move(socket))->Start();
      } else {
        bool recording = ctx.action.kind == Kind::kRecord && !ctx.record_claimed;
        ctx.record_claimed = ctx.record_claimed || recording;
        std::make_shared<Pipe>(ctx, std::move(socket), recording)->Start();
      }
    }
    Accept(ctx, acceptor);
  });
}

enclavia::Result<std::vector<Record>> LoadRecords(const std::string& path) {
  ASSIGN_OR_RETURN(enclavia::Bytes data, enclavia::ReadFile(path, kMaxRecordFile));
  std::vector<Record> records;
  size_t at = 0;
  while (at < data.size()) {
    if (data.size() - at < enclavia::net::kRecordHeaderSize) {
      return enclavia::Error(enclavia::Code::kMalformed, path + ": truncated record header");
    }
    size_t size = (size_t{data[at]} << 8) | data[at + 1];
    at += enclavia::net::kRecordHeaderSize;
    if (data.size() - at < size) {
      return enclavia::Error(enclavia::Code::kMalformed, path + ": truncated record");
    }
    records.emplace_back(data.begin() + static_cast<std::ptrdiff_t>(at),
                         data.begin() + static_cast<std::ptrdiff_t>(at + size));
    at += size;
  }
  return records;
}

int Fail(const std::string& message) {
  std::cerr << "enclavia-tamper-pipe: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"enclavia-tamper-pipe: a malicious host on the relay <-> enclave record stream"};
  std::string listen_text;
  std::string upstream_text;
  std::string flip, drop, swap, truncate, cut, record, replay;
  app.add_option("--listen", listen_text, "Where the relay connects (unix:PATH)")->required();
  app.add_option("--upstream", upstream_text, "The enclave's ingress (unix:PATH)")->required();
  app.add_option("--flip", flip, "DIR:N:BYTE  flip the low bit of byte BYTE of record N");
  app.add_option("--drop", drop, "DIR:N  drop record N");
  app.add_option("--swap", swap, "DIR:N  send record N+1 before record N");
  app.add_option("--truncate", truncate, "DIR:N:LEN  cut record N to LEN bytes");
  app.add_option("--cut", cut, "DIR:N  close both sockets instead of forwarding record N");
  app.add_option("--record", record, "FILE  append the first connection's up records");
  app.add_option("--replay", replay, "FILE  send these records to the enclave per connection");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      return app.exit(e);
    }
    return Fail(e.what());
  }
  int given = 0;
  for (const std::string* s : {&flip, &drop, &swap, &truncate, &cut, &record, &replay}) {
    given += s->empty() ? 0 : 1;
  }
  if (given != 1) {
    return Fail("give exactly one of --flip --drop --swap --truncate --cut --record --replay");
  }
  enclavia::Result<Action> action = Action{};
  if (!flip.empty()) {
    action = ParseSpec(Kind::kFlip, "--flip", flip, 2);
  } else if (!drop.empty()) {
    action = ParseSpec(Kind::kDrop, "--drop", drop, 1);
  } else if (!swap.empty()) {
    action = ParseSpec(Kind::kSwap, "--swap", swap, 1);
  } else if (!truncate.empty()) {
    action = ParseSpec(Kind::kTruncate, "--truncate", truncate, 2);
  } else if (!cut.empty()) {
    action = ParseSpec(Kind::kCut, "--cut", cut, 1);
  } else if (!record.empty()) {
    action->kind = Kind::kRecord;
    action->file = record;
  } else {
    action->kind = Kind::kReplay;
    action->file = replay;
  }
  if (!action) {
    return Fail(action.error().message());
  }

  auto listen = enclavia::net::ParseAddress(listen_text);
  if (!listen) {
    return Fail("--listen: " + listen.error().message());
  }
  auto upstream = enclavia::net::ParseAddress(upstream_text);
  if (!upstream) {
    return Fail("--upstream: " + upstream.error().message());
  }
  auto listen_sa = enclavia::net::Resolve(*listen);
  auto upstream_sa = enclavia::net::Resolve(*upstream);
  if (!listen_sa || !upstream_sa) {
    return Fail(!listen_sa ? listen_sa.error().message() : upstream_sa.error().message());
  }

  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context io(1);
  Context ctx{io, *action, Protocol::endpoint(&upstream_sa->storage, upstream_sa->size),
              {}, false,   {}};
  if (ctx.action.kind == Kind::kRecord) {
    ctx.record_file.open(ctx.action.file, std::ios::binary | std::ios::app);
    if (!ctx.record_file) {
      return Fail("--record: cannot open " + ctx.action.file);
    }
  }
  if (ctx.action.kind == Kind::kReplay) {
    auto records = LoadRecords(ctx.action.file);
    if (!records) {
      return Fail("--replay: " + records.error().message());
    }
    ctx.replay = std::move(*records);
  }

  if (listen->family == enclavia::net::Family::kUnix) {
    struct stat st {};
    if (::lstat(listen->host.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      ::unlink(listen->host.c_str());  // A stale socket from an earlier run.
    }
  }
  Protocol::endpoint listen_endpoint(&listen_sa->storage, listen_sa->size);
  Acceptor acceptor(io);
  error_code ec;
  acceptor.open(listen_endpoint.protocol(), ec);
  if (!ec) {
    acceptor.bind(listen_endpoint, ec);
  }
  if (!ec) {
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return Fail("cannot listen on " + listen->ToString() + ": " + ec.message());
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](error_code, int) { io.stop(); });
  Accept(ctx, acceptor);
  Say("enclavia-tamper-pipe: listening on " + listen->ToString());
  io.run();
  if (listen->family == enclavia::net::Family::kUnix) {
    ::unlink(listen->host.c_str());
  }
  return 0;
}
