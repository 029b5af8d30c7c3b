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

/* ---------------------------------------------------------------------------------------------
 * Trust policies, verification without a connection, and a sans-I/O client session.
 * These use no thread and no socket (src/client/core_api.cc): the browser build (wasm,
 * bindings/js) exports exactly these, and the conformance vectors (tests/conformance) run
 * through them in every SDK. */

typedef struct enclavia_trust enclavia_trust;
typedef struct enclavia_attestation enclavia_attestation;
typedef struct enclavia_session enclavia_session;

/* enclavia_trust_parse parses a trust file's text (docs/trust-file.md). Root PEM paths that are
 * relative are taken from `base_dir` (NULL: the working directory). */
ENCLAVIA_EXPORT enclavia_status enclavia_trust_parse(enclavia_trust** out, const char* toml,
                                                     const char* base_dir);
/* enclavia_trust_load reads and parses the trust file at `path`. */
ENCLAVIA_EXPORT enclavia_status enclavia_trust_load(enclavia_trust** out, const char* path);
/* enclavia_trust_set_time fixes the clock documents are checked against (milliseconds since the
 * Unix epoch); 0 restores the system clock. For recorded documents: audits, conformance. */
ENCLAVIA_EXPORT enclavia_status enclavia_trust_set_time(enclavia_trust* trust, int64_t unix_ms);
ENCLAVIA_EXPORT void enclavia_trust_free(enclavia_trust* trust);

/* enclavia_channel_connect_trust is enclavia_channel_connect with a parsed policy (copied). */
ENCLAVIA_EXPORT enclavia_status enclavia_channel_connect_trust(enclavia_channel** out,
                                                               const char* url,
                                                               const enclavia_trust* trust);
/* enclavia_channel_attestation returns a copy of what the enclave proved at connect time. */
ENCLAVIA_EXPORT enclavia_status enclavia_channel_attestation(const enclavia_channel* channel,
                                                             enclavia_attestation** out);

/* enclavia_verify_attestation checks `document` (+ the enclave's upgrade chain: `chain_count`
 * COSE entries, may be 0) against `trust` exactly as a handshake does (channel::VerifyDocument):
 * root, signature, age, debug, PCR sets or chain. `public_key` (32 bytes, or NULL: not checked)
 * must equal the document's public_key; `nonce` (32 bytes, or NULL) its nonce — a policy with
 * fresh = true without a nonce is INVALID_ARGUMENT. */
ENCLAVIA_EXPORT enclavia_status enclavia_verify_attestation(
    const enclavia_trust* trust, enclavia_attestation** out, const uint8_t* document,
    size_t document_size, const uint8_t* const* chain, const size_t* chain_sizes,
    size_t chain_count, const uint8_t* public_key, const uint8_t* nonce);

/* enclavia_handshake_replay replays the client side of a recorded handshake: message 1 from the
 * fixed ephemeral private key `ephemeral` (32 bytes), then `message2` (the ServerHello) read
 * and verified as ClientHandshake::ReadServerHello does. For conformance vectors only: a fixed
 * ephemeral key forfeits forward secrecy, so this never yields a channel. */
ENCLAVIA_EXPORT enclavia_status enclavia_handshake_replay(const enclavia_trust* trust,
                                                          enclavia_attestation** out,
                                                          const uint8_t ephemeral[32],
                                                          const uint8_t* message2, size_t size);

/* Accessors of a verified attestation; pointers are owned by it. */
ENCLAVIA_EXPORT enclavia_status enclavia_attestation_pcr(const enclavia_attestation* attestation,
                                                         uint8_t out[48], uint32_t index);
ENCLAVIA_EXPORT const char* enclavia_attestation_module_id(const enclavia_attestation* attestation);
/* The document's timestamp, milliseconds since the Unix epoch. */
ENCLAVIA_EXPORT int64_t enclavia_attestation_timestamp_ms(const enclavia_attestation* attestation);
/* The document's public_key / user_data / nonce (size 0 when absent). */
ENCLAVIA_EXPORT const uint8_t* enclavia_attestation_public_key(
    const enclavia_attestation* attestation, size_t* size);
ENCLAVIA_EXPORT const uint8_t* enclavia_attestation_user_data(
    const enclavia_attestation* attestation, size_t* size);
