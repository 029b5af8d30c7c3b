// SPDX-License-Identifier: Apache-2.0
// bindings_client: the C++ client's side of bench/bindings.sh, through the C ABI
// (libenclavia-client.so, the same calls the bindings wrap).
//   bindings_client WS_URL TRUST_FILE BULK_PORT RUNS BYTES
// The trust file is parsed once. Per run: a new channel (connect until attested), a small
// request (a 1 KiB answer), a download and an upload of BYTES through the bench/bulk.cc
// protocol ("d" + u64le N → N bytes; "u" + data to EOF → u64le count). Run 0 is a warm-up.
// Prints one line per run: "handshake_ms request_ms download_ms upload_ms".
#include <enclavia/client.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

bool Fail(const char* what) {
  std::fprintf(stderr, "bindings_client: %s: %s\n", what, enclavia_last_error());
  return false;
}

// ReadAll reads the stream to its end; returns the byte count and keeps the first 8 bytes.
bool ReadAll(enclavia_stream* stream, uint64_t* total, uint8_t first8[8]) {
  static std::vector<uint8_t> buffer(256 * 1024);
  *total = 0;
  for (;;) {
    size_t n = 0;
    if (enclavia_stream_read(stream, &n, buffer.data(), buffer.size()) != ENCLAVIA_OK) {
      return Fail("read");
    }
    if (n == 0) {
      return true;
    }
    for (size_t i = 0; i < n && *total + i < 8; ++i) {
      first8[*total + i] = buffer[i];
    }
    *total += n;
  }
}

bool Download(enclavia_channel* channel, uint16_t port, uint64_t bytes) {
  enclavia_stream* stream = nullptr;
  if (enclavia_stream_open(channel, &stream, port) != ENCLAVIA_OK) {
    return Fail("open");
  }
  uint8_t header[9] = {'d'};
  std::memcpy(header + 1, &bytes, 8);  // little-endian host, as bulk.cc assumes
  uint64_t total = 0;
  uint8_t first8[8];
  bool ok = enclavia_stream_write(stream, header, sizeof header) == ENCLAVIA_OK &&
            enclavia_stream_close_write(stream) == ENCLAVIA_OK && ReadAll(stream, &total, first8);
  enclavia_stream_free(stream);
  if (ok && total != bytes) {
    std::fprintf(stderr, "bindings_client: download: %llu of %llu bytes\n",
                 static_cast<unsigned long long>(total), static_cast<unsigned long long>(bytes));
    return false;
  }
  return ok;
}

bool Upload(enclavia_channel* channel, uint16_t port, const std::vector<uint8_t>& data) {
  enclavia_stream* stream = nullptr;
  if (enclavia_stream_open(channel, &stream, port) != ENCLAVIA_OK) {
    return Fail("open");
  }
  const uint8_t op = 'u';
  uint64_t total = 0;
  uint8_t first8[8] = {};
  bool ok = enclavia_stream_write(stream, &op, 1) == ENCLAVIA_OK &&
            enclavia_stream_write(stream, data.data(), data.size()) == ENCLAVIA_OK &&
            enclavia_stream_close_write(stream) == ENCLAVIA_OK && ReadAll(stream, &total, first8);
  enclavia_stream_free(stream);
  uint64_t count = 0;
  std::memcpy(&count, first8, 8);
  if (ok && (total != 8 || count != data.size())) {
    std::fprintf(stderr, "bindings_client: upload: the server counted %llu bytes\n",
                 static_cast<unsigned long long>(count));
    return false;
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: bindings_client WS_URL TRUST_FILE BULK_PORT RUNS BYTES\n");
    return 2;
  }
  const char* url = argv[1];
  const auto port = static_cast<uint16_t>(std::atoi(argv[3]));
  const int runs = std::atoi(argv[4]);
  const std::vector<uint8_t> data(std::strtoull(argv[5], nullptr, 10), 0xa5);
  enclavia_trust* trust = nullptr;
  if (enclavia_trust_load(&trust, argv[2]) != ENCLAVIA_OK) {
    Fail("trust");
    return 1;
  }
  for (int i = 0; i <= runs; ++i) {
    auto t0 = Clock::now();
    enclavia_channel* channel = nullptr;
    if (enclavia_channel_connect_trust(&channel, url, trust) != ENCLAVIA_OK) {
      Fail("connect");
      return 1;
    }
    auto t1 = Clock::now();
    bool ok = Download(channel, port, 1024);
    auto t2 = Clock::now();
    ok = ok && Download(channel, port, data.size());
    auto t3 = Clock::now();
    ok = ok && Upload(channel, port, data);
    auto t4 = Clock::now();
    enclavia_channel_free(channel);
    if (!ok) {
      return 1;
    }
    if (i > 0) {
      std::printf("%.3f %.3f %.3f %.3f\n", Ms(t0, t1), Ms(t1, t2), Ms(t2, t3), Ms(t3, t4));
    }
  }
  enclavia_trust_free(trust);
  return 0;
}
