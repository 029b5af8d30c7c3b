// SPDX-License-Identifier: Apache-2.0
// Feeds messages (each a u16 BE length, then that many bytes) to a server mux::Session that
// echoes data within its credit, consumes everything and finishes when the peer does. Every
// message it sends must be whole, known frames within max_message_size.
#include <algorithm>
#include <cstdint>
#include <variant>

#include "lib/base/reader.h"
#include "lib/mux/mux.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enclavia;
  mux::Options options{.initial_window = 4096, .max_streams = 4, .max_message_size = 1024};
  mux::Session server(mux::Side::kServer, options);
  ByteSpan in(data, size);
  while (in.size() >= 2) {
    size_t n = std::min((size_t{in[0]} << 8) | in[1], in.size() - 2);
    if (!server.Receive(in.subspan(2, n))) {
      return 0;
    }
    in = in.subspan(2 + n);
    while (auto e = server.PollEvent()) {
      if (auto* d = std::get_if<mux::event::Data>(&*e)) {
        (void)server.Write(d->id, d->bytes);
        server.Consumed(d->id, d->bytes.size());
      } else if (auto* f = std::get_if<mux::event::Fin>(&*e)) {
        (void)server.Fin(f->id);
      }
    }
    while (auto msg = server.PollOutgoing()) {
      ENCLAVIA_CHECK(!msg->empty() && msg->size() <= options.max_message_size);
      for (Reader r(*msg); !r.empty();) {
        auto type = r.ReadU8();
        ENCLAVIA_CHECK(type && *type >= 2 && *type <= 8 && r.ReadU32Be() && r.ReadPrefixed16());
      }
    }
    ENCLAVIA_CHECK(server.open_streams() <= options.max_streams);
  }
  return 0;
}
