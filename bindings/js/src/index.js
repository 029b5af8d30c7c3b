// SPDX-License-Identifier: Apache-2.0
// @enclavia/client: the Enclavia client for browsers (and Node 20+), over the C++ client core
// compiled to WebAssembly (dist/enclavia_core.{mjs,wasm}, built by scripts/build-wasm). Every
// verification decision is made by that core — the same code as the C++, C and Python clients —
// through the sans-I/O C ABI (src/client/include/enclavia/client.h); this file only carries
// WebSocket messages in and out and turns events into promises.
import createEnclaviaCore from "../dist/enclavia_core.mjs";

// EnclaviaError is every failure the core reports: `status` is the C ABI's status name
// ("policy_violation", "verify_failed", ...), `message` its one-line message.
export class EnclaviaError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "EnclaviaError";
    this.status = status;
  }
}

const EVENT = { NONE: 0, ESTABLISHED: 1, DATA: 2, FIN: 3, RESET: 4, WRITABLE: 5, CLOSED: 6, GOAWAY: 7 };
const SUBPROTOCOL = "enclavia.v1";
const PCR_SIZE = 48;
const MAX_PCRS = 32;

let corePromise = null;
// core() loads the wasm module once; `init` may name the .wasm location for bundlers
// (`locateFile`) before the first call.
let coreOptions = {};
export function configureCore(options) { coreOptions = { ...options }; }
const isNode = typeof process === "object" && typeof process.versions === "object" && !!process.versions.node;
async function load() {
  let options = coreOptions;
  if (isNode && !options.wasmBinary) {
    // Node's fetch takes no file: URLs; the module's own .wasm is read from disk instead.
    const { readFile } = await import("node:fs/promises");
    options = { ...options, wasmBinary: await readFile(new URL("../dist/enclavia_core.wasm", import.meta.url)) };
  }
  return new Core(await createEnclaviaCore(options));
}
async function core() {
  corePromise ??= load();
  return corePromise;
}

// Core wraps the module: calls that raise EnclaviaError, and small scratch allocations.
class Core {
  constructor(M) {
    this.M = M;
    this.encoder = new TextEncoder();
    this.decoder = new TextDecoder();
    this.scratch = M._malloc(64); // Out-parameters: pointers, sizes, the event struct.
    this.pcr = M._malloc(PCR_SIZE);
    this.recvPtr = 0;
    this.recvCap = 0;
    this.dirs = 0;
  }
  get heap() { return this.M.HEAPU8; }
  u32(ptr) { return this.M.HEAPU32[ptr >>> 2]; }
  error(status) {
    const name = this.M.UTF8ToString(this.M._enclavia_status_name(status));
    return new EnclaviaError(name, this.M.UTF8ToString(this.M._enclavia_last_error()));
  }
  check(status) {
    if (status !== 0) throw this.error(status);
  }
  // alloc copies `bytes` (Uint8Array) into the heap; the caller frees the pointer.
  alloc(bytes) {
    const ptr = this.M._malloc(Math.max(bytes.length, 1));
    if (ptr === 0) throw new EnclaviaError("internal", "out of wasm memory");
    this.heap.set(bytes, ptr);
    return ptr;
  }
  allocString(text) {
    const bytes = this.encoder.encode(text);
    const ptr = this.M._malloc(bytes.length + 1);
    this.heap.set(bytes, ptr);
    this.heap[ptr + bytes.length] = 0;
    return ptr;
  }
  // receiveBuffer returns a reused heap buffer of at least `size` bytes (incoming messages).
  receiveBuffer(size) {
    if (size > this.recvCap) {
      if (this.recvPtr) this.M._free(this.recvPtr);
      this.recvCap = Math.max(size, 64 * 1024);
      this.recvPtr = this.M._malloc(this.recvCap);
      if (this.recvPtr === 0) throw new EnclaviaError("internal", "out of wasm memory");
    }
    return this.recvPtr;
  }
  // attestation reads a verified attestation into a plain object (the pointer stays owned).
  // takeAttestation: `status` from a call that wrote an enclavia_attestation* to scratch;
  // returns it as a JS object and frees it (throws EnclaviaError on a failed status).
  takeAttestation(status) {
    this.check(status);
    const ptr = this.u32(this.scratch);
    try {
      return this.attestation(ptr);
    } finally {
      this.M._enclavia_attestation_free(ptr);
    }
  }
  attestation(ptr) {
    const M = this.M;
    const pcrs = [];
    for (let i = 0; i < MAX_PCRS; i++) {
      if (M._enclavia_attestation_pcr(ptr, this.pcr, i) === 0) {
        pcrs[i] = this.heap.slice(this.pcr, this.pcr + PCR_SIZE);
      }
    }
    const field = (fn) => {
      const data = fn(ptr, this.scratch);
      const size = this.u32(this.scratch);
      return data === 0 || size === 0 ? null : this.heap.slice(data, data + size);
    };
    const genesisPtr = this.scratch + 8;
    const genesis = M._enclavia_attestation_genesis(ptr, genesisPtr) === 0
      ? this.heap.slice(genesisPtr, genesisPtr + 32) : null;
    return Object.freeze({
      pcrs,
      moduleId: M.UTF8ToString(M._enclavia_attestation_module_id(ptr)),
      timestamp: new Date(Number(M._enclavia_attestation_timestamp_ms(ptr))), // int64: BigInt
      publicKey: field(M._enclavia_attestation_public_key),
      userData: field(M._enclavia_attestation_user_data),
      upgrades: M._enclavia_attestation_upgrades(ptr) >>> 0,
      genesis,
    });
  }
}

