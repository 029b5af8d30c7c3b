// SPDX-License-Identifier: Apache-2.0
// app.js: connect to the enclave named by /config.json (examples/browser/server.mjs), show the
// verified PCRs, make one request. Everything security-relevant happens in bindings/js (the C++
// core in wasm): this file only displays what it returns. The outcome is also left in
// window.enclaviaResult for tests/browser: {state: "ok"|"refused"|"error", pcrs, response, error}.
import { connect, Trust, EnclaviaError } from '../../bindings/js/src/index.js';

// Statuses that mean "this enclave did not prove what the trust file requires".
const refusals = new Set(['policy_violation', 'untrusted', 'expired', 'verify_failed', 'malformed']);
const $ = (id) => document.getElementById(id);
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

function finish(result) {
  window.enclaviaResult = result;
  document.body.dataset.done = result.state;
}

async function main() {
  const query = new URLSearchParams(location.search);
  const configUrl = `/config.json${query.has('trust') ? `?trust=${encodeURIComponent(query.get('trust'))}` : ''}`;
  const config = await (await fetch(configUrl)).json();
  $('url').textContent = config.url;
  $('trust-name').textContent = config.trustName;
  $('trust-text').textContent = config.toml;
  $('app-port').textContent = String(config.appPort);

  let channel;
  let start;
  try {
    const trust = await Trust.parse(config.toml, { files: config.files });
    start = performance.now();
    channel = await connect(config.url, trust);
  } catch (e) {
    const status = e instanceof EnclaviaError ? e.status : 'error';
    // The enclave's proof failed (a refusal), or something else did (an error).
    const state = refusals.has(status) ? 'refused' : 'error';
    $('status').dataset.state = state;
    $('status').textContent = `${status}: ${e.message}`;
    return finish({ state, error: { status, message: e.message } });
  }
  const handshakeMs = performance.now() - start;
  const att = channel.attestation;
  $('status').dataset.state = 'ok';
  $('status').textContent = 'attestation verified against the trust file';
  $('handshake-ms').textContent = `${handshakeMs.toFixed(1)} ms (connect until attested)`;
  $('module-id').textContent = att.moduleId;
  $('timestamp').textContent = att.timestamp.toISOString();
  const pcrs = {};
  for (const [index, value] of Object.entries(att.pcrs)) {
    if (!value || value.every((b) => b === 0)) continue;  // unused PCRs are all zero
    pcrs[index] = hex(value);
    const row = $('pcrs').insertRow();
    row.insertCell().textContent = `PCR${index}`;
    const cell = row.insertCell();
    cell.className = 'hex';
    cell.textContent = pcrs[index];
  }
  let response;
  try {
    const res = await channel.fetch(config.appPort, '/', { method: 'GET' });
    response = { status: res.status, text: await res.text() };
    $('response').textContent = `${res.status}\n${response.text}`;
  } catch (e) {
    $('response').textContent = `request failed: ${e.message}`;
    return finish({ state: 'error', pcrs, error: { status: e.status || 'error', message: e.message } });
  } finally {
    channel.close();
  }
  finish({ state: 'ok', pcrs, handshakeMs, response });
}

main().catch((e) => {
  $('status').dataset.state = 'error';
  $('status').textContent = e.message;
  finish({ state: 'error', error: { status: 'error', message: String(e.message) } });
});
