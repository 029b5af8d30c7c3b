// SPDX-License-Identifier: Apache-2.0
#include "lib/attestation/nsm_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

#include <gtest/gtest.h>

#include "lib/attestation/nsm_codec.h"

namespace enclavia::attestation {
namespace {

// FakeNsmDevice plays the kernel driver and the module behind it: it receives the NsmRaw the
// client built, reads the request through its iovec, answers with the codec, copies the answer
// into the response iovec truncated to its length, and sets iov_len, as drivers/misc/nsm.c does.
// PCR extension mixes bytes deterministically instead of hashing: the client never checks values.
struct FakeNsmDevice {
  static constexpr uint16_t kPcrs = 32;

  int Ioctl(int fd, unsigned long request, void* arg) {
    ++calls;
    last_fd = fd;
    last_request = request;
    if (eintr_left > 0) {
      --eintr_left;
      errno = EINTR;
      return -1;
    }
    if (fail_errno.has_value()) {
      errno = *fail_errno;
      return -1;
    }
    if (request != kNsmIoctlRaw) {
      errno = EINVAL;
      return -1;
    }
    auto* raw = static_cast<NsmRaw*>(arg);
    if (raw->request.iov_len > kNsmRequestMaxSize) {
      errno = EMSGSIZE;
      return -1;
    }
    const auto* in = static_cast<const uint8_t*>(raw->request.iov_base);
    last_request_bytes.assign(in, in + raw->request.iov_len);

    Bytes answer;
    if (raw_response.has_value()) {
      answer = *raw_response;
    } else {
      Result<NsmRequest> decoded = DecodeRequest(last_request_bytes);
      answer = EncodeResponse(decoded.has_value()
                                  ? Handle(*decoded)
                                  : NsmResponse(ErrorResponse{NsmErrorCode::kInvalidArgument}));
    }
    size_t n = std::min(answer.size(), raw->response.iov_len);
    if (n > 0) {
      std::memcpy(raw->response.iov_base, answer.data(), n);
    }
    raw->response.iov_len = claimed_response_len.value_or(n);
    return 0;
  }

  NsmResponse Handle(const NsmRequest& request) {
    if (const auto* r = std::get_if<AttestationRequest>(&request)) {
      // The "document" echoes the request, so tests can see what reached the module.
      return AttestationResponse{EncodeRequest(*r)};
    }
    if (const auto* r = std::get_if<DescribePcrRequest>(&request)) {
      if (r->index >= kPcrs) {
        return ErrorResponse{NsmErrorCode::kInvalidIndex};
      }
      return PcrDescription{locked[r->index], pcrs[r->index]};
    }
    if (const auto* r = std::get_if<ExtendPcrRequest>(&request)) {
      if (r->index >= kPcrs) {
        return ErrorResponse{NsmErrorCode::kInvalidIndex};
      }
      if (locked[r->index]) {
        return ErrorResponse{NsmErrorCode::kReadOnlyIndex};
      }
      Bytes& pcr = pcrs[r->index];
      for (size_t i = 0; i < pcr.size(); ++i) {
        uint8_t d = r->data.empty() ? 0 : r->data[i % r->data.size()];
        pcr[i] = static_cast<uint8_t>(pcr[i] * 31 + d + i + 1);
      }
      return ExtendPcrResponse{pcr};
    }
    if (const auto* r = std::get_if<LockPcrRequest>(&request)) {
      if (r->index >= kPcrs) {
        return ErrorResponse{NsmErrorCode::kInvalidIndex};
      }
      locked[r->index] = true;
      return LockPcrResponse{};
    }
    if (const auto* r = std::get_if<LockPcrsRequest>(&request)) {
      if (r->range > kPcrs) {
        return ErrorResponse{NsmErrorCode::kInvalidIndex};
      }
      std::fill(locked.begin(), locked.begin() + r->range, true);
      return LockPcrsResponse{};
    }
    if (std::holds_alternative<DescribeNsmRequest>(request)) {
      NsmDescription d{1, 0, 0, "i-fake-enc0123", kPcrs, {}, "SHA384"};
      for (uint16_t i = 0; i < kPcrs; ++i) {
        if (locked[i]) {
          d.locked_pcrs.push_back(i);
        }
      }
      return d;
    }
    ++random_calls;
    Bytes random(256);
    for (size_t i = 0; i < random.size(); ++i) {
      random[i] = static_cast<uint8_t>(i ^ random_calls);
    }
    return GetRandomResponse{std::move(random)};
  }