// The module is linked with WASM_BIGINT: int64 arguments and results are BigInts.
function setTime(C, trustPtr, ms) {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new EnclaviaError("invalid_argument", "time: not a valid ms count");
  C.check(C.M._enclavia_trust_set_time(trustPtr, BigInt(ms)));
}

const registry = typeof FinalizationRegistry === "function"
  ? new FinalizationRegistry(({ C, ptr, free }) => C.M[free](ptr)) : null;

// Trust is a parsed trust policy (docs/trust-file.md). Root certificates named in the TOML are
// given by `files` (name → PEM text), as the browser has no file system.
export class Trust {
  constructor(C, ptr) {
    this._C = C;
    this._ptr = ptr;
    this._timeMs = 0;
    registry?.register(this, { C, ptr, free: "_enclavia_trust_free" }, this);
  }

  static async parse(toml, { files = {} } = {}) {
    const C = await core();
    const dir = `/enclavia-trust-${++C.dirs}`;
    const FS = C.M.FS;
    FS.mkdir(dir);
    const written = [];
    const textPtr = C.allocString(toml);
    const dirPtr = C.allocString(dir);
    try {
      for (const [name, text] of Object.entries(files)) {
        if (name.includes("/") || name === "." || name === "..") {
          throw new EnclaviaError("invalid_argument", `trust file name with a slash: ${name}`);
        }
        FS.writeFile(`${dir}/${name}`, typeof text === "string" ? text : new Uint8Array(text));
        written.push(`${dir}/${name}`);
      }
      C.check(C.M._enclavia_trust_parse(C.scratch, textPtr, dirPtr));
      return new Trust(C, C.u32(C.scratch));
    } finally {
      C.M._free(textPtr);
      C.M._free(dirPtr);
      for (const path of written) FS.unlink(path);
      FS.rmdir(dir);
    }
  }

  // setTime fixes the clock documents are checked against (Date or ms; 0/null: the system's).
  setTime(at) {
    const ms = at == null ? 0 : at instanceof Date ? at.getTime() : Number(at);
    setTime(this._C, this._ptr, ms);
    this._timeMs = ms;
  }

  free() {
    if (this._ptr) {
      registry?.unregister(this);
      this._C.M._enclavia_trust_free(this._ptr);
      this._ptr = 0;
    }
  }

