/* SPDX-License-Identifier: Apache-2.0 */
/* conformance_c VECTORS_JSON [FIXTURES_DIR]: the C runner of the conformance vectors
 * (tests/conformance/README.md), over the C ABI only (enclavia/client.h). Each case: its files
 * written to a fresh temp folder, enclavia_trust_parse(trust, folder), enclavia_trust_set_time
 * (at_ms), then enclavia_verify_attestation or enclavia_handshake_replay; the verdict ("ok" or
 * enclavia_status_name) and, for "ok", PCR0 must equal the vector's. Cases with
 * "document_fixture" read $ENCLAVIA_FIXTURES/nitro/<file> (else FIXTURES_DIR/nitro/<file>) and
 * are skipped, with a message, when that folder is absent. With ENCLAVIA_VERDICTS_OUT set, every
 * case run appends "<name> <verdict>\n" to that file. Exit 0 when no case failed.
 *
 * vectors.json is read with the small JSON reader below: it accepts the JSON the generator
 * writes (objects, arrays, strings with the standard escapes, integers, true/false/null) and
 * rejects anything else, so a runner never guesses. */
#define _GNU_SOURCE /* mkdtemp */
#include <enclavia/client.h>

#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* A minimal JSON tree. */

typedef enum { J_NULL, J_BOOL, J_INT, J_STRING, J_ARRAY, J_OBJECT } json_type;

typedef struct json {
  json_type type;
  int64_t number;     /* J_INT, J_BOOL */
  char* string;       /* J_STRING: NUL-terminated (the vectors hold no NUL characters) */
  size_t length;      /* J_STRING: bytes; J_ARRAY/J_OBJECT: items */
  struct json* items; /* J_ARRAY/J_OBJECT */
  char** keys;        /* J_OBJECT */
} json;

typedef struct {
  const char* p;
  const char* end;
  const char* error;
} reader;

static void* xmalloc(size_t n) {
  void* p = malloc(n == 0 ? 1 : n);
  if (p == NULL) {
    fprintf(stderr, "conformance_c: out of memory\n");
    exit(2);
  }
  return p;
}

static void skip_space(reader* r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) {
    r->p++;
  }
}

static int parse_value(reader* r, json* out, int depth);

static int hex_digit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void put_utf8(char* out, size_t* n, uint32_t cp) {
  if (cp < 0x80) {
    out[(*n)++] = (char)cp;
  } else if (cp < 0x800) {
    out[(*n)++] = (char)(0xc0 | (cp >> 6));
    out[(*n)++] = (char)(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out[(*n)++] = (char)(0xe0 | (cp >> 12));
    out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[(*n)++] = (char)(0x80 | (cp & 0x3f));
  } else {
    out[(*n)++] = (char)(0xf0 | (cp >> 18));
    out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[(*n)++] = (char)(0x80 | (cp & 0x3f));
  }
}

static int read_hex4(reader* r, uint32_t* out) {
  if (r->end - r->p < 4) return 0;
  *out = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit((unsigned char)r->p[i]);
    if (d < 0) return 0;
    *out = (*out << 4) | (uint32_t)d;
  }
  r->p += 4;
  return 1;
}

/* parse_string reads a JSON string at r->p (the opening quote). */
static int parse_string(reader* r, char** out, size_t* length) {
  r->p++; /* '"' */
  const char* start = r->p;
  while (r->p < r->end && *r->p != '"') {
    if (*r->p == '\\' && r->end - r->p < 2) {
      break;
    }
    r->p += (*r->p == '\\') ? 2 : 1;
  }
  if (r->p >= r->end || *r->p != '"') {
    r->error = "unterminated string";
    return 0;
  }
  /* The decoded text is never longer than the escaped one. */
  char* s = xmalloc((size_t)(r->p - start) + 1);
  size_t n = 0;
  reader in = {start, r->p, NULL};
  while (in.p < in.end) {
    char c = *in.p++;
    if ((unsigned char)c < 0x20) {
      free(s);
      r->error = "control character in a string";
      return 0;
    }
    if (c != '\\') {
      s[n++] = c;
      continue;
    }
    char e = *in.p++;
    switch (e) {
      case '"': s[n++] = '"'; break;
      case '\\': s[n++] = '\\'; break;
      case '/': s[n++] = '/'; break;
      case 'b': s[n++] = '\b'; break;
      case 'f': s[n++] = '\f'; break;
      case 'n': s[n++] = '\n'; break;
      case 'r': s[n++] = '\r'; break;
      case 't': s[n++] = '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!read_hex4(&in, &cp)) {
          free(s);
          r->error = "bad \\u escape";
          return 0;
        }
        if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
          uint32_t low;
          if (in.end - in.p < 6 || in.p[0] != '\\' || in.p[1] != 'u') {
            free(s);
            r->error = "lone surrogate";
            return 0;
          }
          in.p += 2;
          if (!read_hex4(&in, &low) || low < 0xdc00 || low > 0xdfff) {
            free(s);
            r->error = "bad surrogate pair";
            return 0;
          }
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
        if (cp == 0) {
          free(s);
          r->error = "NUL in a string";
          return 0;
        }
        put_utf8(s, &n, cp);
        break;
      }
      default:
        free(s);
        r->error = "bad escape";
        return 0;
    }
  }
  s[n] = '\0';
  r->p++; /* '"' */
  *out = s;
  *length = n;
  return 1;
}

