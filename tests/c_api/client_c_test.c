/* SPDX-License-Identifier: Apache-2.0 */
/* client_c_test URL TRUST_FILE BAD_TRUST_FILE PORT: drives the C ABI as a C program would: a
 * verified channel, a stream carrying one HTTP request, and the error contract; parsed trust
 * policies, the attestation accessors and the start of a sans-I/O session. It names every
 * function of the header, so linking it checks that libenclavia-client.so exports them all. */
#include <enclavia/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define EXPECT(cond, what)                                              \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "FAIL: %s (last error: %s)\n", what, enclavia_last_error()); \
      failures++;                                                       \
    }                                                                   \
  } while (0)

/* Every function of enclavia/client.h: a missing export fails the link. */
static void (*const every_function[])(void) = {
    (void (*)(void))enclavia_last_error, (void (*)(void))enclavia_status_name,
    (void (*)(void))enclavia_channel_connect, (void (*)(void))enclavia_channel_free,
    (void (*)(void))enclavia_channel_pcr, (void (*)(void))enclavia_channel_module_id,
    (void (*)(void))enclavia_stream_open, (void (*)(void))enclavia_stream_write,
    (void (*)(void))enclavia_stream_read, (void (*)(void))enclavia_stream_close_write,
    (void (*)(void))enclavia_stream_free, (void (*)(void))enclavia_trust_parse,
    (void (*)(void))enclavia_trust_load, (void (*)(void))enclavia_trust_set_time,
    (void (*)(void))enclavia_trust_free, (void (*)(void))enclavia_channel_connect_trust,
    (void (*)(void))enclavia_channel_attestation, (void (*)(void))enclavia_verify_attestation,
    (void (*)(void))enclavia_handshake_replay, (void (*)(void))enclavia_attestation_pcr,
    (void (*)(void))enclavia_attestation_module_id,
    (void (*)(void))enclavia_attestation_timestamp_ms,
    (void (*)(void))enclavia_attestation_public_key,
    (void (*)(void))enclavia_attestation_user_data,
    (void (*)(void))enclavia_attestation_upgrades, (void (*)(void))enclavia_attestation_genesis,
    (void (*)(void))enclavia_attestation_free, (void (*)(void))enclavia_session_new,
    (void (*)(void))enclavia_session_free, (void (*)(void))enclavia_session_receive,
    (void (*)(void))enclavia_session_poll_outgoing, (void (*)(void))enclavia_session_poll_event,
    (void (*)(void))enclavia_session_attestation, (void (*)(void))enclavia_session_open,
    (void (*)(void))enclavia_session_write, (void (*)(void))enclavia_session_consumed,
    (void (*)(void))enclavia_session_close_write, (void (*)(void))enclavia_session_reset,
};

/* read_text returns the NUL-terminated contents of `path` (malloc'd), or NULL. */
static char* read_text(const char* path) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) return NULL;
  char* text = malloc(65536);
  size_t n = text == NULL ? 0 : fread(text, 1, 65535, f);
  fclose(f);
  if (text != NULL) text[n] = '\0';
  return text;
}

/* check_policies: trust policies parsed once and reused, the attestation as a value, and a
 * sans-I/O session that queues message 1. */
