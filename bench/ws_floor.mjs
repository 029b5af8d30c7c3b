#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// ws_floor.mjs: a plain WebSocket server (RFC 6455, no TLS, no Enclavia), the floor that
// bench/bindings.sh measures Chromium's own WebSocket against: what any browser client pays
// before encryption, attestation or wasm. Node built-ins only. Prints "ws_floor: listening on
// PORT". Protocol, one binary message per request:
//   "d" + u64le N   → N bytes back, in 64 KiB binary messages (Noise's largest is 64 KiB);
//   "u" + u64le N   → then N bytes in any messages → the count back as one 8-byte message.
import crypto from 'node:crypto';
import http from 'node:http';

const server = http.createServer((_, res) => { res.writeHead(426); res.end(); });

function frame(payload) {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x82, n])
    : n < 65536 ? Buffer.from([0x82, 126, n >> 8, n & 255])
      : Buffer.concat([Buffer.from([0x82, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
  return Buffer.concat([head, payload]);
}

server.on('upgrade', (req, socket) => {
  const accept = crypto.createHash('sha1')
    .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.setNoDelay(true);
  let buf = Buffer.alloc(0);
  let uploading = -1n;  // bytes still expected in upload mode, or -1
  let uploaded = 0n;
  socket.on('data', (data) => {
    buf = Buffer.concat([buf, data]);
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 15;
      let len = buf[1] & 127;
      let at = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
      const masked = buf[1] & 128;
      if (buf.length < at + (masked ? 4 : 0) + len) return;
      const mask = masked ? buf.subarray(at, at + 4) : null;
      at += masked ? 4 : 0;
      const payload = Buffer.from(buf.subarray(at, at + len));
      buf = buf.subarray(at + len);
      if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      if (opcode === 8) { socket.end(Buffer.from([0x88, 0])); return; }
      if (opcode !== 2) continue;
      if (uploading >= 0n) {
        uploaded += BigInt(payload.length);
        if (uploaded >= uploading) {
          const count = Buffer.alloc(8);
          count.writeBigUInt64LE(uploaded);
          socket.write(frame(count));
          uploading = -1n;
        }
      } else if (payload[0] === 0x64 /* d */) {
        let n = Number(payload.readBigUInt64LE(1));
        const chunk = Buffer.alloc(65536, 0x5a);
        while (n > 0) { const k = Math.min(n, chunk.length); socket.write(frame(chunk.subarray(0, k))); n -= k; }
      } else if (payload[0] === 0x75 /* u */) {
        uploading = payload.readBigUInt64LE(1);
        uploaded = 0n;
      }
    }
  });
  socket.on('error', () => {});
});

server.listen(0, '127.0.0.1', () => console.log(`ws_floor: listening on ${server.address().port}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
