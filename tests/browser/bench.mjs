// SPDX-License-Identifier: Apache-2.0
// bench.mjs SERVER_URL BULK_PORT RUNS BYTES [FLOOR_WS_URL]: runs examples/browser/bench.html in
// Debian's chromium and prints one line per run, "sdk handshake_ms request_ms download_ms
// upload_ms" (as bench/bindings_client does), and with FLOOR_WS_URL (bench/ws_floor.mjs) one
// "floor ..." line per run of the same on a plain WebSocket (bench/bindings.sh).
import { launch, open } from './chromium.mjs';

const [server, port, runs, bytes, floor] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await open(browser.context,
    `${server}examples/browser/bench.html?n=${runs}&port=${port}&bytes=${bytes}` +
    (floor ? `&floor=${encodeURIComponent(floor)}` : ''));
  await page.waitForFunction(() => window.benchResult !== undefined, null, { timeout: 300_000 });
  const r = await page.evaluate(() => window.benchResult);
  if (r.error) throw new Error(r.error);
  for (let i = 0; i < r.handshake.length; i++) {
    console.log(`sdk ${[r.handshake[i], r.request[i], r.download[i], r.upload[i]].map((x) => x.toFixed(3)).join(' ')}`);
  }
  for (const row of r.floor || []) console.log(`floor ${row.map((x) => x.toFixed(3)).join(' ')}`);
} finally {
  await browser.close();
}