  // Tests set and read these directly, as with any test double.
  // NOLINTBEGIN(misc-non-private-member-variables-in-classes)
  // What the last ioctl saw.
  int calls = 0;
  int last_fd = -2;
  unsigned long last_request = 0;
  Bytes last_request_bytes;
  // Misbehaviour to inject.
  int eintr_left = 0;
  std::optional<int> fail_errno;
  std::optional<Bytes> raw_response;
  std::optional<size_t> claimed_response_len;

  // Module state.
  std::array<Bytes, kPcrs> pcrs = MakeZeroPcrs();
  std::array<bool, kPcrs> locked{};
  size_t random_calls = 0;
  // NOLINTEND(misc-non-private-member-variables-in-classes)

  static std::array<Bytes, kPcrs> MakeZeroPcrs() {
    std::array<Bytes, kPcrs> out;
    out.fill(Bytes(48, 0));
    return out;
  }
};

// Harness is a DeviceNsm wired to a FakeNsmDevice, on a real descriptor (/dev/null).
struct Harness {
  Harness() {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ENCLAVIA_CHECK(fd >= 0);
    fd_number = fd;
    nsm = std::make_unique<DeviceNsm>(
        UniqueFd(fd),
        [this](int f, unsigned long request, void* arg) { return device.Ioctl(f, request, arg); });
  }

