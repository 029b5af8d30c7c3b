/* SPDX-License-Identifier: Apache-2.0 */
#ifndef ENCLAVIA_CLIENT_H_
#define ENCLAVIA_CLIENT_H_

/* The C ABI of the Enclavia client: an attested, end-to-end encrypted channel to an enclave and
 * byte streams to its TCP ports. Language bindings use only this header.
 *
 * Conventions: functions return enclavia_status; on failure enclavia_last_error() gives a
 * one-line message for the calling thread, valid until that thread's next call. Objects are
 * opaque; *_free(NULL) is a no-op. Parameter order: object, outputs, inputs. Every function is
 * thread-safe; a stream may be read by one thread while another writes it. */

#include <stddef.h>
#include <stdint.h>

#if defined(ENCLAVIA_CLIENT_BUILD)
#define ENCLAVIA_EXPORT __attribute__((visibility("default")))
#else
#define ENCLAVIA_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* One value per enclavia::Code (src/lib/base/result.h). */
typedef enum enclavia_status {
  ENCLAVIA_OK = 0,
  ENCLAVIA_INVALID_ARGUMENT = 1,
  ENCLAVIA_MALFORMED = 2,
  ENCLAVIA_VERIFY_FAILED = 3,
  ENCLAVIA_UNTRUSTED = 4,
  ENCLAVIA_EXPIRED = 5,
  ENCLAVIA_POLICY_VIOLATION = 6,
  ENCLAVIA_LIMIT_EXCEEDED = 7,
  ENCLAVIA_NOT_FOUND = 8,
  ENCLAVIA_ALREADY_EXISTS = 9,
  ENCLAVIA_UNSUPPORTED = 10,
  ENCLAVIA_IO = 11,
  ENCLAVIA_FAILED_PRECONDITION = 12,
  ENCLAVIA_INTERNAL = 13,
  ENCLAVIA_UNAVAILABLE = 14
} enclavia_status;

typedef struct enclavia_channel enclavia_channel;
typedef struct enclavia_stream enclavia_stream;

/* enclavia_last_error returns the calling thread's last error message ("" if none). */
ENCLAVIA_EXPORT const char* enclavia_last_error(void);
/* enclavia_status_name returns a stable lowercase name, e.g. "policy_violation". */
ENCLAVIA_EXPORT const char* enclavia_status_name(enclavia_status status);

/* enclavia_channel_connect dials `url` (ws:// or wss://), runs the attested handshake and
 * returns a channel only if the enclave's attestation satisfies the trust file at
 * `trust_file` (TOML, docs/trust-file.md). On failure *out is NULL. */
ENCLAVIA_EXPORT enclavia_status enclavia_channel_connect(enclavia_channel** out, const char* url,
                                                         const char* trust_file);
ENCLAVIA_EXPORT void enclavia_channel_free(enclavia_channel* channel);

/* enclavia_channel_pcr copies the verified PCR `index` (48 bytes) into out[0..47]; NOT_FOUND
 * if the document has no such PCR. */
ENCLAVIA_EXPORT enclavia_status enclavia_channel_pcr(const enclavia_channel* channel,
                                                     uint8_t out[48], uint32_t index);
/* enclavia_channel_module_id returns the attested module id (owned by the channel). */
ENCLAVIA_EXPORT const char* enclavia_channel_module_id(const enclavia_channel* channel);

/* enclavia_stream_open opens a stream to the enclave's TCP `port`. */
ENCLAVIA_EXPORT enclavia_status enclavia_stream_open(enclavia_channel* channel,
                                                     enclavia_stream** out, uint16_t port);
/* enclavia_stream_write blocks until all `size` bytes are queued. */
ENCLAVIA_EXPORT enclavia_status enclavia_stream_write(enclavia_stream* stream, const uint8_t* data,
                                                      size_t size);
/* enclavia_stream_read blocks until data arrives; *out_size = 0 means end of stream. */
ENCLAVIA_EXPORT enclavia_status enclavia_stream_read(enclavia_stream* stream, size_t* out_size,
                                                     uint8_t* buffer, size_t capacity);
/* enclavia_stream_close_write half-closes: the application sees end of input. */
ENCLAVIA_EXPORT enclavia_status enclavia_stream_close_write(enclavia_stream* stream);
/* enclavia_stream_free closes (resets, if still open) and frees the stream. */
ENCLAVIA_EXPORT void enclavia_stream_free(enclavia_stream* stream);

#ifdef __cplusplus
}
#endif

#endif /* ENCLAVIA_CLIENT_H_ */
