// SPDX-License-Identifier: Apache-2.0
#include "lib/attestation/nsm_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

#include <sys/ioctl.h>

namespace enclavia::attestation {
namespace {

static_assert(kNsmIoctlRaw == _IOWR(0x0A, 0, NsmRaw), "NSM_IOCTL_RAW");

Error IoError(std::string_view what, int err) {
  // error_category::message is thread-safe, unlike strerror.
  return {Code::kIo, "nsm: " + std::string(what) + ": " + std::generic_category().message(err)};
}

// ModuleError maps an ErrorCode the module returned onto our codes; the message keeps its name.
Error ModuleError(NsmErrorCode code) {
  Code ours = Code::kInternal;
  switch (code) {
    case NsmErrorCode::kInvalidArgument:
    case NsmErrorCode::kInvalidIndex:
    case NsmErrorCode::kInputTooLarge:
      ours = Code::kInvalidArgument;
      break;
    case NsmErrorCode::kReadOnlyIndex:
      ours = Code::kFailedPrecondition;
      break;
    case NsmErrorCode::kSuccess:  // An Error carrying Success answers nothing we asked.
    case NsmErrorCode::kInvalidResponse:
    case NsmErrorCode::kInvalidOperation:
    case NsmErrorCode::kBufferTooSmall:
    case NsmErrorCode::kInternalError:
      ours = Code::kInternal;
      break;
  }
  return {ours, "nsm: " + std::string(NsmErrorCodeName(code))};
}

Result<void> CheckOptionalField(const std::optional<Bytes>& field, std::string_view name) {
  if (field.has_value() && field->size() > kNsmMaxOptionalFieldSize) {
    return Error(Code::kInvalidArgument, "nsm: " + std::string(name) + " is over " +
                                             std::to_string(kNsmMaxOptionalFieldSize) + " bytes");
  }
  return Ok();
}

// Expect returns the response as a T, or kMalformed if the module answered another variant.
template <typename T>
Result<T> Expect(NsmResponse&& response, std::string_view request_name) {
  if (T* answer = std::get_if<T>(&response)) {
    return std::move(*answer);
  }
  return Error(Code::kMalformed, "nsm: " + std::string(ResponseName(response)) + " response to " +
                                     std::string(request_name));
}

}  // namespace

Result<std::unique_ptr<DeviceNsm>> DeviceNsm::Open(const std::string& path) {
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int err = errno;
    return IoError("open " + path, err);
  }
  return std::make_unique<DeviceNsm>(UniqueFd(fd), [](int f, unsigned long request, void* arg) {
    return ::ioctl(f, request, arg);
  });
}

DeviceNsm::DeviceNsm(UniqueFd fd, IoctlFn ioctl) : fd_(std::move(fd)), ioctl_(std::move(ioctl)) {}

Result<NsmResponse> DeviceNsm::Call(const NsmRequest& request) {
  Bytes encoded = EncodeRequest(request);
  if (encoded.size() > kNsmRequestMaxSize) {
    // The driver would refuse it with EMSGSIZE; say which limit instead.
    return Error(Code::kInvalidArgument,
                 "nsm: request over " + std::to_string(kNsmRequestMaxSize) + " bytes");
  }
  Bytes response(kNsmResponseMaxSize);
  NsmRaw raw{};
  // The driver only reads the request buffer; iovec has no const member.
  raw.request.iov_base = const_cast<uint8_t*>(encoded.data());
  raw.request.iov_len = encoded.size();
  raw.response.iov_base = response.data();
  raw.response.iov_len = response.size();
  int rc = -1;
  do {
    rc = ioctl_(fd_.get(), kNsmIoctlRaw, &raw);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int err = errno;
    return IoError("ioctl", err);
  }
  // The driver truncates to the buffer; a length beyond it is a broken device, and we never read
  // through raw.response.iov_base, only our own buffer.
  if (raw.response.iov_len > response.size()) {
    return Error(Code::kMalformed, "nsm: response length exceeds the buffer");
  }
  response.resize(raw.response.iov_len);
  ASSIGN_OR_RETURN(NsmResponse decoded, DecodeResponse(response));
  if (const auto* error = std::get_if<ErrorResponse>(&decoded)) {
    return ModuleError(error->code);
  }
  return decoded;
}

Result<Bytes> DeviceNsm::Attestation(const AttestationRequest& request) {
  RETURN_IF_ERROR(CheckOptionalField(request.user_data, "user_data"));
  RETURN_IF_ERROR(CheckOptionalField(request.nonce, "nonce"));
  RETURN_IF_ERROR(CheckOptionalField(request.public_key, "public_key"));
  ASSIGN_OR_RETURN(NsmResponse response, Call(request));
  ASSIGN_OR_RETURN(AttestationResponse answer,
                   Expect<AttestationResponse>(std::move(response), "Attestation"));
  if (answer.document.empty()) {
    return Error(Code::kMalformed, "nsm: empty attestation document");
  }
  return std::move(answer.document);
}

Result<PcrDescription> DeviceNsm::DescribePcr(uint16_t index) {
  ASSIGN_OR_RETURN(NsmResponse response, Call(DescribePcrRequest{index}));
  return Expect<PcrDescription>(std::move(response), "DescribePCR");
}

Result<Bytes> DeviceNsm::ExtendPcr(uint16_t index, ByteSpan data) {
  ASSIGN_OR_RETURN(NsmResponse response, Call(ExtendPcrRequest{index, ToBytes(data)}));
  ASSIGN_OR_RETURN(ExtendPcrResponse answer,
                   Expect<ExtendPcrResponse>(std::move(response), "ExtendPCR"));
  return std::move(answer.data);
}

Result<void> DeviceNsm::LockPcr(uint16_t index) {
  ASSIGN_OR_RETURN(NsmResponse response, Call(LockPcrRequest{index}));
  RETURN_IF_ERROR(Expect<LockPcrResponse>(std::move(response), "LockPCR"));
  return Ok();
}

Result<void> DeviceNsm::LockPcrs(uint16_t range) {
  ASSIGN_OR_RETURN(NsmResponse response, Call(LockPcrsRequest{range}));
  RETURN_IF_ERROR(Expect<LockPcrsResponse>(std::move(response), "LockPCRs"));
  return Ok();
}

Result<NsmDescription> DeviceNsm::DescribeNsm() {
  ASSIGN_OR_RETURN(NsmResponse response, Call(DescribeNsmRequest{}));
  return Expect<NsmDescription>(std::move(response), "DescribeNSM");
}

Result<Bytes> DeviceNsm::GetRandom() {
  ASSIGN_OR_RETURN(NsmResponse response, Call(GetRandomRequest{}));
  ASSIGN_OR_RETURN(GetRandomResponse answer,
                   Expect<GetRandomResponse>(std::move(response), "GetRandom"));
  // A caller filling a buffer in a loop would spin forever on empty answers.
  if (answer.random.empty()) {
    return Error(Code::kMalformed, "nsm: GetRandom returned no bytes");
  }
  return std::move(answer.random);
}

}  // namespace enclavia::attestation