static int parse_container(reader* r, json* out, int depth, int object) {
  char close = object ? '}' : ']';
  size_t cap = 8;
  out->items = xmalloc(cap * sizeof(json));
  out->keys = object ? xmalloc(cap * sizeof(char*)) : NULL;
  out->length = 0;
  r->p++; /* '{' or '[' */
  skip_space(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    return 1;
  }
  for (;;) {
    if (out->length == cap) {
      cap *= 2;
      json* items = realloc(out->items, cap * sizeof(json));
      if (items == NULL) return 0;
      out->items = items;
      if (object) {
        char** keys = realloc(out->keys, cap * sizeof(char*));
        if (keys == NULL) return 0;
        out->keys = keys;
      }
    }
    skip_space(r);
    if (object) {
      size_t key_length;
      if (r->p >= r->end || *r->p != '"') {
        r->error = "expected a key";
        return 0;
      }
      if (!parse_string(r, &out->keys[out->length], &key_length)) return 0;
      skip_space(r);
      if (r->p >= r->end || *r->p != ':') {
        free(out->keys[out->length]);
        r->error = "expected ':'";
        return 0;
      }
      r->p++;
    }
    if (!parse_value(r, &out->items[out->length], depth + 1)) {
      if (object) free(out->keys[out->length]);
      return 0;
    }
    out->length++;
    skip_space(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    if (r->p < r->end && *r->p == close) {
      r->p++;
      return 1;
    }
    r->error = object ? "expected ',' or '}'" : "expected ',' or ']'";
    return 0;
  }
}

static int parse_value(reader* r, json* out, int depth) {
  memset(out, 0, sizeof(*out));
  if (depth > 16) {
    r->error = "nested too deeply";
    return 0;
  }
  skip_space(r);
  if (r->p >= r->end) {
    r->error = "unexpected end";
    return 0;
  }
  char c = *r->p;
  if (c == '{' || c == '[') {
    out->type = c == '{' ? J_OBJECT : J_ARRAY;
    return parse_container(r, out, depth, c == '{');
  }
  if (c == '"') {
    out->type = J_STRING;
    return parse_string(r, &out->string, &out->length);
  }
  static const struct {
    const char* word;
    json_type type;
    int value;
  } kWords[] = {{"null", J_NULL, 0}, {"true", J_BOOL, 1}, {"false", J_BOOL, 0}};
  for (size_t i = 0; i < sizeof(kWords) / sizeof(kWords[0]); i++) {
    size_t n = strlen(kWords[i].word);
    if ((size_t)(r->end - r->p) >= n && memcmp(r->p, kWords[i].word, n) == 0) {
      r->p += n;
      out->type = kWords[i].type;
      out->number = kWords[i].value;
      return 1;
    }
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    int negative = c == '-';
    if (negative) r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9') {
      r->error = "bad number";
      return 0;
    }
    int64_t v = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
      if (v > (INT64_MAX - 9) / 10) {
        r->error = "number too large";
        return 0;
      }
      v = v * 10 + (*r->p++ - '0');
    }
    if (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E')) {
      r->error = "only integers are expected";
      return 0;
    }
    out->type = J_INT;
    out->number = negative ? -v : v;
    return 1;
  }
  r->error = "unexpected character";
  return 0;
}