static void check_policies(const char* url, const char* trust_file) {
  enclavia_trust* trust = NULL;
  EXPECT(enclavia_trust_parse(&trust, NULL, NULL) == ENCLAVIA_INVALID_ARGUMENT, "NULL text");
  EXPECT(strstr(enclavia_last_error(), "enclavia_trust_parse") != NULL, "message names the call");
  EXPECT(enclavia_trust_parse(&trust, "roots = [\"x.pem\"]\n", NULL) != ENCLAVIA_OK,
         "a trust file without [[accept]] is refused");
  EXPECT(trust == NULL, "no policy on failure");
  EXPECT(enclavia_trust_load(&trust, "/nonexistent/trust.toml") != ENCLAVIA_OK,
         "missing trust file");

  char* text = read_text(trust_file);
  EXPECT(text != NULL, "read the trust file");
  if (text == NULL) return;
  EXPECT(enclavia_trust_parse(&trust, text, "/") == ENCLAVIA_OK && trust != NULL,
         "parse the trust file's text");
  free(text);
  enclavia_trust* loaded = NULL;
  EXPECT(enclavia_trust_load(&loaded, trust_file) == ENCLAVIA_OK, "load the trust file");
  enclavia_trust_free(loaded);
  if (trust == NULL) return;
  EXPECT(enclavia_trust_set_time(trust, -5) == ENCLAVIA_INVALID_ARGUMENT, "negative time");
  EXPECT(enclavia_trust_set_time(trust, 0) == ENCLAVIA_OK, "system clock");

  enclavia_channel* channel = NULL;
  EXPECT(enclavia_channel_connect_trust(&channel, url, trust) == ENCLAVIA_OK && channel != NULL,
         "connect with a parsed policy");
  if (channel != NULL) {
    enclavia_attestation* att = NULL;
    EXPECT(enclavia_channel_attestation(channel, &att) == ENCLAVIA_OK && att != NULL,
           "channel attestation");
    enclavia_channel_free(channel); /* the attestation is a copy: it outlives the channel */
    uint8_t pcr0[48], pcr0_again[48], genesis[32];
    EXPECT(enclavia_attestation_pcr(att, pcr0, 0) == ENCLAVIA_OK, "attestation PCR0");
    EXPECT(enclavia_attestation_pcr(att, pcr0_again, 40) == ENCLAVIA_NOT_FOUND, "no PCR40");
    EXPECT(strlen(enclavia_attestation_module_id(att)) > 0, "attestation module id");
    EXPECT(enclavia_attestation_timestamp_ms(att) > 1600000000000LL, "timestamp in ms");
    size_t size = 0;
    EXPECT(enclavia_attestation_public_key(att, &size) != NULL && size == 32,
           "public_key is the enclave's 32-byte static key");
    EXPECT(enclavia_attestation_upgrades(att) == 0, "no upgrades");
    EXPECT(enclavia_attestation_genesis(att, genesis) == ENCLAVIA_NOT_FOUND, "no chain");
    printf("attestation pcr0 ");
    for (int i = 0; i < 48; i++) printf("%02x", pcr0[i]);
    printf("\n");
    enclavia_attestation_free(att);
    /* Verifying a document needs the document: the C++ test does that; here the NULLs. */
    att = (enclavia_attestation*)1;
    EXPECT(enclavia_verify_attestation(trust, &att, NULL, 0, NULL, NULL, 0, NULL, NULL) ==
               ENCLAVIA_INVALID_ARGUMENT,
           "verify without a document");
    EXPECT(att == NULL, "verify clears *out");
  }

  enclavia_session* session = NULL;
  EXPECT(enclavia_session_new(&session, trust) == ENCLAVIA_OK && session != NULL, "session");
  enclavia_trust_free(trust); /* the session copied the policy */
  if (session != NULL) {
    const uint8_t* message = NULL;
    size_t size = 0;
    EXPECT(enclavia_session_poll_outgoing(session, &message, &size) == ENCLAVIA_OK &&
               message != NULL && size > 0,
           "message 1 queued");
    EXPECT(enclavia_session_poll_outgoing(session, &message, &size) == ENCLAVIA_OK && size == 0,
           "nothing more before the server hello");
    EXPECT(enclavia_session_attestation(session) == NULL, "no attestation yet");
    enclavia_event event;
    EXPECT(enclavia_session_poll_event(session, &event) == ENCLAVIA_OK &&
               event.kind == ENCLAVIA_EVENT_NONE,
           "no event yet");
    uint32_t stream = 0;
    EXPECT(enclavia_session_open(session, &stream, 80) == ENCLAVIA_FAILED_PRECONDITION,
           "no stream before the handshake");
    const uint8_t garbage[3] = {1, 2, 3};
    EXPECT(enclavia_session_receive(session, garbage, sizeof garbage) != ENCLAVIA_OK,
           "garbage server hello");
    EXPECT(enclavia_session_receive(session, garbage, sizeof garbage) ==
               ENCLAVIA_FAILED_PRECONDITION,
           "a failed session stays failed");
  }
  enclavia_session_free(session);
  enclavia_trust_free(NULL);
  enclavia_attestation_free(NULL);
  enclavia_session_free(NULL);
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: client_c_test URL TRUST_FILE BAD_TRUST_FILE PORT\n");
    return 2;
  }
  const char* url = argv[1];
  uint16_t port = (uint16_t)atoi(argv[4]);

  /* NULL frees are no-ops; NULL arguments are errors, not crashes. */
  enclavia_channel_free(NULL);
  enclavia_stream_free(NULL);
  EXPECT(enclavia_channel_connect(NULL, url, argv[2]) == ENCLAVIA_INVALID_ARGUMENT, "NULL out");
  EXPECT(strlen(enclavia_last_error()) > 0, "message for NULL out");

  /* A trust file whose PCRs do not match: no channel, a policy error with one line. */
  enclavia_channel* refused = (enclavia_channel*)1;
  enclavia_status st = enclavia_channel_connect(&refused, url, argv[3]);
  EXPECT(st == ENCLAVIA_POLICY_VIOLATION, "mismatched PCRs are a policy violation");
  EXPECT(refused == NULL, "no channel on failure");
  EXPECT(strchr(enclavia_last_error(), '\n') == NULL, "one-line error");
  EXPECT(strcmp(enclavia_status_name(st), "policy_violation") == 0, "status name");

  enclavia_channel* channel = NULL;
  st = enclavia_channel_connect(&channel, url, argv[2]);
  EXPECT(st == ENCLAVIA_OK && channel != NULL, "connect with the right trust file");
  if (channel == NULL) {
    return 1;
  }
  uint8_t pcr0[48];
  EXPECT(enclavia_channel_pcr(channel, pcr0, 0) == ENCLAVIA_OK, "PCR0 present");
  EXPECT(enclavia_channel_pcr(channel, pcr0, 40) == ENCLAVIA_NOT_FOUND, "PCR40 absent");
  EXPECT(strlen(enclavia_channel_module_id(channel)) > 0, "module id");
  printf("pcr0 ");
  for (int i = 0; i < 48; i++) printf("%02x", pcr0[i]);
  printf("\n");

  enclavia_stream* stream = NULL;
  EXPECT(enclavia_stream_open(channel, &stream, port) == ENCLAVIA_OK, "open stream");
  const char* request = "GET / HTTP/1.0\r\nHost: enclave\r\n\r\n";
  EXPECT(enclavia_stream_write(stream, (const uint8_t*)request, strlen(request)) == ENCLAVIA_OK,
         "write request");
  EXPECT(enclavia_stream_close_write(stream) == ENCLAVIA_OK, "half-close");
  char response[65536];
  size_t total = 0;
  for (;;) {
    size_t n = 0;
    st = enclavia_stream_read(stream, &n, (uint8_t*)response + total, sizeof(response) - 1 - total);
    if (st != ENCLAVIA_OK || n == 0 || total + n >= sizeof(response) - 1) {
      total += n;
      break;
    }
    total += n;
  }
  response[total] = '\0';
  EXPECT(st == ENCLAVIA_OK, "read to end of stream");
  EXPECT(strstr(response, " 200 OK") != NULL, "HTTP 200 through the channel");
  EXPECT(strstr(response, "hello through the channel") != NULL, "body through the channel");
  enclavia_stream_free(stream);

  /* A port the enclave does not open: the stream fails with the enclave's reason. */
  enclavia_stream* closed = NULL;
  EXPECT(enclavia_stream_open(channel, &closed, 9) == ENCLAVIA_OK, "open to a closed port");
  size_t n = 0;
  uint8_t byte;
  st = enclavia_stream_read(closed, &n, &byte, 1);
  EXPECT(st == ENCLAVIA_UNAVAILABLE, "closed port reported on read");
  EXPECT(strstr(enclavia_last_error(), "not open") != NULL, "reason names the port");
  enclavia_stream_free(closed);

  enclavia_channel_free(channel);
  check_policies(url, argv[2]);
  EXPECT(sizeof every_function / sizeof every_function[0] == 38, "every function named");
  printf("%s\n", failures == 0 ? "c api: ok" : "c api: FAILED");
  return failures == 0 ? 0 : 1;
}