  get _handle() {
    if (!this._ptr) throw new EnclaviaError("failed_precondition", "the trust policy was freed");
    return this._ptr;
  }
}

function toBytes(value, what) {
  if (value == null) return null;
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (typeof value === "string") return hexToBytes(value);
  throw new EnclaviaError("invalid_argument", `${what}: expected bytes`);
}

export function hexToBytes(hex) {
  if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) {
    throw new EnclaviaError("invalid_argument", "malformed hex");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

// withTime runs fn with the trust's clock at `at` (if given), restoring it afterwards.
function withTime(trust, at, fn) {
  if (at == null) return fn();
  const previous = trust._timeMs;
  trust.setTime(at);
  try {
    return fn();
  } finally {
    trust.setTime(previous);
  }
}

// verifyAttestation checks an attestation document (COSE_Sign1 bytes) and the enclave's upgrade
// chain against `trust`, as a handshake does. publicKey / nonce (32 bytes) must match the
// document when given; `at` (Date or ms) fixes the clock. Returns the attestation or throws
// EnclaviaError.
export async function verifyAttestation(document, trust, { chain = [], publicKey, nonce, at } = {}) {
  const C = await core();
  const M = C.M;
  const doc = toBytes(document, "document");
  const key = toBytes(publicKey, "publicKey");
  const nonceBytes = toBytes(nonce, "nonce");
  if (key && key.length !== 32) throw new EnclaviaError("invalid_argument", "publicKey: 32 bytes");
  if (nonceBytes && nonceBytes.length !== 32) throw new EnclaviaError("invalid_argument", "nonce: 32 bytes");
  const owned = [];
  try {
    const docPtr = C.alloc(doc); owned.push(docPtr);
    const entries = chain.map((e) => toBytes(e, "chain"));
    const ptrs = entries.map((e) => { const p = C.alloc(e); owned.push(p); return p; });
    const tables = M._malloc(Math.max(entries.length, 1) * 8); owned.push(tables);
    entries.forEach((e, i) => {
      M.HEAPU32[(tables >>> 2) + i] = ptrs[i];
      M.HEAPU32[(tables >>> 2) + entries.length + i] = e.length;
    });
    const keyPtr = key ? C.alloc(key) : 0; if (keyPtr) owned.push(keyPtr);
    const noncePtr = nonceBytes ? C.alloc(nonceBytes) : 0; if (noncePtr) owned.push(noncePtr);
    return withTime(trust, at, () => {
      return C.takeAttestation(M._enclavia_verify_attestation(trust._handle, C.scratch, docPtr,
        doc.length, entries.length ? tables : 0, entries.length ? tables + 4 * entries.length : 0,
        entries.length, keyPtr, noncePtr));
    });
  } finally {
    for (const p of owned) M._free(p);
  }
}

// replayHandshake replays the client side of a recorded handshake (conformance vectors only).
export async function replayHandshake(trust, ephemeral, message2, { at } = {}) {
  const C = await core();
  const M = C.M;
  const eph = toBytes(ephemeral, "ephemeral");
  const msg = toBytes(message2, "message2");
  if (eph.length !== 32) throw new EnclaviaError("invalid_argument", "ephemeral: 32 bytes");
  const ephPtr = C.alloc(eph);
  const msgPtr = C.alloc(msg);
  try {
    return withTime(trust, at, () => {
      return C.takeAttestation(M._enclavia_handshake_replay(trust._handle, C.scratch, ephPtr,
        msgPtr, msg.length));
    });
  } finally {
    M._free(ephPtr);
    M._free(msgPtr);
  }
}

function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

// Stream is a byte stream to one TCP port of the enclave.
export class Stream {
  constructor(channel, id, port) {
    this._channel = channel;
    this.id = id;
    this.port = port;
    this._chunks = [];       // Received, not yet read.
    this._readers = [];      // Pending read() promises.
    this._writers = [];      // Pending write() continuations (waiting for WRITABLE).
    this._fin = false;       // The enclave side sent all it will.
    this._error = null;      // Reset or channel failure.
    this._closed = false;    // CLOSED, or close() called.
  }

  // write resolves once all of `data` is queued within the stream's send window; it waits for
  // window credit (WRITABLE) when the enclave has not read enough yet.
  async write(data) {
    const bytes = toBytes(data, "data");
    if (bytes.length === 0) return;
    const ch = this._channel;
    const C = ch._C;
    const M = C.M;
    const ptr = C.alloc(bytes); // The one copy into the heap; written from there in pieces.
    try {
      let offset = 0;
      while (offset < bytes.length) {
        if (this._error) throw this._error;
        const acceptedPtr = C.scratch + 32;
        C.check(M._enclavia_session_write(ch._handle, this.id, ptr + offset, bytes.length - offset, acceptedPtr));
        const accepted = C.u32(acceptedPtr);
        offset += accepted;
        ch._flush();
        if (offset < bytes.length && accepted === 0) {
          const wait = deferred();
          this._writers.push(wait);
          await wait.promise;
        }
      }
    } catch (e) {
      throw this._error ?? ch._failed ?? e;
    } finally {
      M._free(ptr);
    }
  }

  // read resolves with the next chunk of bytes, or null at the end of the stream.
  read() {
    if (this._chunks.length > 0) return Promise.resolve(this._take());
    if (this._error) return Promise.reject(this._error);
    if (this._fin || this._closed) return Promise.resolve(null);
    const wait = deferred();
    this._readers.push(wait);
    return wait.promise;
  }

  // readAll reads to the end of the stream.
  async readAll() {
    const parts = [];
    let total = 0;
    for (let chunk; (chunk = await this.read()) !== null;) { parts.push(chunk); total += chunk.length; }
    return concat(parts, total);
  }

  _take() {
    const chunk = this._chunks.shift();
    // Credit goes back to the enclave only when the application takes the bytes: a slow reader
    // slows the sender (backpressure) instead of growing this queue.
    const ch = this._channel;
    if (!ch._failed) {
      ch._C.M._enclavia_session_consumed(ch._handle, this.id, chunk.length);
      ch._flush();
    }
    return chunk;
  }

  // closeWrite half-closes: the enclave application sees the end of its input.
  closeWrite() {
    const ch = this._channel;
    if (this._error ?? ch._failed) throw this._error ?? ch._failed;
    ch._C.check(ch._C.M._enclavia_session_close_write(ch._handle, this.id));
    ch._flush();
  }

  // close resets the stream if it is still open and releases it.
  close() {
    if (this._closed) return;
    this._closed = true;
    const ch = this._channel;
    if (!ch._failed && ch._streams.has(this.id)) {
      ch._C.M._enclavia_session_reset(ch._handle, this.id);
      ch._flush();
    }
    ch._streams.delete(this.id);
    this._wake();
  }

  _push(chunk) {
    if (this._readers.length > 0) {
      this._chunks.push(chunk);
      this._readers.shift().resolve(this._take());
    } else {
      this._chunks.push(chunk);
    }
  }

  _wake() {
    for (const r of this._readers.splice(0)) {
      if (this._error) r.reject(this._error); else r.resolve(null);
    }
    for (const w of this._writers.splice(0)) {
      if (this._error) w.reject(this._error); else w.resolve();
    }
  }

  _writable() {
    for (const w of this._writers.splice(0)) w.resolve();
  }
}

function concat(parts, total) {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// Channel is an attested, end-to-end encrypted channel to an enclave.
export class Channel {
  constructor(C, ptr, ws) {
    this._C = C;
    this._ptr = ptr;
    this._ws = ws;
    this._streams = new Map();
    this._failed = null;
    this.attestation = null;
    this._closed = deferred();
  }

  // closed resolves with the error that ended the channel.
  get closed() { return this._closed.promise; }

  get _handle() { return this._ptr; }

  // openStream opens a stream to the enclave's TCP `port`.
  async openStream(port) {
    if (this._failed) throw this._failed;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new EnclaviaError("invalid_argument", `openStream: bad port ${port}`);
    }
    const C = this._C;
    const idPtr = C.scratch + 40;
    C.check(C.M._enclavia_session_open(this._ptr, idPtr, port));
    const stream = new Stream(this, C.u32(idPtr), port);
    this._streams.set(stream.id, stream);
    this._flush();
    return stream;
  }

  // fetch makes one HTTP/1.1 request over a new stream to `port` (Connection: close).
  async fetch(port, path, { method = "GET", headers = {}, body } = {}) {
    const payload = body == null ? new Uint8Array(0)
      : typeof body === "string" ? new TextEncoder().encode(body) : toBytes(body, "body");
    const lines = [`${method} ${path} HTTP/1.1`];
    const names = new Set(Object.keys(headers).map((h) => h.toLowerCase()));
    if (!names.has("host")) lines.push("Host: enclave");
    if (!names.has("connection")) lines.push("Connection: close");
    if (!names.has("content-length") && (payload.length > 0 || !["GET", "HEAD"].includes(method))) {
      lines.push(`Content-Length: ${payload.length}`);
    }
    for (const [k, v] of Object.entries(headers)) {
      if (/[\r\n]/.test(k + v)) throw new EnclaviaError("invalid_argument", "header with CR/LF");
      lines.push(`${k}: ${v}`);
    }
    const head = new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`);
    const stream = await this.openStream(port);
    try {
      await stream.write(payload.length > 0 ? concat([head, payload], head.length + payload.length) : head);
      const raw = await stream.readAll();
      return parseResponse(raw, method);
    } finally {
      stream.close();
    }
  }

  // close ends the channel (the WebSocket); open streams fail.
  close() {
    this._fail(new EnclaviaError("unavailable", "channel closed"));
  }

  _flush() {
    if (this._failed) return;
    const C = this._C;
    const M = C.M;
    const msgPtr = C.scratch + 48;
    const sizePtr = C.scratch + 52;
    for (;;) {
      const status = M._enclavia_session_poll_outgoing(this._ptr, msgPtr, sizePtr);
      if (status !== 0) { this._fail(C.error(status)); return; }
      const size = C.u32(sizePtr);
      if (size === 0) return;
      const ptr = C.u32(msgPtr);
      // A view of the heap: WebSocket.send copies it synchronously.
      this._ws.send(C.heap.subarray(ptr, ptr + size));
    }
  }

  _receive(data) {
    if (this._failed) return;
    const C = this._C;
    const M = C.M;
    const bytes = new Uint8Array(data);
    const ptr = C.receiveBuffer(bytes.length);
    C.heap.set(bytes, ptr);
    const status = M._enclavia_session_receive(this._ptr, ptr, bytes.length);
    if (status !== 0) { this._fail(C.error(status)); return; }
    this._flush();
    this._events();
  }

  _events() {
    const C = this._C;
    const M = C.M;
    const ev = C.scratch;
    for (;;) {
      const status = M._enclavia_session_poll_event(this._ptr, ev);
      if (status !== 0) { this._fail(C.error(status)); return; }
      const kind = C.u32(ev);
      if (kind === EVENT.NONE) break;
      const id = C.u32(ev + 4);
      const code = C.u32(ev + 8);
      const dataPtr = C.u32(ev + 12);
      const size = C.u32(ev + 16);
      const data = size > 0 ? C.heap.slice(dataPtr, dataPtr + size) : new Uint8Array(0);
      const stream = this._streams.get(id);
      switch (kind) {
        case EVENT.ESTABLISHED:
          this.attestation = C.attestation(M._enclavia_session_attestation(this._ptr));
          this._onEstablished?.();
          break;
        case EVENT.DATA:
          if (stream && !stream._closed) stream._push(data);
          else M._enclavia_session_consumed(this._ptr, id, size);
          break;
        case EVENT.FIN:
          if (stream) { stream._fin = true; stream._wake(); }
          break;
        case EVENT.RESET:
          if (stream) {
            stream._error = new EnclaviaError("io", `stream reset by the enclave (code ${code}): ${C.decoder.decode(data)}`);
            this._streams.delete(id);
            stream._wake();
          }
          break;
        case EVENT.WRITABLE:
          stream?._writable();
          break;
        case EVENT.CLOSED:
          if (stream) { stream._fin = true; this._streams.delete(id); stream._wake(); }
          break;
        case EVENT.GOAWAY:
          this._goaway = new EnclaviaError("unavailable", `the enclave ends the channel (code ${code}): ${C.decoder.decode(data)}`);
          break;
        default:
          break;
      }
    }
    this._flush();
  }

  _fail(error) {
    if (this._failed) return;
    this._failed = error;
    for (const s of this._streams.values()) {
      if (!s._fin || s._chunks.length === 0) s._error ??= error;
      s._wake();
    }
    this._streams.clear();
    try { this._ws.close(); } catch { /* already closing */ }
    this._onFailed?.(error);
    this._C.M._enclavia_session_free(this._ptr);
    this._ptr = 0;
    this._closed.resolve(error);
  }
}

// connect dials `url` (ws:// or wss://) with the browser's WebSocket (globalThis.WebSocket in
// Node 22+, or `node --experimental-websocket` on 20), runs the attested handshake and resolves
// with a Channel only if the enclave's attestation satisfies `trust`.
export async function connect(url, trust, { WebSocket: WS = globalThis.WebSocket, timeoutMs = 30000 } = {}) {
  if (typeof WS !== "function") {
    throw new EnclaviaError("unsupported", "no WebSocket implementation (Node: --experimental-websocket)");
  }
  const C = await core();
  C.check(C.M._enclavia_session_new(C.scratch, trust._handle));
  const sessionPtr = C.u32(C.scratch);
  let ws;
  try {
    ws = new WS(url, SUBPROTOCOL);
  } catch (e) {
    C.M._enclavia_session_free(sessionPtr);
    throw new EnclaviaError("invalid_argument", `websocket: ${e.message}`);
  }
  ws.binaryType = "arraybuffer";
  const channel = new Channel(C, sessionPtr, ws);
  const ready = deferred();
  let established = false;
  const timer = setTimeout(() => channel._fail(new EnclaviaError("unavailable", "handshake timed out")), timeoutMs);
  channel._onEstablished = () => { established = true; clearTimeout(timer); ready.resolve(channel); };
  channel._onFailed = (e) => { clearTimeout(timer); if (!established) ready.reject(e); };
  ws.onopen = () => channel._flush();
  ws.onmessage = (event) => {
    if (typeof event.data === "string") {
      channel._fail(new EnclaviaError("malformed", "websocket: text message on a binary channel"));
      return;
    }
    channel._receive(event.data);
  };
  ws.onerror = () => channel._fail(new EnclaviaError("unavailable", `websocket: cannot reach ${url}`));
  ws.onclose = (event) => channel._fail(channel._goaway ??
    new EnclaviaError(established ? "unavailable" : "io",
      `websocket closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`));
  return ready.promise;
}

// parseResponse parses an HTTP/1.1 response read to the end of the stream.
function parseResponse(raw, method) {
  let end = -1;
  for (let i = 0; i + 3 < raw.length; i++) {
    if (raw[i] === 13 && raw[i + 1] === 10 && raw[i + 2] === 13 && raw[i + 3] === 10) { end = i; break; }
  }
  if (end < 0) throw new EnclaviaError("malformed", "http: no complete response head");
  const head = new TextDecoder().decode(raw.subarray(0, end)).split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(head[0]);
  if (!m) throw new EnclaviaError("malformed", "http: bad status line");
  const headers = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new EnclaviaError("malformed", "http: bad header line");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  let body = raw.subarray(end + 4);
  const status = Number(m[1]);
  if (method === "HEAD" || status === 204 || status === 304) {
    body = new Uint8Array(0);
  } else if (/\bchunked\b/i.test(headers["transfer-encoding"] ?? "")) {
    body = dechunk(body);
  } else if (headers["content-length"] !== undefined) {
    const length = Number(headers["content-length"]);
    if (!Number.isSafeInteger(length) || length < 0 || length > body.length) {
      throw new EnclaviaError("malformed", "http: body shorter than Content-Length");
    }
    body = body.subarray(0, length);
  }
  return {
    status,
    statusText: m[2] ?? "",
    headers,
    body,
    text() { return new TextDecoder().decode(body); },
    json() { return JSON.parse(new TextDecoder().decode(body)); },
  };
}

function dechunk(data) {
  const parts = [];
  let total = 0;
  let at = 0;
  for (;;) {
    let eol = at;
    while (eol + 1 < data.length && !(data[eol] === 13 && data[eol + 1] === 10)) eol++;
    if (eol + 1 >= data.length) throw new EnclaviaError("malformed", "http: truncated chunk");
    const size = parseInt(new TextDecoder().decode(data.subarray(at, eol)).split(";")[0], 16);
    if (!Number.isSafeInteger(size) || size < 0) throw new EnclaviaError("malformed", "http: bad chunk size");
    at = eol + 2;
    if (size === 0) break;
    if (at + size > data.length) throw new EnclaviaError("malformed", "http: truncated chunk");
    parts.push(data.subarray(at, at + size));
    total += size;
    at += size + 2;
  }
  return concat(parts, total);
}

function base64ToBytes(text) {
  const clean = text.replace(/\s+/g, "");
  if (typeof atob === "function") {
    const bin = atob(clean);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  return new Uint8Array(Buffer.from(clean, "base64"));
}

// runConformanceCase runs one case of tests/conformance/vectors.json through the core and
// returns its verdict: "ok" or the status name of the error (README there). `fixtures` gives the
// documents named by "document_fixture": an object (name → bytes) or an (async) function. A case
// with "expect_pcr0" that verifies with another PCR0 gives "pcr0_mismatch".
export async function runConformanceCase(c, fixtures = {}) {
  let trust;
  try {
    trust = await Trust.parse(c.trust, { files: c.files ?? {} });
  } catch (e) {
    if (e instanceof EnclaviaError) return e.status;
    throw e;
  }
  try {
    trust.setTime(c.at_ms);
    let attestation;
    try {
      if (c.kind === "attestation") {
        let document;
        if (c.document_fixture !== undefined) {
          const raw = typeof fixtures === "function" ? await fixtures(c.document_fixture) : fixtures[c.document_fixture];
          if (raw == null) throw new Error(`conformance: missing fixture ${c.document_fixture}`);
          const bytes = typeof raw === "string" ? new TextEncoder().encode(raw) : toBytes(raw, "fixture");
          document = c.document_fixture.endsWith(".b64") ? base64ToBytes(new TextDecoder().decode(bytes)) : bytes;
        } else {
          document = hexToBytes(c.document);
        }
        attestation = await verifyAttestation(document, trust, {
          chain: (c.chain ?? []).map(hexToBytes),
          publicKey: c.public_key ?? undefined,
          nonce: c.nonce ?? undefined,
        });
      } else if (c.kind === "handshake") {
        attestation = await replayHandshake(trust, c.ephemeral, c.message2);
      } else {
        throw new Error(`conformance: unknown kind ${c.kind}`);
      }
    } catch (e) {
      if (e instanceof EnclaviaError) return e.status;
      throw e;
    }
    if (c.expect_pcr0 && bytesToHex(attestation.pcrs[0] ?? []) !== c.expect_pcr0.toLowerCase()) {
      return "pcr0_mismatch";
    }
    return "ok";
  } finally {
    trust.free();
  }
}
