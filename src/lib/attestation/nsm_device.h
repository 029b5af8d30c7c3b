// SPDX-License-Identifier: Apache-2.0
#ifndef ENCLAVIA_LIB_ATTESTATION_NSM_DEVICE_H_
#define ENCLAVIA_LIB_ATTESTATION_NSM_DEVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <sys/uio.h>

#include "lib/attestation/nsm.h"
#include "lib/attestation/nsm_codec.h"
#include "lib/base/bytes.h"
#include "lib/base/result.h"
#include "lib/sys/fd.h"

namespace enclavia::attestation {

using sys::UniqueFd;

// NsmRaw is the driver's ioctl argument (struct nsm_raw, Linux include/uapi/linux/nsm.h; the
// driver declares each half as {u64 addr; u64 len;}, the same layout as iovec on 64-bit Linux).
// The caller owns both buffers; the driver copies the request in, then writes the response to
// `response.iov_base` and sets `response.iov_len` to its length, truncating it to the buffer.
struct NsmRaw {
  iovec request;
  iovec response;
};
static_assert(sizeof(NsmRaw) == 32, "nsm_raw is two 16-byte iovecs");

// kNsmIoctlRaw is NSM_IOCTL_RAW = _IOWR(0x0A, 0, struct nsm_raw).
inline constexpr unsigned long kNsmIoctlRaw = 0xC0200A00;

// DeviceNsm talks to the Nitro Secure Module through the /dev/nsm driver: one NSM_IOCTL_RAW per
// call, carrying a CBOR request (nsm_codec.h) and a kNsmResponseMaxSize response buffer. Errors:
// kInvalidArgument for arguments over the module's limits (checked before any I/O); kIo when the
// ioctl fails (errno in the message); kMalformed for a response that does not decode or does not
// answer the request; and for errors the module reports, "nsm: <ErrorCode>" with kInvalidArgument
// (InvalidArgument, InvalidIndex, InputTooLarge), kFailedPrecondition (ReadOnlyIndex) or
// kInternal (the rest). Not thread-safe; callers serialise (as nsm.h requires).
class DeviceNsm : public Nsm {
 public:
  // IoctlFn has ::ioctl's contract: returns -1 and sets errno on failure.
  using IoctlFn = std::function<int(int fd, unsigned long request, void* arg)>;

  // Open opens `path` read-write and returns a DeviceNsm using the real ioctl; kIo if the open
  // fails (outside an enclave there is no /dev/nsm).
  static Result<std::unique_ptr<DeviceNsm>> Open(const std::string& path = "/dev/nsm");

  // DeviceNsm sends every request through `ioctl` on `fd`. Tests pass a fake device here, which
  // receives the same NsmRaw the kernel driver would.
  DeviceNsm(UniqueFd fd, IoctlFn ioctl);

  Result<Bytes> Attestation(const AttestationRequest& request) override;
  Result<PcrDescription> DescribePcr(uint16_t index) override;
  Result<Bytes> ExtendPcr(uint16_t index, ByteSpan data) override;
  Result<void> LockPcr(uint16_t index) override;
  Result<void> LockPcrs(uint16_t range) override;
  Result<NsmDescription> DescribeNsm() override;
  Result<Bytes> GetRandom() override;

 private:
  // Call sends `request` and returns the module's answer; an Error response becomes an Error.
  Result<NsmResponse> Call(const NsmRequest& request);

  UniqueFd fd_;
  IoctlFn ioctl_;
};

}  // namespace enclavia::attestation

#endif  // ENCLAVIA_LIB_ATTESTATION_NSM_DEVICE_H_