  // NOLINTBEGIN(misc-non-private-member-variables-in-classes)
  FakeNsmDevice device;
  std::unique_ptr<DeviceNsm> nsm;
  int fd_number = -1;
  // NOLINTEND(misc-non-private-member-variables-in-classes)
};

void ExpectError(const Error& error, Code code, std::string_view message) {
  EXPECT_EQ(error.code(), code) << error.message();
  EXPECT_EQ(error.message(), message);
}

std::string ErrnoText(int err) { return std::generic_category().message(err); }

Bytes Text(std::string_view s) {
  const auto header = static_cast<uint8_t>(0x60 + s.size());
  return Concat({ByteSpan(&header, 1), AsBytes(s)});
}

TEST(DeviceNsmTest, UsesNsmIoctlRawOnItsDescriptor) {
  Harness h;
  ASSERT_TRUE(h.nsm->DescribeNsm().has_value());
  EXPECT_EQ(h.device.last_request, 0xC0200A00UL);
  EXPECT_EQ(h.device.last_fd, h.fd_number);
  EXPECT_EQ(h.device.last_request_bytes, Text("DescribeNSM"));
}

TEST(DeviceNsmTest, DescribeNsmReportsTheModule) {
  Harness h;
  Result<NsmDescription> d = h.nsm->DescribeNsm();
  ASSERT_TRUE(d.has_value()) << d.error().message();
  EXPECT_EQ(d->version_major, 1);
  EXPECT_EQ(d->module_id, "i-fake-enc0123");
  EXPECT_EQ(d->max_pcrs, 32);
  EXPECT_TRUE(d->locked_pcrs.empty());
  EXPECT_EQ(d->digest, "SHA384");
}

TEST(DeviceNsmTest, SendsDescribePcrAsTheRustClientDoes) {
  Harness h;
  Result<PcrDescription> pcr = h.nsm->DescribePcr(3);
  ASSERT_TRUE(pcr.has_value()) << pcr.error().message();
  EXPECT_FALSE(pcr->locked);
  EXPECT_EQ(pcr->value, Bytes(48, 0));
  Bytes expected = Concat({Bytes{0xa1}, Text("DescribePCR"), Bytes{0xa1}, Text("index"), Bytes{3}});
  EXPECT_EQ(h.device.last_request_bytes, expected);
}

TEST(DeviceNsmTest, ExtendPcrReturnsTheNewValue) {
  Harness h;
  Result<Bytes> extended = h.nsm->ExtendPcr(16, ToBytes("measurement"));
  ASSERT_TRUE(extended.has_value()) << extended.error().message();
  EXPECT_EQ(extended->size(), 48U);
  EXPECT_NE(*extended, Bytes(48, 0));
  Result<PcrDescription> pcr = h.nsm->DescribePcr(16);
  ASSERT_TRUE(pcr.has_value());
  EXPECT_EQ(pcr->value, *extended);
}

TEST(DeviceNsmTest, LockedPcrRefusesExtendWithFailedPrecondition) {
  Harness h;
  ASSERT_TRUE(h.nsm->LockPcr(16).has_value());
  Result<PcrDescription> pcr = h.nsm->DescribePcr(16);
  ASSERT_TRUE(pcr.has_value());
  EXPECT_TRUE(pcr->locked);
  Result<Bytes> extended = h.nsm->ExtendPcr(16, ToBytes("x"));
  ASSERT_FALSE(extended.has_value());
  ExpectError(extended.error(), Code::kFailedPrecondition, "nsm: ReadOnlyIndex");
}

TEST(DeviceNsmTest, LockPcrsLocksTheRange) {
  Harness h;
  ASSERT_TRUE(h.nsm->LockPcrs(5).has_value());
  Result<NsmDescription> d = h.nsm->DescribeNsm();
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->locked_pcrs, (std::vector<uint16_t>{0, 1, 2, 3, 4}));
  EXPECT_FALSE(h.nsm->ExtendPcr(4, ToBytes("x")).has_value());
  EXPECT_TRUE(h.nsm->ExtendPcr(5, ToBytes("x")).has_value());
}

TEST(DeviceNsmTest, OutOfRangeIndexIsInvalidArgument) {
  Harness h;
  Result<PcrDescription> pcr = h.nsm->DescribePcr(32);
  ASSERT_FALSE(pcr.has_value());
  ExpectError(pcr.error(), Code::kInvalidArgument, "nsm: InvalidIndex");
  Result<void> lock = h.nsm->LockPcrs(33);
  ASSERT_FALSE(lock.has_value());
  ExpectError(lock.error(), Code::kInvalidArgument, "nsm: InvalidIndex");
}

TEST(DeviceNsmTest, AttestationCarriesTheOptionalFields) {
  Harness h;
  AttestationRequest request{ToBytes("user"), Bytes(1024, 0x4e), std::nullopt};
  Result<Bytes> document = h.nsm->Attestation(request);
  ASSERT_TRUE(document.has_value()) << document.error().message();
  Result<NsmRequest> echoed = DecodeRequest(*document);
  ASSERT_TRUE(echoed.has_value());
  EXPECT_EQ(*echoed, NsmRequest(request));

  ASSERT_TRUE(h.nsm->Attestation(AttestationRequest{}).has_value());
  EXPECT_EQ(h.device.last_request_bytes,
            Concat({Bytes{0xa1}, Text("Attestation"), Bytes{0xa3}, Text("user_data"), Bytes{0xf6},
                    Text("nonce"), Bytes{0xf6}, Text("public_key"), Bytes{0xf6}}));
}

TEST(DeviceNsmTest, AttestationRefusesOversizeFieldsBeforeAnyIo) {
  Harness h;
  Bytes big(kNsmMaxOptionalFieldSize + 1, 0);
  for (int field = 0; field < 3; ++field) {
    AttestationRequest request;
    (field == 0 ? request.user_data : field == 1 ? request.nonce : request.public_key) = big;
    Result<Bytes> document = h.nsm->Attestation(request);
    ASSERT_FALSE(document.has_value());
    EXPECT_EQ(document.error().code(), Code::kInvalidArgument);
    EXPECT_EQ(document.error().message().rfind("nsm: ", 0), 0U);
  }
  EXPECT_EQ(h.device.calls, 0);
  // All three at the limit still fit the driver's request buffer.
  Bytes max(kNsmMaxOptionalFieldSize, 0);
  EXPECT_TRUE(h.nsm->Attestation(AttestationRequest{max, max, max}).has_value());
}

TEST(DeviceNsmTest, ExtendRefusesRequestsOverTheDriverLimit) {
  Harness h;
  Result<Bytes> extended = h.nsm->ExtendPcr(16, Bytes(kNsmRequestMaxSize, 0));
  ASSERT_FALSE(extended.has_value());
  EXPECT_EQ(extended.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(h.device.calls, 0);
}

TEST(DeviceNsmTest, GetRandomReturnsBytes) {
  Harness h;
  Result<Bytes> a = h.nsm->GetRandom();
  Result<Bytes> b = h.nsm->GetRandom();
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->size(), 256U);
  EXPECT_NE(*a, *b);
}

TEST(DeviceNsmTest, MapsEveryModuleErrorCode) {
  Harness h;
  struct Case {
    NsmErrorCode nsm;
    Code ours;
  };
  const std::array<Case, 9> cases = {{
      {NsmErrorCode::kSuccess, Code::kInternal},
      {NsmErrorCode::kInvalidArgument, Code::kInvalidArgument},
      {NsmErrorCode::kInvalidIndex, Code::kInvalidArgument},
      {NsmErrorCode::kInvalidResponse, Code::kInternal},
      {NsmErrorCode::kReadOnlyIndex, Code::kFailedPrecondition},
      {NsmErrorCode::kInvalidOperation, Code::kInternal},
      {NsmErrorCode::kBufferTooSmall, Code::kInternal},
      {NsmErrorCode::kInputTooLarge, Code::kInvalidArgument},
      {NsmErrorCode::kInternalError, Code::kInternal},
  }};
  for (const Case& c : cases) {
    h.device.raw_response = EncodeResponse(ErrorResponse{c.nsm});
    Result<Bytes> random = h.nsm->GetRandom();
    ASSERT_FALSE(random.has_value());
    ExpectError(random.error(), c.ours, "nsm: " + std::string(NsmErrorCodeName(c.nsm)));
  }
}

TEST(DeviceNsmTest, IoctlFailureIsIo) {
  Harness h;
  h.device.fail_errno = ENODEV;
  Result<NsmDescription> d = h.nsm->DescribeNsm();
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code(), Code::kIo);
  EXPECT_EQ(d.error().message(), "nsm: ioctl: " + ErrnoText(ENODEV));
}