static void json_free(json* v) {
  if (v->type == J_STRING) free(v->string);
  if (v->type == J_ARRAY || v->type == J_OBJECT) {
    for (size_t i = 0; i < v->length; i++) {
      json_free(&v->items[i]);
      if (v->type == J_OBJECT) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
  }
}

/* get returns the member `key` of object `v`, or NULL. */
static const json* get(const json* v, const char* key) {
  if (v == NULL || v->type != J_OBJECT) return NULL;
  for (size_t i = 0; i < v->length; i++) {
    if (strcmp(v->keys[i], key) == 0) return &v->items[i];
  }
  return NULL;
}

static const char* get_string(const json* v, const char* key) {
  const json* s = get(v, key);
  return s != NULL && s->type == J_STRING ? s->string : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Bytes. */

typedef struct {
  uint8_t* data;
  size_t size;
} bytes;

static int hex_decode(const char* hex, bytes* out) {
  size_t n = strlen(hex);
  if (n % 2 != 0) return 0;
  out->data = xmalloc(n / 2);
  out->size = n / 2;
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hex_digit((unsigned char)hex[2 * i]);
    int lo = hex_digit((unsigned char)hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(out->data);
      return 0;
    }
    out->data[i] = (uint8_t)(hi << 4 | lo);
  }
  return 1;
}

static void hex_encode(const uint8_t* data, size_t size, char* out) {
  static const char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < size; i++) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  out[2 * size] = '\0';
}

static int base64_value(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* base64_decode decodes standard base64 (padding optional), ignoring whitespace. */
static int base64_decode(const uint8_t* text, size_t size, bytes* out) {
  out->data = xmalloc(size / 4 * 3 + 3);
  out->size = 0;
  uint32_t acc = 0;
  int bits = 0;
  int ended = 0;
  for (size_t i = 0; i < size; i++) {
    int c = text[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ended = 1;
      continue;
    }
    int v = base64_value(c);
    if (v < 0 || ended) {
      free(out->data);
      return 0;
    }
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->data[out->size++] = (uint8_t)(acc >> bits);
    }
  }
  return 1;
}

static int read_file(const char* path, bytes* out) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) return 0;
  size_t cap = 1 << 16;
  out->data = xmalloc(cap);
  out->size = 0;
  size_t got;
  while ((got = fread(out->data + out->size, 1, cap - out->size, f)) > 0) {
    out->size += got;
    if (out->size == cap) {
      cap *= 2;
      uint8_t* grown = realloc(out->data, cap);
      if (grown == NULL) {
        fclose(f);
        free(out->data);
        return 0;
      }
      out->data = grown;
    }
  }
  int ok = !ferror(f);
  fclose(f);
  if (!ok) free(out->data);
  return ok;
}

static int write_file(const char* path, const char* text, size_t size) {
  FILE* f = fopen(path, "wb");
  if (f == NULL) return 0;
  int ok = fwrite(text, 1, size, f) == size;
  return fclose(f) == 0 && ok;
}

