/* SPDX-License-Identifier: Apache-2.0 */
/* client_c_test URL TRUST_FILE BAD_TRUST_FILE PORT: drives the C ABI as a C program would: a
 * verified channel, a stream carrying one HTTP request, and the error contract. */
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
  printf("%s\n", failures == 0 ? "c api: ok" : "c api: FAILED");
  return failures == 0 ? 0 : 1;
}