TEST(DeviceNsmTest, RetriesOnEintr) {
  Harness h;
  h.device.eintr_left = 3;
  ASSERT_TRUE(h.nsm->DescribeNsm().has_value());
  EXPECT_EQ(h.device.calls, 4);
}

TEST(DeviceNsmTest, ResponseLengthBeyondTheBufferIsMalformed) {
  Harness h;
  h.device.claimed_response_len = kNsmResponseMaxSize + 1;
  Result<Bytes> random = h.nsm->GetRandom();
  ASSERT_FALSE(random.has_value());
  ExpectError(random.error(), Code::kMalformed, "nsm: response length exceeds the buffer");
}

TEST(DeviceNsmTest, ResponseTruncatedByTheDriverIsMalformed) {
  Harness h;
  // The driver silently cuts an answer to the buffer; the cut CBOR must not decode.
  h.device.raw_response = EncodeResponse(AttestationResponse{Bytes(kNsmResponseMaxSize, 1)});
  Result<Bytes> document = h.nsm->Attestation(AttestationRequest{});
  ASSERT_FALSE(document.has_value());
  EXPECT_EQ(document.error().code(), Code::kMalformed);
  EXPECT_EQ(document.error().message().rfind("nsm: ", 0), 0U);
}

TEST(DeviceNsmTest, GarbageResponsesAreMalformed) {
  Harness h;
  const std::array garbage = {
      Bytes{},       Bytes{0xff}, ToBytes("not cbor at all"), Bytes{0xa1, 0x69},  // Truncated.
      Text("Bogus"),
  };
  for (const Bytes& response : garbage) {
    h.device.raw_response = response;
    Result<PcrDescription> pcr = h.nsm->DescribePcr(0);
    ASSERT_FALSE(pcr.has_value());
    EXPECT_EQ(pcr.error().code(), Code::kMalformed) << pcr.error().message();
    EXPECT_EQ(pcr.error().message().rfind("nsm: ", 0), 0U) << pcr.error().message();
  }
}

