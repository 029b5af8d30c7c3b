// SPDX-License-Identifier: Apache-2.0
// e2e.mjs URL TRUST_TOML WRONG_TOML PCR0 HTTP_PORT ECHO_PORT: the wasm client in Node against a
// real enclave side (enclavia-local-ingress behind enclavia-relay, started by e2e_test.sh):
// connect + attestation, an HTTP request, 1 MiB echoed both ways intact with its time, a port
// nobody listens on, and a refusal with a wrong PCR0. Needs `node --experimental-websocket`.
// Prints "ok"/"FAIL" lines and "figure <name> <value>" lines; exits 1 on any failure.
import { readFileSync } from "node:fs";
import { basename, dirname, isAbsolute, join } from "node:path";

import { EnclaviaError, Trust, bytesToHex, connect } from "../src/index.js";

const [url, trustPath, wrongPath, pcr0, httpPort, echoPort] = process.argv.slice(2);
let failures = 0;
function check(name, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok ? "" : ` ${detail}`}`);
  if (!ok) failures++;
}

// loadTrust reads a trust file as a browser page would get it: root PEM paths become names
// whose text is passed in `files`.
async function loadTrust(path) {
  let toml = readFileSync(path, "utf8");
  const files = {};
  toml = toml.replace(/^roots\s*=\s*\[(.*)\]/m, (_, list) => {
    const roots = [...list.matchAll(/"([^"]*)"/g)].map((m) => m[1]).map((root) => {
      if (root === "aws-nitro") return root;
      const file = isAbsolute(root) ? root : join(dirname(path), root);
      files[basename(file)] = readFileSync(file, "utf8");
      return basename(file);
    });
    return `roots = [${roots.map((r) => JSON.stringify(r)).join(", ")}]`;
  });
  return Trust.parse(toml, { files });
}

const trust = await loadTrust(trustPath);

let t0 = performance.now();
const channel = await connect(url, trust);
const handshakeMs = performance.now() - t0;
check("connect: the attested PCR0", bytesToHex(channel.attestation.pcrs[0]) === pcr0,
  bytesToHex(channel.attestation.pcrs[0] ?? new Uint8Array()));
check("connect: a module id and a recent timestamp", channel.attestation.moduleId.length > 0 &&
  Math.abs(Date.now() - channel.attestation.timestamp.getTime()) < 3600e3);
console.log(`figure handshake_ms ${handshakeMs.toFixed(1)}`);

const res = await channel.fetch(Number(httpPort), "/");
check("fetch: 200 and the page", res.status === 200 && res.text() === "hello through the channel\n",
  `${res.status} ${JSON.stringify(res.text().slice(0, 80))}`);

// 1 MiB both ways through the echo server: written while read, as `enclavia connect` does.
const size = 1 << 20;
const payload = new Uint8Array(size);
for (let i = 0; i < size; i += 65536) globalThis.crypto.getRandomValues(payload.subarray(i, i + 65536));
let best = Infinity;
for (let round = 0; round < 3; round++) {
  t0 = performance.now();
  const stream = await channel.openStream(Number(echoPort));
  let wrote = 0;
  const writing = stream.write(payload).then(() => { wrote = performance.now() - t0; stream.closeWrite(); });
  const echoed = await stream.readAll();
  await writing;
  const ms = performance.now() - t0;
  console.log(`figure echo_1mib_round${round} ${ms.toFixed(1)} ms (written after ${wrote.toFixed(1)} ms)`);
  best = Math.min(best, ms);
  stream.close();
  if (round === 0) {
    check("stream: 1 MiB echoed intact", echoed.length === size && bytesToHex(echoed.subarray(0, 64)) ===
      bytesToHex(payload.subarray(0, 64)) && Buffer.compare(Buffer.from(echoed), Buffer.from(payload)) === 0,
      `got ${echoed.length} bytes`);
  }
}
console.log(`figure echo_1mib_ms ${best.toFixed(1)}`);

// A port nobody listens on: the enclave side resets the stream.
const closed = await channel.openStream(9);
try {
  await closed.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
  const data = await closed.read();
  check("stream to a closed port fails", false, `read ${data === null ? "EOF" : data.length}`);
} catch (e) {
  check("stream to a closed port fails", e instanceof EnclaviaError, String(e));
}
channel.close();

// A second handshake: the module is loaded and warm, as for every connection after the first.
let warm = Infinity;
for (let i = 0; i < 3; i++) {
  t0 = performance.now();
  const again = await connect(url, trust);
  warm = Math.min(warm, performance.now() - t0);
  again.close();
}
console.log(`figure handshake_warm_ms ${warm.toFixed(1)}`);

// The wrong PCR0: refused before any stream, with the core's status.
const wrong = await loadTrust(wrongPath);
try {
  await connect(url, wrong);
  check("a wrong PCR0 is refused", false, "connected");
} catch (e) {
  check("a wrong PCR0 is refused", e instanceof EnclaviaError && e.status === "policy_violation",
    `${e.status}: ${e.message}`);
}
process.exit(failures === 0 ? 0 : 1);