/* The verified upgrade chain: number of activated upgrades (0 for a chain with none, and for an
 * unchained enclave) and the genesis hash (NOT_FOUND for an unchained enclave). */
ENCLAVIA_EXPORT uint32_t enclavia_attestation_upgrades(const enclavia_attestation* attestation);
ENCLAVIA_EXPORT enclavia_status enclavia_attestation_genesis(
    const enclavia_attestation* attestation, uint8_t out[32]);
ENCLAVIA_EXPORT void enclavia_attestation_free(enclavia_attestation* attestation);

/* enclavia_session: the client end of one channel, sans-I/O. The caller carries WebSocket
 * binary messages (one message = one Noise message, docs/protocol.md): whatever
 * enclavia_session_poll_outgoing returns is sent in order, every message received is passed to
 * enclavia_session_receive. The session queues message 1 at creation; once the ServerHello's
 * attestation passed `trust` it queues message 3 and reports ENCLAVIA_EVENT_ESTABLISHED. Any
 * error from receive is final (the channel must be dropped). Not thread-safe. */
ENCLAVIA_EXPORT enclavia_status enclavia_session_new(enclavia_session** out,
                                                     const enclavia_trust* trust);
ENCLAVIA_EXPORT void enclavia_session_free(enclavia_session* session);
ENCLAVIA_EXPORT enclavia_status enclavia_session_receive(enclavia_session* session,
                                                         const uint8_t* message, size_t size);
/* The next message to send (owned by the session until its next call); *size = 0: none. */
ENCLAVIA_EXPORT enclavia_status enclavia_session_poll_outgoing(enclavia_session* session,
                                                               const uint8_t** message,
                                                               size_t* size);

typedef enum enclavia_event_kind {
  ENCLAVIA_EVENT_NONE = 0,
  ENCLAVIA_EVENT_ESTABLISHED = 1, /* the attestation passed; streams may open */
  ENCLAVIA_EVENT_DATA = 2,        /* data/size: bytes; call enclavia_session_consumed once used */
  ENCLAVIA_EVENT_FIN = 3,         /* the enclave side will send no more on `stream` */
  ENCLAVIA_EVENT_RESET = 4,       /* `stream` is gone; data/size: the reason (UTF-8); code */
  ENCLAVIA_EVENT_WRITABLE = 5,    /* send credit arrived for `stream` */
  ENCLAVIA_EVENT_CLOSED = 6,      /* both sides finished `stream` cleanly */
  ENCLAVIA_EVENT_GOAWAY = 7       /* the enclave ends the channel; data/size: the reason */
} enclavia_event_kind;

typedef struct enclavia_event {
  enclavia_event_kind kind;
  uint32_t stream;
  uint32_t code; /* mux reset / go-away code */
  const uint8_t* data; /* owned by the session until its next call */
  size_t size;
} enclavia_event;

/* enclavia_session_poll_event fills *event with the next event (kind NONE when none). */
ENCLAVIA_EXPORT enclavia_status enclavia_session_poll_event(enclavia_session* session,
                                                            enclavia_event* event);
/* enclavia_session_attestation: NULL before ESTABLISHED; owned by the session. */
ENCLAVIA_EXPORT const enclavia_attestation* enclavia_session_attestation(
    const enclavia_session* session);
ENCLAVIA_EXPORT enclavia_status enclavia_session_open(enclavia_session* session,
                                                      uint32_t* stream, uint16_t port);
/* enclavia_session_write queues up to `size` bytes within the stream's send window; *accepted
 * may be short (then wait for ENCLAVIA_EVENT_WRITABLE). */
ENCLAVIA_EXPORT enclavia_status enclavia_session_write(enclavia_session* session, uint32_t stream,
                                                       const uint8_t* data, size_t size,
                                                       size_t* accepted);
ENCLAVIA_EXPORT enclavia_status enclavia_session_consumed(enclavia_session* session,
                                                          uint32_t stream, size_t size);
ENCLAVIA_EXPORT enclavia_status enclavia_session_close_write(enclavia_session* session,
                                                             uint32_t stream);
ENCLAVIA_EXPORT enclavia_status enclavia_session_reset(enclavia_session* session,
                                                       uint32_t stream);

#ifdef __cplusplus
}
#endif

#endif /* ENCLAVIA_CLIENT_H_ */