TEST(DeviceNsmTest, AnswerToAnotherRequestIsMalformed) {
  Harness h;
  h.device.raw_response = EncodeResponse(LockPcrResponse{});
  Result<PcrDescription> pcr = h.nsm->DescribePcr(0);
  ASSERT_FALSE(pcr.has_value());
  ExpectError(pcr.error(), Code::kMalformed, "nsm: LockPCR response to DescribePCR");
  h.device.raw_response = EncodeResponse(LockPcrsResponse{});
  EXPECT_FALSE(h.nsm->LockPcr(1).has_value());
}

TEST(DeviceNsmTest, EmptyRandomOrDocumentIsMalformed) {
  Harness h;
  h.device.raw_response = EncodeResponse(GetRandomResponse{});
  Result<Bytes> random = h.nsm->GetRandom();
  ASSERT_FALSE(random.has_value());
  EXPECT_EQ(random.error().code(), Code::kMalformed);
  h.device.raw_response = EncodeResponse(AttestationResponse{});
  Result<Bytes> document = h.nsm->Attestation(AttestationRequest{});
  ASSERT_FALSE(document.has_value());
  EXPECT_EQ(document.error().code(), Code::kMalformed);
}

TEST(DeviceNsmOpenTest, MissingDeviceIsIo) {
  Result<std::unique_ptr<DeviceNsm>> nsm = DeviceNsm::Open("/nonexistent/nsm");
  ASSERT_FALSE(nsm.has_value());
  EXPECT_EQ(nsm.error().code(), Code::kIo);
  EXPECT_EQ(nsm.error().message().rfind("nsm: open /nonexistent/nsm: ", 0), 0U);
}

TEST(DeviceNsmOpenTest, RealIoctlOnAnotherDeviceIsIo) {
  // /dev/null opens read-write but knows no NSM ioctl: the real ::ioctl path reports ENOTTY.
  Result<std::unique_ptr<DeviceNsm>> nsm = DeviceNsm::Open("/dev/null");
  ASSERT_TRUE(nsm.has_value()) << nsm.error().message();
  Result<Bytes> random = (*nsm)->GetRandom();
  ASSERT_FALSE(random.has_value());
  EXPECT_EQ(random.error().code(), Code::kIo);
  EXPECT_EQ(random.error().message(), "nsm: ioctl: " + ErrnoText(ENOTTY));
}

TEST(UniqueFdTest, ClosesOnDestructionAndNotAfterRelease) {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  { UniqueFd owned(fd); }
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);

  fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  {
    UniqueFd owned(fd);
    UniqueFd moved(std::move(owned));
    // Checking the moved-from state on purpose.
    EXPECT_FALSE(owned.valid());  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
    EXPECT_EQ(moved.Release(), fd);
  }
  EXPECT_NE(::fcntl(fd, F_GETFD), -1);
  ::close(fd);
}

}  // namespace
}  // namespace enclavia::attestation