static void remove_dir(const char* dir) {
  DIR* d = opendir(dir);
  if (d != NULL) {
    struct dirent* e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* One case. */

typedef enum { CASE_PASS, CASE_FAIL, CASE_SKIP } case_result;

static char g_problem[512];

static void problem(const char* format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(g_problem, sizeof(g_problem), format, args);
  va_end(args);
}

/* load_document gives the case's document: "document" (hex) or "document_fixture". Returns 0
 * on a broken vector, -1 when the fixture folder is absent (skip), 1 on success. */
static int load_document(const json* c, const char* fixtures, bytes* out) {
  const char* hex = get_string(c, "document");
  if (hex != NULL) {
    if (!hex_decode(hex, out)) {
      problem("document is not hex");
      return 0;
    }
    return 1;
  }
  const char* file = get_string(c, "document_fixture");
  if (file == NULL || strchr(file, '/') != NULL) {
    problem("no document or document_fixture");
    return 0;
  }
  char dir[4096];
  struct stat st;
  snprintf(dir, sizeof(dir), "%s/nitro", fixtures != NULL ? fixtures : "");
  if (fixtures == NULL || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return -1;
  }
  char path[4096 + 256];
  snprintf(path, sizeof(path), "%s/%s", dir, file);
  bytes raw;
  if (!read_file(path, &raw)) {
    problem("cannot read %s", path);
    return 0;
  }
  size_t n = strlen(file);
  if (n > 4 && strcmp(file + n - 4, ".b64") == 0) {
    int ok = base64_decode(raw.data, raw.size, out);
    free(raw.data);
    if (!ok) problem("%s is not base64", path);
    return ok;
  }
  *out = raw;
  return 1;
}

/* optional_key decodes a 32-byte hex field, or gives NULL for null/absent. */
static int optional_key(const json* c, const char* field, bytes* out) {
  const json* v = get(c, field);
  out->data = NULL;
  out->size = 0;
  if (v == NULL || v->type == J_NULL) return 1;
  if (v->type != J_STRING || !hex_decode(v->string, out) || out->size != 32) {
    problem("%s is not 32 bytes of hex", field);
    return 0;
  }
  return 1;
}

/* run runs the case and sets *verdict (a static string) and *attestation (on "ok"). Returns 1
 * when it ran, 0 on a broken vector (g_problem says why), -1 to skip (no fixtures). */
static int run(const json* c, const char* fixtures, const char** verdict,
               enclavia_attestation** attestation) {
  const char* kind = get_string(c, "kind");
  const char* trust_text = get_string(c, "trust");
  const json* at = get(c, "at_ms");
  if (kind == NULL || trust_text == NULL || at == NULL || at->type != J_INT) {
    problem("a case needs kind, trust and at_ms");
    return 0;
  }
  int is_handshake = strcmp(kind, "handshake") == 0;
  if (!is_handshake && strcmp(kind, "attestation") != 0) {
    problem("unknown kind %s", kind);
    return 0;
  }

  /* The document first: a missing fixture skips the case before anything is written. */
  bytes document = {NULL, 0};
  if (!is_handshake) {
    int loaded = load_document(c, fixtures, &document);
    if (loaded <= 0) return loaded;
  }

  char dir[] = "/tmp/enclavia-conformance-c-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    free(document.data);
    problem("mkdtemp failed");
    return 0;
  }
  int ok = 1;
  const json* files = get(c, "files");
  for (size_t i = 0; ok && files != NULL && files->type == J_OBJECT && i < files->length; i++) {
    char path[4096];
    const json* text = &files->items[i];
    if (strchr(files->keys[i], '/') != NULL || text->type != J_STRING) {
      problem("bad file entry %s", files->keys[i]);
      ok = 0;
      break;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, files->keys[i]);
    if (!write_file(path, text->string, text->length)) {
      problem("cannot write %s", path);
      ok = 0;
    }
  }

  enclavia_trust* trust = NULL;
  enclavia_status st = ENCLAVIA_OK;
  if (ok) {
    st = enclavia_trust_parse(&trust, trust_text, dir);
  }
  if (ok && st == ENCLAVIA_OK) {
    st = enclavia_trust_set_time(trust, at->number);
  }
  if (ok && st == ENCLAVIA_OK && !is_handshake) {
    const json* chain_json = get(c, "chain");
    size_t count = chain_json != NULL && chain_json->type == J_ARRAY ? chain_json->length : 0;
    bytes* chain = xmalloc(count * sizeof(bytes));
    const uint8_t** entries = xmalloc(count * sizeof(uint8_t*));
    size_t* sizes = xmalloc(count * sizeof(size_t));
    size_t decoded = 0;
    for (; ok && decoded < count; decoded++) {
      const json* e = &chain_json->items[decoded];
      if (e->type != J_STRING || !hex_decode(e->string, &chain[decoded])) {
        problem("chain entry %zu is not hex", decoded);
        ok = 0;
        break;
      }
      entries[decoded] = chain[decoded].data;
      sizes[decoded] = chain[decoded].size;
    }
    bytes public_key = {NULL, 0};
    bytes nonce = {NULL, 0};
    ok = ok && optional_key(c, "public_key", &public_key) && optional_key(c, "nonce", &nonce);
    if (ok) {
      st = enclavia_verify_attestation(trust, attestation, document.data, document.size,
                                       count > 0 ? entries : NULL, count > 0 ? sizes : NULL,
                                       count, public_key.data, nonce.data);
    }
    for (size_t i = 0; i < decoded; i++) free(chain[i].data);
    free(chain);
    free(entries);
    free(sizes);
    free(public_key.data);
    free(nonce.data);
  } else if (ok && st == ENCLAVIA_OK) {
    bytes ephemeral = {NULL, 0};
    bytes message2 = {NULL, 0};
    const char* eph_hex = get_string(c, "ephemeral");
    const char* m2_hex = get_string(c, "message2");
    if (eph_hex == NULL || !hex_decode(eph_hex, &ephemeral) || ephemeral.size != 32) {
      problem("ephemeral is not 32 bytes of hex");
      ok = 0;
    } else if (m2_hex == NULL || !hex_decode(m2_hex, &message2)) {
      problem("message2 is not hex");
      ok = 0;
    } else {
      st = enclavia_handshake_replay(trust, attestation, ephemeral.data, message2.data,
                                     message2.size);
    }
    free(ephemeral.data);
    free(message2.data);
  }
  enclavia_trust_free(trust);
  free(document.data);
  remove_dir(dir);
  if (!ok) return 0;
  *verdict = st == ENCLAVIA_OK ? "ok" : enclavia_status_name(st);
  if (st != ENCLAVIA_OK) {
    snprintf(g_problem, sizeof(g_problem), "%s", enclavia_last_error());
  } else {
    g_problem[0] = '\0';
  }
  return 1;
}

static case_result run_case(const json* c, const char* fixtures, const char* verdicts_out) {
  const char* name = get_string(c, "name");
  const char* expect = get_string(c, "expect");
  if (name == NULL || expect == NULL) {
    fprintf(stderr, "FAIL (a case without name or expect)\n");
    return CASE_FAIL;
  }
  const char* verdict = NULL;
  enclavia_attestation* attestation = NULL;
  int ran = run(c, fixtures, &verdict, &attestation);
  if (ran < 0) {
    printf("SKIP %s: reads the real AWS document %s; shared fixtures not found (set "
           "ENCLAVIA_FIXTURES to the folder holding nitro/)\n",
           name, get_string(c, "document_fixture"));
    return CASE_SKIP;
  }
  if (ran == 0) {
    printf("FAIL %s: broken vector: %s\n", name, g_problem);
    return CASE_FAIL;
  }
  if (verdicts_out != NULL) {
    FILE* f = fopen(verdicts_out, "a");
    if (f != NULL) {
      fprintf(f, "%s %s\n", name, verdict);
      fclose(f);
    }
  }
  case_result result = CASE_PASS;
  if (strcmp(verdict, expect) != 0) {
    printf("FAIL %s: expected %s, got %s (%s)\n", name, expect, verdict, g_problem);
    result = CASE_FAIL;
  } else if (strcmp(verdict, "ok") == 0) {
    uint8_t pcr0[48];
    char hex[97];
    const char* want = get_string(c, "expect_pcr0");
    if (enclavia_attestation_pcr(attestation, pcr0, 0) != ENCLAVIA_OK) {
      printf("FAIL %s: no PCR0 (%s)\n", name, enclavia_last_error());
      result = CASE_FAIL;
    } else {
      hex_encode(pcr0, sizeof(pcr0), hex);
      if (want == NULL || strcmp(hex, want) != 0) {
        printf("FAIL %s: PCR0 %s, expected %s\n", name, hex, want != NULL ? want : "(none)");
        result = CASE_FAIL;
      }
    }
  }
  if (result == CASE_PASS) {
    printf("PASS %s %s\n", name, verdict);
  }
  enclavia_attestation_free(attestation);
  return result;
}

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: conformance_c VECTORS_JSON [FIXTURES_DIR]\n");
    return 2;
  }
  const char* fixtures = getenv("ENCLAVIA_FIXTURES");
  if (fixtures == NULL || *fixtures == '\0') {
    fixtures = argc == 3 ? argv[2] : NULL;
  }
  const char* verdicts_out = getenv("ENCLAVIA_VERDICTS_OUT");
  if (verdicts_out != NULL && *verdicts_out == '\0') verdicts_out = NULL;

  bytes text;
  if (!read_file(argv[1], &text)) {
    fprintf(stderr, "conformance_c: cannot read %s\n", argv[1]);
    return 2;
  }
  json root;
  reader r = {(const char*)text.data, (const char*)text.data + text.size, NULL};
  int parsed = parse_value(&r, &root, 0);
  skip_space(&r);
  if (!parsed || r.p != r.end) {
    fprintf(stderr, "conformance_c: %s: %s at byte %zu\n", argv[1],
            r.error != NULL ? r.error : "trailing data", (size_t)(r.p - (const char*)text.data));
    return 2;
  }
  free(text.data);
  const json* version = get(&root, "version");
  const json* cases = get(&root, "cases");
  if (version == NULL || version->type != J_INT || version->number != 1 || cases == NULL ||
      cases->type != J_ARRAY || cases->length == 0) {
    fprintf(stderr, "conformance_c: %s: not a version 1 vectors file\n", argv[1]);
    return 2;
  }

  size_t passed = 0, failed = 0, skipped = 0;
  for (size_t i = 0; i < cases->length; i++) {
    switch (run_case(&cases->items[i], fixtures, verdicts_out)) {
      case CASE_PASS: passed++; break;
      case CASE_FAIL: failed++; break;
      case CASE_SKIP: skipped++; break;
    }
  }
  printf("conformance_c: %zu passed, %zu failed, %zu skipped (of %zu)\n", passed, failed,
         skipped, cases->length);
  json_free(&root);
  return failed == 0 ? 0 : 1;
}
