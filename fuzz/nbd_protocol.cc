// SPDX-License-Identifier: Apache-2.0
// Plays an NBD client byte stream against the server's sans-I/O core: 4 bytes of client flags,
// then options (16-byte header, data) until the Negotiator enters transmission, then request
// headers (each WRITE followed by its payload). Every option reply must be well framed and
// answer the option asked; every request CheckRequest lets through must be in range.
#include "enclave/storage/nbd_protocol.h"

#include <algorithm>
#include <cstdint>

#include "lib/base/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enclavia;
  using namespace enclavia::enclave::nbd;
  Export e{.name = "vol",
           .size = 1 << 20,
           .transmission_flags = kDefaultTransmissionFlags,
           .max_block_size = 64 * 1024};
  Negotiator negotiator(e);
  Reader in(ByteSpan(data, size));
  auto flags_bytes = in.ReadBytes(kClientFlagsSize);
  auto flags = flags_bytes ? DecodeClientFlags(*flags_bytes) : Result<uint32_t>(0u);
  if (!flags) {
    return 0;
  }
  negotiator.SetClientFlags(*flags);
  for (bool haggling = true; haggling;) {
    auto header_bytes = in.ReadBytes(kOptionHeaderSize);
    if (!header_bytes) {
      return 0;
    }
    Result<OptionHeader> header = DecodeOptionHeader(*header_bytes);
    if (!header) {
      return 0;
    }
    auto option_data = in.ReadBytes(std::min<size_t>(header->length, in.remaining()));
    Negotiator::Step step = header->length > kMaxOptionLength
                                ? negotiator.RejectTooBig(header->option)
                                : negotiator.HandleOption(header->option, *option_data);
    // NBD_OPT_EXPORT_NAME's reply is the unframed size + flags (+ zeroes); others are framed.
    for (Reader r(step.reply); header->option != kOptExportName && !r.empty();) {
      ENCLAVIA_CHECK(r.ReadU64Be().value() == kOptionReplyMagic);
      ENCLAVIA_CHECK(r.ReadU32Be().value() == header->option);
      ENCLAVIA_CHECK(r.ReadU32Be().has_value() && r.ReadPrefixed32().has_value());
    }
    if (step.after == Negotiator::After::kClose) {
      return 0;
    }
    haggling = step.after == Negotiator::After::kContinue;
  }
  while (auto header_bytes = in.ReadBytes(kRequestHeaderSize)) {
    Result<Request> request = DecodeRequest(*header_bytes);
    if (!request) {
      return 0;
    }
    ENCLAVIA_CHECK(EncodeRequest(*request) == ToBytes(*header_bytes));
    RequestCheck check = CheckRequest(*request, e);
    if (check.action == RequestCheck::Action::kClose) {
      return 0;
    }
    if (check.action == RequestCheck::Action::kExecute && request->type != kCmdFlush) {
      auto end = CheckedAdd<uint64_t>(request->offset, request->length);
      ENCLAVIA_CHECK(end && *end <= e.size);
    }
    if (request->type == kCmdWrite) {
      ENCLAVIA_CHECK(request->length <= e.max_block_size);
      (void)in.Skip(std::min<size_t>(request->length, in.remaining()));
    }
  }
  return 0;
}
