// SPDX-License-Identifier: Apache-2.0
// bench.js: the browser's side of bench/bindings.sh, timed in the page with performance.now().
// Per run: a new channel (connect until attested), a small request (1 KiB answer), a download
// and an upload of `bytes` through the bench/bulk.cc protocol ("d" + u64le N → N bytes; "u" +
// data to EOF → u64le count). Results in window.benchResult = {handshake, request, download,
// upload: [ms...]} (or {error}). With ?floor=ws://… (bench/ws_floor.mjs), the same runs on a
// plain WebSocket too, no Enclavia: out.floor, Chromium's own cost.
import { connect, Trust } from '../../bindings/js/src/index.js';

const log = (line) => { document.getElementById('log').textContent += `${line}\n`; };

function header(op, n) {
  const h = new Uint8Array(op === 'd' ? 9 : 1);
  h[0] = op.charCodeAt(0);
  if (op === 'd') new DataView(h.buffer).setBigUint64(1, BigInt(n), true);
  return h;
}

async function readAll(stream) {
  let total = 0;
  const chunks = [];
  for (let chunk; (chunk = await stream.read()) !== null;) {
    total += chunk.length;
    chunks.push(chunk);
  }
  return { total, chunks };
}

async function download(channel, port, n) {
  const stream = await channel.openStream(port);
  await stream.write(header('d', n));
  stream.closeWrite();
  const { total } = await readAll(stream);
  stream.close();
  if (total !== n) throw new Error(`download: ${total} of ${n} bytes`);
}

async function upload(channel, port, data) {
  const stream = await channel.openStream(port);
  await stream.write(header('u'));
  await stream.write(data);
  stream.closeWrite();
  const { total, chunks } = await readAll(stream);
  stream.close();
  const reply = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { reply.set(c, at); at += c.length; }
  const count = total === 8 ? Number(new DataView(reply.buffer).getBigUint64(0, true)) : -1;
  if (count !== data.length) throw new Error(`upload: the server counted ${count} of ${data.length} bytes`);
}

// The floor: a plain WebSocket to bench/ws_floor.mjs, the same messages as the bulk protocol.
function plainSocket(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`floor: cannot connect to ${url}`));
  });
}

function receive(ws, until) {  // resolves once `until(totalBytes, lastMessage)` holds
  return new Promise((resolve) => {
    let total = 0;
    ws.onmessage = (e) => {
      total += e.data.byteLength;
      if (until(total, e.data)) resolve(e.data);
    };
  });
}

async function floorRun(url, bytes, data) {
  const t0 = performance.now();
  const ws = await plainSocket(url);
  const t1 = performance.now();
  let done = receive(ws, (total) => total >= 1024);
  ws.send(header('d', 1024));
  await done;
  const t2 = performance.now();
  done = receive(ws, (total) => total >= bytes);
  ws.send(header('d', bytes));
  await done;
  const t3 = performance.now();
  done = receive(ws, (_, last) => last.byteLength === 8);
  const u = header('d', data.length);
  u[0] = 'u'.charCodeAt(0);
  ws.send(u);
  for (let at = 0; at < data.length; at += 65535) ws.send(data.subarray(at, at + 65535));
  const reply = await done;
  const t4 = performance.now();
  ws.close();
  if (Number(new DataView(reply).getBigUint64(0, true)) !== data.length) throw new Error('floor: upload count');
  return [t1 - t0, t2 - t1, t3 - t2, t4 - t3];
}

async function main() {
  const q = new URLSearchParams(location.search);
  const runs = Number(q.get('n') || 5);
  const port = Number(q.get('port'));
  const bytes = Number(q.get('bytes') || (1 << 20));
  const config = await (await fetch('/config.json')).json();
  const trust = await Trust.parse(config.toml, { files: config.files });
  const data = new Uint8Array(bytes).fill(0xa5);
  const out = { handshake: [], request: [], download: [], upload: [] };
  for (let i = 0; i <= runs; i++) {  // run 0 warms the wasm module and the JIT: not counted
    const t0 = performance.now();
    const channel = await connect(config.url, trust);
    const t1 = performance.now();
    await download(channel, port, 1024);
    const t2 = performance.now();
    await download(channel, port, bytes);
    const t3 = performance.now();
    await upload(channel, port, data);
    const t4 = performance.now();
    channel.close();
    if (i === 0) continue;
    out.handshake.push(t1 - t0);
    out.request.push(t2 - t1);
    out.download.push(t3 - t2);
    out.upload.push(t4 - t3);
    log(`run ${i}: handshake ${(t1 - t0).toFixed(2)} ms, request ${(t2 - t1).toFixed(2)} ms, ` +
        `download ${(t3 - t2).toFixed(2)} ms, upload ${(t4 - t3).toFixed(2)} ms`);
  }
  if (q.get('floor')) {
    out.floor = [];
    try {
      for (let i = 0; i <= runs; i++) {
        const r = await floorRun(q.get('floor'), bytes, data);
        if (i > 0) out.floor.push(r);
      }
    } catch (e) {
      log(`floor: ${e.message}`);
      out.floor = [];
    }
  }
  window.benchResult = out;
}

main().catch((e) => {
  log(`error: ${e.status || ''} ${e.message}`);
  window.benchResult = { error: `${e.status || 'error'}: ${e.message}` };
});
